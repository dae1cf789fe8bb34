"""MFCC features from audio files: a cached scikit-learn transformer.

:class:`MFCCTransformer` turns a 1-D array of file paths into MFCC images of one
width, ``(n_clips, 1, n_mfcc, n_frames)`` float32, decoding each clip once and
caching the result on disk; with ``duration=None`` into a
:class:`~genreclf.clips.ClipFeatures` of every clip at its real length, backed
by the cache entries. :class:`MFCCStandardizer` scales every coefficient
to zero mean and unit variance. :func:`check_files`, the one bad-file screen
of the package, and :func:`find_bad_files` list the clips that cannot be
decoded, so that a dataset can be checked (and cached) before any training.

The kernel that workers run is in :mod:`genreclf._mfcc`, the cache format in
:mod:`genreclf._mfcc_cache`, the dispatch between them in
:mod:`genreclf._mfcc_extract`.
"""

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
)

from genreclf import _mfcc, _mfcc_extract
from genreclf._augment import RECIPES
from genreclf._mfcc import TILT_VERSION, compute_mfcc
from genreclf._scaling import MFCCStandardizer
from genreclf._screen import check_files, find_bad_files
from genreclf.audio import DEFAULT_SR
from genreclf.exceptions import FeatureExtractionError, NoAudioError

__all__ = [
    "DEFAULT_DURATION",
    "FeatureExtractionError",
    "MFCCStandardizer",
    "MFCCTransformer",
    "check_files",
    "compute_mfcc",
    "find_bad_files",
]

#: Clip length in seconds: 629748 samples at 22050 Hz, 1230 frames at hop 512
#: (the reference study used 1231 frames of about 28.5 s).
DEFAULT_DURATION = 28.56

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
    "normalize",
    "features",
)
#: ``MFCCTransformer(loudness=...)``: None keeps each recording's level;
#: ``"rms"`` scales every clip to the same RMS level first; ``"bands"`` to the
#: same mean level of its mel bands between 40 Hz and 8 kHz.
LOUDNESS_MODES = (None, "rms", "bands")
#: How a clip shorter than ``duration`` is filled: with silence, or with
#: itself repeated (see ``MFCCTransformer(pad=...)``).
PAD_MODES = ("zeros", "wrap")
#: ``MFCCTransformer(normalize=...)``: None, ``"cmvn"`` (per-clip cepstral
#: mean and variance normalisation) or ``"tilt"`` (the level and spectral
#: slope of every 3 s taken out).
NORMALIZE_MODES = (None, "cmvn", "tilt")
#: ``MFCCTransformer(features=...)``: MFCCs, or the log-mel bands they come from.
FEATURE_KINDS = ("mfcc", "logmel")


def _reject_bools(estimator, names):
    """Refuse True/False for numeric parameters (``Interval`` accepts them)."""
    for name in names:
        value = getattr(estimator, name)
        if isinstance(value, (bool, np.bool_)):
            allowed = " or ".join(
                str(c) for c in estimator._parameter_constraints[name]
            )
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(estimator).__name__} must be "
                f"{allowed}, not a bool. Got {value!r} instead."
            )


def _refuse_empty(X, purpose):
    """Refuse an empty list of files, naming what it was given for."""
    if X is None or isinstance(X, (str, bytes, os.PathLike)):
        return  # fit(None) is allowed; a single path is refused by paths_array
    try:
        n_files = len(X)
    except TypeError:
        return
    if n_files == 0:
        raise NoAudioError(
            "no audio files given: X is an empty list of file paths; give at "
            f"least one audio file to {purpose}"
        )


def _raise_failures(X, failures):
    """Raise one FeatureExtractionError listing ``failures``, if any."""
    if failures:
        n_files = len(set(_mfcc_extract.paths_array(X)))
        raise FeatureExtractionError(failures, n_files=n_files)


# --------------------------------------------------------------------------
# The transformer


