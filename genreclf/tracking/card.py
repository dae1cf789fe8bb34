"""The model card: a short Markdown page that travels with every logged model.

:func:`model_card` writes what a user of a model needs before trusting it:
the genres it knows, the data it was trained on (counts per genre and the
digest of the file list), its settings, its evaluation (metrics and a
confusion matrix), its calibration, and its known limits. It reads the
run's logged parameters, metrics and evaluation predictions where the model
is logged inside a run (:func:`genreclf.tracking.log_pipeline_model`), and the
pipeline alone otherwise. :func:`read_model_card` finds the card of any
logged model (``genreclf describe``).
"""

import os

import numpy as np

__all__ = ["CARD_FILE", "model_card", "model_file", "read_model_card"]

#: File name of the card, in the model's artifacts and in the run.
CARD_FILE = "model_card.md"

#: Settings shown in the card, as short option names of ``build_pipeline``.
_SETTINGS = (
    "duration",
    "n_mfcc",
    "loudness",
    "pad",
    "window",
    "window_hop",
    "combine",
    "filters",
    "dense",
    "head",
    "max_epochs",
    "batch_size",
    "lr",
    "valid_size",
)


def _run_data(run_id):
    """Params, metrics and the evaluation predictions of a run (or empties)."""
    if run_id is None:
        return {}, {}, None
    import mlflow

    run = mlflow.MlflowClient().get_run(run_id)
    predictions = None
    try:
        import pandas as pd

        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="evaluation/predictions.csv"
        )
        predictions = pd.read_csv(local, dtype=str, keep_default_na=False)
    except Exception:  # no evaluation in this run
        predictions = None
    return dict(run.data.params), dict(run.data.metrics), predictions


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _name(params, context):
    name = params.get(f"data.{context}.name")
    return None if name in (None, "", "None") else name


def _data_section(params, context):
    prefix = f"data.{context}."
    if f"{prefix}n_clips" not in params:
        return None
    counts = {
        k[len(prefix) + len("count.") :]: v
        for k, v in params.items()
        if k.startswith(f"{prefix}count.")
    }
    name = _name(params, context) or "unnamed"
    lines = [
        f"- data set: {name}, {params[f'{prefix}n_clips']} clips",
        f"- digest of the file list (SHA-256): `{params.get(f'{prefix}digest', '?')}`",
        "",
        *_table(["genre", "clips"], sorted(counts.items())),
    ]
    return lines


