"""MFCC kernel: what a worker process needs to turn a file into MFCCs.

The kernel of a parameter set (:class:`MFCCKernel`) is built once, in the
process that owns the transformer, from librosa's own definitions: the Hann
window (``librosa.filters.get_window``) and the Slaney mel filterbank
(``librosa.filters.mel``). joblib workers receive the built kernel with their
task and never import librosa (whose import costs seconds), scikit-learn or
torch: they need NumPy, SciPy's FFT, soundfile and :mod:`genreclf._mfcc_cache`.

What the kernel does itself, because it measurably pays (see
``benchmarks/features.py --kernel``): the short-time Fourier transform in
float32 blocks of :data:`_STFT_BLOCK` frames (half the time of one large
transform), and the banded mel product (a quarter of the dense one). The dB
conversion follows ``librosa.power_to_db`` and the DCT is SciPy's, as in
``librosa.feature.mfcc``. Everything here is private; the public names are
re-exported by :mod:`genreclf.features`.
"""

import functools
import os

import numpy as np

from genreclf._mfcc_cache import entry_name, file_key, write_entry
from genreclf.audio import DEFAULT_SR, load_audio
from genreclf.exceptions import AudioLoadError, TrainingInterrupted

_STFT_BLOCK = 128  # frames per FFT block: keeps the working set in cache
_MEL_GROUP = 8  # mel filters per banded matrix product
RMS_LEVEL = 0.1  # -20 dBFS: the level of every clip with loudness="rms"
#: ``loudness="bands"``: the mean level (dB, of each band's mean power) that
#: the mel bands in :data:`TILT_BANDS_HZ` of every clip are brought to. About
#: what GTZAN clips at :data:`RMS_LEVEL` have, so that both modes give c0s of
#: the same size.
BAND_LEVEL_DB = -7.0
#: ``loudness="bands"``: the floor of the levels, this many dB below
#: :data:`BAND_LEVEL_DB`, instead of :data:`TOP_DB` below the clip's maximum.
#: The maximum moves with an equalisation (a bass boost of 6 dB/octave raises it
#: by about 25 dB and floors 87 % of the top 28 bands of GTZAN clips instead of
#: 12 %); 50 dB is about where 80 dB below the maximum lies on GTZAN (the
#: maximum is a median 31 dB above the band level).
BAND_FLOOR_DB = 50.0
#: ``librosa.power_to_db``'s defaults, as ``librosa.feature.mfcc`` uses them.
AMIN, TOP_DB = 1e-10, 80.0


def mel_filterbank(sr, n_fft, n_mels):
    """Return librosa's Slaney mel filterbank, shape (n_mels, 1 + n_fft // 2).

    ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` in float32.
    """
    import librosa.filters

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=np.float32)


def power_to_db(S, amin=AMIN, top_db=TOP_DB):
    """``librosa.power_to_db(S, ref=1.0, amin=amin, top_db=top_db)`` in place.

    Kept here rather than imported because a worker that imports librosa
    spends seconds doing so; ``tests/test_features.py`` checks the two agree.

    Parameters
    ----------
    S : ndarray of float32
        Power; overwritten with its level in dB.
    amin : float, default=1e-10
        Floor of the power.
    top_db : float, default=80.0
        The result is clipped ``top_db`` below its maximum.

    Returns
    -------
    S_db : ndarray
        ``S`` itself.
    """
    np.maximum(S, amin, out=S)
    np.log10(S, out=S)
    S *= 10.0
    np.maximum(S, S.max() - top_db, out=S)
    return S


#: ``normalize="tilt"``: the bands (by centre frequency, Hz) that the MFCCs
#: are then computed from. Below 40 Hz and above 8 kHz many recordings have
#: little but noise, codec cut-offs and the dB floor, none of which follows
#: an equalisation, so those bands would carry it back in.
TILT_BANDS_HZ = (40.0, 8000.0)
#: Frames of the moving mean over which ``normalize="tilt"`` measures the
#: slope: 3 s at 22050 Hz and hop 512, the default net's window, so that a
#: 2-3 s clip and a window of a long one are treated alike.
TILT_FRAMES = 129
#: Bump when :func:`remove_tilt` or the bands change: it is part of the MFCC
#: cache key of ``normalize="tilt"``, so cached features of older maths are
#: not read.
TILT_VERSION = 1


def mel_centres(sr, n_mels):
    """Centre frequency (Hz) of each of the kernel's ``n_mels`` mel bands."""
    import librosa

    return librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sr / 2)[1:-1]


