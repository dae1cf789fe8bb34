"""Fixed-width windows over the real frames of each clip, and their votes.

A clip is an MFCC matrix of shape ``(n_channels, n_mfcc, n_frames_i)``: a row
of a dense array ``(n_clips, n_channels, n_mfcc, n_frames)`` (clips of equal
width) or one clip of a :class:`~genreclf.clips.ClipFeatures` (clips of their
own widths). The net sees windows of ``window`` frames, ``hop`` frames apart,
over each clip's real frames; a clip shorter than one window gives one window,
filled once by repeating the clip. Nothing here copies more than one
mini-batch of windows at a time: a dense array is read through a strided view,
a ``ClipFeatures`` through :meth:`~genreclf.clips.ClipFeatures.window`.

:class:`WindowDataset`, the torch dataset of a net's training and validation
windows, :func:`change_windows`, its tilt EQ and noise on MFCC windows, and
:func:`stretch_each`, its tempo changes, live
in :mod:`genreclf._window_dataset` (so that this module needs numpy only) and
stay importable from here.
"""

import numpy as np

from genreclf.clips import ClipFeatures

__all__ = [
    "COMBINE_RULES",
    "WINDOW_AUGMENTATIONS",
    "WindowDataset",
    "as_clips",
    "change_windows",
    "clip_widths",
    "combine_windows",
    "finish_combine",
    "iter_window_batches",
    "read_windows",
    "stretch_each",
    "vote_windows",
    "window_index",
    "window_starts",
]

COMBINE_RULES = ("mean", "logmean", "vote")
#: The augmentation options of :class:`WindowDataset` (deprecated in GenreNet).
WINDOW_AUGMENTATIONS = ("time_shift", "time_mask", "freq_mask", "c0_shift")


def as_clips(X):
    """View 2-D, 3-D or 4-D input as clips of shape (n, channels, n_mfcc, n_frames).

    Parameters
    ----------
    X : ndarray or ClipFeatures
        Of shape (n_clips, channels, n_mfcc, n_frames), (n_clips, n_mfcc,
        n_frames), or (n_samples, n_features), read as one frame of
        ``n_features`` coefficients. A ``ClipFeatures`` is returned as it is.

    Returns
    -------
    clips : ndarray of shape (n, channels, n_mfcc, n_frames) or ClipFeatures
        A view of ``X``.

    Examples
    --------
    >>> as_clips(np.zeros((5, 20, 7))).shape
    (5, 1, 20, 7)
    >>> as_clips(np.zeros((5, 6))).shape
    (5, 1, 6, 1)
    """
    if isinstance(X, ClipFeatures):
        if len(X) and (X.n_mfcc < 1 or X.n_frames.min() < 1):
            raise ValueError("X has a clip without frames or coefficients")
        return X
    if X.ndim == 2:
        X = X[:, None, :, None]
    elif X.ndim == 3:
        X = X[:, None]
    elif X.ndim != 4:
        raise ValueError(
            "X must have shape (n_clips, 1, n_mfcc, n_frames), "
            f"(n_clips, n_mfcc, n_frames) or (n_samples, n_features); got {X.shape}"
        )
    if min(X.shape[1:]) < 1:
        raise ValueError(f"X has an empty axis: shape {X.shape}")
    return X


def clip_widths(X):
    """Width in frames of each clip of ``X`` (as made by :func:`as_clips`).

    Returns
    -------
    n_frames : ndarray of shape (n_clips,), int

    Examples
    --------
    >>> clip_widths(np.zeros((3, 1, 20, 9))).tolist()
    [9, 9, 9]
    """
    if isinstance(X, ClipFeatures):
        return np.asarray(X.n_frames, dtype=np.intp)
    return np.full(len(X), X.shape[-1], dtype=np.intp)


def window_starts(n_frames, window, hop):
    """First frame of each window that fits in a clip.

    Parameters
    ----------
    n_frames : int
        Width of the clip, in frames.
    window : int
        Width of a window, in frames.
    hop : int
        Frames between the starts of two consecutive windows.

    Returns
    -------
    starts : ndarray of shape (n_windows,), int
        ``[0]`` when the clip is not wider than one window.

    Examples
    --------
    >>> window_starts(10, 4, 2).tolist()
    [0, 2, 4, 6]
    >>> window_starts(3, 4, 2).tolist()
    [0]
    """
    if n_frames <= window:
        return np.zeros(1, dtype=np.intp)
    return np.arange(0, n_frames - window + 1, hop, dtype=np.intp)


