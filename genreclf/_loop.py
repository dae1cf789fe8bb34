"""GenreNet's loop: mini-batches of windows, weighted losses, mixed precision.

:class:`WindowLoopMixin` holds what :class:`genreclf.GenreNet` changes in
skorch's training loop: a loader whose items are whole mini-batches of
windows (pinned on CUDA), per-window loss weights so that every clip weighs
the same, ``torch.autocast`` with a gradient scaler for float16, the
channels-last layout, and an epoch loop that keeps losses and hits on the
device and reads them once per epoch. Put it left of the skorch base class.
"""

import torch
from skorch.utils import TeeGenerator, to_tensor
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from genreclf._training import autocast, check_precision, mixup_step
from genreclf.windows import WindowDataset

__all__ = ["WindowLoopMixin", "js_divergence"]


def js_divergence(logits_a, logits_b):
    """Jensen-Shannon divergence (nats) between the softmaxes of two logit rows.

    Parameters
    ----------
    logits_a, logits_b : torch.Tensor of shape (n, n_classes)

    Returns
    -------
    divergence : torch.Tensor of shape (n,)
        Between 0 (the same distribution) and ``log(2)``.
    """
    log_a = F.log_softmax(logits_a.float(), dim=1)
    log_b = F.log_softmax(logits_b.float(), dim=1)
    log_m = torch.logsumexp(torch.stack([log_a, log_b]), dim=0) - torch.log(
        torch.tensor(2.0, device=log_a.device)
    )
    kl_a = (log_a.exp() * (log_a - log_m)).sum(dim=1)
    kl_b = (log_b.exp() * (log_b - log_m)).sum(dim=1)
    return 0.5 * (kl_a + kl_b)


