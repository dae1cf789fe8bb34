"""Calibrated probabilities: temperature scaling, its error measure and diagram.

A net's probabilities are often too sure of themselves. Temperature scaling
(Guo et al., 2017) divides the log-probabilities by one number ``T`` fitted on
held-out clips, which keeps every argmax and makes "0.8" mean right about 80%
of the time. :class:`~genreclf.ensemble.GenreEnsemble` fits ``T`` on the clips
each member held out (its ``valid_size``), or that a calibration net held out
when the members train on every clip, applies it to every member before the
soft vote, and keeps what it measured in ``calibration_``; one ``T`` for whole
clips and one for clips of a single window, fitted on excerpts of the held-out
clips (:func:`length_temperatures` goes between them).
:func:`expected_calibration_error` and :func:`plot_reliability` report it.

Examples
--------
>>> import numpy as np
>>> proba = np.array([[0.99, 0.01], [0.98, 0.02], [0.97, 0.03], [0.99, 0.01]])
>>> y = np.array([0, 1, 0, 1])
>>> t = fit_temperature(proba, y)
>>> t > 1  # over-confident: softened
True
>>> bool(expected_calibration_error(apply_temperature(proba, t), y)
...      < expected_calibration_error(proba, y))
True
"""

import numpy as np

__all__ = [
    "apply_temperature",
    "length_temperatures",
    "expected_calibration_error",
    "fit_temperature",
    "plot_reliability",
    "reliability_bins",
]

#: Probabilities are clipped to this before the log, so a 0 stays finite.
_EPS = 1e-12
#: The temperatures searched, as ``log(T)`` bounds.
_LOG_T_BOUNDS = (-4.0, 4.0)


def _log(proba):
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1.0))


def apply_temperature(proba, temperature):
    """Soften (``T > 1``) or sharpen (``T < 1``) probabilities.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Probabilities; rows sum to one.
    temperature : float or array-like of shape (n_samples,)
        ``T > 0``, one for all rows or one per row; 1 returns the
        probabilities unchanged.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes), float64
        ``softmax(log(proba) / T)``, rows summing to one, same argmax.

    Examples
    --------
    >>> apply_temperature([[0.8, 0.2]], 1.0).round(3).tolist()
    [[0.8, 0.2]]
    >>> apply_temperature([[0.8, 0.2]], 1e6).round(3).tolist()
    [[0.5, 0.5]]
    """
    temperature = np.asarray(temperature, dtype=np.float64)
    scores = _log(proba) / (temperature[:, None] if temperature.ndim else temperature)
    scores -= scores.max(axis=1, keepdims=True)
    out = np.exp(scores)
    return out / out.sum(axis=1, keepdims=True)


def length_temperatures(n_windows, short, long, long_windows):
    """Temperature of each clip by its number of windows.

    A clip's probabilities average those of its windows: a clip of many
    windows and an excerpt of one are not over- or under-confident alike, so
    :class:`~genreclf.GenreEnsemble` fits one temperature on one-window
    excerpts (``short``) and one on whole clips of ``long_windows`` windows
    (``long``). A clip between the two gets a temperature whose log is
    interpolated on the log of its number of windows; outside, the nearer.

    Parameters
    ----------
    n_windows : array-like of int, shape (n_clips,)
        Windows of each clip (1 for a clip no wider than one window).
    short, long : float
        Temperatures of one-window clips and of ``long_windows``-window clips.
    long_windows : float
        Windows of the whole clips ``long`` was fitted on (their median).

    Returns
    -------
    temperatures : ndarray of shape (n_clips,), float64

    Examples
    --------
    >>> length_temperatures([1, 4, 16, 40], 2.0, 0.5, 16).round(3).tolist()
    [2.0, 1.0, 0.5, 0.5]
    """
    n = np.maximum(np.asarray(n_windows, dtype=np.float64), 1.0)
    if long_windows <= 1:
        return np.full(n.shape, float(long))
    share = np.clip(np.log(n) / np.log(long_windows), 0.0, 1.0)
    return np.exp((1 - share) * np.log(short) + share * np.log(long))


