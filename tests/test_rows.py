"""Request rows (paths or audio bytes), limits, calibration and the scoring format."""

import base64

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from genreclf._holdout import holdout_split
from genreclf.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
)
from genreclf.clips import ClipFeatures
from genreclf.ensemble import GenreEnsemble
from genreclf.exceptions import BadRequestError
from genreclf.model import GenreNet
from genreclf.rows import Limits, RowPredictions, _admit, rows_from_input
from genreclf.serving import _options, parse_request


def test_rows_from_every_input_form():
    wav = b"RIFF\x00\x00WAVE"
    assert [r.path for r in rows_from_input(["a.wav", "b.mp3"])] == ["a.wav", "b.mp3"]
    assert [r.path for r in rows_from_input("a.wav")] == ["a.wav"]
    assert [r.path for r in rows_from_input(pd.DataFrame({"x": ["a.wav"]}))] == ["a.wav"]
    # MLflow's base64 comes with newlines; bytes stay bytes
    text = base64.encodebytes(wav).decode()
    assert "\n" in text
    frame = pd.DataFrame(
        {"path": ["a.wav", None], "audio": [None, text], "filename": [None, "x.wav"]}
    )
    first, second = rows_from_input(frame)
    assert (first.path, first.audio, first.error) == ("a.wav", None, None)
    assert (second.path, second.audio, second.label) == (None, wav, "x.wav")
    [row] = rows_from_input([{"audio": wav, "filename": "y.flac"}])
    assert row.audio == wav and row.filename == "y.flac"
    [row] = rows_from_input({"audio": [wav]})
    assert row.audio == wav and row.label == ""


def test_unusable_rows_say_why():
    rows = rows_from_input(
        pd.DataFrame(
            {"path": ["a.wav", None, None], "audio": ["UklGRg==", "%%%not base64", None]}
        )
    )
    assert [r.error for r in rows] == [
        "give a path or audio, not both",
        "audio is neither bytes nor valid base64 text",
        "no path and no audio",
    ]
    with pytest.raises(ValueError, match="'path' column .* 'audio'"):
        rows_from_input(pd.DataFrame({"a": [1], "b": [2]}))


def test_limits_refuse_before_decoding(tmp_path, write_audio):
    path = str(tmp_path / "two.wav")
    write_audio(path, seconds=2.0)
    [row] = rows_from_input([path])
    folder = str(tmp_path)
    assert _admit(row, 0, folder, Limits()) == (path, None)
    _, reason = _admit(row, 0, folder, Limits(max_duration=1.5))
    assert reason == "clip of 2.0 s is over the limit of 1.5 s (not decoded)"
    _, reason = _admit(row, 0, folder, Limits(max_bytes=100))
    assert reason.startswith("file of ") and "limit of 100 bytes" in reason
    [row] = rows_from_input([{"audio": open(path, "rb").read(), "filename": None}])
    written, reason = _admit(row, 3, folder, Limits())
    assert reason is None and written.endswith("row3.wav")  # sniffed RIFF
    _, reason = _admit(row, 3, folder, Limits(max_bytes=10))
    assert "over the limit of 10 bytes (not decoded)" in reason


def test_limits_from_the_environment():
    assert Limits.from_env({}) == Limits()
    env = {"GENRECLF_MAX_BYTES": "1000", "GENRECLF_MAX_DURATION": "30"}
    assert Limits.from_env(env) == Limits(1000, 30.0)
    with pytest.raises(ValueError, match="GENRECLF_MAX_DURATION must be a positive"):
        Limits.from_env({"GENRECLF_MAX_DURATION": "-1"})


def test_row_predictions_keep_good_rows_beside_bad_ones():
    answer = RowPredictions(
        classes=["jazz", "rock"],
        labels=["a.wav", "junk.bin"],
        proba=[np.array([0.3, 0.7]), None],
        errors={1: "not an audio file"},
    )
    assert answer.message() == "row 1: junk.bin: not an audio file"
    good, bad = answer.records(top_k=2)
    assert good["genre"] == "rock" and good["genre_2"] == "jazz"
    assert good["probability_1"] == pytest.approx(0.7)
    assert bad == {"genre": None, "error": "not an audio file"}
    frame = answer.frame(top_k=1)
    assert list(frame.columns) == [
        "genre", "jazz", "rock", "genre_1", "probability_1", "error"
    ]
    assert frame["genre"].tolist()[0] == "rock" and frame["genre"].isna().tolist() == [False, True]


