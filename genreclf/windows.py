"""Fixed-width windows over the real frames of each clip, and their votes.

A clip is an MFCC matrix of shape ``(n_channels, n_mfcc, n_frames_i)``: a row
of a dense array ``(n_clips, n_channels, n_mfcc, n_frames)`` (clips of equal
width) or one clip of a :class:`~genreclf.clips.ClipFeatures` (clips of their
own widths). The net sees windows of ``window`` frames, ``hop`` frames apart,
over each clip's real frames; a clip shorter than one window gives one window,
filled once by repeating the clip. Nothing here copies more than one
mini-batch of windows at a time: a dense array is read through a strided view,
a ``ClipFeatures`` through :meth:`~genreclf.clips.ClipFeatures.window`.
"""

import numpy as np
import torch

from genreclf.clips import ClipFeatures

__all__ = [
    "COMBINE_RULES",
    "WINDOW_AUGMENTATIONS",
    "WindowDataset",
    "as_clips",
    "clip_widths",
    "combine_windows",
    "finish_combine",
    "iter_window_batches",
    "read_windows",
    "vote_windows",
    "window_index",
    "window_starts",
]

COMBINE_RULES = ("mean", "logmean", "vote")
#: The augmentation options of :class:`WindowDataset` (deprecated in GenreNet).
WINDOW_AUGMENTATIONS = ("time_shift", "time_mask", "freq_mask", "c0_shift")


def as_clips(X):
    """View 2-D, 3-D or 4-D input as clips of shape (n, channels, n_mfcc, n_frames).

    Parameters
    ----------
    X : ndarray or ClipFeatures
        Of shape (n_clips, channels, n_mfcc, n_frames), (n_clips, n_mfcc,
        n_frames), or (n_samples, n_features), read as one frame of
        ``n_features`` coefficients. A ``ClipFeatures`` is returned as it is.

    Returns
    -------
    clips : ndarray of shape (n, channels, n_mfcc, n_frames) or ClipFeatures
        A view of ``X``.

    Examples
    --------
    >>> as_clips(np.zeros((5, 20, 7))).shape
    (5, 1, 20, 7)
    >>> as_clips(np.zeros((5, 6))).shape
    (5, 1, 6, 1)
    """
    if isinstance(X, ClipFeatures):
        if len(X) and (X.n_mfcc < 1 or X.n_frames.min() < 1):
            raise ValueError("X has a clip without frames or coefficients")
        return X
    if X.ndim == 2:
        X = X[:, None, :, None]
    elif X.ndim == 3:
        X = X[:, None]
    elif X.ndim != 4:
        raise ValueError(
            "X must have shape (n_clips, 1, n_mfcc, n_frames), "
            f"(n_clips, n_mfcc, n_frames) or (n_samples, n_features); got {X.shape}"
        )
    if min(X.shape[1:]) < 1:
        raise ValueError(f"X has an empty axis: shape {X.shape}")
    return X


def clip_widths(X):
    """Width in frames of each clip of ``X`` (as made by :func:`as_clips`).

    Returns
    -------
    n_frames : ndarray of shape (n_clips,), int

    Examples
    --------
    >>> clip_widths(np.zeros((3, 1, 20, 9))).tolist()
    [9, 9, 9]
    """
    if isinstance(X, ClipFeatures):
        return np.asarray(X.n_frames, dtype=np.intp)
    return np.full(len(X), X.shape[-1], dtype=np.intp)


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


