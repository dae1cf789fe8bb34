"""Tracked training, search and evaluation: one MLflow run each, one skeleton.

Each workflow runs the same steps inside :func:`~genreclf.tracking.runs.tracked_run`:
parameters first, then the data (summary, file list, bad files), then the
work that differs (fit the ensemble, fit the search, or nothing), then the
evaluation and the model. :func:`_logged_data` and :func:`_evaluate_and_log_model`
are the shared steps; the checks and the checkpoint folder of a resumed
training are in :mod:`genreclf.tracking._resume`.
"""

import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

from genreclf.tracking._resume import check_resume, checkpoint_folder, storage_failure
from genreclf.tracking.data import checked_data, log_dataset
from genreclf.tracking.evaluation import evaluate_and_log, plot_training_curves
from genreclf.tracking.members import MemberLogger, member_history
from genreclf.tracking.model import load_pipeline, log_pipeline_model
from genreclf.tracking.params import flatten_params, param_text, shorten
from genreclf.tracking.runs import base_tags, tracked_run
from genreclf.tracking.search import log_search
from genreclf.tracking.server import check_tracking_server
from genreclf.tracking.storage import artifact_write

__all__ = ["TrainingResult", "evaluate_model", "search_and_log", "train_and_log"]


@dataclasses.dataclass
class TrainingResult:
    """What the tracked workflows return (training, search, evaluation).

    Attributes
    ----------
    run_id : str
        The parent run.
    pipeline : Pipeline
        The fitted pipeline (for a search, the refitted best one).
    metrics : dict of str to float
        Evaluation metrics (empty without an evaluation split).
    model_uri : str or None
        URI of the logged model.
    bad_files : dict of str to str
        Files skipped as unreadable, with the reason.
    search : GridSearchCV or None
        The fitted search, for :func:`search_and_log`.
    child_run_ids : list of str
        Nested runs: one per member, or one per search candidate.
    """

    run_id: str
    pipeline: object
    metrics: dict
    model_uri: str | None = None
    bad_files: dict = dataclasses.field(default_factory=dict)
    search: object = None
    child_run_ids: list = dataclasses.field(default_factory=list)


def _ensemble_step(pipeline):
    from genreclf.pipeline import STEP_NAMES

    name = STEP_NAMES[-1]
    step = getattr(pipeline, "named_steps", {}).get(name)
    if not hasattr(step, "member_callback"):
        raise TypeError(
            f"the pipeline's {name!r} step ({type(step).__name__}) has no "
            "member_callback: expected a genreclf GenreEnsemble"
        )
    return step


def _logged_data(pipeline, X, y, X_eval, y_eval, dataset_name, skip_bad_files):
    """Log the data of the run, then screen its files (:func:`checked_data`).

    ``X`` None means a run without training data (an evaluation).
    """
    if X is not None:
        log_dataset(X, y, dataset_name, "training")
    if X_eval is not None:
        log_dataset(X_eval, y_eval, dataset_name, "evaluation")
    if X is None:
        X, y = [], []
    return checked_data(pipeline, X, y, X_eval, y_eval, skip_bad_files)


def _evaluate_and_log_model(fitted, X, X_eval, y_eval, log_model):
    """Evaluate on the evaluation split and log the model; return both results."""
    import mlflow

    has_eval = X_eval is not None and len(X_eval)
    metrics = evaluate_and_log(fitted, X_eval, y_eval) if has_eval else {}
    model_uri = None
    if log_model:
        example = (X_eval if has_eval else X)[:1]
        with artifact_write("the model (its files under model/)"):
            model_uri = log_pipeline_model(fitted, input_example=example).model_uri
        mlflow.set_tag("genreclf.model_uri", model_uri)
    return metrics, model_uri


def _member_bar(total):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="networks", unit="net")


