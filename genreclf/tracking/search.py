"""The one writer of a search's candidate runs, for every way of fitting it.

Each candidate of a ``GridSearchCV`` (or ``RandomizedSearchCV``) gets one child
run ``candidate-<i>`` under the search's run, with the candidate's parameters
(keyed by their scikit-learn paths, as :func:`~genreclf.tracking.params.param_text`
writes them) and, from ``cv_results_``, its scores and times. Two callers share
:class:`CandidateRuns`:

- :func:`log_search` writes the runs after a search fitted in this process;
- :func:`genreclf.distributed.fit_search` creates them before the fit, lets
  the workers that train each candidate log its fold scores and training
  curves (through :class:`CandidateScorer`), and finishes them afterwards.

Either way a candidate's run has the same parameters, the same summary
metrics and the same tags.
"""

import re
import warnings

import numpy as np

from genreclf.exceptions import TrainingInterrupted
from genreclf.tracking.members import member_history
from genreclf.tracking.params import params_as_text
from genreclf.tracking.runs import (
    PARENT_TAG,
    now_ms,
    process_tags,
    resolve_parent_run,
    signals_held,
)

__all__ = [
    "CV_SUMMARY_KEYS",
    "CandidateRuns",
    "CandidateScorer",
    "log_search",
    "same_value",
]

#: The per-candidate summary of a search's ``cv_results_`` logged to each
#: candidate's run (beside the ``split<k>_test_score`` entries).
CV_SUMMARY_KEYS = (
    "mean_test_score",
    "std_test_score",
    "rank_test_score",
    "mean_fit_time",
    "std_fit_time",
    "mean_score_time",
    "std_score_time",
    "mean_train_score",
    "std_train_score",
)
#: Per-epoch history entries a worker logs for each member of a candidate.
_WORKER_HISTORY_KEYS = ("train_loss", "valid_loss", "valid_acc")
#: MLflow's limit on the metrics of one ``log_batch``.
_BATCH = 1000
_SPLIT_KEY = re.compile(r"split(\d+)_(test|train)_score")


def same_value(a, b):
    """Tell whether two parameter values are equal (estimators by their params).

    Parameters
    ----------
    a, b : object
        Two parameter values.

    Returns
    -------
    equal : bool

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> same_value(StandardScaler(), StandardScaler(with_mean=False))
    False
    """
    if hasattr(a, "get_params") and not isinstance(a, type):
        if type(a) is not type(b):
            return False
        pa, pb = a.get_params(deep=False), b.get_params(deep=False)
        return pa.keys() == pb.keys() and all(same_value(pa[k], pb[k]) for k in pa)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    try:
        return bool(a == b)
    except TrainingInterrupted:
        raise
    except Exception:  # noqa: BLE001 - incomparable means different
        return False


