"""Windows over the real frames of each clip: index, reading, weights, votes."""

import numpy as np
import pytest
import torch

from genreclf.clips import ClipFeatures
from genreclf.windows import (
    WindowDataset,
    clip_widths,
    finish_combine,
    iter_window_batches,
    read_windows,
    vote_windows,
    window_index,
    window_starts,
)


def ragged(widths=(40, 7, 100, 16), n_mfcc=3, seed=0):
    """In-memory clips of the given widths, values unique per clip and frame."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n_mfcc, w)).astype(np.float32) + 10 * i
            for i, w in enumerate(widths)]  # fmt: skip


def test_window_index_matches_window_starts_per_clip():
    widths = [40, 7, 100, 16, 17]
    ids, starts, counts = window_index(widths, 16, 8)
    for clip, width in enumerate(widths):
        expected = window_starts(width, 16, 8)
        np.testing.assert_array_equal(starts[ids == clip], expected)
        assert counts[clip] == len(expected)
    assert counts.tolist() == [4, 1, 11, 1, 1]
    assert len(ids) == counts.sum()


def test_read_windows_from_clip_features_and_dense_agree():
    clips = ragged()
    X = ClipFeatures(clips)
    assert clip_widths(X).tolist() == [40, 7, 100, 16]
    ids, starts = np.array([0, 2, 1, 3]), np.array([8, 84, 0, 0])
    batch = read_windows(X, ids, starts, 16)
    assert batch.shape == (4, 1, 3, 16) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0, 0], clips[0][:, 8:24])
    np.testing.assert_array_equal(batch[1, 0], clips[2][:, 84:100])
    # A 7-frame clip is repeated once to fill the window: 7 + 7 + 2 frames.
    np.testing.assert_array_equal(batch[2, 0], np.tile(clips[1], 3)[:, :16])
    dense = X.to_padded(100)
    from_dense = read_windows(dense, ids[:2], starts[:2], 16)
    np.testing.assert_array_equal(from_dense, batch[:2])


def test_each_clip_gives_its_real_windows_only():
    clips = ragged()
    X = ClipFeatures(clips)
    got = list(iter_window_batches(X, 16, 8, batch_size=5))
    ids = np.concatenate([i for i, _ in got])
    assert np.bincount(ids).tolist() == [4, 1, 11, 1]
    assert max(len(i) for i, _ in got) == 5  # bounded by the batch size
    windows = np.concatenate([w for _, w in got])
    # The last window of the 40-frame clip ends at frame 40, not in padding.
    np.testing.assert_array_equal(windows[3, 0], clips[0][:, 24:40])


def test_votes_use_per_clip_window_counts():
    X = ClipFeatures(ragged(widths=(40, 16)))

    def log_proba(batch):  # class 1 for windows of clip 1 (values near 10)
        p = np.where(batch.mean(axis=(1, 2, 3))[:, None] > 5, [0.1, 0.9], [0.8, 0.2])
        return np.log(p)

    proba = vote_windows(log_proba, X, 16, 8, 3, "vote")
    np.testing.assert_allclose(proba, [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(
        vote_windows(log_proba, X, 16, 8, 3, "mean"), [[0.8, 0.2], [0.1, 0.9]]
    )
    with pytest.raises(ValueError):
        finish_combine(np.ones((2, 2)), [1, 2, 3], "mean")


def test_weights_make_every_clip_count_the_same():
    X = ClipFeatures(ragged(widths=(16 + 9 * 8, 10)))  # 10 windows and 1 window
    data = WindowDataset(X, np.array([0, 1]), [0, 1], window=16, hop=8, mode="all")
    assert data.counts.tolist() == [10, 1] and len(data) == 11
    per_clip = np.bincount(data.clip_ids, weights=data.weights)
    np.testing.assert_allclose(per_clip[0], per_clip[1])
    np.testing.assert_allclose(data.weights.mean(), 1.0)
    crops = WindowDataset(X, np.array([0, 1]), [0, 1], window=16, hop=8, mode="random")
    assert len(crops) == 2 and np.all(crops.weights == 1)


def test_mini_batch_items_are_read_in_one_call():
    X = ClipFeatures(ragged())
    y = np.array([0, 1, 0, 1])
    data = WindowDataset(X, y, [2, 0, 1], window=16, hop=8, mode="all")
    x, labels, weights, pos = data[[0, 11, 15]]
    assert x.shape == (3, 1, 3, 16) and x.dtype == torch.float32
    assert pos.tolist() == [0, 1, 2] and labels.tolist() == [0, 0, 1]
    assert weights.dtype == torch.float32
    torch.manual_seed(0)
    crops = WindowDataset(X, y, [2], window=16, hop=8, mode="random")
    firsts = {float(crops[[0]][0][0, 0, 0, 0]) for _ in range(20)}
    assert len(firsts) > 3  # a new crop of the real frames each time
    assert all(f in set(X.clip(2)[0, 0].tolist()) for f in firsts)
    # Items in "random" mode stay inside the clip's real frames.
    narrow = WindowDataset(X, y, [1], window=16, hop=8, mode="random")
    np.testing.assert_array_equal(narrow[0][0].numpy(), X.window(1, 0, 16))


class _CountingClips(ClipFeatures):
    """ClipFeatures with 3 variants (all the clip) that records the windows read."""

    reads = []
    n_variants = 3

    def window(self, i, start, width, variant=0):
        type(self).reads.append((i, start, width, variant))
        return super().window(i, start, width)

    def windows(self, clips, starts, width, variants=None):
        variants = np.zeros(len(clips), int) if variants is None else variants
        return np.stack(
            [self.window(i, s, width, v) for i, s, v in zip(clips, starts, variants)]
        )

    def clip(self, i):
        raise AssertionError("the whole clip was read")

    def to_padded(self, n_frames=None):
        raise AssertionError("every clip was read into one array")


def test_variants_drawn_for_training_and_zero_elsewhere():
    X = _CountingClips(ragged())
    y = np.array([0, 1, 0, 1])
    train = WindowDataset(X, y, [0, 2], window=16, hop=8, mode="all", variants=True)
    valid = WindowDataset(X, y, [0, 2], window=16, hop=8, mode="all")
    _CountingClips.reads = []
    torch.manual_seed(0)
    for _ in range(5):
        train[list(range(len(train)))]
    assert {v for *_, v in _CountingClips.reads} == {0, 1, 2}
    _CountingClips.reads = []
    valid[list(range(len(valid)))]
    assert {v for *_, v in _CountingClips.reads} == {0}


def test_equal_widths_need_no_weights():
    X = np.zeros((3, 1, 2, 40), np.float32)
    data = WindowDataset(X, np.array([0, 1, 0]), [0, 1, 2], window=16, hop=8)
    assert data.uniform and data[[0, 1]][2] is None
    assert len(data) == 3 * 4
