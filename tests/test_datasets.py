"""Tests for genreclf.datasets: load_fma, load_folder, and the names it re-exports.

make_synthetic is tested in test_synthetic.py, check_files in test_features.py.
"""

import os
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FMA_TRACKS, assert_paths_array, fma_tracks_frame

from genreclf import datasets
from genreclf.datasets import (
    GENRES,
    GTZAN_GENRES,
    KNOWN_BAD_FMA_TRACKS,
    DatasetWarning,
    load_fma,
    load_folder,
)


def ids_of(paths):
    return [int(Path(p).stem) for p in paths]


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


def test_moved_names_keep_working():
    import genreclf
    from genreclf import exceptions, features, synthetic

    assert datasets.make_synthetic is synthetic.make_synthetic
    assert genreclf.make_synthetic is synthetic.make_synthetic
    assert datasets.SYNTHETIC_GENRES is synthetic.SYNTHETIC_GENRES
    assert datasets.check_files is features.check_files
    assert genreclf.check_files is features.check_files
    assert datasets.DatasetWarning is exceptions.DatasetWarning
    assert {"make_synthetic", "check_files"} <= set(dir(datasets))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        datasets.nope  # noqa: B018
