"""Random changes of production, applied to a waveform before its MFCCs.

The training augmentation of ``MFCCTransformer(augment=K)``: every training
clip gets ``K`` extra versions, each the clip's waveform after one random
:func:`production_change`, so that the net learns the music rather than how
one studio or one codec made it. Two recipes (``augment_recipe``):
``"single"`` makes one change per version (a speed change, a tempo change,
a tilt EQ, a low- or high-pass, noise or an MP3 re-encoding, drawn
uniformly) and a gain; ``"stacked"`` draws each of them with its own
probability, so that most versions carry several at once. The changes are
drawn from a generator seeded by (``augment_seed``, the variant, the file's
content, the recipe), so a variant is the same in every process and wherever
the file lies, and is computed, and cached, once.

Light on purpose (NumPy, SciPy and soundfile): joblib workers import it.
Everything here is private.
"""

import io
import zlib
from fractions import Fraction

import numpy as np

#: Bump when the recipe changes: cached variants of an old recipe are ignored.
#: 3: the generators are seeded by the file's content instead of its absolute
#: path (the same clip in another folder got other variants, hence another model).
AUGMENT_VERSION = 3

#: The recipes of ``MFCCTransformer(augment_recipe=...)`` (how a version's
#: changes are drawn), each with its own stream of random numbers (any numbers
#: will do; these are the ones used since the recipes exist, though with the
#: path seeding of versions 1-2 the measurements before stop 29 drew others).
RECIPE_STREAMS = {"single": 102, "stacked": 2}
RECIPES = tuple(RECIPE_STREAMS)

#: Ranges of the random changes (uniform unless said otherwise).
SPEED = (0.94, 1.06)  # playback speed (tempo and pitch together), p=0.25
STRETCH = (0.94, 1.06)  # tempo alone (phase vocoder, pitch kept), p=0.25
TILT_DB_PER_OCTAVE = (-8.0, 8.0)  # spectral tilt about 1 kHz, p=0.7
TILT_LIMIT_DB = 36.0  # the tilt's gain is clipped to +-36 dB
LOWPASS_HZ = (2500.0, 8000.0)  # 4th-order Butterworth magnitude, p=0.3
HIGHPASS_HZ = (60.0, 400.0)  # 4th-order Butterworth magnitude, p=0.3
SNR_DB = (10.0, 30.0)  # white noise, p=0.5
MP3_QUALITY = (0.5, 1.0)  # soundfile's compression_level (1: smallest), p=0.3
GAIN_DB = (-20.0, 6.0)  # always


def content_id(path, chunk=1 << 20):
    """CRC-32 of a file's bytes: what tells its variants' generators apart.

    The same file gets the same generators in any folder and on any machine,
    so on one machine (one decoder, one torch) ``random_state`` and
    ``augment_seed`` give the same model wherever the data lies.
    """
    ident = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            ident = zlib.crc32(block, ident)
    return ident


def variant_rng(seed, variant, ident, recipe="stacked"):
    """Return the generator of one variant of one file, the same in every process.

    Parameters
    ----------
    seed : int
        ``MFCCTransformer(augment_seed=...)``.
    variant : int
        1 to K.
    ident : int
        The file's :func:`content_id`.
    recipe : {"stacked", "single"}, default="stacked"
        The recipe the generator is for (:data:`RECIPE_STREAMS`).
    """
    stream = RECIPE_STREAMS[recipe]
    return np.random.default_rng([int(seed), int(variant), int(ident), stream])


def change_speed(y, factor):
    """Play ``y`` ``factor`` times faster (tempo and pitch), by resampling."""
    ratio = Fraction(1.0 / factor).limit_denominator(100)
    if ratio == 1:
        return y
    import scipy.signal

    out = scipy.signal.resample_poly(y, ratio.numerator, ratio.denominator)
    return out.astype(np.float32, copy=False)


def stretch_tempo(y, rate):
    """Play ``y`` ``rate`` times faster at the same pitch (librosa's phase vocoder)."""
    if rate == 1.0 or y.shape[0] < 2048:
        return y
    import librosa

    out = librosa.effects.time_stretch(y, rate=float(rate))
    return out.astype(np.float32, copy=False)


def equalize(y, sr, tilt=0.0, lowpass=None, highpass=None):
    """Filter ``y`` by a zero-phase magnitude response, in one FFT.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), float32
    sr : int
    tilt : float, default=0.0
        dB per octave about 1 kHz (clipped to :data:`TILT_LIMIT_DB`).
    lowpass, highpass : float or None
        Cut-off in Hz of a 4th-order Butterworth magnitude response.
    """
    import scipy.fft

    n = y.shape[0]
    size = scipy.fft.next_fast_len(n, real=True)
    spec = scipy.fft.rfft(y, size)
    freq = np.fft.rfftfreq(size, 1.0 / sr)
    gain_db = tilt * np.log2(np.maximum(freq, 20.0) / 1000.0)
    np.clip(gain_db, -TILT_LIMIT_DB, TILT_LIMIT_DB, out=gain_db)
    gain = 10.0 ** (gain_db / 20.0)
    if lowpass is not None:
        gain /= np.sqrt(1.0 + (freq / lowpass) ** 8)
    if highpass is not None:
        with np.errstate(divide="ignore"):
            gain /= np.sqrt(1.0 + (highpass / np.maximum(freq, 1e-3)) ** 8)
    spec *= gain
    return scipy.fft.irfft(spec, size)[:n].astype(np.float32)


