"""Faults of the process and the machine (issue 15, items 2 and 3).

- ``kill -9`` at marked points of a training (feature extraction, a member's
  epoch, a member's logging, the model's logging): the child prints a marker
  and waits there, the test kills it with SIGKILL, then runs the next command
  against the same store; no run stays RUNNING, every saved member loads and
  every cache entry decodes.
- A full disk (``ENOSPC`` raised by the patched write, as no folder can be
  mounted here) while writing a checkpoint or an artifact: the error names the
  folder and what was written; what was saved before is kept; the next run
  completes.
- A read-only cache and a cache folder deleted during a run: features are
  computed anyway, with at most one warning.
"""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import urllib.parse
from pathlib import Path

import joblib
import numpy as np
import pytest
from conftest import TINY_OPTIONS

mlflow = pytest.importorskip("mlflow")

from genreclf import tracking  # noqa: E402
from genreclf.ensemble import MEMBER_GLOB, member_filename  # noqa: E402
from genreclf.pipeline import build_pipeline  # noqa: E402
from genreclf.tracking.runs import PROCESS_TAG, end_stale_runs  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_mlflow_experiment")


def _tiny(cache, n_members=2):
    return build_pipeline(
        memory=str(cache), random_state=0, n_members=n_members, **TINY_OPTIONS
    )


def _running(uri):
    client = mlflow.MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, filter_string="attributes.status = 'RUNNING'")


def _assert_members_load(folder):
    files = sorted(Path(folder).glob(MEMBER_GLOB))
    for path in files:
        saved = joblib.load(path)
        assert {"fingerprint", "seed", "estimator"} <= set(saved), path
    return len(files)


def _assert_cache_entries_valid(cache):
    from genreclf._mfcc_cache import ENTRY_SUFFIX, decode_entry

    n = 0
    for entry in Path(cache).rglob(f"*{ENTRY_SUFFIX}"):
        raw = entry.read_bytes()
        rows = int(np.frombuffer(raw, "<u4", count=1, offset=8)[0])
        decode_entry(raw, (rows, None))  # raises ValueError when damaged
        n += 1
    return n


# ----------------------------------------------------------------- stale runs


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_end_stale_runs_kills_runs_of_dead_processes_only(mlflow_uri):
    import socket

    client = mlflow.MlflowClient(mlflow_uri)
    exp = client.create_experiment("stale")
    host = socket.gethostname()
    dead = client.create_run(exp, tags={PROCESS_TAG: f"{host}:{_dead_pid()}:1"})
    alive = client.create_run(exp, tags=tracking.runs.process_tags())
    other_host = client.create_run(exp, tags={PROCESS_TAG: "elsewhere:1:1"})
    untagged = client.create_run(exp)
    ended = end_stale_runs(mlflow_uri)
    assert ended == [dead.info.run_id]
    assert client.get_run(dead.info.run_id).info.status == "KILLED"
    for run in (alive, other_host, untagged):
        assert client.get_run(run.info.run_id).info.status == "RUNNING"


def test_a_reused_pid_counts_as_dead(mlflow_uri):
    """The same pid with another start time is another process."""
    import socket

    client = mlflow.MlflowClient(mlflow_uri)
    exp = client.create_experiment("reused")
    tag = f"{socket.gethostname()}:{os.getppid()}:1"  # a living pid, wrong start
    run = client.create_run(exp, tags={PROCESS_TAG: tag})
    assert end_stale_runs(mlflow_uri) == [run.info.run_id]


def test_every_run_records_its_process(mlflow_uri):
    with tracking.tracked_run("tagged") as run:
        pass
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    host, pid, _ = tags[PROCESS_TAG].split(":")
    assert int(pid) == os.getpid() and host


# ----------------------------------------------------------------- SIGKILL

_CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from conftest import TINY_OPTIONS
    import mlflow, skorch
    from genreclf import _mfcc, tracking
    from genreclf.datasets import load_folder
    from genreclf.pipeline import build_pipeline
    from genreclf.tracking import members, workflows

    point = sys.argv[1]
    state = {{"loads": 0, "logged": 0}}

    def stop(name):
        print("MARK", name, flush=True)
        sys.stdin.read()  # the test kills us here

    if point == "features":
        load = _mfcc.load_audio
        def load_audio(*a, **k):
            state["loads"] += 1
            if state["loads"] == 6:
                stop(point)
            return load(*a, **k)
        _mfcc.load_audio = load_audio
    elif point == "epoch":
        logger_call = members.MemberLogger.__call__
        def call(self, *a, **k):
            logger_call(self, *a, **k)
            state["logged"] += 1
        members.MemberLogger.__call__ = call
        step = skorch.NeuralNet.train_step
        def train_step(self, *a, **k):
            if state["logged"] == 1:
                stop(point)
            return step(self, *a, **k)
        skorch.NeuralNet.train_step = train_step
    elif point == "member-logging":
        log_batch = mlflow.MlflowClient.log_batch
        def batch(self, run_id, *a, **k):
            if any(p.key == "member_index" for p in k.get("params") or ()):
                if state["logged"] == 1:  # member 1's run is created, not ended
                    stop(point)
                state["logged"] += 1
            return log_batch(self, run_id, *a, **k)
        mlflow.MlflowClient.log_batch = batch
    elif point == "model-logging":
        log_model = workflows.log_pipeline_model
        def logged(*a, **k):
            stop(point)
        workflows.log_pipeline_model = logged

    X, y = load_folder({data!r})
    pipe = build_pipeline(memory={cache!r}, random_state=0, n_members=2,
                          mfcc__n_jobs=1, **TINY_OPTIONS)
    tracking.train_and_log(pipe, X, y, X[:4], y[:4], experiment_name="kill",
                           checkpoint_dir={ckpt!r})
    print("MARK finished", flush=True)
    """
)


def _kill_at(point, script, env):
    proc = subprocess.Popen(
        [sys.executable, str(script), point],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        for line in proc.stdout:
            if line.startswith("MARK"):
                assert line.split()[1] == point, line
                break
        else:
            pytest.fail(f"the child ended before reaching {point}")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode


@pytest.mark.integration
@pytest.mark.parametrize(
    "point", ["features", "epoch", "member-logging", "model-logging"]
)
def test_sigkill_leaves_nothing_half_done(point, tmp_path, tiny_demo, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cache, ckpt = tmp_path / "cache", tmp_path / "ckpt"
    script = tmp_path / "child.py"
    script.write_text(
        _CHILD.format(
            tests=str(Path(__file__).parent),
            data=str(tiny_demo[0]),
            cache=str(cache),
            ckpt=str(ckpt),
        )
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    env["MLFLOW_ARTIFACTS_DESTINATION"] = str(tmp_path / "artifacts")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    assert _kill_at(point, script, env) == -signal.SIGKILL
    killed = _running(uri)
    assert killed, "the killed training left no RUNNING run to clean up"
    _assert_cache_entries_valid(cache)
    parent = next(r for r in killed if "mlflow.parentRunId" not in r.data.tags)
    folder = ckpt / parent.info.run_id
    n_saved = _assert_members_load(folder) if folder.exists() else 0
    assert n_saved == {"features": 0, "epoch": 1, "member-logging": 2,
                       "model-logging": 2}[point]  # fmt: skip
    # the next command against the store: resume if something was saved
    pipe = build_pipeline(
        memory=str(cache), random_state=0, n_members=2, mfcc__n_jobs=1,
        **TINY_OPTIONS,
    )  # fmt: skip
    from genreclf.datasets import load_folder

    X, y = load_folder(tiny_demo[0])
    resume = parent.info.run_id if n_saved else None
    result = tracking.train_and_log(
        pipe, X, y, X[:4], y[:4], experiment_name="kill", resume=resume,
        checkpoint_dir=ckpt, log_model=False,
    )  # fmt: skip
    assert _running(uri) == []
    client = mlflow.MlflowClient(uri)
    assert client.get_run(parent.info.run_id).info.status == "KILLED"
    assert sorted(pipe.named_steps["ensemble"].resumed_) == list(range(min(n_saved, 2)))
    assert _assert_members_load(ckpt / result.run_id) == 2
    assert _assert_members_load(folder) == n_saved if folder.exists() else True


# ----------------------------------------------------------------- full disk


def _enospc_on(monkeypatch, module, name_part):
    """Make ``module.atomic_write`` raise ENOSPC for paths containing name_part."""
    real = module.atomic_write

    def atomic_write(path, *args, **kwargs):
        if name_part in os.fspath(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, "atomic_write", atomic_write)


def test_full_disk_while_writing_a_checkpoint(tmp_path, tiny_demo, mlflow_uri):
    import genreclf.ensemble

    _, X, y = tiny_demo
    ckpt = tmp_path / "ckpt"
    with pytest.MonkeyPatch.context() as mp:
        _enospc_on(mp, genreclf.ensemble, member_filename(1))
        with pytest.raises(OSError, match="no space left on device") as err:
            tracking.train_and_log(
                _tiny(tmp_path / "cache"), X, y, checkpoint_dir=ckpt, log_model=False
            )
    message = str(err.value)
    assert err.value.errno == errno.ENOSPC
    assert str(ckpt) in message and member_filename(1) in message
    assert "network 2 of 2" in message and "kept" in message
    (run,) = mlflow.search_runs(
        search_all_experiments=True,
        filter_string="tags.`genreclf.command` = 'train'",
        output_format="list",
    )
    assert run.info.status == "FAILED"
    folder = ckpt / run.info.run_id
    assert _assert_members_load(folder) == 1  # member 0 is intact
    # space freed: the next run resumes and completes
    pipe = _tiny(tmp_path / "cache")
    result = tracking.train_and_log(
        pipe, X, y, checkpoint_dir=ckpt, resume=run.info.run_id, log_model=False
    )
    assert pipe.named_steps["ensemble"].resumed_ == [0]
    assert _assert_members_load(ckpt / result.run_id) == 2


def test_full_disk_while_uploading_a_member(tmp_path, tiny_demo, mlflow_uri):
    _, X, y = tiny_demo

    real = mlflow.MlflowClient.log_artifact

    def full(self, run_id, local_path, artifact_path=None):
        if artifact_path == "members":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, run_id, local_path, artifact_path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mlflow.MlflowClient, "log_artifact", full)
        with pytest.raises(OSError, match="while writing members/member0") as err:
            tracking.train_and_log(
                _tiny(tmp_path / "cache", n_members=1), X, y,
                checkpoint_dir=tmp_path / "ckpt", log_model=False,
            )  # fmt: skip
    assert "artifacts" in str(err.value)  # the run's artifact location


def test_full_disk_while_logging_the_model(tmp_path, tiny_demo, mlflow_uri):
    from genreclf.tracking import workflows

    _, X, y = tiny_demo

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(workflows, "log_pipeline_model", full)
        with pytest.raises(OSError, match="while writing the model") as err:
            tracking.train_and_log(
                _tiny(tmp_path / "cache", n_members=1), X, y,
                checkpoint_dir=tmp_path / "ckpt",
            )  # fmt: skip
    assert "artifacts" in str(err.value)
    (run,) = mlflow.search_runs(
        search_all_experiments=True,
        filter_string="tags.`genreclf.command` = 'train'",
        output_format="list",
    )
    assert _assert_members_load(tmp_path / "ckpt" / run.info.run_id) == 1


def _full_artifact_disk(monkeypatch, name):
    """Make MLflow's local write of the artifact file ``name`` hit a full disk.

    The artifact's temporary file in the run's folder is created, then the
    write into it raises ENOSPC, as on a disk that fills during the copy.
    """
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    real = LocalArtifactRepository._write_to_destination_path

    def full(temp_file):
        raise OSError(errno.ENOSPC, "No space left on device")

    def write(self, artifact_file_name, writer, *args, **kwargs):
        if os.path.basename(artifact_file_name) == name:
            writer = full
        return real(self, artifact_file_name, writer, *args, **kwargs)

    monkeypatch.setattr(LocalArtifactRepository, "_write_to_destination_path", write)


def _failed_run(command):
    (run,) = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`genreclf.command` = '{command}'",
        output_format="list",
    )
    assert run.info.status == "FAILED"
    return run, Path(urllib.parse.urlparse(run.info.artifact_uri).path)


def _assert_full_disk_error(err, folder, artifact):
    message = str(err.value)
    assert err.value.errno == errno.ENOSPC
    assert err.value.__cause__.errno == errno.ENOSPC
    assert message.startswith(f"{folder}: no space left on device while writing")
    assert artifact in message and "kept" in message


def test_full_disk_while_logging_a_figure(tmp_path, tiny_demo, mlflow_uri, monkeypatch):
    import pandas as pd

    _, X, y = tiny_demo
    monkeypatch.chdir(tmp_path)  # the store's artifacts go under tmp_path
    with pytest.MonkeyPatch.context() as mp:
        _full_artifact_disk(mp, "confusion_matrix.png")
        with pytest.raises(OSError, match="confusion-matrix figure") as err:
            tracking.train_and_log(
                _tiny(tmp_path / "cache", n_members=1), X, y, X[:4], y[:4],
                checkpoint_dir=tmp_path / "ckpt", log_model=False,
            )  # fmt: skip
    run, folder = _failed_run("train")
    _assert_full_disk_error(err, folder, "figures/confusion_matrix.png")
    # what was logged before is intact; nothing is left of the failed write
    assert not (folder / "figures" / "confusion_matrix.png").exists()
    assert sorted(p.name for p in (folder / "figures").iterdir()) == [
        "training_curves.png"
    ]
    assert (folder / "figures" / "training_curves.png").read_bytes()[:4] == (
        b"\x89PNG"
    )
    paths = [os.fspath(p) for p in X]
    assert list(pd.read_csv(folder / "data" / "training.csv")["path"]) == paths
    assert list(pd.read_csv(folder / "data" / "evaluation.csv")["path"]) == paths[:4]
    assert _assert_members_load(tmp_path / "ckpt" / run.info.run_id) == 1
    assert _running(mlflow_uri) == []


def test_full_disk_while_logging_the_data_csv(
    tmp_path, tiny_demo, mlflow_uri, monkeypatch
):
    import pandas as pd

    _, X, y = tiny_demo
    monkeypatch.chdir(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        _full_artifact_disk(mp, "evaluation.csv")
        with pytest.raises(OSError, match="evaluation file list") as err:
            tracking.train_and_log(
                _tiny(tmp_path / "cache", n_members=1), X, y, X[:4], y[:4],
                log_model=False,
            )  # fmt: skip
    _, folder = _failed_run("train")
    _assert_full_disk_error(err, folder, "data/evaluation.csv")
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["training.csv"]
    frame = pd.read_csv(folder / "data" / "training.csv")
    assert list(frame["path"]) == [os.fspath(p) for p in X]
    assert list(frame["genre"]) == [str(g) for g in y]
    assert _running(mlflow_uri) == []


def test_artifact_write_leaves_other_errors_alone(tmp_path):
    from genreclf.tracking.storage import artifact_write

    denied = PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(PermissionError) as err:
        with artifact_write("the report report.txt", tmp_path):
            raise denied
    assert err.value is denied
    with pytest.raises(ValueError, match="not a disk"):
        with artifact_write("the report report.txt", tmp_path):
            raise ValueError("not a disk")


# ----------------------------------------------------------------- the cache


def _transformer(cache):
    from genreclf.features import MFCCTransformer

    return MFCCTransformer(duration=1.0, memory=str(cache), n_jobs=1).fit()


def test_full_disk_while_writing_a_cache_entry_degrades_to_no_cache(
    tmp_path, tiny_demo, recwarn
):
    import genreclf._mfcc_cache as cache_module

    _, X, _ = tiny_demo
    expected = _transformer(tmp_path / "none").transform(X[:2])
    _assert = _transformer(tmp_path / "cache").transform(X[:1])  # one entry first
    with pytest.MonkeyPatch.context() as mp:
        _enospc_on(mp, cache_module, ".mfcc")
        with pytest.warns(RuntimeWarning, match="not writable") as caught:
            got = _transformer(tmp_path / "cache").transform(X[:2])
    assert len([w for w in caught if "not writable" in str(w.message)]) == 1
    assert str(tmp_path / "cache") in str(caught[0].message)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:1], _assert, rtol=1e-5, atol=1e-5)
    assert _assert_cache_entries_valid(tmp_path / "cache") == 1  # kept, intact


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_degrades_to_no_cache_with_one_warning(tmp_path, tiny_demo):
    _, X, _ = tiny_demo
    cache = tmp_path / "cache"
    _transformer(cache).transform(X[:1])
    for folder in [cache, *cache.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o555)
    try:
        with pytest.warns(RuntimeWarning) as caught:
            got = _transformer(cache).transform(X[:3])
    finally:
        for folder in [cache, *cache.rglob("*")]:
            if folder.is_dir():
                folder.chmod(0o755)
    assert got.shape[0] == 3 and np.isfinite(got).all()
    assert len(caught) == 1


def test_cache_folder_deleted_during_a_run(tmp_path, tiny_demo):
    """The folder vanishes between two clips: entries are written again."""
    import shutil

    import genreclf._mfcc as kernel

    _, X, _ = tiny_demo
    cache = tmp_path / "cache"
    real = kernel.load_audio
    calls = {"n": 0}

    def load_audio(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            shutil.rmtree(cache, ignore_errors=True)
        return real(*args, **kwargs)

    expected = _transformer(tmp_path / "other").transform(X[:3])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernel, "load_audio", load_audio)
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = _transformer(cache).transform(X[:3])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) <= 1
    _assert_cache_entries_valid(cache)
