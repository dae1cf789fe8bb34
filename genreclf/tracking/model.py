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

__all__ = ["load_pipeline", "log_pipeline_model"]

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


def log_pipeline_model(
    pipeline, name="model", input_example=None, registered_model_name=None
):
    """Log a fitted pipeline as an MLflow ``pyfunc`` model in the active run.

    The pipeline is pickled with joblib into the model's artifacts and served
    by :class:`genreclf.tracking.pyfunc.GenrePyfuncModel`; the genreclf package
    is copied into the model (``code_paths``), so it loads where genreclf is
    not installed. Member callbacks and the feature cache folder are left out.

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
    from genreclf.tracking.pyfunc import PIPELINE_ARTIFACT

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
    model_code = os.path.join(package_dir, "tracking", "_model_code.py")
    with tempfile.TemporaryDirectory() as tmp, _portable(pipeline):
        artifact = os.path.join(tmp, "pipeline.joblib")
        joblib.dump(pipeline, artifact)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=model_code,
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