class MFCCTransformer(TransformerMixin, BaseEstimator):
    """Audio file paths -> MFCC images, cached on disk.

    Each clip is decoded with :func:`genreclf.audio.load_audio` (only the
    ``duration`` seconds from ``offset``), resampled to ``sr``, padded
    (``pad``) or cropped to ``duration`` and turned into MFCCs equal to
    ``librosa.feature.mfcc`` with the same parameters. With ``memory`` set,
    every clip's MFCCs are stored on disk, so that a second ``transform`` of
    the same files decodes nothing.

    With ``duration=None`` every clip keeps its real length and the output
    is a :class:`~genreclf.clips.ClipFeatures`, one sample per clip, which
    refers to the cache entries (memory-mapped, read a window at a time)
    when there is a ``memory``, so that the features of a large dataset are
    never all in memory.

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
    duration : float or None, default=DEFAULT_DURATION
        Seconds every clip is padded or cropped to; the 28.56 s default
        gives 1230 frames at 22050 Hz and hop 512. None: every clip keeps
        its real length from ``offset`` (at least one frame), and the output
        is a :class:`~genreclf.clips.ClipFeatures`.
    offset : float, default=0.0
        Seconds skipped at the start of every clip.
    pad : {"zeros", "wrap"}, default="zeros"
        How a clip shorter than ``duration`` is filled: ``"zeros"`` appends
        silence (the reference study); ``"wrap"`` repeats the clip's audio
        until ``duration``, so that every frame is music: a 2 s clip then
        looks like 2 s of that music, not like 26 s of silence, to a net that
        votes over windows and to the per-coefficient scaling.
    loudness : {None, "rms", "bands"}, default=None
        None: features keep each recording's level (the reference study).
        ``"rms"``: every clip's audio (the part read, before padding) is
        scaled to the same RMS level (-20 dBFS) first, so the same music
        played louder or softer gives the same MFCCs (a gain moves only
        c0, and this removes it); silent clips are left as they are.
        ``"bands"``: every clip is scaled so that its mel bands between 40 Hz
        and 8 kHz have the same mean level in dB (each band's mean power over
        the clip's frames, :func:`genreclf._mfcc.band_level_gain`). As gain
        invariant as ``"rms"``, but an equalisation then changes the bands by
        its own curve about their middle, where ``"rms"``, whose level the
        bass dominates, lowers every other band by as much as a bass boost
        raises the bass (up to 20 dB for a tilt of -6 dB/octave). The levels
        are then floored 50 dB below that mean level, not 80 dB below their
        maximum, which an equalisation moves too. Measured, not the default's
        (docs/results.rst): it did not make the nets more robust to a tilt.
    normalize : {None, "cmvn"}, default=None
        None: features as computed. ``"cmvn"``: cepstral mean and variance
        normalisation per clip: every coefficient of a clip is moved to zero
        mean and unit variance over that clip's frames (its output frames,
        padding included, with a float ``duration``). A fixed equalisation or
        channel adds a constant to each coefficient, which this removes, as
        it removes the level; it also removes each clip's average timbre.
        ``"tilt"``: only the level and the spectral slope are taken out: the
        MFCCs are those of the mel bands between 40 Hz and 8 kHz (where music, not
        codec cut-offs or the dB floor, sets the level), after every
        frame's bands lose the straight line in dB per octave (level and
        slope) fitted to the 3 s around it; so a gain, or an EQ that makes a
        production brighter or duller, changes nearly nothing, and the rest
        of the timbre and the level's changes within 3 s stay
        (``genreclf._mfcc.remove_tilt``; needs ``features="mfcc"``).
    features : {"mfcc", "logmel"}, default="mfcc"
        ``"mfcc"``: ``n_mfcc`` MFCCs per frame. ``"logmel"``: the ``n_mels``
        log-mel bands in dB that the MFCCs are the DCT of (``n_mfcc`` is then
        unused); the output has ``n_mels`` rows.
    augment : int, default=0
        Training augmentation (needs ``duration=None``): ``fit_transform``
        adds this many variants of every clip, each computed from the clip's
        waveform after a random change of production (speed or tempo +-6 %,
        tilt EQ, low- or high-pass, white noise at 10-30 dB SNR, MP3
        re-encoding; see ``augment_recipe``) and a gain of -20 to +6 dB (see
        ``ClipFeatures.n_variants``). ``transform`` (prediction) never adds
        any. Variants are cached like the clips, keyed by the file, the
        settings, the variant, ``augment_seed`` and ``augment_recipe``, so
        each is computed once.
    augment_seed : int, default=0
        Seed of the variants: the same seed gives the same variants in every
        process and wherever the files lie (a file's content, not its path,
        tells its variants apart).
    augment_recipe : {"single", "stacked"}, default="single"
        How a variant's changes are drawn. ``"single"``: one change of the six
        kinds above, each kind equally likely. ``"stacked"``: each change with
        its own probability, so that most variants carry several at once (the
        recipe until stop 22). On GTZAN's held-out clips one change per
        variant measured 6-8 points more accurate for the same robustness
        (docs/results.rst, "One change per variant").
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
    n_frames_ : int or None
        Width of the output (frames per clip), set by ``fit``; None with
        ``duration=None``.

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
    ``offset``, ``pad``, ``loudness``, ``normalize``, ``features``; an
    option at its default is left out of the hash, so the folders made
    before it existed stay valid). Variants of ``augment`` live in a folder
    of their own, whose hash adds the seed and the recipe's version. An
    entry is keyed by the file's absolute path, size and modification time,
    so an edited file is decoded again. Entries are written to a temporary
    file and renamed, so processes can share one cache; each carries a
    checksum, and a damaged entry is reported with a warning and recomputed.
    A cache folder that cannot be created or written is reported with a
    warning and the features are computed without it.

    The window and the mel filterbank come from librosa
    (``librosa.filters.get_window``, ``librosa.filters.mel``), built once per
    parameter set in this process; with ``n_jobs > 1`` the workers receive
    them and import neither librosa nor scikit-learn.

    Parameters are validated by ``fit`` and ``transform`` against
    ``_parameter_constraints``; an invalid value raises
    ``sklearn.utils._param_validation.InvalidParameterError`` (a
    ``ValueError`` and a ``TypeError``) naming the parameter and the allowed
    values.

    When some files cannot be decoded, the others are still extracted (and
    cached) and then one :class:`FeatureExtractionError` lists every bad file.

    ``fit_transform`` with ``augment > 0`` differs from ``fit().transform()``
    on purpose: it is what the training step of a pipeline calls, while
    ``predict`` and ``score`` call ``transform``, so only training sees the
    variants.

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
    >>> clips = MFCCTransformer(duration=None).fit_transform([path])
    >>> clips.shape, clips.n_frames.tolist()
    ((1,), [44])
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
        normalize=None,
        features="mfcc",
        augment=0,
        augment_seed=0,
        augment_recipe="single",
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
        self.normalize = normalize
        self.features = features
        self.augment = augment
        self.augment_seed = augment_seed
        self.augment_recipe = augment_recipe
        self.memory = memory
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __setstate__(self, state):
        # Transformers pickled before ``augment_recipe`` existed drew their
        # variants the stacked way: refitting one gives the same variants.
        state.setdefault("augment_recipe", "stacked")
        super().__setstate__(state)

    _parameter_constraints = {
        "sr": [Interval(Integral, 1, None, closed="left")],
        "n_mfcc": [Interval(Integral, 1, None, closed="left")],
        "n_fft": [Interval(Integral, 1, None, closed="left")],
        "hop_length": [Interval(Integral, 1, None, closed="left")],
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "duration": [None, Interval(Real, 0, np.inf, closed="neither")],
        "offset": [Interval(Real, 0, np.inf, closed="left")],
        "pad": [StrOptions(set(PAD_MODES))],
        "loudness": [None, StrOptions({"rms", "bands"})],
        "normalize": [None, StrOptions({"cmvn", "tilt"})],
        "features": [StrOptions(set(FEATURE_KINDS))],
        "augment": [Interval(Integral, 0, None, closed="left")],
        "augment_seed": [Interval(Integral, 0, None, closed="left")],
        "augment_recipe": [StrOptions(set(RECIPES))],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "n_jobs": [None, Integral],
        "verbose": ["verbose"],
    }

    # -- parameters --------------------------------------------------------

    def _params(self):
        """Validate and return the parameters that change the output."""
        self._validate_params()
        _reject_bools(self, (*_OUTPUT_PARAMS[:7], "augment", "augment_seed"))
        if self.normalize == "tilt" and self.features != "mfcc":
            raise InvalidParameterError(
                "MFCCTransformer(normalize='tilt') needs features='mfcc', got "
                f"features={self.features!r}"
            )
        if self.n_mfcc > self.n_mels:
            raise InvalidParameterError(
                "The 'n_mfcc' parameter of MFCCTransformer must be <= n_mels: "
                f"n_mfcc ({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})"
            )
        if self.augment and self.duration is not None:
            raise InvalidParameterError(
                "The 'augment' parameter of MFCCTransformer needs duration=None: "
                f"augment={self.augment} adds variants of clips kept at their real "
                f"length, got duration={self.duration!r}; set duration=None, or "
                "augment=0 for a fixed duration"
            )
        params = {k: int(getattr(self, k)) for k in _OUTPUT_PARAMS[:5]}
        # duration=None is a value of its own ("duration": null in the key).
        params["duration"] = None if self.duration is None else float(self.duration)
        params["offset"] = float(self.offset)
        # Default values stay out of the key: the cache folders that predate
        # the options stay valid.
        if self.pad != "zeros":
            params["pad"] = self.pad
        if self.loudness is not None:
            params["loudness"] = self.loudness
        if self.normalize is not None:
            params["normalize"] = self.normalize
        if self.normalize == "tilt":
            # In the cache key: bump when remove_tilt's result changes.
            params["tilt_version"] = TILT_VERSION
        if self.features != "mfcc":
            params["features"] = self.features
        return params

    def n_frames(self):
        """Return the number of frames per clip for the current parameters.

        Returns
        -------
        n_frames : int or None
            ``1 + round(duration * sr) // hop_length``; None when
            ``duration`` is None (each clip has its own width).
        """
        params = self._params()
        if params["duration"] is None:
            return None
        return 1 + int(round(params["duration"] * params["sr"])) // params["hop_length"]

    # -- sklearn API -------------------------------------------------------

    def fit(self, X=None, y=None):
        """Check the parameters; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_clips,) of str or path-like, default=None
            The training files; not read, but an empty list is refused.
        y : None
            Ignored.

        Returns
        -------
        self : MFCCTransformer
            This transformer, with ``n_frames_`` set.

        Raises
        ------
        genreclf.exceptions.NoAudioError
            When ``X`` is an empty list ("no audio files given"); a
            ``ValueError``.
        """
        self.n_frames_ = self.n_frames()
        _refuse_empty(X, "train on")
        return self

    def transform(self, X):
        """Decode every clip (or read it from the cache) and compute its MFCCs.

        Parameters
        ----------
        X : array-like of shape (n_clips,) of str or path-like
            Audio files.

        Returns
        -------
        X_mfcc : ndarray of shape (n_clips, 1, n_mfcc, n_frames), float32, \
