"""GenreCNN, GenreNet and the window helpers: shapes, training rules, API."""

import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback
from skorch.exceptions import DeviceWarning

import genreclf._slicing
import genreclf.cnn
import genreclf.model
import genreclf.windows
from genreclf._training import check_device, holdout_split, resolve_device
from genreclf.clips import ClipFeatures
from genreclf.model import (
    DEPRECATED_AUGMENTATIONS,
    STUDY_PARAM_GROUPS,
    GenreCNN,
    GenreNet,
)
from genreclf.windows import (
    WindowDataset,
    as_clips,
    combine_windows,
    finish_combine,
    iter_window_batches,
    vote_windows,
    window_index,
    window_starts,
)

GENRES = np.array(["blues", "jazz", "metal", "rock"])
TINY = {"module__filters": (4, 8, 8), "module__dense": 8, "lr": 1e-3}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_clips(n_per_class=6, n_frames=32, seed=0, classes=GENRES):
    """Random MFCC-like clips whose class shifts a few coefficients."""
    rng = np.random.default_rng(seed)
    y = np.repeat(classes, n_per_class)
    X = rng.normal(size=(len(y), 1, 20, n_frames)).astype(np.float32)
    for k, label in enumerate(classes):
        X[y == label, :, 2 * k : 2 * k + 3] += 2.0
    order = rng.permutation(len(y))
    return X[order], y[order]


@pytest.fixture(scope="module")
def data():
    return make_clips()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return GenreNet(**TINY, max_epochs=10, random_state=0).fit(X, y)


# --- GenreCNN -----------------------------------------------------------------


def test_cnn_default_is_the_reference_network():
    net = GenreCNN(n_classes=8)
    assert [b.conv1.out_channels for b in net.blocks] == [64, 160, 128]
    assert all(isinstance(b.bn1, torch.nn.Identity) for b in net.blocks)
    # 20 rows -> 10 -> 5 -> 2 and 1230 frames -> 615 -> 307 -> 153.
    assert net.hidden.in_features == 128 * 2 * 153
    assert net.hidden.out_features == 64
    with torch.no_grad():
        assert net(torch.zeros(2, 1, 20, 1230)).shape == (2, 8)


def test_cnn_xavier_initialisation():
    net = GenreCNN(n_classes=5, n_frames=40, filters=(8, 16))
    for layer in net.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(layer.weight)
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            assert layer.weight.abs().max() <= bound
            assert layer.weight.abs().max() > 0.5 * bound
            assert torch.count_nonzero(layer.bias) == 0


def test_cnn_options():
    net = GenreCNN(
        n_classes=3,
        n_frames=50,
        filters=(4, 8, 8, 16),
        dense=None,
        batch_norm=True,
        dropout=0.3,
        head="global",
    )
    assert len(net.blocks) == 4
    assert isinstance(net.blocks[0].bn1, torch.nn.BatchNorm2d)
    assert net.hidden is None and net.dropout.p == 0.3
    net.eval()
    with torch.no_grad():
        for width in (1, 7, 50, 333):  # any width with the global head
            assert net(torch.zeros(2, 1, 20, width)).shape == (2, 3)
        assert net(torch.zeros(2, 20, 9)).shape == (2, 3)  # channel axis added


def test_cnn_input_stats_branch():
    """input_stats feeds the head each row's mean, std and std of its change."""
    torch.manual_seed(0)
    kw = {"n_classes": 3, "n_mfcc": 6, "filters": (4,), "dense": None}
    plain = GenreCNN(head="global", **kw)
    both = GenreCNN(head="global", input_stats=True, **kw)
    normed = GenreCNN(head="global", input_stats=True, batch_norm=True, **kw)
    # 2 * 4 filters * 3 rows from the convolutions, + 3 * 6 statistics
    assert plain.output.in_features == 24 and both.output.in_features == 42
    assert both.stats_norm is None and normed.stats_norm.num_features == 18
    X = torch.randn(5, 1, 6, 40)
    both.eval()
    with torch.no_grad():
        assert both(X).shape == (5, 3)
        assert torch.isfinite(both(X[..., :1])).all()  # one frame: spreads 0
        # the logits are the head applied to [pooled conv features, statistics]
        expected = both.output(torch.cat([_conv_features(both, X), _stats(X)], dim=1))
        torch.testing.assert_close(both(X), expected)
    # training on a batch of one window works (running statistics are used)
    normed.train()
    assert normed(X[:1]).shape == (1, 3)
    # what the statistics are, on a row whose values are known
    row = torch.tensor([0.0, 2.0, 0.0, 2.0, 0.0])  # changes +-2: their std is 2
    Z = torch.zeros(1, 1, 6, 5)
    Z[0, 0, 2] = row
    stats = _stats(Z).view(3, 6)
    torch.testing.assert_close(stats[:, 2], torch.tensor([0.8, 0.96**0.5, 2.0]))
    assert float(stats[:, [0, 1, 3, 4, 5]].abs().sum()) == 0.0


def test_input_stats_smoothing_takes_the_change_between_moving_means():
    """stats_smoothing=3: the change's spread is that of 3-frame moving means."""
    row = torch.tensor([0.0, 3.0, 0.0, 3.0, 0.0])
    X = row.view(1, 1, 1, 5)
    # moving means of 3 (of 2 at the edges): 1.5, 1, 2, 1, 1.5
    moving = torch.tensor([1.5, 1.0, 2.0, 1.0, 1.5])
    expected = moving.diff().std(correction=0)
    stats = genreclf.cnn.input_stats(X, 3).view(3)
    torch.testing.assert_close(stats[0], row.mean())  # mean and spread unchanged
    torch.testing.assert_close(stats[1], row.std(correction=0))
    torch.testing.assert_close(stats[2], expected)
    assert float(genreclf.cnn.input_stats(X).view(3)[2]) == 3.0  # raw: +-3, mean 0
    # a tempo change (frames interpolated) moves the smoothed change less
    torch.manual_seed(0)
    W = torch.randn(8, 1, 5, 129)
    slow = genreclf.windows.stretch_each(W, torch.full((8,), 1.05))
    shift = {
        k: float(
            (genreclf.cnn.input_stats(slow, k) / genreclf.cnn.input_stats(W, k))
            .view(8, 3, 5)[:, 2]
            .mean()
        )
        for k in (1, 3)
    }
    # white noise: the raw spread falls by 31 %, the smoothed one by 19 %
    assert shift[1] < 0.8 and abs(1 - shift[3]) < 0.7 * abs(1 - shift[1])
    net = GenreCNN(
        n_classes=3,
        n_mfcc=5,
        filters=(4,),
        head="global",
        input_stats=True,
        stats_smoothing=3,
    )
    assert net.stats_smoothing == 3
    with pytest.raises(ValueError, match="stats_smoothing must be an odd"):
        GenreCNN(input_stats=True, stats_smoothing=2)
    # a module pickled before the option existed takes the raw change
    del net.stats_smoothing
    net.eval()
    with torch.no_grad():
        before = net(W[:2])
        net.stats_smoothing = 1
        torch.testing.assert_close(net(W[:2]), before)


def _conv_features(net, X):
    for block in net.blocks:
        X = block(X)
    return torch.cat([X.mean(dim=-1), X.amax(dim=-1)], dim=1).flatten(1)


def _stats(X):
    change = X.diff(dim=-1)
    parts = [X.mean(dim=-1), X.std(dim=-1, correction=0), change.std(-1, correction=0)]
    return torch.cat(parts, dim=1).flatten(1)


def test_cnn_errors():
    with pytest.raises(ValueError, match="head must be one of"):
        GenreCNN(head="avg")
    with pytest.raises(ValueError, match="filters must be positive"):
        GenreCNN(filters=())
    net = GenreCNN(n_frames=40, filters=(4,), dense=4)
    with pytest.raises(ValueError, match="built for n_frames=40 but got 41"):
        net(torch.zeros(1, 1, 20, 41))


