"""Property-based tests: audio files nobody listed (issue 15, item 4).

Hypothesis writes files that are valid but odd (every format soundfile writes,
1 to 8 channels, 8 kHz to 192 kHz, 1 sample to 10 minutes, silence, full-scale
square waves, extreme finite values) and broken ones (random bytes, files cut
at random offsets, valid headers with garbage bodies, wrong extensions). Each
must give finite features of the right shape, or raise ``AudioLoadError``
naming the file: never another exception, a hang (each file has a time limit)
or a NaN.

The default run is small and seeded (``derandomize``); the ``slow`` variant
tries 2,000 files.
"""

import contextlib
import os
import signal
import tempfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
sf = pytest.importorskip("soundfile")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from genreclf.audio import load_audio  # noqa: E402
from genreclf.exceptions import AudioLoadError  # noqa: E402
from genreclf.features import MFCCTransformer  # noqa: E402

SR = 22050
DURATION = 0.5
N_MFCC = 20
#: Seconds one file may take (decode + features) before the test fails.
PER_FILE_TIMEOUT = 20

#: Every (format, subtype) pair that this libsndfile writes, RAW aside (it has
#: no header, so reading it back is the broken case "not audio").
FORMATS = sorted(
    (fmt, sub)
    for fmt in sf.available_formats()
    if fmt != "RAW"
    for sub in sf.available_subtypes(fmt)
    if sf.check_format(fmt, sub)
)
EXTENSIONS = {
    "WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3",
    "AIFF": "aiff", "AU": "au", "CAF": "caf", "W64": "w64", "RF64": "wav",
}  # fmt: skip
SIGNALS = ("silence", "square", "noise", "extreme", "tone")
RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000)

