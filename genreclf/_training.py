"""Training helpers of :class:`genreclf.GenreNet`: the held-out split, callbacks."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.model_selection import StratifiedShuffleSplit
from skorch.callbacks import Callback

__all__ = [
    "MALLOC_ENV",
    "BatchAccuracy",
    "BestEpoch",
    "holdout_split",
    "resolve_device",
]

#: glibc malloc settings that keep freed tensor memory in the process instead
#: of returning it to the system after every batch: training ran 1.3-1.8x
#: faster on a 2-core CPU (``python benchmarks/training.py --malloc-compare``).
#: glibc reads them at start-up, so they must be in the environment of a new
#: process (``benchmarks/accuracy.py`` re-runs itself with them).
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "8589934592",
    "MALLOC_TOP_PAD_": "1073741824",
}


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


def _n_valid(valid_size, n_samples):
    """Return how many clips ``valid_size`` holds out (0: none)."""
    if valid_size is None:
        return 0
    if isinstance(valid_size, Integral) and not isinstance(valid_size, bool):
        if valid_size < 0:
            raise ValueError(f"valid_size must be >= 0, got {valid_size}")
        return int(valid_size)
    if isinstance(valid_size, Real) and 0 <= valid_size < 1:
        return math.ceil(valid_size * n_samples)
    raise ValueError(
        f"valid_size must be None, a float in [0, 1) or an int >= 0, got {valid_size!r}"
    )


def holdout_split(y, valid_size, random_state):
    """Split clips into a training and a held-out validation part.

    Stratified when possible. Where a stratified split is impossible (a
    class with one clip, fewer validation clips than classes), the
    validation clips are drawn class by class, never taking a class's last
    clip, with a warning. When no clip can be held out, all clips train and
    the validation part is empty (the fit then keeps its last epoch).

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Labels.
    valid_size : float, int or None
        Fraction (float in [0, 1)) or number (int) of clips to hold out;
        0 or None holds out nothing.
    random_state : int
        Seed of the split.

    Returns
    -------
    train : ndarray of int
        Indices of the training clips.
    valid : ndarray of int
        Indices of the held-out clips (possibly empty).

    Examples
    --------
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    >>> train, valid = holdout_split(y, 0.2, random_state=0)
    >>> sorted(y[valid].tolist())
    [0, 1]
    """
    y = np.asarray(y)
    n_samples = len(y)
    all_idx = np.arange(n_samples)
    n_valid = _n_valid(valid_size, n_samples)
    if n_valid == 0:
        return all_idx, all_idx[:0]
    try:
        splitter = StratifiedShuffleSplit(
            n_splits=1, test_size=n_valid, random_state=random_state
        )
        train, valid = next(splitter.split(np.zeros(n_samples), y))
        return np.sort(train), np.sort(valid)
    except ValueError as exc:
        reason = str(exc)
    rng = np.random.default_rng(random_state)
    # Candidates: every clip but one per class, dealt out class by class.
    queues = []
    for label in rng.permutation(np.unique(y)):
        members = rng.permutation(np.flatnonzero(y == label))
        queues.append(list(members[1:]))
    picked = []
    while len(picked) < n_valid and any(queues):
        for queue in queues:
            if queue and len(picked) < n_valid:
                picked.append(queue.pop())
    if not picked:
        warnings.warn(
            f"GenreNet: no clip can be held out for validation ({n_samples} "
            f"clips; {reason}): training on all of them and keeping the last "
            "epoch.",
            UserWarning,
            stacklevel=3,
        )
        return all_idx, all_idx[:0]
    warnings.warn(
        f"GenreNet: a stratified validation split of {n_valid} of {n_samples} "
        f"clips is impossible ({reason}); holding out {len(picked)} clip(s) "
        "drawn class by class, keeping at least one clip of every class for "
        "training.",
        UserWarning,
        stacklevel=3,
    )
    valid = np.sort(np.asarray(picked, dtype=np.intp))
    return np.setdiff1d(all_idx, valid), valid


class BatchAccuracy(Callback):
    """Record each mini-batch's accuracy as ``train_acc`` or ``valid_acc``.

    Uses the logits the training and validation steps already computed, so
    accuracy costs no extra forward pass; ``PassthroughScoring`` callbacks
    average it per epoch.
    """

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        """Record the accuracy of this mini-batch."""
        if y_pred is None or batch is None:
            return
        y_true = batch[1]
        if not isinstance(y_true, torch.Tensor):
            return
        hits = y_pred.argmax(dim=1).cpu() == y_true.cpu()
        name = "train_acc" if training else "valid_acc"
        net.history.record_batch(name, float(hits.float().mean()))


class BestEpoch(Callback):
    """Keep the module's parameters of the best epoch, load them at the end.

    The best epoch is the one the net's ``monitor`` score (``valid_loss`` or
    ``valid_acc``) marks best. The copy lives in CPU memory and is dropped
    once loaded, so a pickled net carries no extra tensors. Without
    validation data, the last epoch is kept. Sets the net's ``best_epoch_``.
    """

    def initialize(self):
        """Forget any stored state."""
        self.state_ = None
        self.epoch_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        """Start a new search for the best epoch."""
        self.initialize()

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        """Copy the parameters when this epoch is the best so far."""
        key = f"{net.monitor}_best"
        row = net.history[-1]
        if dataset_valid is None or not row.get(key, False):
            return
        self.state_ = {
            name: tensor.detach().to("cpu", copy=True)
            for name, tensor in net.module_.state_dict().items()
        }
        self.epoch_ = row["epoch"]

    def on_train_end(self, net, **kwargs):
        """Load the best epoch's parameters (or keep the last epoch's)."""
        if self.state_ is not None:
            net.module_.load_state_dict(self.state_)
            net.best_epoch_ = self.epoch_
        elif len(net.history):
            net.best_epoch_ = net.history[-1, "epoch"]
        self.state_ = None