# --- GenreNet: training rules ----------------------------------------------------


def test_net_infers_sizes_from_data(fitted, data):
    X, y = data
    assert fitted.module_.output.out_features == 4
    assert (fitted.n_channels_, fitted.n_mfcc_, fitted.n_frames_) == (1, 20, 32)
    assert fitted.window_ == 32 and fitted.module_.n_frames == 32
    assert list(fitted.classes_) == sorted(GENRES)
    assert fitted.n_features_in_ == 1


def test_weight_decay_only_on_second_block_convolutions(fitted):
    names = {id(p): n for n, p in fitted.module_.named_parameters()}
    decayed, others = set(), set()
    for group in fitted.optimizer_.param_groups:
        target = decayed if group["weight_decay"] == 1e-3 else others
        if target is others:
            assert group["weight_decay"] == 0
        target.update(names[id(p)] for p in group["params"])
    assert decayed == {"blocks.1.conv1.weight", "blocks.1.conv2.weight"}
    assert len(others) == len(names) - 2
    assert isinstance(fitted.optimizer_, torch.optim.RMSprop)
    assert isinstance(fitted.criterion_, torch.nn.CrossEntropyLoss)
    assert fitted.optimizer__param_groups == STUDY_PARAM_GROUPS


def test_defaults_follow_the_study():
    net = GenreNet()
    assert net.batch_size == 5 and net.lr == 1e-4
    assert net.optimizer is torch.optim.RMSprop
    assert net.iterator_train__shuffle is True
    assert net.module is GenreCNN and net.window is None
    assert net.get_params()["device"] == "auto"
    assert net.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_predict_returns_labels_and_probabilities(fitted, data):
    X, y = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 4) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = fitted.predict(X)
    assert set(pred) <= set(GENRES)
    np.testing.assert_array_equal(pred, fitted.classes_[proba.argmax(axis=1)])
    assert fitted.score(X, y) > 0.5  # the shifted coefficients are easy


def test_same_random_state_gives_identical_predictions(fitted, data):
    X, y = data
    again = clone(fitted).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    other = clone(fitted).set_params(random_state=1).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), fitted.predict_proba(X))


def test_best_epoch_parameters_are_kept(fitted, data):
    X, y = data
    history = fitted.history
    losses = history[:, "valid_loss"]
    assert fitted.best_epoch_ == int(np.argmin(losses)) + 1
    for key in ("train_loss", "train_acc", "valid_loss", "valid_acc"):
        assert len(history[:, key]) == 10
    # The module now holds the best epoch: recompute its validation loss.
    y_enc = np.searchsorted(fitted.classes_, y)
    _, valid = holdout_split(y_enc, fitted.valid_size, fitted.seed_)
    assert len(valid) == 5  # ceil(0.2 * 24), stratified
    proba = fitted.predict_proba(X[valid])
    loss = -np.mean(np.log(proba[np.arange(len(valid)), y_enc[valid]]))
    np.testing.assert_allclose(loss, min(losses), rtol=1e-5)
    assert fitted.callbacks_[-2][1].state_ is None  # the copy is dropped


def test_valid_acc_can_choose_the_epoch(data):
    X, y = data
    net = GenreNet(**TINY, max_epochs=3, monitor="valid_acc", random_state=0)
    net.fit(X, y)
    accs = net.history[:, "valid_acc"]
    assert accs[net.best_epoch_ - 1] == max(accs)


def test_monitor_last_scores_the_held_out_clips_and_keeps_the_last_epoch(data):
    X, y = data
    net = GenreNet(**TINY, max_epochs=3, monitor="last", random_state=0).fit(X, y)
    assert net.best_epoch_ == 3 and len(net.history[:, "valid_acc"]) == 3
    # the module is the last epoch's: its held-out loss is the last one recorded
    y_enc = np.searchsorted(net.classes_, y)
    _, valid = holdout_split(y_enc, net.valid_size, net.seed_)
    proba = net.predict_proba(X[valid])
    loss = -np.mean(np.log(proba[np.arange(len(valid)), y_enc[valid]]))
    np.testing.assert_allclose(loss, net.history[-1, "valid_loss"], rtol=1e-5)


def test_twenty_clip_fold_with_ten_genres():
    X, y = make_clips(n_per_class=2, classes=np.array(list("abcdefghij")))
    net = GenreNet(**TINY, max_epochs=2, random_state=0)
    with pytest.warns(UserWarning, match="stratified validation split .* impossible"):
        net.fit(X, y)
    assert net.predict(X).shape == (20,)
    assert len(net.history[-1, "batches"]) > 0


def test_class_with_a_single_clip_is_never_held_out():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    with pytest.warns(UserWarning, match="keeping at least one clip of every"):
        train, valid = holdout_split(y, 0.3, random_state=0)
    assert set(y[train]) == {0, 1, 2} and len(valid) == 3
    assert 8 not in valid


def test_single_file_genre_is_named_with_why_and_what_to_do():
    """Issue 15: the warning said ``Classes with too few members are: [0]``."""
    X, y = make_clips(n_per_class=4)
    y = y.copy()
    y[np.flatnonzero(y == "blues")[1:]] = "jazz"  # one blues clip left
    net = GenreNet(**TINY, max_epochs=1, random_state=0)
    with pytest.warns(UserWarning, match="genre 'blues' has a single clip") as rec:
        net.fit(X, y)
    text = str(rec[0].message)
    assert "at least 2 clips of every genre" in text  # why
    assert "add files of 'blues'" in text and "valid_size=0" in text  # what to do
    assert "[0]" not in text and "least populated" not in text
    from genreclf.exceptions import GenreclfWarning

    assert rec[0].category is GenreclfWarning


def test_holdout_warning_names_encoded_labels_and_other_reasons():
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.warns(UserWarning, match="genre 'rock' has a single clip"):
        holdout_split(y, 2, random_state=0, names=np.array(["jazz", "pop", "rock"]))
    with pytest.warns(UserWarning, match="genre 2 has a single clip"):
        holdout_split(y, 2, random_state=0)
    y = np.repeat(np.arange(10), 2)
    with pytest.warns(UserWarning, match="4 validation clip.* cannot include each "
                      "of the 10 genres.*at least 10 clips"):
        holdout_split(y, 4, random_state=0)
    with pytest.warns(UserWarning, match="leaves 5 for training, fewer than the "
                      "10 genres.*at most 10 clips"):
        holdout_split(y, 15, random_state=0)
    many = np.array(list("abcdefghijk") + ["z"] * 5)
    with pytest.warns(UserWarning, match=r"genres 'a', .*'h' and 3 more have a "):
        holdout_split(many, 3, random_state=0)
    with pytest.warns(UserWarning, match="no clip can be held out .*genres 'jazz', "
                      "'rock' have a single clip.*add files of 'jazz', 'rock'"):
        _, valid = holdout_split(np.array(["rock", "jazz"]), 0.5, random_state=0)
    assert len(valid) == 0


def test_no_clip_to_spare_trains_on_all_and_keeps_last_epoch():
    X, y = make_clips(n_per_class=1)
    net = GenreNet(**TINY, max_epochs=2, random_state=0)
    with pytest.warns(UserWarning, match="no clip can be held out"):
        net.fit(X, y)
    assert net.best_epoch_ == 2
    assert "valid_loss" not in net.history[-1]


