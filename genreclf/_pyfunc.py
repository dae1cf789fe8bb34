"""Former home of the MLflow model class, kept so that logged models load.

A model logged by an earlier genreclf runs ``from genreclf._pyfunc import
GenrePyfuncModel`` when it is loaded. The class now lives in
:mod:`genreclf.tracking.pyfunc` and the prediction table in
:mod:`genreclf.prediction`; this module re-exports them.
"""

from genreclf.prediction import predict_frame
from genreclf.tracking.pyfunc import (
    PIPELINE_ARTIFACT,
    GenrePyfuncModel,
    paths_from_input,
)

__all__ = ["PIPELINE_ARTIFACT", "GenrePyfuncModel", "paths_from_input", "predict_frame"]
