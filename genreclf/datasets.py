"""Datasets: audio file paths and their genre labels, as ``(paths, y)``.

Every loader returns two 1-D arrays of the same length: ``paths`` (absolute
file paths, ``str``) and ``y`` (genre names, ``str``), sorted the same way on
every call, ready for ``pipeline.fit(paths, y)``.

- :func:`load_fma`: the Free Music Archive (``fma_small`` ... ``fma_full``) as
  it is downloaded (see :func:`genreclf.download.download_fma`).
- :func:`load_folder`: a folder per genre, the flat GTZAN naming
  ``<genre>.000NN.wav``, or a ``labels.csv`` next to the files.

The generated demo dataset, :func:`make_synthetic`, lives in
:mod:`genreclf.synthetic`, and the bad-file screen, :func:`check_files`, in
:mod:`genreclf.features`; both stay importable from here.
"""

import csv
import os
import re
import warnings

import numpy as np

from genreclf._fma import COLUMNS as _FMA_COLUMNS  # noqa: F401 - kept importable here
from genreclf._fma import SPLITS as _FMA_SPLITS
from genreclf._fma import SUBSETS as _FMA_SUBSETS
from genreclf._fma import read_tracks as _read_fma_tracks
from genreclf._fma import track_path as _fma_path
from genreclf.exceptions import DatasetWarning

__all__ = [
    "AUDIO_EXTENSIONS",
    "GENRES",
    "GTZAN_GENRES",
    "KNOWN_BAD_FMA_TRACKS",
    "SYNTHETIC_GENRES",
    "DatasetWarning",
    "check_files",
    "load_fma",
    "load_folder",
    "make_synthetic",
]

#: The eight top-level genres of ``fma_small`` (balanced, 1,000 tracks each).
GENRES = [
    "Electronic",
    "Experimental",
    "Folk",
    "Hip-Hop",
    "Instrumental",
    "International",
    "Pop",
    "Rock",
]

#: The ten genres of GTZAN (Tzanetakis and Cook, 2002).
GTZAN_GENRES = [
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
]

#: File extensions that :func:`load_folder` treats as audio (lower case).
AUDIO_EXTENSIONS = (".wav", ".mp3", ".ogg", ".flac", ".au", ".aif", ".aiff")

#: FMA tracks known to be unusable, with the reason (``track_id -> reason``).
#: From the FMA maintainers (github.com/mdeff/fma issues 8, 41 and 44 and the
#: project wiki): three ``fma_small`` tracks have no audio at all and three
#: hold far less than 30 s. They belong to every larger subset too.
KNOWN_BAD_FMA_TRACKS = {
    99134: "known bad: no audio in the FMA release",
    108925: "known bad: no audio in the FMA release",
    133297: "known bad: no audio in the FMA release",
    98565: "known bad: far shorter than 30 s",
    98567: "known bad: far shorter than 30 s",
    98569: "known bad: far shorter than 30 s",
}

_MAX_LISTED = 20


def _as_1d(values):
    """Return a 1-D object array of ``str``."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = [str(v) for v in values]
    return arr


def _summary(items, what):
    """One line naming at most ``_MAX_LISTED`` items."""
    items = list(items)
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    if more > 0:
        shown += f" ... and {more} more"
    return f"{len(items)} {what}: {shown}"


def _check_option(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)!r}, got {value!r}")


# --------------------------------------------------------------------------- FMA


def load_fma(
    root,
    subset="small",
    split=None,
    *,
    exclude_known_bad=True,
    on_missing="warn",
    return_excluded=False,
):
    """Load the Free Music Archive (FMA) dataset as file paths and genres.

    Reads the layout in which FMA is downloaded and unpacked
    (:func:`genreclf.download.download_fma` leaves exactly this)::

        root/fma_metadata/tracks.csv
        root/fma_<subset>/<first 3 digits>/<6-digit track id>.mp3

    The label is the column ``('track', 'genre_top')`` of ``tracks.csv``
    (a two-level column header), the subset ``('set', 'subset')`` and the
    official split ``('set', 'split')``.

    Parameters
    ----------
    root : str or path-like
        Folder holding ``fma_metadata/`` and ``fma_<subset>/``.
    subset : {"small", "medium", "large", "full"}, default="small"
        Subsets are nested, ``small < medium < large``: "medium" includes the
        "small" tracks. "full" is every track of ``tracks.csv``, read from
        ``fma_full/`` (untrimmed audio).
    split : {"training", "validation", "test"}, sequence of them or None, \
