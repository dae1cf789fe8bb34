"""The model registry against a real ``mlflow server``: register, alias, use."""

import base64
import contextlib
import io
import json
import os
import sys

import numpy as np
import pytest
from conftest import TINY_ARGS, free_port, start_server, stop_server
from test_serving import _env, _get, _post, tracking_server  # noqa: F401 (fixture)

from genreclf.cli import main
from genreclf.tracking.registry import RegisteredModel, register_model

mlflow = pytest.importorskip("mlflow")


def test_registered_model_uri_and_alias_checks():
    assert RegisteredModel("genres", 3).uri == "models:/genres/3"
    assert RegisteredModel("genres", 3, "champion").uri == "models:/genres@champion"
    for alias in ("v2", "latest", "1st", "has space"):
        with pytest.raises(ValueError, match="invalid alias"):
            register_model("models:/m-0", "genres", alias=alias)
    with pytest.raises(ValueError, match="must not be empty"):
        register_model("models:/m-0", " ")


def test_alias_needs_register(capsys):
    assert main(["train", "--alias", "champion"]) == 2
    assert "--alias needs --register NAME" in capsys.readouterr().err
    assert main(["train", "--register", "x", "--no-model"]) == 2
    assert "--register needs the model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def registered(tracking_server, tiny_demo, tmp_path_factory):  # noqa: F811
    """``genreclf train --register genre-demo --alias champion`` on the server."""
    folder = tiny_demo[0]
    work = tmp_path_factory.mktemp("registry")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", tracking_server)
        code = main(
            [
                "train", "--data", str(folder), "--n-members", "1", *TINY_ARGS,
                "--experiment-name", "registry",
                "--register", "genre-demo", "--alias", "champion",
            ]  # fmt: skip
        )
    assert code == 0, out.getvalue()
    return tracking_server, folder, work, out.getvalue()


@pytest.mark.integration
@pytest.mark.usefixtures("fresh_mlflow_experiment")
def test_register_alias_predict_describe(registered, capsys, monkeypatch):
    server, folder, work, printed = registered
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    assert "registered: models:/genre-demo@champion (version 1)" in printed
    client = mlflow.MlflowClient(server)
    version = client.get_model_version_by_alias("genre-demo", "champion")
    assert version.version == "1"
    assert version.description.startswith("# genreclf model card")
    wav = str(folder / "hiphop" / "hiphop.00002.wav")
    uri = "models:/genre-demo@champion"
    assert main(["predict", uri, wav, "--format", "json", "--top-k", "3"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["path"] == wav and len(row["top"]) == 3
    assert row["top"][0]["genre"] == row["genre"]
    assert sum(t["probability"] for t in row["top"]) <= 1 + 1e-9
    assert main(["describe", uri]) == 0
    card = capsys.readouterr().out
    assert card.startswith("# genreclf model card") and "## Evaluation" in card
    assert "Confusion matrix" in card  # the demo holds out an evaluation split


def _audio_request(path):
    with open(path, "rb") as f:
        data = [[base64.b64encode(f.read()).decode(), os.path.basename(path)]]
    return {"dataframe_split": {"columns": ["audio", "filename"], "data": data}}


@pytest.mark.integration
@pytest.mark.parametrize("server_kind", ["mlflow", "genreclf"])
def test_both_servers_serve_the_alias(registered, server_kind):
    server, folder, work, _ = registered
    wav = str(folder / "rock" / "rock.00001.wav")
    uri = "models:/genre-demo@champion"
    os.environ.pop("MLFLOW_RUN_ID", None)
    env = _env(MLFLOW_TRACKING_URI=server)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if server_kind == "mlflow":
        command = [
            sys.executable, "-m", "mlflow", "models", "serve", "-m", uri,
            "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
        ]  # fmt: skip
    else:
        command = [sys.executable, "-m", "genreclf", "serve", uri, "--port", str(port)]
    proc = start_server(command, f"{base}/ping", str(work), env, timeout=180)
    try:
        assert _get(f"{base}/ping")[0] == 200
        status, answer = _post(f"{base}/invocations", _audio_request(wav))
        assert status == 200, answer
        genre = answer["predictions"][0]["genre"]
    finally:
        stop_server(proc)
    from genreclf.tracking import load_pipeline

    mlflow.set_tracking_uri(server)
    try:
        pipeline = load_pipeline(uri)
    finally:
        mlflow.set_tracking_uri(None)
    assert genre == pipeline.predict(np.asarray([wav], dtype=object))[0]
