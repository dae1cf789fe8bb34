"""Decode audio files to mono float32 waveforms at a fixed sampling rate.

:func:`load_audio` reads only the frames it needs with :mod:`soundfile`
(libsndfile reads WAV, FLAC, OGG/Vorbis, MP3 and AU, among others), mixes them
down to mono and resamples the mono signal with soxr. Every failure raises
:class:`AudioLoadError`, whose message names the file and the reason.
"""

import contextlib
import errno
import math
import os
import re
import stat
import sys
import tempfile
import warnings

import numpy as np

from genreclf.exceptions import AudioLoadError, GenreclfWarning

__all__ = ["DEFAULT_SR", "AudioLoadError", "load_audio"]

DEFAULT_SR = 22050

# Bytes that start common non-audio files, to say what a file is when it is
# not audio (a renamed image or document).
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
)
# How far to look for a Xing/Info/VBRI header, which makes an MP3 frame count exact.
_MP3_HEADER_SCAN = 1 << 13
_MP3_FRAME = 1152
#: Largest sample magnitude accepted: 80 dB above full scale (1.0). Larger values
#: come from corrupt or mis-scaled float files and overflow the features.
_MAX_PEAK = 1e4
_WAV_SHOULD_BE = re.compile(r"(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)")


def _sniff(path):
    """Describe what a file that libsndfile refused looks like, or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text"
    return None


def _check_path(path):
    """Raise AudioLoadError unless ``path`` is a non-empty regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise AudioLoadError(path, "broken symbolic link") from None
        raise AudioLoadError(path, "file not found") from None
    except PermissionError as exc:
        raise AudioLoadError(path, f"permission denied ({exc.strerror})") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioLoadError(path, "symbolic link loop") from None
        raise AudioLoadError(path, f"cannot access file ({exc.strerror})") from None
    except (TypeError, ValueError) as exc:
        raise AudioLoadError(path, f"invalid path ({exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioLoadError(path, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioLoadError(path, "not a regular file")
    if st.st_size == 0:
        raise AudioLoadError(path, "empty file (0 bytes)")
    return st


def _mp3_stream_header(path):
    """Read an MP3's Xing/Info/VBRI header.

    Returns
    -------
    found : bool
        Whether the file has such a header (its frame count is then exact).
    declared : int or None
        Stream size in bytes that the Xing/Info header declares.
    actual : int
        Bytes in the file after the ID3v2 tag.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(10)
            start = 0
            if head[:3] == b"ID3" and len(head) == 10:
                tag = 0
                for byte in head[6:10]:
                    tag = (tag << 7) | (byte & 0x7F)
                start = 10 + tag + (10 if head[5] & 0x10 else 0)
            fh.seek(start)
            block = fh.read(_MP3_HEADER_SCAN)
    except OSError:
        return False, None, 0
    actual = size - start
    for tag in (b"Xing", b"Info"):
        i = block.find(tag)
        if i >= 0 and len(block) >= i + 16:
            flags = int.from_bytes(block[i + 4 : i + 8], "big")
            j = i + 8 + (4 if flags & 1 else 0)
            declared = int.from_bytes(block[j : j + 4], "big") if flags & 2 else None
            return True, declared or None, actual
    return b"VBRI" in block, None, actual


def _resample(y, orig_sr, target_sr):
    """Resample a 1-D float32 signal (soxr 'HQ', as ``librosa.load`` does)."""
    if orig_sr == target_sr:
        return y
    try:
        import soxr
    except ImportError:  # pragma: no cover - soxr is a librosa dependency
        from scipy.signal import resample_poly

        g = math.gcd(int(orig_sr), int(target_sr))
        out = resample_poly(y, target_sr // g, orig_sr // g)
        return out.astype(np.float32, copy=False)
    return soxr.resample(y, orig_sr, target_sr, quality="HQ")


def _check_complete(path, info, is_mp3):
    """Raise AudioLoadError when the file is shorter than its header says.

    Uses libsndfile's own diagnostics (WAV/AIFF data size, Ogg end-of-stream)
    and the MP3 Xing/Info stream size, so a cut file is found without decoding
    the part that is missing.
    """
    bad = _WAV_SHOULD_BE.search(info)
    if bad and int(bad.group(2)) < int(bad.group(1)):
        raise AudioLoadError(
            path,
            f"truncated file: header declares {bad.group(1)} bytes of audio, "
            f"only {bad.group(2)} present",
        )
    if "Last page lacks an end-of-stream bit" in info:
        raise AudioLoadError(path, "truncated file: the last Ogg page is missing")
    if is_mp3:
        _, declared, actual = _mp3_stream_header(path)
        if declared and actual < declared * 0.99:
            raise AudioLoadError(
                path,
                f"truncated file: MP3 header declares {declared} bytes, "
                f"only {actual} present",
            )


@contextlib.contextmanager
def _c_stderr_captured():
    """Collect what C libraries write to file descriptor 2 during the block.

    Yields a list that holds the text once the block has ended. Where file
    descriptor 2 cannot be duplicated, nothing is captured.
    """
    captured = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield captured
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read(4096).decode("utf-8", "replace"))


def _mp3_size_mismatch(path):
    """Describe a Xing/Info header whose stream size is too small, or None.

    A file longer than its header declares decodes, but mpg123 prints a
    warning of its own (without the file's name) for it.
    """
    found, declared, actual = _mp3_stream_header(path)
    if found and declared and actual > declared * 1.01:
        return f"its MP3 header declares {declared} bytes, the file holds {actual}"
    return None


def _read_soundfile(path, offset, duration):
    """Decode with soundfile; a decoder's own warning is re-issued with the name."""
    mismatch = _mp3_size_mismatch(path)
    if mismatch is None:
        return _read_soundfile_quiet(path, offset, duration)
    with _c_stderr_captured() as captured:
        result = _read_soundfile_quiet(path, offset, duration)
    said = " ".join(" ".join(captured).split())
    warnings.warn(
        f"{path}: {mismatch} (extra data after the audio); decoded anyway, "
        f"seeking in it is approximate{f' [decoder: {said}]' if said else ''}",
        GenreclfWarning,
        stacklevel=3,
    )
    return result


def _read_soundfile_quiet(path, offset, duration):
    """Decode the needed frames with soundfile; return (mono float32, native sr)."""
    import soundfile as sf

    with sf.SoundFile(path) as fh:
        native_sr = fh.samplerate
        total = fh.frames
        is_mp3 = fh.format == "MP3"
        _check_complete(path, fh.extra_info, is_mp3)
        if total <= 0:
            raise AudioLoadError(path, "no audio samples (header only, 0 frames)")
        start = int(round(offset * native_sr))
        if start >= total:
            raise AudioLoadError(
                path,
                f"offset {offset:g} s is past the end of the audio "
                f"({total / native_sr:.3f} s)",
            )
        if duration is None:
            n_frames = total - start
        else:
            # A few extra native frames so that rounding never leaves us short.
            n_frames = min(total - start, int(math.ceil(duration * native_sr)) + 1)
        if start:
            fh.seek(start)
        data = fh.read(n_frames, dtype="float32", always_2d=True)
    got = data.shape[0]
    short = n_frames - got
    if short > 0 and not (is_mp3 and short < _MP3_FRAME):
        if not is_mp3 or _mp3_stream_header(path)[0]:
            raise AudioLoadError(
                path,
                f"truncated or corrupt file: decoded {start + got} of "
                f"{total} frames announced by its header",
            )
    if got == 0:
        raise AudioLoadError(path, "no audio samples could be decoded")
    if data.shape[1] == 1:
        y = data[:, 0]
    else:
        # A matrix-vector product is ~50x faster than mean(axis=1) on (n, 2).
        y = data @ np.full(data.shape[1], 1.0 / data.shape[1], dtype=np.float32)
    return np.ascontiguousarray(y, dtype=np.float32), native_sr


def _read_audioread(path, offset, duration):
    """Decode with audioread (formats libsndfile cannot read), if available."""
    import audioread

    chunks = []
    with audioread.audio_open(path) as fh:
        native_sr, channels = fh.samplerate, fh.channels
        start = int(round(offset * native_sr)) * channels
        stop = (
            None
            if duration is None
            else start + int(math.ceil(duration * native_sr) + 1) * channels
        )
        pos = 0
        for buf in fh:
            block = np.frombuffer(buf, "<i2").astype(np.float32) / 32768.0
            lo, hi = pos, pos + block.size
            pos = hi
            if hi <= start:
                continue
            chunks.append(
                block[max(start - lo, 0) : None if stop is None else stop - lo]
            )
            if stop is not None and pos >= stop:
                break
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if data.size == 0:
        raise AudioLoadError(path, "no audio samples could be decoded")
    data = data[: data.size - data.size % channels].reshape(-1, channels)
    return np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)), native_sr


