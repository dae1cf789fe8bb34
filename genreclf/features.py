"""MFCC features from audio files: a cached scikit-learn transformer.

:class:`MFCCTransformer` turns a 1-D array of file paths into MFCC images of one
width, ``(n_clips, 1, n_mfcc, n_frames)`` float32, decoding each clip once and
caching the result on disk. :class:`MFCCStandardizer` scales every coefficient
to zero mean and unit variance. :func:`find_bad_files` lists the clips that
cannot be decoded, so that a dataset can be checked (and cached) before any
training.
"""

import hashlib
import json
import math
import os
import tempfile
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from genreclf import _mfcc
from genreclf._mfcc import compute_mfcc
from genreclf.audio import DEFAULT_SR, AudioLoadError

__all__ = [
    "DEFAULT_DURATION",
    "FeatureExtractionError",
    "MFCCStandardizer",
    "MFCCTransformer",
    "compute_mfcc",
    "find_bad_files",
]

#: Clip length in seconds: 629748 samples at 22050 Hz, 1230 frames at hop 512
#: (the reference study used 1231 frames of about 28.5 s).
DEFAULT_DURATION = 28.56

_CACHE_ROOT = "genreclf-mfcc"
_OUTPUT_PARAMS = (
    "sr",
    "n_mfcc",
    "n_fft",
    "hop_length",
    "n_mels",
    "duration",
    "offset",
    "pad",
    "loudness",
)
#: ``MFCCTransformer(loudness=...)``: None keeps each recording's level;
#: ``"rms"`` scales every clip to the same RMS level first.
LOUDNESS_MODES = (None, "rms")
#: How a clip shorter than ``duration`` is filled: with silence, or with
#: itself repeated (see ``MFCCTransformer(pad=...)``).
PAD_MODES = ("zeros", "wrap")
_BATCH = 8  # clips per worker task: few round trips, results still stream


class FeatureExtractionError(AudioLoadError):
    """One or more clips could not be decoded; lists every bad file.

    Parameters
    ----------
    failures : dict of str to str
        Path of every bad file -> the reason it failed.
    n_files : int or None, default=None
        Number of distinct files that were asked for, for the message.

    Attributes
    ----------
    failures : dict of str to str
        Path of every bad file -> the reason it failed.
    path : str
        The first bad file.
    reason : str
        The first bad file's reason.

    Examples
    --------
    >>> err = FeatureExtractionError({"a.mp3": "empty file (0 bytes)"}, n_files=3)
    >>> print(err)
    1 of 3 audio files could not be read:
      a.mp3: empty file (0 bytes)
    >>> err.failures
    {'a.mp3': 'empty file (0 bytes)'}
    """

    def __init__(self, failures, n_files=None):
        self.failures = dict(failures)
        self.n_files = n_files
        first = next(iter(self.failures.items()), (None, "no failures"))
        self.path, self.reason = first
        total = "" if n_files is None else f" of {n_files}"
        lines = "\n".join(f"  {p}: {r}" for p, r in self.failures.items())
        ValueError.__init__(
            self,
            f"{len(self.failures)}{total} audio files could not be read:\n{lines}",
        )

    def __reduce__(self):
        return (type(self), (self.failures, self.n_files))


def _cache_location(memory):
    """Return the folder that ``memory`` (None, path or joblib.Memory) names."""
    if memory is None:
        return None
    if isinstance(memory, (str, os.PathLike)):
        return os.path.expanduser(os.fspath(memory))
    location = getattr(memory, "location", None)
    if location is None and hasattr(memory, "cachedir"):  # pragma: no cover
        location = memory.cachedir
    if location is None and not hasattr(memory, "cache"):
        raise TypeError(
            "memory must be None, a folder path or a joblib.Memory, "
            f"got {type(memory).__name__}"
        )
    return None if location is None else os.fspath(location)


