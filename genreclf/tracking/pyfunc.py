"""The class MLflow runs to serve a logged genreclf model (``mlflow.pyfunc``).

This module imports MLflow when it is imported; :mod:`genreclf.tracking`
imports it only when a model is logged or loaded, and MLflow imports it when
it loads a logged model (through the models-from-code file
``genreclf/tracking/_model_code.py``).

Why this format: MLflow's sklearn flavor saves with skops by default, which
refuses torch objects unless their types are trusted one by one; its pickle
option loses the control over inputs and outputs. A ``PythonModel`` that loads
the joblib-pickled pipeline from an artifact takes file paths or the audio
itself in (see :mod:`genreclf.rows`: a column ``path``, a column ``audio`` of
bytes, base64 text in JSON, with an optional ``filename``, or a plain list of
paths) and gives genre names and class probabilities out. The genreclf package travels
with the model (``code_paths``), so the model loads where genreclf is not
installed.

Loading a model unpickles it, which executes code: load models only from
sources you trust.
"""

import mlflow.pyfunc
import numpy as np
import pandas as pd

__all__ = [
    "CARD_ARTIFACT",
    "PARAMS",
    "PIPELINE_ARTIFACT",
    "GenrePyfuncModel",
    "paths_from_input",
]

#: The name of the pickled pipeline among a logged model's artifacts.
PIPELINE_ARTIFACT = "pipeline"
#: The name of the model card (Markdown) among a logged model's artifacts.
CARD_ARTIFACT = "model_card"
#: The inference parameters of the model (``params`` of a request) and their
#: defaults: top-k columns, failed rows answered (``"row"``: an ``error``
#: column) or the whole request refused (``"raise"``: HTTP 400 naming them).
PARAMS = {"top_k": 0, "on_error": "raise", "windows": False}


def paths_from_input(model_input):
    """Return the list of file paths in a pyfunc input.

    Parameters
    ----------
    model_input : DataFrame, Series, ndarray, list or str
        A DataFrame with a ``path`` column (or a single column), a Series, an
        array or list of paths, or one path.

    Returns
    -------
    paths : list of str
        The paths, in input order.

    Raises
    ------
    ValueError
        If a DataFrame has several columns and none is called ``path``.

    Examples
    --------
    >>> import pandas as pd
    >>> paths_from_input(pd.DataFrame({"path": ["a.wav", "b.mp3"]}))
    ['a.wav', 'b.mp3']
    >>> paths_from_input(["a.wav"])
    ['a.wav']
    """
    if isinstance(model_input, pd.DataFrame):
        if "path" in model_input.columns:
            column = model_input["path"]
        elif model_input.shape[1] == 1:
            column = model_input.iloc[:, 0]
        else:
            raise ValueError(
                "expected a DataFrame with a 'path' column of audio file paths, got "
                f"columns {list(model_input.columns)}"
            )
        return [str(p) for p in column.tolist()]
    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, dict) and "path" in model_input:
        return paths_from_input(list(np.ravel(model_input["path"])))
    return [str(p) for p in np.ravel(np.asarray(model_input, dtype=object))]


class GenrePyfuncModel(mlflow.pyfunc.PythonModel):
    """A fitted genreclf pipeline as an MLflow ``pyfunc`` model.

    The pipeline itself is an artifact (``pipeline``, a joblib pickle) loaded in
    :meth:`load_context`; this object holds no state of its own.

    Attributes
    ----------
    pipeline : Pipeline
        The fitted pipeline, set by :meth:`load_context`.
    """

    def load_context(self, context):
        """Load the pickled pipeline from the model's artifacts."""
        import joblib

        self.pipeline = joblib.load(context.artifacts[PIPELINE_ARTIFACT])

    def predict(self, context, model_input, params=None):
        """Predict the genre of each clip of a request.

        Parameters
        ----------
        context : PythonModelContext
            MLflow's context (unused after :meth:`load_context`).
        model_input : DataFrame, list of str or dict
            Rows of paths and/or audio bytes (see
            :func:`genreclf.rows.rows_from_input`).
        params : dict, optional
            ``top_k`` (int, default 0): also ``genre_<i>`` and
            ``probability_<i>`` columns for the most probable genres;
            ``on_error`` (``"raise"``, default, or ``"row"``): refuse a request
            with a failed row, or answer it with an ``error`` column;
            ``windows`` is for ``genreclf serve`` and ignored here. Limits:
            ``GENRECLF_MAX_BYTES`` and ``GENRECLF_MAX_DURATION``
            (:class:`genreclf.rows.Limits`).

        Returns
        -------
        frame : DataFrame
            Column ``genre`` and one probability column per genre (then the
            top-k columns, then ``error`` when rows failed and ``on_error`` is
            ``"row"``).

        Raises
        ------
        mlflow.exceptions.MlflowException
            With ``on_error="raise"``, when a row fails (the message names
            every failed row, its clip and the reason), or when the input
            holds no paths or audio; a served model answers 400 with it.
        """
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from genreclf.exceptions import AudioLoadError
        from genreclf.rows import predict_rows

        params = {**PARAMS, **(params or {})}
        if params["on_error"] not in ("raise", "row"):
            raise MlflowException(
                "the 'on_error' parameter must be 'raise' or 'row', got "
                f"{params['on_error']!r}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        try:
            answer = predict_rows(self.pipeline, model_input)
        except (AudioLoadError, ValueError) as exc:
            # MLflow's server answers 400 with this message instead of a
            # generic one.
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        if answer.errors and params["on_error"] == "raise":
            raise MlflowException(
                f"{len(answer.errors)} of {len(answer.labels)} row(s) could not be "
                f"predicted: {answer.message()}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        return answer.frame(top_k=int(params["top_k"]))


def set_model():
    """Declare a :class:`GenrePyfuncModel` as the model of a models-from-code file."""
    mlflow.models.set_model(GenrePyfuncModel())
