"""Concurrent users of one cache and one store (issue 15, item 5).

Two ``genreclf train`` and a ``genreclf predict`` run at once against one
cache folder and one MLflow store (a SQLite file, and a real ``mlflow server``
on 127.0.0.1): all finish with correct results, no run stays RUNNING and
every cache entry decodes. And two commands started at once in a fresh folder
no longer race to create ``mlflow.db``.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TINY_ARGS, free_port, mlflow_server_command, start_server, stop_server

mlflow = pytest.importorskip("mlflow")


def _env(uri, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    env["MLFLOW_ARTIFACTS_DESTINATION"] = str(tmp_path / "artifacts")
    return env


_OPEN_STORE = textwrap.dedent(
    """
    import sys, time
    from genreclf.tracking import check_tracking_server
    while time.time() < float(sys.argv[1]):  # start together
        pass
    check_tracking_server()
    print("ok")
    """
)


@pytest.mark.integration
def test_two_commands_create_a_fresh_sqlite_store_safely(tmp_path):
    """Issue 15: the loser said "cannot reach the MLflow tracking server"."""
    import time

    for attempt in range(3):
        folder = tmp_path / f"fresh{attempt}"
        folder.mkdir()
        env = _env(f"sqlite:///{folder / 'mlflow.db'}", folder)
        start = str(time.time() + 4)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_STORE, start],
                cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(3)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
            assert out.strip() == "ok"


def test_a_broken_sqlite_store_is_not_called_a_server(tmp_path, monkeypatch):
    from genreclf.exceptions import TrackingServerError
    from genreclf.tracking import check_tracking_server

    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    uri = f"sqlite:///{db}"
    with pytest.raises(TrackingServerError, match="cannot open the local MLflow store") as e:
        check_tracking_server(uri)
    assert "tracking server" not in str(e.value) and str(db) in str(e.value)


def _cli(args, env, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "genreclf.cli", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _valid_entries(cache):
    from genreclf._mfcc_cache import ENTRY_SUFFIX, decode_entry

    import numpy as np

    n = 0
    for entry in Path(cache).rglob(f"*{ENTRY_SUFFIX}"):
        raw = entry.read_bytes()
        rows = int(np.frombuffer(raw, "<u4", count=1, offset=8)[0])
        decode_entry(raw, (rows, None))
        n += 1
    return n


@pytest.mark.integration
@pytest.mark.parametrize("store", ["sqlite", "server"])
def test_two_trainings_and_a_predict_at_once(store, tmp_path, tiny_demo):
    folder = tiny_demo[0]
    server = None
    if store == "server":
        port = free_port()
        server = start_server(
            mlflow_server_command(tmp_path, port), f"http://127.0.0.1:{port}/health",
            tmp_path,
        )  # fmt: skip
        uri = f"http://127.0.0.1:{port}"
    else:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = _env(uri, tmp_path)
    cache = tmp_path / "cache"
    common = ["--data", str(folder), "--cache-dir", str(cache), "--n-members", "1",
              *TINY_ARGS]  # fmt: skip
    try:
        first = _cli(["train", *common, "--run-name", "first"], env, tmp_path)
        out, err = first.communicate(timeout=600)
        assert first.returncode == 0, err[-3000:]
        model = re.search(r"^model: (\S+)", out, re.M).group(1)
        procs = [
            _cli(["train", *common, "--run-name", "a", "--random-state", "1"], env,
                 tmp_path),
            _cli(["train", *common, "--run-name", "b", "--random-state", "2"], env,
                 tmp_path),
            _cli(["predict", model, "--cache-dir", str(cache), str(folder)],
                 env, tmp_path),
        ]  # fmt: skip
        results = [(p, *p.communicate(timeout=600)) for p in procs]
        for proc, _, err in results:
            assert proc.returncode == 0, err[-3000:]
        for proc, out, _ in results[:2]:
            assert re.search(r"eval_accuracy = [01]\.\d+", out), out
        predicted = results[2][1]
        assert all(os.path.basename(p) in predicted for p in tiny_demo[1])
        client = mlflow.MlflowClient(uri)
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids)
        assert {r.info.status for r in runs} == {"FINISHED"}
        names = {r.info.run_name for r in runs if "mlflow.parentRunId" not in r.data.tags}
        assert {"first", "a", "b"} <= names
        assert _valid_entries(cache) >= len(tiny_demo[1])
    finally:
        if server is not None:
            stop_server(server)
