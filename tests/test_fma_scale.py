"""benchmarks/fma_scale.py: the synthetic FMA corpus that load_fma reads."""

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from genreclf.datasets import GENRES, KNOWN_BAD_FMA_TRACKS, load_fma

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fma_scale.py"


@pytest.fixture(scope="module")
def fma_scale():
    spec = importlib.util.spec_from_file_location("fma_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fma_scale"] = module  # the writer's worker processes find it
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("fma_scale", None)


@pytest.fixture(scope="module")
def corpus(fma_scale, tmp_path_factory):
    root = tmp_path_factory.mktemp("fma")
    written, cached = fma_scale.write_corpus(root, 3, jobs=2, duration=1.0)
    assert (written, cached) == (3, False)
    return root


def test_the_eight_fma_genres(fma_scale):
    assert sorted(fma_scale.FMA_GENRES) == GENRES


def test_load_fma_reads_the_corpus(fma_scale, corpus):
    paths, y = load_fma(corpus)
    assert len(paths) == 3
    assert set(y) <= set(GENRES) and len(set(y)) == 3
    for path in paths:
        rel = Path(path).relative_to(corpus).as_posix()
        assert re.fullmatch(r"fma_small/(\d{3})/\1\d{3}\.mp3", rel), rel
    rows = {tid: genre for tid, genre, _ in fma_scale.plan_corpus(3)}
    assert sorted(Path(p).stem for p in paths) == [f"{t:06d}" for t in sorted(rows)]
    assert [rows[int(Path(p).stem)] for p in paths] == list(y)


def test_clips_are_stereo_mp3_at_44100(corpus):
    paths, _ = load_fma(corpus)
    for path in paths:
        info = sf.info(path)
        assert (info.format, info.samplerate, info.channels) == ("MP3", 44100, 2)
        assert info.duration == pytest.approx(1.0, abs=0.1)
        audio, _ = sf.read(path)
        assert 0.01 < abs(audio).max() <= 1.0  # music, not silence


def test_tracks_csv_has_fmas_two_level_header(corpus):
    table = pd.read_csv(
        corpus / "fma_metadata" / "tracks.csv", index_col=0, header=[0, 1]
    )
    assert table.index.name == "track_id"
    for column in [
        ("set", "split"),
        ("set", "subset"),
        ("track", "genre_top"),
        ("track", "genres"),
    ]:
        assert column in table.columns
    assert set(table[("set", "subset")]) == {"small"}
    assert set(table[("set", "split")]) <= {"training", "validation", "test"}


def test_a_second_call_finds_the_cached_corpus(fma_scale, corpus):
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*.mp3")}
    assert fma_scale.write_corpus(corpus, 3, duration=1.0) == (0, True)
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*.mp3")} == before
    with pytest.raises(SystemExit, match="holds another corpus"):
        fma_scale.write_corpus(corpus, 4, duration=1.0)


def test_an_interrupted_corpus_is_completed(fma_scale, tmp_path):
    clips = [(tid, genre) for tid, genre, _ in fma_scale.plan_corpus(2)]
    path = fma_scale.audio_path(tmp_path, clips[0][0])
    task = (str(path), clips[0][0], clips[0][1], 0, 0.5)
    assert fma_scale._write_clip(task) == 1  # as if a killed run wrote one
    assert fma_scale.write_corpus(tmp_path, 2, jobs=1, duration=0.5) == (1, False)
    assert len(load_fma(tmp_path)[0]) == 2


def test_official_splits_are_balanced(fma_scale):
    rows = fma_scale.plan_corpus(400)
    assert Counter(g for _, g, _ in rows) == {g: 50 for g in GENRES}
    per_split = Counter(s for _, _, s in rows)
    assert per_split == {"training": 320, "validation": 40, "test": 40}
    for genre in GENRES:
        splits = Counter(s for _, g, s in rows if g == genre)
        assert splits == {"training": 40, "validation": 5, "test": 5}
    ids = [t for t, _, _ in rows]
    assert len(set(ids)) == 400 and not set(ids) & set(KNOWN_BAD_FMA_TRACKS)
    assert max(ids) <= 999_999
    assert len({f"{t:06d}"[:3] for t in ids}) > 10  # spread over the folders


def test_the_same_clip_every_time(fma_scale):
    a = fma_scale.make_clip(2, "Rock", duration=0.5)
    b = fma_scale.make_clip(2, "Rock", duration=0.5)
    assert a.shape == (22050, 2) and a.dtype == "float32"
    assert (a == b).all()
    assert not (a == fma_scale.make_clip(5, "Rock", duration=0.5)).all()


def test_recordings_are_shared_only_within_a_genre_and_split(fma_scale, tmp_path):
    rows = fma_scale.plan_corpus(80)
    sources = fma_scale.recording_sources(rows, unique=3)
    for i, source in enumerate(sources):
        assert rows[source][1:] == rows[i][1:]  # same genre, same split
        assert sources[source] == source  # a copy's source is a recording
    per_group = Counter(rows[i][1:] for i, s in enumerate(sources) if s == i)
    assert set(per_group.values()) <= {1, 2, 3} and max(per_group.values()) == 3
    assert fma_scale.recording_sources(rows, unique=0) == list(range(80))
    # on disk: 16 training clips (2 per genre), 1 recording per genre, 8 copies
    written, _ = fma_scale.write_corpus(tmp_path, 16, jobs=1, duration=0.3, unique=1)
    assert written == 16
    paths, y = load_fma(tmp_path, split="training")
    assert len(paths) == len(set(paths)) == 16
    blobs = {}
    for path, genre in zip(paths, y, strict=True):
        blobs.setdefault(Path(path).read_bytes(), set()).add(genre)
    assert len(blobs) == 8 and all(len(g) == 1 for g in blobs.values())
    manifest = fma_scale.read_manifest(tmp_path)
    assert manifest["clips"] == 16 and manifest["recordings"] < 16
