"""Training helpers of :class:`genreclf.GenreNet`: devices, mixed precision,
labels and deprecated options (the held-out split is in
:mod:`genreclf._holdout`, the callbacks in :mod:`genreclf._callbacks`)."""

import contextlib
import inspect
import warnings

import numpy as np
import torch
from skorch.utils import to_tensor

from genreclf._callbacks import (
    BatchAccuracy,
    BestEpoch,
    EpochBest,
    EpochLine,
    EpochTable,
    default_callbacks,
)
from genreclf._holdout import genre_names, holdout_split, label_names
from genreclf._malloc import MALLOC_ENV

__all__ = [
    "DEPRECATED_AUGMENTATIONS",
    "MALLOC_ENV",
    "PRECISIONS",
    "AutoDeviceMixin",
    "BatchAccuracy",
    "BestEpoch",
    "EpochBest",
    "EpochLine",
    "EpochTable",
    "accepts",
    "autocast",
    "check_device",
    "check_precision",
    "default_callbacks",
    "encode_labels",
    "genre_names",
    "holdout_split",
    "label_names",
    "mixup_step",
    "resolve_device",
    "warn_deprecated_augmentations",
]

# MALLOC_ENV is defined in genreclf._malloc and holdout_split in
# genreclf._holdout; both are kept importable from here.


#: Deprecated training augmentations (no preset uses them, and mixup measured
#: worse) and the default that turns each off; to be removed in 0.3.
DEPRECATED_AUGMENTATIONS = {
    "time_shift": 0,
    "time_mask": 0,
    "freq_mask": 0,
    "c0_shift": 0.0,
    "mixup": 0.0,
}


def accepts(factory, name):
    """Whether ``factory(**{name: ...})`` is a valid call."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def warn_deprecated_augmentations(params, stacklevel=2):
    """Warn (``FutureWarning``) for each deprecated augmentation set in ``params``.

    Parameters
    ----------
    params : dict
        Option or parameter names (the last ``__`` part is compared) and
        their values.
    stacklevel : int, default=2
        Passed to :func:`warnings.warn`.
    """
    for key, value in params.items():
        name = key.rsplit("__", 1)[-1]
        default = DEPRECATED_AUGMENTATIONS.get(name)
        if default is not None and value != default:
            warnings.warn(
                f"GenreNet's {name!r} option is deprecated since genreclf 0.2 and "
                "will be removed in 0.3 (no preset uses it"
                + (", and it measured worse)" if name == "mixup" else ")"),
                FutureWarning,
                stacklevel=stacklevel + 1,
            )


def encode_labels(y, classes):
    """Positions of the labels ``y`` in ``classes``, refusing unknown labels.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Labels.
    classes : ndarray of shape (n_classes,)
        The label set, in the order of the net's outputs.

    Returns
    -------
    y_enc : ndarray of shape (n_samples,), int64

    Examples
    --------
    >>> encode_labels(np.array(["b", "a", "b"]), np.array(["a", "b"])).tolist()
    [1, 0, 1]
    """
    order = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes, y, sorter=order).clip(0, len(classes) - 1)
    y_enc = order[pos]
    unknown = classes[y_enc] != y
    if np.any(unknown):
        raise ValueError(
            f"y has labels not in classes: {np.unique(y[unknown]).tolist()}"
        )
    return y_enc.astype(np.int64)


#: The ``precision`` options of GenreNet: float32, or autocast to bfloat16 or
#: float16 (with a gradient scaler).
PRECISIONS = ("fp32", "bf16", "fp16")


def _device_type(device):
    return "cpu" if device is None else torch.device(device).type


def check_precision(device, precision):
    """Refuse a ``precision`` that ``device`` cannot run.

    Parameters
    ----------
    device : str, torch.device or None
        The resolved device.
    precision : {"fp32", "bf16", "fp16"}
        The requested precision.

    Raises
    ------
    ValueError
        For ``"bf16"`` on a CUDA device without bfloat16 support.

    Examples
    --------
    >>> check_precision("cpu", "bf16")
    """
    if (
        precision == "bf16"
        and _device_type(device) == "cuda"
        and not torch.cuda.is_bf16_supported()
    ):
        raise ValueError(
            "precision='bf16' but this GPU has no bfloat16 support: use "
            "precision='fp16' (float16 with a gradient scaler) or 'fp32'"
        )


def autocast(device, precision):
    """The autocast context of ``precision`` on ``device`` (none for fp32).

    Parameters
    ----------
    device : str, torch.device or None
        The resolved device (None: the CPU).
    precision : {"fp32", "bf16", "fp16"}
        ``"bf16"`` and ``"fp16"`` autocast to bfloat16 and float16.

    Returns
    -------
    context : context manager

    Examples
    --------
    >>> with autocast("cpu", "bf16"):
    ...     torch.ones(2, 2) @ torch.ones(2, 2)
    tensor([[2., 2.],
            [2., 2.]], dtype=torch.bfloat16)
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=_device_type(device), dtype=dtype)


