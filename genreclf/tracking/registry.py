"""The MLflow model registry: a logged model under a name, and its aliases.

``genreclf train --register NAME --alias champion`` calls
:func:`register_model` on the model it logged; ``models:/NAME@champion`` (or
``models:/NAME/<version>``) then loads it anywhere a model URI is taken:
``genreclf predict``, ``genreclf serve``, ``mlflow models serve -m``.
"""

import re

__all__ = ["RegisteredModel", "register_model"]

_ALIAS = re.compile(r"^[A-Za-z_][\w-]*$")


class RegisteredModel:
    """A registered model version.

    Parameters
    ----------
    name : str
        The registered model's name.
    version : str
        Its version number.
    alias : str or None
        The alias set on it, if any.
    """

    def __init__(self, name, version, alias=None):
        self.name = name
        self.version = str(version)
        self.alias = alias

    @property
    def uri(self):
        """str: ``models:/<name>@<alias>``, or ``models:/<name>/<version>``."""
        if self.alias:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/{self.version}"

    def __repr__(self):
        return f"RegisteredModel({self.name!r}, {self.version!r}, {self.alias!r})"


def register_model(model_uri, name, alias=None, description=None):
    """Register a logged model as a new version of ``name``; set an alias.

    Parameters
    ----------
    model_uri : str
        The logged model (``models:/<model id>`` or ``runs:/<run id>/model``).
    name : str
        The registered model (created if needed).
    alias : str, optional
        An alias to point at this version (``champion``); an alias already
        on another version of ``name`` moves here.
    description : str, optional
        The version's description (e.g. its model card); default: the card
        the model carries, when it has one.

    Returns
    -------
    registered : RegisteredModel
        Name, version and alias; ``registered.uri`` loads it.

    Raises
    ------
    ValueError
        If ``name`` is empty or ``alias`` is not a valid alias (letters,
        digits, ``_`` and ``-``, not starting with a digit; not ``latest``,
        and not of the form ``v<number>``, which MLflow keeps for versions).
    """
    import mlflow

    if not name or not str(name).strip():
        raise ValueError("the registered model's name must not be empty")
    if alias is not None and (
        not _ALIAS.match(alias)
        or alias.lower() == "latest"
        or re.match(r"^[vV]\d+$", alias)
    ):
        raise ValueError(
            f"invalid alias {alias!r}: use letters, digits, '_' and '-', not "
            "starting with a digit, and not 'latest' or 'v<number>'"
        )
    if description is None:
        description = _card_of(model_uri)
    version = mlflow.register_model(model_uri, name)
    client = mlflow.MlflowClient()
    if description:
        client.update_model_version(name, version.version, description=description)
    if alias is not None:
        client.set_registered_model_alias(name, alias, version.version)
    return RegisteredModel(name, version.version, alias)


def _card_of(model_uri):
    import mlflow

    from genreclf.tracking.card import CARD_FILE, model_file

    try:
        local = model_file(model_uri, f"artifacts/{CARD_FILE}")
        with open(local, encoding="utf-8") as f:
            return f.read()
    except (OSError, mlflow.exceptions.MlflowException):
        return None
