"""Rows of a prediction request: file paths or the audio itself, one answer each.

A request (to the served MLflow model or to ``genreclf serve``) is a table
whose rows each name one clip: a ``path`` on the server's disk, or the
``audio`` bytes themselves (base64 text in JSON, as MLflow encodes binary
columns) with an optional ``filename`` whose extension hints at the format. A
plain list is a list of paths. :func:`predict_rows` answers every row: its
genre and probabilities, or the reason it could not be predicted, so one bad
row never costs the others their answer.

Limits are checked before anything is decoded: the bytes of each clip
(``max_bytes``) and the duration its header declares (``max_duration``).

Examples
--------
>>> rows = rows_from_input(["a.wav", "b.mp3"])
>>> [r.path for r in rows]
['a.wav', 'b.mp3']
>>> import pandas as pd
>>> frame = pd.DataFrame({"audio": ["UklGRg=="], "filename": ["x.wav"]})
>>> row = rows_from_input(frame)[0]
>>> row.audio, row.filename
(b'RIFF', 'x.wav')
"""

import base64
import binascii
import dataclasses
import os
import re
import tempfile

import numpy as np

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DURATION",
    "Limits",
    "RequestRow",
    "RowPredictions",
    "predict_rows",
    "rows_from_input",
]

#: Default bound on the bytes of one clip, and on a request body (50 MiB).
DEFAULT_MAX_BYTES = 50 * 2**20
#: Default bound on the duration of one clip, in seconds (an hour).
DEFAULT_MAX_DURATION = 3600.0
#: Environment variables that set :class:`Limits` for a served MLflow model.
ENV_MAX_BYTES = "GENRECLF_MAX_BYTES"
ENV_MAX_DURATION = "GENRECLF_MAX_DURATION"

_COLUMNS = ("path", "audio", "filename")
# First bytes of the formats the loader reads -> the extension it expects.
_SIGNATURES = (
    (b"RIFF", ".wav"),
    (b"fLaC", ".flac"),
    (b"OggS", ".ogg"),
    (b"ID3", ".mp3"),
    (b"FORM", ".aiff"),
)
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,5}$")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask the server to decode.

    Parameters
    ----------
    max_bytes : int, default=DEFAULT_MAX_BYTES
        Bytes of one clip (and, for ``genreclf serve``, of the request body).
    max_duration : float, default=DEFAULT_MAX_DURATION
        Seconds of one clip, as its header declares them.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_duration: float = DEFAULT_MAX_DURATION

    @classmethod
    def from_env(cls, environ=None):
        """Limits from ``GENRECLF_MAX_BYTES`` and ``GENRECLF_MAX_DURATION``.

        Parameters
        ----------
        environ : mapping, optional
            Default: ``os.environ``.

        Returns
        -------
        limits : Limits
            The defaults where a variable is unset or empty.

        Raises
        ------
        ValueError
            If a variable is not a positive number.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for field, name, kind in (
            ("max_bytes", ENV_MAX_BYTES, int),
            ("max_duration", ENV_MAX_DURATION, float),
        ):
            text = environ.get(name, "").strip()
            if not text:
                continue
            try:
                value = kind(float(text)) if kind is int else kind(text)
            except ValueError:
                value = 0
            if value <= 0:
                raise ValueError(f"{name} must be a positive number, got {text!r}")
            values[field] = value
        return cls(**values)


@dataclasses.dataclass
class RequestRow:
    """One clip of a request: a path, or audio bytes (then maybe a file name).

    Parameters
    ----------
    path : str or None
        A file on the server's disk.
    audio : bytes or None
        The encoded audio itself.
    filename : str or None
        The audio's original name (its extension hints at the format).
    error : str or None
        Why the row is unusable as given (e.g. invalid base64).
    """

    path: str | None = None
    audio: bytes | None = None
    filename: str | None = None
    error: str | None = None

    @property
    def label(self):
        """str: How messages name this row's clip (file name or path)."""
        return self.filename or self.path or ""


def _missing(value):
    if value is None:
        return True
    try:
        return bool(np.all(value != value))  # NaN from a table's empty cell
    except (TypeError, ValueError):
        return False


