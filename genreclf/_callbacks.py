"""The callbacks of :class:`genreclf.GenreNet`: best epoch, scores, progress lines."""

import sys

import numpy as np
import torch
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog

__all__ = [
    "BatchAccuracy",
    "BestEpoch",
    "EpochBest",
    "EpochLine",
    "EpochTable",
    "WeightAverage",
    "default_callbacks",
]


def default_callbacks():
    """The callbacks of every GenreNet: timing, losses, accuracies, best epoch, log.

    The losses are averaged over each epoch's mini-batches; the accuracies
    are recorded per epoch by the net's loop (``valid_acc`` per clip).

    Returns
    -------
    callbacks : list of (str, Callback)
    """
    return [
        ("epoch_timer", EpochTimer()),
        ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
        ("train_acc", EpochBest("train_acc", lower_is_better=False)),
        ("valid_loss", PassthroughScoring(name="valid_loss")),
        ("valid_acc", EpochBest("valid_acc", lower_is_better=False)),
        ("epoch_line", EpochLine()),
        ("best_epoch", BestEpoch()),
        ("print_log", EpochTable()),
    ]


class BatchAccuracy(Callback):
    """Record each mini-batch's accuracy as ``train_acc`` or ``valid_acc``.

    No longer among the default callbacks (GenreNet's loop records the
    accuracies per epoch without a host synchronisation per batch); kept so
    that nets pickled with it load.
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
    validation data, or with ``monitor="last"``, the last epoch is kept. Sets
    the net's ``best_epoch_``.
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
        if net.monitor == "last":
            return
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


class WeightAverage(Callback):
    """Replace the trained parameters by their mean over the last ``epochs`` epochs.

    What ``GenreNet(average_last=N)`` adds: at the end of each of the last
    ``epochs`` epochs of ``max_epochs`` the module's floating-point state
    (parameters and batch-norm statistics) is added to a running sum, and at
    the end of training the module takes their mean (integer buffers keep the
    last epoch's). An average of the points a constant learning rate visits
    lies nearer the middle of the region they explore than the last of them.
    The sums live on the module's device and are dropped once loaded.

    Parameters
    ----------
    epochs : int
        How many of the last epochs are averaged (1: the last epoch alone).
    """

    def __init__(self, epochs):
        self.epochs = epochs

    def initialize(self):
        """Forget any running sum."""
        self.sum_, self.count_ = None, 0
        return self

    def on_train_begin(self, net, **kwargs):
        """Start a new average."""
        self.initialize()

    def on_epoch_end(self, net, **kwargs):
        """Add this epoch's state when it is one of the last ``epochs``."""
        if len(net.history) <= net.max_epochs - self.epochs:
            return
        state = net.module_.state_dict()
        if self.sum_ is None:  # copies: the module goes on training
            self.sum_ = {
                k: v.detach().to(
                    torch.float64 if v.is_floating_point() else v.dtype, copy=True
                )
                for k, v in state.items()
            }
        else:
            for k, v in state.items():
                if v.is_floating_point():
                    self.sum_[k] += v.detach()
                else:
                    self.sum_[k] = v.detach().clone()
        self.count_ += 1

    def on_train_end(self, net, **kwargs):
        """Load the mean into the module."""
        if self.count_ > 1:
            dtypes = {k: v.dtype for k, v in net.module_.state_dict().items()}
            mean = {
                k: (s / self.count_).to(dtypes[k]) if s.is_floating_point() else s
                for k, s in self.sum_.items()
            }
            net.module_.load_state_dict(mean)
        self.sum_, self.count_ = None, 0


class EpochBest(Callback):
    """Mark whether the epoch's ``name`` score, recorded by the net, is the best.

    Parameters
    ----------
    name : str
        History key of a per-epoch score (``"valid_acc"``).
    lower_is_better : bool, default=True
        Direction of the score.
    """

    def __init__(self, name, lower_is_better=True):
        self.name = name
        self.lower_is_better = lower_is_better

    def initialize(self):
        """Forget the best score."""
        self.best_score_ = np.inf if self.lower_is_better else -np.inf
        return self

    def on_epoch_end(self, net, **kwargs):
        """Record ``<name>_best`` when the epoch has the score."""
        row = net.history[-1]
        if self.name not in row:
            return
        score = row[self.name]
        better = score < self.best_score_ if self.lower_is_better else (
            score > self.best_score_
        )
        if better:
            self.best_score_ = score
        net.history.record(f"{self.name}_best", bool(better))


class EpochTable(PrintLog):
    """skorch's table of epochs, printed when the net's ``verbose`` is 2 or more."""

    def on_epoch_end(self, net, **kwargs):
        """Print the table's row of this epoch (``verbose >= 2`` only)."""
        if net.verbose >= 2:
            super().on_epoch_end(net, **kwargs)


class EpochLine(Callback):
    """One line per epoch when the net's ``verbose`` is 1.

    The line names the net (its ``progress_label``, e.g. an ensemble
    member), the epoch, the training loss and, with validation clips, the
    validation accuracy per clip and loss::

        [GenreNet member 2/5] epoch 3/12 train_loss 1.2345 valid_acc 0.562 (4.1 s)

    Without validation clips (``valid_size=0``) the training accuracy of the
    epoch's windows takes the validation's place::

        [GenreNet member 2/5] epoch 3/30 train_loss 1.2345 train_acc 0.601 (4.1 s)

    Parameters
    ----------
    sink : callable, default=print
        Called with each line.
    """

    def __init__(self, sink=print):
        self.sink = sink

    def on_train_begin(self, net, **kwargs):
        """Remember the epoch training starts at."""
        self.first_ = len(net.history) - 1 if len(net.history) else 0

    def on_epoch_end(self, net, **kwargs):
        """Print this epoch's line."""
        if net.verbose != 1:
            return
        row = net.history[-1]
        label = getattr(net, "progress_label", None)
        name = type(net).__name__ + (f" {label}" if label else "")
        total = getattr(self, "first_", 0) + net.max_epochs
        parts = [f"[{name}] epoch {row['epoch']}/{max(total, row['epoch'])}"]
        scores = [("train_loss", ".4f"), ("valid_acc", ".3f"), ("valid_loss", ".4f")]
        if "valid_acc" not in row:
            scores.insert(1, ("train_acc", ".3f"))
        for key, fmt in scores:
            if key in row:
                parts.append(f"{key} {row[key]:{fmt}}")
        if "dur" in row:
            parts.append(f"({row['dur']:.1f} s)")
        self.sink(" ".join(parts))
        sys.stdout.flush()