def test_valid_size_zero_means_no_validation(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = GenreNet(**TINY, max_epochs=2, valid_size=0, random_state=0).fit(X, y)
    assert net.best_epoch_ == 2 and "valid_loss" not in net.history[-1]


def test_valid_size_as_a_count():
    y = np.repeat([0, 1, 2], 5)
    train, valid = holdout_split(y, 6, random_state=0)
    assert len(valid) == 6 and np.bincount(y[valid]).tolist() == [2, 2, 2]
    assert len(np.intersect1d(train, valid)) == 0


@pytest.mark.parametrize(
    "params, match",
    [
        ({"window": 0}, r"'window' parameter of GenreNet must be an int in the "
         r"range \[1, inf\) or None. Got 0"),
        ({"window_hop": 2.5}, r"'window_hop' parameter .* an int in the range "
         r"\[1, inf\) or None"),
        ({"time_mask": -1}, r"'time_mask' parameter .* an int in the range \[0, inf\)"),
        ({"c0_shift": -0.1}, r"'c0_shift' parameter .* a float in the range "
         r"\[0.0, inf\)"),
        ({"mixup": float("inf")}, r"'mixup' parameter .* a float in the range"),
        ({"combine": "max"}, r"'combine' parameter .* a str among .*'logmean'"),
        ({"train_windows": "some"}, r"'train_windows' parameter .* among .*'all'"),
        ({"monitor": "train_loss"}, r"'monitor' parameter .* among .*'valid_acc'"),
        ({"valid_size": 1.5}, r"'valid_size' parameter .* a float in the range "
         r"\[0.0, 1.0\), an int in the range \[0, inf\) or None. Got 1.5"),
        ({"random_state": "seven"}, r"'random_state' parameter of GenreNet"),
        ({"train_split": lambda ds, y: (ds, None)}, "leave train_split=None"),
    ],
)
def test_bad_parameters_are_named(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        GenreNet(**TINY, max_epochs=1, **params).fit(X, y)


def test_prediction_input_must_match_training(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match="fitted on 1 channel.* of 20 MFCCs"):
        fitted.predict(X[:, :, :13])
    with pytest.raises(ValueError, match="X must have shape"):
        fitted.predict(X[..., None])


def test_unknown_label_in_classes_is_refused(data):
    X, y = data
    net = GenreNet(**TINY, max_epochs=1, classes=["blues", "jazz", "metal"])
    with pytest.raises(ValueError, match=r"y has labels not in classes: \['rock'\]"):
        net.fit(X, y)


def test_three_and_two_dimensional_input():
    X, y = make_clips(n_frames=16)
    net = GenreNet(**TINY, max_epochs=1, random_state=0).fit(X[:, 0], y)
    assert net.predict(X[:, 0]).shape == (len(y),)
    rng = np.random.default_rng(0)
    X2 = rng.normal(size=(30, 6))
    y2 = np.arange(30) % 3
    net = GenreNet(**TINY, max_epochs=1, random_state=0).fit(X2, y2)
    assert net.n_mfcc_ == 6 and net.n_frames_ == 1
    with pytest.raises(ValueError, match="X has 4 features, but GenreNet is expecting"):
        net.predict(X2[:, :4])


# --- slice voting -------------------------------------------------------------------


def test_window_starts_and_batches_are_views_of_the_clips():
    assert window_starts(1292, 129, 64).size == 19  # 30 s clip, 3 s windows
    X = np.arange(2 * 3 * 10, dtype=np.float32).reshape(2, 1, 3, 10)
    batches = list(iter_window_batches(X, 4, 3, batch_size=4))
    assert [len(ids) for ids, _ in batches] == [4, 2]  # 3 windows per clip
    ids = np.concatenate([ids for ids, _ in batches])
    windows = np.concatenate([w for _, w in batches])
    assert ids.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(windows[4], X[1, :, :, 3:7])
    # A clip narrower than the window is tiled to it.
    ((_, short),) = list(iter_window_batches(X[:1, ..., :3], 7, 3, batch_size=8))
    np.testing.assert_array_equal(short[0, 0, 0], [0, 1, 2, 0, 1, 2, 0])


def test_combine_rules():
    log_proba = np.log([[0.6, 0.4], [0.1, 0.9], [0.7, 0.3]])
    ids = np.array([0, 0, 0])
    results = {}
    for rule in ("mean", "logmean", "vote"):
        totals = np.zeros((1, 2))
        combine_windows(log_proba, ids, totals, rule)
        results[rule] = finish_combine(totals, 3, rule)[0]
        np.testing.assert_allclose(results[rule].sum(), 1.0)
    np.testing.assert_allclose(results["mean"], [1.4 / 3, 1.6 / 3])
    geo = np.exp(np.log([[0.6 * 0.1 * 0.7, 0.4 * 0.9 * 0.3]]) / 3)[0]
    np.testing.assert_allclose(results["logmean"], geo / geo.sum())
    np.testing.assert_allclose(results["vote"], [2 / 3, 1 / 3])


def test_window_dataset_modes_and_augmentation():
    X, y = make_clips(n_per_class=2, n_frames=20)
    y_enc = np.searchsorted(GENRES, y)
    every = WindowDataset(X, y_enc, [0, 3], window=8, hop=4, mode="all")
    assert len(every) == 2 * 4
    x, label = every[5]
    np.testing.assert_array_equal(x.numpy(), X[3, :, :, 4:12])
    assert label.dtype == torch.int64 and int(label) == y_enc[3]
    crops = WindowDataset(X, y_enc, [0, 3], window=8, hop=4, mode="random")
    assert len(crops) == 2
    torch.manual_seed(0)
    starts = {
        int(np.flatnonzero(X[0, 0, 0] == crops[0][0][0, 0, 0])[0]) for _ in range(20)
    }
    assert len(starts) > 3  # a new crop each time
    masked = WindowDataset(
        X, y_enc, [0], window=20, hop=10, mode="all", time_mask=5, freq_mask=4
    )
    zeros = [(masked[0][0] == 0).sum().item() for _ in range(20)]
    assert max(zeros) > 0
    louder = WindowDataset(X, y_enc, [0], window=20, hop=10, c0_shift=0.5)
    delta = louder[0][0].numpy() - X[0]
    assert np.ptp(delta[0, 0]) < 1e-6 and 0 < abs(delta[0, 0, 0]) <= 0.5
    np.testing.assert_array_equal(delta[0, 1:], 0)
    shifted = WindowDataset(X, y_enc, [0], window=20, hop=10, time_shift=3)
    x = shifted[0][0].numpy()
    assert any(np.array_equal(x, np.roll(X[0], s, axis=-1)) for s in range(-3, 4))


def test_time_stretch_rescales_the_time_axis_of_each_window_on_its_own():
    X = np.tile(np.arange(40, dtype=np.float32), (3, 1, 2, 1))  # frame k holds k
    y = np.zeros(3, dtype=np.int64)
    ds = WindowDataset(X, y, [0, 1, 2], window=20, hop=10, time_stretch=0.2)
    torch.manual_seed(0)
    slopes, plain = [], 0
    for _ in range(30):
        x, labels, _, _ = ds[[0, 1, 3, 3]]
        assert x.shape == (4, 1, 2, 20)  # the width is kept
        for row, k in zip(x[:, 0, 0].numpy(), (0, 1, 3, 3), strict=True):
            first = ds.starts[k]
            if np.array_equal(row, first + np.arange(20, dtype=np.float32)):
                plain += 1
                continue
            # the same ramp sampled at another rate about the window's centre
            slope = np.diff(row[6:14])
            np.testing.assert_allclose(slope, slope[0], rtol=1e-4)
            assert 1 / 1.2 - 1e-4 <= slope[0] <= 1 / 0.8 + 1e-4
            assert abs((row[9] + row[10]) / 2 - (first + 9.5)) < 1e-3
            slopes.append(round(float(slope[0]), 4))
    # about half of the windows left as they are; rates differ within batches
    assert 30 < plain < 90 and len(set(slopes)) > 20
    # items read one at a time, and a dataset without the option, are left alone
    np.testing.assert_array_equal(ds[0][0].numpy(), X[0][..., :20])
    same = WindowDataset(X, y, [0], window=20, hop=10)
    np.testing.assert_array_equal(
        same[[0, 1]][0].numpy(), np.stack([X[0][..., :20], X[0][..., 10:30]])
    )


def test_stretch_each_keeps_rows_at_rate_one_and_mirrors_frames_at_the_edges():
    from genreclf.windows import stretch_each

    x = torch.arange(10, dtype=torch.float32).view(1, 1, 1, 10).repeat(3, 1, 2, 1)
    out = stretch_each(x, torch.tensor([1.0, 2.0, 0.5]))
    torch.testing.assert_close(out[0], x[0])
    centre = 4.5
    slow = centre + (torch.arange(10.0) - centre) / 2.0  # inside the window
    torch.testing.assert_close(out[1, 0, 1], slow)
    # faster: the window reaches 5 frames beyond each edge, mirrored back
    fast = out[2, 0, 0]
    assert float(fast.min()) >= 0.0 and float(fast.max()) <= 9.0
    assert abs(float(fast[4] + fast[5]) / 2 - centre) < 1e-5
    assert stretch_each(x, torch.ones(3)) is x  # nothing to do


def test_time_stretch_trains_any_head(data):
    X, y = data
    for head in ("global", "flatten"):
        net = GenreNet(
            **TINY, max_epochs=2, window=12, time_stretch=0.1, random_state=0
        )
        net.set_params(module__head=head).fit(X, y)
        assert net.predict_proba(X).shape == (len(X), len(GENRES))
    with pytest.raises(ValueError, match="time_stretch"):
        GenreNet(**TINY, time_stretch=0.7).fit(X, y)


def test_short_excerpts_fill_windows_as_a_short_clip_is_filled_at_prediction(data):
    from genreclf.windows import read_windows

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 1, 3, 50)).astype(np.float32)
    y = np.zeros(6, dtype=np.int64)
    plain = WindowDataset(X, y, range(6), window=20, hop=10)
    cut = WindowDataset(X, y, range(6), window=20, hop=10, short_excerpts=0.5)
    items = list(range(len(plain)))
    torch.manual_seed(0)
    lengths = []
    for _ in range(20):
        before, after = plain[items][0].numpy(), cut[items][0].numpy()
        for whole, seen in zip(before, after, strict=True):
            if np.array_equal(whole, seen):
                continue
            # the window's first L frames, repeated to fill it as read_windows
            # fills a clip of L frames
            length = next(
                n for n in range(1, 20) if np.array_equal(seen[..., n], seen[..., 0])
            )
            clip = whole[None, ..., :length]
            np.testing.assert_array_equal(
                seen, read_windows(clip, np.array([0]), np.array([0]), 20)[0]
            )
            lengths.append(length)
    share = len(lengths) / (20 * len(items))
    assert 0.3 < share < 0.5  # half drawn, a few of them at the whole window
    assert min(lengths) >= 10 and max(lengths) == 19 and len(set(lengths)) > 5
    X_small, y_small = data
    options = dict(TINY, max_epochs=2, window=12, short_excerpts=0.5, random_state=0)
    net = GenreNet(**options).fit(X_small, y_small)
    again = GenreNet(**options).fit(X_small, y_small)
    np.testing.assert_allclose(again.predict_proba(X_small), net.predict_proba(X_small))
    with pytest.raises(ValueError, match="short_excerpts"):
        GenreNet(**TINY, window=12, short_excerpts=1.5).fit(X_small, y_small)


def test_predict_stretch_averages_each_window_over_tempo_changed_views(data):
    from genreclf.windows import window_index

    X, y = data
    net = GenreNet(**TINY, max_epochs=2, window=12, window_hop=6, random_state=0)
    net.set_params(module__head="global", combine="logmean").fit(X, y)
    plain = net.predict_proba(X)
    same = net.set_params(predict_stretch=(1.0,)).predict_proba(X)
    np.testing.assert_allclose(same, plain)
    net.set_params(predict_stretch=(0.9, 1.1))
    viewed = net.predict_proba(X)
    assert not np.allclose(viewed, plain)
    # by hand: every window at 12, 11 and 13 frames (10.8 and 13.2 rounded)
    ids, starts, counts = window_index(np.full(len(X), X.shape[-1]), 12, 6)
    cuts = [X[i][..., s : s + 12] for i, s in zip(ids, starts, strict=True)]
    windows = torch.from_numpy(np.stack(cuts).astype(np.float32))
    net.module_.eval()
    logs = []
    with torch.no_grad():
        for width in (12, 11, 13):
            view = torch.nn.functional.interpolate(
                windows,
                size=(windows.shape[-2], width),
                mode="bilinear",
                align_corners=False,
            )
            logs.append(torch.log_softmax(net.module_(view).double(), dim=1))
    per_window = torch.log_softmax(torch.stack(logs).mean(dim=0), dim=1).numpy()
    totals = np.zeros((len(X), len(GENRES)))
    np.add.at(totals, ids, per_window)
    expected = np.exp(totals / counts[:, None])
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(viewed, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="must lie in"):
        net.set_params(predict_stretch=(3.0,)).predict_proba(X)
    flat = GenreNet(**TINY, max_epochs=1, window=12, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="flattening head"):
        flat.set_params(predict_stretch=(0.9,)).predict_proba(X)


def _tilt_features(y, sr=22050):
    """40 MFCCs of ``y`` at one RMS level, as ``loudness="rms"`` computes them."""
    from genreclf._mfcc import compute_mfcc

    y = y * np.float32(0.1 / np.sqrt(np.mean(np.square(y))))
    return compute_mfcc(y, sr, n_mfcc=40)


def test_tilt_shift_and_noise_snr_predict_the_mfccs_of_a_changed_recording():
    from genreclf._augment import equalize
    from genreclf._mfcc import mel_centres
    from genreclf._window_dataset import _tilt_basis, change_windows

    sr = 22050
    rng = np.random.default_rng(0)
    # pink-ish noise with a few tones: energy in every band, like music
    white = rng.standard_normal(sr * 4).astype(np.float32)
    y = equalize(white, sr, tilt=-3.0)
    t = np.arange(len(y)) / sr
    for f0 in (110.0, 440.0, 1760.0):
        y = y + np.float32(0.3) * np.sin(2 * np.pi * f0 * t).astype(np.float32)
    plain = _tilt_features(y)
    n = plain.shape[1] // 100
    windows = plain[:, : n * 100].reshape(40, n, 100).transpose(1, 0, 2)[:, None]
    X = ClipFeatures([plain])
    X.mel_hz = mel_centres(sr, 128)
    basis = _tilt_basis(X)
    for tilt in (6.0, -6.0):
        truth = _tilt_features(equalize(y, sr, tilt=tilt))[:, : n * 100]
        truth = truth.reshape(40, n, 100).transpose(1, 0, 2)[:, None]
        guess = change_windows(
            torch.from_numpy(np.ascontiguousarray(windows)),
            torch.full((n,), tilt),
            basis,
        ).numpy()
        error = np.linalg.norm(guess - truth) / np.linalg.norm(windows - truth)
        assert error < 0.2, (tilt, error)  # 1.0: no change at all
    # white noise 20 dB below the recording, likewise
    noise = rng.standard_normal(len(y)).astype(np.float32)
    noise *= np.sqrt(np.mean(np.square(y)) / np.mean(np.square(noise)) / 100)
    truth = _tilt_features(y + noise)[:, : n * 100]
    truth = truth.reshape(40, n, 100).transpose(1, 0, 2)[:, None]
    guess = change_windows(
        torch.from_numpy(np.ascontiguousarray(windows)),
        torch.zeros(n),
        basis,
        snr=torch.full((n,), 20.0),
    ).numpy()
    # the mean change of every window (frame by frame, new noise is random)
    error = np.linalg.norm((guess - truth).mean(-1)) / np.linalg.norm(
        (windows - truth).mean(-1)
    )
    assert error < 0.5, error
    quiet = change_windows(
        torch.from_numpy(np.ascontiguousarray(windows)),
        torch.zeros(n),
        basis,
        snr=torch.full((n,), float("inf")),
    ).numpy()
    np.testing.assert_allclose(quiet, windows, atol=1e-3)  # no change: x itself
    # in X's own units: the same change, through the standardizer's map
    scale, offset = np.linspace(0.5, 2, 40), np.linspace(-1, 1, 40)
    mapped = X.with_affine(scale, offset)
    assert mapped.mel_hz is X.mel_hz and X[[0]].mel_hz is X.mel_hz
    std = torch.from_numpy(
        (windows * scale[None, None, :, None] + offset[None, None, :, None]).astype(
            np.float32
        )
    )
    raw = change_windows(torch.from_numpy(windows.copy()), torch.full((n,), 6.0), basis)
    back = change_windows(std, torch.full((n,), 6.0), _tilt_basis(mapped))
    expected = raw.numpy() * scale[None, None, :, None] + offset[None, None, :, None]
    np.testing.assert_allclose(back.numpy(), expected, rtol=1e-4, atol=1e-3)


