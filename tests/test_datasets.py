"""Tests for genreclf.datasets: load_fma, load_folder, make_synthetic, check_files."""

import hashlib
import os
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FMA_TRACKS, fma_tracks_frame

from genreclf import _synthetic, datasets
from genreclf.datasets import (
    GENRES,
    GTZAN_GENRES,
    KNOWN_BAD_FMA_TRACKS,
    SYNTHETIC_GENRES,
    DatasetWarning,
    check_files,
    load_fma,
    load_folder,
    make_synthetic,
)


def ids_of(paths):
    return [int(Path(p).stem) for p in paths]


def sha1(path):
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def assert_paths_array(paths, y):
    for arr in (paths, y):
        assert isinstance(arr, np.ndarray) and arr.ndim == 1
        assert arr.dtype == object and all(isinstance(v, str) for v in arr)
    assert len(paths) == len(y)
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in paths)


def test_constants():
    assert GENRES == sorted(GENRES) and len(GENRES) == 8
    assert "Hip-Hop" in GENRES and "International" in GENRES
    assert len(GTZAN_GENRES) == 10 and "hiphop" in GTZAN_GENRES
    assert set(KNOWN_BAD_FMA_TRACKS) == {99134, 108925, 133297, 98565, 98567, 98569}


# ------------------------------------------------------------------ FMA


@pytest.fixture
def fma_root(tmp_path, fma_layout):
    return fma_layout(tmp_path, subsets=("small", "medium", "large"))


def test_fixture_has_fma_tracks_csv_layout(fma_root):
    csv_path = fma_root / "fma_metadata" / "tracks.csv"
    lines = csv_path.read_text().splitlines()
    # As in the real file: two header rows, then the index name row.
    assert lines[0] == ",album,artist,set,set,track,track,track"
    assert lines[1] == ",title,name,split,subset,genre_top,genres,title"
    assert lines[2] == "track_id,,,,,,,"
    table = pd.read_csv(csv_path, index_col=0, header=[0, 1])
    assert table.index.name == "track_id"
    assert list(table.index) == [t[0] for t in FMA_TRACKS]
    assert table[("track", "genre_top")].tolist()[:3] == ["Hip-Hop", "Hip-Hop", "Pop"]
    assert table[("track", "title")].iloc[0] == "Title 2,\nwith a line break"


def test_read_tracks_matches_pandas_two_level_read(fma_root):
    csv_path = fma_root / "fma_metadata" / "tracks.csv"
    full = pd.read_csv(csv_path, index_col=0, header=[0, 1]).sort_index()
    fast = datasets._read_fma_tracks(csv_path)
    assert list(fast.index) == list(full.index)
    for key, column in datasets._FMA_COLUMNS.items():
        assert fast[key].fillna("-").tolist() == full[column].fillna("-").tolist()
    unlabelled = [tid for tid, _, _, genre in FMA_TRACKS if genre is None]
    assert fast.index[fast["genre_top"].isna()].tolist() == unlabelled


def test_load_fma_small_excludes_known_bad_and_warns(fma_root):
    with pytest.warns(
        DatasetWarning, match=r"2 known-bad tracks excluded: 098565, 099134"
    ):
        paths, y = load_fma(fma_root)
    assert_paths_array(paths, y)
    assert ids_of(paths) == [2, 5, 10, 140, 141]
    assert list(y) == ["Hip-Hop", "Hip-Hop", "Pop", "Folk", "Folk"]
    assert paths[0] == str(fma_root / "fma_small" / "000" / "000002.mp3")


def test_load_fma_return_excluded(fma_root):
    with pytest.warns(DatasetWarning):
        paths, y, excluded = load_fma(fma_root, return_excluded=True)
    bad_short = str(fma_root / "fma_small" / "098" / "098565.mp3")
    bad_empty = str(fma_root / "fma_small" / "099" / "099134.mp3")
    assert excluded == {
        bad_short: "known bad: far shorter than 30 s",
        bad_empty: "known bad: no audio in the FMA release",
    }
    assert not set(excluded) & set(paths)


def test_load_fma_keep_known_bad(fma_root, recwarn):
    paths, _ = load_fma(fma_root, exclude_known_bad=False)
    assert ids_of(paths) == [2, 5, 10, 140, 141, 98565, 99134]
    assert not [w for w in recwarn if issubclass(w.category, DatasetWarning)]