or ClipFeatures of shape (n_clips,)
            The MFCCs of every clip, in the order of ``X``: one array with a
            float ``duration``; with ``duration=None`` a
            :class:`~genreclf.clips.ClipFeatures` (on disk with a
            ``memory``, in memory otherwise; ``n_variants`` is 1). With
            ``features="logmel"`` the rows are the ``n_mels`` bands.

        Raises
        ------
        FeatureExtractionError
            When any file cannot be decoded; its ``failures`` maps every bad
            file to its reason. The good files are extracted and cached first.
        genreclf.exceptions.NoAudioError
            When ``X`` is an empty list ("no audio files given"); a
            ``ValueError``.
        """
        self._params()  # parameter errors first
        _refuse_empty(X, "compute features of (or predict)")
        features, failures = self._extract(X)
        _raise_failures(X, failures)
        return features

    def fit_transform(self, X, y=None):
        """Fit, then transform, adding the training variants of ``augment``.

        Parameters
        ----------
        X : array-like of shape (n_clips,) of str or path-like
            Audio files.
        y : None
            Ignored.

        Returns
        -------
        X_mfcc : ndarray or ClipFeatures
            As :meth:`transform`; with ``augment > 0`` a ClipFeatures whose
            ``n_variants`` is ``1 + augment``.

        Raises
        ------
        FeatureExtractionError, ValueError
            As :meth:`transform`.
        """
        self.fit(X, y)
        features, failures = self._extract(X, self.augment)
        _raise_failures(X, failures)
        return features

    def _extract(self, X, augment=0):
        """Return ``(features, failures)``; bad clips are left as zeros."""
        params = self._params()
        if params["duration"] is None:
            features, failures = _mfcc_extract.extract_clips(
                _mfcc_extract.paths_array(X),
                params,
                memory=self.memory,
                n_jobs=self.n_jobs,
                verbose=self.verbose,
                augment=augment,
                augment_seed=self.augment_seed,
                augment_recipe=self.augment_recipe,
            )
            if self.features == "mfcc":
                features.mel_hz = _mfcc.mel_centres(params["sr"], params["n_mels"])
            return features, failures
        return _mfcc_extract.extract(
            _mfcc_extract.paths_array(X),
            params,
            self.n_frames(),
            memory=self.memory,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags
