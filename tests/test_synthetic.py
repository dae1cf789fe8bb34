"""Tests for genreclf.synthetic: the generated demo dataset."""

import hashlib
import os
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_paths_array

from genreclf import _synthetic
from genreclf.datasets import load_folder
from genreclf.synthetic import SYNTHETIC_GENRES, make_synthetic


def sha1(path):
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    return out, make_synthetic(out, n_per_genre=6, duration=1.0, random_state=0)


def test_every_synthetic_genre_has_an_engine():
    assert sorted(_synthetic.SYNTHS) == sorted(SYNTHETIC_GENRES)


def test_make_synthetic_layout(synthetic):
    out, (paths, y) = synthetic
    assert_paths_array(paths, y)
    assert len(paths) == 6 * len(SYNTHETIC_GENRES)
    assert list(y) == sorted(y) and set(y) == set(SYNTHETIC_GENRES)
    assert os.path.relpath(paths[0], out) == os.path.join(
        "ambient", "ambient.00000.wav"
    )
    lp, ly = load_folder(out)
    assert list(lp) == list(paths) and list(ly) == list(y)
    with wave.open(paths[0]) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (22050, 1, 2)
        assert w.getnframes() == 22050


def test_make_synthetic_signals_are_sound(synthetic):
    _, (paths, y) = synthetic
    for path in paths:
        with wave.open(path) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
        peak = np.max(np.abs(x))
        assert 0.2 < peak <= 0.91
        assert np.sqrt(np.mean(x**2)) > 0.01  # not silence
    # Clips of one genre differ from each other.
    assert len({sha1(p) for p in paths}) == len(paths)


def test_make_synthetic_deterministic(tmp_path, synthetic):
    _, (paths, _) = synthetic
    again, _ = make_synthetic(
        tmp_path, n_per_genre=2, duration=1.0, random_state=0, genres=["techno", "folk"]
    )
    # Clip i of a genre does not depend on n_per_genre or on the other genres.
    by_name = {os.path.basename(p): sha1(p) for p in paths}
    assert all(sha1(p) == by_name[os.path.basename(p)] for p in again)
    other, _ = make_synthetic(
        tmp_path / "b",
        n_per_genre=2,
        duration=1.0,
        random_state=1,
        genres=["techno", "folk"],
    )
    assert all(sha1(a) != sha1(b) for a, b in zip(again, other, strict=True))


def test_make_synthetic_reuses_and_cleans(tmp_path, monkeypatch):
    paths, _ = make_synthetic(tmp_path, 3, 0.3, random_state=5, genres=["rock"])
    stamps = {p: os.stat(p).st_mtime_ns for p in paths}
    calls = []
    original = _synthetic.synth_clip
    monkeypatch.setattr(
        _synthetic, "synth_clip", lambda *a: calls.append(a[0]) or original(*a)
    )
    again, _ = make_synthetic(tmp_path, 3, 0.3, random_state=5, genres=["rock"])
    assert list(again) == list(paths) and calls == []
    assert {p: os.stat(p).st_mtime_ns for p in paths} == stamps
    # More clips: only the new ones are made.
    more, _ = make_synthetic(tmp_path, 4, 0.3, random_state=5, genres=["rock"])
    assert len(more) == 4 and calls == ["rock"]
    # A damaged file is made again.
    Path(paths[0]).write_bytes(b"garbage")
    make_synthetic(tmp_path, 4, 0.3, random_state=5, genres=["rock"])
    assert calls == ["rock", "rock"]
    # Fewer clips and another genre: our stale files go, other files stay.
    (tmp_path / "rock" / "mine.wav").write_bytes(b"not ours")
    fewer, y = make_synthetic(tmp_path, 1, 0.3, random_state=5, genres=["swing"])
    assert sorted(os.listdir(tmp_path / "rock")) == ["mine.wav"]
    assert list(y) == ["swing"]


