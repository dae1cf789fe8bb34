"""The nets' training and validation windows, as a torch dataset.

:class:`WindowDataset` is public as ``genreclf.windows.WindowDataset``; it
lives apart so that :mod:`genreclf.windows` (the slicing and the votes) needs
numpy only, and torch is imported where a net is trained.
"""

import numpy as np
import torch

from genreclf.windows import clip_widths, read_windows, window_index

__all__ = ["WindowDataset"]


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
    time_stretch : float, default=0.0
        Augmentation: every mini-batch read as a list is stretched or
        squeezed in time, linearly interpolated to ``round(window * s)``
        frames with one ``s`` drawn uniformly from ``[1 - time_stretch,
        1 + time_stretch]`` per mini-batch, as the same music played
        slower or faster (a tempo change leaves each frame's spectrum and
        rescales the time axis). Needs a net that takes any width (a
        global head). Items read one at a time are not stretched.
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
        time_stretch=0.0,
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
        self.time_stretch = float(time_stretch)

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
        if self.time_stretch:
            x = self._stretch(x)
        weights = None if self.uniform else torch.from_numpy(self.weights[k])
        return (
            x,
            torch.from_numpy(self.clip_labels[pos]),
            weights,
            torch.from_numpy(pos.astype(np.int64)),
        )

    def _stretch(self, x):
        draw = float(torch.rand((), dtype=torch.float64))  # torch's seeded generator
        rate = 1.0 + self.time_stretch * (2.0 * draw - 1.0)
        width = max(1, int(round(x.shape[-1] * rate)))
        if width == x.shape[-1]:
            return x
        return torch.nn.functional.interpolate(
            x, size=(x.shape[-2], width), mode="bilinear", align_corners=False
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


# Documented (and named in pickles) where users import it from.
WindowDataset.__module__ = "genreclf.windows"
