"""Bad input (issue 7, items 1 and 3): every case has a documented outcome.

Either a valid feature (finite float32 MFCCs of the usual width) or an
``AudioLoadError`` whose message names the file and the reason. The table of
these outcomes is in the README ("Bad input").
"""

import os
import re
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np
import pytest
import soundfile as sf

from genreclf.audio import AudioLoadError, load_audio
from genreclf.features import FeatureExtractionError, MFCCTransformer

DURATION = 1.0
N_FRAMES = 44  # 1 s at 22050 Hz, hop 512


def _truncate_mid_frame(path):
    """Cut a file in half at an odd byte (inside a sample / MPEG frame)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 | 1])
    return path


def _make(case, folder, write_audio):
    """Build the file (or path) of one case in ``folder``; return its path."""
    if case == "zero-byte mp3":
        path = folder / "empty.mp3"
        path.write_bytes(b"")
    elif case == "zero-byte wav":
        path = folder / "empty.wav"
        path.write_bytes(b"")
    elif case == "text renamed .mp3":
        path = folder / "lyrics.mp3"
        path.write_text("la la la\n" * 200)
    elif case == "text renamed .wav":
        path = folder / "readme.wav"
        path.write_text("This is not a WAV file.\n" * 50)
    elif case == "PNG image renamed .mp3":
        path = folder / "cover.mp3"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    elif case == "JPEG image renamed .wav":
        path = folder / "photo.wav"
        path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 40)
    elif case == "random bytes .mp3":
        path = folder / "noise.mp3"
        path.write_bytes(np.random.default_rng(1).bytes(20000))
    elif case == "mp3 truncated mid-frame":
        path = write_audio(folder / "cut.mp3", "chirp", 44100, 4.0, 2)
        _truncate_mid_frame(path)
    elif case == "wav truncated mid-frame":
        path = write_audio(folder / "cut.wav", "chirp", 44100, 2.0, 2)
        _truncate_mid_frame(path)
    elif case == "flac truncated mid-frame":
        path = write_audio(folder / "cut.flac", "noise", 22050, 2.0, 1)
        _truncate_mid_frame(path)
    elif case == "ogg truncated mid-page":
        path = write_audio(folder / "cut.ogg", "chirp", 22050, 4.0, 1)
        _truncate_mid_frame(path)
    elif case == "wav header, no samples":
        path = folder / "header_only.wav"
        sf.write(path, np.zeros((0, 1), np.float32), 22050)
    elif case == "silence":
        path = write_audio(folder / "silence.wav", "silence", 22050, 1.0, 1)
    elif case == "clipped full-scale noise":
        path = folder / "clipped.wav"
        noise = np.random.default_rng(2).standard_normal(22050) * 4.0
        sf.write(path, np.clip(noise, -1.0, 1.0), 22050, subtype="PCM_16")
    elif case in ("NaN in float wav", "inf in float wav"):
        path = folder / ("nan.wav" if case.startswith("NaN") else "inf.wav")
        y = np.zeros(22050, np.float32)
        y[1000] = np.nan if case.startswith("NaN") else np.inf
        sf.write(path, y, 22050, subtype="FLOAT")
    elif case.endswith(" kHz"):
        sr = {"8 kHz": 8000, "48 kHz": 48000, "96 kHz": 96000}[case]
        path = write_audio(folder / f"chirp_{sr}.flac", "chirp", sr, 1.0, 1)
    elif case in ("mono", "stereo", "6 channels"):
        channels = {"mono": 1, "stereo": 2, "6 channels": 6}[case]
        path = write_audio(
            folder / f"chirp_{channels}ch.wav", "chirp", 44100, 1.0, channels
        )
    elif case == "0.5 s clip":
        path = write_audio(folder / "short.mp3", "tone", 44100, 0.5, 2)
    elif case == "non-ASCII path":
        path = write_audio(
            folder / "ñandú Музыка 音楽" / "café.wav", "tone", 22050, 1.0
        )
    elif case == "path with spaces":
        path = write_audio(folder / "my music" / "a song.ogg", "tone", 22050, 1.0)
    elif case == "directory":
        path = folder / "albums.wav"
        path.mkdir()
    elif case == "missing path":
        path = folder / "gone.mp3"
    elif case == "symlink loop":
        path = folder / "loop_a.wav"
        os.symlink(folder / "loop_b.wav", path)
        os.symlink(path, folder / "loop_b.wav")
    elif case == "broken symlink":
        path = folder / "dangling.wav"
        os.symlink(folder / "nowhere.wav", path)
    else:  # pragma: no cover
        raise ValueError(case)
    return path


# case -> None (a valid feature) or the reason in the error message
CASES = {
    "zero-byte mp3": "empty file \\(0 bytes\\)",
    "zero-byte wav": "empty file \\(0 bytes\\)",
    "text renamed .mp3": "not an audio file \\(looks like text\\)",
    "text renamed .wav": "not an audio file \\(looks like text\\)",
    "PNG image renamed .mp3": "not an audio file \\(looks like a PNG image\\)",
    "JPEG image renamed .wav": "not an audio file \\(looks like a JPEG image\\)",
    "random bytes .mp3": "corrupt or not audio",
    "mp3 truncated mid-frame": "truncated file: MP3 header declares \\d+ bytes",
    "wav truncated mid-frame": "truncated file: header declares \\d+ bytes",
    "flac truncated mid-frame": "corrupt or unreadable audio",
    "ogg truncated mid-page": "truncated file: the last Ogg page is missing",
    "wav header, no samples": "no audio samples \\(header only, 0 frames\\)",
    "silence": None,
    "clipped full-scale noise": None,
    "NaN in float wav": "contains non-finite samples \\(NaN or infinity\\)",
    "inf in float wav": "contains non-finite samples \\(NaN or infinity\\)",
    "8 kHz": None,
    "48 kHz": None,
    "96 kHz": None,
    "mono": None,
    "stereo": None,
    "6 channels": None,
    "0.5 s clip": None,
    "non-ASCII path": None,
    "path with spaces": None,
    "directory": "is a directory, not an audio file",
    "missing path": "file not found",
    "symlink loop": "symbolic link loop",
    "broken symlink": "broken symbolic link",
}


@pytest.mark.parametrize("case", list(CASES))
def test_load_audio_outcome(case, tmp_path, write_audio):
    path = _make(case, tmp_path, write_audio)
    reason = CASES[case]
    if reason is None:
        y = load_audio(path, duration=DURATION)
        assert y.dtype == np.float32 and y.ndim == 1 and 0 < y.shape[0] <= 22050
        assert np.isfinite(y).all()
    else:
        with pytest.raises(AudioLoadError, match=re.escape(str(path)) + ": " + reason):
            load_audio(path, duration=DURATION)


@pytest.mark.parametrize("case", list(CASES))
def test_transformer_outcome(case, tmp_path, write_audio, audio_files):
    path = _make(case, tmp_path, write_audio)
    good = str(audio_files["tone_22050_1ch.wav"])
    t = MFCCTransformer(duration=DURATION, memory=tmp_path / "cache")
    reason = CASES[case]
    if reason is None:
        X = t.transform([good, path])
        assert X.shape == (2, 1, 20, N_FRAMES) and X.dtype == np.float32
        assert np.isfinite(X).all()
        return
    with pytest.raises(
        FeatureExtractionError, match=re.escape(str(path)) + ": " + reason
    ) as info:
        t.transform([good, path])
    assert list(info.value.failures) == [str(path)]
    assert re.fullmatch(reason + ".*", info.value.failures[str(path)])
    # the good clip was extracted and cached anyway
    entries = list((tmp_path / "cache").rglob("*.mfcc"))
    assert len(entries) == 1


def test_every_bad_file_listed_at_once(tmp_path, write_audio, audio_files):
    bad = [
        str(_make(case, tmp_path, write_audio))
        for case, reason in CASES.items()
        if reason is not None
    ]
    good = [
        str(audio_files["tone_22050_1ch.wav"]),
        str(audio_files["noise_22050_1ch.ogg"]),
    ]
    X = good[:1] + bad + good[1:]
    with pytest.raises(FeatureExtractionError) as info:
        MFCCTransformer(duration=DURATION).transform(X)
    assert list(info.value.failures) == bad
    assert str(info.value).startswith(f"{len(bad)} of {len(X)} audio files")


def test_silence_and_clipping_are_valid_features(tmp_path, write_audio):
    silence = _make("silence", tmp_path, write_audio)
    clipped = _make("clipped full-scale noise", tmp_path, write_audio)
    X = MFCCTransformer(duration=DURATION).transform([silence, clipped])
    assert np.ptp(X[0], axis=-1).max() == 0  # silence: constant over time
    assert np.ptp(X[1]) > 10


def test_short_clip_padded_to_width(tmp_path, write_audio):
    path = _make("0.5 s clip", tmp_path, write_audio)
    X = MFCCTransformer(duration=DURATION).transform([path])
    tail = X[0, 0, :, -15:]
    np.testing.assert_allclose(tail, tail[:, :1].repeat(15, axis=1))


def test_ten_minute_clip_decodes_only_what_is_needed(tmp_path, monkeypatch):
    path = tmp_path / "ten_minutes.wav"
    noise = np.random.default_rng(3).integers(-300, 300, 600 * 22050, dtype=np.int16)
    sf.write(path, noise, 22050, subtype="PCM_16")
    requested = []
    original = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    X = MFCCTransformer(duration=3.0, offset=300.0).transform([path])
    assert X.shape == (1, 1, 20, 130) and np.isfinite(X).all()
    assert sum(requested) <= 3 * 22050 + 2


def test_rates_and_layouts_share_one_width(tmp_path, write_audio):
    cases = ["8 kHz", "48 kHz", "96 kHz", "mono", "stereo", "6 channels"]
    paths = [_make(c, tmp_path, write_audio) for c in cases]
    X = MFCCTransformer(duration=DURATION).transform(paths)
    assert X.shape == (len(cases), 1, 20, N_FRAMES) and np.isfinite(X).all()


# -- the cache survives faults (issue 7, item 3) -------------------------------------


@pytest.fixture
def filled_cache(tmp_path, audio_files):
    paths = [
        str(audio_files[n]) for n in ("tone_22050_1ch.wav", "chirp_22050_1ch.flac")
    ]
    t = MFCCTransformer(duration=DURATION, memory=tmp_path / "cache")
    reference = t.transform(paths)
    entries = sorted((tmp_path / "cache").rglob("*.mfcc"))
    assert len(entries) == 2
    return t, paths, reference, entries


@pytest.mark.parametrize(
    "damage",
    ["truncated", "empty", "garbage", "flipped byte", "wrong shape", "NaN"],
)
def test_damaged_cache_entry_is_recomputed(filled_cache, damage):
    t, paths, reference, entries = filled_cache
    entry = entries[0]
    raw = bytearray(entry.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "empty":
        raw = b""
    elif damage == "garbage":
        raw = np.random.default_rng(0).bytes(len(raw))
    elif damage == "flipped byte":
        raw[len(raw) // 2] ^= 0xFF
    elif damage == "wrong shape":
        raw = raw[:20] + raw[20 + 4 * N_FRAMES :]
    elif damage == "NaN":
        import zlib

        data = np.frombuffer(bytes(raw[20:]), "<f4").copy()
        data[3] = np.nan
        header = np.frombuffer(bytes(raw[4:20]), "<u4").copy()
        header[3] = zlib.crc32(data.tobytes())
        raw = raw[:4] + header.tobytes() + data.tobytes()
    entry.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="is damaged .*recomputing it"):
        X = t.transform(paths)
    np.testing.assert_array_equal(X, reference)
    # the entry was rewritten: a third transform is clean
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(t.transform(paths), reference)


_WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from genreclf.features import MFCCTransformer

    cache, out, *paths = sys.argv[1:]
    X = MFCCTransformer(duration=1.0, memory=cache).transform(paths)
    np.save(out, X)
    """
)