class CandidateRuns:
    """The child runs of a search's candidates: created, then finished.

    Parameters
    ----------
    candidates : list of dict
        The candidates' parameters, in ``cv_results_`` order.
    parent_run_id : str, optional
        The run the candidates are nested under; by default the active run.
    tracking_uri : str, optional
        By default MLflow's current one.

    Attributes
    ----------
    run_ids : list of str
        One child run per candidate, in ``cv_results_`` order, after
        :meth:`create`.
    parent_run_id : str
        The parent run.
    tracking_uri : str
        The tracking URI used.

    Raises
    ------
    ValueError
        If no parent run is given and none is active.
    """

    def __init__(self, candidates, parent_run_id=None, tracking_uri=None):
        import mlflow

        self.candidates = [dict(c) for c in candidates]
        self.parent_run_id = resolve_parent_run(parent_run_id)
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.run_ids = []

    def _client(self):
        import mlflow

        return mlflow.MlflowClient(self.tracking_uri)

    def create(self):
        """Create one run per candidate with its parameters; return the run ids."""
        from mlflow.entities import Param

        client = self._client()
        experiment_id = client.get_run(self.parent_run_id).info.experiment_id
        with signals_held():
            for i, candidate in enumerate(self.candidates):
                run = client.create_run(
                    experiment_id,
                    run_name=f"candidate-{i}",
                    tags={
                        PARENT_TAG: self.parent_run_id,
                        "genreclf.candidate_index": str(i),
                        **process_tags(),
                    },
                )
                params = [Param(k, v) for k, v in params_as_text(candidate).items()]
                client.log_batch(run.info.run_id, params=params)
                self.run_ids.append(run.info.run_id)
        return list(self.run_ids)

    def end(self, status):
        """End every run with ``status`` (after a failed or interrupted fit).

        Errors of the tracking store are ignored: the fit's own error matters.
        """
        client = self._client()
        with signals_held():
            for run_id in self.run_ids:
                try:
                    client.set_terminated(run_id, status)
                except Exception:  # noqa: BLE001 - the store may be gone
                    continue

    def finish(self, results):
        """Log the ``cv_results_`` summary and missing fold scores; end the runs.

        Fold scores that a worker already logged are kept; the others are
        logged from ``results``. Each run is tagged
        ``genreclf.fold_scores_logged_by`` (``workers``, ``client`` or
        ``workers+client``) and ends ``FINISHED``, or ``FAILED`` for a
        candidate without a finite ``mean_test_score``.

        Parameters
        ----------
        results : dict
            The fitted search's ``cv_results_``.

        Raises
        ------
        RuntimeError
            If ``results`` holds another number of candidates than the runs.
        """
        from mlflow.entities import Metric, RunTag

        if len(results["params"]) != len(self.run_ids):
            raise RuntimeError(
                f"the search evaluated {len(results['params'])} candidates but "
                f"{len(self.run_ids)} were expected"
            )
        splits = sorted(
            (int(m[1]), m[2], key)
            for key in results
            if (m := _SPLIT_KEY.fullmatch(key)) is not None
        )
        n_test = sum(kind == "test" for _, kind, _ in splits)
        client = self._client()
        now = now_ms()
        with signals_held():
            for i, run_id in enumerate(self.run_ids):
                logged = client.get_run(run_id).data.metrics
                keys = [k for k in CV_SUMMARY_KEYS if k in results]
                missing = [key for _, _, key in splits if key not in logged]
                keys += missing
                n_missing = sum(key.endswith("_test_score") for key in missing)
                metrics = [
                    Metric(key, float(results[key][i]), now, 0)
                    for key in keys
                    if np.isfinite(float(results[key][i]))
                ]
                if n_missing == 0:
                    where = "workers"
                elif n_missing == n_test:
                    where = "client"
                else:
                    where = "workers+client"
                tags = [RunTag("genreclf.fold_scores_logged_by", where)]
                client.log_batch(run_id, metrics=metrics, tags=tags)
                finite = np.isfinite(float(results["mean_test_score"][i]))
                client.set_terminated(run_id, "FINISHED" if finite else "FAILED")
        return list(self.run_ids)


def _member_histories(estimator):
    """Per-epoch history of each fitted member: ``{m: {epoch: {key: value}}}``."""
    from genreclf.pipeline import STEP_NAMES

    steps = getattr(estimator, "named_steps", {})
    final = steps[STEP_NAMES[-1]] if STEP_NAMES[-1] in steps else estimator
    members = getattr(final, "estimators_", None)
    if members is None:
        members = [final]
    histories = (member_history(m, _WORKER_HISTORY_KEYS) for m in members)
    return {m: rows for m, rows in enumerate(histories) if rows}


def _worker_name():
    """The Dask worker's address, or ``host:pid`` outside a worker."""
    import os
    import socket

    try:
        from dask.distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