default=None
        The official split(s) to return; None returns every split.
    exclude_known_bad : bool, default=True
        Leave out the tracks in :data:`KNOWN_BAD_FMA_TRACKS` (no audio, or far
        shorter than 30 s).
    on_missing : {"warn", "raise"}, default="warn"
        What to do when the audio file of a track is absent: "warn" leaves it
        out and names it in a :class:`DatasetWarning`; "raise" raises
        ``FileNotFoundError`` listing every missing file.
    return_excluded : bool, default=False
        Also return the dictionary of excluded files.

    Returns
    -------
    paths : ndarray of shape (n_tracks,), dtype=object
        Absolute paths of the mp3 files (``str``), sorted by track id.
    y : ndarray of shape (n_tracks,), dtype=object
        ``genre_top`` of each track (``str``), e.g. ``"Hip-Hop"``.
    excluded : dict of str to str
        Only when ``return_excluded=True``: ``{path: reason}`` for every track
        of the requested subset and split that was left out (known bad,
        missing audio file, or, in ``large``/``full``, no ``genre_top``).

    Raises
    ------
    FileNotFoundError
        ``tracks.csv`` or the audio folder is absent, or, with
        ``on_missing="raise"``, audio files are missing.
    ValueError
        ``tracks.csv`` lacks the expected columns, or an option is invalid.

    Warns
    -----
    DatasetWarning
        When tracks were left out: the known-bad ones, files that are missing
        (named), and the number of unlabelled tracks.

    See Also
    --------
    genreclf.download.download_fma : Fetch and unpack the archives.
    load_folder : Audio in a folder per genre.

    Notes
    -----
    Tracks with no ``genre_top`` (about half of ``fma_large``; none in
    ``fma_small`` and ``fma_medium``) carry no single label and are left out.

    Examples
    --------
    >>> from genreclf.datasets import load_fma
    >>> X_train, y_train = load_fma("data/fma", split="training")  # doctest: +SKIP
    >>> X_test, y_test = load_fma("data/fma", split="test")  # doctest: +SKIP
    """
    _check_option("subset", subset, _FMA_SUBSETS)
    _check_option("on_missing", on_missing, ("warn", "raise"))
    if split is None:
        splits = None
    else:
        splits = [split] if isinstance(split, str) else list(split)
        for s in splits:
            _check_option("split", s, _FMA_SPLITS)

    root = os.path.abspath(os.fspath(root))
    tracks_csv = os.path.join(root, "fma_metadata", "tracks.csv")
    if not os.path.isfile(tracks_csv):
        raise FileNotFoundError(
            f"{tracks_csv}: FMA metadata not found (expected "
            "<root>/fma_metadata/tracks.csv; get it with "
            f"`genreclf download fma --subset {subset} --dest {root}`)"
        )
    audio_dir = os.path.join(root, f"fma_{subset}")
    if not os.path.isdir(audio_dir):
        raise FileNotFoundError(
            f"{audio_dir}: FMA audio folder not found (expected "
            f"<root>/fma_{subset}/<3 digits>/<6 digits>.mp3; get it with "
            f"`genreclf download fma --subset {subset} --dest {root}`)"
        )

    table = _read_fma_tracks(tracks_csv)
    if subset != "full":
        rank = table["subset"].map(_FMA_SUBSETS)
        table = table[rank.notna() & (rank <= _FMA_SUBSETS[subset])]
    if splits is not None:
        table = table[table["split"].isin(splits)]

    excluded = {}
    known_bad, missing, unlabelled = [], [], []
    paths, y = [], []
    for track_id, genre in zip(table.index, table["genre_top"], strict=True):
        path = _fma_path(audio_dir, track_id)
        if exclude_known_bad and int(track_id) in KNOWN_BAD_FMA_TRACKS:
            excluded[path] = KNOWN_BAD_FMA_TRACKS[int(track_id)]
            known_bad.append(f"{int(track_id):06d}")
        elif not isinstance(genre, str) or not genre:
            excluded[path] = "no genre_top label in tracks.csv"
            unlabelled.append(path)
        elif not os.path.isfile(path):
            excluded[path] = "missing: audio file not found"
            missing.append(path)
        else:
            paths.append(path)
            y.append(genre)

    if missing and on_missing == "raise":
        raise FileNotFoundError(
            f"{audio_dir}: "
            + _summary(missing, "audio files listed in tracks.csv are missing")
        )
    parts = []
    if known_bad:
        parts.append(_summary(known_bad, "known-bad tracks excluded"))
    if missing:
        parts.append(_summary(missing, "audio files missing, left out"))
    if unlabelled:
        parts.append(f"{len(unlabelled)} tracks without genre_top left out")
    if parts:
        warnings.warn(
            f"load_fma({root!r}, subset={subset!r}): "
            + "; ".join(parts)
            + " (return_excluded=True returns them all with the reason)",
            DatasetWarning,
            stacklevel=2,
        )
    result = (_as_1d(paths), _as_1d(y))
    return result + (excluded,) if return_excluded else result


# ------------------------------------------------------------------ any folder

_GTZAN_NAME = re.compile(r"^(?P<genre>.+?)\.(?P<number>\d+)\.[^.]+$")
_PATH_COLUMNS = ("path", "file", "filename", "fname", "file_name")
_LABEL_COLUMNS = ("genre", "label", "genre_top", "style", "class", "target")


def _is_audio(name):
    return not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS)


def _labels_from_csv(root, csv_path, on_missing, explicit):
    """Read ``(relative path, label)`` pairs from a labels file, or None."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    path_col = next((header.index(c) for c in _PATH_COLUMNS if c in header), None)
    label_col = next((header.index(c) for c in _LABEL_COLUMNS if c in header), None)
    if path_col is None or label_col is None:
        message = (
            f"{csv_path}: needs a path column ({'/'.join(_PATH_COLUMNS)}) and a "
            f"label column ({'/'.join(_LABEL_COLUMNS)}); "
            f"found {rows[0] if rows else []}"
        )
        if explicit:
            raise ValueError(message)
        warnings.warn(message + "; ignored", DatasetWarning, stacklevel=3)
        return None
    pairs, missing = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            rel, label = row[path_col].strip(), row[label_col].strip()
        except IndexError:
            raise ValueError(f"{csv_path}, line {line}: too few columns") from None
        if not rel or not label:
            raise ValueError(f"{csv_path}, line {line}: empty path or label")
        path = os.path.join(root, rel)
        if os.path.isfile(path):
            pairs.append((path, label))
        else:
            missing.append(path)
    if missing:
        text = _summary(missing, f"files listed in {csv_path} are missing")
        if on_missing == "raise":
            raise FileNotFoundError(text)
        warnings.warn(text + "; left out", DatasetWarning, stacklevel=3)
    return pairs