def _fallback(path, offset, duration, sf_reason):
    """Try audioread for a file libsndfile refused; raise AudioLoadError if not."""
    try:
        import audioread  # noqa: F401
    except ImportError:
        raise AudioLoadError(
            path, f"unsupported or unrecognised audio format ({sf_reason})"
        ) from None
    try:
        return _read_audioread(path, offset, duration)
    except AudioLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure names the file
        raise AudioLoadError(
            path,
            f"unsupported or unrecognised audio format ({sf_reason}; "
            f"audioread: {type(exc).__name__}: {str(exc) or 'no backend reads it'})",
        ) from exc


def load_audio(path, sr=DEFAULT_SR, duration=None, offset=0.0, mono=True):
    """Decode an audio file to a mono float32 waveform at ``sr``.

    Only the frames from ``offset`` to ``offset + duration`` are decoded; they
    are mixed down to mono at the file's own rate and then resampled (soxr
    'HQ', the same as ``librosa.load``).

    Parameters
    ----------
    path : str or path-like
        An audio file (WAV, FLAC, OGG/Vorbis, MP3, AU, ... at any rate and
        channel count).
    sr : int, default=22050
        Sampling rate of the returned waveform.
    duration : float or None, default=None
        Seconds to read from ``offset``; None reads to the end. The result may
        be shorter when the file ends first.
    offset : float, default=0.0
        Seconds to skip from the start.
    mono : bool, default=True
        Must be True: waveforms are always mixed down to one channel.

    Returns
    -------
    y : ndarray of shape (n_samples,), float32
        The waveform, with ``n_samples <= round(duration * sr)`` when
        ``duration`` is given.

    Raises
    ------
    AudioLoadError
        When the file is missing, a directory, empty, not audio, truncated or
        corrupt, holds no samples, non-finite samples or samples far beyond
        full scale (above 1e4 in magnitude), or is in a format no
        available decoder reads. The message names the file and the reason.

    See Also
    --------
    genreclf.features.MFCCTransformer : Uses this to decode every clip.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> t = np.arange(44100) / 44100
    >>> sf.write(path, np.sin(2 * np.pi * 440 * t), 44100)
    >>> y = load_audio(path, sr=22050, duration=0.5)
    >>> y.shape, y.dtype
    ((11025,), dtype('float32'))
    """
    if not mono:
        raise ValueError("load_audio always returns mono audio; mono must be True")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer, got {sr!r}")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise ValueError(
            f"duration must be a positive number or None, got {duration!r}"
        )
    if not (offset >= 0 and math.isfinite(offset)):
        raise ValueError(f"offset must be a non-negative number, got {offset!r}")
    path = os.fspath(path)
    _check_path(path)

    import soundfile as sf

    try:
        y, native_sr = _read_soundfile(path, offset, duration)
    except AudioLoadError:
        raise
    except sf.LibsndfileError as exc:
        what = _sniff(path)
        if what is not None:
            raise AudioLoadError(
                path, f"not an audio file (looks like {what})"
            ) from exc
        detail = (exc.error_string or "").strip()
        if exc.code == 1:  # SF_ERR_UNRECOGNISED_FORMAT: maybe another decoder can
            y, native_sr = _fallback(path, offset, duration, detail or "unknown")
        elif exc.code in (2, 3, 4) or (detail and "does not exist" not in detail):
            raise AudioLoadError(
                path, f"corrupt or unreadable audio ({detail})"
            ) from exc
        else:  # libsndfile's internal codes come with misleading texts
            raise AudioLoadError(
                path,
                f"corrupt or not audio: no decodable data (libsndfile code {exc.code})",
            ) from exc
    except MemoryError:
        raise AudioLoadError(path, "not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - wrap every library error with the name
        raise AudioLoadError(
            path, f"corrupt or unreadable audio ({type(exc).__name__}: {exc})"
        ) from exc

    if not np.isfinite(y).all():
        raise AudioLoadError(path, "contains non-finite samples (NaN or infinity)")
    peak = float(np.max(np.abs(y)))
    if peak > _MAX_PEAK:
        raise AudioLoadError(
            path,
            f"sample values up to {peak:.3g}, far outside the [-1, 1] range of "
            "audio (corrupt or mis-scaled data)",
        )
    try:
        y = _resample(y, native_sr, sr)
    except Exception as exc:  # noqa: BLE001
        raise AudioLoadError(
            path, f"resampling {native_sr} Hz -> {sr} Hz failed ({exc})"
        ) from exc
    y = np.asarray(y, dtype=np.float32)
    if not np.isfinite(y).all():  # pragma: no cover - bounded input stays finite
        raise AudioLoadError(path, f"resampling {native_sr} Hz -> {sr} Hz overflowed")
    if duration is not None:
        y = y[: int(round(duration * sr))]
    return y