def test_scoring_formats_and_params():
    split = b'{"dataframe_split": {"columns": ["audio"], "data": [["UklGRg=="]]}}'
    rows, params = parse_request(split)
    assert list(rows.columns) == ["audio"] and params == {}
    rows, _ = parse_request(b'{"dataframe_records": [{"path": "a.wav"}]}')
    assert rows["path"].tolist() == ["a.wav"]
    rows, _ = parse_request(b'{"instances": ["a.wav"]}')
    assert rows == ["a.wav"]
    for body, message in [
        (b"nope", "not JSON"),
        (b'{"data": []}', "exactly one of"),
        (b'{"inputs": [], "params": 3}', "'params' must be"),
    ]:
        with pytest.raises(BadRequestError, match=message):
            parse_request(body)
    assert _options({}, 3) == (3, False, "raise")
    assert _options({"top_k": 1, "windows": True, "on_error": "row"}, 3) == (
        1, True, "row"
    )
    with pytest.raises(BadRequestError, match="'top_k' must be"):
        _options({"top_k": -1}, 3)
    with pytest.raises(BadRequestError, match="unknown params"):
        _options({"topk": 1}, 3)


def test_temperature_scaling_softens_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=200)
    # right 60% of the time, always 95% sure
    pred = np.where(rng.random(200) < 0.6, y, (y + 1) % 3)
    proba = np.full((200, 3), 0.025)
    proba[np.arange(200), pred] = 0.95
    t = fit_temperature(proba, y)
    after = apply_temperature(proba, t)
    assert t > 1
    np.testing.assert_array_equal(after.argmax(1), proba.argmax(1))
    np.testing.assert_allclose(after.sum(1), 1)
    before_ece = expected_calibration_error(proba, y)
    assert before_ece == pytest.approx(0.95 - np.mean(pred == y))
    assert expected_calibration_error(after, y) < before_ece / 3
    assert fit_temperature(proba[:0], y[:0]) == 1.0
    fig = plot_reliability(y, proba, after)
    assert "ECE" in fig.axes[0].get_legend().get_texts()[1].get_text()


@pytest.mark.usefixtures("one_torch_thread")
def test_calibrated_ensemble_tempers_every_member():
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["jazz", "rock", "pop"]), 8)
    X = rng.normal(size=(len(y), 1, 10, 12)).astype(np.float32)
    net = GenreNet(module__filters=(4,), module__dense=8, max_epochs=3, lr=0.01)
    plain = GenreEnsemble(net, n_members=2, random_state=0).fit(X, y)
    assert plain.temperature_ == 1.0 and plain.calibration_ is None
    calibrated = GenreEnsemble(net, n_members=2, random_state=0, calibrate=True)
    calibrated.fit(X, y)
    assert calibrated.temperature_ != 1.0
    # the clips each member held out (valid_size=0.2 of 24 -> 5), both members
    assert calibrated.calibration_.proba.shape == (10, 3)
    tempered = np.mean(
        [
            apply_temperature(m.predict_proba(X), calibrated.temperature_)
            for m in calibrated.estimators_
        ],
        axis=0,
    )
    np.testing.assert_allclose(calibrated.predict_proba(X), tempered)
    np.testing.assert_allclose(plain.predict_proba(X), np.mean(
        [m.predict_proba(X) for m in plain.estimators_], axis=0))