@pytest.mark.filterwarnings("ignore::genreclf.datasets.DatasetWarning")
@pytest.mark.parametrize(
    "split, expected",
    [
        ("training", [2, 140, 141]),
        ("validation", [5]),
        ("test", [10]),
        (("validation", "test"), [5, 10]),
    ],
)
def test_load_fma_official_split(fma_root, split, expected):
    paths, y = load_fma(fma_root, split=split)
    assert ids_of(paths) == expected


def test_load_fma_subsets_are_nested(fma_root):
    with pytest.warns(DatasetWarning):
        medium, y_medium = load_fma(fma_root, subset="medium")
    assert ids_of(medium) == [2, 5, 10, 140, 141, 213]
    assert all("fma_medium" in p for p in medium)
    assert y_medium[-1] == "Rock"
    with pytest.warns(DatasetWarning, match="1 tracks without genre_top left out"):
        large, _, excluded = load_fma(fma_root, subset="large", return_excluded=True)
    assert ids_of(large) == [2, 5, 10, 140, 141, 213, 255]
    assert excluded[str(fma_root / "fma_large" / "000" / "000256.mp3")] == (
        "no genre_top label in tracks.csv"
    )


def test_load_fma_missing_audio_is_reported(tmp_path, fma_layout):
    root = fma_layout(tmp_path, missing=(140, 10))
    missing = [str(root / "fma_small" / "000" / f"{t:06d}.mp3") for t in (10, 140)]
    with pytest.warns(DatasetWarning, match="2 audio files missing") as record:
        paths, y, excluded = load_fma(root, return_excluded=True)
    message = str(record[0].message)
    assert all(m in message for m in missing)
    assert ids_of(paths) == [2, 5, 141]
    assert list(y) == ["Hip-Hop", "Hip-Hop", "Folk"]
    assert {excluded[m] for m in missing} == {"missing: audio file not found"}
    with pytest.raises(FileNotFoundError, match=r"2 audio files listed in tracks.csv"):
        load_fma(root, on_missing="raise")


def test_load_fma_many_missing_are_summarised(tmp_path, fma_layout):
    tracks = [(i, "small", "training", "Rock") for i in range(1, 31)]
    root = fma_layout(tmp_path, tracks=tracks, missing=range(2, 31))
    with pytest.warns(DatasetWarning, match=r"29 audio files missing.*and 9 more"):
        paths, _ = load_fma(root)
    assert ids_of(paths) == [1]


def test_load_fma_errors(tmp_path, fma_layout):
    with pytest.raises(
        FileNotFoundError, match=r"fma_metadata.tracks\.csv: FMA metadata"
    ):
        load_fma(tmp_path)
    root = fma_layout(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=r"fma_medium: FMA audio folder not found"
    ):
        load_fma(root, subset="medium")
    with pytest.raises(ValueError, match="subset must be one of"):
        load_fma(root, subset="tiny")
    with pytest.raises(ValueError, match="split must be one of"):
        load_fma(root, split="train")
    with pytest.raises(ValueError, match="on_missing must be one of"):
        load_fma(root, on_missing="ignore")
    # A tracks.csv without the label column.
    frame = fma_tracks_frame().drop(columns=[("track", "genre_top")])
    frame.to_csv(root / "fma_metadata" / "tracks.csv")
    with pytest.raises(
        ValueError, match=r"tracks.csv: column \('track', 'genre_top'\)"
    ):
        load_fma(root)
    (root / "fma_metadata" / "tracks.csv").write_text("track_id\n")
    with pytest.raises(ValueError, match="two-row column header"):
        load_fma(root)


@pytest.mark.real_audio
def test_load_fma_on_real_mp3s(real_audio_dir, tmp_path):
    # The real folder holds FMA's audio layout but no tracks.csv: add one.
    labels = pd.read_csv(real_audio_dir / "fma" / "labels.csv")
    tracks = [
        (int(t), "small", "training", g)
        for t, g in zip(labels["track_id"], labels["genre_top"], strict=True)
    ]
    (tmp_path / "fma_metadata").mkdir()
    fma_tracks_frame(tracks).to_csv(tmp_path / "fma_metadata" / "tracks.csv")
    (tmp_path / "fma_small").symlink_to(real_audio_dir / "fma" / "fma_small")
    paths, y = load_fma(tmp_path)
    assert ids_of(paths) == sorted(labels["track_id"])
    assert sorted(y) == sorted(labels["genre_top"])