@pytest.mark.integration
def test_two_processes_share_one_cache(tmp_path, write_audio):
    paths = [
        str(
            write_audio(
                tmp_path / "in" / f"clip{i:02d}.wav", kind, 22050, 1.0, 1, seed=i
            )
        )
        for i, kind in enumerate(["tone", "chirp", "noise", "clicks"] * 4)
    ]
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(cache), str(tmp_path / f"out{k}.npy")]
            + paths,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    reference = MFCCTransformer(duration=1.0).transform(paths)
    for k in range(2):
        np.testing.assert_allclose(
            np.load(tmp_path / f"out{k}.npy"), reference, rtol=1e-5, atol=1e-4
        )
    assert len(list(cache.rglob("*.mfcc"))) == len(paths)
    assert not list(cache.rglob(".*"))  # no temporary file left behind
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warm = MFCCTransformer(duration=1.0, memory=cache).transform(paths)
    np.testing.assert_allclose(warm, reference, rtol=1e-5, atol=1e-4)


def test_uncreatable_cache_folder_warns_and_works(tmp_path, audio_files):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    paths = [str(audio_files["tone_22050_1ch.wav"])]
    t = MFCCTransformer(duration=DURATION, memory=blocker / "cache")
    with pytest.warns(RuntimeWarning, match="cannot be created .*without a cache"):
        X = t.transform(paths)
    np.testing.assert_array_equal(
        X, MFCCTransformer(duration=DURATION).transform(paths)
    )


