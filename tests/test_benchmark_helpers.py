"""benchmarks/accuracy.py's helpers that selection.py, transfer.py and combine.py share."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location("accuracy", BENCHMARKS / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["accuracy"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("accuracy", None)


def test_excerpts_start_where_asked_and_middle_ones_keep_their_names(accuracy, tmp_path):
    sr = 22050
    ramp = np.arange(10 * sr, dtype=np.float32) / (10 * sr)  # the value tells the time
    source = tmp_path / "ramp.wav"
    sf.write(source, ramp, sr, subtype="FLOAT")
    out = tmp_path / "excerpts"
    middle = accuracy.make_excerpts([str(source)], out, 2.0)[0]
    again = accuracy.make_excerpts([str(source)], out, 2.0, 0.5)[0]
    early = accuracy.make_excerpts([str(source)], out, 2.0, 0.2)[0]
    late = accuracy.make_excerpts([str(source)], out, 2.0, 1.0)[0]
    assert middle == again  # the default place is the middle, cached under one name
    assert len({middle, early, late}) == 3
    room = 8 * sr  # samples a 2 s excerpt can start at
    for path, at in ((middle, 0.5), (early, 0.2), (late, 1.0)):
        wave, rate = sf.read(path, dtype="float32")
        assert rate == sr and len(wave) == 2 * sr
        np.testing.assert_allclose(wave[0], ramp[int(room * at)], atol=1e-6)


def test_member_hits_score_each_net_alone(accuracy, tiny_demo):
    from genreclf import build_pipeline

    _, paths, y = tiny_demo
    paths, y = np.asarray(paths, dtype=object), np.asarray(y)
    pipe = build_pipeline(
        "demo", n_members=2, random_state=0, max_epochs=1, augment=0,
        filters=(4,), dense=8, valid_size=0,
    ).fit(paths, y)
    hits = accuracy.member_hits(pipe, paths[:6], y[:6])
    assert hits.shape == (2, 6) and hits.dtype == bool
    X = pipe[:-1].transform(paths[:6])
    for net, row in zip(pipe.steps[-1][1].estimators_, hits, strict=True):
        called = pipe.classes_[net.predict_proba(X).argmax(1)]
        np.testing.assert_array_equal(row, called == y[:6])
    assert accuracy.member_accuracy(pipe, paths[:6], y[:6]) == list(hits.mean(axis=1))


def test_variants_keep_commas_inside_brackets(accuracy):
    assert accuracy.parse_variant("tta:predict_stretch=(0.94,1.06),noise_snr=25") == (
        "tta", {"predict_stretch": [0.94, 1.06], "noise_snr": 25}
    )
    assert accuracy.parse_variant("one:predict_stretch=()") == (
        "one", {"predict_stretch": []}
    )
    assert accuracy.parse_variant("default") == ("default", {})


def test_a_fitted_default_is_scored_with_other_prediction_options(accuracy, tiny_demo):
    from genreclf import build_pipeline

    _, paths, y = tiny_demo
    paths, y = np.asarray(paths, dtype=object), np.asarray(y)
    pipe = build_pipeline(
        "demo", n_members=2, random_state=0, max_epochs=1, augment=0,
        filters=(4,), dense=8, valid_size=0, calibrate=False,
    ).fit(paths, y)
    nets = pipe.steps[-1][1].estimators_
    assert all(tuple(net.predict_stretch) == (0.94, 1.06) for net in nets)
    viewed = pipe.predict_proba(paths[:6])
    with accuracy.predicting_with(pipe, {"predict_stretch": ()}) as same:
        assert same is pipe and all(net.predict_stretch == () for net in nets)
        plain = pipe.predict_proba(paths[:6])
    # restored on the way out, even after an error inside
    assert all(tuple(net.predict_stretch) == (0.94, 1.06) for net in nets)
    with pytest.raises(ValueError, match="must lie in"):
        with accuracy.predicting_with(pipe, {"predict_stretch": (5.0,)}):
            pipe.predict_proba(paths[:2])
    assert all(tuple(net.predict_stretch) == (0.94, 1.06) for net in nets)
    np.testing.assert_allclose(pipe.predict_proba(paths[:6]), viewed)
    # the plain answers are those of nets without views, set by hand
    for net in nets:
        net.predict_stretch = ()
    np.testing.assert_allclose(pipe.predict_proba(paths[:6]), plain)
    assert not np.allclose(plain, viewed)


def test_selection_runs_every_variant_with_each_seed(accuracy):
    path = BENCHMARKS / "selection.py"
    spec = importlib.util.spec_from_file_location("selection", path)
    selection = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(selection)
    variants = {"default": {}, "n15": {"noise_snr": 15}, "own": {"augment_seed": 7},
                "baseline": None}
    runs, groups = selection.with_seeds(variants, "0,2")
    assert runs == {
        "default@0": {"augment_seed": 0},
        "default@2": {"augment_seed": 2},
        "n15@0": {"noise_snr": 15, "augment_seed": 0},
        "n15@2": {"noise_snr": 15, "augment_seed": 2},
        "own": {"augment_seed": 7},
        "baseline": None,
    }
    assert groups == {"default": ["default@0", "default@2"], "n15": ["n15@0", "n15@2"]}
    assert selection.with_seeds(variants, None) == (variants, {})
    row = selection._row("x", [0.5, 0.25, 0.125, np.nan, np.nan, 0.1, 0.2, 1.5, 12, 30])
    assert row.split() == ["x", "0.500", "0.250", "0.125", "-", "-", "0.100", "0.200",
                           "1.500", "12", "30"]
