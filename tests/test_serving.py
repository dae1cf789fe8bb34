"""Real servers on 127.0.0.1: mlflow models serve, genreclf serve, a tracking server."""

import base64
import http.client
import json
import os
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import (
    TINY_ARGS,
    TINY_OPTIONS,
    free_port,
    mlflow_server_command,
    start_server,
    stop_server,
)

from genreclf import tracking
from genreclf.cli import main
from genreclf.pipeline import build_pipeline

mlflow = pytest.importorskip("mlflow")
pytestmark = [
    pytest.mark.integration,  # servers in subprocesses
    pytest.mark.usefixtures("fresh_mlflow_experiment"),
]


def _get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.status, answer.read().decode()


def _post(url, payload):
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("MLFLOW_TRACKING") or not k.startswith("MLFLOW_")
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def logged_model(module_mlflow, tiny_demo):
    """A tiny pipeline trained and logged once: (model URI, fitted pipeline)."""
    _, paths, y = tiny_demo
    pipeline = build_pipeline(
        memory=str(module_mlflow / "cache"),
        random_state=0,
        n_members=1,
        ensemble__calibrate=True,
        **TINY_OPTIONS,
    )
    result = tracking.train_and_log(pipeline, paths[::2], y[::2], log_model=True)
    return result.model_uri, result.pipeline, paths[1::2]


def test_models_serve_answers_file_paths(logged_model, module_mlflow, tmp_path):
    uri, pipeline, paths = logged_model
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        f"{base}/ping",
        str(module_mlflow),
        _env(),
    )
    try:
        expected = list(pipeline.predict(np.asarray(paths[:3], dtype=object)))
        status, answer = _post(
            f"{base}/invocations",
            {
                "dataframe_split": {
                    "columns": ["path"],
                    "data": [[p] for p in paths[:3]],
                }
            },
        )
        assert status == 200, answer
        rows = answer["predictions"]
        assert [r["genre"] for r in rows] == expected
        assert sum(v for k, v in rows[0].items() if k != "genre") == pytest.approx(1)
        # a plain list of paths
        status, answer = _post(f"{base}/invocations", {"inputs": paths[:2]})
        assert status == 200, answer
        assert [r["genre"] for r in answer["predictions"]] == expected[:2]
        # an unreadable file: 400, and the message names it
        missing = str(tmp_path / "missing.wav")
        status, answer = _post(f"{base}/invocations", {"inputs": [paths[0], missing]})
        assert status == 400
        assert f"{missing}: file not found" in answer["message"]
        # the audio itself, base64 as MLflow encodes binary columns
        clip = _clip(paths)
        status, answer = _post(f"{base}/invocations", _audio_request([clip]))
        assert status == 200, answer
        assert answer["predictions"][0]["genre"] == _expected(pipeline, clip)
        # bytes that are not audio: 400 naming the row, the file and the reason
        status, answer = _post(f"{base}/invocations", _audio_request([clip, GARBAGE]))
        assert status == 400
        assert "row 1: junk.bin: not an audio file" in answer["message"]
        # per-row answers when asked for: the good row is kept
        request = {**_audio_request([clip, GARBAGE]), "params": {"on_error": "row"}}
        status, answer = _post(f"{base}/invocations", request)
        assert status == 200, answer
        good, bad = answer["predictions"]
        assert good["genre"] == _expected(pipeline, clip)
        assert bad["genre"] is None or bad["genre"] != bad["genre"]  # null or NaN
        assert bad["error"].startswith("not an audio file")
        status, answer = _post(
            f"{base}/invocations", {**_audio_request([clip]), "params": {"top_k": 2}}
        )
        assert status == 200, answer
        row = answer["predictions"][0]
        assert row["genre_1"] == row["genre"]
        assert row["probability_1"] >= row["probability_2"]
    finally:
        stop_server(proc)


#: Bytes that are not audio, sent as a file called junk.bin.
GARBAGE = b"this is not audio, just text " * 40


def _clip(paths):
    """A real mp3 under GENRECLF_REAL_AUDIO when there is one, else a demo clip."""
    folder = os.environ.get("GENRECLF_REAL_AUDIO")
    if folder and os.path.isdir(folder):
        for root, _, names in sorted(os.walk(folder)):
            mp3 = sorted(n for n in names if n.endswith(".mp3"))
            if mp3:
                return os.path.join(root, mp3[0])
    return paths[0]


def _audio_request(clips):
    data = []
    for clip in clips:
        if isinstance(clip, bytes):
            data.append([base64.b64encode(clip).decode(), "junk.bin"])
        else:
            with open(clip, "rb") as f:
                data.append([base64.b64encode(f.read()).decode(), os.path.basename(clip)])
    return {"dataframe_split": {"columns": ["audio", "filename"], "data": data}}


def _expected(pipeline, path):
    return str(pipeline.predict(np.asarray([path], dtype=object))[0])


@pytest.fixture(scope="module")
def genreclf_server(logged_model, module_mlflow):
    """``genreclf serve`` of the logged model in a subprocess: its base URL."""
    uri = logged_model[0]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "genreclf", "serve", uri, "--port", str(port),
        "--max-body-mb", "5", "--max-duration", "600",
    ]  # fmt: skip
    proc = start_server(command, f"{base}/ping", str(module_mlflow), _env())
    yield base
    stop_server(proc)


