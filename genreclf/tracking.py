"""Experiment tracking with MLflow: one run per training, search or evaluation.

This is the only public module that uses MLflow, and it imports it inside
functions, so ``import genreclf`` never loads it. What one tracked training
(:func:`train_and_log`) records, in MLflow's order (parameters, then metrics as
they come, then artifacts and the model):

- parameters: every ``pipeline.get_params(deep=True)`` entry, keyed by its
  scikit-learn path (``ensemble__net__batch_size``), its value as text and
  shortened to MLflow's limit; the data (``data.training.n_clips``, per-genre
  counts, a SHA-256 digest of the sorted file list) and the bad files skipped;
- one nested run per ensemble member, logged as soon as that member finishes,
  with its seed and per-epoch ``train_loss``, ``valid_loss`` and ``valid_acc``
  (``step`` is the epoch); the fitted member is saved to the checkpoint folder
  and logged under ``members/`` at once, so an interruption loses nothing
  finished;
- metrics on the evaluation split: ``eval_accuracy``, ``eval_f1_macro`` and
  ``eval_accuracy_<genre>`` (the fraction of that genre's clips classified
  correctly, i.e. its recall);
- artifacts: ``figures/confusion_matrix.png``, ``figures/training_curves.png``,
  ``evaluation/classification_report.txt``, ``evaluation/predictions.csv``;
- the fitted pipeline as an MLflow ``pyfunc`` model (see
  :func:`log_pipeline_model`).

A run that is interrupted (Ctrl-C, ``SIGTERM``) ends ``KILLED``; one that fails
ends ``FAILED``; none is left ``RUNNING``. Under ``mlflow run`` the run that
MLflow made is the one used.
"""

import contextlib
import dataclasses
import hashlib
import os
import re
import signal
import tempfile
import threading
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from genreclf._reports import (
    CV_SUMMARY_KEYS,
    best_epoch,
    evaluation_metrics,
    member_history,
    plot_confusion_matrix,
    plot_training_curves,
    safe_key,
)

__all__ = [
    "MemberLogger",
    "TrackingServerError",
    "TrainingInterrupted",
    "TrainingResult",
    "check_tracking_server",
    "describe_dataset",
    "evaluate_and_log",
    "evaluate_model",
    "evaluation_metrics",
    "flatten_params",
    "fetch_members",
    "load_pipeline",
    "log_dataset",
    "log_pipeline_model",
    "log_search",
    "plot_confusion_matrix",
    "plot_training_curves",
    "search_and_log",
    "tracked_run",
    "train_and_log",
]

#: MLflow's limit on a parameter value, used when MLflow does not say.
_DEFAULT_MAX_PARAM_LENGTH = 6000
#: MLflow's limit on a parameter or metric key.
_MAX_KEY_LENGTH = 250
_PARENT_TAG = "mlflow.parentRunId"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class TrackingServerError(RuntimeError):
    """The MLflow tracking server (or store) cannot be reached."""


# --------------------------------------------------------------------------- server


@contextlib.contextmanager
def _environ(**values):
    old = {key: os.environ.get(key) for key in values}
    os.environ.update({key: str(value) for key, value in values.items()})
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_tracking_server(tracking_uri=None, timeout=5):
    """Check at once that the MLflow tracking store answers.

    An unreachable HTTP server otherwise costs minutes of retries, after the
    training has already run. This makes one request with no retries and a
    short timeout.

    Parameters
    ----------
    tracking_uri : str, optional
        The URI to check; by default MLflow's current one
        (``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    timeout : int, default=5
        Seconds to wait for an answer.

    Returns
    -------
    tracking_uri : str
        The URI checked.

    Raises
    ------
    TrackingServerError
        If the store does not answer, with the URI and the reason.
    """
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    with _environ(
        MLFLOW_HTTP_REQUEST_MAX_RETRIES=0,
        MLFLOW_HTTP_REQUEST_TIMEOUT=max(1, int(timeout)),
    ):
        try:
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
        except Exception as exc:
            reason = " ".join(str(exc).split())
            if len(reason) > 300:
                reason = reason[:300] + "..."
            raise TrackingServerError(
                f"cannot reach the MLflow tracking server at {uri} ({reason}); start "
                "it, or point MLFLOW_TRACKING_URI at one that runs"
            ) from exc
    return uri


# --------------------------------------------------------------------------- params