def window_index(n_frames, window, hop):
    """Clip and first frame of every window of every clip, in clip order.

    Parameters
    ----------
    n_frames : array-like of shape (n_clips,), int
        Width of each clip, in frames.
    window, hop : int
        Window width and hop, in frames.

    Returns
    -------
    clip_ids : ndarray of shape (n_windows,), int
        The clip of each window.
    starts : ndarray of shape (n_windows,), int
        Its first frame (as :func:`window_starts` gives them per clip).
    counts : ndarray of shape (n_clips,), int
        Windows per clip (at least 1).

    Examples
    --------
    >>> ids, starts, counts = window_index([10, 3], 4, 3)
    >>> ids.tolist(), starts.tolist(), counts.tolist()
    ([0, 0, 0, 1], [0, 3, 6, 0], [3, 1])
    """
    n_frames = np.asarray(n_frames, dtype=np.intp).reshape(-1)
    counts = np.where(n_frames <= window, 1, (n_frames - window) // hop + 1)
    clip_ids = np.repeat(np.arange(len(n_frames), dtype=np.intp), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    starts = (np.arange(len(clip_ids), dtype=np.intp) - first) * hop
    return clip_ids, starts.astype(np.intp), counts.astype(np.intp)


def _tile_to(clips, window):
    """Repeat ``clips`` (..., n_frames) along time until ``window`` frames."""
    n_frames = clips.shape[-1]
    if n_frames >= window:
        return clips
    reps = -(-window // n_frames)
    tiles = [1] * (clips.ndim - 1) + [reps]
    return np.tile(clips, tiles)[..., :window]


def read_windows(X, clip_ids, starts, window, variants=None):
    """Read one mini-batch of windows, as one array.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames) or ClipFeatures
        The clips.
    clip_ids, starts : ndarray of shape (n_batch,), int
        Clip and first frame of each window. A clip not wider than the
        window is repeated to fill it (its start is ignored).
    window : int
        Width of a window, in frames.
    variants : ndarray of shape (n_batch,), int, optional
        Augmentation variant of each window (0: the clip itself), for a
        ``ClipFeatures`` with variants; None reads the clips themselves.

    Returns
    -------
    windows : ndarray of shape (n_batch, n_channels, n_mfcc, window), float32
        A contiguous copy of this mini-batch only.

    Examples
    --------
    >>> X = np.arange(10, dtype=np.float32).reshape(1, 1, 1, 10)
    >>> read_windows(X, np.array([0, 0]), np.array([0, 6]), 4)[:, 0, 0].tolist()
    [[0.0, 1.0, 2.0, 3.0], [6.0, 7.0, 8.0, 9.0]]
    """
    clip_ids = np.asarray(clip_ids, dtype=np.intp)
    starts = np.asarray(starts, dtype=np.intp)
    if isinstance(X, ClipFeatures):
        batched = getattr(X, "windows", None)
        if batched is not None:
            kwargs = {} if variants is None else {"variants": variants}
            return np.ascontiguousarray(
                batched(clip_ids, starts, window, **kwargs), dtype=np.float32
            )
        if variants is None:
            parts = [X.window(int(i), int(s), window) for i, s in zip(clip_ids, starts)]
        else:
            parts = [
                X.window(int(i), int(s), window, variant=int(v))
                for i, s, v in zip(clip_ids, starts, variants)
            ]
        if not parts:
            return np.zeros((0, 1, X.n_mfcc, window), dtype=np.float32)
        return np.stack(parts).astype(np.float32, copy=False)
    if X.shape[-1] < window:
        return np.ascontiguousarray(_tile_to(X[clip_ids], window), dtype=np.float32)
    # (n_clips, C, H, n_positions, window): a view, nothing copied yet.
    view = np.lib.stride_tricks.sliding_window_view(X, window, axis=-1)
    return np.ascontiguousarray(view[clip_ids, :, :, starts], dtype=np.float32)


def iter_window_batches(X, window, hop, batch_size):
    """Yield mini-batches of windows cut from every clip of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames) or ClipFeatures
        The clips; each contributes the windows of its own frames.
    window : int
        Width of a window, in frames.
    hop : int
        Frames between window starts.
    batch_size : int
        Windows per mini-batch.

    Yields
    ------
    clip_ids : ndarray of shape (n_batch,), int
        The clip each window comes from.
    windows : ndarray of shape (n_batch, n_channels, n_mfcc, window), float32
        A contiguous copy of this mini-batch only.
    """
    clip_ids, starts, _ = window_index(clip_widths(X), window, hop)
    for first in range(0, len(clip_ids), batch_size):
        part = slice(first, first + batch_size)
        yield clip_ids[part], read_windows(X, clip_ids[part], starts[part], window)


def combine_windows(log_proba, clip_ids, totals, rule):
    """Add the windows' share of their clips' scores to ``totals`` in place.

    Parameters
    ----------
    log_proba : ndarray of shape (n_batch, n_classes)
        Log-probabilities of a mini-batch of windows.
    clip_ids : ndarray of shape (n_batch,), int
        The clip of each window.
    totals : ndarray of shape (n_clips, n_classes), float64
        Running sums, finished by :func:`finish_combine`.
    rule : {"mean", "logmean", "vote"}
        Mean of probabilities, mean of log-probabilities, or majority vote.
    """
    if rule == "mean":
        share = np.exp(log_proba)
    elif rule == "logmean":
        share = log_proba
    else:
        share = np.zeros_like(log_proba)
        share[np.arange(len(share)), log_proba.argmax(axis=1)] = 1.0
    np.add.at(totals, clip_ids, share)


def finish_combine(totals, n_windows, rule):
    """Turn the sums of :func:`combine_windows` into probabilities per clip.

    Parameters
    ----------
    totals : ndarray of shape (n_clips, n_classes), float64
        Sums over each clip's windows.
    n_windows : int or ndarray of shape (n_clips,), int
        Windows of each clip (one number when every clip has as many).
    rule : {"mean", "logmean", "vote"}
        The rule the sums were made with.

    Returns
    -------
    proba : ndarray of shape (n_clips, n_classes), float64
        Rows sum to one. For ``"vote"``, the fraction of windows that voted
        for each class; for ``"logmean"``, the normalised geometric mean.

    Examples
    --------
    >>> totals = np.log([[0.5, 0.5], [0.9, 0.1]])
    >>> finish_combine(totals, 1, "logmean").round(2).tolist()
    [[0.5, 0.5], [0.9, 0.1]]
    >>> finish_combine(np.array([[2.0, 0.0], [1.0, 2.0]]), [2, 3], "vote").tolist()
    [[1.0, 0.0], [0.3333333333333333, 0.6666666666666666]]
    """
    counts = np.asarray(n_windows, dtype=np.float64)
    mean = totals / (counts[:, None] if counts.ndim else counts)
    if rule == "logmean":
        mean = np.exp(mean - mean.max(axis=1, keepdims=True))
        mean /= mean.sum(axis=1, keepdims=True)
    return mean


def vote_windows(log_proba, X, window, hop, batch_size, rule):
    """Probabilities per clip, combined over the real windows of each clip.

    Parameters
    ----------
    log_proba : callable
        Maps a mini-batch of windows, ndarray of shape (n_batch, n_channels,
        n_mfcc, window), float32, to its log-probabilities, ndarray of shape
        (n_batch, n_classes).
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames) or ClipFeatures
        The clips (one narrower than the window is repeated to fill it).
    window, hop : int
        Window width and hop, in frames.
    batch_size : int
        Windows per call of ``log_proba`` (bounds the memory used).
    rule : {"mean", "logmean", "vote"}
        How the windows are combined (see :func:`combine_windows`).

    Returns
    -------
    proba : ndarray of shape (n_clips, n_classes), float64
        Rows sum to one.

    Examples
    --------
    >>> X = np.zeros((2, 1, 3, 10), dtype=np.float32)
    >>> uniform = lambda batch: np.log(np.full((len(batch), 4), 0.25))
    >>> vote_windows(uniform, X, 4, 3, 5, "mean").tolist()[0]
    [0.25, 0.25, 0.25, 0.25]
    """
    totals = None
    _, _, counts = window_index(clip_widths(X), window, hop)
    for clip_ids, batch in iter_window_batches(X, window, hop, batch_size):
        scores = log_proba(batch)
        if totals is None:
            totals = np.zeros((len(X), scores.shape[1]))
        combine_windows(scores, clip_ids, totals, rule)
    return finish_combine(totals, counts, rule)


def __getattr__(name):
    # Imported on first use: genreclf._window_dataset imports this module, and
    # torch is not needed to slice windows or combine their votes.
    if name in ("WindowDataset", "change_windows", "stretch_each"):
        import genreclf._window_dataset

        return getattr(genreclf._window_dataset, name)
    raise AttributeError(f"module 'genreclf.windows' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