def fit_temperature(proba, y):
    """The temperature that minimises the log-loss of held-out predictions.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Held-out probabilities.
    y : array-like of shape (n_samples,), int
        True class index of each row.

    Returns
    -------
    temperature : float
        In ``[e^-4, e^4]``; 1.0 when there is nothing to fit on.
    """
    from scipy.optimize import minimize_scalar

    logp = _log(proba)
    y = np.asarray(y, dtype=np.intp)
    if not len(y):
        return 1.0

    def nll(log_t):
        scores = logp / np.exp(log_t)
        scores -= scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scores).sum(axis=1))
        return float(np.mean(log_norm - scores[np.arange(len(y)), y]))

    found = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded")
    # a flat loss (all held-out rows the same) keeps the probabilities as they are
    if not found.success or nll(found.x) >= nll(0.0) - 1e-12:
        return 1.0
    return float(np.exp(found.x))


def reliability_bins(proba, y, n_bins=10):
    """Confidence, accuracy and count per bin of the top probability.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Probabilities.
    y : array-like of shape (n_samples,), int
        True class index of each row.
    n_bins : int, default=10
        Equal-width bins over ``[0, 1]``.

    Returns
    -------
    confidence, accuracy : ndarray of shape (n_bins,), float64
        Mean top probability and fraction correct in each bin (NaN when empty).
    counts : ndarray of shape (n_bins,), int
        Rows in each bin.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=np.intp)
    top = proba.max(axis=1) if len(proba) else np.zeros(0)
    correct = (proba.argmax(axis=1) == y) if len(proba) else np.zeros(0, bool)
    which = np.minimum((top * n_bins).astype(np.intp), n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, top, minlength=n_bins) / counts
        accuracy = np.bincount(which, correct.astype(float), minlength=n_bins) / counts
    return confidence, accuracy, counts


def expected_calibration_error(proba, y, n_bins=10):
    """Expected calibration error: mean gap between confidence and accuracy.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Probabilities.
    y : array-like of shape (n_samples,), int
        True class index of each row.
    n_bins : int, default=10
        Equal-width bins of the top probability.

    Returns
    -------
    ece : float
        ``sum_b n_b / n * |accuracy_b - confidence_b|``, in ``[0, 1]``; 0.0
        without rows.

    Examples
    --------
    >>> expected_calibration_error([[0.9, 0.1], [0.9, 0.1]], [0, 1])
    0.4
    """
    confidence, accuracy, counts = reliability_bins(proba, y, n_bins)
    if not counts.sum():
        return 0.0
    full = counts > 0
    gaps = np.abs(accuracy[full] - confidence[full]) * counts[full]
    return round(float(gaps.sum() / counts.sum()), 12)


def plot_reliability(y, before, after=None, n_bins=10):
    """Reliability diagram: accuracy against confidence, before and after.

    Parameters
    ----------
    y : array-like of shape (n_samples,), int
        True class index of each row.
    before : array-like of shape (n_samples, n_classes)
        Uncalibrated probabilities.
    after : array-like of shape (n_samples, n_classes), optional
        Calibrated probabilities.
    n_bins : int, default=10
        Bins of the top probability.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The diagonal is perfect calibration; each curve's label gives its ECE.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfect")
    curves = [("uncalibrated", before, "tab:red")]
    if after is not None:
        curves.append(("temperature-scaled", after, "tab:blue"))
    for label, proba, color in curves:
        confidence, accuracy, counts = reliability_bins(proba, y, n_bins)
        full = counts > 0
        ece = expected_calibration_error(proba, y, n_bins)
        ax.plot(
            confidence[full],
            accuracy[full],
            "o-",
            color=color,
            label=f"{label} (ECE {ece:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability on held-out clips (n={len(np.asarray(y))})")
    ax.legend(fontsize="x-small", loc="upper left")
    fig.tight_layout()
    return fig
