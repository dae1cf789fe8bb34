"""Search the batch size on a Dask cluster, with one MLflow child run per candidate.

Generates a small demo dataset, runs the same ``GridSearchCV`` over
``ensemble__net__batch_size`` twice: in this process (``n_jobs=1``), then on a
Dask cluster (a ``LocalCluster`` of 2 worker processes on 127.0.0.1 by
default, or ``--scheduler tcp://HOST:8786``) through
:func:`genreclf.distributed.use_dask`. The cluster run goes through
:func:`genreclf.distributed.fit_search`: each candidate's MLflow child run is
written by the workers that train it. Prints both results, checks that they
are equal, and lists the child runs.

MLflow: with ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``, that server is
used; otherwise this script starts ``mlflow server`` on 127.0.0.1 with a
SQLite store in the output folder, and stops it at the end.

Run: ``python examples/dask_search.py [--scheduler ADDRESS] [--out DIR]``
(about two minutes on two CPU cores). On a real cluster, ``--out`` must be a
folder every worker mounts at the same path (it holds the audio and the MFCC
cache) and the tracking server must be reachable from every worker.
"""

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from threadpoolctl import threadpool_limits

from genreclf.datasets import make_synthetic
from genreclf.distributed import fit_search, use_dask
from genreclf.pipeline import build_pipeline


def make_search(cache, batch_sizes, folds, n_jobs):
    """The search: a small net, 2 members, the MFCC cache in ``cache``."""
    pipe = build_pipeline(
        memory=cache,
        random_state=0,
        n_members=2,
        duration=2.0,
        max_epochs=4,
        filters=(8, 16, 16),
        dense=16,
        device="cpu",
    )
    return GridSearchCV(
        pipe,
        {"ensemble__net__batch_size": batch_sizes},
        cv=StratifiedKFold(folds, shuffle=True, random_state=0),
        scoring="neg_log_loss",
        n_jobs=n_jobs,
        error_score="raise",
    )


@contextlib.contextmanager
def tracking_server(folder):
    """Start ``mlflow server`` on a free local port; yield its URI."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mlflow server did not start; see {folder / 'server.log'}"
                    ) from None
                time.sleep(0.3)
        yield uri
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()
        log.close()


def table(search):
    columns = [
        "param_ensemble__net__batch_size",
        "mean_test_score",
        "std_test_score",
        "rank_test_score",
        "mean_fit_time",
    ]
    return pd.DataFrame(search.cv_results_)[columns].to_string(index=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scheduler",
        default="local",
        help="'local' (2 worker processes) or tcp://HOST:PORT",
    )
    parser.add_argument("--out", help="folder for the audio, MFCC cache and MLflow")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--folds", type=int, default=2)
    args = parser.parse_args(argv)

    import mlflow

    out = Path(args.out or tempfile.mkdtemp(prefix="genreclf-dask-")).resolve()
    paths, genres = make_synthetic(
        out / "demo", n_per_genre=6, duration=2.0, random_state=0
    )
    cache = out / "cache"
    print(f"{len(paths)} clips of 2 s in {out / 'demo'}")

    # 1. In this process. Dask workers run torch and BLAS on one thread
    #    (OMP_NUM_THREADS=1); so does this reference, so that float sums agree
    #    bit for bit.
    reference = make_search(cache, args.batch_sizes, args.folds, n_jobs=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        with threadpool_limits(1):
            reference.fit(paths, genres)
    finally:
        torch.set_num_threads(threads)
    print(f"\nn_jobs=1 in this process: {time.perf_counter() - start:.1f} s")
    print(table(reference))

    # 2. On the cluster, each candidate logged by its workers.
    with contextlib.ExitStack() as stack:
        uri = args.tracking_uri or stack.enter_context(tracking_server(out / "mlflow"))
        os.environ["MLFLOW_TRACKING_URI"] = uri  # forwarded to the workers
        mlflow.set_tracking_uri(uri)
        search = make_search(cache, args.batch_sizes, args.folds, n_jobs=-1)
        start = time.perf_counter()
        with use_dask(args.scheduler, n_workers=2, shared_folders=[cache]) as client:
            workers = sorted(client.scheduler_info()["workers"])
            print(
                f"\nDask cluster {client.scheduler.address}: {len(workers)} workers, "
                f"ready in {time.perf_counter() - start:.1f} s"
            )
            start = time.perf_counter()
            with mlflow.start_run(run_name="dask-search") as parent:
                run_ids = fit_search(search, paths, genres)
                mlflow.log_params(
                    {f"best.{k}": v for k, v in search.best_params_.items()}
                )
                mlflow.log_metric("best_cv_score", search.best_score_)
            print(
                f"GridSearchCV(n_jobs=-1) on Dask: {time.perf_counter() - start:.1f} s "
                "(the first fits on each worker also import torch and MLflow)"
            )
        print(table(search))

        client = mlflow.MlflowClient(uri)
        print(f"\nMLflow {uri}: parent run {parent.info.run_id}")
        for run_id in run_ids:
            run = client.get_run(run_id)
            folds = sorted(
                v for k, v in run.data.tags.items() if k.startswith("genreclf.worker.")
            )
            print(
                f"  {run.info.run_name}: batch_size="
                f"{run.data.params['ensemble__net__batch_size']}, "
                f"mean_test_score={run.data.metrics['mean_test_score']:.4f}, "
                f"{run.info.status}, folds trained on {', '.join(folds)}"
            )

    same_best = search.best_params_ == reference.best_params_
    same_scores = np.allclose(
        search.cv_results_["mean_test_score"],
        reference.cv_results_["mean_test_score"],
        rtol=1e-6,
        atol=1e-7,
    )
    print(f"\nbest on Dask:   {search.best_params_}")
    print(f"best n_jobs=1:  {reference.best_params_}")
    print(f"same best parameters: {same_best}; same cv scores: {same_scores}")
    print(f"one child run per candidate: {len(run_ids) == len(args.batch_sizes)}")
    return 0 if same_best and same_scores else 1


if __name__ == "__main__":  # needed: Dask's local workers are spawned processes
    raise SystemExit(main())