def _paths_array(X):
    """Validate X as a 1-D sequence of paths; return a list of str."""
    if isinstance(X, (str, bytes, os.PathLike)):
        raise ValueError(
            "X must be a 1-D array-like of file paths, got a single path; "
            "wrap it in a list"
        )
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"X must be a 1-D array-like of file paths, got shape {arr.shape}"
        )
    paths = []
    for item in arr:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(
                "X must hold file paths (str or path-like), "
                f"got {type(item).__name__}: {item!r}"
            )
        paths.append(os.fspath(item))
    return paths


# --------------------------------------------------------------------------
# The transformer


class MFCCTransformer(TransformerMixin, BaseEstimator):
    """Audio file paths -> MFCC images of one width, cached on disk.

    Each clip is decoded with :func:`genreclf.audio.load_audio` (only the
    ``duration`` seconds from ``offset``), resampled to ``sr``, padded
    (``pad``) or cropped to ``duration`` and turned into MFCCs equal to
    ``librosa.feature.mfcc`` with the same parameters. With ``memory`` set,
    every clip's MFCCs are stored on disk, so that a second ``transform`` of
    the same files decodes nothing.

    Parameters
    ----------
    sr : int, default=22050
        Sampling rate the clips are resampled to.
    n_mfcc : int, default=20
        Number of MFCCs per frame.
    n_fft : int, default=2048
        FFT window length in samples.
    hop_length : int, default=512
        Samples between successive frames.
    n_mels : int, default=128
        Number of mel bands.
    duration : float, default=DEFAULT_DURATION
        Seconds every clip is padded or cropped to; the 28.56 s default
        gives 1230 frames at 22050 Hz and hop 512.
    offset : float, default=0.0
        Seconds skipped at the start of every clip.
    pad : {"zeros", "wrap"}, default="zeros"
        How a clip shorter than ``duration`` is filled: ``"zeros"`` appends
        silence (the reference study); ``"wrap"`` repeats the clip's audio
        until ``duration``, so that every frame is music: a 2 s clip then
        looks like 2 s of that music, not like 26 s of silence, to a net that
        votes over windows and to the per-coefficient scaling.
    loudness : {None, "rms"}, default=None
        None: features keep each recording's level (the reference study).
        ``"rms"``: every clip's audio (the part read, before padding) is
        scaled to the same RMS level (-20 dBFS) first, so the same music
        played louder or softer gives the same MFCCs (a gain moves only
        c0, and this removes it); silent clips are left as they are.
    memory : None, str, path-like or joblib.Memory, default=None
        Folder of the on-disk cache (a ``joblib.Memory`` gives its location).
        None disables caching.
    n_jobs : int or None, default=None
        Processes used to decode clips that are not cached (joblib semantics:
        None is 1 unless in a ``joblib.parallel_config`` context, -1 is all
        cores).
    verbose : int, default=0
        Show a progress bar over clips when > 0.

    Attributes
    ----------
    n_frames_ : int
        Width of the output (frames per clip), set by ``fit``.

    See Also
    --------
    MFCCStandardizer : Scales each coefficient to zero mean, unit variance.
    find_bad_files : Lists the files that cannot be decoded.
    genreclf.audio.load_audio : Decodes one file.

    Notes
    -----
    The cache lives in ``<memory>/genreclf-mfcc/v<version>-<hash>/``, where
    the hash covers every parameter that changes the output (``sr``,
    ``n_mfcc``, ``n_fft``, ``hop_length``, ``n_mels``, ``duration``,
    ``offset``, ``pad``, ``loudness``). An entry is keyed by the file's
    absolute path, size and modification time, so an edited file is decoded
    again. Entries are written to a temporary file and renamed, so processes
    can share one cache; each
    carries a checksum, and a damaged entry is reported with a warning and
    recomputed. A cache folder that cannot be created or written is reported
    with a warning and the features are computed without it.

    When some files cannot be decoded, the others are still extracted (and
    cached) and then one :class:`FeatureExtractionError` lists every bad file.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "tone.wav")
    >>> sf.write(path, np.sin(np.arange(22050) * 0.1), 22050)
    >>> mfcc = MFCCTransformer(duration=1.0, memory=os.path.join(folder, "cache"))
    >>> X = mfcc.fit_transform([path, path])
    >>> X.shape, X.dtype
    ((2, 1, 20, 44), dtype('float32'))
    >>> mfcc.n_frames_
    44
    """

    def __init__(
        self,
        sr=DEFAULT_SR,
        n_mfcc=20,
        n_fft=2048,
        hop_length=512,
        n_mels=128,
        duration=DEFAULT_DURATION,
        offset=0.0,
        pad="zeros",
        loudness=None,
        memory=None,
        n_jobs=None,
        verbose=0,
    ):
        self.sr = sr
        self.n_mfcc = n_mfcc
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.duration = duration
        self.offset = offset
        self.pad = pad
        self.loudness = loudness
        self.memory = memory
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- parameters --------------------------------------------------------

    def _params(self):
        """Validate and return the parameters that change the output."""
        for name in ("sr", "n_mfcc", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, low in (("duration", None), ("offset", 0.0)):
            value = getattr(self, name)
            ok = isinstance(value, Real) and not isinstance(value, bool)
            ok = (
                ok
                and math.isfinite(value)
                and (value > 0 if low is None else value >= 0)
            )
            if not ok:
                kind = "positive" if low is None else "non-negative"
                raise ValueError(f"{name} must be a {kind} number, got {value!r}")
        if self.n_mfcc > self.n_mels:
            raise ValueError(
                f"n_mfcc ({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})"
            )
        if self.pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {PAD_MODES}, got {self.pad!r}")
        if self.loudness not in LOUDNESS_MODES:
            raise ValueError(
                f"loudness must be one of {LOUDNESS_MODES}, got {self.loudness!r}"
            )
        optional = ("pad", "loudness")  # in the cache key only when not default
        params = {
            name: getattr(self, name) for name in _OUTPUT_PARAMS if name not in optional
        }
        params = {
            k: (float(v) if k in ("duration", "offset") else int(v))
            for k, v in params.items()
        }
        # Default values keep the cache folders that predate the options valid.
        if self.pad != "zeros":
            params["pad"] = self.pad
        if self.loudness is not None:
            params["loudness"] = self.loudness
        return params

    def n_frames(self):
        """Return the number of frames per clip for the current parameters.

        Returns
        -------
        n_frames : int
            ``1 + round(duration * sr) // hop_length``.
        """
        params = self._params()
        return 1 + int(round(params["duration"] * params["sr"])) // params["hop_length"]

    def _cache_dir(self, params):
        location = _cache_location(self.memory)
        if location is None:
            return None
        blob = json.dumps({"version": _mfcc.CACHE_VERSION, **params}, sort_keys=True)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        folder = os.path.join(location, _CACHE_ROOT, f"v{_mfcc.CACHE_VERSION}-{digest}")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            warnings.warn(
                f"MFCC cache folder {folder} cannot be created ({exc}); "
                "features are computed without a cache",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        info = os.path.join(folder, "params.json")
        if not os.path.exists(info):
            try:
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
                with os.fdopen(fd, "w") as fh:
                    fh.write(blob)
                os.replace(tmp, info)
            except OSError:
                pass  # only informative; a read-only cache is reported on write
        return folder

    # -- sklearn API -------------------------------------------------------

    def fit(self, X=None, y=None):
        """Check the parameters; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_clips,) of str or path-like, default=None
            Ignored (the files are not read).
        y : None
            Ignored.

        Returns
        -------
        self : MFCCTransformer
            This transformer, with ``n_frames_`` set.
        """
        self.n_frames_ = self.n_frames()
        return self

    def transform(self, X):
        """Decode every clip (or read it from the cache) and compute its MFCCs.

        Parameters
        ----------
        X : array-like of shape (n_clips,) of str or path-like
            Audio files.

        Returns
        -------
        X_mfcc : ndarray of shape (n_clips, 1, n_mfcc, n_frames), float32
            The MFCCs of every clip, in the order of ``X``.

        Raises
        ------
        FeatureExtractionError
            When any file cannot be decoded; its ``failures`` maps every bad
            file to its reason. The good files are extracted and cached first.
        """
        features, failures = self._extract(X)
        if failures:
            raise FeatureExtractionError(failures, n_files=len(set(_paths_array(X))))
        return features

    def _extract(self, X):
        """Return ``(features, failures)``; bad clips are left as zeros."""
        params = self._params()
        paths = _paths_array(X)
        n_frames = self.n_frames()
        shape = (params["n_mfcc"], n_frames)
        out = np.zeros((len(paths), 1, *shape), dtype=np.float32)
        positions = {}
        for i, path in enumerate(paths):
            positions.setdefault(path, []).append(i)
        folder = self._cache_dir(params) if positions else None

        todo = []  # (path, cache entry or None)
        for path, idx in positions.items():
            key = _mfcc.file_key(path) if folder is not None else None
            entry = None if key is None else os.path.join(folder, key + ".mfcc")
            cached = None if entry is None else self._read_entry(entry, path, shape)
            if cached is None:
                todo.append((path, entry))
            else:
                out[idx, 0] = cached

        failures = {}
        cache_problem = None
        bar = None
        if self.verbose and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="MFCC", unit="clip", leave=False)
        try:
            for path, (mfcc, error, problem) in self._run(todo, params):
                if error is not None:
                    failures[path] = error
                else:
                    out[positions[path], 0] = mfcc
                if problem is not None and cache_problem is None:
                    cache_problem = problem
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
        if cache_problem is not None:
            warnings.warn(
                f"MFCC cache folder {folder} is not writable ({cache_problem}); "
                "features are computed without a cache",
                RuntimeWarning,
                stacklevel=3,
            )
        return out, failures

    def _read_entry(self, entry, path, shape):
        try:
            with open(entry, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            warnings.warn(
                f"MFCC cache entry {entry} for {path} cannot be read ({exc}); "
                "recomputing it",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        try:
            return _mfcc.decode_entry(raw, shape)
        except ValueError as exc:
            warnings.warn(
                f"MFCC cache entry {entry} for {path} is damaged ({exc}); "
                "recomputing it",
                RuntimeWarning,
                stacklevel=4,
            )
            return None

    def _run(self, todo, params):
        """Yield ``(path, (mfcc, error, cache_problem))`` as clips finish."""
        from joblib import Parallel, delayed, effective_n_jobs

        n_jobs = min(effective_n_jobs(self.n_jobs), len(todo))
        size = max(1, min(_BATCH, len(todo) // max(1, 4 * n_jobs)))
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        if n_jobs <= 1:
            entries_ok = True
            for batch in batches:
                if not entries_ok:  # the cache is not writable: stop trying
                    batch = [(path, None) for path, _ in batch]
                results = _mfcc.extract_batch(batch, params)
                for (path, _), result in zip(batch, results, strict=True):
                    entries_ok = entries_ok and result[2] is None
                    yield path, result
            return
        outputs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_mfcc.extract_batch)(batch, params) for batch in batches
        )
        for batch, results in zip(batches, outputs, strict=True):
            yield from zip((path for path, _ in batch), results, strict=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags


def find_bad_files(paths, transformer=None):
    """List the audio files that cannot be decoded, and why.

    Every good file is extracted (and cached, when the transformer has a
    ``memory``), so a later ``fit`` on the same files decodes nothing.

    Parameters
    ----------
    paths : array-like of shape (n_clips,) of str or path-like
        Audio files.
    transformer : MFCCTransformer or None, default=None
        The transformer whose settings and cache to use; None uses the
        defaults (no cache).

    Returns
    -------
    failures : dict of str to str
        Path of every bad file -> the reason; empty when all files are good.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> empty = os.path.join(folder, "empty.wav")
    >>> open(empty, "wb").close()
    >>> find_bad_files([empty]) == {empty: "empty file (0 bytes)"}
    True
    """
    if transformer is None:
        transformer = MFCCTransformer()
    _, failures = transformer._extract(paths)
    return failures


# --------------------------------------------------------------------------
# Standardization


class MFCCStandardizer(TransformerMixin, BaseEstimator):
    """Scale every MFCC to zero mean and unit variance.

    On MFCC images ``(n_clips, 1, n_mfcc, n_frames)`` (any array of three or
    more dimensions whose next-to-last axis holds the coefficients), one mean
    and one standard deviation are learned per coefficient, over clips,
    channels and frames. On a 2-D array ``(n_samples, n_features)`` it is a
    per-feature standard scaler.

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract the mean.
    with_std : bool, default=True
        Divide by the standard deviation (1 where it is zero).

    Attributes
    ----------
    mean_ : ndarray of shape (n_coefficients,), float64
        Mean of every coefficient (zeros when ``with_mean=False``).
    scale_ : ndarray of shape (n_coefficients,), float64
        Standard deviation of every coefficient (ones when
        ``with_std=False``).
    n_features_in_ : int
        Size of the second axis of ``X`` in ``fit``.

    See Also
    --------
    MFCCTransformer : Makes the MFCC images.
    sklearn.preprocessing.StandardScaler : The 2-D equivalent.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(3.0, 2.0, (4, 1, 20, 50))
    >>> scaler = MFCCStandardizer().fit(X.astype(np.float32))
    >>> Xt = scaler.transform(X.astype(np.float32))
    >>> Xt.shape, Xt.dtype, scaler.mean_.shape
    ((4, 1, 20, 50), dtype('float32'), (20,))
    >>> bool(abs(Xt[:, :, 0].mean()) < 1e-6)
    True
    """

    def __init__(self, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    @staticmethod
    def _axes(X):
        """Axes reduced over, and the shape that broadcasts the statistics."""
        if X.ndim == 2:
            return (0,), (1, X.shape[1])
        if X.ndim < 2:  # pragma: no cover - validate_data rejects it
            raise ValueError(f"X must have 2 or more dimensions, got {X.ndim}")
        axes = tuple(i for i in range(X.ndim) if i != X.ndim - 2)
        shape = [1] * X.ndim
        shape[-2] = X.shape[-2]
        return axes, tuple(shape)

    def fit(self, X, y=None):
        """Learn the mean and standard deviation of every coefficient.

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames) or (n, n_features)
            Features.
        y : None
            Ignored.

        Returns
        -------
        self : MFCCStandardizer
            The fitted standardizer.
        """
        X = validate_data(self, X, allow_nd=True, dtype=[np.float64, np.float32])
        axes, _ = self._axes(X)
        self._ndim = X.ndim
        if self.with_mean:
            self.mean_ = X.mean(axis=axes, dtype=np.float64)
        else:
            self.mean_ = np.zeros(X.shape[-2 if X.ndim > 2 else 1])
        if self.with_std:
            scale = X.std(axis=axes, dtype=np.float64)
            tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(self.mean_))
            scale[scale < tiny] = 1.0
            self.scale_ = scale
        else:
            self.scale_ = np.ones_like(self.mean_)
        return self

    def _check(self, X):
        check_is_fitted(self)
        X = validate_data(
            self, X, allow_nd=True, dtype=[np.float64, np.float32], reset=False
        )
        if (X.ndim == 2) != (self._ndim == 2) or X.shape[-2 if X.ndim > 2 else 1] != (
            self.mean_.shape[0]
        ):
            raise ValueError(
                f"X has shape {X.shape}, but this standardizer was fitted on "
                f"{self._ndim}-D data with {self.mean_.shape[0]} coefficients"
            )
        _, shape = self._axes(X)
        mean = self.mean_.reshape(shape).astype(X.dtype)
        scale = self.scale_.reshape(shape).astype(X.dtype)
        return X, mean, scale

    def transform(self, X):
        """Standardize every coefficient.

        Parameters
        ----------
        X : array-like of the shape seen in ``fit``
            Features.

        Returns
        -------
        X_scaled : ndarray of the same shape, float32 or float64 as ``X``
            ``(X - mean_) / scale_`` per coefficient.
        """
        X, mean, scale = self._check(X)
        return (X - mean) / scale

    def inverse_transform(self, X):
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array-like of the shape seen in ``fit``
            Standardized features.

        Returns
        -------
        X_orig : ndarray of the same shape, float32 or float64 as ``X``
            ``X * scale_ + mean_`` per coefficient.
        """
        X, mean, scale = self._check(X)
        return X * scale + mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
