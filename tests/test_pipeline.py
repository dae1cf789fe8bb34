"""build_pipeline: steps, presets, options, end to end on audio files, search."""

import pickle
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

import genreclf.audio
from genreclf.datasets import load_folder, make_synthetic
from genreclf.ensemble import GenreEnsemble
from genreclf.features import DEFAULT_DURATION, MFCCStandardizer, MFCCTransformer
from genreclf.model import GenreNet
from genreclf.pipeline import (
    DEMO_OPTIONS,
    OPTION_PATHS,
    PRESETS,
    STEP_NAMES,
    build_pipeline,
)

DEMO_GENRES = ["ambient", "rock", "swing", "techno"]
TINY = {"filters": (4, 8, 8), "dense": 8, "max_epochs": 3, "duration": 1.5}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    paths, y = make_synthetic(
        root, n_per_genre=6, duration=1.5, random_state=0, genres=DEMO_GENRES
    )
    return np.asarray(paths), np.asarray(y)


@pytest.fixture(scope="module")
def fitted(demo, tmp_path_factory):
    paths, y = demo
    cache = tmp_path_factory.mktemp("cache")
    pipe = build_pipeline(memory=cache, random_state=0, n_members=2, **TINY)
    return pipe.fit(paths, y)


def test_steps_and_their_names():
    pipe = build_pipeline()
    assert STEP_NAMES == ("mfcc", "scale", "ensemble")
    assert isinstance(pipe, Pipeline)
    assert [name for name, _ in pipe.steps] == list(STEP_NAMES)
    mfcc, scale, ensemble = (step for _, step in pipe.steps)
    assert isinstance(mfcc, MFCCTransformer) and isinstance(scale, MFCCStandardizer)
    assert isinstance(ensemble, GenreEnsemble) and isinstance(ensemble.net, GenreNet)
    assert ensemble.n_members == 5 and ensemble.voting == "soft"


def test_reference_preset_is_the_study():
    params = build_pipeline("reference").get_params()
    expected = {
        "mfcc__duration": DEFAULT_DURATION,
        "mfcc__n_mfcc": 20,
        "ensemble__n_members": 5,
        "ensemble__net__batch_size": 5,
        "ensemble__net__lr": 1e-4,
        "ensemble__net__optimizer": torch.optim.RMSprop,
        "ensemble__net__window": None,
        "ensemble__net__module__filters": (64, 160, 128),
        "ensemble__net__module__dense": 64,
        "ensemble__net__module__batch_norm": False,
        "ensemble__net__module__head": "flatten",
    }
    assert {key: params[key] for key in expected} == expected
    assert MFCCTransformer().n_frames() == 1230
    assert set(PRESETS) == {"default", "matched", "robust", "reference", "demo"}


def test_demo_preset_is_the_default_with_the_demo_options():
    assert PRESETS["demo"] == {**PRESETS["default"], **DEMO_OPTIONS}
    assert DEMO_OPTIONS == {
        "max_epochs": 12,
        "filters": (16, 32, 32),
        "dense": 32,
        "lr": 1e-3,
        "valid_size": 0.2,  # the run's validation curves
    }
    params = build_pipeline("demo").get_params()
    # the demo's 3 s clips keep their real length, as every clip of the default
    assert params["mfcc__duration"] is None and params["mfcc__n_mfcc"] == 40
    assert params["ensemble__net__module__filters"] == (16, 32, 32)
    assert params["ensemble__net__max_epochs"] == 12
    assert params["ensemble__net__window"] == 129  # from the default preset


@pytest.mark.parametrize(
    "name, value, path",
    [
        ("mixup", 0.2, "ensemble__net__mixup"),
        ("time_shift", 3, "ensemble__net__time_shift"),
        ("time_mask", 3, "ensemble__net__time_mask"),
        ("freq_mask", 2, "ensemble__net__freq_mask"),
        ("c0_shift", 0.5, "ensemble__net__c0_shift"),
        ("checkpoint_dir", "ckpt", "ensemble__checkpoint_dir"),
        ("resume", True, "ensemble__resume"),
        ("member_callback", print, "ensemble__member_callback"),
    ],
)
def test_deprecated_short_options_warn_and_still_work(name, value, path):
    assert name not in OPTION_PATHS
    with pytest.warns(FutureWarning, match=f"short option '{name}' is deprecated"):
        pipe = build_pipeline(**{name: value})
    assert pipe.get_params()[path] == value
    # the parameter path is the way on, and it does not warn at build time
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build_pipeline(**{path: value}).get_params()[path] == value
        build_pipeline(mixup=0.0)  # an augmentation left off is no use of it


