"""A fitted pipeline as an MLflow model: logging it, and loading it back.

The model is an MLflow ``pyfunc`` model whose class is
:class:`genreclf.tracking.pyfunc.GenrePyfuncModel`, declared by the
models-from-code file ``_model_code.py``; the fitted pipeline is a joblib
artifact, and the genreclf package travels with the model (``code_paths``).
"""

import contextlib
import os
import re
import tempfile

from genreclf.tracking.storage import artifact_write

__all__ = ["load_pipeline", "log_calibration", "log_pipeline_model"]

#: The input columns of a logged model, as its ``metadata`` states them.
_INPUT_COLUMNS = {
    "path": "string: an audio file on the server's disk",
    "audio": "binary: the audio itself (base64 text in JSON)",
    "filename": "string, optional: the audio's name, whose extension hints at "
    "the format",
}
#: A first example file up to this size is shown whole in the bytes form.
_EXAMPLE_BYTES = 1 << 20

#: Distributions whose versions are pinned in a logged model's requirements.
_REQUIREMENTS = (
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
)


def _requirements():
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in _REQUIREMENTS:
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
    from genreclf.pipeline import STEP_NAMES

    feature_step = STEP_NAMES[0]
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


def _input_example(paths):
    """Both forms of a request: the first file by path, then by its bytes."""
    import pandas as pd

    paths = [os.fspath(p) for p in paths]
    if not paths:
        return None
    first = paths[0]
    try:
        with open(first, "rb") as f:
            audio = f.read(_EXAMPLE_BYTES + 1)
    except OSError:
        audio = b""
    if not audio or len(audio) > _EXAMPLE_BYTES:
        audio = _short_wav(first)
    if audio is None:  # no bytes form to show: paths only, as before
        return pd.DataFrame({"path": paths})
    return pd.DataFrame(
        {
            "path": [*paths, None],
            "audio": [None] * len(paths) + [audio],
            "filename": [None] * len(paths) + [os.path.basename(first)],
        }
    )


def _short_wav(path, seconds=5.0):
    """The first seconds of a file as WAV bytes, or None when unreadable."""
    import io

    import soundfile as sf

    from genreclf.audio import load_audio

    try:
        y = load_audio(path, sr=22050, duration=seconds)
    except Exception:  # the example is only an illustration
        return None
    out = io.BytesIO()
    sf.write(out, y, 22050, format="WAV", subtype="PCM_16")
    return out.getvalue()


def log_calibration(pipeline):
    """Log the ensemble's calibration to the active run; return its summary.

    Metrics ``calibration_temperature`` (whole clips),
    ``calibration_temperature_short`` (one-window clips, when fitted),
    ``calibration_ece_before`` and
    ``calibration_ece_after`` (expected calibration error on the held-out
    clips the temperature was fitted on, those of the members or of the
    calibration net, before and after temperature scaling), the tag
    ``genreclf.calibration_source`` (``members`` or ``calibration net``) and
    ``figures/reliability_diagram.png``.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted genreclf pipeline.

    Returns
    -------
    summary : dict or None
        ``temperature``, ``short_temperature`` (None without one),
        ``ece_before``, ``ece_after``, ``n_clips`` (rows: held-out clips and
        excerpts), ``n_excerpts``, ``source``; None when the ensemble was not
        calibrated
        (``ensemble__calibrate=False`` or no held-out clips).
    """
    import mlflow
    import numpy as np

    from genreclf.calibration import (
        apply_temperature,
        expected_calibration_error,
        plot_reliability,
    )

    ensemble = pipeline.steps[-1][1]
    held_out = getattr(ensemble, "calibration_", None)
    if held_out is None:
        return None
    temperature = float(ensemble.temperature_)
    windows = getattr(held_out, "windows", None)  # older models: whole clips only
    if windows is None:
        windows = np.ones(len(held_out.y), dtype=int)
    after = apply_temperature(held_out.proba, ensemble.clip_temperatures(windows))
    short = getattr(ensemble, "short_temperature_", None)
    summary = {
        "temperature": temperature,
        "short_temperature": None if short is None else float(short),
        "n_excerpts": int(np.sum(windows == 1)) if short is not None else 0,
        "ece_before": expected_calibration_error(held_out.proba, held_out.y),
        "ece_after": expected_calibration_error(after, held_out.y),
        "n_clips": int(len(held_out.y)),
        "source": getattr(held_out, "source", "members"),
    }
    mlflow.log_metrics(
        {
            "calibration_temperature": summary["temperature"],
            "calibration_ece_before": summary["ece_before"],
            "calibration_ece_after": summary["ece_after"],
        }
    )
    if short is not None:
        mlflow.log_metric("calibration_temperature_short", summary["short_temperature"])
    mlflow.set_tag("genreclf.calibration_source", summary["source"])
    figure = "figures/reliability_diagram.png"
    with artifact_write(f"the reliability diagram {figure}"):
        mlflow.log_figure(plot_reliability(held_out.y, held_out.proba, after), figure)
    return summary