def load_folder(root, *, labels="auto", on_missing="warn"):
    """Load a folder of audio files labelled by their layout.

    The labels come from the first of these that applies:

    1. a labels file: ``root/labels.csv`` (when ``labels="auto"``) or the
       file passed as ``labels``, with a path column (``path``, ``file``,
       ``filename``) relative to ``root`` and a label column (``genre``,
       ``label``, ``genre_top``, ``style``, ``class``);
    2. a folder per genre: ``root/<genre>/**/*.wav`` (any depth below the
       genre folder);
    3. the flat GTZAN naming ``root/<genre>.<number>.<ext>``, e.g.
       ``blues.00042.wav``.

    Audio files are those ending in :data:`AUDIO_EXTENSIONS` (wav, mp3, ogg,
    flac, au, aiff); names starting with ``.`` are skipped.

    Parameters
    ----------
    root : str or path-like
        The folder.
    labels : "auto", str, path-like or None, default="auto"
        "auto" uses ``root/labels.csv`` when it exists (a file without the
        columns above is ignored with a warning); a path names the labels
        file (an error if its columns are not found); None ignores any
        labels file.
    on_missing : {"warn", "raise"}, default="warn"
        Files listed in the labels file but absent: "warn" leaves them out and
        names them in a :class:`DatasetWarning`; "raise" raises
        ``FileNotFoundError``.

    Returns
    -------
    paths : ndarray of shape (n_files,), dtype=object
        Absolute file paths (``str``), sorted.
    y : ndarray of shape (n_files,), dtype=object
        The genre of each file (``str``).

    Raises
    ------
    FileNotFoundError
        ``root`` is not a folder.
    ValueError
        No audio file found, or files in a flat folder whose names carry no
        genre (all are named in the message).

    See Also
    --------
    load_fma : The Free Music Archive with its official metadata.
    genreclf.synthetic.make_synthetic : Generate a small labelled folder.

    Examples
    --------
    >>> import tempfile
    >>> from genreclf.datasets import load_folder, make_synthetic
    >>> folder = tempfile.mkdtemp()
    >>> _ = make_synthetic(folder, n_per_genre=2, duration=0.2, random_state=0)
    >>> paths, y = load_folder(folder)
    >>> paths.shape, sorted(set(y))[:3]
    ((16,), ['ambient', 'chiptune', 'folk'])
    """
    _check_option("on_missing", on_missing, ("warn", "raise"))
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: not a folder")

    pairs = None
    if labels is not None:
        explicit = labels != "auto"
        csv_path = os.fspath(labels) if explicit else os.path.join(root, "labels.csv")
        if explicit and not os.path.isfile(csv_path):
            raise FileNotFoundError(f"{csv_path}: labels file not found")
        if os.path.isfile(csv_path):
            pairs = _labels_from_csv(root, csv_path, on_missing, explicit)

    if pairs is None:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
        genre_dirs = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
        pairs = []
        for d in genre_dirs:
            for dirpath, dirnames, filenames in os.walk(d.path):
                dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
                pairs += [
                    (os.path.join(dirpath, n), d.name)
                    for n in filenames
                    if _is_audio(n)
                ]
        files = [e.name for e in entries if e.is_file() and _is_audio(e.name)]
        if pairs and files:
            warnings.warn(
                f"{root}: "
                + _summary(files, "audio files outside the genre folders are ignored"),
                DatasetWarning,
                stacklevel=2,
            )
        if not pairs:
            unnamed = [n for n in files if not _GTZAN_NAME.match(n)]
            if unnamed:
                raise ValueError(
                    f"{root}: "
                    + _summary(
                        unnamed,
                        "files carry no genre (expected a folder per genre, "
                        "<genre>.<number>.<ext> names, or a labels.csv)",
                    )
                )
            pairs = [
                (os.path.join(root, n), _GTZAN_NAME.match(n)["genre"]) for n in files
            ]
    if not pairs:
        raise ValueError(
            f"{root}: no audio files found (extensions {', '.join(AUDIO_EXTENSIONS)})"
        )
    pairs.sort()
    return _as_1d([p for p, _ in pairs]), _as_1d([g for _, g in pairs])


# Imported on first use: genreclf.synthetic imports this module, and
# genreclf.features (scikit-learn) is not needed to list files.
_ELSEWHERE = {
    "SYNTHETIC_GENRES": "genreclf.synthetic",
    "make_synthetic": "genreclf.synthetic",
    "check_files": "genreclf.features",
}


def __getattr__(name):
    try:
        module = _ELSEWHERE[name]
    except KeyError:
        raise AttributeError(
            f"module 'genreclf.datasets' has no attribute {name!r}"
        ) from None
    from importlib import import_module

    return getattr(import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