def test_default_preset_is_the_measured_configuration():
    """The settings benchmarks/selection.py and transfer.py chose (docs "Results")."""
    params = build_pipeline().get_params()
    expected = {
        "mfcc__duration": None,
        "mfcc__augment": 6,
        "ensemble__net__max_epochs": 30,
        "ensemble__calibrate": True,
        "mfcc__n_mfcc": 40,
        "mfcc__pad": "wrap",
        "mfcc__loudness": "rms",
        "ensemble__n_members": 5,
        "ensemble__net__window": 129,
        "ensemble__net__window_hop": 64,
        "ensemble__net__train_windows": "all",
        "ensemble__net__combine": "logmean",
        "ensemble__net__module__filters": (8, 16),
        "ensemble__net__module__batch_norm": True,
        "ensemble__net__module__head": "global",
        "ensemble__net__module__input_stats": True,
    }
    assert {key: params[key] for key in expected} == expected
    # the study's settings are not carried into the default by mistake
    reference = build_pipeline("reference").get_params()
    assert reference["mfcc__pad"] == "zeros" and reference["mfcc__loudness"] is None


def test_default_pipeline_gives_the_same_genre_at_another_loudness(
    fitted, demo, tmp_path
):
    """The same music 12 dB softer or 6 dB louder: the same probabilities."""
    import soundfile as sf

    from genreclf.audio import load_audio

    paths, _ = demo
    chosen = paths[::3]
    copies = {0.25: [], 2.0: []}
    for i, path in enumerate(chosen):
        wave = load_audio(path)
        for gain, out in copies.items():
            target = tmp_path / f"clip{i}-x{gain}.wav"
            sf.write(target, wave * gain, 22050, subtype="FLOAT")
            out.append(str(target))
    proba = fitted.predict_proba(chosen)
    for out in copies.values():
        np.testing.assert_allclose(fitted.predict_proba(out), proba, atol=2e-3)
        assert list(fitted.predict(out)) == list(fitted.predict(chosen))
    # without the loudness setting the same net sees other features
    plain = clone(fitted[0]).set_params(loudness=None)
    assert not np.allclose(plain.transform(copies[0.25]), plain.transform(chosen))


def test_options_short_names_and_parameter_paths():
    pipe = build_pipeline(
        memory="cache-dir",
        random_state=3,
        n_members=2,
        device="cpu",
        batch_size=16,
        window=129,
        batch_norm=True,
        duration=3.0,
        ensemble__net__optimizer__momentum=0.5,
    )
    params = pipe.get_params()
    assert params["ensemble__net__batch_size"] == 16
    assert params["ensemble__net__window"] == 129
    assert params["ensemble__net__module__batch_norm"] is True
    assert params["ensemble__net__optimizer__momentum"] == 0.5
    assert params["ensemble__net__device"] == "cpu"
    assert params["mfcc__duration"] == 3.0 and params["mfcc__memory"] == "cache-dir"
    assert params["ensemble__random_state"] == 3 and params["ensemble__n_members"] == 2
    for name, path in OPTION_PATHS.items():
        assert path in params, name


def test_unknown_preset_or_option_is_named():
    with pytest.raises(ValueError, match="preset must be one of .* got 'best'"):
        build_pipeline("best")
    with pytest.raises(ValueError, match="unknown option 'epochs'"):
        build_pipeline(epochs=3)


