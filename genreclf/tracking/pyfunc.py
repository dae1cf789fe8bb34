"""The class MLflow runs to serve a logged genreclf model (``mlflow.pyfunc``).

This module imports MLflow when it is imported; :mod:`genreclf.tracking`
imports it only when a model is logged or loaded, and MLflow imports it when
it loads a logged model (through the models-from-code file
``genreclf/tracking/_model_code.py``).

Why this format: MLflow's sklearn flavor saves with skops by default, which
refuses torch objects unless their types are trusted one by one; its pickle
option loses the control over inputs and outputs. A ``PythonModel`` that loads
the joblib-pickled pipeline from an artifact takes file paths in (a DataFrame
column ``path`` or a plain list) and gives genre names and class probabilities
out (:func:`genreclf.prediction.predict_table`). The genreclf package travels
with the model (``code_paths``), so the model loads where genreclf is not
installed.

Loading a model unpickles it, which executes code: load models only from
sources you trust.
"""

import mlflow.pyfunc
import numpy as np
import pandas as pd

__all__ = ["PIPELINE_ARTIFACT", "GenrePyfuncModel", "paths_from_input"]

#: The name of the pickled pipeline among a logged model's artifacts.
PIPELINE_ARTIFACT = "pipeline"


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

    def predict(self, context, model_input: pd.DataFrame, params=None):
        """Predict the genre of each audio file.

        Parameters
        ----------
        context : PythonModelContext
            MLflow's context (unused after :meth:`load_context`).
        model_input : DataFrame or list of str
            Audio file paths: a DataFrame column ``path`` or a plain list.
        params : dict, optional
            Unused.

        Returns
        -------
        frame : DataFrame
            Column ``genre`` and one probability column per genre.

        Raises
        ------
        mlflow.exceptions.MlflowException
            When files cannot be read (the message names every one) or the
            input holds no paths; a served model answers 400 with it.
        """
        from genreclf.exceptions import AudioLoadError
        from genreclf.prediction import predict_table

        try:
            paths = paths_from_input(model_input)
            return predict_table(self.pipeline, paths, on_error="raise").frame()
        except (AudioLoadError, ValueError) as exc:
            # MLflow's server answers 400 with this message (naming the bad
            # files) instead of a generic one.
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc


def set_model():
    """Declare a :class:`GenrePyfuncModel` as the model of a models-from-code file."""
    mlflow.models.set_model(GenrePyfuncModel())