def _as_bytes(value):
    """Bytes of an ``audio`` cell: bytes as they are, text as base64."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), None
    if isinstance(value, str):
        text = "".join(value.split())
        try:
            return base64.b64decode(text, validate=True), None
        except (binascii.Error, ValueError):
            return None, "audio is neither bytes nor valid base64 text"
    return None, f"audio must be bytes or base64 text, got {type(value).__name__}"


def _row(path=None, audio=None, filename=None):
    row = RequestRow(
        path=None if _missing(path) else str(path),
        filename=None if _missing(filename) else str(filename),
    )
    if not _missing(audio):
        row.audio, row.error = _as_bytes(audio)
    if row.error is None:
        if row.audio is not None and row.path is not None:
            row.error = "give a path or audio, not both"
        elif row.audio is None and row.path is None:
            row.error = "no path and no audio"
    return row


def rows_from_input(model_input):
    """Read a request's rows: paths, audio bytes or both kinds mixed.

    Parameters
    ----------
    model_input : DataFrame, dict, list, ndarray, Series or str
        A table with a ``path`` and/or an ``audio`` column (and optionally
        ``filename``), or with one column of paths; a dict of such columns; a
        list of such records (dicts); a list, array or Series of paths; one
        path.

    Returns
    -------
    rows : list of RequestRow
        In input order; a row that cannot be used has its ``error`` set.

    Raises
    ------
    ValueError
        If a table has several columns and none is ``path`` or ``audio``.
    """
    import pandas as pd

    if isinstance(model_input, str):
        return [_row(path=model_input)]
    if isinstance(model_input, dict):
        model_input = pd.DataFrame(
            {
                k: list(np.ravel(np.asarray(v, dtype=object)))
                for k, v in model_input.items()
            }
        )
    elif isinstance(model_input, list) and model_input and all(
        isinstance(r, dict) for r in model_input
    ):
        model_input = pd.DataFrame.from_records(model_input)
    if isinstance(model_input, pd.DataFrame):
        columns = [c for c in _COLUMNS if c in model_input.columns]
        if not {"path", "audio"} & set(columns):
            if model_input.shape[1] != 1:
                raise ValueError(
                    "expected a 'path' column of audio file paths or an 'audio' "
                    "column of audio bytes (base64 in JSON), with an optional "
                    f"'filename' column; got columns {list(model_input.columns)}"
                )
            return [_row(path=p) for p in model_input.iloc[:, 0].tolist()]
        cells = {c: model_input[c].tolist() for c in columns}
        return [
            _row(**{c: cells[c][i] for c in columns}) for i in range(len(model_input))
        ]
    return [_row(path=p) for p in np.ravel(np.asarray(model_input, dtype=object))]


def _suffix(row):
    """The extension the clip's file gets: its name's, else its content's."""
    ext = os.path.splitext(row.filename or "")[1].lower()
    if _SUFFIX.match(ext):
        return ext
    head = row.audio[:12]
    for magic, found in _SIGNATURES:
        if head.startswith(magic):
            return found
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return ".mp3"  # an MPEG audio frame header
    return ".audio"