def train_and_log(
    pipeline,
    X,
    y,
    X_eval=None,
    y_eval=None,
    *,
    dataset_name=None,
    experiment_name=None,
    run_name=None,
    tags=None,
    checkpoint_dir=None,
    resume=None,
    skip_bad_files=False,
    log_model=True,
    progress=False,
    check_server=True,
):
    """Fit a genreclf pipeline in one MLflow run and log everything about it.

    See :mod:`genreclf.tracking` for what is logged. Nothing is trained before
    the tracking server has answered and every file has been read: unreadable
    files make it fail with their complete list, unless ``skip_bad_files``.

    Parameters
    ----------
    pipeline : Pipeline
        An unfitted genreclf pipeline (:func:`genreclf.pipeline.build_pipeline`);
        its ensemble step is a :class:`~genreclf.ensemble.GenreEnsemble`.
    X, y : sequences
        Training files and genres.
    X_eval, y_eval : sequences, optional
        Evaluation files and genres; without them no evaluation is logged.
    dataset_name : str, optional
        Name of the data in the run (``"demo"``, ``"fma_small"``).
    experiment_name, run_name, tags, check_server
        See :func:`~genreclf.tracking.tracked_run`.
    checkpoint_dir : str or path-like, optional
        Each member is saved as it finishes (the ensemble's ``checkpoint_dir``)
        in ``<checkpoint_dir>/<run id>/``; by default in a temporary folder.
        Either way it is logged under ``members/`` of the run at once.
    resume : str or path-like, optional
        Reuse the members an interrupted training saved, and train only the
        missing ones: a checkpoint folder (then new members are saved there
        too), or the id of the earlier run (its ``members/`` are downloaded).
        The settings and data must be the same: other settings or data are
        refused (:class:`~genreclf.exceptions.UsageError` naming the
        differences) before any run starts. The earlier run's members are
        copied into this run's own folder; the earlier run's files are never
        written to.
    skip_bad_files : bool, default=False
        Train on the readable files and log the others, instead of failing.
    log_model : bool, default=True
        Log the fitted pipeline as a model (:func:`log_pipeline_model`).
    progress : bool, default=False
        Show a progress bar over the members (in place of the ensemble's
        per-member lines).

    Returns
    -------
    result : TrainingResult
        The run id, the fitted pipeline, the evaluation metrics, the model URI,
        the skipped files and the member run ids.

    Raises
    ------
    TrackingServerError
        If the tracking server does not answer (before any work).
    genreclf.exceptions.UsageError
        If ``resume`` names a run with other settings or data.
    genreclf.exceptions.FeatureExtractionError
        If files are unreadable and ``skip_bad_files`` is false.
    OSError
        If a checkpoint or the model cannot be written (full disk), naming
        the folder and the file; what was saved before is kept.
    TrainingInterrupted
        On Ctrl-C or ``SIGTERM``; the run then ends ``KILLED`` and the members
        finished so far are saved (and logged).
    """
    import mlflow

    ensemble = _ensemble_step(pipeline)
    if len(X) == 0:
        raise ValueError("no training files: give at least one file per genre")
    if resume is not None:
        check_resume(pipeline, X, y, resume)
    run_tags = base_tags("train", tags)
    if resume is not None:
        run_tags["genreclf.resumed_from"] = os.fspath(resume)
    with (
        contextlib.ExitStack() as stack,
        tracked_run(experiment_name, run_name, run_tags, check_server) as run,
    ):
        run_id = run.info.run_id
        mlflow.log_params(flatten_params(pipeline))
        X, y, X_eval, y_eval, bad = _logged_data(
            pipeline, X, y, X_eval, y_eval, dataset_name, skip_bad_files
        )
        folder = checkpoint_folder(stack, run_id, checkpoint_dir, resume)
        if resume is not None or checkpoint_dir is not None:
            mlflow.set_tag("genreclf.checkpoint_dir", os.path.abspath(folder))
        bar = _member_bar(ensemble.n_members) if progress else None
        on_logged = None if bar is None else (lambda index: bar.update())
        logger = MemberLogger(run_id, folder, on_logged=on_logged)
        settings = {
            "member_callback": logger,
            "checkpoint_dir": folder,
            "resume": resume is not None,
            "verbose": ensemble.verbose and not progress,  # the bar replaces lines
        }
        saved = {k: getattr(ensemble, k) for k in settings}
        ensemble.set_params(**settings)
        try:
            pipeline.fit(np.asarray(X, dtype=object), np.asarray(y))
        except OSError as exc:
            error = storage_failure(exc, folder, logger, ensemble.n_members)
            if error is exc:
                raise
            raise error from exc
        finally:
            ensemble.set_params(**saved)
            if bar is not None:
                bar.close()
        histories = {i: member_history(m) for i, m in enumerate(ensemble.estimators_)}
        figure = "figures/training_curves.png"
        with artifact_write(f"the training curves {figure}"):
            mlflow.log_figure(plot_training_curves(histories), figure)
        metrics, model_uri = _evaluate_and_log_model(
            pipeline, X, X_eval, y_eval, log_model
        )
    return TrainingResult(
        run_id=run_id,
        pipeline=pipeline,
        metrics=metrics,
        model_uri=model_uri,
        bad_files=bad,
        child_run_ids=[logger.run_ids_[i] for i in sorted(logger.run_ids_)],
    )


