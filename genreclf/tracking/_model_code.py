"""MLflow "models from code" entry: the model class of a logged genreclf model.

MLflow copies this file into each logged model and runs it when the model is
loaded (``mlflow.pyfunc.log_model(python_model=<this file>)``), instead of
unpickling a wrapper object; the fitted pipeline itself is an artifact.
Imported as part of the package (``genreclf.tracking._model_code``), it does
nothing.
"""

from genreclf.tracking.pyfunc import set_model

if __name__ != "genreclf.tracking._model_code":
    set_model()
