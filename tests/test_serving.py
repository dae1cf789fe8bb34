"""Real MLflow servers on 127.0.0.1: a served model and a tracking server."""

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
        memory=str(module_mlflow / "cache"), random_state=0, n_members=1, **TINY_OPTIONS
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
    finally:
        stop_server(proc)


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