def test_tilt_shift_trains_on_clip_features_and_refuses_bare_arrays(data):
    from genreclf._mfcc import mel_centres

    X, y = data
    clips = ClipFeatures(list(X))
    with pytest.raises(ValueError, match="tilt_shift and noise_snr need features"):
        GenreNet(**TINY, max_epochs=1, window=12, tilt_shift=6.0).fit(clips, y)
    clips.mel_hz = mel_centres(22050, 20)
    torch.manual_seed(0)
    ds = WindowDataset(clips, np.zeros(len(y), np.int64), [0, 1], 12, 6, tilt_shift=6)
    first, second = ds[[0, 1]][0], ds[[0, 1]][0]
    assert not torch.allclose(first, second)  # a new tilt at every read
    zeros = np.zeros(len(y), np.int64)
    noisy = WindowDataset(clips, zeros, range(8), 12, 6, noise_snr=10)
    plain = WindowDataset(clips, zeros, range(8), 12, 6)
    items = list(range(len(plain)))
    changed = (noisy[items][0] - plain[items][0]).abs().amax(dim=(1, 2, 3))
    # about half of the windows get noise, the others are read as they are
    assert 0 < int((changed > 1e-4).sum()) < len(items)
    assert float(changed.max()) > 0.05
    net = GenreNet(**TINY, max_epochs=2, window=12, tilt_shift=6.0, random_state=0)
    net.set_params(module__head="global").fit(clips, y)
    assert net.predict_proba(clips).shape == (len(X), len(GENRES))
    again = GenreNet(**TINY, max_epochs=2, window=12, tilt_shift=6.0, random_state=0)
    again.set_params(module__head="global").fit(clips, y)
    np.testing.assert_allclose(again.predict_proba(clips), net.predict_proba(clips))


@pytest.mark.parametrize(
    "train_windows, combine", [("random", "mean"), ("all", "logmean"), ("all", "vote")]
)
def test_slice_voting_fit_and_predict(data, train_windows, combine):
    X, y = data
    net = GenreNet(
        **TINY,
        max_epochs=2,
        window=12,
        window_hop=6,
        train_windows=train_windows,
        combine=combine,
        random_state=0,
    ).fit(X, y)
    assert net.module_.n_frames == 12
    n_train = len(X) - 5
    batches = net.history[0, "batches"]
    per_epoch = sum(b["train_batch_size"] for b in batches if "train_batch_size" in b)
    assert per_epoch == (n_train * 4 if train_windows == "all" else n_train)
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert net.predict_proba(X[:3, ..., :5]).shape == (3, 4)  # short clips tiled


def test_long_clip_is_predicted_in_bounded_batches(data):
    X, y = data
    net = GenreNet(
        **TINY, max_epochs=1, window=16, iterator_valid__batch_size=32, random_state=0
    ).fit(X, y)
    sizes = []
    hook = net.module_.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    long_clip = np.random.default_rng(0).normal(size=(1, 1, 20, 25_800))  # ~10 min
    proba = net.predict_proba(long_clip.astype(np.float32))
    hook.remove()
    assert proba.shape == (1, 4)
    assert sum(sizes) == window_starts(25_800, 16, 8).size
    assert max(sizes) == 32


# --- API: clone, params, pickle, devices --------------------------------------


def test_clone_get_params_set_params(fitted):
    params = fitted.get_params(deep=False)
    assert "_params_to_validate" not in params
    assert params["device"] == "auto" and params["random_state"] == 0
    copy = clone(fitted)
    assert not hasattr(copy, "module_")
    assert copy.get_params(deep=False).keys() == params.keys()
    copy.set_params(batch_size=16, module__dense=4, window=8)
    assert (copy.batch_size, copy.module__dense, copy.window) == (16, 4, 8)
    assert fitted.batch_size == 5


def test_pickle_round_trip(fitted, data):
    X, _ = data
    loaded = pickle.loads(pickle.dumps(fitted))
    assert loaded.get_params()["device"] == "auto"
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")
def test_net_saved_for_cuda_loads_on_a_cpu_only_machine(fitted, data):
    X, _ = data
    net = pickle.loads(pickle.dumps(fitted))
    net.__dict__["device"] = "cuda"  # as if fitted with device="cuda" on a GPU
    blob = pickle.dumps(net)
    with pytest.warns(DeviceWarning, match="cuda.*is not available"):
        loaded = pickle.loads(blob)
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_fitted_net_pickled_under_the_old_class_path_loads(fitted, data):
    """Models saved before genreclf.cnn name genreclf.model.GenreCNN/_ConvBlock."""
    X, _ = data
    assert genreclf.model.GenreCNN is genreclf.cnn.GenreCNN
    assert genreclf.model._ConvBlock is genreclf.cnn.ConvBlock
    # Pickle as the old layout did: the classes declared in genreclf.model.
    cnn, block = genreclf.cnn.GenreCNN, genreclf.cnn.ConvBlock
    try:
        cnn.__module__ = block.__module__ = "genreclf.model"
        block.__qualname__ = "_ConvBlock"
        blob = pickle.dumps(fitted)
    finally:
        cnn.__module__ = block.__module__ = "genreclf.cnn"
        block.__qualname__ = "ConvBlock"
    assert b"genreclf.model" in blob and b"_ConvBlock" in blob
    assert b"genreclf.cnn" not in blob
    loaded = pickle.loads(blob)
    assert type(loaded.module_) is genreclf.cnn.GenreCNN
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    # and what is pickled now names the new module
    assert b"genreclf.cnn" in pickle.dumps(fitted)


def test_old_slicing_module_still_imports():
    assert genreclf._slicing.WindowDataset is genreclf.windows.WindowDataset
    assert genreclf._slicing.window_starts is window_starts


def test_as_clips_and_vote_windows():
    assert as_clips(np.zeros((3, 20, 9))).shape == (3, 1, 20, 9)
    with pytest.raises(ValueError, match="empty axis"):
        as_clips(np.zeros((3, 1, 0, 9)))
    X = np.arange(2 * 10, dtype=np.float32).reshape(2, 1, 1, 10)
    seen = []

    def log_proba(batch):  # class 1 wins on windows whose first value is even
        seen.append(len(batch))
        first = batch[:, 0, 0, 0]
        p = np.where(first[:, None] % 2 == 0, [0.2, 0.8], [0.6, 0.4])
        return np.log(p)

    proba = vote_windows(log_proba, X, 4, 3, 4, "vote")
    assert seen == [4, 2]  # 3 windows per clip, at most 4 per call
    # clip 0 starts at 0, 3, 6 (even, odd, even); clip 1 at 10, 13, 16
    np.testing.assert_allclose(proba, [[1 / 3, 2 / 3], [1 / 3, 2 / 3]])


