"""Dask: extraction and GridSearchCV on a LocalCluster equal the one-process results.

One ``LocalCluster`` of 2 worker processes on 127.0.0.1 and one ``mlflow
server`` are shared by the module; the nets are tiny (2 members, 2 epochs,
1.5 s clips) so the module runs in well under a minute on two cores.
"""

import importlib
import os
import socket
import sys

import numpy as np
import pytest
from conftest import (
    free_port,
    launch_server,
    mlflow_server_command,
    stop_server,
    wait_for_server,
)
from threadpoolctl import threadpool_limits

distributed = pytest.importorskip("dask.distributed")

from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from genreclf import distributed as gdist  # noqa: E402
from genreclf.distributed import check_shared_folder, fit_search, use_dask  # noqa: E402

pytestmark = pytest.mark.integration  # Dask clusters in subprocesses

BATCH_SIZES = [2, 8]
GENRES = ["ambient", "rock", "techno"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A folder the client and the local workers share (same host)."""
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="module")
def clips(shared):
    from genreclf.datasets import make_synthetic

    return make_synthetic(
        shared / "audio", n_per_genre=8, duration=1.5, random_state=0, genres=GENRES
    )


@pytest.fixture(scope="module")
def client(shared, mlflow_process):
    """A LocalCluster of 2 worker processes on 127.0.0.1 and its client.

    Tests enter ``use_dask(client)`` themselves, so that joblib's dask backend
    is never left on for the one-process references.
    """
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            local_directory=shared / "dask",
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        c.wait_for_workers(2, timeout=60)
        # Import torch & co. on the workers while the references fit here.
        warm = [
            c.submit(
                importlib.import_module, "genreclf.pipeline", workers=[w], pure=False
            )
            for w in c.scheduler_info()["workers"]
        ]
        yield c
        del warm


def _make_search(cache, n_jobs):
    from genreclf.pipeline import build_pipeline

    pipe = build_pipeline(
        memory=cache,
        random_state=0,
        n_members=2,
        duration=1.5,
        max_epochs=2,
        filters=(4, 8, 8),
        dense=8,
        device="cpu",
    )
    return GridSearchCV(
        pipe,
        {"ensemble__net__batch_size": BATCH_SIZES},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        scoring="neg_log_loss",  # continuous: equal scores mean equal training
        n_jobs=n_jobs,
        error_score="raise",
    )


@pytest.fixture(scope="module")
def reference(clips, shared):
    """The search in this process, ``n_jobs=1``, one torch thread like a worker."""
    import torch

    X, y = clips
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # workers run torch with OMP_NUM_THREADS=1
    try:
        search = _make_search(shared / "cache", n_jobs=1)
        with threadpool_limits(1):
            search.fit(X, y)
    finally:
        torch.set_num_threads(threads)
    return search


@pytest.fixture(scope="module")
def mlflow_process(tmp_path_factory):
    """Start ``mlflow server`` (127.0.0.1, SQLite store in a temp folder) early.

    It takes seconds to come up; the cluster fixture starts it first so that the
    two start together. :func:`mlflow_server` waits for it.
    """
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    proc = launch_server(mlflow_server_command(root, port), root)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc, timeout=5)


@pytest.fixture(scope="module")
def mlflow_server(mlflow_process):
    """The URI of the running ``mlflow server``."""
    proc, uri = mlflow_process
    wait_for_server(proc, f"{uri}/health")
    return uri


def _assert_same_search(search, reference):
    assert search.best_params_ == reference.best_params_
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_allclose(
            search.cv_results_[key], reference.cv_results_[key], rtol=1e-6, atol=1e-7
        )
    assert list(search.cv_results_["params"]) == list(reference.cv_results_["params"])


# --------------------------------------------------------------------------- cluster


def test_mfcc_extraction_on_workers_equals_one_process(client, clips, shared):
    from distributed import get_task_stream

    from genreclf.features import MFCCTransformer

    X, _ = clips
    # Workers run BLAS on one thread (Dask sets OMP_NUM_THREADS=1); so does the
    # reference, else float32 sums differ in the last bit.
    with threadpool_limits(1):
        expected = MFCCTransformer(duration=1.5, n_jobs=1).fit_transform(X)
    cache = shared / "mfcc-dask"
    with use_dask(client), get_task_stream(client) as stream:
        got = MFCCTransformer(duration=1.5, n_jobs=-1, memory=cache).fit_transform(X)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    # The clips were decoded by the workers, which wrote the shared cache.
    assert stream.data, "no task ran on the cluster"
    assert len(list(cache.rglob("*.mfcc"))) == len(X)
    again = MFCCTransformer(duration=1.5, n_jobs=1, memory=cache).fit_transform(X)
    np.testing.assert_array_equal(again, expected)


def test_grid_search_on_workers_equals_n_jobs_1(client, clips, shared, reference):
    X, y = clips
    scores = reference.cv_results_["mean_test_score"]
    assert scores[0] != scores[1], "the candidates must differ for a real check"
    search = _make_search(shared / "cache", n_jobs=-1)
    with use_dask(client):
        search.fit(X, y)
    _assert_same_search(search, reference)


def test_fit_search_logs_one_child_run_per_candidate_from_workers(
    client, clips, shared, reference, mlflow_server, monkeypatch
):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    try:
        X, y = clips
        search = _make_search(shared / "cache", n_jobs=-1)
        with use_dask(client), mlflow.start_run(run_name="dask-search") as parent:
            run_ids = fit_search(search, X, y)
        _assert_same_search(search, reference)
        assert search.scoring == "neg_log_loss"  # restored after the fit

        mc = mlflow.MlflowClient(mlflow_server)
        children = mc.search_runs(
            [parent.info.experiment_id],
            f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        )
        assert sorted(r.info.run_id for r in children) == sorted(run_ids)
        assert len(run_ids) == len(BATCH_SIZES)
        workers = set(client.scheduler_info()["workers"])
        for i, run_id in enumerate(run_ids):
            run = mc.get_run(run_id)
            assert run.info.status == "FINISHED"
            assert run.info.run_name == f"candidate-{i}"
            assert run.data.params == {"ensemble__net__batch_size": str(BATCH_SIZES[i])}
            metrics = run.data.metrics
            for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
                assert metrics[key] == pytest.approx(search.cv_results_[key][i])
            # Each fold's score came from the worker that trained it.
            assert run.data.tags["genreclf.fold_scores_logged_by"] == "workers"
            for k in range(2):
                assert run.data.tags[f"genreclf.worker.split{k}"] in workers
            history = mc.get_metric_history(run_id, "split0.member0.train_loss")
            assert sorted(m.step for m in history) == [1, 2]
    finally:
        mlflow.set_tracking_uri(None)


def test_fit_search_without_a_cluster(clips, shared, reference, mlflow_uri):
    """In one process the child runs look the same (fold scores by this process)."""
    import mlflow
    import torch

    X, y = clips
    search = _make_search(shared / "cache", n_jobs=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with mlflow.start_run() as parent:
            run_ids = fit_search(search, X, y)
    finally:
        torch.set_num_threads(threads)
    _assert_same_search(search, reference)
    mc = mlflow.MlflowClient()
    for run_id in run_ids:
        run = mc.get_run(run_id)
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["genreclf.fold_scores_logged_by"] == "workers"
        assert run.data.tags["genreclf.worker.split0"].startswith(socket.gethostname())


def test_env_forwarded_to_workers_and_shared_folder(client, shared):
    with use_dask(client, env={"GENRECLF_TEST_VALUE": "42"}) as same:
        assert same is client
        # (not os.environ.get: that would pickle the client's environment)
        values = client.run(lambda: os.environ.get("GENRECLF_TEST_VALUE"))
    assert set(values.values()) == {"42"}
    assert client.status == "running"  # a client passed in stays open
    assert check_shared_folder(shared / "cache", client) == sorted(values)


def test_mlflow_run_id_is_never_forwarded(client, monkeypatch):
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    with use_dask(client):
        got = client.run(
            lambda: (os.environ.get("MLFLOW_RUN_ID"), os.environ["MLFLOW_TRACKING_URI"])
        )
    assert set(got.values()) == {(None, "http://tracking.example:5000")}


def test_connect_by_address_and_scheduler_file(client, shared, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    address = client.scheduler.address
    with pytest.warns(UserWarning, match="other hosts cannot log"):
        with use_dask(address) as other:
            assert other is not client
            assert other.scheduler.address == address
    assert other.status == "closed"  # a client it made is closed
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    path = shared / "scheduler.json"
    client.write_scheduler_file(str(path))
    with use_dask(path) as other:
        assert sorted(other.scheduler_info()["workers"]) == sorted(
            client.scheduler_info()["workers"]
        )
    assert client.status == "running"


def test_use_dask_starts_and_closes_a_local_cluster(shared):
    from joblib import Parallel, delayed

    local = shared / "own"
    with use_dask(
        "local", n_workers=1, threads_per_worker=2, local_directory=local
    ) as c:
        workers = c.scheduler_info()["workers"]
        assert len(workers) == 1
        assert sum(c.nthreads().values()) == 2
        assert all(a.startswith("tcp://127.0.0.1:") for a in workers)
        pids = Parallel(n_jobs=-1)(delayed(os.getpid)() for _ in range(2))
        assert os.getpid() not in pids  # ran in a worker process
    assert c.status == "closed"
    assert Parallel(n_jobs=1)(delayed(os.getpid)() for _ in range(1)) == [os.getpid()]


# --------------------------------------------------------------------------- errors


def test_bad_scheduler_values():
    with pytest.raises(ValueError, match="scheduler must be None or 'local'"):
        with use_dask("localhost"):
            pass
    with pytest.raises(ValueError, match="n_workers must be a positive integer"):
        with use_dask("local", n_workers=0):
            pass
    with pytest.raises(FileNotFoundError, match="scheduler file not found"):
        with use_dask("/nonexistent/scheduler.json"):
            pass


def test_unreachable_scheduler():
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(
        ConnectionError, match=f"cannot reach the Dask scheduler at {address}"
    ):
        with use_dask(address, timeout=1):
            pass


def test_missing_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'genreclf\[dask\]'"):
        with use_dask():
            pass


def test_fit_search_input_errors(mlflow_uri):
    from sklearn.dummy import DummyClassifier
    from sklearn.model_selection import RandomizedSearchCV, cross_validate

    X, y = np.zeros((4, 1)), [0, 1, 0, 1]
    multi = GridSearchCV(
        DummyClassifier(), {"strategy": ["prior"]}, scoring=["accuracy", "f1"]
    )
    with pytest.raises(ValueError, match="one scoring metric"):
        fit_search(multi, X, y, parent_run_id="x")
    randomized = RandomizedSearchCV(
        DummyClassifier(), {"strategy": ["prior"]}, n_iter=1
    )
    with pytest.raises(ValueError, match="needs an int random_state"):
        fit_search(randomized, X, y, parent_run_id="x")
    with pytest.raises(TypeError, match="takes a GridSearchCV or RandomizedSearchCV"):
        fit_search(cross_validate, X, y, parent_run_id="x")
    grid = GridSearchCV(DummyClassifier(), {"strategy": ["prior"]}, cv=2)
    with pytest.raises(ValueError, match="no parent_run_id given and no active"):
        fit_search(grid, X, y)


def test_local_uri_detection():
    assert gdist._is_local_uri("sqlite:///x.db") and gdist._is_local_uri("./mlruns")
    assert not gdist._is_local_uri("http://host:5000")


class _Offset:
    """A callable parameter value whose ``repr`` carries a memory address."""

    def __init__(self, by):
        self.by = by

    def __call__(self, X):
        return X + self.by

    def __eq__(self, other):
        return type(other) is type(self) and other.by == self.by

    __hash__ = None


def test_both_writers_give_candidates_the_same_parameter_text(mlflow_uri):
    """``log_search`` (n_jobs=1, after the fit) and ``fit_search`` (Dask path).

    Both write the candidate runs of the same search: same keys, same text,
    also for a value whose repr holds a memory address (" at 0x...").
    """
    import mlflow
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from genreclf.tracking import log_search

    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1] * 3)
    grid = {
        "functiontransformer__func": [_Offset(1), None],
        "dummyclassifier__strategy": ["prior"],
    }

    def search():
        pipe = make_pipeline(FunctionTransformer(), DummyClassifier())
        return GridSearchCV(pipe, grid, cv=2)

    client = mlflow.MlflowClient()
    with mlflow.start_run() as parent:
        fitted = search().fit(X, y)
        local = log_search(fitted, parent.info.run_id)
        on_workers = fit_search(search(), X, y, parent_run_id=parent.info.run_id)
    assert len(local) == len(on_workers) == 2
    for a, b in zip(local, on_workers, strict=True):
        pa, pb = client.get_run(a).data.params, client.get_run(b).data.params
        assert pa == pb
        assert " at 0x" not in "".join(pa.values())
    first = client.get_run(local[0]).data.params["functiontransformer__func"]
    assert first.startswith("<") and "_Offset object>" in first
    for a, b in zip(local, on_workers, strict=True):
        ra, rb = client.get_run(a), client.get_run(b)
        assert ra.info.status == rb.info.status == "FINISHED"
        assert ra.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert ra.data.tags["genreclf.candidate_index"] == (
            rb.data.tags["genreclf.candidate_index"]
        )
        assert ra.data.metrics["mean_test_score"] == pytest.approx(
            rb.data.metrics["mean_test_score"]
        )