def _param_text(value, nested=False):
    """Stable text for a parameter value: names for classes, no memory addresses."""
    if isinstance(value, str):
        return repr(value) if nested else value
    if value is None or isinstance(value, (bool, int, float, np.generic)):
        return str(value)
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}".lstrip(".")
    if hasattr(value, "get_params"):
        return type(value).__name__
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_param_text(v, nested=True) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        inner = ", ".join(
            f"{k!r}: {_param_text(v, nested=True)}" for k, v in value.items()
        )
        return "{" + inner + "}"
    return _ADDRESS.sub("", repr(value))


def _shorten(text, max_length):
    if len(text) <= max_length:
        return text
    suffix = f"...[{len(text)} chars]"
    return text[: max_length - len(suffix)] + suffix


def flatten_params(estimator, max_length=None):
    """Return an estimator's parameters as MLflow parameters.

    Parameters
    ----------
    estimator : estimator
        Any scikit-learn estimator, typically the genreclf pipeline.
    max_length : int, optional
        Longest value kept; longer values are cut and end with
        ``...[<n> chars]``. By default MLflow's limit (6000 in MLflow 3).

    Returns
    -------
    params : dict of str to str
        Keys are the scikit-learn parameter paths of
        ``estimator.get_params(deep=True)``. Values that are estimators
        themselves are left out (their own parameters are listed under their
        path); classes and functions are given by their qualified name.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> params = flatten_params(make_pipeline(StandardScaler()))
    >>> params["standardscaler__with_mean"], params["steps"]
    ('True', "[('standardscaler', StandardScaler)]")
    >>> flatten_params(StandardScaler(copy="x" * 50), max_length=20)["copy"]
    'xxxxxxx...[50 chars]'
    """
    if max_length is None:
        try:
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH as max_length
        except ImportError:  # pragma: no cover - older or newer MLflow
            max_length = _DEFAULT_MAX_PARAM_LENGTH
    params = {}
    for key, value in sorted(estimator.get_params(deep=True).items()):
        if hasattr(value, "get_params") and not isinstance(value, type):
            continue
        params[key[:_MAX_KEY_LENGTH]] = _shorten(_param_text(value), max_length)
    return params


# --------------------------------------------------------------------------- data


def _file_list_digest(paths, y):
    """SHA-256 of the sorted ``relative path<TAB>label`` lines of a dataset."""
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    root = os.path.commonpath(paths) if paths else ""
    if len(paths) == 1:
        root = os.path.dirname(root)
    lines = sorted(
        f"{os.path.relpath(p, root)}\t{label}"
        for p, label in zip(paths, y, strict=True)
    )
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def describe_dataset(paths, y, name=None):
    """Summarize a dataset: size, per-genre counts and a digest of its file list.

    Parameters
    ----------
    paths : sequence of str or path-like
        Audio file paths.
    y : sequence of str
        Genre of each path.
    name : str, optional
        A name for the dataset (``"demo"``, ``"fma_small"``, a folder name).

    Returns
    -------
    summary : dict
        ``name``, ``n_clips``, ``counts`` (genre to count, sorted by genre) and
        ``digest``: the SHA-256 of the sorted ``path<TAB>genre`` lines, with
        paths relative to the folder the files share, so that the same files
        give the same digest wherever they lie.

    Examples
    --------
    >>> s = describe_dataset(["/a/x.wav", "/a/y.wav"], ["rock", "pop"], "tiny")
    >>> s["n_clips"], s["counts"], len(s["digest"])
    (2, {'pop': 1, 'rock': 1}, 64)
    >>> s["digest"] == describe_dataset(["/b/y.wav", "/b/x.wav"], ["pop", "rock"])[
    ...     "digest"]
    True
    """
    y = [str(label) for label in y]
    if len(paths) != len(y):
        raise ValueError(f"{len(paths)} paths but {len(y)} labels")
    return {
        "name": name,
        "n_clips": len(y),
        "counts": dict(sorted(Counter(y).items())),
        "digest": _file_list_digest(paths, y),
    }