def test_unwritable_cache_folder_warns_and_works(tmp_path, audio_files, monkeypatch):
    paths = [str(audio_files[n]) for n in ("tone_22050_1ch.wav", "noise_22050_1ch.ogg")]
    reference = MFCCTransformer(duration=DURATION).transform(paths)
    t = MFCCTransformer(duration=DURATION, memory=tmp_path / "cache")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # every cache write goes through genreclf._files.atomic_write (mkstemp)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.warns(RuntimeWarning, match="is not writable .*without a cache"):
        X = t.transform(paths)
    np.testing.assert_array_equal(X, reference)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root ignores folder permissions",
)
def test_read_only_cache_folder_warns_and_works(tmp_path, audio_files):
    paths = [str(audio_files["tone_22050_1ch.wav"])]
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        with pytest.warns(RuntimeWarning, match="without a cache"):
            X = MFCCTransformer(duration=DURATION, memory=cache).transform(paths)
    finally:
        cache.chmod(0o755)
    np.testing.assert_array_equal(
        X, MFCCTransformer(duration=DURATION).transform(paths)
    )


def test_missing_cache_folder_is_created_and_recreated(tmp_path, audio_files):
    import shutil

    paths = [str(audio_files["tone_22050_1ch.wav"])]
    cache = tmp_path / "not" / "yet" / "there"
    t = MFCCTransformer(duration=DURATION, memory=cache)
    X = t.transform(paths)
    assert len(list(cache.rglob("*.mfcc"))) == 1
    shutil.rmtree(tmp_path / "not")  # deleted between two runs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(t.transform(paths), X)
    assert len(list(cache.rglob("*.mfcc"))) == 1