def _confusion(predictions, classes):
    labels = sorted(set(predictions["genre"]) | set(predictions["predicted"]))
    labels = [c for c in classes if c in labels] + [
        c for c in labels if c not in classes
    ]
    index = {c: i for i, c in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for true, pred in zip(predictions["genre"], predictions["predicted"], strict=True):
        matrix[index[true], index[pred]] += 1
    rows = [[f"**{c}**", *matrix[i].tolist()] for i, c in enumerate(labels)]
    return _table(["true \\ predicted", *labels], rows)


def _settings(pipeline):
    from genreclf.pipeline import OPTION_PATHS

    params = pipeline.get_params(deep=True)
    rows = []
    for name in _SETTINGS:
        path = OPTION_PATHS.get(name)
        if path in params:
            rows.append((name, f"`{params[path]!r}`"))
    ensemble = pipeline.steps[-1][1]
    rows.append(("n_members", len(getattr(ensemble, "estimators_", ()))))
    return rows


#: Who held out the clips that the temperature was fitted on, in words.
_CALIBRATION_SOURCES = {
    "members": "the members",
    "calibration net": "a calibration net (a sixth fit of the net, not voting, "
    "trained on the other clips)",
}


def model_card(pipeline, run_id=None, calibration=None):
    """Write the Markdown card of a fitted genreclf pipeline.

    Parameters
    ----------
    pipeline : Pipeline
        The fitted pipeline.
    run_id : str, optional
        The run that trained it: its data summary, metrics and evaluation
        predictions go in the card.
    calibration : dict, optional
        ``temperature``, ``ece_before``, ``ece_after`` and ``n_clips`` (as
        logged by :func:`genreclf.tracking.log_pipeline_model`).

    Returns
    -------
    card : str
        Markdown, ending with a newline.
    """
    classes = [str(c) for c in pipeline.classes_]
    params, metrics, predictions = _run_data(run_id)
    lines = [
        "# genreclf model card",
        "",
        f"Classifies a music recording into one of {len(classes)} genres: "
        + ", ".join(classes)
        + ".",
        "",
        "Input: audio files or bytes (mp3, wav, ogg, flac; any rate and "
        "channels). Output: the genre and a probability per genre.",
    ]
    if run_id is not None:
        lines += ["", f"Trained in MLflow run `{run_id}`."]
    lines += ["", "## Training data", ""]
    lines += _data_section(params, "training") or ["Not recorded with this model."]
    lines += ["", "## Settings", "", *_table(["setting", "value"], _settings(pipeline))]
    lines += ["", "## Evaluation", ""]
    evaluation = _data_section(params, "evaluation")
    if evaluation is None or "eval_accuracy" not in metrics:
        lines += ["Not evaluated: no held-out data was given to the training."]
    else:
        lines += evaluation
        lines += [
            "",
            f"- accuracy: {metrics['eval_accuracy']:.4f}",
            f"- macro F1: {metrics.get('eval_f1_macro', float('nan')):.4f}",
        ]
        per_genre = sorted(
            (k[len("eval_accuracy_") :], v)
            for k, v in metrics.items()
            if k.startswith("eval_accuracy_")
        )
        if per_genre:
            lines += ["", *_table(["genre", "accuracy (recall)"], [
                (g, f"{v:.3f}") for g, v in per_genre
            ])]
        if predictions is not None and len(predictions):
            lines += ["", "Confusion matrix (rows: true genre):", ""]
            lines += _confusion(predictions, classes)
        lines += ["", "Figure: `figures/confusion_matrix.png` of the run."]
    lines += ["", "## Calibration", ""]
    if calibration:
        excerpts = calibration.get("n_excerpts", 0)
        short = calibration.get("short_temperature")
        if short is None:
            what = f"T = {calibration['temperature']:.3f}"
        else:
            what = (
                f"T = {calibration['temperature']:.3f} for whole clips, "
                f"{short:.3f} for clips of one window, in between for clips "
                "in between"
            )
        rows = f"{calibration['n_clips'] - excerpts} clips"
        if excerpts:
            rows += (
                f" and {excerpts} excerpts from their middle (one window and "
                "two thirds of one)"
            )
        lines += [
            f"Temperature scaling ({what}) fitted on {rows} held out by "
            f"{_CALIBRATION_SOURCES[calibration.get('source', 'members')]}: expected "
            f"calibration error {calibration['ece_before']:.4f} before, "
            f"{calibration['ece_after']:.4f} after (on those same clips). "
            "Figure: `figures/reliability_diagram.png` of the run."
        ]
    else:
        lines += ["Not calibrated: the probabilities are the nets' soft vote."]
    duration = pipeline.get_params(deep=True).get("mfcc__duration")
    name = _name(params, "training") or "the training data"
    lines += [
        "",
        "## Known limits",
        "",
        f"- Knows only the {len(classes)} genres above: every recording gets one "
        "of them, even music of another genre or no music at all.",
        f"- Listens to the first {duration} s of a recording"
        if duration
        else "- Listens to the whole recording",
        f"- Trained on {name}; not tested on recordings other than its evaluation "
        "split (other sources, recording chains or eras may score lower).",
        "- Probabilities are calibrated on held-out clips of the training data, "
        "not on the recordings it will meet.",
    ]
    return "\n".join(lines) + "\n"


def model_file(model_uri, relative):
    """Download one file of a logged model and return its local path.

    Parameters
    ----------
    model_uri : str
        ``runs:/...``, ``models:/<model id>``, ``models:/<name>@<alias>``,
        ``models:/<name>/<version>`` or any artifact URI of a model folder.
    relative : str
        The file's path inside the model (``artifacts/model_card.md``).

    Returns
    -------
    path : str

    Raises
    ------
    mlflow.exceptions.MlflowException, OSError
        If there is no such model or file.
    """
    import mlflow

    root = model_uri.rstrip("/")
    if root.startswith("models:/"):
        # MLflow resolves no path below a models:/ URI: find the model's folder
        from mlflow.store.artifact.models_artifact_repo import (
            ModelsArtifactRepository,
        )

        root = ModelsArtifactRepository.get_underlying_uri(root).rstrip("/")
    return mlflow.artifacts.download_artifacts(artifact_uri=f"{root}/{relative}")


def read_model_card(model):
    """Return the card of a logged model, or write one for a pickled pipeline.

    Parameters
    ----------
    model : str or path-like
        A model URI (``runs:/``, ``models:/<name>@<alias>``, ...), a local
        MLflow model folder, or a joblib file of a pipeline.

    Returns
    -------
    card : str
        Markdown.

    Raises
    ------
    FileNotFoundError
        If the model does not exist.
    """
    from genreclf.tracking.model import load_pipeline

    model = os.fspath(model)
    if os.path.isfile(model):
        return model_card(load_pipeline(model))
    import mlflow

    inside = f"artifacts/{CARD_FILE}"
    try:
        if os.path.isdir(model):
            local = os.path.join(model, inside)
        else:
            local = model_file(model, inside)
        with open(local, encoding="utf-8") as f:
            return f.read()
    except (OSError, mlflow.exceptions.MlflowException):
        # a model logged before cards existed: describe what it holds
        return model_card(load_pipeline(model))
