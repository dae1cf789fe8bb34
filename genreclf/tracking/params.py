"""Parameters as MLflow text: the one function that spells a value.

Every writer of MLflow parameters in genreclf (the parent run's pipeline
parameters, the search grid, each search candidate, the best parameters)
turns values into text with :func:`param_text`, so the same value reads the
same in every run, whichever process wrote it.
"""

import re

import numpy as np

__all__ = ["MAX_KEY_LENGTH", "flatten_params", "max_param_length", "param_text"]

#: MLflow's limit on a parameter value, used when MLflow does not say.
_DEFAULT_MAX_PARAM_LENGTH = 6000
#: MLflow's limit on a parameter or metric key.
MAX_KEY_LENGTH = 250
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def max_param_length():
    """Return MLflow's limit on a parameter value (6000 in MLflow 3)."""
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:  # pragma: no cover - older or newer MLflow
        return _DEFAULT_MAX_PARAM_LENGTH
    return MAX_PARAM_VAL_LENGTH


def param_text(value, nested=False):
    """Return stable text for a parameter value.

    Classes and functions are given by their qualified name, estimators by
    their class name, containers element by element, and any other object by
    its ``repr`` without the memory address (``" at 0x..."``), so that the
    text is the same in every process.

    Parameters
    ----------
    value : object
        The value.
    nested : bool, default=False
        Whether ``value`` sits inside a container (strings are then quoted).

    Returns
    -------
    text : str

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> param_text(StandardScaler()), param_text((4, "a")), param_text(len)
    ('StandardScaler', "(4, 'a')", 'builtins.len')
    >>> param_text(object())
    '<object object>'
    """
    if isinstance(value, str):
        return repr(value) if nested else value
    if value is None or isinstance(value, (bool, int, float, np.generic)):
        return str(value)
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}".lstrip(".")
    if hasattr(value, "get_params"):
        return type(value).__name__
    if isinstance(value, (list, tuple)):
        inner = ", ".join(param_text(v, nested=True) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        inner = ", ".join(
            f"{k!r}: {param_text(v, nested=True)}" for k, v in value.items()
        )
        return "{" + inner + "}"
    return _ADDRESS.sub("", repr(value))


def shorten(text, max_length=None):
    """Cut ``text`` to ``max_length`` characters, saying how long it was.

    Parameters
    ----------
    text : str
        The text.
    max_length : int or None, default=None
        The longest text kept; None means :func:`max_param_length`.

    Returns
    -------
    text : str
        ``text``, or its start followed by ``...[<n> chars]``.

    Examples
    --------
    >>> shorten("x" * 50, 20)
    'xxxxxxx...[50 chars]'
    """
    if max_length is None:
        max_length = max_param_length()
    if len(text) <= max_length:
        return text
    suffix = f"...[{len(text)} chars]"
    return text[: max_length - len(suffix)] + suffix


def params_as_text(params, max_length=None):
    """Return ``{key: text}`` for a dict of parameter values, keys sorted.

    Parameters
    ----------
    params : dict of str to object
        Parameter paths and values (a search candidate, the best parameters).
    max_length : int or None, default=None
        See :func:`shorten`.

    Returns
    -------
    params : dict of str to str
        Keys cut to MLflow's key limit, values given by :func:`param_text`.
    """
    if max_length is None:
        max_length = max_param_length()
    return {
        str(key)[:MAX_KEY_LENGTH]: shorten(param_text(value), max_length)
        for key, value in sorted(params.items())
    }


def flatten_params(estimator, max_length=None):
    """Return an estimator's parameters as MLflow parameters.

    Parameters
    ----------
    estimator : estimator
        Any scikit-learn estimator, typically the genreclf pipeline.
    max_length : int, optional
        Longest value kept; longer values are cut and end with
        ``...[<n> chars]``. By default MLflow's limit (6000 in MLflow 3).

    Returns
    -------
    params : dict of str to str
        Keys are the scikit-learn parameter paths of
        ``estimator.get_params(deep=True)``. Values that are estimators
        themselves are left out (their own parameters are listed under their
        path); classes and functions are given by their qualified name.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> params = flatten_params(make_pipeline(StandardScaler()))
    >>> params["standardscaler__with_mean"], params["steps"]
    ('True', "[('standardscaler', StandardScaler)]")
    >>> flatten_params(StandardScaler(copy="x" * 50), max_length=20)["copy"]
    'xxxxxxx...[50 chars]'
    """
    values = {
        key: value
        for key, value in estimator.get_params(deep=True).items()
        if not (hasattr(value, "get_params") and not isinstance(value, type))
    }
    return params_as_text(values, max_length)
