"""MLflow "models from code" entry: the model class of a logged genreclf model.

MLflow copies this file into each logged model and runs it when the model is
loaded (``mlflow.pyfunc.log_model(python_model=<this file>)``), instead of
unpickling a wrapper object; the fitted pipeline itself is an artifact.
Imported as part of the package (``genreclf._pyfunc_model``), it does nothing.
"""

import mlflow

from genreclf._pyfunc import GenrePyfuncModel

if __name__ != "genreclf._pyfunc_model":
    mlflow.models.set_model(GenrePyfuncModel())