def test_fits_audio_files_and_predicts_genre_names(fitted, demo):
    paths, y = demo
    pred = fitted.predict(paths)
    assert pred.shape == y.shape and set(pred) <= set(DEMO_GENRES)
    ensemble = fitted[-1]
    assert isinstance(ensemble, VotingClassifier)
    assert len(ensemble.estimators_) == 2
    assert ensemble.estimators_[0].random_state != ensemble.estimators_[1].random_state
    assert list(fitted.classes_) == sorted(DEMO_GENRES)
    proba = fitted.predict_proba(paths[:3])
    assert proba.shape == (3, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_same_random_state_gives_identical_pipelines(fitted, demo):
    paths, y = demo
    again = clone(fitted).fit(paths, y)
    np.testing.assert_array_equal(
        again.predict_proba(paths), fitted.predict_proba(paths)
    )


def test_load_folder_layout_and_pickle_round_trip(fitted, demo):
    paths, _ = demo
    root = Path(paths[0]).parent.parent  # <root>/<genre>/<file>
    folder_paths, folder_y = load_folder(root)
    assert sorted(folder_paths) == sorted(paths)
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(
        loaded.predict_proba(paths), fitted.predict_proba(paths)
    )
    assert loaded.get_params()["ensemble__net__device"] == "auto"


def test_grid_search_over_batch_size_decodes_each_clip_once(
    demo, tmp_path, monkeypatch
):
    paths, y = demo
    decoded = Counter()
    original = genreclf.audio.load_audio

    def counting_load_audio(path, *args, **kwargs):
        decoded[str(path)] += 1
        return original(path, *args, **kwargs)

    # Patch every genreclf module that imported load_audio by name.
    for name, module in list(sys.modules.items()):
        if name.startswith("genreclf") and getattr(module, "load_audio", None) is (
            original
        ):
            monkeypatch.setattr(module, "load_audio", counting_load_audio)
    pipe = build_pipeline(memory=tmp_path, random_state=0, n_members=2, **TINY)
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, {"ensemble__net__batch_size": [5, 16]}, cv=cv)
    search.fit(paths, y)
    assert sorted(decoded) == sorted(paths)
    assert set(decoded.values()) == {1}  # 2 folds x 2 candidates + refit
    table = pd.DataFrame(search.cv_results_)
    assert table["param_ensemble__net__batch_size"].tolist() == [5, 16]
    best = search.best_estimator_[-1]
    assert {m.batch_size for m in best.estimators_} == {
        search.best_params_["ensemble__net__batch_size"]
    }


@pytest.mark.real_audio
def test_real_recordings_end_to_end(real_audio_dir, tmp_path):
    folder = real_audio_dir / "gtzan-100"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    paths, y = load_folder(folder)
    paths, y = np.asarray(paths), np.asarray(y)
    keep = np.isin(y, ["classical", "metal"])
    paths, y = paths[keep], y[keep]
    train = np.zeros(len(y), dtype=bool)
    train[::2] = True  # 5 + 5 clips to train on, the 5 + 5 others to test
    pipe = build_pipeline(
        memory=tmp_path,
        random_state=0,
        n_members=2,
        **{**TINY, "duration": 3.0, "max_epochs": 30},
    )
    pipe.fit(paths[train], y[train])
    pred = pipe.predict(paths[~train])
    assert set(pred) <= {"classical", "metal"}
    # classical and metal are far apart: the fitted pipeline tells clips it
    # never saw apart (guessing one genre for all would score 0.5)
    assert np.mean(pred == y[~train]) >= 0.8, list(zip(y[~train], pred))


def test_model_with_other_feature_settings_than_the_data_is_refused(fitted, demo):
    """Issue 7.5: a fitted model fed features of other settings names the mismatch."""
    paths, _ = demo
    fitted_n_mfcc = fitted.get_params()["mfcc__n_mfcc"]
    other = pickle.loads(pickle.dumps(fitted)).set_params(mfcc__n_mfcc=13)
    with pytest.raises(ValueError, match=rf"13.*{fitted_n_mfcc}|{fitted_n_mfcc}.*13"):
        other.predict(paths[:2])