def test_make_synthetic_flac(tmp_path):
    import soundfile as sf

    paths, _ = make_synthetic(
        tmp_path, 1, 0.5, sr=16000, random_state=0, genres=["noise"], format="flac"
    )
    info = sf.info(paths[0])
    assert (
        paths[0].endswith(".flac") and info.samplerate == 16000 and info.frames == 8000
    )


def test_make_synthetic_is_learnable(synthetic):
    # Per-clip mean log band energies separate the genres (nearest centroid,
    # leave-one-out): the task is learnable, as a CNN on MFCCs needs.
    _, (paths, y) = synthetic
    feats = []
    for path in paths:
        with wave.open(path) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
        frames = x[: len(x) // 512 * 512].reshape(-1, 512) * np.hanning(512)
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        bands = np.log(
            np.add.reduceat(power, np.geomspace(1, 256, 16).astype(int), 1) + 1e-9
        )
        feats.append(np.r_[bands.mean(0), bands.std(0)])
    feats = np.array(feats)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
    hits = 0
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        centroids = {g: feats[rest & (y == g)].mean(0) for g in SYNTHETIC_GENRES}
        guess = min(centroids, key=lambda g: np.sum((feats[i] - centroids[g]) ** 2))
        hits += guess == y[i]
    assert hits / len(y) >= 0.6  # chance: 1/8


def test_make_synthetic_makes_and_writes_each_clip_once(tmp_path, monkeypatch):
    # What "fast" stood for (the timing is benchmarks/synthetic.py): every clip
    # is synthesised and written exactly once, at its final length, and a
    # second call with the same settings makes and writes nothing.
    made, written = [], []
    synth, write = _synthetic.synth_clip, _synthetic.write_audio
    monkeypatch.setattr(
        _synthetic,
        "synth_clip",
        lambda g, rng, n, sr: made.append((g, n)) or synth(g, rng, n, sr),
    )
    monkeypatch.setattr(
        _synthetic, "write_audio", lambda p, *a: written.append(p) or write(p, *a)
    )
    paths, y = make_synthetic(tmp_path, n_per_genre=2, duration=5.0, random_state=0)
    assert len(paths) == 16
    assert sorted(made) == sorted((g, 5 * 22050) for g in y)
    assert sorted(written) == sorted(paths)
    for path in paths[::5]:
        with wave.open(path) as w:
            assert w.getnframes() == 5 * 22050
    make_synthetic(tmp_path, n_per_genre=2, duration=5.0, random_state=0)
    assert len(made) == 16 and len(written) == 16


def test_make_synthetic_leaves_no_temporary_file(tmp_path, monkeypatch):
    make_synthetic(tmp_path, 1, 0.2, random_state=0, genres=["rock"], format="flac")
    manifest = tmp_path / ".genreclf-synthetic.json"
    before = manifest.read_bytes()
    hidden = sorted(p.name for p in tmp_path.rglob(".*"))
    assert hidden == [manifest.name]

    # A manifest write that fails leaves the old manifest whole.
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("genreclf.synthetic.json.dump", broken)
    with pytest.raises(OSError, match="No space left"):
        make_synthetic(tmp_path, 2, 0.2, random_state=0, genres=["rock"], format="flac")
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.rglob(".*")) == [manifest.name]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"genres": ["polka"]}, "genres must be a non-empty subset"),
        ({"genres": []}, "genres must be a non-empty subset"),
        ({"n_per_genre": 0}, "n_per_genre must be a positive integer"),
        ({"n_per_genre": 1.5}, "n_per_genre must be a positive integer"),
        ({"duration": 0}, "duration must be > 0"),
        ({"sr": 10}, "sr must be an integer sample rate"),
        ({"format": "aac"}, "format must be one of"),
        ({"random_state": -1}, "random_state must be >= 0"),
    ],
)
def test_make_synthetic_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic(tmp_path, **{"n_per_genre": 1, "duration": 0.1, **kwargs})