@pytest.mark.parametrize("name, value", [
    ("time_shift", 2), ("time_mask", 2), ("freq_mask", 2), ("c0_shift", 0.3),
    ("mixup", 0.2),
])  # fmt: skip
def test_deprecated_augmentations_warn_and_still_train(data, name, value):
    X, y = data
    assert name in DEPRECATED_AUGMENTATIONS
    net = GenreNet(**TINY, max_epochs=1, random_state=0, **{name: value})
    with pytest.warns(FutureWarning, match=f"'{name}' option is deprecated"):
        net.fit(X, y)
    assert net.predict(X).shape == (len(y),)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults never warn
        GenreNet(**TINY, max_epochs=1, random_state=0).fit(X, y)


def test_unavailable_cuda_device_is_refused_clearly(data, monkeypatch):
    X, y = data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_device("auto") == "cpu" and check_device("cpu") == "cpu"
    net = GenreNet(**TINY, max_epochs=1, device="cuda")
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
        net.fit(X, y)
    with pytest.raises(ValueError, match="device='cuda:0' but CUDA"):
        check_device("cuda:0")
    auto = GenreNet(**TINY, max_epochs=1, device="auto", random_state=0).fit(X, y)
    assert auto.get_params()["device"] == "auto" and auto.device == "cpu"
    assert next(auto.module_.parameters()).device.type == "cpu"
    cpu = GenreNet(**TINY, max_epochs=1, device="cpu", random_state=0).fit(X, y)
    np.testing.assert_array_equal(cpu.predict_proba(X), auto.predict_proba(X))


def test_auto_device_resolves_at_use(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert GenreNet(device="auto").device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert GenreNet(device="auto").device == "cuda"
    assert GenreNet(device="cpu").device == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda_then_load_on_cpu(data, monkeypatch):
    X, y = data
    net = GenreNet(**TINY, max_epochs=2, random_state=0, device="auto").fit(X, y)
    assert next(net.module_.parameters()).is_cuda
    proba = net.predict_proba(X)
    blob = pickle.dumps(net)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(blob)
    assert loaded.device == "cpu" and not next(loaded.module_.parameters()).is_cuda
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-5)


# --- scikit-learn conformance (numeric arrays) --------------------------------------


def _expected_failed_checks(estimator):
    return {
        "check_no_attributes_set_in_init": (
            "skorch's NeuralNet sets history_, initialized_ and virtual_params_ "
            "in __init__ and stores module__*/optimizer__* keywords as attributes"
        ),
    }


