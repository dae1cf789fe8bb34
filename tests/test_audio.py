"""genreclf.audio: decoding every format, rate and layout; clear errors."""

import re
import sys

import numpy as np
import pytest
import soundfile as sf

from genreclf.audio import DEFAULT_SR, AudioLoadError, load_audio


def _err(path, reason):
    """A ``match`` pattern: the file's name, then the reason."""
    return re.escape(str(path)) + r": .*" + reason


@pytest.mark.parametrize(
    "name",
    [
        f"{kind}_22050_1ch.{fmt}"
        for fmt in ("wav", "flac", "ogg", "mp3", "au")
        for kind in ("tone", "chirp", "noise", "clicks")
    ],
)
def test_every_format_decodes_to_mono_float32(audio_files, name):
    y = load_audio(audio_files[name])
    assert y.dtype == np.float32 and y.ndim == 1
    # mp3 and ogg encoders add a little padding; never more than a frame or two
    assert abs(y.shape[0] - DEFAULT_SR) <= 2 * 1152
    assert np.isfinite(y).all() and 0 < np.abs(y).max() <= 1.5


@pytest.mark.parametrize("sr", [8000, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_any_rate_and_channel_count(audio_files, sr, channels, fmt):
    name = f"chirp_{sr}_{channels}ch.{fmt}"
    if name not in audio_files:
        pytest.skip("MPEG audio has at most 2 channels and 48 kHz")
    y = load_audio(audio_files[name], sr=22050)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.shape[0] - 22050) <= 2 * 1152 * 22050 // sr + 2


def test_matches_librosa_load(audio_files):
    librosa = pytest.importorskip("librosa")
    path = audio_files["chirp_44100_2ch.wav"]
    ours = load_audio(path, sr=22050)
    ref, _ = librosa.load(path, sr=22050)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_mixdown_is_channel_mean(tmp_path):
    data = np.stack([np.full(1000, 0.5), np.full(1000, -0.1)], axis=1)
    path = tmp_path / "two.wav"
    sf.write(path, data, 22050, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), 0.2, atol=1e-6)


def test_duration_and_offset(tmp_path):
    sr = 22050
    ramp = (np.arange(3 * sr) / (3 * sr)).astype(np.float32)
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, sr, subtype="FLOAT")
    y = load_audio(path, duration=1.0, offset=1.0)
    assert y.shape == (sr,)
    np.testing.assert_allclose(y, ramp[sr : 2 * sr])
    # Reading past the end returns what there is
    assert load_audio(path, duration=10.0, offset=2.5).shape == (sr // 2,)


def test_reads_only_the_needed_frames(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros((60 * 8000, 2), np.float32), 8000)
    requested = []
    original = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    y = load_audio(path, sr=8000, duration=2.0, offset=30.0)
    assert y.shape == (16000,)
    assert requested and all(0 < n <= 2 * 8000 + 1 for n in requested)


def test_path_like_and_str(audio_files):
    path = audio_files["tone_22050_1ch.wav"]
    np.testing.assert_array_equal(load_audio(path), load_audio(str(path)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sr": 0}, "sr must be a positive integer"),
        ({"sr": 22050.5}, "sr must be a positive integer"),
        ({"duration": -1.0}, "duration must be a positive number"),
        ({"duration": float("nan")}, "duration must be a positive number"),
        ({"offset": -0.5}, "offset must be a non-negative number"),
        ({"mono": False}, "always returns mono"),
    ],
)
def test_bad_arguments(audio_files, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_audio(audio_files["tone_22050_1ch.wav"], **kwargs)


def test_error_type_and_message(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioLoadError, match=_err(missing, "file not found")) as info:
        load_audio(missing)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.path == str(missing) and err.reason == "file not found"
    assert str(err) == f"{missing}: file not found"
    import pickle

    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.reason) == (err.path, err.reason)


def test_offset_past_the_end(audio_files):
    path = audio_files["tone_22050_1ch.wav"]
    with pytest.raises(AudioLoadError, match=_err(path, "offset 5 s is past the end")):
        load_audio(path, offset=5.0)


def test_unknown_format_without_fallback(tmp_path, monkeypatch):
    path = tmp_path / "odd.xyz"
    path.write_bytes(bytes(range(256)) * 16)
    monkeypatch.setitem(sys.modules, "audioread", None)
    with pytest.raises(
        AudioLoadError, match=_err(path, "unsupported or unrecognised audio format")
    ):
        load_audio(path)


def test_unknown_format_audioread_fails_too(tmp_path):
    pytest.importorskip("audioread")
    path = tmp_path / "odd.m4a"
    path.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(AudioLoadError, match=_err(path, "audioread")):
        load_audio(path)


def test_audioread_fallback_is_used(tmp_path, monkeypatch):
    """A file libsndfile refuses goes to audioread; its PCM is mixed and resampled."""
    pytest.importorskip("audioread")
    import audioread

    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x01" * 2048)  # not anything libsndfile knows
    pcm = (np.tile([[8192, -8192]], (4000, 1))).astype("<i2")

    class FakeAudio:
        samplerate, channels = 8000, 2

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            raw = pcm.tobytes()
            yield from (raw[i : i + 4000] for i in range(0, len(raw), 4000))

    monkeypatch.setattr(audioread, "audio_open", lambda p: FakeAudio())
    y = load_audio(path, sr=8000, duration=0.25, offset=0.125)
    assert y.shape == (2000,) and y.dtype == np.float32
    np.testing.assert_allclose(y, 0.0, atol=1e-6)
