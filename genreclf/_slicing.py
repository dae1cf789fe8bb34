"""Fixed-width windows over MFCC clips, for training and for voting per clip.

A clip is an array of shape ``(n_channels, n_mfcc, n_frames)``. The net sees
windows of ``window`` frames; a clip shorter than one window is tiled
(repeated) along time up to the window. Nothing here copies more than one
mini-batch of windows at a time: windows are strided views of the clips.
"""

import numpy as np
import torch

__all__ = [
    "COMBINE_RULES",
    "WindowDataset",
    "combine_windows",
    "finish_combine",
    "iter_window_batches",
    "window_starts",
]

COMBINE_RULES = ("mean", "logmean", "vote")


def window_starts(n_frames, window, hop):
    """First frame of each window that fits in a clip.

    Parameters
    ----------
    n_frames : int
        Width of the clip, in frames.
    window : int
        Width of a window, in frames.
    hop : int
        Frames between the starts of two consecutive windows.

    Returns
    -------
    starts : ndarray of shape (n_windows,), int
        ``[0]`` when the clip is not wider than one window.

    Examples
    --------
    >>> window_starts(10, 4, 2).tolist()
    [0, 2, 4, 6]
    >>> window_starts(3, 4, 2).tolist()
    [0]
    """
    if n_frames <= window:
        return np.zeros(1, dtype=np.intp)
    return np.arange(0, n_frames - window + 1, hop, dtype=np.intp)