def search_and_log(
    search,
    X,
    y,
    X_eval=None,
    y_eval=None,
    *,
    dataset_name=None,
    experiment_name=None,
    run_name=None,
    tags=None,
    skip_bad_files=False,
    log_model=True,
    fit=None,
    check_server=True,
):
    """Run a hyper-parameter search in one MLflow run with a child per candidate.

    The parent run gets the base pipeline's parameters, the data, the grid
    (``search.grid``), ``best.<param path>`` for each best parameter,
    ``best_cv_score``, ``cv_results.csv``; then the refitted best pipeline's
    evaluation and model, as in :func:`train_and_log`. Each candidate is a
    child run (:func:`~genreclf.tracking.log_search`).

    Parameters
    ----------
    search : GridSearchCV
        An unfitted search over a genreclf pipeline, for example over
        ``ensemble__net__batch_size``; ``refit`` must be true to evaluate and
        log a model.
    X, y, X_eval, y_eval, dataset_name, experiment_name, run_name, tags, \
skip_bad_files, log_model, check_server
        As in :func:`train_and_log`.
    fit : callable, optional
        Fits the search and logs its candidates:
        ``fit(search, X, y, parent_run_id=...) -> child run ids``, such as
        :func:`genreclf.distributed.fit_search` (each candidate logged by the
        worker that trains it). By default ``search.fit``, then
        :func:`~genreclf.tracking.log_search` from this process.

    Returns
    -------
    result : TrainingResult
        With ``search`` (the fitted search), ``pipeline`` (its best estimator,
        if refitted) and ``child_run_ids`` (one per candidate).
    """
    import mlflow
    import pandas as pd

    with tracked_run(
        experiment_name, run_name, base_tags("search", tags), check_server
    ) as run:
        base = search.estimator
        mlflow.log_params(flatten_params(base))
        grid = getattr(
            search, "param_grid", getattr(search, "param_distributions", None)
        )
        mlflow.log_params(
            {
                "search.class": type(search).__name__,
                "search.grid": shorten(param_text(grid)),
                "search.cv": param_text(search.cv),
                "search.scoring": param_text(search.scoring),
            }
        )
        X, y, X_eval, y_eval, bad = _logged_data(
            base, X, y, X_eval, y_eval, dataset_name, skip_bad_files
        )
        X, y = np.asarray(X, dtype=object), np.asarray(y)
        if fit is None:
            search.fit(X, y)
            child_ids = log_search(search, run.info.run_id)
        else:
            child_ids = fit(search, X, y, parent_run_id=run.info.run_id)
        mlflow.log_params(
            {f"best.{k}": param_text(v) for k, v in search.best_params_.items()}
        )
        mlflow.log_metric("best_cv_score", float(search.best_score_))
        frame = pd.DataFrame(search.cv_results_)
        frame["params"] = [param_text(p) for p in frame["params"]]
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp, "cv_results.csv")
            frame.to_csv(csv, index=False)
            with artifact_write("the search results cv_results.csv"):
                mlflow.log_artifact(str(csv))
        best = getattr(search, "best_estimator_", None)
        metrics, model_uri = {}, None
        if best is not None:
            metrics, model_uri = _evaluate_and_log_model(
                best, X, X_eval, y_eval, log_model
            )
    return TrainingResult(
        run_id=run.info.run_id,
        pipeline=best,
        metrics=metrics,
        model_uri=model_uri,
        bad_files=bad,
        search=search,
        child_run_ids=child_ids,
    )


def _check_evaluation_data(pipeline, X, y, model):
    """Refuse evaluation data that is empty or shares no genre with the model."""
    if X is None or len(X) == 0:
        raise ValueError("no evaluation files: give a folder or split with audio")
    known = [str(c) for c in getattr(pipeline, "classes_", ())]
    given = sorted({str(g) for g in y})
    if known and not set(given) & set(known):
        raise ValueError(
            f"the data shares no genre with the model {os.fspath(model)}: it knows "
            f"{', '.join(known)}; the data's genres are {', '.join(given)}; "
            "evaluate on files of the model's genres"
        )


def evaluate_model(
    model,
    X,
    y,
    *,
    dataset_name=None,
    experiment_name=None,
    run_name=None,
    tags=None,
    skip_bad_files=False,
    check_server=True,
):
    """Evaluate a logged or saved model on a dataset, in its own MLflow run.

    Parameters
    ----------
    model : str or path-like
        Anything :func:`load_pipeline` reads.
    X, y : sequences
        Evaluation files and genres.
    dataset_name, experiment_name, run_name, tags, skip_bad_files, check_server
        As in :func:`train_and_log`.

    Returns
    -------
    result : TrainingResult
        The run id, the loaded pipeline and the metrics of
        :func:`~genreclf.tracking.evaluate_and_log`.

    Raises
    ------
    ValueError
        Before any run starts, if ``X`` is empty or its genres share none
        with the model's.
    """
    import mlflow

    if check_server:
        check_tracking_server()
    pipeline = load_pipeline(model)
    _check_evaluation_data(pipeline, X, y, model)
    with tracked_run(
        experiment_name, run_name, base_tags("evaluate", tags), check_server=False
    ) as run:
        mlflow.log_param("model_uri", os.fspath(model))
        _, _, X, y, bad = _logged_data(
            pipeline, None, None, X, y, dataset_name, skip_bad_files
        )
        metrics = evaluate_and_log(pipeline, X, y)
    return TrainingResult(
        run_id=run.info.run_id, pipeline=pipeline, metrics=metrics, bad_files=bad
    )
