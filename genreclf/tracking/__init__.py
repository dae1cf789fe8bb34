"""Experiment tracking with MLflow: one run per training, search or evaluation.

This is the only package of genreclf that uses MLflow, and it imports it inside
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

The package reads in the order of a run:

- :mod:`~genreclf.tracking.server`: check that the tracking store answers;
- :mod:`~genreclf.tracking.runs`: a run that always ends, signals held during
  bookkeeping, the parent tag of child runs;
- :mod:`~genreclf.tracking.params`: the one function that writes a parameter
  value as text, and :func:`flatten_params`;
- :mod:`~genreclf.tracking.data`: the data's summary and its bad files;
- :mod:`~genreclf.tracking.members`: one nested run per ensemble member;
- :mod:`~genreclf.tracking.search`: the one writer of search candidate runs;
- :mod:`~genreclf.tracking.evaluation`: metrics, figures and report;
- :mod:`~genreclf.tracking.model` (and :mod:`~genreclf.tracking.pyfunc`): the
  logged model;
- :mod:`~genreclf.tracking.workflows`: training, search and evaluation runs.
"""

from genreclf.exceptions import TrackingServerError, TrainingInterrupted
from genreclf.tracking.data import describe_dataset, log_dataset
from genreclf.tracking.evaluation import (
    evaluate_and_log,
    evaluation_metrics,
    plot_confusion_matrix,
    plot_training_curves,
)
from genreclf.tracking.members import MemberLogger, fetch_members
from genreclf.tracking.model import load_pipeline, log_pipeline_model
from genreclf.tracking.params import flatten_params
from genreclf.tracking.runs import signals_held as _signals_held
from genreclf.tracking.runs import signals_interrupt as _signals_interrupt
from genreclf.tracking.runs import tracked_run
from genreclf.tracking.search import log_search
from genreclf.tracking.server import check_tracking_server
from genreclf.tracking.workflows import (
    TrainingResult,
    evaluate_model,
    search_and_log,
    train_and_log,
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
    "fetch_members",
    "flatten_params",
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