def _tile_to(clips, window):
    """Repeat ``clips`` (..., n_frames) along time until ``window`` frames."""
    n_frames = clips.shape[-1]
    if n_frames >= window:
        return clips
    reps = -(-window // n_frames)
    tiles = [1] * (clips.ndim - 1) + [reps]
    return np.tile(clips, tiles)[..., :window]


def iter_window_batches(X, window, hop, batch_size):
    """Yield mini-batches of windows cut from every clip of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames)
        The clips.
    window : int
        Width of a window, in frames.
    hop : int
        Frames between window starts.
    batch_size : int
        Windows per mini-batch.

    Yields
    ------
    clip_ids : ndarray of shape (n_batch,), int
        The clip each window comes from.
    windows : ndarray of shape (n_batch, n_channels, n_mfcc, window), float32
        A contiguous copy of this mini-batch only.
    """
    if X.shape[-1] < window:
        X = _tile_to(X, window)
    starts = window_starts(X.shape[-1], window, hop)
    # (n_clips, C, H, n_positions, window): a view, nothing copied yet.
    view = np.lib.stride_tricks.sliding_window_view(X, window, axis=-1)
    n_windows = len(starts)
    total = len(X) * n_windows
    for first in range(0, total, batch_size):
        k = np.arange(first, min(first + batch_size, total))
        clip_ids = k // n_windows
        batch = view[clip_ids, :, :, starts[k % n_windows]]
        yield clip_ids, np.ascontiguousarray(batch, dtype=np.float32)


def combine_windows(log_proba, clip_ids, totals, rule):
    """Add the windows' share of their clips' scores to ``totals`` in place.

    Parameters
    ----------
    log_proba : ndarray of shape (n_batch, n_classes)
        Log-probabilities of a mini-batch of windows.
    clip_ids : ndarray of shape (n_batch,), int
        The clip of each window.
    totals : ndarray of shape (n_clips, n_classes), float64
        Running sums, finished by :func:`finish_combine`.
    rule : {"mean", "logmean", "vote"}
        Mean of probabilities, mean of log-probabilities, or majority vote.
    """
    if rule == "mean":
        share = np.exp(log_proba)
    elif rule == "logmean":
        share = log_proba
    else:
        share = np.zeros_like(log_proba)
        share[np.arange(len(share)), log_proba.argmax(axis=1)] = 1.0
    np.add.at(totals, clip_ids, share)


def finish_combine(totals, n_windows, rule):
    """Turn the sums of :func:`combine_windows` into probabilities per clip.

    Parameters
    ----------
    totals : ndarray of shape (n_clips, n_classes), float64
        Sums over each clip's windows.
    n_windows : int
        Windows per clip.
    rule : {"mean", "logmean", "vote"}
        The rule the sums were made with.

    Returns
    -------
    proba : ndarray of shape (n_clips, n_classes), float64
        Rows sum to one. For ``"vote"``, the fraction of windows that voted
        for each class; for ``"logmean"``, the normalised geometric mean.

    Examples
    --------
    >>> totals = np.log([[0.5, 0.5], [0.9, 0.1]])
    >>> finish_combine(totals, 1, "logmean").round(2).tolist()
    [[0.5, 0.5], [0.9, 0.1]]
    """
    mean = totals / n_windows
    if rule == "logmean":
        mean = np.exp(mean - mean.max(axis=1, keepdims=True))
        mean /= mean.sum(axis=1, keepdims=True)
    return mean


class WindowDataset(torch.utils.data.Dataset):
    """Training or validation windows of some clips, made on the fly.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames), float32
        All clips (only those in ``indices`` are used).
    y : ndarray of shape (n_clips,), int64
        Encoded labels.
    indices : array-like of int
        The clips of this dataset.
    window, hop : int
        Window width and hop, in frames.
    mode : {"random", "all"}
        ``"random"``: one item per clip, a random window each time it is
        drawn (so a new crop every epoch). ``"all"``: one item per window,
        every ``hop`` frames.
    time_shift, time_mask, freq_mask : int, default=0
        Augmentation, applied to every item when non-zero: a circular shift
        of up to ``time_shift`` frames either way, one band of up to
        ``time_mask`` frames and one band of up to ``freq_mask`` coefficients
        set to zero (SpecAugment-style masking).
    c0_shift : float, default=0.0
        Augmentation: add one uniform draw from ``[-c0_shift, c0_shift]`` to
        the first coefficient (c0, the loudness term), as a random gain does.

    Notes
    -----
    Random choices use torch's global generator, which the net seeds, so a
    seeded fit is reproducible (with the default single-process loader).
    """

    def __init__(
        self,
        X,
        y,
        indices,
        window,
        hop,
        mode="all",
        time_shift=0,
        time_mask=0,
        freq_mask=0,
        c0_shift=0.0,
    ):
        self.X = X if X.shape[-1] >= window else _tile_to(X[indices], window)
        self.indices = (
            np.asarray(indices, dtype=np.intp)
            if X.shape[-1] >= window
            else np.arange(len(indices))
        )
        self.y = np.asarray(y, dtype=np.int64)[np.asarray(indices, dtype=np.intp)]
        self.window = window
        self.mode = mode
        self.starts = window_starts(self.X.shape[-1], window, hop)
        self.time_shift = time_shift
        self.time_mask = time_mask
        self.freq_mask = freq_mask
        self.c0_shift = c0_shift

    def __len__(self):
        if self.mode == "all":
            return len(self.indices) * len(self.starts)
        return len(self.indices)

    def __getitem__(self, k):
        if self.mode == "all":
            pos, start = divmod(k, len(self.starts))
            start = int(self.starts[start])
        else:
            pos = k
            room = self.X.shape[-1] - self.window
            start = int(torch.randint(room + 1, ())) if room > 0 else 0
        clip = self.X[self.indices[pos], ..., start : start + self.window]
        x = torch.from_numpy(np.array(clip, dtype=np.float32))
        x = self._augment(x)
        return x, torch.tensor(self.y[pos])

    def _augment(self, x):
        if self.time_shift:
            shift = int(torch.randint(-self.time_shift, self.time_shift + 1, ()))
            x = torch.roll(x, shift, dims=-1)
        for size, axis in ((self.time_mask, -1), (self.freq_mask, -2)):
            if not size:
                continue
            length = x.shape[axis]
            width = int(torch.randint(min(size, length) + 1, ()))
            begin = int(torch.randint(length - width + 1, ()))
            x.narrow(axis, begin, width).zero_()
        if self.c0_shift:
            x[..., 0, :] += float(self.c0_shift * (2 * torch.rand(()) - 1))
        return x