def mixup_step(net, batch, alpha, **fit_params):
    """One training step of ``net`` on a mixup blend of ``batch`` (deprecated).

    The batch is blended with a shuffled copy of itself, ``lam * x_i + (1 -
    lam) * x_j`` with ``lam`` drawn from Beta(alpha, alpha) by torch's global
    generator (seeded by the net), and the loss is the same blend of the two
    labels' (weighted) losses.

    Returns
    -------
    step : dict
        ``{"loss": ..., "y_pred": ...}``, as skorch's ``train_step_single``.
    """
    net._set_training(True)
    Xi, yi = batch[0], batch[1]
    weights = batch[2] if len(batch) > 2 else None
    Xi = to_tensor(Xi, device=net.device)
    yi = to_tensor(yi, device=net.device)
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(Xi)).to(Xi.device)
    mixed = lam * Xi + (1.0 - lam) * Xi[perm]
    y_pred = net.infer(mixed, **fit_params)
    loss = lam * net.weighted_loss(y_pred, yi, weights, X=mixed, training=True) + (
        1.0 - lam
    ) * net.weighted_loss(y_pred, yi[perm], weights, X=mixed, training=True)
    net.backward(loss)
    return {"loss": loss, "y_pred": y_pred}


def resolve_device(device):
    """Return the torch device name that ``device`` stands for.

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"`` means ``"cuda"`` when a CUDA device is available and
        ``"cpu"`` otherwise; anything else is returned unchanged.

    Returns
    -------
    device : str, torch.device or None

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto") in ("cpu", "cuda")
    True
    """
    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_device(device):
    """Resolve ``device`` and refuse a CUDA device that this machine lacks.

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (None: leave
        tensors where they are, as skorch does).

    Returns
    -------
    device : str, torch.device or None
        ``device`` with ``"auto"`` resolved.

    Raises
    ------
    ValueError
        For a CUDA device when CUDA is unavailable or has fewer devices.

    Examples
    --------
    >>> check_device("cpu")
    'cpu'
    """
    device = resolve_device(device)
    if device is None:
        return device
    wanted = torch.device(device)
    if wanted.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available on this machine: use "
            "device='auto' (CUDA when present, else the CPU) or device='cpu'"
        )
    if wanted.index is not None and wanted.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} but this machine has {torch.cuda.device_count()} "
            "CUDA device(s)"
        )
    return device


class AutoDeviceMixin:
    """Let a skorch net take ``device="auto"``, resolved each time it is used.

    skorch reads ``self.device`` to move modules and tensors, so the attribute
    gives the resolved device (``"cuda"`` when available, else ``"cpu"``),
    while :meth:`get_params` and pickles keep the value as set: a net pickled
    on a GPU machine with ``"auto"`` runs on a CPU-only one. Put it left of
    the skorch base class.
    """

    @property
    def device(self):
        """The torch device in use (``"auto"`` resolved)."""
        return resolve_device(self.__dict__.get("device", "auto"))

    @device.setter
    def device(self, value):
        self.__dict__["device"] = value

    def get_params(self, deep=True, **kwargs):
        """Get parameters, with ``device`` as set (``"auto"`` unresolved)."""
        params = super().get_params(deep=deep, **kwargs)
        params["device"] = self.__dict__.get("device", "auto")
        return params

    def __setstate__(self, state):
        requested = state.get("device")
        state["device"] = resolve_device(requested)
        super().__setstate__(state)  # falls back to the CPU, with a warning
        if isinstance(requested, str) and requested == "auto":
            self.__dict__["device"] = "auto"
        elif isinstance(requested, str):
            self.__dict__["device"] = str(self.__dict__["device"])