@parametrize_with_checks(
    [
        GenreNet(
            module__filters=(8,),
            module__dense=16,
            max_epochs=5,
            batch_size=32,
            lr=1e-2,
            random_state=0,
        )
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_warm_start_and_partial_fit_continue_training(fitted, data):
    X, y = data
    net = clone(fitted).set_params(max_epochs=1, warm_start=True)
    net.fit(X, y)
    first = {k: v.clone() for k, v in net.module_.state_dict().items()}
    net.fit(X, y)  # continues: same module, one more epoch in the history
    assert len(net.history) == 2
    assert any(
        not torch.equal(first[k], v) for k, v in net.module_.state_dict().items()
    )
    net.partial_fit(X[:8], y[:8])
    assert len(net.history) == 3
    with pytest.raises(ValueError, match="fitted on 1 channel.* of 20 MFCCs"):
        net.partial_fit(X[:, :, :10], y)


class InterruptAt(Callback):
    """Raise KeyboardInterrupt at the end of an epoch, as Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_interruption_keeps_best_epoch_and_is_raised(data):
    X, y = data
    net = GenreNet(**TINY, max_epochs=5, random_state=0)
    net.set_params(callbacks=[("stop", InterruptAt(2))])
    with pytest.raises(KeyboardInterrupt, match="interrupted after 2 epoch"):
        net.fit(X, y)
    assert net.interrupted_ and len(net.history) == 2
    assert net.best_epoch_ in (1, 2) and net.predict(X).shape == (len(y),)


# --- clips of their own widths (ClipFeatures) --------------------------------------


def make_ragged(n_per_class=6, widths=(12, 30, 57), seed=0):
    """ClipFeatures of clips of different widths whose class shifts coefficients."""
    X, y = make_clips(n_per_class=n_per_class, n_frames=max(widths), seed=seed)
    rng = np.random.default_rng(seed)
    cut = rng.choice(widths, size=len(y))
    return ClipFeatures([x[0, :, :w] for x, w in zip(X, cut)]), y


RAGGED = {**TINY, "module__head": "global", "window": 16, "window_hop": 8}


@pytest.fixture(scope="module")
def ragged():
    return make_ragged()


@pytest.fixture(scope="module")
def ragged_fitted(ragged):
    X, y = ragged
    net = GenreNet(**RAGGED, train_windows="all", combine="logmean", max_epochs=4)
    return net.set_params(random_state=0).fit(X, y)


def test_clip_features_train_on_their_real_windows(ragged_fitted, ragged):
    X, y = ragged
    net = ragged_fitted
    assert (net.n_channels_, net.n_mfcc_, net.n_frames_) == (1, 20, 57)
    y_enc = np.searchsorted(net.classes_, y)
    train, _ = holdout_split(y_enc, net.valid_size, net.seed_)
    _, _, counts = window_index(X.n_frames[train], 16, 8)
    batches = net.history[0, "batches"]
    per_epoch = sum(b["train_batch_size"] for b in batches if "train_batch_size" in b)
    assert per_epoch == counts.sum()  # not len(train) * windows of the widest clip
    assert per_epoch < len(train) * window_starts(57, 16, 8).size
    assert net.predict(X).shape == (len(y),)
    np.testing.assert_allclose(net.predict_proba(X).sum(axis=1), 1.0)


def test_prediction_votes_over_real_windows_only(ragged_fitted, ragged):
    X, _ = ragged
    net = ragged_fitted
    proba = net.predict_proba(X)
    for i in np.flatnonzero(X.n_frames < X.n_frames.max())[:4]:
        alone = X.clip(int(i))[None]  # the clip at its own width, no padding
        np.testing.assert_allclose(proba[i], net.predict_proba(alone)[0], rtol=1e-6)
        # By hand: log-softmax of each real window, averaged, normalised.
        windows = np.stack(
            [X.window(int(i), s, 16) for s in window_starts(X.n_frames[i], 16, 8)]
        )
        with torch.no_grad():
            net.module_.eval()
            logp = torch.log_softmax(net.module_(torch.from_numpy(windows)).double(), 1)
        geo = np.exp(logp.numpy().mean(axis=0))
        np.testing.assert_allclose(proba[i], geo / geo.sum(), rtol=1e-5)
    padded = net.predict_proba(X.to_padded())
    assert not np.allclose(padded, proba)  # padding's windows would change votes


def test_valid_acc_is_per_clip(ragged):
    X, y = ragged
    net = GenreNet(**RAGGED, train_windows="all", max_epochs=3, monitor="valid_acc")
    net.set_params(random_state=1).fit(X, y)
    y_enc = np.searchsorted(net.classes_, y)
    _, valid = holdout_split(y_enc, net.valid_size, net.seed_)
    acc = np.mean(net.predict(X[valid]) == y[valid])
    assert net.history[net.best_epoch_ - 1, "valid_acc"] == pytest.approx(acc)
    assert all(v * len(valid) == pytest.approx(round(v * len(valid)))
               for v in net.history[:, "valid_acc"])  # fmt: skip


def test_weighted_loss_counts_each_clip_once(ragged_fitted):
    net = ragged_fitted
    long_clip = np.random.default_rng(1).normal(size=(20, 16 + 9 * 8)).astype("f4")
    X = ClipFeatures([long_clip, long_clip[:, :10]])  # 10 windows and 1 window
    y_enc = np.array([0, 1])
    data = WindowDataset(X, y_enc, [0, 1], window=16, hop=8, mode="all")
    xb, yb, wb, pos = data[list(range(len(data)))]
    with torch.no_grad():
        logits = net.infer(xb)
        loss = net.weighted_loss(logits, yb, wb)
        per = torch.nn.functional.cross_entropy(logits, yb, reduction="none")
    by_clip = [per[pos == c].mean() for c in (0, 1)]
    assert float(loss) == pytest.approx(float(sum(by_clip) / 2), rel=1e-5)
    assert float(loss) != pytest.approx(float(per.mean()), rel=1e-3)


def test_only_mini_batches_of_windows_are_read(ragged):
    X, y = ragged
    reads = []

    class Watched(ClipFeatures):
        def window(self, i, start, width, variant=0):
            reads.append((1, width))
            return super().window(i, start, width, variant=variant)

        def windows(self, clips, starts, width, variants=None):
            reads.append((len(clips), width))
            return super().windows(clips, starts, width, variants=variants)

        def clip(self, i):
            raise AssertionError("a whole clip was read")

        def to_padded(self, n_frames=None):
            raise AssertionError("every clip was read into one array")

    watched = Watched([X.window(i, 0, int(w)) for i, w in enumerate(X.n_frames)])
    net = GenreNet(**RAGGED, max_epochs=1, random_state=0).fit(watched, y)
    net.predict(watched)
    assert reads and {width for _, width in reads} == {16}
    assert max(n for n, _ in reads) <= 32  # a mini-batch (5) or a prediction batch


def test_training_reads_random_variants_validation_and_prediction_variant_zero(ragged):
    X, y = ragged
    calls = []

    class Recorded(ClipFeatures):
        def windows(self, clips, starts, width, variants=None):
            calls.append(None if variants is None else set(np.asarray(variants)))
            return super().windows(clips, starts, width, variants=variants)

    clips = [X.clip(i)[0] for i in range(len(X))]
    louder = [[c + 1.0, c * 0.5] for c in clips]  # two production variants
    V = Recorded(clips, variants=louder)
    assert V.n_variants == 3
    net = GenreNet(**RAGGED, train_windows="all", max_epochs=2, random_state=0)
    net.fit(V, y)
    n_train = net.history[0, "train_batch_count"]
    train_calls = calls[:n_train]  # the first epoch's training batches
    assert all(c is not None for c in train_calls)
    assert set().union(*train_calls) == {0, 1, 2}
    valid_calls = calls[n_train : n_train + net.history[0, "valid_batch_count"]]
    assert valid_calls and all(c is None for c in valid_calls)
    calls.clear()
    net.predict(V)
    assert calls and all(c is None for c in calls)


def test_search_cross_validation_clone_and_pickle_on_clip_features(ragged):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, y = ragged
    net = GenreNet(**RAGGED, max_epochs=1, valid_size=None, random_state=0)
    scores = cross_val_score(net, X, y, cv=2)
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))
    search = GridSearchCV(net, {"window_hop": [8, 16]}, cv=2).fit(X, y)
    assert search.best_estimator_.predict(X[:3]).shape == (3,)
    fitted = clone(net).fit(X, y)
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    with pytest.raises(ValueError, match="fitted on 1 channel.* of 20 MFCCs"):
        fitted.predict(ClipFeatures([np.zeros((10, 30), np.float32)]))


# --- precision, layout, progress -----------------------------------------------


def test_bf16_model_predicts_in_fp32_after_loading():
    X, y = make_clips(n_per_class=10, n_frames=32, seed=3)
    net = GenreNet(**TINY, max_epochs=4, precision="bf16", random_state=0).fit(X, y)
    assert all(p.dtype == torch.float32 for p in net.module_.parameters())
    conv = net.module_.blocks[0].conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)  # "auto"
    bf16 = net.predict(X)
    loaded = pickle.loads(pickle.dumps(net)).set_params(precision="fp32")
    assert all(p.dtype == torch.float32 for p in loaded.module_.parameters())
    fp32 = loaded.predict(X)
    assert np.mean(fp32 == bf16) >= 0.95
    assert loaded.module_.blocks[0].conv1.weight.is_contiguous()


def test_fp16_trains_with_a_gradient_scaler_on_the_cpu(data):
    X, y = data
    net = GenreNet(**TINY, max_epochs=2, precision="fp16", random_state=0).fit(X, y)
    assert net._grad_scaler is None  # per fit, never pickled
    assert all(p.dtype == torch.float32 for p in net.module_.parameters())
    assert np.isfinite(net.history[:, "train_loss"]).all()
    assert net.predict(X).shape == (len(y),)


def test_channels_last_gives_the_same_predictions_in_fp32(fitted, data):
    X, _ = data
    net = pickle.loads(pickle.dumps(fitted))
    before = net.predict_proba(X)
    net.set_params(channels_last=True)
    np.testing.assert_allclose(net.predict_proba(X), before, rtol=1e-4, atol=1e-6)
    assert net.module_.blocks[0].conv1.weight.is_contiguous(
        memory_format=torch.channels_last
    )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"precision": "fp64"}, "'precision' parameter"),
        ({"channels_last": "yes"}, "'channels_last' parameter"),
        ({"progress_label": 3}, "'progress_label' parameter"),
    ],
)
def test_bad_precision_options_are_named(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        GenreNet(**TINY, max_epochs=1, **params).fit(X, y)


def test_bf16_is_refused_on_a_gpu_without_it(monkeypatch):
    from genreclf._training import check_precision

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    with pytest.raises(ValueError, match="no bfloat16 support: use precision='fp16'"):
        check_precision("cuda", "bf16")
    check_precision("cpu", "bf16")


def _assert_epoch_lines(text, label, scores):
    """Two epoch lines of a net named ``label``, each showing ``scores`` (a regex)."""
    lines = text.splitlines()
    assert len(lines) == 2
    for epoch, line in enumerate(lines, 1):
        pattern = rf"\[GenreNet{label}\] epoch {epoch}/2 {scores} \(\d+\.\d s\)"
        assert re.fullmatch(pattern, line), line


def test_one_progress_line_per_epoch(data, capsys):
    X, y = data
    net = GenreNet(**TINY, max_epochs=2, verbose=1, progress_label="member 2/5")
    net.set_params(random_state=0).fit(X, y)
    _assert_epoch_lines(
        capsys.readouterr().out,
        " member 2/5",
        r"train_loss \d+\.\d{4} valid_acc \d\.\d{3} valid_loss \d+\.\d{4}",
    )
    # without validation clips, the epoch's training accuracy takes its place
    GenreNet(**TINY, max_epochs=2, verbose=1, valid_size=0, random_state=0).fit(X, y)
    _assert_epoch_lines(
        capsys.readouterr().out, "", r"train_loss \d+\.\d{4} train_acc \d\.\d{3}"
    )
    GenreNet(**TINY, max_epochs=1, verbose=0, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""
    GenreNet(**TINY, max_epochs=1, verbose=2, random_state=0).fit(X, y)
    table = capsys.readouterr().out
    assert "train_loss" in table and "valid_acc" in table and "[GenreNet" not in table


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_trained_clip_features_net_predicts_the_same_on_cpu(
    ragged, precision, monkeypatch
):
    X, y = ragged
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("GPU without bfloat16")
    net = GenreNet(**RAGGED, train_windows="all", max_epochs=2, device="cuda")
    net.set_params(precision=precision, random_state=0).fit(X, y)
    assert next(net.module_.parameters()).is_cuda
    net.set_params(precision="fp32")
    proba = net.predict_proba(X)
    blob = pickle.dumps(net)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeviceWarning)
        loaded = pickle.loads(blob)
    assert loaded.device == "cpu" and not next(loaded.module_.parameters()).is_cuda
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-4)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_net_pickled_before_the_precision_options_loads(fitted, data):
    X, _ = data
    old = pickle.loads(pickle.dumps(fitted))
    for name in ("precision", "channels_last", "progress_label", "lr_schedule"):
        del old.__dict__[name]  # as a net pickled by genreclf 0.1
    loaded = pickle.loads(pickle.dumps(old))
    assert (loaded.precision, loaded.channels_last) == ("fp32", "auto")
    assert loaded.lr_schedule == "constant"
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


@pytest.mark.real_audio
def test_real_recordings_train_on_their_real_windows(real_audio_dir, tmp_path):
    from genreclf.datasets import load_folder
    from genreclf.pipeline import build_pipeline

    folder = real_audio_dir / "gtzan-100"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    paths, y = map(np.asarray, load_folder(folder))
    keep = np.isin(y, ["classical", "metal"])
    paths, y = paths[keep], y[keep]
    train = np.arange(len(y)) % 2 == 0
    pipe = build_pipeline(
        memory=tmp_path, random_state=0, n_members=1, duration=None, max_epochs=5
    )
    features = pipe[:2].fit_transform(paths[train], y[train])
    assert isinstance(features, ClipFeatures)
    pipe.fit(paths[train], y[train])
    net = pipe[-1].estimators_[0]
    y_enc = np.searchsorted(net.classes_, pipe[-1].le_.transform(y[train]))
    fit_part, _ = holdout_split(y_enc, net.valid_size, net.seed_)
    _, _, counts = window_index(features.n_frames[fit_part], net.window_, net.hop_)
    batches = net.history[0, "batches"]
    seen = sum(b["train_batch_size"] for b in batches if "train_batch_size" in b)
    assert seen == counts.sum()  # the clips' real windows, not 28.56 s of padding
    assert np.mean(pipe.predict(paths[~train]) == y[~train]) >= 0.8


def test_js_divergence_matches_scipy_and_is_bounded():
    from scipy.spatial.distance import jensenshannon

    from genreclf._loop import js_divergence

    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(size=(6, 4)) * 3)
    b = torch.from_numpy(rng.normal(size=(6, 4)) * 3)
    got = js_divergence(a, b).numpy()
    pa, pb = torch.softmax(a, 1).numpy(), torch.softmax(b, 1).numpy()
    want = jensenshannon(pa, pb, axis=1) ** 2  # scipy gives its square root
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(js_divergence(a, a).numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(got, js_divergence(b, a).numpy(), rtol=1e-6)
    sure = torch.tensor([[50.0, 0.0], [0.0, 50.0]])
    np.testing.assert_allclose(js_divergence(sure, sure.flip(1)), np.log(2), rtol=1e-5)


def _clips_with_bands(X):
    from genreclf._mfcc import mel_centres

    clips = ClipFeatures(list(X))
    clips.mel_hz = mel_centres(22050, 20)
    return clips


def test_pairs_read_the_same_windows_with_their_own_augmentation(data):
    X, _ = data
    clips = _clips_with_bands(X)
    y = np.arange(len(X)) % 3
    items = [0, 5, 9, 14]
    torch.manual_seed(3)
    plain = WindowDataset(clips, y, range(8), 12, 6, tilt_shift=6)[items]
    torch.manual_seed(3)
    pair = WindowDataset(clips, y, range(8), 12, 6, tilt_shift=6, pairs=True)[items]
    assert len(plain) == 4 and len(pair) == 5
    # the first view is what the dataset reads without pairs (same draws)
    for got, want in zip(pair[:4], plain, strict=True):
        if want is None:
            assert got is None
        else:
            assert torch.equal(got, want)
    second = pair[4]
    assert second.shape == pair[0].shape and not torch.allclose(second, pair[0])
    # without any augmentation the two views are the same windows
    bare = WindowDataset(clips, y, range(8), 12, 6, pairs=True)[items]
    assert torch.equal(bare[0], bare[4])
    assert torch.equal(pair[3], bare[3])  # the same clips


def test_consistency_pulls_the_answers_for_two_productions_together(data):
    from genreclf._loop import js_divergence

    X, y = data
    clips = _clips_with_bands(X)
    probe = WindowDataset(
        clips, np.zeros(len(y), np.int64), range(len(y)), 12, 6, tilt_shift=8,
        pairs=True,
    )
    spread = {}
    for weight in (0.0, 20.0):
        net = GenreNet(
            **TINY, max_epochs=6, window=12, tilt_shift=8.0, consistency=weight,
            random_state=0,
        ).set_params(module__head="global").fit(clips, y)
        assert net.predict_proba(clips).shape == (len(X), len(GENRES))
        torch.manual_seed(1)
        batch = probe[list(range(len(probe)))]
        net.module_.eval()
        with torch.no_grad():
            a, b = net.module_(batch[0]), net.module_(batch[4])
        spread[weight] = float(js_divergence(a, b).mean())
    assert spread[20.0] < 0.7 * spread[0.0]
    bare = GenreNet(**TINY, max_epochs=1, window=12, consistency=1.0)
    with pytest.raises(ValueError, match="but nothing is augmented"):
        bare.fit(X, y)
    both = GenreNet(**TINY, max_epochs=1, window=12, consistency=1.0, mixup=0.2)
    with pytest.warns(FutureWarning, match="mixup"):
        with pytest.raises(ValueError, match="consistency=1.0 and mixup"):
            both.fit(X, y)


def test_cosine_schedule_lowers_the_learning_rate_epoch_by_epoch(data):
    X, y = data
    params = dict(
        module__filters=(4, 8), module__dense=8, lr=0.01, valid_size=0, random_state=0
    )
    cosine = GenreNet(max_epochs=4, lr_schedule="cosine", **params).fit(X, y)
    # the rate each epoch trained with, half a cosine from lr down to 0
    rates = cosine.history[:, "event_lr"]
    np.testing.assert_allclose(rates, 0.005 * (1 + np.cos(np.pi * np.arange(4) / 4)))
    # every parameter group follows (the middle block's has its own weight decay)
    assert len(cosine.optimizer_.param_groups) == 2
    assert all(g["lr"] < 1e-12 for g in cosine.optimizer_.param_groups)
    constant = GenreNet(max_epochs=2, **params).fit(X, y)
    assert "event_lr" not in constant.history[-1]
    assert all(g["lr"] == 0.01 for g in constant.optimizer_.param_groups)
    # a refit with more epochs spreads the cosine over them
    longer = clone(cosine).set_params(max_epochs=6).fit(X, y)
    assert len(longer.history) == 6 and longer.history[-1, "event_lr"] > 0
    np.testing.assert_allclose(longer.history[3, "event_lr"], 0.005)  # halfway
    with pytest.raises(ValueError, match="lr_schedule"):
        GenreNet(lr_schedule="step", **params).fit(X, y)


def test_average_last_ends_with_the_mean_of_the_last_epochs(data):
    from skorch.callbacks import Callback

    X, y = data
    states = []

    class Keep(Callback):
        def on_epoch_end(self, net, **kwargs):
            states.append({k: v.clone() for k, v in net.module_.state_dict().items()})

    params = dict(
        module__filters=(4, 8), module__dense=8, module__batch_norm=True, lr=1e-3,
        valid_size=0, max_epochs=5, random_state=0,
    )
    net = GenreNet(average_last=3, callbacks=[("keep", Keep())], **params).fit(X, y)
    final = net.module_.state_dict()
    assert any(not v.is_floating_point() for v in final.values())  # BN's counter
    for name, value in final.items():
        if value.is_floating_point():  # parameters and BN statistics: epochs 3-5
            mean = torch.stack([s[name].double() for s in states[2:]]).mean(0)
            torch.testing.assert_close(value, mean.float())
        else:
            assert torch.equal(value, states[-1][name])
    weight = "blocks.0.conv1.weight"  # not the last epoch's
    assert not torch.allclose(final[weight], states[-1][weight])
    # the held-out best epoch and an average of the last ones exclude each other
    with pytest.raises(ValueError, match="average_last=3 .* monitor='valid_loss'"):
        GenreNet(average_last=3, **{**params, "valid_size": 0.25}).fit(X, y)
    # the calibration net's setting (clips held out, last epoch kept) averages
    held = GenreNet(average_last=3, monitor="last", **{**params, "valid_size": 0.25})
    assert held.fit(X, y).best_epoch_ == 5