def test_matched_and_robust_presets_are_the_default_with_their_training():
    default = PRESETS["default"]
    assert default["augment_recipe"] == "single"
    assert (default["tilt_shift"], default["time_stretch"]) == (6.0, 0.08)
    # since stop 26: noise on half of the training windows and two tempo views
    # of every window at prediction; since stop 27 the head's spread of the
    # change over 3-frame means
    assert default["noise_snr"] == 25.0
    assert default["stats_smoothing"] == 3
    assert tuple(default["predict_stretch"]) == (0.94, 1.06)
    # matched: no production changes at all, neither variants nor on the fly,
    # and no tempo views (its nets never heard a tempo change)
    assert PRESETS["matched"] == {
        **default,
        "augment": 0,
        "max_epochs": 12,
        "tilt_shift": 0.0,
        "time_stretch": 0.0,
        "noise_snr": 0.0,
        "predict_stretch": (),
        "valid_size": 0.2,
    }
    # robust: the default without its tempo views
    assert PRESETS["robust"] == {**default, "predict_stretch": ()}
    # the default: every net on every clip, calibrated by a calibration net
    params = build_pipeline().get_params()
    assert params["ensemble__net__valid_size"] == 0
    assert params["ensemble__calibrate"] is True
    assert params["ensemble__calibration_size"] == 0.2
    assert params["ensemble__net__noise_snr"] == 25.0
    assert params["ensemble__net__predict_stretch"] == (0.94, 1.06)
    assert params["ensemble__net__module__stats_smoothing"] == 3
    assert build_pipeline(calibration_size=10).get_params()[
        "ensemble__calibration_size"
    ] == 10
    matched = build_pipeline("matched").get_params()
    assert matched["mfcc__augment"] == 0 and matched["ensemble__net__max_epochs"] == 12
    assert matched["ensemble__net__tilt_shift"] == 0
    assert matched["ensemble__net__time_stretch"] == 0
    assert matched["ensemble__net__noise_snr"] == 0
    assert matched["ensemble__net__predict_stretch"] == ()
    robust = build_pipeline("robust", max_epochs=5).get_params()
    assert robust["mfcc__augment"] == 6 and robust["ensemble__net__max_epochs"] == 5
    assert robust["ensemble__net__noise_snr"] == 25.0
    assert robust["ensemble__net__tilt_shift"] == 6.0
    assert robust["ensemble__net__predict_stretch"] == ()
    # stop 26's options (its stretch per mini-batch is gone)
    before = build_pipeline(stats_smoothing=1).get_params()
    assert before["ensemble__net__module__stats_smoothing"] == 1
    assert before["ensemble__net__predict_stretch"] == (0.94, 1.06)
    # stop 22's robust configuration, by its options
    old = build_pipeline(
        augment=3, augment_recipe="stacked", max_epochs=20, tilt_shift=8.0
    ).get_params()
    assert old["mfcc__augment_recipe"] == "stacked" and old["mfcc__augment"] == 3
    assert old["ensemble__net__tilt_shift"] == 8.0


def test_a_fixed_duration_turns_the_presets_augmentation_off():
    assert build_pipeline().get_params()["mfcc__augment"] == 6
    params = build_pipeline(duration=3.0).get_params()
    assert params["mfcc__duration"] == 3.0 and params["mfcc__augment"] == 0
    # The preset with the on-the-fly changes: the options that leave them no
    # place turn them off, as a fixed duration does augment.
    params = build_pipeline("robust", duration=3.0).get_params()
    # a dense array per clip does not know its mel bands: no tilt, no noise on it
    assert params["ensemble__net__tilt_shift"] == 0
    assert params["ensemble__net__noise_snr"] == 0
    assert params["ensemble__net__time_stretch"] == 0.08  # any width will do
    logmel = build_pipeline("robust", features="logmel").get_params()
    assert logmel["ensemble__net__tilt_shift"] == 0 and logmel["mfcc__augment"] == 6
    assert logmel["ensemble__net__noise_snr"] == 0
    flat = build_pipeline(head="flatten").get_params()
    assert flat["ensemble__net__time_stretch"] == 0.08  # each window keeps its width
    assert flat["ensemble__net__predict_stretch"] == ()  # views of another width
    assert flat["ensemble__net__tilt_shift"] == 6.0
    assert flat["ensemble__net__noise_snr"] == 25.0
    # given explicitly, an option is kept
    kept = build_pipeline("robust", duration=3.0, tilt_shift=4.0).get_params()
    assert kept["ensemble__net__tilt_shift"] == 4.0
    # asked for explicitly, the conflict is the transformer's clear error
    pipe = build_pipeline(duration=3.0, augment=2)
    with pytest.raises(ValueError, match="needs duration=None.*augment=0"):
        pipe.named_steps["mfcc"].fit(["x.wav"])