def log_pipeline_model(
    pipeline, name="model", input_example=None, registered_model_name=None
):
    """Log a fitted pipeline as an MLflow ``pyfunc`` model in the active run.

    The pipeline is pickled with joblib into the model's artifacts and served
    by :class:`genreclf.tracking.pyfunc.GenrePyfuncModel`; the genreclf package
    is copied into the model (``code_paths``), so it loads where genreclf is
    not installed. Member callbacks and the feature cache folder are left out.
    The model carries its card (``artifacts/model_card.md``, also logged to
    the run as ``model_card.md``), and the ensemble's calibration is logged
    to the run (:func:`log_calibration`).

    Input (:mod:`genreclf.rows`): a column ``path`` of file paths and/or a
    column ``audio`` of the audio bytes (base64 text in JSON) with an
    optional ``filename``, or a plain list of paths. The signature lists the
    output and the inference parameters (``top_k``, ``on_error``); it has no
    input schema, because MLflow drops a plain list of paths under a schema of
    named columns, and a list of paths is what earlier clients send; the
    input columns are in the model's ``metadata`` and its input example shows
    both forms. Output: a DataFrame with column ``genre`` and one probability
    column per genre.

    Parameters
    ----------
    pipeline : Pipeline
        The fitted genreclf pipeline.
    name : str, default="model"
        The model's name in the run.
    input_example : sequence of str, optional
        One or a few audio paths; the example request holds them and the
        bytes of the first (MLflow predicts it once to check the model).
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
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    import genreclf
    from genreclf.tracking.card import CARD_FILE, model_card
    from genreclf.tracking.pyfunc import CARD_ARTIFACT, PARAMS, PIPELINE_ARTIFACT

    classes = [str(c) for c in pipeline.classes_]
    kinds = {bool: "boolean", int: "long", str: "string"}
    signature = ModelSignature(
        inputs=None,
        outputs=Schema(
            [ColSpec("string", "genre")] + [ColSpec("double", c) for c in classes]
        ),
        params=ParamSchema(
            [ParamSpec(k, kinds[type(v)], v) for k, v in PARAMS.items()]
        ),
    )
    example = None if input_example is None else _input_example(input_example)
    active = mlflow.active_run()
    calibration = log_calibration(pipeline) if active is not None else None
    card = model_card(
        pipeline, None if active is None else active.info.run_id, calibration
    )
    if active is not None:
        with artifact_write(f"the model card {CARD_FILE}"):
            mlflow.log_text(card, CARD_FILE)
    package_dir = os.path.dirname(os.path.abspath(genreclf.__file__))
    model_code = os.path.join(package_dir, "tracking", "_model_code.py")
    with tempfile.TemporaryDirectory() as tmp, _portable(pipeline):
        artifact = os.path.join(tmp, "pipeline.joblib")
        joblib.dump(pipeline, artifact)
        card_path = os.path.join(tmp, CARD_FILE)
        with open(card_path, "w", encoding="utf-8") as f:
            f.write(card)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=model_code,
            artifacts={PIPELINE_ARTIFACT: artifact, CARD_ARTIFACT: card_path},
            code_paths=[package_dir],
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            registered_model_name=registered_model_name,
            metadata={"genreclf_inputs": _INPUT_COLUMNS, "genres": classes},
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