def window_index(n_frames, window, hop):
    """Clip and first frame of every window of every clip, in clip order.

    Parameters
    ----------
    n_frames : array-like of shape (n_clips,), int
        Width of each clip, in frames.
    window, hop : int
        Window width and hop, in frames.

    Returns
    -------
    clip_ids : ndarray of shape (n_windows,), int
        The clip of each window.
    starts : ndarray of shape (n_windows,), int
        Its first frame (as :func:`window_starts` gives them per clip).
    counts : ndarray of shape (n_clips,), int
        Windows per clip (at least 1).

    Examples
    --------
    >>> ids, starts, counts = window_index([10, 3], 4, 3)
    >>> ids.tolist(), starts.tolist(), counts.tolist()
    ([0, 0, 0, 1], [0, 3, 6, 0], [3, 1])
    """
    n_frames = np.asarray(n_frames, dtype=np.intp).reshape(-1)
    counts = np.where(n_frames <= window, 1, (n_frames - window) // hop + 1)
    clip_ids = np.repeat(np.arange(len(n_frames), dtype=np.intp), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    starts = (np.arange(len(clip_ids), dtype=np.intp) - first) * hop
    return clip_ids, starts.astype(np.intp), counts.astype(np.intp)


def _tile_to(clips, window):
    """Repeat ``clips`` (..., n_frames) along time until ``window`` frames."""
    n_frames = clips.shape[-1]
    if n_frames >= window:
        return clips
    reps = -(-window // n_frames)
    tiles = [1] * (clips.ndim - 1) + [reps]
    return np.tile(clips, tiles)[..., :window]


def read_windows(X, clip_ids, starts, window, variants=None):
    """Read one mini-batch of windows, as one array.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames) or ClipFeatures
        The clips.
    clip_ids, starts : ndarray of shape (n_batch,), int
        Clip and first frame of each window. A clip not wider than the
        window is repeated to fill it (its start is ignored).
    window : int
        Width of a window, in frames.
    variants : ndarray of shape (n_batch,), int, optional
        Augmentation variant of each window (0: the clip itself), for a
        ``ClipFeatures`` with variants; None reads the clips themselves.

    Returns
    -------
    windows : ndarray of shape (n_batch, n_channels, n_mfcc, window), float32
        A contiguous copy of this mini-batch only.

    Examples
    --------
    >>> X = np.arange(10, dtype=np.float32).reshape(1, 1, 1, 10)
    >>> read_windows(X, np.array([0, 0]), np.array([0, 6]), 4)[:, 0, 0].tolist()
    [[0.0, 1.0, 2.0, 3.0], [6.0, 7.0, 8.0, 9.0]]
    """
    clip_ids = np.asarray(clip_ids, dtype=np.intp)
    starts = np.asarray(starts, dtype=np.intp)
    if isinstance(X, ClipFeatures):
        batched = getattr(X, "windows", None)
        if batched is not None:
            kwargs = {} if variants is None else {"variants": variants}
            return np.ascontiguousarray(
                batched(clip_ids, starts, window, **kwargs), dtype=np.float32
            )
        if variants is None:
            parts = [X.window(int(i), int(s), window) for i, s in zip(clip_ids, starts)]
        else:
            parts = [
                X.window(int(i), int(s), window, variant=int(v))
                for i, s, v in zip(clip_ids, starts, variants)
            ]
        if not parts:
            return np.zeros((0, 1, X.n_mfcc, window), dtype=np.float32)
        return np.stack(parts).astype(np.float32, copy=False)
    if X.shape[-1] < window:
        return np.ascontiguousarray(_tile_to(X[clip_ids], window), dtype=np.float32)
    # (n_clips, C, H, n_positions, window): a view, nothing copied yet.
    view = np.lib.stride_tricks.sliding_window_view(X, window, axis=-1)
    return np.ascontiguousarray(view[clip_ids, :, :, starts], dtype=np.float32)


def iter_window_batches(X, window, hop, batch_size):
    """Yield mini-batches of windows cut from every clip of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames) or ClipFeatures
        The clips; each contributes the windows of its own frames.
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
    clip_ids, starts, _ = window_index(clip_widths(X), window, hop)
    for first in range(0, len(clip_ids), batch_size):
        part = slice(first, first + batch_size)
        yield clip_ids[part], read_windows(X, clip_ids[part], starts[part], window)


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
    n_windows : int or ndarray of shape (n_clips,), int
        Windows of each clip (one number when every clip has as many).
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
    >>> finish_combine(np.array([[2.0, 0.0], [1.0, 2.0]]), [2, 3], "vote").tolist()
    [[1.0, 0.0], [0.3333333333333333, 0.6666666666666666]]
    """
    counts = np.asarray(n_windows, dtype=np.float64)
    mean = totals / (counts[:, None] if counts.ndim else counts)
    if rule == "logmean":
        mean = np.exp(mean - mean.max(axis=1, keepdims=True))
        mean /= mean.sum(axis=1, keepdims=True)
    return mean


def vote_windows(log_proba, X, window, hop, batch_size, rule):
    """Probabilities per clip, combined over the real windows of each clip.

    Parameters
    ----------
    log_proba : callable
        Maps a mini-batch of windows, ndarray of shape (n_batch, n_channels,
        n_mfcc, window), float32, to its log-probabilities, ndarray of shape
        (n_batch, n_classes).
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames) or ClipFeatures
        The clips (one narrower than the window is repeated to fill it).
    window, hop : int
        Window width and hop, in frames.
    batch_size : int
        Windows per call of ``log_proba`` (bounds the memory used).
    rule : {"mean", "logmean", "vote"}
        How the windows are combined (see :func:`combine_windows`).

    Returns
    -------
    proba : ndarray of shape (n_clips, n_classes), float64
        Rows sum to one.

    Examples
    --------
    >>> X = np.zeros((2, 1, 3, 10), dtype=np.float32)
    >>> uniform = lambda batch: np.log(np.full((len(batch), 4), 0.25))
    >>> vote_windows(uniform, X, 4, 3, 5, "mean").tolist()[0]
    [0.25, 0.25, 0.25, 0.25]
    """
    totals = None
    _, _, counts = window_index(clip_widths(X), window, hop)
    for clip_ids, batch in iter_window_batches(X, window, hop, batch_size):
        scores = log_proba(batch)
        if totals is None:
            totals = np.zeros((len(X), scores.shape[1]))
        combine_windows(scores, clip_ids, totals, rule)
    return finish_combine(totals, counts, rule)


def _n_variants(X):
    """Variants per clip of a ClipFeatures (1: the clip itself only)."""
    n = getattr(X, "n_variants", None)
    if n is None:
        return None
    n = np.asarray(n, dtype=np.intp)
    if n.ndim == 0:
        n = np.full(len(X), int(n), dtype=np.intp)
    return n if n.max(initial=1) > 1 else None


class WindowDataset(torch.utils.data.Dataset):
    """Training or validation windows of some clips, read a mini-batch at a time.

    Items are windows (``mode="all"``) or clips (``mode="random"``). Indexed
    with one int it gives one item ``(x, y)``; indexed with a list of ints
    (as ``GenreNet``'s loader does, one list per mini-batch) it gives the
    whole mini-batch at once as ``(x, y, weight, clip)`` tensors, read in one
    call without per-item tensor work (``weight`` is None where every item
    weighs 1, so the loss is the criterion's plain mean).

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_channels, n_mfcc, n_frames) or ClipFeatures
        All clips (only those in ``indices`` are used).
    y : ndarray of shape (n_clips,), int64
        Encoded labels.
    indices : array-like of int
        The clips of this dataset.
    window, hop : int
        Window width and hop, in frames.
    mode : {"random", "all"}
        ``"random"``: one item per clip, a random window of its real frames
        each time it is drawn (so a new crop every epoch). ``"all"``: one
        item per real window of each clip, ``hop`` frames apart (a clip
        shorter than the window gives one window).
    time_shift, time_mask, freq_mask : int, default=0
        Augmentation (behind GenreNet's options of the same names, deprecated
        since 0.2), applied to every item when non-zero: a circular shift
        of up to ``time_shift`` frames either way, one band of up to
        ``time_mask`` frames and one band of up to ``freq_mask`` coefficients
        set to zero (SpecAugment-style masking).
    c0_shift : float, default=0.0
        Augmentation: add one uniform draw from ``[-c0_shift, c0_shift]`` to
        the first coefficient (c0, the loudness term), as a random gain does.
    variants : bool, default=False
        Read a random augmentation variant of the clip for each item, each
        time it is drawn, where ``X`` has variants (training); False reads
        variant 0, the clip itself (validation, prediction).

    Attributes
    ----------
    clip_ids, starts : ndarray of shape (n_items,), int
        Position (in ``indices``) and first frame of each item's window
        (``starts`` is unused in ``"random"`` mode).
    counts : ndarray of shape (n_clips_here,), int
        Real windows of each clip.
    weights : ndarray of shape (n_items,), float32
        Loss weight of each item: ``1 / counts`` of its clip, scaled so that
        the mean weight is 1; every clip weighs the same in the loss,
        however many windows it has. All ones in ``"random"`` mode.
    clip_labels : ndarray of shape (n_clips_here,), int64
        Label of each clip.
    uniform : bool
        Whether every weight is 1 (clips of equal width, or ``"random"``).

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
        variants=False,
    ):
        self.indices = np.asarray(indices, dtype=np.intp).reshape(-1)
        self.X = X
        self.clip_labels = np.asarray(y, dtype=np.int64)[self.indices]
        self.window = int(window)
        self.mode = mode
        self.widths = clip_widths(X)[self.indices]
        ids, starts, counts = window_index(self.widths, self.window, hop)
        self.counts = counts
        if mode == "all":
            self.clip_ids, self.starts = ids, starts
            weights = 1.0 / counts[ids]
            self.weights = (weights * (len(ids) / max(1, len(counts)))).astype(
                np.float32
            )
        else:
            self.clip_ids = np.arange(len(self.indices), dtype=np.intp)
            self.starts = np.zeros(len(self.indices), dtype=np.intp)
            self.weights = np.ones(len(self.indices), dtype=np.float32)
        self.uniform = bool(np.all(self.weights == 1))
        n_variants = _n_variants(X) if variants else None
        self.n_variants = None if n_variants is None else n_variants[self.indices]
        self.time_shift = time_shift
        self.time_mask = time_mask
        self.freq_mask = freq_mask
        self.c0_shift = c0_shift

    def __len__(self):
        return len(self.clip_ids)

    def _starts(self, k):
        if self.mode == "all":
            return self.starts[k]
        room = self.widths[self.clip_ids[k]] - self.window
        draw = torch.rand(len(k), dtype=torch.float64).numpy()
        return np.where(room > 0, (draw * (room + 1)).astype(np.intp), 0)

    def _read(self, k):
        pos = self.clip_ids[k]
        starts = self._starts(k)
        variants = None
        if self.n_variants is not None:
            draw = torch.rand(len(k), dtype=torch.float64).numpy()
            variants = (draw * self.n_variants[pos]).astype(np.intp)
        x = read_windows(self.X, self.indices[pos], starts, self.window, variants)
        return torch.from_numpy(x), pos

    def __getitem__(self, k):
        if isinstance(k, (int, np.integer)):
            x, pos = self._read(np.array([int(k)], dtype=np.intp))
            return self._augment(x[0]), torch.tensor(self.clip_labels[pos[0]])
        k = np.asarray(k, dtype=np.intp)
        x, pos = self._read(k)
        if self._augments():
            x = torch.stack([self._augment(item) for item in x])
        weights = None if self.uniform else torch.from_numpy(self.weights[k])
        return (
            x,
            torch.from_numpy(self.clip_labels[pos]),
            weights,
            torch.from_numpy(pos.astype(np.int64)),
        )

    def _augments(self):
        return any((self.time_shift, self.time_mask, self.freq_mask, self.c0_shift))

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
