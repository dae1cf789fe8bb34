"""Former "models from code" entry of a logged genreclf model (kept for old code).

Models are now logged with ``genreclf/tracking/_model_code.py``. Models logged
earlier carry their own copy of this file, which imports
``genreclf._pyfunc.GenrePyfuncModel``; that name keeps working. Run as a
models-from-code file, this one still declares the model; imported as part of
the package (``genreclf._pyfunc_model``), it does nothing.
"""

from genreclf.tracking.pyfunc import GenrePyfuncModel, set_model

__all__ = ["GenrePyfuncModel"]

if __name__ != "genreclf._pyfunc_model":
    set_model()