@pytest.mark.usefixtures("one_torch_thread")
def test_members_on_every_clip_are_calibrated_by_a_calibration_net():
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["jazz", "rock", "pop"]), 8)
    X = rng.normal(size=(len(y), 1, 10, 12)).astype(np.float32)
    net = GenreNet(
        module__filters=(4,), module__dense=8, max_epochs=3, lr=0.01, valid_size=0
    )
    plain = GenreEnsemble(net, n_members=2, random_state=0).fit(X, y)
    assert plain.calibration_seed_ is None and plain.calibration_ is None
    calibrated = GenreEnsemble(
        net, n_members=2, random_state=0, calibrate=True, calibration_size=6
    ).fit(X, y)
    # the same members (seeds, every clip, last epoch), one temperature for both
    assert calibrated.seeds_ == plain.seeds_
    assert calibrated.calibration_seed_ not in calibrated.seeds_
    for member, same in zip(calibrated.estimators_, plain.estimators_, strict=True):
        assert "valid_loss" not in member.history[-1]
        np.testing.assert_array_equal(member.predict_proba(X), same.predict_proba(X))
    assert calibrated.calibration_.source == "calibration net"
    assert calibrated.temperature_ != 1.0
    # the temperature's clips are those a sixth fit held out: fit it again by hand
    seed = calibrated.calibration_seed_
    by_hand = clone(net).set_params(random_state=seed, valid_size=6, monitor="last")
    by_hand.fit(X, calibrated.le_.transform(y))
    _, valid = holdout_split(calibrated.le_.transform(y), 6, by_hand.seed_)
    assert len(valid) == 6 and len(by_hand.history[:, "valid_loss"]) == 3
    np.testing.assert_array_equal(
        calibrated.calibration_.y, calibrated.le_.transform(y)[valid]
    )
    np.testing.assert_allclose(
        calibrated.calibration_.proba, by_hand.predict_proba(X[valid]), rtol=1e-6
    )
    assert calibrated.temperature_ == fit_temperature(
        calibrated.calibration_.proba, calibrated.calibration_.y
    )
    tempered = np.mean(
        [
            apply_temperature(m.predict_proba(X), calibrated.temperature_)
            for m in calibrated.estimators_
        ],
        axis=0,
    )
    np.testing.assert_allclose(calibrated.predict_proba(X), tempered)
    for bad in (0, 0.0, 1.0, -2):
        with pytest.raises(ValueError, match="calibration_size"):
            clone(calibrated).set_params(calibration_size=bad).fit(X, y)


@pytest.mark.usefixtures("one_torch_thread")
def test_one_window_clips_get_their_own_temperature():
    """Whole clips average many windows: excerpts of one window are tempered apart."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.array(["jazz", "rock", "pop"]), 10)
    widths = rng.integers(30, 50, size=len(y))
    clips = []
    for label, width in zip(y, widths, strict=True):
        clip = rng.normal(size=(6, width)).astype(np.float32)
        clip[["jazz", "rock", "pop"].index(label)] += 0.8
        clips.append(clip)
    X = ClipFeatures(clips)
    tiny = {"module__filters": (4,), "module__dense": 8, "max_epochs": 4, "lr": 0.01}
    net = GenreNet(**tiny, window=8, window_hop=4, valid_size=0)
    ensemble = GenreEnsemble(net, n_members=2, random_state=0, calibrate=True)
    ensemble.fit(X, y)
    held = ensemble.calibration_
    # 6 held-out clips (a fifth of 30), each also as excerpts of 8 and 5 frames
    assert len(held.y) == 18 and np.sum(held.windows == 1) == 12
    assert held.windows[:6].min() >= (30 - 8) // 4 + 1
    whole, short = ensemble.temperature_, ensemble.short_temperature_
    assert short is not None and whole != short
    assert whole == fit_temperature(held.proba[:6], held.y[:6])
    assert short == fit_temperature(held.proba[6:], held.y[6:])
    assert ensemble.long_windows_ == np.median(held.windows[:6])
    # a one-window clip is tempered by the short temperature, a long one by the whole
    probe = ClipFeatures([clips[0][:, :8], clips[1][:, :7], clips[2]])
    members = [m.predict_proba(probe) for m in ensemble.estimators_]
    n_windows = np.array([1, 1, len(range(0, widths[2] - 8 + 1, 4))])
    expected = np.mean(
        [apply_temperature(p, ensemble.clip_temperatures(n_windows)) for p in members],
        axis=0,
    )
    np.testing.assert_allclose(ensemble.predict_proba(probe), expected)
    temperatures = ensemble.clip_temperatures([1, 2, ensemble.long_windows_, 500])
    assert temperatures[0] == short and temperatures[2] == temperatures[3] == whole
    assert min(whole, short) < temperatures[1] < max(whole, short)