def _declared_duration(path):
    """Seconds a file's header declares, or None when it does not say."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception:  # not readable by libsndfile: the decoder will say why
        return None
    if not info.samplerate or info.frames <= 0:
        return None
    return info.frames / info.samplerate


def _admit(row, index, folder, limits):
    """Return ``(file, None)`` for a usable row, else ``(None, reason)``."""
    if row.error:
        return None, row.error
    if row.audio is not None:
        size = len(row.audio)
        if not size:
            return None, "empty audio (0 bytes)"
        if size > limits.max_bytes:
            return None, (
                f"audio of {size} bytes is over the limit of {limits.max_bytes} "
                "bytes (not decoded)"
            )
        path = os.path.join(folder, f"row{index}{_suffix(row)}")
        with open(path, "wb") as f:
            f.write(row.audio)
    else:
        path = row.path
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0  # the feature step says what is wrong with it
        if size > limits.max_bytes:
            return None, (
                f"file of {size} bytes is over the limit of {limits.max_bytes} "
                "bytes (not decoded)"
            )
    seconds = _declared_duration(path)
    if seconds is not None and seconds > limits.max_duration:
        return None, (
            f"clip of {seconds:.1f} s is over the limit of "
            f"{limits.max_duration:g} s (not decoded)"
        )
    return path, None


@dataclasses.dataclass
class RowPredictions:
    """The answer to every row of a request.

    Parameters
    ----------
    classes : list of str
        The genres the model knows.
    labels : list of str
        How each row's clip is named (file name or path).
    proba : list of ndarray of shape (n_classes,) or None
        Probabilities of each row, None where it failed.
    errors : dict of int to str
        Row index -> why it has no prediction.
    windows : list of dict or None, default=None
        Per row, the genre of each window over time (see
        :func:`genreclf.prediction.predict_windows`), when asked for.
    """

    classes: list
    labels: list
    proba: list
    errors: dict
    windows: list | None = None

    def message(self):
        """One line naming each failed row and the reason, or ``""``."""
        return "; ".join(
            f"row {i}: {self.labels[i]}: {reason}" if self.labels[i] else
            f"row {i}: {reason}"
            for i, reason in sorted(self.errors.items())
        )

    def records(self, top_k=0):
        """One dict per row: ``genre`` and a probability per genre, or ``error``.

        Parameters
        ----------
        top_k : int, default=0
            Also ``genre_<i>`` and ``probability_<i>`` for the ``top_k`` most
            probable genres.

        Returns
        -------
        records : list of dict
            A failed row has ``genre`` None and its ``error``; with
            :attr:`windows`, each row also has ``windows``.
        """
        top_k = min(int(top_k), len(self.classes))
        out = []
        for i, p in enumerate(self.proba):
            if p is None:
                record = {"genre": None, "error": self.errors[i]}
            else:
                order = np.argsort(-p, kind="stable")
                record = {"genre": self.classes[int(order[0])]}
                record.update({c: float(v) for c, v in zip(self.classes, p)})
                for k, j in enumerate(order[:top_k], start=1):
                    record[f"genre_{k}"] = self.classes[int(j)]
                    record[f"probability_{k}"] = float(p[j])
            if self.windows is not None:
                record["windows"] = self.windows[i]
            out.append(record)
        return out

    def frame(self, top_k=0):
        """The records as a DataFrame (column ``error`` only when a row failed).

        Parameters
        ----------
        top_k : int, default=0
            As for :meth:`records`.

        Returns
        -------
        frame : pandas.DataFrame
            Columns ``genre``, one probability per genre, the top-k columns,
            then ``error`` where rows failed.
        """
        import pandas as pd

        top_k = min(int(top_k), len(self.classes))
        columns = ["genre", *self.classes]
        for k in range(1, top_k + 1):
            columns += [f"genre_{k}", f"probability_{k}"]
        if self.errors:
            columns.append("error")
        records = self.records(top_k)
        for r in records:
            r.pop("windows", None)
        return pd.DataFrame.from_records(records, columns=columns)


def predict_rows(pipeline, model_input, *, limits=None, windows=False, memory=None):
    """Predict every row of a request; a bad row gets its reason, not a crash.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted genreclf pipeline.
    model_input : DataFrame, dict, list, ndarray, Series or str
        See :func:`rows_from_input`.
    limits : Limits, optional
        Default: :meth:`Limits.from_env`.
    windows : bool, default=False
        Also predict the genre of each window over the clip's time.
    memory : str or path-like, optional
        MFCC cache folder; default: a temporary one for this call.

    Returns
    -------
    predictions : RowPredictions

    Raises
    ------
    ValueError
        If the input is not a request of paths or audio (see
        :func:`rows_from_input`).
    """
    from genreclf.prediction import predict_table, predict_windows

    limits = Limits.from_env() if limits is None else limits
    rows = rows_from_input(model_input)
    classes = [str(c) for c in pipeline.classes_]
    labels = [r.label for r in rows]
    errors, files = {}, {}
    with tempfile.TemporaryDirectory(prefix="genreclf-request-") as folder:
        cache = memory if memory is not None else os.path.join(folder, "cache")
        for i, row in enumerate(rows):
            path, reason = _admit(row, i, folder, limits)
            if reason is None:
                files[i] = path
            else:
                errors[i] = reason
        paths = list(dict.fromkeys(files.values()))
        table = predict_table(pipeline, paths, memory=cache)
        found = dict(zip(table.paths, table.proba, strict=True))
        per_window = {}
        if windows and table.paths:
            per_window = dict(
                zip(table.paths, predict_windows(pipeline, table.paths, memory=cache))
            )
    proba, strips = [], []
    for i in range(len(rows)):
        path = files.get(i)
        if path is not None and path in table.bad:
            errors[i] = table.bad[path]
        proba.append(found.get(path) if i not in errors else None)
        strips.append(per_window.get(path) if i not in errors else None)
    return RowPredictions(
        classes=classes,
        labels=labels,
        proba=proba,
        errors=errors,
        windows=strips if windows else None,
    )