def tilt_bands(sr, n_mels):
    """The kept bands and their tilt ramp, for ``normalize="tilt"``.

    Returns ``(keep, ramp)``: a boolean mask over the ``n_mels`` Slaney mel
    bands from 0 Hz to ``sr / 2`` (the kernel's filterbank) of those whose
    centre lies in :data:`TILT_BANDS_HZ`, and, for the kept bands, what a
    tilt of 1 dB/octave adds to their level (octaves about 1 kHz, centred to
    zero mean: a level change is not a tilt).
    """
    centres = mel_centres(sr, n_mels)
    keep = (centres >= TILT_BANDS_HZ[0]) & (centres <= TILT_BANDS_HZ[1])
    if keep.sum() < 2:
        raise ValueError(
            f"normalize='tilt' needs at least two mel bands between "
            f"{TILT_BANDS_HZ[0]:g} and {TILT_BANDS_HZ[1]:g} Hz; n_mels={n_mels} "
            f"at sr={sr} has {int(keep.sum())}"
        )
    ramp = np.log2(centres[keep] / 1000.0)
    ramp -= ramp.mean()
    return keep, ramp


def remove_tilt(level, ramp, frames=TILT_FRAMES, top_db=TOP_DB):
    """Take the level and spectral slope out of log-mel levels, then floor them.

    Parameters
    ----------
    level : ndarray of shape (n_frames, n_bands)
        Levels in dB, not yet clipped below their maximum.
    ramp : ndarray of shape (n_bands,)
        What 1 dB/octave adds to each band (zero mean).
    frames : int, default=TILT_FRAMES
        Every frame loses the least-squares line (mean level and slope in
        dB per octave) of the ``frames`` frames centred on it (the mean of
        their lines; fewer frames at the clip's ends, all of a shorter
        clip). The level goes too: a bass boost raises the RMS level that
        ``loudness="rms"`` sets, which would lower every other band.
    top_db : float, default=80.0
        Afterwards the levels are clipped ``top_db`` below their maximum,
        as ``librosa.power_to_db`` does; clipping before would turn the
        floor itself into a slope.

    Returns
    -------
    level : ndarray of shape (n_frames, n_bands), float64
        A gain, and a fixed equalisation that is a straight line in dB per
        octave (a brighter or duller production), add a constant and a
        constant multiple of ``ramp`` to every frame and disappear; the rest
        of each frame's spectral shape, and its changes over time (c0 is
        then the level relative to the 3 s around it), stay.
    """
    import scipy.ndimage

    level = np.asarray(level, dtype=np.float64)
    # The least-squares line of each frame: its mean level (ramp has zero
    # mean) and its slope.
    line = np.stack([level.mean(axis=1), (level @ ramp) / float(ramp @ ramp)])
    size = min(int(frames), line.shape[1])
    if size > 1:
        # Moving mean whose ends average the frames that exist.
        total = scipy.ndimage.uniform_filter1d(line, size, axis=1, mode="constant")
        count = scipy.ndimage.uniform_filter1d(
            np.ones(line.shape[1]), size, mode="constant"
        )
        line = total / count
    level = level - line[0][:, None] - line[1][:, None] * ramp[None, :]
    np.maximum(level, level.max() - top_db, out=level)
    return level


