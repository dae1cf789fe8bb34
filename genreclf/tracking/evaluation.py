"""Evaluation of a fitted pipeline: metrics, confusion matrix, training curves.

:func:`evaluate_and_log` logs them to the active run. The other functions are
pure (no MLflow); figures are drawn on a :class:`matplotlib.figure.Figure`
without pyplot, so no display is needed.
"""

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from genreclf.tracking.storage import artifact_write

__all__ = [
    "evaluate_and_log",
    "evaluation_metrics",
    "plot_confusion_matrix",
    "plot_training_curves",
    "safe_key",
]

_KEY_BAD = re.compile(r"[^\w.\- /:]")


def safe_key(text):
    """Return ``text`` with the characters MLflow refuses in a key replaced by ``_``.

    Examples
    --------
    >>> safe_key("eval_accuracy_R&B")
    'eval_accuracy_R_B'
    """
    return _KEY_BAD.sub("_", str(text))


def evaluation_metrics(y_true, y_pred, labels=None, prefix="eval_"):
    """Accuracy, macro-F1 and per-genre accuracy of predictions.

    Parameters
    ----------
    y_true, y_pred : sequences of str
        True and predicted genres.
    labels : sequence of str, optional
        The genres to report; by default those found in either sequence.
    prefix : str, default="eval\\_"
        Put in front of every key.

    Returns
    -------
    metrics : dict of str to float
        ``<prefix>accuracy``, ``<prefix>f1_macro`` and, for each genre present
        in ``y_true``, ``<prefix>accuracy_<genre>``: the fraction of that
        genre's clips predicted correctly (its recall). Characters MLflow does
        not accept in a key are replaced by ``_``.

    Examples
    --------
    >>> m = evaluation_metrics(["rock", "rock", "pop"], ["rock", "pop", "pop"])
    >>> m["eval_accuracy"], m["eval_accuracy_rock"], m["eval_accuracy_pop"]
    (0.6666666666666666, 0.5, 1.0)
    """
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    labels = [str(label) for label in labels]
    metrics = {
        f"{prefix}accuracy": float(accuracy_score(y_true, y_pred)),
        f"{prefix}f1_macro": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
    }
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = set(y_true)
    for label, recall in zip(labels, recalls, strict=True):
        if label in present:
            metrics[safe_key(f"{prefix}accuracy_{label}")] = float(recall)
    return metrics


def plot_confusion_matrix(y_true, y_pred, labels=None):
    """Confusion matrix of genre predictions as a matplotlib figure.

    Parameters
    ----------
    y_true, y_pred : sequences of str
        True and predicted genres.
    labels : sequence of str, optional
        Row and column order; by default the sorted genres found.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Counts, with true genres as rows; drawn without pyplot (no display).
    """
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    size = 2.5 + 0.6 * len(labels)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, ax=ax, colorbar=False, xticks_rotation=45
    )
    ax.set_title("Confusion matrix (evaluation split)")
    return fig


def plot_training_curves(histories):
    """Per-epoch losses and validation accuracy of the ensemble members.

    Parameters
    ----------
    histories : dict of int to dict
        For each member index, ``{epoch: {"train_loss": ..., "valid_loss": ...,
        "valid_acc": ...}}`` (any key may be missing).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: training (solid) and validation (dashed) loss; right:
        validation accuracy; one colour per member.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for index, history in sorted(histories.items()):
        epochs = sorted(history)
        color = f"C{index % 10}"
        for key, style in (("train_loss", "-"), ("valid_loss", "--")):
            points = [(e, history[e][key]) for e in epochs if key in history[e]]
            if points:
                loss_ax.plot(
                    *zip(*points, strict=True),
                    style,
                    color=color,
                    label=f"member {index} {key.split('_')[0]}",
                )
        points = [
            (e, history[e]["valid_acc"]) for e in epochs if "valid_acc" in history[e]
        ]
        if points:
            acc_ax.plot(
                *zip(*points, strict=True), color=color, label=f"member {index}"
            )
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Validation accuracy")
    for ax in (loss_ax, acc_ax):
        if ax.lines:
            ax.legend(fontsize="x-small")
    return fig


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
    prefix : str, default="eval\\_"
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
    figure = "figures/confusion_matrix.png"
    with artifact_write(f"the confusion-matrix figure {figure}"):
        mlflow.log_figure(plot_confusion_matrix(y_true, y_pred, labels), figure)
    report = classification_report(y_true, y_pred, labels=labels, zero_division=0)
    text = "evaluation/classification_report.txt"
    with artifact_write(f"the classification report {text}"):
        mlflow.log_text(report, text)
    frame = pd.DataFrame(
        {"path": [os.fspath(p) for p in paths], "genre": y_true, "predicted": y_pred}
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, "predictions.csv")
        frame.to_csv(csv, index=False)
        with artifact_write("the predictions evaluation/predictions.csv"):
            mlflow.log_artifact(str(csv), "evaluation")
    return metrics