def log_dataset(paths, y, name=None, context="training"):
    """Log a dataset's summary to the active run.

    Parameters ``data.<context>.name``, ``.n_clips``, ``.digest`` and
    ``.count.<genre>``; the file list as ``data/<context>.csv``; and the
    dataset as an MLflow input (``mlflow.log_input``, with ``context``).

    Parameters
    ----------
    paths, y, name
        As in :func:`describe_dataset`.
    context : str, default="training"
        What the data is used for (``"training"``, ``"evaluation"``).

    Returns
    -------
    summary : dict
        The output of :func:`describe_dataset`.
    """
    import mlflow
    import pandas as pd

    summary = describe_dataset(paths, y, name)
    prefix = f"data.{context}"
    params = {
        f"{prefix}.name": summary["name"],
        f"{prefix}.n_clips": summary["n_clips"],
        f"{prefix}.digest": summary["digest"],
    }
    params.update(
        {safe_key(f"{prefix}.count.{g}"): n for g, n in summary["counts"].items()}
    )
    mlflow.log_params(params)
    frame = pd.DataFrame({"path": [os.fspath(p) for p in paths], "genre": list(y)})
    frame["genre"] = frame["genre"].astype(str)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, f"{context}.csv")
        frame.to_csv(csv, index=False)
        mlflow.log_artifact(str(csv), "data")
    try:
        dataset = mlflow.data.from_pandas(
            frame, name=name or context, targets="genre", digest=summary["digest"][:36]
        )
        mlflow.log_input(dataset, context=context)
    except Exception as exc:  # the summary above is logged anyway
        warnings.warn(
            f"could not log the dataset as an MLflow input: {exc}", stacklevel=2
        )
    return summary


def _log_bad_files(failures, context):
    import mlflow

    mlflow.log_param(f"data.{context}.n_bad_files", len(failures))
    if failures:
        mlflow.log_dict(
            {"bad_files": [{"path": p, "reason": r} for p, r in failures.items()]},
            f"data/{context}_bad_files.json",
        )


# --------------------------------------------------------------------------- members


class MemberLogger:
    """Ensemble ``member_callback``: log each member as soon as it finishes.

    :class:`~genreclf.ensemble.GenreEnsemble` calls it as
    ``logger(index, fitted_member, seed)`` after it has saved the member to its
    ``checkpoint_dir``. The logger uploads that checkpoint file (and the
    folder's manifest) under ``members/`` of the parent run, so the run holds
    every finished member even if the training dies next, and creates one
    nested run ``member-<index>`` with the seed and the member's per-epoch
    metrics (``step`` is the epoch). It talks to MLflow through an explicit
    client and run id, never through the active run, so it cannot end the
    parent run, and it works in any process that reaches the tracking server.

    Parameters
    ----------
    parent_run_id : str
        The run the member runs are nested under.
    checkpoint_dir : str or path-like, optional
        The ensemble's ``checkpoint_dir``; without it no member file is
        uploaded.
    tracking_uri : str, optional
        Tracking URI; by default MLflow's current one when created.
    on_logged : callable, optional
        Called as ``on_logged(index)`` after each member is logged (e.g. to
        advance a progress bar).

    Attributes
    ----------
    run_ids_ : dict of int to str
        Nested run id of each member logged.
    """

    def __init__(
        self, parent_run_id, checkpoint_dir=None, tracking_uri=None, on_logged=None
    ):
        import time

        import mlflow

        self.parent_run_id = parent_run_id
        self.checkpoint_dir = checkpoint_dir
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.on_logged = on_logged
        self.run_ids_ = {}
        self._started = time.time()

    def __call__(self, index, member, seed):
        """Upload ``member``'s checkpoint and log nested run ``member-<index>``."""
        with _signals_held():
            self._log(index, member, seed)
        if self.on_logged is not None:
            self.on_logged(index)

    def _log(self, index, member, seed):
        import mlflow
        from mlflow.entities import Metric, Param, RunTag

        client = mlflow.MlflowClient(self.tracking_uri)
        resumed = False
        if self.checkpoint_dir is not None:
            folder = Path(self.checkpoint_dir)
            for path in (folder / f"member{index}.joblib", folder / "ensemble.json"):
                if path.is_file():
                    resumed = resumed or path.stat().st_mtime < self._started
                    client.log_artifact(self.parent_run_id, str(path), "members")
        experiment_id = client.get_run(self.parent_run_id).info.experiment_id
        run = client.create_run(
            experiment_id,
            run_name=f"member-{index}",
            tags={_PARENT_TAG: self.parent_run_id},
        )
        history = member_history(member)
        now = _now_ms()
        metrics = [
            Metric(key, value, now, epoch)
            for epoch, values in history.items()
            for key, value in values.items()
        ]
        best = best_epoch(history)
        if best is not None:
            metrics.append(Metric("best_epoch", best, now, 0))
        params = [
            Param("member_index", str(index)),
            Param("seed", str(seed)),
            Param("n_epochs", str(len(history))),
        ]
        tags = [RunTag("genreclf.resumed", str(resumed))]
        if self.checkpoint_dir is not None:
            tags.append(RunTag("genreclf.checkpoint", f"members/member{index}.joblib"))
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run.info.run_id, "FINISHED")
        self.run_ids_[int(index)] = run.info.run_id


