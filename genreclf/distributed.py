"""Run feature extraction and searches on a Dask cluster, through joblib.

genreclf parallelises with joblib: :class:`~genreclf.features.MFCCTransformer`
decodes clips with ``Parallel(n_jobs=...)`` and scikit-learn's ``GridSearchCV``
fits its candidates the same way. :func:`use_dask` connects to a
``dask.distributed`` cluster (or starts a local one) and makes joblib's
``"dask"`` backend the default inside a ``with`` block, so that the same code
runs on one laptop or on many machines::

    with use_dask("tcp://scheduler:8786"):
        search.fit(X, y)        # GridSearchCV(..., n_jobs=-1)

:func:`fit_search` fits a search so that each candidate's MLflow child run is
written by the workers that train it (per-fold scores and training curves),
with the tracking server as the meeting point.

What the workers must share
---------------------------
- **The MFCC cache** (``memory`` of the feature step): a folder on storage that
  every worker mounts *at the same path* (NFS, a cluster file system). The
  client decides which entries are missing and workers write them, by path.
  :func:`check_shared_folder` checks it.
- **The audio files**, at the same paths as on the client.
- **The MLflow tracking server**: an ``http://HOST:PORT`` URI that every
  worker reaches (``mlflow server --backend-store-uri ... --host 0.0.0.0``),
  not a local ``sqlite:///`` file or ``./mlruns`` folder when workers run on
  other hosts; with ``--artifacts-destination`` (or a shared artifact store)
  the artifacts travel through the server. ``MLFLOW_TRACKING_URI`` and the
  other variables in :data:`FORWARDED_ENV` are copied to every worker.

Dask is an optional dependency: ``pip install 'genreclf[dask]'``.
"""

import contextlib
import os
import socket
import tempfile
import uuid
import warnings
from numbers import Integral

from genreclf._dask_cluster import PLUGIN_NAME as _PLUGIN_NAME
from genreclf._dask_cluster import connect as _connect
from genreclf._dask_cluster import environ_plugin as _environ_plugin
from genreclf._dask_cluster import import_distributed as _import_distributed
from genreclf._dask_cluster import is_local_uri as _is_local_uri

__all__ = [
    "FORWARDED_ENV",
    "check_shared_folder",
    "fit_search",
    "use_dask",
]

#: Environment variables copied from the client to every worker by
#: :func:`use_dask` when set: where MLflow logs and how it authenticates.
#: ``MLFLOW_RUN_ID`` is never copied (it would make every worker resume the
#: client's run).
FORWARDED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_S3_ENDPOINT_URL",
)


# --------------------------------------------------------------------------- cluster