# ----------------------------------------------------------------- folders


def write_wav(path, seconds=0.05, sr=8000):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(b"\x00\x00" * int(seconds * sr))
    return path


def test_load_folder_folder_per_genre(tmp_path):
    for rel in [
        "rock/b.wav",
        "rock/a.mp3",
        "jazz/x.flac",
        "jazz/sub/y.ogg",
        "jazz/notes.txt",
        "jazz/.hidden.wav",
        ".git/z.wav",
        "blues/c.au",
    ]:
        write_wav(tmp_path / rel)
    paths, y = load_folder(tmp_path)
    assert_paths_array(paths, y)
    rel = [os.path.relpath(p, tmp_path) for p in paths]
    assert rel == [
        "blues/c.au",
        "jazz/sub/y.ogg",
        "jazz/x.flac",
        "rock/a.mp3",
        "rock/b.wav",
    ]
    assert list(y) == ["blues", "jazz", "jazz", "rock", "rock"]


def test_load_folder_warns_about_files_outside_genre_folders(tmp_path):
    write_wav(tmp_path / "rock" / "a.wav")
    write_wav(tmp_path / "stray.00001.wav")
    with pytest.warns(
        DatasetWarning,
        match=r"1 audio files outside the genre folders "
        r"are ignored: stray\.00001\.wav",
    ):
        paths, y = load_folder(tmp_path)
    assert list(y) == ["rock"]


def test_load_folder_flat_gtzan_names(tmp_path):
    for name in [
        "rock.00001.wav",
        "blues.00000.wav",
        "hiphop.00010.WAV",
        "rock.00000.au",
    ]:
        write_wav(tmp_path / name)
    paths, y = load_folder(str(tmp_path))
    assert [os.path.basename(p) for p in paths] == [
        "blues.00000.wav",
        "hiphop.00010.WAV",
        "rock.00000.au",
        "rock.00001.wav",
    ]
    assert list(y) == ["blues", "hiphop", "rock", "rock"]


def test_load_folder_flat_names_without_genre(tmp_path):
    write_wav(tmp_path / "rock.00001.wav")
    write_wav(tmp_path / "mystery.wav")
    with pytest.raises(ValueError, match=r"1 files carry no genre.*mystery\.wav"):
        load_folder(tmp_path)


def test_load_folder_labels_csv(tmp_path):
    write_wav(tmp_path / "afrobeat.mp3")
    write_wav(tmp_path / "sub" / "bolero.wav")
    (tmp_path / "labels.csv").write_text(
        "path,style\nsub/bolero.wav,bolero\nafrobeat.mp3,afrobeat\n"
    )
    paths, y = load_folder(tmp_path)
    assert [os.path.relpath(p, tmp_path) for p in paths] == [
        "afrobeat.mp3",
        "sub/bolero.wav",
    ]
    assert list(y) == ["afrobeat", "bolero"]
    # labels=None ignores it: the folder layout ("sub") is used instead.
    with pytest.warns(DatasetWarning, match="afrobeat.mp3"):
        paths, y = load_folder(tmp_path, labels=None)
    assert list(y) == ["sub"]


def test_load_folder_labels_csv_missing_file(tmp_path):
    write_wav(tmp_path / "a.wav")
    (tmp_path / "labels.csv").write_text("file,genre\na.wav,rock\ngone.wav,jazz\n")
    with pytest.warns(
        DatasetWarning, match=r"1 files listed in .*labels.csv are missing.*gone\.wav"
    ):
        paths, y = load_folder(tmp_path)
    assert list(y) == ["rock"]
    with pytest.raises(FileNotFoundError, match=r"gone\.wav"):
        load_folder(tmp_path, on_missing="raise")


def test_load_folder_labels_file_without_path_column(tmp_path):
    write_wav(tmp_path / "rock.00000.wav")
    (tmp_path / "labels.csv").write_text("track_id,genre_top\n2,Hip-Hop\n")
    with pytest.warns(DatasetWarning, match="needs a path column.*ignored"):
        paths, y = load_folder(tmp_path)
    assert list(y) == ["rock"]
    with pytest.raises(ValueError, match="needs a path column"):
        load_folder(tmp_path, labels=tmp_path / "labels.csv")
    with pytest.raises(FileNotFoundError, match="other.csv: labels file not found"):
        load_folder(tmp_path, labels=tmp_path / "other.csv")