def test_genreclf_serve_answers_like_predict(genreclf_server, logged_model, tmp_path):
    base = genreclf_server
    _, pipeline, paths = logged_model
    clip = _clip(paths)
    expected = _expected(pipeline, clip)
    assert _get(f"{base}/ping")[0] == 200
    status, answer = _post(f"{base}/invocations", _audio_request([clip]))
    assert status == 200, answer
    [row] = answer["predictions"]
    assert row["genre"] == expected
    # top-3 by default, in order, out of the model's probabilities
    assert [row[f"genre_{k}"] for k in (1, 2, 3)][0] == expected
    assert row["probability_1"] >= row["probability_2"] >= row["probability_3"]
    assert sum(row[g] for g in pipeline.classes_) == pytest.approx(1)
    # the same answer for the file's path, in every MLflow format
    for request in (
        {"inputs": [clip]},
        {"dataframe_records": [{"path": clip}]},
        {"dataframe_split": {"columns": ["path"], "data": [[clip]]}},
    ):
        status, answer = _post(f"{base}/invocations", request)
        assert status == 200, answer
        assert answer["predictions"][0]["genre"] == expected
    # garbage: 400 naming the row, and the good row's answer inside
    status, answer = _post(f"{base}/invocations", _audio_request([clip, GARBAGE]))
    assert status == 400
    assert "1 of 2 row(s)" in answer["message"]
    assert "row 1: junk.bin: not an audio file" in answer["message"]
    good, bad = answer["predictions"]
    assert good["genre"] == expected
    assert bad["genre"] is None and bad["error"].startswith("not an audio file")
    # the genre of each window over time
    request = {**_audio_request([clip]), "params": {"windows": True, "top_k": 1}}
    status, answer = _post(f"{base}/invocations", request)
    assert status == 200, answer
    strip = answer["predictions"][0]["windows"]
    assert len(strip["start"]) == len(strip["genre"]) >= 1
    assert strip["start"][0] == 0 and set(strip["genre"]) <= set(pipeline.classes_)
    assert "genre_2" not in answer["predictions"][0]


def test_genreclf_serve_limits(genreclf_server, tmp_path, write_audio):
    base = genreclf_server
    # a body over --max-body-mb 5: refused from its headers, before it is sent
    host, port = base.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/invocations")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(6 * 2**20))
    conn.endheaders()
    answer = conn.getresponse()
    assert answer.status == 413
    assert "over the limit of 5242880 bytes" in json.loads(answer.read())["message"]
    conn.close()
    # a clip longer than --max-duration, by its header: refused, not decoded
    long = write_audio(tmp_path / "long.wav", sr=1000, seconds=601.0)
    status, answer = _post(f"{base}/invocations", _audio_request([str(long)]))
    assert status == 400
    assert "over the limit of 600 s (not decoded)" in answer["message"]
    status, answer = _post(f"{base}/invocations", {"inputs": [], "params": {"k": 1}})
    assert status == 400 and "unknown params" in answer["message"]


def test_describe_prints_the_model_card(logged_model, capsys):
    uri, pipeline, _ = logged_model
    assert main(["describe", uri]) == 0
    card = capsys.readouterr().out
    assert card.startswith("# genreclf model card")
    assert all(g in card for g in pipeline.classes_)
    assert "## Training data" in card and "- data set:" in card
    assert "Temperature scaling" in card and "## Known limits" in card
    run = mlflow.get_run(mlflow.models.get_model_info(uri).run_id)
    assert {"calibration_ece_before", "calibration_ece_after"} <= set(run.data.metrics)
    names = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
    assert "model_card.md" in names
    figures = mlflow.MlflowClient().list_artifacts(run.info.run_id, "figures")
    assert "figures/reliability_diagram.png" in [a.path for a in figures]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """``mlflow server`` with a SQLite store, artifacts proxied to a tmp folder."""
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    proc = start_server(
        mlflow_server_command(folder, port),
        f"{uri}/health",
        str(folder),
        _env(),
        timeout=180,
    )
    yield uri
    stop_server(proc)


def test_training_against_a_tracking_server(
    tracking_server, tiny_demo, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    folder = tiny_demo[0]
    code = main(
        [
            "train",
            "--data",
            str(folder),
            "--n-members",
            "2",
            *TINY_ARGS,
            "--experiment-name",
            "server",
        ]
    )
    assert code == 0
    client = mlflow.MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name("server")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    members = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.run_name for r in members) == ["member-0", "member-1"]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in members)
    assert "eval_accuracy" in parent.data.metrics
    history = client.get_metric_history(members[0].info.run_id, "valid_loss")
    assert [m.step for m in history] == [1]
    # artifacts went through the server (nothing under the working folder)
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")
    names = [a.path for a in client.list_artifacts(parent.info.run_id, "figures")]
    assert "figures/confusion_matrix.png" in names
    assert not (tmp_path / "mlruns").exists()
    # the model loads from the server and predicts genre names
    model_uri = parent.data.tags["genreclf.model_uri"]
    model = mlflow.pyfunc.load_model(model_uri)
    wav = str(folder / "hiphop" / "hiphop.00002.wav")
    genres = model.predict([wav])["genre"].tolist()
    assert len(genres) == 1 and genres[0] in os.listdir(folder)
