"""The table of predictions of a fitted pipeline, and its text, JSON and CSV.

One function turns a fitted pipeline and audio paths into predictions
(:func:`predict_table`); the served MLflow model and ``genreclf predict`` both
use it, and :func:`format_predictions` writes it for the command line.
Unreadable files are not predicted: they are listed apart, with the reason.

Examples
--------
>>> import numpy as np
>>> table = PredictionTable(
...     paths=["a.wav", "b.wav"], classes=["pop", "rock"],
...     proba=np.array([[0.25, 0.75], [0.9, 0.1]]), bad={"c.wav": "empty file"})
>>> table.genres
['rock', 'pop']
>>> print(format_predictions(table, "csv", top_k=1), end="")
path,genre,genre_1,probability_1
a.wav,rock,rock,0.7500
b.wav,pop,pop,0.9000
>>> format_bad_files(table.bad)
'1 file(s) could not be read: c.wav (empty file)'
"""

import contextlib
import dataclasses
import io
import json
import os
import warnings

import numpy as np

__all__ = [
    "FORMATS",
    "PredictionTable",
    "format_bad_files",
    "format_predictions",
    "predict_frame",
    "predict_table",
    "predict_windows",
]

#: The output formats of :func:`format_predictions`.
FORMATS = ("text", "json", "csv")


@dataclasses.dataclass
class PredictionTable:
    """Predicted genres and class probabilities of audio files.

    Parameters
    ----------
    paths : list of str
        The files predicted (the readable ones), in input order.
    classes : list of str
        The genres the model knows, in the order of its ``classes_``.
    proba : ndarray of shape (n_files, n_classes), float64
        Probability of each genre for each file; rows sum to 1.
    bad : dict of str to str, default={}
        Files that could not be read -> the reason; they have no row.
    """

    paths: list
    classes: list
    proba: np.ndarray
    bad: dict = dataclasses.field(default_factory=dict)

    @property
    def genres(self):
        """list of str: The predicted genre of each file (most probable)."""
        return [self.classes[int(i)] for i in np.argmax(self.proba, axis=1)]

    def top(self, top_k):
        """Return the ``top_k`` most probable genres of each file.

        Parameters
        ----------
        top_k : int
            How many genres per file (at most the number of classes).

        Returns
        -------
        top : list of list of (str, float)
            For each file, ``(genre, probability)`` pairs, most probable first.
        """
        top_k = min(int(top_k), len(self.classes))
        return [
            [(self.classes[int(j)], float(p[j])) for j in np.argsort(-p)[:top_k]]
            for p in self.proba
        ]

    def rows(self, top_k=3):
        """Return one dict per file: ``path``, ``genre`` and the ``top`` genres.

        Parameters
        ----------
        top_k : int, default=3
            Genres listed under ``top`` (each ``{"genre", "probability"}``).

        Returns
        -------
        rows : list of dict
        """
        return [
            {
                "path": path,
                "genre": genre,
                "top": [{"genre": g, "probability": p} for g, p in top],
            }
            for path, genre, top in zip(
                self.paths, self.genres, self.top(top_k), strict=True
            )
        ]

    def frame(self):
        """Return a DataFrame: column ``genre``, then one probability per class.

        Returns
        -------
        frame : pandas.DataFrame
            One row per file of :attr:`paths`; float64 probability columns
            named after the classes.
        """
        import pandas as pd

        if not self.paths:
            return pd.DataFrame(columns=["genre", *self.classes])
        frame = pd.DataFrame(self.proba.astype(np.float64), columns=self.classes)
        frame.insert(0, "genre", self.genres)
        return frame


@contextlib.contextmanager
def _feature_cache(pipeline, memory):
    """Give the feature step a cache folder for the block, then restore it."""
    from genreclf.pipeline import STEP_NAMES

    step = pipeline.named_steps[STEP_NAMES[0]]
    old = step.memory
    with contextlib.ExitStack() as stack:
        if memory is None and old is None:
            import tempfile

            memory = stack.enter_context(tempfile.TemporaryDirectory())
        if memory is not None:
            step.set_params(memory=memory)
        try:
            yield step
        finally:
            step.set_params(memory=old)


