"""GenreEnsemble: seeds, parameters, string labels, callbacks, checkpoints."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback

from genreclf.ensemble import (
    CALIBRATION_FILE,
    MANIFEST,
    MEMBER_GLOB,
    GenreEnsemble,
    member_filename,
)
from genreclf.model import GenreNet

GENRES = np.array(["blues", "jazz", "metal", "rock"])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_net(**params):
    params = {"module__filters": (4, 8), "module__dense": 8, "max_epochs": 2, **params}
    return GenreNet(**params)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.repeat(GENRES, 5)
    X = rng.normal(size=(len(y), 1, 20, 24)).astype(np.float32)
    for k, label in enumerate(GENRES):
        X[y == label, :, 3 * k : 3 * k + 3] += 2.0
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    calls = []
    ensemble = GenreEnsemble(
        tiny_net(),
        n_members=3,
        random_state=0,
        member_callback=lambda *args: calls.append(args),
    )
    ensemble.fit(X, y)
    return ensemble, calls


def test_is_a_voting_classifier_of_nets_with_distinct_seeds(fitted):
    ensemble, _ = fitted
    assert isinstance(ensemble, VotingClassifier)
    assert ensemble.voting == "soft" and GenreEnsemble().n_members == 5
    assert len(ensemble.estimators_) == 3
    assert all(isinstance(m, GenreNet) for m in ensemble.estimators_)
    seeds = [m.random_state for m in ensemble.estimators_]
    assert seeds == ensemble.seeds_ and len(set(seeds)) == 3
    assert len({m.seed_ for m in ensemble.estimators_}) == 3
    assert list(ensemble.named_estimators_) == ["member0", "member1", "member2"]
    assert ensemble.net.random_state is None  # the template is left alone
    assert not hasattr(ensemble.net, "module_")


def test_string_labels_end_to_end(fitted, data):
    ensemble, _ = fitted
    X, y = data
    assert list(ensemble.classes_) == sorted(GENRES)
    pred = ensemble.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= set(GENRES)
    proba = ensemble.predict_proba(X)
    members = np.mean([m.predict_proba(X) for m in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(proba, members)
    np.testing.assert_array_equal(pred, ensemble.classes_[proba.argmax(axis=1)])


def test_member_callback_sees_each_fitted_member_in_order(fitted):
    ensemble, calls = fitted
    assert [c[0] for c in calls] == [0, 1, 2]
    assert [c[2] for c in calls] == ensemble.seeds_
    assert [c[1] for c in calls] == ensemble.estimators_
    assert all(hasattr(c[1], "module_") for c in calls)
    assert ensemble.resumed_ == [] and len(ensemble.fit_times_) == 3


def test_same_random_state_gives_identical_predictions(fitted, data):
    ensemble, _ = fitted
    X, y = data
    again = clone(ensemble).fit(X, y)
    assert again.seeds_ == ensemble.seeds_
    np.testing.assert_array_equal(again.predict_proba(X), ensemble.predict_proba(X))
    other = clone(ensemble).set_params(random_state=1, n_members=1).fit(X, y)
    assert other.seeds_[0] not in ensemble.seeds_


def test_params_are_those_of_a_plain_estimator(fitted):
    ensemble, _ = fitted
    params = ensemble.get_params(deep=False)
    assert list(params) == [
        "calibrate",
        "calibration_size",
        "checkpoint_dir",
        "member_callback",
        "n_jobs",
        "n_members",
        "net",
        "random_state",
        "resume",
        "split_variants",
        "verbose",
        "voting",
    ]
    deep = ensemble.get_params()
    assert deep["net__batch_size"] == 5 and "estimators" not in deep
    copy = clone(ensemble).set_params(net__batch_size=16, net__module__dense=4)
    assert [m.batch_size for _, m in copy.estimators] == [16, 16, 16]
    assert [m.module__dense for _, m in copy.estimators] == [4, 4, 4]
    assert ensemble.net.batch_size == 5
    # The default net (None) accepts net__* too.
    assert GenreEnsemble().set_params(net__batch_size=7).net.batch_size == 7


def test_prediction_options_reach_the_fitted_members_at_once(data):
    from sklearn.pipeline import Pipeline

    X, y = data
    net = tiny_net(module__head="global", window=12, predict_stretch=(0.9, 1.1))
    pipe = Pipeline([("ensemble", GenreEnsemble(net, n_members=2, random_state=0))])
    pipe.fit(X, y)
    members, rule = pipe[-1].estimators_, net.combine
    with_views = pipe.predict_proba(X)
    # by hand, as before: each fitted member without views
    for member in members:
        member.predict_stretch = ()
    by_hand = pipe.predict_proba(X)
    for member in members:
        member.predict_stretch = (0.9, 1.1)
    assert not np.allclose(by_hand, with_views)

    pipe.set_params(ensemble__net__predict_stretch=())
    assert [m.predict_stretch for m in members] == [(), ()]
    assert pipe[-1].net.predict_stretch == ()
    np.testing.assert_array_equal(pipe.predict_proba(X), by_hand)
    pipe.set_params(
        ensemble__net__predict_stretch=(0.9, 1.1), ensemble__net__combine="vote"
    )
    assert [m.combine for m in members] == ["vote", "vote"]
    pipe.set_params(ensemble__net__combine=rule)
    np.testing.assert_array_equal(pipe.predict_proba(X), with_views)
    # a training parameter waits for the next fit, as in scikit-learn
    pipe.set_params(ensemble__net__max_epochs=5)
    assert [m.max_epochs for m in members] == [2, 2]
    assert pipe[-1].net.max_epochs == 5
    # a value of the wrong kind is refused before anything is set, naming it
    with pytest.raises(ValueError, match="combine"):
        pipe.set_params(ensemble__net__combine="log_mean")
    assert [m.combine for m in members] == [rule, rule]
    assert pipe[-1].net.combine == rule
    # a list reaches the members as a tuple of their own
    pipe.set_params(ensemble__net__predict_stretch=[0.9, 1.1])
    assert [m.predict_stretch for m in members] == [(0.9, 1.1), (0.9, 1.1)]
    np.testing.assert_array_equal(pipe.predict_proba(X), with_views)
    # a factor out of range is refused where the members use it, naming the option
    pipe.set_params(ensemble__net__predict_stretch=(3.0,))
    with pytest.raises(ValueError, match="predict_stretch"):
        pipe.predict(X)


def _trained_batch_sizes(member):
    """The batch size a member trained with, read from its epoch history."""
    sizes = [
        b["train_batch_size"] for b in member.history[0, "batches"]
        if "train_batch_size" in b
    ]  # fmt: skip
    # a batch size larger than the training part trains in one full batch
    assert max(sizes) == min(member.batch_size, sum(sizes))
    return member.batch_size, sum(sizes)


def test_grid_search_sets_the_batch_size_of_every_member(data):
    X, y = data
    seen = []

    def scorer(ensemble, X_test, y_test):
        # What each candidate's members actually trained with, fold by fold.
        seen.append([_trained_batch_sizes(m) for m in ensemble.estimators_])
        return ensemble.score(X_test, y_test)

    search = GridSearchCV(
        GenreEnsemble(tiny_net(max_epochs=1), n_members=2, random_state=0),
        {"net__batch_size": [5, 16]},
        cv=2,
        scoring=scorer,
    )
    search.fit(X, y)
    # 2 candidates x 2 folds, candidate by candidate, then the refit (no score)
    sizes = [[size for size, _ in fold] for fold in seen]
    assert sizes == [[5, 5]] * 2 + [[16, 16]] * 2
    n_train = seen[0][0][1]  # 8 of the 10 clips of a fold train, 2 validate
    assert n_train == 8 and all(n == n_train for fold in seen for _, n in fold)
    members = search.best_estimator_.estimators_
    assert {m.batch_size for m in members} == {search.best_params_["net__batch_size"]}


def test_hard_voting_and_member_scores(fitted, data):
    ensemble, _ = fitted
    X, y = data
    hard = clone(ensemble).set_params(voting="hard").fit(X, y)
    assert set(hard.predict(X)) <= set(GENRES)
    with pytest.raises(AttributeError, match="no attribute 'predict_proba'"):
        hard.predict_proba(X)
    # each member's own accuracy, on clips where the members disagree
    rng = np.random.default_rng(1)
    X_noisy = X + rng.normal(scale=3.0, size=X.shape).astype(np.float32)
    scores = ensemble.score_members(X_noisy, y)
    expected = [
        np.mean(ensemble.classes_[m.predict(X_noisy)] == y)
        for m in ensemble.estimators_
    ]
    assert scores.shape == (3,)
    np.testing.assert_allclose(scores, expected)
    assert len(set(expected)) > 1  # the check can tell the members apart


def test_clone_and_pickle_round_trip(fitted, data):
    ensemble, _ = fitted
    X, _ = data
    copy = clone(ensemble)
    assert copy.get_params(deep=False).keys() == ensemble.get_params(False).keys()
    assert not hasattr(copy, "estimators_")
    state = pickle.dumps(ensemble.set_params(member_callback=None))
    loaded = pickle.loads(state)
    np.testing.assert_array_equal(loaded.predict_proba(X), ensemble.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), ensemble.predict(X))


def test_bad_parameters_and_targets(data):
    X, y = data
    with pytest.raises(
        ValueError,
        match=r"'n_members' parameter of GenreEnsemble must be an int in the "
        r"range \[1, inf\). Got 0",
    ):
        GenreEnsemble(tiny_net(), n_members=0).fit(X, y)
    with pytest.raises(ValueError, match=r"'voting' parameter .* among .*'soft'"):
        GenreEnsemble(tiny_net(), voting="mean").fit(X, y)
    with pytest.raises(ValueError, match=r"'net' parameter .* implementing 'fit'"):
        GenreEnsemble(net="GenreNet").fit(X, y)
    with pytest.raises(ValueError, match=r"'checkpoint_dir' parameter .* Got 3"):
        GenreEnsemble(tiny_net(), checkpoint_dir=3).fit(X, y)
    with pytest.raises(ValueError, match=r"'n_jobs' parameter .* Got 1.5"):
        GenreEnsemble(tiny_net(), n_jobs=1.5).fit(X, y)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        GenreEnsemble(tiny_net(), n_members=1).fit(X, np.linspace(0, 1, len(y)))


# --- checkpoints and resuming --------------------------------------------------------


class Interrupt(Exception):
    pass


def _stop_after(index):
    def callback(i, member, seed):
        if i == index:
            raise Interrupt

    return callback


def test_interrupted_fit_resumes_from_saved_members(tmp_path, data, fitted):
    ensemble, _ = fitted
    X, y = data
    folder = tmp_path / "members"
    interrupted = clone(ensemble).set_params(
        checkpoint_dir=folder, member_callback=_stop_after(1)
    )
    with pytest.raises(Interrupt):
        interrupted.fit(X, y)
    assert sorted(p.name for p in folder.iterdir()) == [
        "ensemble.json",
        "member0.joblib",
        "member1.joblib",
    ]
    assert MANIFEST == "ensemble.json" and member_filename(1) == "member1.joblib"
    assert sorted(p.name for p in folder.glob(MEMBER_GLOB)) == [
        member_filename(0),
        member_filename(1),
    ]
    seen = []
    resumed = clone(interrupted).set_params(
        resume=True, member_callback=lambda i, m, s: seen.append(i)
    )
    resumed.fit(X, y)
    assert resumed.resumed_ == [0, 1] and seen == [0, 1, 2]
    assert resumed.fit_times_[:2] == [0.0, 0.0] and resumed.fit_times_[2] > 0
    np.testing.assert_array_equal(resumed.predict_proba(X), ensemble.predict_proba(X))
    # Without resume=True, the members are fitted again.
    fresh = clone(interrupted).set_params(member_callback=None).fit(X, y)
    assert fresh.resumed_ == []


class InterruptSeed(Callback):
    """Raise KeyboardInterrupt in the first epoch of the net with this seed."""

    def __init__(self, seed):
        self.seed = seed

    def on_epoch_end(self, net, **kwargs):
        if net.random_state == self.seed:
            raise KeyboardInterrupt


def test_ctrl_c_in_a_member_saves_only_finished_members(tmp_path, data):
    X, y = data
    seeds = GenreEnsemble(n_members=3, random_state=0)._draw_seeds()
    net = tiny_net(callbacks=[("stop", InterruptSeed(seeds[1]))])
    ensemble = GenreEnsemble(net, n_members=3, random_state=0, checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt, match="interrupted after 1 epoch"):
        ensemble.fit(X, y)
    assert sorted(p.name for p in tmp_path.glob("member*")) == ["member0.joblib"]


def test_resume_ignores_checkpoints_of_other_data_or_params(tmp_path, data):
    X, y = data
    folder = tmp_path / "members"
    GenreEnsemble(tiny_net(), n_members=1, random_state=0, checkpoint_dir=folder).fit(
        X, y
    )
    params = {"n_members": 1, "random_state": 0, "checkpoint_dir": folder}
    other_data = GenreEnsemble(tiny_net(), resume=True, **params).fit(X[::-1], y[::-1])
    assert other_data.resumed_ == []
    other_net = GenreEnsemble(tiny_net(lr=0.1), resume=True, **params).fit(X, y)
    assert other_net.resumed_ == []


def test_resume_without_random_state_reuses_the_saved_seeds(tmp_path, data):
    X, y = data
    params = {"n_members": 2, "checkpoint_dir": tmp_path, "resume": True}
    first = GenreEnsemble(tiny_net(), **params).fit(X, y)
    second = GenreEnsemble(tiny_net(), **params).fit(X, y)
    assert second.resumed_ == [0, 1] and second.seeds_ == first.seeds_


def test_unusable_checkpoint_dir_fails_before_training(tmp_path, data):
    X, y = data
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    ensemble = GenreEnsemble(tiny_net(), n_members=1, checkpoint_dir=not_a_folder)
    with pytest.raises(OSError, match="checkpoint_dir .*file cannot be created"):
        ensemble.fit(X, y)
    assert not hasattr(ensemble, "estimators_")


def test_damaged_checkpoint_is_fitted_again(tmp_path, data):
    X, y = data
    params = {"n_members": 1, "random_state": 0, "checkpoint_dir": tmp_path}
    GenreEnsemble(tiny_net(), **params).fit(X, y)
    (tmp_path / "member0.joblib").write_bytes(b"not a pickle")
    again = GenreEnsemble(tiny_net(), resume=True, **params).fit(X, y)
    assert again.resumed_ == [] and hasattr(again.estimators_[0], "module_")


def test_calibration_net_is_saved_and_reloaded_with_the_members(tmp_path, data):
    X, y = data
    params = {
        "n_members": 2,
        "checkpoint_dir": tmp_path,
        "calibrate": True,
        "verbose": True,
    }
    first = GenreEnsemble(tiny_net(valid_size=0), **params).fit(X, y)
    assert (tmp_path / CALIBRATION_FILE).is_file()
    assert len(list(tmp_path.glob(MEMBER_GLOB))) == 2  # it is not a member
    # without random_state the seeds, the calibration net's too, come from the folder
    again = GenreEnsemble(tiny_net(valid_size=0), resume=True, **params).fit(X, y)
    assert again.resumed_ == [0, 1]
    assert again.calibration_seed_ == first.calibration_seed_
    assert again.temperature_ == first.temperature_
    np.testing.assert_array_equal(again.calibration_.proba, first.calibration_.proba)
    # another held-out share: the saved calibration net no longer fits, refitted
    other = GenreEnsemble(
        tiny_net(valid_size=0), resume=True, calibration_size=8, **params
    ).fit(X, y)
    assert other.resumed_ == [0, 1] and len(other.calibration_.y) == 8


def _one_blues_clip(data):
    X, y = data
    y = y.copy()
    y[np.flatnonzero(y == "blues")[1:]] = "jazz"
    return X, y


def test_single_file_genre_warning_names_the_genre(data):
    """Issue 15: members, fitted on encoded labels, warned about class ``[0]``."""
    X, y = _one_blues_clip(data)
    ensemble = GenreEnsemble(tiny_net(max_epochs=1), n_members=2, random_state=0)
    with pytest.warns(UserWarning, match="genre 'blues' has a single clip") as rec:
        ensemble.set_params(calibrate=True).fit(X, y)
    split = [str(w.message) for w in rec if "validation split" in str(w.message)]
    assert len(split) == 2  # one per member; calibration does not warn again
    assert all("add files of 'blues'" in m and "[0]" not in m for m in split)
    assert "ensemble__net__valid_size=0" in split[0]


@pytest.mark.slow
def test_members_in_parallel_processes(data, fitted):
    ensemble, _ = fitted
    X, y = data
    calls = []
    parallel = clone(ensemble).set_params(
        n_jobs=2, member_callback=lambda i, m, s: calls.append(i)
    )
    parallel.fit(X, y)
    assert calls == [0, 1, 2]
    np.testing.assert_allclose(parallel.predict_proba(X), ensemble.predict_proba(X))


class _VariantSpy(GenreNet):
    """A GenreNet that records which variants of clip 0 it was trained on."""

    seen = []

    def fit(self, X, y, **fit_params):
        type(self).seen.append(
            sorted(int(X.clip(0, v)[0, 0, 0]) for v in range(1, X.n_variants))
        )
        return super().fit(X, y, **fit_params)


def test_split_variants_deals_each_member_its_own_variants(data):
    from genreclf.clips import ClipFeatures

    X, y = data
    # clip i's variant v is the clip plus 1000 * v: its first value names it
    clips = [x[0] - x[0, 0, 0] for x in X]
    more = [[c + 1000 * v for v in range(1, 7)] for c in clips]
    X = ClipFeatures(clips, variants=more)
    net = _VariantSpy(
        module__filters=(4,), module__dense=8, max_epochs=1, window=8, window_hop=8
    )
    _VariantSpy.seen = []
    split = GenreEnsemble(net, n_members=3, random_state=0, split_variants=True)
    split.set_params(calibrate=True, net__valid_size=0).fit(X, y)
    shares = [[1000 * v for v in share] for share in ([1, 4], [2, 5], [3, 6])]
    assert _VariantSpy.seen == [*shares, shares[0]]  # the calibration net: member 0's
    _VariantSpy.seen = []
    shared = clone(split).set_params(split_variants=False).fit(X, y)
    assert _VariantSpy.seen == [[1000 * v for v in range(1, 7)]] * 4
    # other training data: other members, and another checkpoint fingerprint
    assert not np.allclose(split.predict_proba(X), shared.predict_proba(X))
    assert split._fingerprint(X, y, {}) != shared._fingerprint(X, y, {})
    # no variants (dense arrays): nothing to deal, the same fit as without
    dense = clone(split).set_params(net=tiny_net(max_epochs=1)).fit(*data)
    plain = clone(dense).set_params(split_variants=False).fit(*data)
    np.testing.assert_allclose(dense.predict_proba(data[0]),
                               plain.predict_proba(data[0]))
    with pytest.raises(ValueError, match="among 7 members.*hold 6 variant.*augment=42"):
        clone(split).set_params(n_members=7).fit(X, y)


@parametrize_with_checks(
    [
        GenreEnsemble(
            GenreNet(
                module__filters=(8,),
                module__dense=16,
                max_epochs=5,
                batch_size=32,
                lr=1e-2,
            ),
            n_members=2,
            random_state=0,
        )
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_resume_reuses_members_after_a_change_of_prediction_options(tmp_path, data):
    # Training never reads predict_stretch (nor combine when the net holds no
    # clips out): switching them and resuming reuses the saved members and
    # gives them the new values, as set_params does on a fitted ensemble.
    X, y = data
    net = tiny_net(module__head="global", predict_stretch=(), valid_size=0)
    params = {"n_members": 2, "random_state": 0, "checkpoint_dir": tmp_path}
    first = GenreEnsemble(net, **params).fit(X, y)
    views = (0.9, 1.1)
    switched = clone(first).set_params(
        resume=True, net__predict_stretch=views, net__combine="logmean"
    )
    switched.fit(X, y)
    assert switched.resumed_ == [0, 1]
    for member in switched.estimators_:
        assert member.predict_stretch == views and member.combine == "logmean"
    first.set_params(net__predict_stretch=views, net__combine="logmean")
    np.testing.assert_array_equal(switched.predict_proba(X), first.predict_proba(X))
    # Where held-out clips are scored (here their accuracy chooses the
    # epoch), combine shapes the fit: the members are fitted again.
    chosen = tiny_net(module__head="global", valid_size=0.2, monitor="valid_acc")
    folder = tmp_path / "chosen"
    GenreEnsemble(chosen, n_members=1, random_state=0, checkpoint_dir=folder).fit(X, y)
    again = GenreEnsemble(
        clone(chosen).set_params(combine="vote"),
        n_members=1,
        random_state=0,
        checkpoint_dir=folder,
        resume=True,
    ).fit(X, y)
    assert again.resumed_ == []
    # ... while its tempo views, which training never reads, still reuse it
    views_only = GenreEnsemble(
        clone(chosen).set_params(combine="vote", predict_stretch=views),
        n_members=1,
        random_state=0,
        checkpoint_dir=folder,
        resume=True,
    ).fit(X, y)
    assert views_only.resumed_ == [0]
    assert views_only.estimators_[0].predict_stretch == views
    # a value the net refuses is refused before anything is reloaded
    with pytest.raises(ValueError, match="combine"):
        GenreEnsemble(
            clone(net).set_params(combine="median"), resume=True, **params
        ).fit(X, y)