@contextlib.contextmanager
def use_dask(
    scheduler=None,
    *,
    n_workers=2,
    threads_per_worker=1,
    local_directory=None,
    env=None,
    shared_folders=(),
    timeout=30,
):
    """Run joblib-parallel work on a Dask cluster inside a ``with`` block.

    Connects a ``dask.distributed.Client`` to an existing cluster, or starts a
    local cluster of worker processes, and sets joblib's ``"dask"`` backend
    (``joblib.parallel_config(backend="dask")``) for the block. Feature
    extraction (``MFCCTransformer(n_jobs=-1)``), ``GridSearchCV(n_jobs=-1)`` and
    the ensemble's members then run on the cluster's workers. What this
    function started (client, local cluster) is closed on exit; a client that
    was passed in stays open.

    Parameters
    ----------
    scheduler : None, str, path-like or dask.distributed.Client, default=None
        None or ``"local"``: start a ``LocalCluster`` of ``n_workers`` worker
        processes on 127.0.0.1 (no dashboard). An address such as
        ``"tcp://HOST:8786"``: connect to that scheduler. A path to a
        scheduler file (``dask scheduler --scheduler-file PATH``): connect to
        the scheduler it names. A ``Client``: use it.
    n_workers : int, default=2
        Worker processes of a local cluster (ignored otherwise).
    threads_per_worker : int, default=1
        Threads of each local worker (ignored otherwise). Keep 1 for torch
        training: torch's random generator is per process, so two fits in
        one process at once would not be reproducible.
    local_directory : str or path-like, optional
        Scratch folder of local workers (spilled data, worker files).
    env : dict of str to str, optional
        Environment variables to set on every worker (also on workers that
        join later), on top of those of :data:`FORWARDED_ENV` that are set in
        the client's environment. They stay set on the workers of a cluster
        that outlives the block.
    shared_folders : sequence of str or path-like, default=()
        Folders that every worker must see as the client does, such as the
        MFCC cache: checked with :func:`check_shared_folder` at once.
    timeout : float, default=30
        Seconds to wait for the scheduler to answer.

    Yields
    ------
    client : dask.distributed.Client
        The connected client (its ``dashboard_link``, ``scheduler_info()``).

    Raises
    ------
    ImportError
        If ``dask.distributed`` is not installed.
    ConnectionError
        If the scheduler does not answer within ``timeout`` seconds.
    ValueError
        On a ``scheduler`` that is none of the above, or a bad worker count.
    OSError
        If a folder of ``shared_folders`` is not shared with every worker.

    See Also
    --------
    fit_search : A search whose candidates log their MLflow runs on the workers.
    check_shared_folder : Check that the workers see a folder of the client.

    Notes
    -----
    Inside the block, joblib's ``n_jobs=-1`` means every worker thread of the
    cluster; ``n_jobs=None`` or 1 still runs in this process, so only what asks
    for parallelism goes to the cluster (parallelise at one level: the search
    or the extraction, not the ensemble's members too). A parallel call made
    inside a task is sent to the cluster as well; a worker waiting on it
    leaves its slot to others, so this cannot deadlock.

    Everything a task needs travels by pickle, so estimators, functions and
    torch modules must be importable on the workers: install genreclf (same
    version) in each worker's environment. Worker processes of a local cluster
    are spawned, so a script that uses one needs an
    ``if __name__ == "__main__":`` guard.

    Where the workers run on other hosts, the MFCC cache, the audio files and
    the MLflow tracking URI must be reachable from all of them at the same
    paths (see the module documentation); a local ``sqlite:``/``file:``
    tracking URI then gives a warning.

    Examples
    --------
    >>> from genreclf.distributed import use_dask
    >>> from joblib import Parallel, delayed
    >>> with use_dask(n_workers=1) as client:  # doctest: +SKIP
    ...     Parallel(n_jobs=-1)(delayed(abs)(-i) for i in range(3))
    [0, 1, 2]

    On a cluster started with ``dask scheduler`` and ``dask worker``::

        with use_dask("tcp://scheduler:8786", shared_folders=["/shared/cache"]):
            search.fit(X, y)
    """
    distributed = _import_distributed()
    import joblib

    client, cluster, owns_client, remote = _connect(
        distributed,
        scheduler,
        n_workers,
        threads_per_worker,
        local_directory,
        timeout,
    )
    try:
        forwarded = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        forwarded.update({str(k): str(v) for k, v in (env or {}).items()})
        forwarded.pop("MLFLOW_RUN_ID", None)
        uri = forwarded.get("MLFLOW_TRACKING_URI")
        if remote and uri is not None and _is_local_uri(uri):
            warnings.warn(
                f"MLFLOW_TRACKING_URI={uri} is a file on this machine: workers on "
                "other hosts cannot log to it; run `mlflow server` and point "
                "MLFLOW_TRACKING_URI at http://HOST:PORT",
                UserWarning,
                stacklevel=3,
            )
        if forwarded:
            client.register_plugin(_environ_plugin(forwarded), name=_PLUGIN_NAME)
        for folder in shared_folders:
            check_shared_folder(folder, client)
        with joblib.parallel_config(backend="dask", client=client):
            yield client
    finally:
        if owns_client:
            client.close()
        if cluster is not None:
            cluster.close()


def _read_token(path, expected):
    """Worker: does ``path`` hold ``expected``? Return None or the reason."""
    try:
        with open(path, encoding="utf-8") as fh:
            found = fh.read()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if found == expected else "another file is at that path"