def _now_ms():
    import time

    return int(time.time() * 1000)


def fetch_members(run_id, dest, tracking_uri=None):
    """Download the members an earlier run saved, to resume its training.

    Parameters
    ----------
    run_id : str
        An MLflow run logged by :func:`train_and_log` (its ``members/``).
    dest : str or path-like
        Folder to put them in; pass it to the ensemble as ``checkpoint_dir``
        with ``resume=True``.
    tracking_uri : str, optional
        By default MLflow's current one.

    Returns
    -------
    n_members : int
        How many member files were downloaded.

    Raises
    ------
    FileNotFoundError
        If the run does not exist or saved no member.

    Notes
    -----
    A run that is still marked ``RUNNING`` is marked ``KILLED``: its process is
    assumed dead (killed with ``SIGKILL``, or the machine went down), since the
    user asks to continue its work.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
        local = client.download_artifacts(run_id, "members", os.fspath(dest))
    except Exception as exc:
        raise FileNotFoundError(
            f"{run_id}: no saved members in this run "
            f"({' '.join(str(exc).split())[:200]})"
        ) from exc
    folder = Path(dest)
    for path in Path(local).iterdir():
        if path.parent != folder:
            os.replace(path, folder / path.name)
    n = len(list(folder.glob("member*.joblib")))
    if not n:
        raise FileNotFoundError(f"{run_id}: no saved members in this run")
    if run.info.status == "RUNNING":
        client.set_terminated(run_id, "KILLED")
    return n


# --------------------------------------------------------------------------- metrics


def evaluate_and_log(pipeline, paths, y, prefix="eval_"):
    """Evaluate a fitted pipeline and log metrics, figures and report.

    Logs to the active run: the metrics of :func:`evaluation_metrics`,
    ``figures/confusion_matrix.png``, ``evaluation/classification_report.txt``
    and ``evaluation/predictions.csv`` (path, true and predicted genre).

    Parameters
    ----------
    pipeline : Pipeline
        A fitted genreclf pipeline.
    paths, y : sequences
        The evaluation files and their genres.
    prefix : str, default="eval_"
        Metric key prefix.

    Returns
    -------
    metrics : dict of str to float
        What was logged.
    """
    import mlflow
    import pandas as pd
    from sklearn.metrics import classification_report

    y_true = np.asarray(y).astype(str)
    y_pred = np.asarray(pipeline.predict(np.asarray(paths, dtype=object))).astype(str)
    labels = [str(c) for c in getattr(pipeline, "classes_", sorted(set(y_true)))]
    metrics = evaluation_metrics(y_true, y_pred, labels, prefix)
    mlflow.log_metrics(metrics)
    mlflow.log_figure(
        plot_confusion_matrix(y_true, y_pred, labels), "figures/confusion_matrix.png"
    )
    report = classification_report(y_true, y_pred, labels=labels, zero_division=0)
    mlflow.log_text(report, "evaluation/classification_report.txt")
    frame = pd.DataFrame(
        {"path": [os.fspath(p) for p in paths], "genre": y_true, "predicted": y_pred}
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, "predictions.csv")
        frame.to_csv(csv, index=False)
        mlflow.log_artifact(str(csv), "evaluation")
    return metrics


# --------------------------------------------------------------------------- model


def _requirements():
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in (
        "mlflow",
        "torch",
        "skorch",
        "scikit-learn",
        "librosa",
        "soundfile",
        "numpy",
        "scipy",
        "pandas",
        "joblib",
        "audioread",
    ):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


@contextlib.contextmanager
def _portable(pipeline):
    """Temporarily clear what belongs to this training, not to the model.

    The member callback and checkpoint folder of the ensemble, and the cache
    folder and progress bar of the feature step.
    """
    feature_step = pipeline.steps[0][0]
    clear = {
        f"{feature_step}__memory": None,
        f"{feature_step}__verbose": 0,
        "memory": None,
    }
    params = pipeline.get_params(deep=True)
    for key in params:
        if key.endswith(("__member_callback", "__checkpoint_dir")):
            clear[key] = None
        elif key.endswith("__resume"):
            clear[key] = False
    clear = {k: v for k, v in clear.items() if k in params}
    saved = {k: params[k] for k in clear}
    pipeline.set_params(**clear)
    try:
        yield pipeline
    finally:
        pipeline.set_params(**saved)


def log_pipeline_model(
    pipeline, name="model", input_example=None, registered_model_name=None
):
    """Log a fitted pipeline as an MLflow ``pyfunc`` model in the active run.

    The pipeline is pickled with joblib into the model's artifacts and served
    by :class:`genreclf._pyfunc.GenrePyfuncModel`; the genreclf package is
    copied into the model (``code_paths``), so it loads where genreclf is not
    installed. Member callbacks and the feature cache folder are left out.

    Input: file paths, as a DataFrame column ``path`` or a plain list (the
    signature has one unnamed string column). Output: a DataFrame with column
    ``genre`` and one probability column per genre.

    Parameters
    ----------
    pipeline : Pipeline
        The fitted genreclf pipeline.
    name : str, default="model"
        The model's name in the run.
    input_example : sequence of str, optional
        One or a few audio paths; MLflow predicts them once to check the model
        and stores them as the example request.
    registered_model_name : str, optional
        Also register the model under this name.

    Returns
    -------
    info : mlflow.models.model.ModelInfo
        ``info.model_uri`` (``models:/<model id>``) loads the model.

    Notes
    -----
    Loading the model unpickles it, which executes code: load only models you
    trust. (MLflow's skops format is safer but refuses torch objects.)
    """
    import joblib
    import mlflow
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    import genreclf
    from genreclf._pyfunc import PIPELINE_ARTIFACT

    classes = [str(c) for c in pipeline.classes_]
    signature = ModelSignature(
        inputs=Schema([ColSpec("string")]),
        outputs=Schema(
            [ColSpec("string", "genre")] + [ColSpec("double", c) for c in classes]
        ),
    )
    example = None
    if input_example is not None:
        example = pd.DataFrame({"path": [os.fspath(p) for p in input_example]})
    package_dir = os.path.dirname(os.path.abspath(genreclf.__file__))
    with tempfile.TemporaryDirectory() as tmp, _portable(pipeline):
        artifact = os.path.join(tmp, "pipeline.joblib")
        joblib.dump(pipeline, artifact)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=os.path.join(package_dir, "_pyfunc_model.py"),
            artifacts={PIPELINE_ARTIFACT: artifact},
            code_paths=[package_dir],
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            registered_model_name=registered_model_name,
        )


def load_pipeline(model):
    """Load a fitted genreclf pipeline from a logged model or a file.

    Parameters
    ----------
    model : str or path-like
        An MLflow model URI (``runs:/<run id>/model``, ``models:/<model id>``,
        ``models:/<name>/<version>``), a local MLflow model folder, or a
        joblib/pickle file of a pipeline.

    Returns
    -------
    pipeline : Pipeline
        The fitted pipeline (``predict``, ``predict_proba``, ``classes_``).

    Raises
    ------
    FileNotFoundError
        If ``model`` looks like a local path and does not exist.
    ValueError
        If the model is not a genreclf model.

    Notes
    -----
    Loading unpickles, which executes code: load only models you trust.
    """
    model = os.fspath(model)
    is_uri = re.match(r"^[A-Za-z][\w+.-]*:/", model) and not os.path.exists(model)
    if not is_uri and not os.path.exists(model):
        raise FileNotFoundError(f"{model}: no such model folder, file or model URI")
    if os.path.isfile(model):
        import joblib

        pipeline = joblib.load(model)
    else:
        import mlflow

        wrapped = mlflow.pyfunc.load_model(model).unwrap_python_model()
        pipeline = getattr(wrapped, "pipeline", None)
        if pipeline is None:
            raise ValueError(f"{model}: not a genreclf model (no pipeline inside)")
    if not hasattr(pipeline, "predict_proba"):
        raise ValueError(
            f"{model}: not a genreclf pipeline ({type(pipeline).__name__})"
        )
    return pipeline


# --------------------------------------------------------------------------- runs


class TrainingInterrupted(BaseException):
    """Ctrl-C (``SIGINT``) or ``SIGTERM`` during a tracked run.

    Not a ``KeyboardInterrupt``: skorch's ``fit`` swallows those and ends the
    current network's training early, which would then be saved as finished.

    Parameters
    ----------
    signum : int
        The signal received.
    """

    def __init__(self, signum):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


#: Signals caught while MLflow bookkeeping runs, delivered when it is done.
_SIGNALS = {"held": 0, "pending": None}


@contextlib.contextmanager
def _signals_held():
    """Hold Ctrl-C and SIGTERM until the block ends.

    So that a run is never created without being ended, nor a member run
    created without its metrics and end.
    """
    _SIGNALS["held"] += 1
    try:
        yield
    finally:
        _SIGNALS["held"] -= 1
        pending = _SIGNALS["pending"]
        if pending is not None and not _SIGNALS["held"]:
            _SIGNALS["pending"] = None
            raise TrainingInterrupted(pending)


@contextlib.contextmanager
def _signals_interrupt():
    """Make SIGINT and SIGTERM raise :class:`TrainingInterrupted` (main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _SIGNALS["held"]:
            _SIGNALS["pending"] = signum
            return
        raise TrainingInterrupted(signum)

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def tracked_run(experiment_name=None, run_name=None, tags=None, check_server=True):
    """Start (or, under ``mlflow run``, resume) a run that never stays RUNNING.

    The run ends ``FINISHED`` when the block completes, ``KILLED`` on Ctrl-C
    or ``SIGTERM`` (both raise :class:`TrainingInterrupted` meanwhile), and
    ``FAILED`` on any other exception, which propagates.

    Parameters
    ----------
    experiment_name : str, optional
        Experiment to log to (created if needed). Ignored, with a warning,
        under ``mlflow run`` (``MLFLOW_RUN_ID`` set), whose run already belongs
        to the experiment given to ``mlflow run --experiment-name``.
    run_name : str, optional
        The run's name.
    tags : dict, optional
        Tags set on the run.
    check_server : bool, default=True
        Call :func:`check_tracking_server` first, so an unreachable server
        fails at once.

    Yields
    ------
    run : mlflow.ActiveRun
        The active run; nested under the caller's run if one is active.
    """
    import mlflow

    if check_server:
        check_tracking_server()
    if os.environ.get("MLFLOW_RUN_ID"):
        if experiment_name:
            warnings.warn(
                "experiment_name is ignored under `mlflow run`: use "
                "`mlflow run --experiment-name`",
                stacklevel=3,
            )
    elif experiment_name:
        mlflow.set_experiment(experiment_name)
    with _signals_interrupt():
        with _signals_held():
            nested = mlflow.active_run() is not None
            run = mlflow.start_run(run_name=run_name, tags=tags, nested=nested)
        status = "FAILED"
        try:
            yield run
            status = "FINISHED"
        except (KeyboardInterrupt, TrainingInterrupted):
            status = "KILLED"
            raise
        finally:
            active = mlflow.active_run()
            if active is not None and active.info.run_id == run.info.run_id:
                with _signals_held():
                    try:
                        mlflow.end_run(status)
                    except Exception:  # the server went away: nothing more to do
                        if status == "FINISHED":
                            raise


@dataclasses.dataclass
class TrainingResult:
    """What :func:`train_and_log` and :func:`search_and_log` return.

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
    step = pipeline.steps[-1][1]
    if not hasattr(step, "member_callback"):
        raise TypeError(
            f"the last step of the pipeline ({type(step).__name__}) has no "
            "member_callback: expected a genreclf GenreEnsemble"
        )
    return step


def _checked_data(pipeline, X, y, X_eval, y_eval, skip_bad_files):
    """Check training and evaluation files, log what is bad, then fail or drop.

    Uses :func:`genreclf.datasets.check_files` with the pipeline's feature step,
    so the features of the good files are cached for the fit that follows.
    """
    from genreclf.datasets import DatasetWarning, check_files
    from genreclf.features import FeatureExtractionError

    mfcc = pipeline.steps[0][1]
    failures = {}
    with warnings.catch_warnings():
        if not skip_bad_files:  # the error below lists them instead
            warnings.simplefilter("ignore", DatasetWarning)
        X, y, bad = check_files(X, y, on_error="skip", transformer=mfcc)
        _log_bad_files(bad, "training")
        failures.update(bad)
        if X_eval is not None:
            X_eval, y_eval, bad = check_files(
                X_eval, y_eval, on_error="skip", transformer=mfcc
            )
            _log_bad_files(bad, "evaluation")
            failures.update(bad)
    if failures and not skip_bad_files:
        n_files = len(X) + len(failures) + (0 if X_eval is None else len(X_eval))
        raise FeatureExtractionError(failures, n_files=n_files)
    return X, y, X_eval, y_eval, failures


def _member_bar(total):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="networks", unit="net")


def _base_tags(command, tags):
    import genreclf

    out = {"genreclf.version": genreclf.__version__, "genreclf.command": command}
    out.update(tags or {})
    return out


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

    See the module docstring for what is logged. Nothing is trained before the
    tracking server has answered and every file has been read: unreadable files
    make it fail with their complete list, unless ``skip_bad_files``.

    Parameters
    ----------
    pipeline : Pipeline
        An unfitted genreclf pipeline (:func:`genreclf.pipeline.build_pipeline`);
        its last step is a :class:`~genreclf.ensemble.GenreEnsemble`.
    X, y : sequences
        Training files and genres.
    X_eval, y_eval : sequences, optional
        Evaluation files and genres; without them no evaluation is logged.
    dataset_name : str, optional
        Name of the data in the run (``"demo"``, ``"fma_small"``).
    experiment_name, run_name, tags, check_server
        See :func:`tracked_run`.
    checkpoint_dir : str or path-like, optional
        Each member is saved as it finishes (the ensemble's ``checkpoint_dir``)
        in ``<checkpoint_dir>/<run id>/``; by default in a temporary folder.
        Either way it is logged under ``members/`` of the run at once.
    resume : str or path-like, optional
        Reuse the members an interrupted training saved, and train only the
        missing ones: a checkpoint folder (then new members are saved there
        too), or the id of the earlier run (its ``members/`` are downloaded).
        The settings and data must be the same; members that do not match are
        trained again.
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
    genreclf.features.FeatureExtractionError
        If files are unreadable and ``skip_bad_files`` is false.
    TrainingInterrupted
        On Ctrl-C or ``SIGTERM``; the run then ends ``KILLED`` and the members
        finished so far are saved (and logged).
    """
    import mlflow

    ensemble = _ensemble_step(pipeline)
    run_tags = _base_tags("train", tags)
    if resume is not None:
        run_tags["genreclf.resumed_from"] = os.fspath(resume)
    with (
        contextlib.ExitStack() as stack,
        tracked_run(experiment_name, run_name, run_tags, check_server) as run,
    ):
        run_id = run.info.run_id
        mlflow.log_params(flatten_params(pipeline))
        log_dataset(X, y, dataset_name, "training")
        if X_eval is not None:
            log_dataset(X_eval, y_eval, dataset_name, "evaluation")
        X, y, X_eval, y_eval, bad = _checked_data(
            pipeline, X, y, X_eval, y_eval, skip_bad_files
        )
        if resume is not None and os.path.isdir(resume):
            folder = os.fspath(resume)
        elif checkpoint_dir is not None:
            folder = os.path.join(checkpoint_dir, run_id)
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
        if resume is not None and not os.path.isdir(resume):
            fetch_members(resume, folder)
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
        finally:
            ensemble.set_params(**saved)
            if bar is not None:
                bar.close()
        histories = {i: member_history(m) for i, m in enumerate(ensemble.estimators_)}
        mlflow.log_figure(
            plot_training_curves(histories), "figures/training_curves.png"
        )
        metrics = {}
        if X_eval is not None and len(X_eval):
            metrics = evaluate_and_log(pipeline, X_eval, y_eval)
        model_uri = None
        if log_model:
            example = (X_eval if X_eval is not None and len(X_eval) else X)[:1]
            model_uri = log_pipeline_model(pipeline, input_example=example).model_uri
            mlflow.set_tag("genreclf.model_uri", model_uri)
    return TrainingResult(
        run_id=run_id,
        pipeline=pipeline,
        metrics=metrics,
        model_uri=model_uri,
        bad_files=bad,
        child_run_ids=[logger.run_ids_[i] for i in sorted(logger.run_ids_)],
    )


def log_search(search, parent_run_id=None, tracking_uri=None):
    """Log each candidate of a fitted search as a child run.

    Each child run ``candidate-<i>`` gets the candidate's parameters (keyed by
    their scikit-learn paths) and, from ``cv_results_``: ``mean_test_score``,
    ``std_test_score``, ``rank_test_score``, ``mean_fit_time`` and the
    per-split ``split<k>_test_score``. Runs are made through an explicit client
    and run id, so this may be called from any process that reaches the
    tracking server.

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
    """
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(tracking_uri)
    if parent_run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ValueError("no parent_run_id given and no active MLflow run")
        parent_run_id = active.info.run_id
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    results = search.cv_results_
    keys = list(CV_SUMMARY_KEYS)
    keys += sorted(k for k in results if re.fullmatch(r"split\d+_test_score", k))
    run_ids = []
    for i, candidate in enumerate(results["params"]):
        params = [Param(k, _param_text(v)) for k, v in sorted(candidate.items())]
        now = _now_ms()
        metrics = [
            Metric(k, float(results[k][i]), now, 0)
            for k in keys
            if k in results and np.isfinite(float(results[k][i]))
        ]
        with _signals_held():
            run = client.create_run(
                experiment_id,
                run_name=f"candidate-{i}",
                tags={_PARENT_TAG: parent_run_id, "genreclf.candidate_index": str(i)},
            )
            client.log_batch(run.info.run_id, metrics=metrics, params=params)
            client.set_terminated(run.info.run_id, "FINISHED")
        run_ids.append(run.info.run_id)
    return run_ids


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
    (``search.param_grid``), ``best.<param path>`` for each best parameter,
    ``best_cv_score``, ``cv_results.csv``; then the refitted best pipeline's
    evaluation and model, as in :func:`train_and_log`. Each candidate is a
    child run (:func:`log_search`).

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
        :func:`log_search` from this process.

    Returns
    -------
    result : TrainingResult
        With ``search`` (the fitted search), ``pipeline`` (its best estimator,
        if refitted) and ``child_run_ids`` (one per candidate).
    """
    import mlflow
    import pandas as pd

    with tracked_run(
        experiment_name, run_name, _base_tags("search", tags), check_server
    ) as run:
        base = search.estimator
        mlflow.log_params(flatten_params(base))
        grid = getattr(
            search, "param_grid", getattr(search, "param_distributions", None)
        )
        mlflow.log_params(
            {
                "search.class": type(search).__name__,
                "search.grid": _shorten(_param_text(grid), 6000),
                "search.cv": _param_text(search.cv),
                "search.scoring": _param_text(search.scoring),
            }
        )
        log_dataset(X, y, dataset_name, "training")
        if X_eval is not None:
            log_dataset(X_eval, y_eval, dataset_name, "evaluation")
        X, y, X_eval, y_eval, bad = _checked_data(
            base, X, y, X_eval, y_eval, skip_bad_files
        )
        X, y = np.asarray(X, dtype=object), np.asarray(y)
        if fit is None:
            search.fit(X, y)
            child_ids = log_search(search, run.info.run_id)
        else:
            child_ids = fit(search, X, y, parent_run_id=run.info.run_id)
        mlflow.log_params(
            {f"best.{k}": _param_text(v) for k, v in search.best_params_.items()}
        )
        mlflow.log_metric("best_cv_score", float(search.best_score_))
        frame = pd.DataFrame(search.cv_results_)
        frame["params"] = [_param_text(p) for p in frame["params"]]
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp, "cv_results.csv")
            frame.to_csv(csv, index=False)
            mlflow.log_artifact(str(csv))
        best = getattr(search, "best_estimator_", None)
        metrics, model_uri = {}, None
        if best is not None and X_eval is not None and len(X_eval):
            metrics = evaluate_and_log(best, X_eval, y_eval)
        if best is not None and log_model:
            example = (X_eval if X_eval is not None and len(X_eval) else X)[:1]
            model_uri = log_pipeline_model(best, input_example=example).model_uri
            mlflow.set_tag("genreclf.model_uri", model_uri)
    return TrainingResult(
        run_id=run.info.run_id,
        pipeline=best,
        metrics=metrics,
        model_uri=model_uri,
        bad_files=bad,
        search=search,
        child_run_ids=child_ids,
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
        :func:`evaluate_and_log`.
    """
    import mlflow

    if check_server:
        check_tracking_server()
    pipeline = load_pipeline(model)
    with tracked_run(
        experiment_name, run_name, _base_tags("evaluate", tags), check_server=False
    ) as run:
        mlflow.log_param("model_uri", os.fspath(model))
        log_dataset(X, y, dataset_name, "evaluation")
        _, _, X, y, bad = _checked_data(pipeline, [], [], X, y, skip_bad_files)
        metrics = evaluate_and_log(pipeline, X, y)
    return TrainingResult(
        run_id=run.info.run_id, pipeline=pipeline, metrics=metrics, bad_files=bad
    )