class MFCCKernel:
    """Window, banded mel filterbank and sizes of one parameter set.

    Built from librosa (in the parent process) and picklable, so that a
    worker receives it ready to use.

    Parameters
    ----------
    sr, n_fft, hop_length, n_mels, n_mfcc : int
        As ``librosa.feature.mfcc``.
    dct : bool, default=True
        False: return the log-mel power in dB, shape (n_mels, n_frames),
        instead of its first ``n_mfcc`` DCT coefficients.
    tilt : bool, default=False
        ``normalize="tilt"``: the MFCCs of the bands in
        :data:`TILT_BANDS_HZ` after :func:`remove_tilt` (needs ``dct``).
    bands : bool, default=False
        ``loudness="bands"``: the mel power is first scaled by
        :func:`band_level_gain`, and its levels floored at
        :data:`BAND_FLOOR_DB` below :data:`BAND_LEVEL_DB` (not :data:`TOP_DB`
        below their maximum).
    """

    def __init__(
        self, sr, n_fft, hop_length, n_mels, n_mfcc, dct=True, tilt=False, bands=False
    ):
        import librosa.filters

        self.n_fft, self.hop_length = n_fft, hop_length
        self.n_mels, self.n_mfcc = n_mels, n_mfcc
        self.dct = dct
        self.tilt = None
        self.bands = tilt_bands(sr, n_mels)[0] if bands else None
        if tilt:
            if not dct:
                raise ValueError("normalize='tilt' needs features='mfcc'")
            self.tilt = tilt_bands(sr, n_mels)
            if n_mfcc > int(self.tilt[0].sum()):
                raise ValueError(
                    f"normalize='tilt' keeps {int(self.tilt[0].sum())} mel bands "
                    f"between {TILT_BANDS_HZ[0]:g} and {TILT_BANDS_HZ[1]:g} Hz, "
                    f"fewer than n_mfcc={n_mfcc}; use more n_mels"
                )
        self.window = librosa.filters.get_window("hann", n_fft, fftbins=True).astype(
            np.float32
        )
        mel_t = mel_filterbank(sr, n_fft, n_mels).T
        # The filterbank is banded: multiply each group of filters by only the
        # FFT bins it covers.
        self.groups = []
        for m0 in range(0, n_mels, _MEL_GROUP):
            m1 = min(m0 + _MEL_GROUP, n_mels)
            nonzero = np.flatnonzero(mel_t[:, m0:m1].any(axis=1))
            if nonzero.size:
                lo, hi = int(nonzero[0]), int(nonzero[-1]) + 1
                weights = np.ascontiguousarray(mel_t[lo:hi, m0:m1])
                self.groups.append((lo, hi, m0, m1, weights))

    def filterbank(self):
        """Return the filterbank rebuilt from its bands, (n_mels, 1 + n_fft // 2)."""
        out = np.zeros((self.n_mels, 1 + self.n_fft // 2), dtype=np.float32)
        for lo, hi, m0, m1, weights in self.groups:
            out[m0:m1, lo:hi] = weights.T
        return out

    def __call__(self, y):
        """MFCCs (or log-mel bands) of ``y``, shape (n_rows, 1 + len(y) // hop).

        Frames are centred with zero padding, as librosa's. The waveform is
        read a block of frames at a time, so that the memory used besides
        ``y`` is the mel spectrogram (``n_frames x n_mels`` float32, 13 MB
        for 10 minutes at the defaults) and one block.
        """
        import scipy.fft

        n_fft, hop = self.n_fft, self.hop_length
        pad = n_fft // 2
        n = y.shape[0]
        n_frames = 1 + n // hop
        mel = np.zeros((n_frames, self.n_mels), dtype=np.float32)
        block = np.empty((min(_STFT_BLOCK, n_frames), n_fft), dtype=np.float32)
        segment = np.empty((block.shape[0] - 1) * hop + n_fft, dtype=np.float32)
        for start in range(0, n_frames, _STFT_BLOCK):
            stop = min(start + _STFT_BLOCK, n_frames)
            # samples of frames start..stop-1 in the zero-padded signal
            lo = start * hop - pad
            hi = lo + (stop - start - 1) * hop + n_fft
            seg = segment[: hi - lo]
            seg[:] = 0.0
            a, b = max(lo, 0), min(hi, n)
            if b > a:
                seg[a - lo : b - lo] = y[a:b]
            frames = np.lib.stride_tricks.as_strided(
                seg,
                shape=(stop - start, n_fft),
                strides=(hop * seg.strides[0], seg.strides[0]),
                writeable=False,
            )
            part = block[: stop - start]
            np.multiply(frames, self.window, out=part)
            spec = scipy.fft.rfft(part, axis=1)
            power = np.square(spec.real)
            power += np.square(spec.imag)
            out = mel[start:stop]
            for lo_bin, hi_bin, m0, m1, weights in self.groups:
                out[:, m0:m1] = power[:, lo_bin:hi_bin] @ weights
        bands = getattr(self, "bands", None)  # kernels pickled before the option
        if bands is not None:
            mel *= band_level_gain(mel, bands)
        tilt = getattr(self, "tilt", None)  # kernels pickled before the option
        if tilt is not None:
            keep, ramp = tilt
            power_to_db(mel, top_db=np.inf)
            level = remove_tilt(mel[:, keep], ramp)
            coef = scipy.fft.dct(level, axis=1, type=2, norm="ortho")
            return np.ascontiguousarray(coef[:, : self.n_mfcc].T, dtype=np.float32)
        if bands is not None:
            power_to_db(mel, top_db=np.inf)
            np.maximum(mel, np.float32(BAND_LEVEL_DB - BAND_FLOOR_DB), out=mel)
        else:
            power_to_db(mel)
        if not getattr(self, "dct", True):
            return np.ascontiguousarray(mel.T)
        mfcc = np.empty((self.n_mfcc, n_frames), dtype=np.float32)
        for start in range(0, n_frames, _STFT_BLOCK):
            stop = min(start + _STFT_BLOCK, n_frames)
            coef = scipy.fft.dct(mel[start:stop], axis=1, type=2, norm="ortho")
            mfcc[:, start:stop] = coef[:, : self.n_mfcc].T
        return mfcc


def band_level_gain(mel, keep):
    """The power gain that brings a clip's mel bands to :data:`BAND_LEVEL_DB`.

    ``loudness="bands"``: the level of a clip is the mean, over the mel bands
    ``keep`` (those in :data:`TILT_BANDS_HZ`), of each band's mean power over
    the clip's frames in dB. A gain moves it by the gain; a tilt EQ about any
    frequency moves it by the tilt's level at the bands' mean octave, so the
    bands end up changed by the tilt about that point only, as much down as up
    (``loudness="rms"`` measures the level on the power, which the bass
    dominates: a bass boost then lowers every other band by up to 20 dB).

    Parameters
    ----------
    mel : ndarray of shape (n_frames, n_mels)
        Mel power of the clip.
    keep : ndarray of bool, shape (n_mels,)
        The bands whose level is measured.

    Returns
    -------
    gain : numpy.float32
        1 for a clip whose kept bands are all silent.
    """
    power = mel[:, keep].mean(axis=0, dtype=np.float64)
    if not np.any(power > AMIN):
        return np.float32(1.0)
    level = float(np.mean(10.0 * np.log10(np.maximum(power, AMIN))))
    return np.float32(10.0 ** ((BAND_LEVEL_DB - level) / 10.0))


@functools.lru_cache(maxsize=8)
def kernel(sr, n_fft, hop_length, n_mels, n_mfcc, dct=True, tilt=False, bands=False):
    """Return the (cached) :class:`MFCCKernel` of a parameter set."""
    return MFCCKernel(sr, n_fft, hop_length, n_mels, n_mfcc, dct, tilt, bands)


def params_kernel(params):
    """Return the kernel of a transformer's output parameters."""
    return kernel(
        params["sr"],
        params["n_fft"],
        params["hop_length"],
        params["n_mels"],
        params["n_mfcc"],
        params.get("features", "mfcc") == "mfcc",
        params.get("normalize") == "tilt",
        params.get("loudness") == "bands",
    )


def cmvn(features, eps=1e-5):
    """Cepstral mean and variance normalisation of one clip, in place.

    Every row (coefficient) of ``features`` (n_rows, n_frames) is moved to
    zero mean and unit variance over the clip's frames; a constant row (a
    silent clip) is only centred.
    """
    x64 = features.astype(np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    std = x64.std(axis=1, keepdims=True)
    std[std < eps] = 1.0
    features[...] = (x64 - mean) / std
    return features


def compute_mfcc(y, sr=DEFAULT_SR, n_mfcc=20, n_fft=2048, hop_length=512, n_mels=128):
    """MFCCs of a waveform, equal to ``librosa.feature.mfcc`` with its defaults.

    Computed in float32 with librosa's window and filterbank, made once per
    parameter set (about twice as fast as librosa); the two agree to within
    about 1e-3.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Mono waveform.
    sr : int, default=22050
        Its sampling rate.
    n_mfcc : int, default=20
        Number of coefficients kept.
    n_fft : int, default=2048
        FFT window length (periodic Hann window, centred frames, zero padding).
    hop_length : int, default=512
        Samples between frames.
    n_mels : int, default=128
        Mel bands (Slaney mel scale and normalisation, as librosa).

    Returns
    -------
    mfcc : ndarray of shape (n_mfcc, 1 + n_samples // hop_length), float32
        The coefficients (orthonormal DCT-II of the log-mel power in dB,
        clipped 80 dB below its maximum).

    Examples
    --------
    >>> import numpy as np, librosa
    >>> y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> m = compute_mfcc(y)
    >>> m.shape, m.dtype
    ((20, 44), dtype('float32'))
    >>> bool(np.allclose(m, librosa.feature.mfcc(y=y, sr=22050), atol=1e-2))
    True
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (a mono waveform), got shape {y.shape}")
    return kernel(int(sr), int(n_fft), int(hop_length), int(n_mels), int(n_mfcc))(y)


def clip_waveform(path, params):
    """Decode one clip as the transformer reads it (``offset``, ``duration``).

    ``params["duration"]`` None reads to the end of the file;
    ``params["loudness"]`` ``"rms"`` scales the audio read to
    :data:`RMS_LEVEL`.
    """
    y = load_audio(
        path, sr=params["sr"], duration=params["duration"], offset=params["offset"]
    )
    if params.get("loudness") == "rms":
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        if rms > 0:
            y = y * np.float32(RMS_LEVEL / rms)
    return y


def waveform_features(y, params, mfcc=None):
    """Return the transformer's output for a decoded waveform ``y``.

    With a float ``params["duration"]``, ``y`` is padded (``params["pad"]``,
    absent means ``"zeros"``: silence; ``"wrap"``: the clip repeated) or
    cropped to it; with None it keeps its length (at least one frame).
    ``params["normalize"]`` ``"cmvn"`` then normalises each row over the
    clip's frames (:func:`cmvn`); ``"tilt"`` is done by the kernel
    (:func:`remove_tilt`). ``mfcc`` is the :class:`MFCCKernel` of
    ``params`` (built here when None).
    """
    if params["duration"] is not None:
        n_samples = int(round(params["duration"] * params["sr"]))
        if y.shape[0] < n_samples:
            mode = "wrap" if params.get("pad", "zeros") == "wrap" else "constant"
            y = np.pad(y, (0, n_samples - y.shape[0]), mode=mode)
        y = y[:n_samples]
    if mfcc is None:
        mfcc = params_kernel(params)
    out = mfcc(y)
    if params.get("normalize") == "cmvn":
        cmvn(out)
    return out


def clip_mfcc(path, params, mfcc=None):
    """Decode one clip and return the transformer's output for it.

    :func:`clip_waveform` then :func:`waveform_features`.
    """
    return waveform_features(clip_waveform(path, params), params, mfcc)


def extract_task(
    path,
    entry,
    params,
    mfcc=None,
    variants=(),
    augment_seed=0,
    keep=True,
    augment_recipe="stacked",
):
    """Compute one clip's features (and variants), caching them when asked.

    Parameters
    ----------
    path : str
        The audio file.
    entry : str or None
        Cache entry of the clip's features; None: not cached. Ignored when
        ``variants`` is given and does not ask for variant 0.
    params : dict
        The transformer's output parameters.
    mfcc : MFCCKernel or None
        The kernel of ``params``.
    variants : sequence of (int, str or None), default=()
        ``(variant, entry)`` pairs to compute: 0 is the clip itself, ``j > 0``
        the clip after :func:`genreclf._augment.production_change` drawn
        from ``(augment_seed, j, the file's content)``. Empty: ``[(0, entry)]``.
    augment_seed : int, default=0
        Seed of the variants.
    keep : bool, default=True
        False: an output written to its entry is returned as its shape
        ``(n_rows, n_frames)`` rather than as an array, so that the caller
        holds no features.
    augment_recipe : {"stacked", "single"}, default="stacked"
        How the variants' changes are drawn (:data:`genreclf._augment.RECIPES`).

    Returns
    -------
    result : tuple
        ``(output, error reason or None, cache problem or None)``: ``output``
        is the features (an ndarray, or a shape) when ``variants`` is empty,
        else a list of them, one per pair; None on error.
    """
    single = not variants
    todo = [(0, entry)] if single else list(variants)
    try:
        y = clip_waveform(path, params)
        outs, ident = [], None
        for j, _ in todo:
            if j == 0:
                outs.append(waveform_features(y, params, mfcc))
            else:
                from genreclf import _augment

                if ident is None:
                    ident = _augment.content_id(path)
                rng = _augment.variant_rng(augment_seed, j, ident, augment_recipe)
                changed = _augment.production_change(
                    y, params["sr"], rng, augment_recipe
                )
                outs.append(waveform_features(changed, params, mfcc))
    except AudioLoadError as exc:
        return None, exc.reason, None
    except TrainingInterrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - never lose the file name
        return None, f"feature extraction failed ({type(exc).__name__}: {exc})", None
    problem = None
    # Skip the writes when the file changed while it was being decoded.
    fresh = file_key(path)
    for k, (j, where) in enumerate(todo):
        if where is None or problem is not None or fresh is None:
            continue
        if os.path.basename(where) != entry_name(fresh, j):
            continue
        problem = write_entry(where, outs[k])
        if problem is None and not keep:
            outs[k] = outs[k].shape
    return (outs[0] if single else outs), None, problem


def extract_batch(
    items, params, mfcc=None, augment_seed=0, keep=True, augment_recipe="stacked"
):
    """Run :func:`extract_task` over ``[(path, entry), ...]`` with one BLAS thread.

    An item may also be ``(path, entry, variants)``. Small matrix products
    gain nothing from BLAS threads, and spinning threads slow everything
    down on a busy machine.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        return [
            extract_task(
                item[0],
                item[1],
                params,
                mfcc,
                variants=item[2] if len(item) > 2 else (),
                augment_seed=augment_seed,
                keep=keep,
                augment_recipe=augment_recipe,
            )
            for item in items
        ]