def check_shared_folder(path, client=None):
    """Check that every worker sees the folder ``path`` as the client does.

    Writes a small file into ``path``, has every worker read it back by the
    same path, and removes it. Use it for the MFCC cache before a long run.

    Parameters
    ----------
    path : str or path-like
        The folder (created if missing).
    client : dask.distributed.Client, optional
        By default the current client (``dask.distributed.get_client()``).

    Returns
    -------
    workers : list of str
        The addresses of the workers checked.

    Raises
    ------
    OSError
        If some workers cannot read the file: each worker address with the
        reason, and what to do.
    """
    distributed = _import_distributed()
    if client is None:
        client = distributed.get_client()
    folder = os.path.abspath(os.path.expanduser(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".genreclf-shared-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token)
        answers = client.run(_read_token, probe, token)
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)
    bad = {worker: why for worker, why in answers.items() if why is not None}
    if bad:
        lines = "\n".join(f"  {worker}: {why}" for worker, why in sorted(bad.items()))
        raise OSError(
            f"{folder}: not shared with {len(bad)} of {len(answers)} Dask workers; "
            f"mount it at the same path on every worker host:\n{lines}"
        )
    return sorted(answers)


# --------------------------------------------------------------------------- search


def _candidates(search):
    """Return the candidates of a search, in the order of its ``cv_results_``."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if hasattr(search, "param_grid"):
        return list(ParameterGrid(search.param_grid))
    if hasattr(search, "param_distributions") and hasattr(search, "n_iter"):
        if not isinstance(search.random_state, Integral):
            raise ValueError(
                f"{type(search).__name__} needs an int random_state for fit_search, "
                f"got {search.random_state!r}: the candidates must be known "
                "before the fit"
            )
        return list(
            ParameterSampler(
                search.param_distributions,
                search.n_iter,
                random_state=search.random_state,
            )
        )
    raise TypeError(
        "fit_search takes a GridSearchCV or RandomizedSearchCV, "
        f"got {type(search).__name__}"
    )


def _digest(part):
    """Content digest of a train or test part, equal in every process."""
    import joblib

    return joblib.hash(part)


def _fold_digests(search, X, y, groups):
    """Digest of each fold's test and train part -> the fold's index.

    Returns ``(test_parts, train_parts)``: a worker recognises the fold it
    scores by the digest of the part it is given.
    """
    from sklearn.base import is_classifier
    from sklearn.model_selection import check_cv
    from sklearn.utils import _safe_indexing, indexable

    Xi, yi, gi = indexable(X, y, groups)
    cv = check_cv(search.cv, yi, classifier=is_classifier(search.estimator))
    test_parts, train_parts = {}, {}
    for k, (train, test) in enumerate(cv.split(Xi, yi, gi)):
        test_parts[_digest(_safe_indexing(Xi, test))] = k
        train_parts[_digest(_safe_indexing(Xi, train))] = k
    return test_parts, train_parts


def fit_search(
    search, X, y, *, parent_run_id=None, tracking_uri=None, groups=None, **fit_params
):
    """Fit a search; each candidate's MLflow child run is logged by its workers.

    Before the fit, one child run ``candidate-<i>`` per candidate is created
    under the parent, with the candidate's parameters (keyed by their
    scikit-learn paths). During the fit, wherever a candidate is trained (a
    Dask worker under :func:`use_dask`, a joblib process, or this process),
    each fold's score, the worker's address and every member's per-epoch
    training history are logged into that child run. After the fit the
    ``cv_results_`` summary (``mean_test_score``, ``std_test_score``,
    ``rank_test_score``, fit and score times) is added and the child runs end
    ``FINISHED`` (``FAILED`` for a candidate without a finite score). The
    runs are written by :class:`genreclf.tracking.search.CandidateRuns`, as
    those of :func:`genreclf.tracking.log_search`, so the result looks the
    same whatever ran the search.

    Parameters
    ----------
    search : GridSearchCV or RandomizedSearchCV
        An unfitted search with single-metric ``scoring`` (None, a name or a
        callable). A ``RandomizedSearchCV`` needs an int ``random_state``.
    X : array-like of shape (n_samples,)
        Audio file paths (or any input of the search's estimator).
    y : array-like of shape (n_samples,)
        Genres.
    parent_run_id : str, optional
        The run the candidates are nested under; by default the active run.
    tracking_uri : str, optional
        The tracking server; by default MLflow's current one. Every worker
        must reach it.
    groups : array-like of shape (n_samples,), optional
        Groups for the search's splitter.
    **fit_params
        Passed to ``search.fit``.

    Returns
    -------
    run_ids : list of str
        One child run id per candidate, in ``cv_results_`` order.

    Raises
    ------
    ValueError
        If there is no parent run, or ``scoring`` has several metrics.
    TypeError
        If ``search`` is not a grid or randomized search.

    See Also
    --------
    use_dask : Run the search on a Dask cluster.
    genreclf.tracking.log_search : Log the candidates from the client, after
        the fit, instead.

    Notes
    -----
    The splits must be the same when computed twice (an int ``cv``, or a
    splitter with a fixed ``random_state``): the workers recognise a fold by
    the clips it holds. Folds they cannot recognise are logged from the
    client after the search, as are scores a worker failed to send.
    """
    from sklearn.metrics import check_scoring

    from genreclf.exceptions import TrainingInterrupted
    from genreclf.tracking.search import CandidateRuns, CandidateScorer

    candidates = _candidates(search)
    scoring = search.scoring
    if isinstance(scoring, (list, tuple, set, dict)):
        raise ValueError(
            "fit_search supports one scoring metric, got "
            f"{type(scoring).__name__} {scoring!r}"
        )
    runs = CandidateRuns(candidates, parent_run_id, tracking_uri)
    test_parts, train_parts = _fold_digests(search, X, y, groups)
    runs.create()
    scorer = CandidateScorer(
        check_scoring(search.estimator, scoring),
        runs.tracking_uri,
        candidates,
        runs.run_ids,
        test_parts,
        train_parts,
        _digest,
    )
    status = "FAILED"
    try:
        search.set_params(scoring=scorer)
        search.fit(X, y, groups=groups, **fit_params)
        status = "FINISHED"
    except (KeyboardInterrupt, TrainingInterrupted):
        status = "KILLED"
        raise
    finally:
        search.set_params(scoring=scoring)
        if getattr(search, "scorer_", None) is scorer:
            search.scorer_ = scorer.scorer
        if status != "FINISHED":
            runs.end(status)
    return runs.finish(search.cv_results_)