def predict_table(pipeline, paths, *, on_error="skip", memory=None):
    """Predict the genre of each audio file with a fitted genreclf pipeline.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted genreclf pipeline (``predict_proba``, ``classes_`` and the
        feature step named ``STEP_NAMES[0]``).
    paths : sequence of str or path-like
        Audio files.
    on_error : {"skip", "raise"}, default="skip"
        "skip": find the unreadable files first, predict the others and list
        the bad ones in ``bad``. "raise": predict every file, and fail on the
        first batch that holds an unreadable one.
    memory : str or path-like, optional
        MFCC cache folder for ``on_error="skip"`` (every file is decoded once:
        the screen fills the cache that the prediction reads); by default the
        pipeline's own, else a temporary folder for this call.

    Returns
    -------
    table : PredictionTable
        The predictions of the readable files and the list of the others.

    Raises
    ------
    genreclf.exceptions.FeatureExtractionError
        With ``on_error="raise"``, when files cannot be read (naming every
        one).
    ValueError
        If ``on_error`` is none of the above.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(
            f"The 'on_error' parameter of predict_table must be a str among "
            f"{{'skip', 'raise'}}. Got {on_error!r} instead."
        )
    paths = [str(os.fspath(p)) for p in paths]
    classes = [str(c) for c in pipeline.classes_]
    bad = {}
    if on_error == "skip" and paths:
        from genreclf.exceptions import DatasetWarning
        from genreclf.features import check_files

        with _feature_cache(pipeline, memory) as step, warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)  # listed in ``bad``
            _, _, found = check_files(paths, on_error="skip", transformer=step)
            bad = {str(p): str(r) for p, r in found.items()}
            good = [p for p in paths if p not in bad]
            proba = _proba(pipeline, good, len(classes))
    else:
        good = paths
        proba = _proba(pipeline, good, len(classes))
    return PredictionTable(paths=good, classes=classes, proba=proba, bad=bad)


def _proba(pipeline, paths, n_classes):
    if not paths:
        return np.zeros((0, n_classes), dtype=np.float64)
    proba = pipeline.predict_proba(np.asarray(paths, dtype=object))
    return np.asarray(proba, dtype=np.float64)


def predict_windows(pipeline, paths, *, memory=None, batch_size=64):
    """The genre of each window of each clip over its time, as the nets see them.

    Each member of the ensemble sees fixed-width windows of a clip (its
    ``window_``, about 3 s by default, ``hop_`` frames apart); this returns
    their soft vote per window (temperature-scaled as a clip of one window
    is), so a page can draw the genre along the track.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted genreclf pipeline whose last step is a
        :class:`~genreclf.ensemble.GenreEnsemble` of nets with ``window_`` and
        ``hop_`` (:class:`~genreclf.GenreNet`).
    paths : sequence of str
        Readable audio files (see :func:`predict_table` to screen them).
    memory : str or path-like, optional
        MFCC cache folder (as for :func:`predict_table`).
    batch_size : int, default=64
        Windows per call of a net.

    Returns
    -------
    strips : list of dict
        Per clip: ``start`` and ``end`` (lists of float, seconds of each
        window within the features' audio), ``genre`` (list of str) and
        ``probability`` (list of float, of that genre), one entry per window.
    """
    from genreclf.windows import as_clips, clip_widths, window_index

    paths = [str(os.fspath(p)) for p in paths]
    if not paths:
        return []
    ensemble = pipeline.steps[-1][1]
    classes = [str(c) for c in ensemble.classes_]
    with _feature_cache(pipeline, memory) as step:
        # features of a cache folder may be read from it: use them inside
        X = as_clips(pipeline[:-1].transform(np.asarray(paths, dtype=object)))
        widths = clip_widths(X)
        first = ensemble.estimators_[0]
        window, hop = int(first.window_), int(first.hop_)
        clip_ids, starts, _ = window_index(widths, window, hop)
        total = _window_votes(ensemble, X, clip_ids, starts, window, batch_size)
    seconds = step.hop_length / step.sr
    strips = []
    for i in range(len(paths)):
        mine = clip_ids == i
        begin = starts[mine] * seconds
        end = np.minimum(starts[mine] + window, max(int(widths[i]), 1)) * seconds
        best = total[mine].argmax(axis=1)
        strips.append(
            {
                "start": [round(float(t), 3) for t in begin],
                "end": [round(float(t), 3) for t in end],
                "genre": [classes[int(j)] for j in best],
                "probability": [
                    float(p[j]) for p, j in zip(total[mine], best, strict=True)
                ],
            }
        )
    return strips


def _window_votes(ensemble, X, clip_ids, starts, window, batch_size):
    """Soft vote of the (temperature-scaled) members on each window."""
    from genreclf.calibration import apply_temperature
    from genreclf.windows import read_windows

    temperature = float(ensemble.clip_temperatures(np.ones(1))[0])  # one window
    total = np.zeros((len(clip_ids), len(ensemble.classes_)))
    for member in ensemble.estimators_:
        for lo in range(0, len(clip_ids), batch_size):
            part = slice(lo, lo + batch_size)
            batch = read_windows(X, clip_ids[part], starts[part], window)
            proba = np.asarray(member.predict_proba(batch), dtype=np.float64)
            if temperature != 1.0:
                proba = apply_temperature(proba, temperature)
            total[part] += proba
    return total / len(ensemble.estimators_)


def predict_frame(pipeline, paths):
    """Predict genres and class probabilities for audio files, as a DataFrame.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted genreclf pipeline (``predict_proba`` and ``classes_``).
    paths : list of str
        Audio file paths.

    Returns
    -------
    frame : DataFrame
        One row per path: column ``genre`` (the predicted genre name), then one
        float column per class with its probability.

    Raises
    ------
    genreclf.exceptions.FeatureExtractionError
        When files cannot be read.
    """
    return predict_table(pipeline, paths, on_error="raise").frame()


def format_predictions(table, fmt="text", top_k=3):
    """Write a prediction table as text, JSON or CSV.

    Parameters
    ----------
    table : PredictionTable
        The predictions.
    fmt : {"text", "json", "csv"}, default="text"
        "text": aligned columns ``path``, ``genre``, ``top-<k>`` (each of the
        top genres with its probability, two decimals). "json": a list of
        :meth:`PredictionTable.rows`. "csv": columns ``path``, ``genre``,
        ``genre_<i>``, ``probability_<i>`` (four decimals).
    top_k : int, default=3
        Genres listed per file (at most the number of classes).

    Returns
    -------
    text : str
        Ending with a newline.

    Raises
    ------
    ValueError
        If ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(
            f"The 'fmt' parameter of format_predictions must be a str among "
            f"{set(FORMATS)}. Got {fmt!r} instead."
        )
    top_k = min(int(top_k), len(table.classes))
    rows = table.rows(top_k)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        import csv

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        header = ["path", "genre"]
        for k in range(1, top_k + 1):
            header += [f"genre_{k}", f"probability_{k}"]
        writer.writerow(header)
        for row in rows:
            cells = [row["path"], row["genre"]]
            for t in row["top"]:
                cells += [t["genre"], f"{t['probability']:.4f}"]
            writer.writerow(cells)
        return out.getvalue()
    width = max([4] + [len(r["path"]) for r in rows])
    gwidth = max([5] + [len(r["genre"]) for r in rows])
    lines = [f"{'path':<{width}}  {'genre':<{gwidth}}  top-{top_k}"]
    for row in rows:
        top = ", ".join(f"{t['genre']} {t['probability']:.2f}" for t in row["top"])
        lines.append(f"{row['path']:<{width}}  {row['genre']:<{gwidth}}  {top}")
    return "\n".join(lines) + "\n"


def format_bad_files(bad):
    """Say in one line which files could not be read, and why.

    Parameters
    ----------
    bad : dict of str to str
        File -> reason (:attr:`PredictionTable.bad`).

    Returns
    -------
    text : str
        ``"<n> file(s) could not be read: <path> (<reason>); ..."``.
    """
    listing = "; ".join(f"{p} ({r})" for p, r in bad.items())
    return f"{len(bad)} file(s) could not be read: {listing}"
