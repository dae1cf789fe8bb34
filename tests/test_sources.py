"""Which data a command uses (genreclf.sources)."""

import warnings

import pytest

from genreclf.sources import (
    DEFAULT_TEST_SIZE,
    DEMO_DATA,
    DataSelection,
    find_audio_files,
    holdout,
    load_demo,
    parse_splits,
    select_data,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, None),
        ("", None),
        ("all", None),
        (" ALL ", None),
        ("test", "test"),
        ("training,validation", ["training", "validation"]),
        (" training , , test ", ["training", "test"]),
    ],
)
def test_parse_splits(text, expected):
    assert parse_splits(text) == expected


PATHS = [f"{g}{i}.wav" for g in "abc" for i in range(4)]
GENRES = [p[0] for p in PATHS]


@pytest.mark.parametrize("test_size", [0, 0.0, None])
def test_holdout_of_nothing_keeps_every_file_for_training(test_size):
    X, y, X_eval, y_eval = holdout(PATHS, GENRES, test_size, random_state=0)
    assert list(X) == PATHS and list(y) == GENRES
    assert X_eval is None and y_eval is None


def test_holdout_returns_training_then_evaluation_with_matching_labels():
    X, y, X_eval, y_eval = holdout(PATHS, GENRES, 0.25, random_state=0)
    assert len(X) == 9 and len(X_eval) == 3
    assert sorted(y_eval) == ["a", "b", "c"]  # stratified: one of each
    assert sorted([*X, *X_eval]) == sorted(PATHS)
    for paths, labels in ((X, y), (X_eval, y_eval)):
        assert [p[0] for p in paths] == list(labels)  # each path keeps its genre
    again = holdout(PATHS, GENRES, 0.25, random_state=0)
    assert list(again[2]) == list(X_eval)  # seeded


def test_holdout_names_a_genre_with_a_single_file():
    with pytest.raises(ValueError, match=r"genre 'c' has a single file: holding") as e:
        holdout(["a0", "a1", "b0", "b1", "c0"], ["a", "a", "b", "b", "c"], 0.4)
    assert "at least 2 files per genre" in str(e.value)
    assert "--test-size 0" in str(e.value)
    with pytest.raises(ValueError, match=r"genres 'b', 'c' have a single file"):
        holdout(["a0", "a1", "b0", "c0"], ["a", "a", "b", "c"], 0.5)


@pytest.fixture(scope="module")
def two_genres(tmp_path_factory):
    from genreclf.datasets import make_synthetic

    folder = tmp_path_factory.mktemp("two-genres")
    make_synthetic(
        folder, n_per_genre=4, duration=0.2, random_state=0, genres=["rock", "folk"]
    )
    return folder


def test_select_data_from_a_folder(two_genres):
    selection = select_data(two_genres, random_state=0)
    assert isinstance(selection, DataSelection)
    X, y, X_eval, y_eval, name = selection
    assert name == two_genres.name
    assert len(X_eval) == int(8 * DEFAULT_TEST_SIZE)
    assert sorted(y_eval) == ["folk", "rock"]
    for paths, labels in ((X, y), (X_eval, y_eval)):
        assert all(f"/{g}/" in p for p, g in zip(paths, labels, strict=True))


def test_select_data_with_test_size_zero_trains_on_the_whole_folder(two_genres):
    X, y, X_eval, y_eval, _ = select_data(two_genres, test_size=0)
    assert len(X) == len(y) == 8
    assert sorted(set(y)) == ["folk", "rock"]
    assert X_eval is None and y_eval is None


def test_select_data_for_evaluation_of_a_folder_takes_all_of_it(two_genres):
    X, y, X_eval, y_eval, _ = select_data(two_genres, evaluation_only=True)
    assert X is None and y is None
    assert len(X_eval) == len(y_eval) == 8


def test_select_data_errors(two_genres, tmp_path):
    with pytest.raises(ValueError, match="give data or fma, not both"):
        select_data(two_genres, tmp_path)
    (tmp_path / "empty").mkdir()
    for evaluation_only in (False, True):
        with pytest.raises(ValueError, match=r"empty: no audio files found"):
            select_data(tmp_path / "empty", evaluation_only=evaluation_only)


def test_select_data_from_fma_uses_its_official_splits(fma_layout, tmp_path):
    root = fma_layout(tmp_path / "fma")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the known-bad tracks left out
        X, y, X_eval, y_eval, name = select_data(fma=root)
        assert name == "fma_small"
        assert sorted(y) == ["Folk", "Folk", "Hip-Hop"]  # 98565: known bad
        assert list(y_eval) == ["Pop"]
        both = select_data(fma=root, split="training,validation", eval_split="none")
        assert sorted(both.y) == ["Folk", "Folk", "Hip-Hop", "Hip-Hop"]
        assert both.X_eval is None
        only = select_data(fma=root, split="validation", evaluation_only=True)
    assert only.X is None and list(only.y_eval) == ["Hip-Hop"]


def test_load_demo_writes_once_into_the_cache(tmp_path, monkeypatch):
    import genreclf.datasets

    calls = []

    def fake(folder, **kwargs):
        calls.append((folder, kwargs))
        return ["x.wav"], ["noise"]

    monkeypatch.setattr(genreclf.datasets, "make_synthetic", fake)
    assert load_demo(tmp_path) == (["x.wav"], ["noise"])
    assert calls == [(str(tmp_path / "demo-audio"), DEMO_DATA)]
    assert DEMO_DATA == {"n_per_genre": 20, "duration": 3.0, "random_state": 0}


def test_select_data_without_a_folder_is_the_demo(tmp_path, monkeypatch):
    import genreclf.datasets

    paths = [f"{g}{i}.wav" for g in ("rock", "folk") for i in range(4)]
    monkeypatch.setattr(
        genreclf.datasets,
        "make_synthetic",
        lambda folder, **kwargs: (paths, [p[:4] for p in paths]),
    )
    X, y, X_eval, y_eval, name = select_data(cache_dir=tmp_path, random_state=0)
    assert name == "demo" and len(X) == 6 and sorted(y_eval) == ["folk", "rock"]
    held_out = select_data(cache_dir=tmp_path, random_state=0, evaluation_only=True)
    assert list(held_out.X_eval) == list(X_eval)  # the same held-out part
    with pytest.raises(ValueError, match=r"^no evaluation data: give --data, --fma"):
        select_data(cache_dir=tmp_path, test_size=0, evaluation_only=True)


def test_find_audio_files(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for name in ("a/2.wav", "a/1.MP3", "a/deep/3.flac", "a/notes.txt", "a/.x.wav"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a" / ".hidden" / "4.wav").write_bytes(b"")
    found = find_audio_files([str(tmp_path / "a"), "given.ogg"])
    assert found == [
        str(tmp_path / "a" / "1.MP3"),
        str(tmp_path / "a" / "2.wav"),
        str(tmp_path / "a" / "deep" / "3.flac"),
        "given.ogg",
    ]
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="none: no audio files in this folder"):
        find_audio_files([tmp_path / "none"])
