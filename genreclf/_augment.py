"""Random changes of production, applied to a waveform before its MFCCs.

The training augmentation of ``MFCCTransformer(augment=K)``: every training
clip gets ``K`` extra versions, each the clip's waveform after one random
:func:`production_change` (a speed change, an equalisation, noise, a lossy
re-encoding and a gain), so that the net learns the music rather than how
one studio or one codec made it. The changes are drawn from a generator
seeded by (``augment_seed``, the variant, the file), so a variant is the same
in every process and is computed, and cached, once.

Light on purpose (NumPy, SciPy and soundfile): joblib workers import it.
Everything here is private.
"""

import io
import zlib
from fractions import Fraction

import numpy as np

#: Bump when the recipe changes: cached variants of an old recipe are ignored.
AUGMENT_VERSION = 2

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


def variant_rng(seed, variant, path):
    """Return the generator of one variant of one file, the same in every process.

    Parameters
    ----------
    seed : int
        ``MFCCTransformer(augment_seed=...)``.
    variant : int
        1 to K.
    path : str
        The audio file (its absolute path is hashed).
    """
    import os

    ident = zlib.crc32(os.path.abspath(path).encode("utf-8", "surrogatepass"))
    return np.random.default_rng([int(seed), int(variant), ident, AUGMENT_VERSION])


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


def production_change(y, sr, rng):
    """One random change of production of a mono waveform.

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

    Returns
    -------
    y_changed : ndarray of shape (n_samples',), float32
        The changed waveform (a speed change alters its length).
    """
    y = np.asarray(y, dtype=np.float32)
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
    y = y * np.float32(10.0 ** (rng.uniform(*GAIN_DB) / 20.0))
    return np.ascontiguousarray(y, dtype=np.float32)
