"""benchmarks/serve_load.py: its classification of answers, and a short real run."""

import base64
import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from conftest import TINY_OPTIONS

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"
GENRES = {"rock", "folk"}


@pytest.fixture(scope="module")
def serve_load():
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _answer(status, predictions=None, message=None):
    body = {}
    if predictions is not None:
        body["predictions"] = predictions
    if message is not None:
        body["message"] = message
    return status, json.dumps(body).encode()


@pytest.mark.parametrize(
    "status, predictions, expected",
    [
        (200, [{"genre": "rock"}], "good_ok"),
        (200, [{"genre": "jazz"}], "good_failed"),  # not a genre of the model
        (200, [], "good_failed"),
        (500, None, "good_failed"),
        (0, None, "good_failed"),  # no answer at all (timeout, refused)
    ],
)
def test_classify_good_rows(serve_load, status, predictions, expected):
    status, body = _answer(status, predictions)
    assert serve_load.classify("path", status, body, None, GENRES) == expected
    assert serve_load.classify("audio", status, b"<html>", None, GENRES) != "good_ok"


GOOD_BAD = [{"genre": "rock"}, {"genre": None}]
NAMED = "1 of 2 row(s) could not be predicted: row 1: junk-3.bin: not an audio file"


@pytest.mark.parametrize(
    "status, predictions, message, expected",
    [
        (400, GOOD_BAD, NAMED, "bad_rejected"),
        (200, [{"genre": "rock"}, {"genre": "folk"}], None, "bad_accepted"),
        (400, GOOD_BAD, NAMED.replace("row 1", "row 0"), "bad_accepted"),
        (400, [{"genre": None}, {"genre": None}], NAMED, "bad_accepted"),  # good lost
        (400, None, NAMED, "bad_accepted"),  # no per-row results
        (413, GOOD_BAD, NAMED, "bad_accepted"),
    ],
)
def test_classify_bad_rows(serve_load, status, predictions, message, expected):
    status, body = _answer(status, predictions, message)
    assert serve_load.classify("bad", status, body, 1, GENRES) == expected


def test_percentile(serve_load):
    values = [float(v) for v in range(1, 101)]
    assert serve_load.percentile(values, 50) == pytest.approx(50.5)
    assert serve_load.percentile(values, 99) == pytest.approx(99.01)
    assert serve_load.percentile([3.0], 95) == 3.0
    assert serve_load.percentile([], 50) is None


def test_requests_are_seeded_mixed_and_garbage_is_no_audio(serve_load):
    rng = random.Random(0)
    blob = serve_load.garbage(rng, 5000)
    assert max(blob) < 0x80  # no MPEG frame sync, so no decoder takes it
    blobs = [base64.b64encode(blob).decode()]
    clips = [("a.mp3", base64.b64encode(b"ID3...").decode())]

    def plan(seed):
        return serve_load.make_requests(
            random.Random(seed), 400, [45, 45, 10], ["/x/a.wav"], clips, blobs
        )

    requests = plan(1)
    assert requests == plan(1) and requests != plan(2)
    kinds = [kind for kind, _, _ in requests]
    assert 0.35 < kinds.count("path") / 400 < 0.55
    assert 0.05 < kinds.count("bad") / 400 < 0.16
    for kind, body, bad_row in requests:
        payload = json.loads(body)
        if kind == "bad":
            rows = payload["dataframe_split"]["data"]
            assert bad_row == len(rows) - 1 and rows[bad_row][1] == blobs[0]
            assert rows[bad_row][2].startswith("junk-")
        else:
            assert bad_row is None


def test_a_trained_model_is_reused_from_its_record(serve_load, tmp_path, monkeypatch):
    (tmp_path / "mlflow.db").write_bytes(b"")
    record = {"model_uri": "models:/m-1", "train_args": serve_load.TRAIN_ARGS}
    (tmp_path / "model.json").write_text(json.dumps(record))

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(serve_load.subprocess, "run", no_training)
    assert serve_load.train_model(tmp_path, False, 60) == "models:/m-1"
    with pytest.raises(AssertionError, match="trained again"):
        serve_load.train_model(tmp_path, True, 60)  # --retrain


@pytest.mark.integration  # a server in a subprocess
def test_a_short_load_run(tiny_demo, tmp_path):
    from genreclf.pipeline import build_pipeline

    _, paths, y = tiny_demo
    pipeline = build_pipeline(
        memory=str(tmp_path / "cache"), random_state=0, n_members=1, **TINY_OPTIONS
    ).fit(np.asarray(paths, dtype=object), np.asarray(y))
    model = tmp_path / "model.joblib"
    joblib.dump(pipeline, model)
    command = [
        sys.executable, str(SCRIPT), "--model", str(model),
        "--work-dir", str(tmp_path / "work"), "--real-audio", "none",
        "--requests", "20", "--levels", "1,2", "--settle", "0.5", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "p99 ms" in done.stdout
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ping_after"] is True and result["ok"] is True
    assert [lv["clients"] for lv in result["levels"]] == [1, 2]
    for level in result["levels"]:
        assert level["completed"] == 20 and level["good_failed"] == 0
        assert level["good_ok"] + level["bad_rejected"] == 20
        assert level["bad_rejected"] == level["kinds"]["bad"]
        assert level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
        assert level["server_peak_rss_mb"] >= level["rss_before_mb"] > 0
    assert sum(lv["kinds"]["bad"] for lv in result["levels"]) > 0
    assert result["audio"] == "generated WAV"