_TRANSFORMER = MFCCTransformer(
    n_mfcc=N_MFCC, duration=DURATION, memory=None, n_jobs=1
).fit()
_N_FRAMES = None


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    """Fail a block that runs longer than ``seconds`` (SIGALRM, main thread)."""

    def handler(signum, frame):
        raise _Timeout(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _samples(kind, n, channels, rng, subtype):
    if kind == "silence":
        data = np.zeros((n, channels))
    elif kind == "square":
        period = int(rng.integers(2, 200))
        data = np.where((np.arange(n) // period) % 2, 1.0, -1.0)[:, None]
        data = np.repeat(data, channels, axis=1)
    elif kind == "noise":
        data = rng.uniform(-1, 1, (n, channels))
    elif kind == "extreme" and subtype in ("FLOAT", "DOUBLE"):
        # the largest finite values the subtype holds (the encoders of lossy
        # codecs abort libsndfile on such input, so they get full scale)
        big = 3e38 if subtype == "FLOAT" else 1e300
        data = rng.choice([-big, big, 0.0, np.finfo(np.float32).tiny], (n, channels))
    elif kind == "extreme":
        data = rng.choice([-1.0, 1.0, 0.0], (n, channels))
    else:
        t = np.arange(n)[:, None] / 1000.0
        data = 0.5 * np.sin(2 * np.pi * 440 * t * (1 + np.arange(channels)))
    return data


@st.composite
def valid_files(draw, max_samples):
    """``(folder-relative name, writer)`` of a valid but odd audio file."""
    fmt, subtype = draw(st.sampled_from(FORMATS))
    channels = draw(st.integers(1, 8))
    sr = draw(st.sampled_from(RATES))
    seconds = draw(st.sampled_from([None, 1.0, 30.0, 600.0]))
    n = int(seconds * sr) if seconds else draw(st.integers(1, 4 * sr))
    n = max(1, min(n, max_samples // channels))
    kind = draw(st.sampled_from(SIGNALS))
    seed = draw(st.integers(0, 2**32 - 1))
    return {"kind": "valid", "format": fmt, "subtype": subtype, "channels": channels,
            "sr": sr, "n": n, "signal": kind, "seed": seed}  # fmt: skip


@st.composite
def broken_files(draw):
    """A broken file: random bytes, a cut file, garbage body, wrong extension."""
    how = draw(st.sampled_from(["random", "truncated", "garbage_body", "renamed"]))
    fmt, subtype = draw(st.sampled_from(FORMATS))
    return {"kind": how, "format": fmt, "subtype": subtype, "channels": 2,
            "sr": draw(st.sampled_from(RATES)), "n": draw(st.integers(1, 20000)),
            "signal": "noise", "seed": draw(st.integers(0, 2**32 - 1)),
            "cut": draw(st.floats(0, 1)), "size": draw(st.integers(1, 4096)),
            "ext": draw(st.sampled_from(["wav", "mp3", "flac", "ogg", "au", "bin"]))}  # fmt: skip


def _write_valid(spec, folder):
    """Write the file of ``spec``; return its path, or None if libsndfile refuses."""
    rng = np.random.default_rng(spec["seed"])
    ext = EXTENSIONS.get(spec["format"], spec["format"].lower())
    path = os.path.join(folder, f"clip.{ext}")
    if spec["subtype"].startswith("ALAC") and spec["channels"] > 2:
        return None  # libsndfile's ALAC encoder aborts the process on these
    data = _samples(spec["signal"], spec["n"], spec["channels"], rng, spec["subtype"])
    try:
        sf.write(path, data, spec["sr"], format=spec["format"], subtype=spec["subtype"])
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None  # this format cannot hold these channels or this rate
    return path


def _write(spec, folder):
    if spec["kind"] == "valid":
        return _write_valid(spec, folder)
    rng = np.random.default_rng(spec["seed"])
    path = os.path.join(folder, f"broken.{spec['ext']}")
    if spec["kind"] == "random":
        with open(path, "wb") as fh:
            fh.write(rng.bytes(spec["size"]))
        return path
    source = _write_valid({**spec, "kind": "valid"}, folder)
    if source is None:
        return None
    raw = open(source, "rb").read()
    os.remove(source)
    if spec["kind"] == "truncated":
        raw = raw[: int(len(raw) * spec["cut"])]
    elif spec["kind"] == "garbage_body":
        keep = min(len(raw), 64)
        raw = raw[:keep] + rng.bytes(max(0, len(raw) - keep))
    with open(path, "wb") as fh:  # "renamed": the bytes under another extension
        fh.write(raw)
    return path


def _check_one(spec):
    """Decode and featurise the file of ``spec``: finite features or AudioLoadError."""
    global _N_FRAMES
    with tempfile.TemporaryDirectory() as folder:
        path = _write(spec, folder)
        hypothesis.assume(path is not None)
        with _time_limit(PER_FILE_TIMEOUT):
            try:
                y = load_audio(path, sr=SR, duration=DURATION)
            except AudioLoadError as exc:
                assert path in str(exc), f"{spec}: {exc}"
                return "rejected"
            assert y.dtype == np.float32 and y.ndim == 1, spec
            assert y.size <= round(DURATION * SR), spec
            assert np.isfinite(y).all(), spec
            try:
                X = _TRANSFORMER.transform([path])
            except AudioLoadError as exc:
                assert path in str(exc), f"{spec}: {exc}"
                return "rejected"
        if _N_FRAMES is None:
            _N_FRAMES = X.shape[-1]
        assert X.shape == (1, 1, N_MFCC, _N_FRAMES), (spec, X.shape)
        assert np.isfinite(X).all(), f"non-finite features for {spec}"
        return "ok"


_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.filter_too_much, HealthCheck.too_slow],
}


@settings(max_examples=40, derandomize=True, **_COMMON)
@given(valid_files(max_samples=200_000))
def test_valid_odd_files_give_finite_features_or_a_named_error(spec):
    _check_one(spec)


@settings(max_examples=40, derandomize=True, **_COMMON)
@given(broken_files())
def test_broken_files_raise_audio_load_error_naming_the_file(spec):
    _check_one(spec)


@pytest.mark.slow
@settings(max_examples=2000, derandomize=True, **_COMMON)
@given(st.one_of(valid_files(max_samples=600 * 8000), broken_files()))
def test_many_generated_files(spec):
    _check_one(spec)


def test_extreme_float_values_are_rejected_with_the_name(tmp_path):
    """Found by this suite: float samples near 3e38 decoded to NaN after mixing."""
    path = tmp_path / "loud.wav"
    sf.write(path, np.full((4800, 2), 3e38, np.float32), 48000, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match=r"loud\.wav: sample values up to 3e\+38"):
        load_audio(path)


def test_mp3_longer_than_its_header_warns_with_the_name(tmp_path, capfd):
    """Issue 15: mpg123's "Xing stream size off" reached stderr without a name."""
    from genreclf.exceptions import GenreclfWarning

    path = tmp_path / "long.mp3"
    t = np.arange(44100) / 22050
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), 22050, format="MP3")
    with open(path, "ab") as fh:
        fh.write(np.random.default_rng(0).bytes(5000))
    capfd.readouterr()
    with pytest.warns(GenreclfWarning, match=r"long\.mp3: its MP3 header declares"):
        y = load_audio(path)
    assert y.size and np.isfinite(y).all()
    assert "Xing" not in capfd.readouterr().err  # no nameless decoder line