class WindowLoopMixin:
    """skorch's training steps and loop, for :class:`~genreclf.windows.WindowDataset`.

    Expects the net's ``precision``, ``channels_last``, ``combine`` and
    ``classes_``; other datasets go through skorch's own loop.
    """

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Check ``precision``, set the layout and the gradient scaler, then train.

        An interruption (Ctrl-C) is remembered in ``interrupted_`` and
        re-raised; skorch then stops training and runs ``on_train_end``
        (which loads the best epoch so far), and :meth:`_raise_if_interrupted`
        raises it again once skorch's ``partial_fit`` has returned.

        Returns
        -------
        self : skorch.NeuralNet
        """
        self.interrupted_ = False
        check_precision(self.device, self.precision)
        self._apply_layout()
        self._grad_scaler = None
        if self.precision == "fp16":
            self._grad_scaler = torch.amp.GradScaler(self._device_type())
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = True
            raise
        finally:
            self._grad_scaler = None  # per fit; never pickled

    def _raise_if_interrupted(self):
        """Raise ``KeyboardInterrupt`` if the last training was interrupted."""
        if getattr(self, "interrupted_", False):
            raise KeyboardInterrupt(
                f"GenreNet training interrupted after {len(self.history)} epoch(s)"
            )
        return self

    # --- precision and layout -------------------------------------------------
    def _device_type(self):
        device = self.device
        return "cpu" if device is None else torch.device(device).type

    def _uses_channels_last(self):
        if self.channels_last == "auto":
            return self.precision != "fp32"
        return bool(self.channels_last)

    def _apply_layout(self):
        """Put the module's 4-D parameters in the memory format of ``channels_last``."""
        fmt = torch.channels_last if self._uses_channels_last() else (
            torch.contiguous_format
        )
        self.module_.to(memory_format=fmt)

    def infer(self, x, **fit_params):
        """Logits of a batch, in ``precision``, returned as float32.

        Parameters
        ----------
        x : torch.Tensor or ndarray of shape (n, channels, n_mfcc, window)
            A mini-batch of windows (moved to the device without blocking).
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        logits : torch.Tensor of shape (n, n_classes), float32
        """
        if isinstance(x, torch.Tensor) and self.device is not None:
            x = x.to(self.device, non_blocking=True)
        else:
            x = to_tensor(x, device=self.device)
        if self._uses_channels_last() and isinstance(x, torch.Tensor) and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            out = super().infer(x, **fit_params)
        if isinstance(out, tuple):
            return (out[0].float(), *out[1:])
        return out.float()

    # --- steps ----------------------------------------------------------------
    @staticmethod
    def _split_batch(batch):
        """``(X, y, weights)`` of a mini-batch (weights None when not given)."""
        weights = batch[2] if len(batch) > 2 else None
        return batch[0], batch[1], weights

    def weighted_loss(self, y_pred, y_true, weights=None, X=None, training=False):
        """The criterion's loss, each sample weighted by ``weights``.

        Parameters
        ----------
        y_pred : torch.Tensor of shape (n, n_classes)
            Logits.
        y_true : torch.Tensor of shape (n,)
            Encoded labels.
        weights : torch.Tensor of shape (n,) or None, default=None
            Per-sample weights (mean 1 over the training set); None: the
            criterion's own mean.
        X : torch.Tensor, optional
            The inputs (passed to :meth:`get_loss`).
        training : bool, default=False
            Whether this is a training step.

        Returns
        -------
        loss : torch.Tensor, scalar
            ``sum(weights * losses) / n``.
        """
        if weights is None:
            return self.get_loss(y_pred, y_true, X=X, training=training)
        criterion = self.criterion_
        if getattr(criterion, "reduction", None) is None:
            raise TypeError(
                f"GenreNet weights the windows of each clip, which needs a criterion "
                f"with a 'reduction' attribute; {type(criterion).__name__} has none"
            )
        saved = criterion.reduction
        criterion.reduction = "none"
        try:
            losses = self.get_loss(y_pred, y_true, X=X, training=training)
        finally:
            criterion.reduction = saved
        weights = weights.to(losses.device, dtype=losses.dtype, non_blocking=True)
        return (losses * weights).sum() / len(losses)

    def backward(self, loss):
        """Back-propagate ``loss`` (scaled, for ``precision="fp16"``)."""
        scaler = getattr(self, "_grad_scaler", None)
        (loss if scaler is None else scaler.scale(loss)).backward()

    def train_step_single(self, batch, **fit_params):
        """One step's loss, each window weighted (``mixup``: on a blended batch).

        Returns
        -------
        step : dict
            ``{"loss": ..., "y_pred": ...}``.
        """
        if self.mixup:
            return mixup_step(self, batch, self.mixup, **fit_params)
        if len(batch) > 4 and getattr(self, "consistency", 0.0):
            return self._consistency_step(batch, **fit_params)
        self._set_training(True)
        Xi, yi, wi = self._split_batch(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.weighted_loss(y_pred, yi, wi, X=Xi, training=True)
        self.backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    def _consistency_step(self, batch, **fit_params):
        """The loss of both views of a batch plus ``consistency`` times their divergence.

        Both views of the windows (``WindowDataset(pairs=True)``) go through
        the net, in one pass where they are as wide; the loss is the mean of
        their weighted losses plus ``consistency`` times the weighted
        Jensen-Shannon divergence of their predicted distributions, which
        pulls the net's answer for a window towards the same answer under
        another production of it.
        """
        self._set_training(True)
        Xa, yi, wi = self._split_batch(batch)
        Xb = batch[4]
        if Xa.shape == Xb.shape:
            logits_a, logits_b = self.infer(torch.cat([Xa, Xb]), **fit_params).split(
                len(Xa)
            )
        else:
            logits_a = self.infer(Xa, **fit_params)
            logits_b = self.infer(Xb, **fit_params)
        loss_a = self.weighted_loss(logits_a, yi, wi, X=Xa, training=True)
        loss_b = self.weighted_loss(logits_b, yi, wi, X=Xb, training=True)
        divergence = js_divergence(logits_a, logits_b)
        if wi is not None:
            divergence = divergence * wi.to(divergence.device, divergence.dtype)
        loss = 0.5 * (loss_a + loss_b) + self.consistency * divergence.mean()
        self.backward(loss)
        return {"loss": loss, "y_pred": logits_a}

    def train_step(self, batch, **fit_params):
        """One optimisation step (with the gradient scaler for ``precision="fp16"``).

        Returns
        -------
        step : dict
            ``{"loss": ..., "y_pred": ...}``.
        """
        scaler = getattr(self, "_grad_scaler", None)
        if scaler is None:
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        for name in self._optimizers:
            scaler.unscale_(getattr(self, name + "_"))
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()
        return step

    def validation_step(self, batch, **fit_params):
        """Loss (each clip weighing the same) and logits of a validation batch.

        Returns
        -------
        step : dict
            ``{"loss": ..., "y_pred": ...}``.
        """
        self._set_training(False)
        Xi, yi, wi = self._split_batch(batch)
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.weighted_loss(y_pred, yi, wi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    # --- the loop over mini-batches ---------------------------------------------
    def get_iterator(self, dataset, training=False):
        """A loader whose items are whole mini-batches of ``dataset``.

        A :class:`~genreclf.windows.WindowDataset` is read one mini-batch per
        item (a batch sampler, no collation), pinned on CUDA; other datasets
        get skorch's iterator.

        Returns
        -------
        iterator : torch.utils.data.DataLoader
        """
        if not isinstance(dataset, WindowDataset):
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        batch_size = kwargs.pop("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = max(1, len(dataset))
        shuffle = kwargs.pop("shuffle", False)
        drop_last = kwargs.pop("drop_last", False)
        sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        kwargs.setdefault("pin_memory", self._device_type() == "cuda")
        return DataLoader(
            dataset,
            sampler=BatchSampler(sampler, int(batch_size), drop_last),
            batch_size=None,
            **kwargs,
        )

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """One pass over the mini-batches, recording losses and accuracies.

        The losses of the mini-batches and the hits stay on the device and
        are read once at the end of the pass on CUDA (on the CPU, each loss
        is recorded as it comes). ``train_acc`` is the accuracy over the
        training windows; ``valid_acc`` the accuracy per held-out clip, its
        windows combined by ``combine``.
        """
        if iterator is None:
            return
        dataset = getattr(iterator, "dataset", None)
        if not isinstance(dataset, WindowDataset):
            return super().run_single_epoch(
                iterator, training, prefix, step_fn, **fit_params
            )
        device = torch.device(self._device_type())
        defer = device.type == "cuda"
        hits = torch.zeros((), dtype=torch.int64, device=device)
        totals = None
        if not training:
            shape = (len(dataset.counts), len(self.classes_))
            totals = torch.zeros(shape, dtype=torch.float64, device=device)
        pending, n_items, batch_count = [], 0, 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].detach()
            if defer:
                pending.append((len(self.history[-1]["batches"]) - 1, loss))
            else:
                self.history.record_batch(prefix + "_loss", loss.item())
            size = len(batch[0])
            self.history.record_batch(prefix + "_batch_size", size)
            logits = step["y_pred"].detach()
            if training:
                y = batch[1].to(device, non_blocking=True)
                hits += (logits.argmax(dim=1) == y).sum()
            else:
                clips = batch[3].to(device, non_blocking=True)
                totals.index_add_(0, clips, self._window_share(logits))
            self.notify("on_batch_end", batch=batch, training=training, **step)
            n_items += size
            batch_count += 1
        if pending:
            values = torch.stack([v for _, v in pending]).float().cpu().tolist()
            rows = self.history[-1]["batches"]
            for (row, _), value in zip(pending, values, strict=True):
                rows[row][prefix + "_loss"] = value
        if training and n_items:
            self.history.record("train_acc", int(hits) / n_items)
        elif not training and len(dataset.counts):
            labels = torch.from_numpy(dataset.clip_labels).to(device)
            self.history.record(
                "valid_acc", float((totals.argmax(dim=1) == labels).double().mean())
            )
        self.history.record(prefix + "_batch_count", batch_count)

    def _window_share(self, logits):
        """Each window's share of its clip's score under ``combine`` (float64)."""
        logits = logits.double()
        if self.combine == "mean":
            return torch.softmax(logits, dim=1)
        if self.combine == "logmean":
            return torch.log_softmax(logits, dim=1)
        return F.one_hot(logits.argmax(dim=1), logits.shape[1]).double()