class CandidateScorer:
    """A scorer that also logs each fold's score into its candidate's MLflow run.

    It runs where scikit-learn scores a fitted candidate: in the worker that
    trained it. It finds the candidate by the fitted estimator's parameters
    and the fold by a digest of the part it scores, then writes
    ``split<k>_test_score`` (or ``_train_score``), the worker's address (tag
    ``genreclf.worker.split<k>``) and each member's per-epoch history
    (``split<k>.member<m>.<key>``, step = epoch) into the candidate's child run.
    A logging failure never fails the fit: :meth:`CandidateRuns.finish` then
    logs the missing scores from the client.

    Parameters
    ----------
    scorer : callable
        The search's scorer, ``scorer(estimator, X, y)``.
    tracking_uri : str
        Where the runs are.
    candidates : list of dict
        The candidates, in ``cv_results_`` order.
    run_ids : list of str
        Their runs, in the same order.
    test_parts, train_parts : dict of str to int
        Digest of each fold's test (train) part -> the fold's index.
    digest : callable
        ``digest(part) -> str``, the function that made the digests.
    """

    def __init__(
        self, scorer, tracking_uri, candidates, run_ids, test_parts, train_parts, digest
    ):
        self.scorer = scorer
        self.tracking_uri = tracking_uri
        self.candidates = candidates
        self.run_ids = run_ids
        self.test_parts = test_parts
        self.train_parts = train_parts
        self.digest = digest

    def __call__(self, estimator, X, y=None, **kwargs):
        """Score ``estimator`` on ``X``, ``y`` and log the score to its run."""
        if y is None:
            score = self.scorer(estimator, X, **kwargs)
        else:
            score = self.scorer(estimator, X, y, **kwargs)
        try:
            self._log(estimator, X, score)
        except TrainingInterrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - logging must not lose a fit
            warnings.warn(
                f"could not log a fold score to MLflow at {self.tracking_uri} "
                f"({type(exc).__name__}: {exc}); it is logged after the search",
                RuntimeWarning,
                stacklevel=2,
            )
        return score

    def _candidate(self, estimator):
        params = estimator.get_params(deep=True)
        best, best_size = None, -1
        for i, candidate in enumerate(self.candidates):
            if len(candidate) > best_size and all(
                k in params and same_value(params[k], v) for k, v in candidate.items()
            ):
                best, best_size = i, len(candidate)
        return best

    def _log(self, estimator, X, score):
        import mlflow
        from mlflow.entities import Metric, RunTag

        digest = self.digest(X)
        if digest in self.test_parts:
            fold, kind = self.test_parts[digest], "test"
        elif digest in self.train_parts:
            fold, kind = self.train_parts[digest], "train"
        else:
            return  # not a part of this search's splits (e.g. a later .score())
        index = self._candidate(estimator)
        if index is None:
            return
        now = now_ms()
        metrics = [Metric(f"split{fold}_{kind}_score", float(score), now, 0)]
        tags = []
        if kind == "test":
            tags.append(RunTag(f"genreclf.worker.split{fold}", _worker_name()))
            for m, rows in _member_histories(estimator).items():
                metrics += [
                    Metric(f"split{fold}.member{m}.{key}", value, now, epoch)
                    for epoch, values in rows.items()
                    for key, value in values.items()
                ]
        client = mlflow.MlflowClient(self.tracking_uri)
        run_id = self.run_ids[index]
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(
                run_id,
                metrics=metrics[start : start + _BATCH],
                tags=tags if start == 0 else [],
            )


def log_search(search, parent_run_id=None, tracking_uri=None):
    """Log each candidate of a fitted search as a child run.

    Each child run ``candidate-<i>`` gets the candidate's parameters (keyed by
    their scikit-learn paths) and, from ``cv_results_``: ``mean_test_score``,
    ``std_test_score``, ``rank_test_score``, the fit and score times and the
    per-split ``split<k>_test_score`` (and ``_train_score``), as
    :func:`genreclf.distributed.fit_search` writes them. Runs are made through
    an explicit client and run id, so this may be called from any process
    that reaches the tracking server.

    Parameters
    ----------
    search : GridSearchCV or RandomizedSearchCV
        A fitted search.
    parent_run_id : str, optional
        The parent run; by default the active run.
    tracking_uri : str, optional
        By default MLflow's current one.

    Returns
    -------
    run_ids : list of str
        One child run id per candidate, in ``cv_results_`` order.

    Raises
    ------
    ValueError
        If no parent run is given and none is active.
    """
    results = search.cv_results_
    runs = CandidateRuns(results["params"], parent_run_id, tracking_uri)
    with signals_held():  # never a created run left unfinished
        runs.create()
        return runs.finish(results)