def add_noise(y, snr_db, rng):
    """``y`` plus white noise ``snr_db`` below its RMS level."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    if rms == 0.0:
        return y
    sigma = rms / 10.0 ** (snr_db / 20.0)
    noise = rng.standard_normal(y.shape[0], dtype=np.float32)
    return y + np.float32(sigma) * noise


def reencode_mp3(y, sr, quality):
    """``y`` encoded as MP3 (variable bit rate) and decoded again.

    Returns ``y`` unchanged where the codec refuses the rate.
    """
    import soundfile as sf

    peak = float(np.max(np.abs(y))) if y.size else 0.0
    scale = 1.0 if peak <= 0.99 else 0.99 / peak  # the codec clips at full scale
    buf = io.BytesIO()
    try:
        sf.write(
            buf, y * np.float32(scale), sr, format="MP3", compression_level=quality
        )
        buf.seek(0)
        out, _ = sf.read(buf, dtype="float32")
    except RuntimeError:  # soundfile's errors; e.g. a rate MP3 does not have
        return y
    if out.ndim > 1:  # pragma: no cover - written mono
        out = out.mean(axis=1)
    return out / np.float32(scale)


def production_change(y, sr, rng, recipe="stacked"):
    """One random change of production of a mono waveform.

    ``recipe="stacked"``: several changes, each with its own probability,
    described below. ``recipe="single"``: one of them, drawn uniformly
    (:func:`one_change`), then the gain.

    In this order, each with its probability (the constants of this module):
    a speed change (tempo and pitch) or a tempo change alone, an
    equalisation (tilt, low-pass, high-pass), white noise, an MP3
    re-encoding, and always a gain.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), float32
        The waveform (not modified).
    sr : int
        Its sampling rate.
    rng : numpy.random.Generator
        The variant's generator (:func:`variant_rng`).
    recipe : {"stacked", "single"}, default="stacked"
        See :data:`RECIPES`.

    Returns
    -------
    y_changed : ndarray of shape (n_samples',), float32
        The changed waveform (a speed change alters its length).
    """
    y = np.asarray(y, dtype=np.float32)
    if recipe == "single":
        return _gain(one_change(y, sr, rng), rng)
    if recipe != "stacked":
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    tempo = rng.random()
    if tempo < 0.25:
        y = change_speed(y, rng.uniform(*SPEED))
    elif tempo < 0.5:
        y = stretch_tempo(y, rng.uniform(*STRETCH))
    tilt = rng.uniform(*TILT_DB_PER_OCTAVE) if rng.random() < 0.7 else 0.0
    lowpass = rng.uniform(*LOWPASS_HZ) if rng.random() < 0.3 else None
    highpass = rng.uniform(*HIGHPASS_HZ) if rng.random() < 0.3 else None
    if lowpass is not None and lowpass >= sr / 2:
        lowpass = None
    if tilt or lowpass is not None or highpass is not None:
        y = equalize(y, sr, tilt, lowpass, highpass)
    if rng.random() < 0.5:
        y = add_noise(y, rng.uniform(*SNR_DB), rng)
    if rng.random() < 0.3 and y.shape[0] >= 1152:
        y = reencode_mp3(y, sr, rng.uniform(*MP3_QUALITY))
    return _gain(y, rng)


def one_change(y, sr, rng):
    """One change of production, its kind and size drawn from ``rng``.

    The six kinds are equally likely: a speed change, a tempo change alone,
    a tilt EQ, a low-pass or a high-pass (even odds), white noise, an MP3
    re-encoding; each over the range of this module's constants. Measured
    against :func:`production_change`'s stacked draws in docs/results.rst
    ("One change per variant").
    """
    kind = int(rng.integers(6))
    if kind == 0:
        return change_speed(y, rng.uniform(*SPEED))
    if kind == 1:
        return stretch_tempo(y, rng.uniform(*STRETCH))
    if kind == 2:
        return equalize(y, sr, rng.uniform(*TILT_DB_PER_OCTAVE))
    if kind == 3:
        if rng.random() < 0.5 and LOWPASS_HZ[1] < sr / 2:
            return equalize(y, sr, lowpass=rng.uniform(*LOWPASS_HZ))
        return equalize(y, sr, highpass=rng.uniform(*HIGHPASS_HZ))
    if kind == 4:
        return add_noise(y, rng.uniform(*SNR_DB), rng)
    if y.shape[0] >= 1152:
        return reencode_mp3(y, sr, rng.uniform(*MP3_QUALITY))
    return y


def _gain(y, rng):
    """``y`` at a random gain of :data:`GAIN_DB`, float32 and contiguous."""
    y = y * np.float32(10.0 ** (rng.uniform(*GAIN_DB) / 20.0))
    return np.ascontiguousarray(y, dtype=np.float32)