def test_load_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: not a folder"):
        load_folder(tmp_path / "nope")
    (tmp_path / "readme.txt").write_text("no audio")
    with pytest.raises(ValueError, match="no audio files found"):
        load_folder(tmp_path)


@pytest.mark.real_audio
def test_load_folder_real_gtzan(real_audio_dir):
    paths, y = load_folder(real_audio_dir / "gtzan-100")
    assert_paths_array(paths, y)
    assert len(paths) == 100
    assert sorted(set(y)) == GTZAN_GENRES
    assert all(np.sum(y == g) == 10 for g in GTZAN_GENRES)
    assert all(
        os.path.basename(p).startswith(g + ".") for p, g in zip(paths, y, strict=True)
    )
    assert list(load_folder(real_audio_dir / "gtzan-100", labels=None)[1]) == list(y)
    paths, y = load_folder(real_audio_dir / "styles-mp3")
    assert len(paths) == 24 and len(set(y)) == 24
    assert len(load_folder(real_audio_dir / "gtzan-full10")[0]) == 10


# --------------------------------------------------------------- synthetic


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


def test_make_synthetic_is_fast(tmp_path):
    import time

    start = time.perf_counter()
    make_synthetic(tmp_path, n_per_genre=2, duration=5.0, random_state=0)
    assert time.perf_counter() - start < 10  # 80 s of audio (about 0.5 s here)


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


# ------------------------------------------------------------- check_files


@pytest.fixture
def mixed_files(tmp_path, synthetic):
    _, (paths, y) = synthetic
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp3"
    text.write_text("not audio at all " * 20)
    missing = tmp_path / "missing.wav"
    files = [paths[0], str(empty), paths[5], str(text), str(missing), paths[9]]
    labels = [y[0], "bad1", y[5], "bad2", "bad3", y[9]]
    return files, np.array(labels, dtype=object), [str(empty), str(text), str(missing)]


def _transformer(tmp_path):
    from genreclf.features import MFCCTransformer

    return MFCCTransformer(duration=0.5, memory=str(tmp_path / "cache"))


def test_check_files_raise_lists_every_bad_file(tmp_path, mixed_files):
    from genreclf.features import FeatureExtractionError

    files, labels, bad = mixed_files
    with pytest.raises(FeatureExtractionError, match=r"3 of 6 audio files") as info:
        check_files(files, labels, transformer=_transformer(tmp_path))
    assert set(info.value.failures) == set(bad)
    message = str(info.value)
    assert all(b in message for b in bad)
    assert "empty file" in info.value.failures[bad[0]]


def test_check_files_skip_keeps_alignment(tmp_path, mixed_files):
    files, labels, bad = mixed_files
    with pytest.warns(
        DatasetWarning, match=r"3 of 6 files cannot be read and are skipped"
    ):
        paths, y, failures = check_files(
            files, labels, on_error="skip", transformer=_transformer(tmp_path)
        )
    assert list(paths) == [files[0], files[2], files[5]]
    assert list(y) == [labels[0], labels[2], labels[5]]
    assert set(failures) == set(bad)


def test_check_files_all_good_and_cache_is_filled(tmp_path, synthetic):
    _, (paths, y) = synthetic
    transformer = _transformer(tmp_path)
    out_paths, out_y, bad = check_files(paths[:4], list(y[:4]), transformer=transformer)
    assert (
        bad == {} and list(out_paths) == list(paths[:4]) and list(out_y) == list(y[:4])
    )
    assert os.listdir(tmp_path / "cache")  # features were cached for the fit to come
    _, none_y, _ = check_files(paths[:2], transformer=transformer)
    assert none_y is None


def test_check_files_errors(tmp_path):
    with pytest.raises(ValueError, match="on_error must be one of"):
        check_files(["a.wav"], ["x"], on_error="ignore")
    with pytest.raises(ValueError, match="same length, got 2 paths and y of shape"):
        check_files(["a.wav", "b.wav"], ["x"])
