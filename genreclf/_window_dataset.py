"""The nets' training and validation windows, as a torch dataset.

:class:`WindowDataset` is public as ``genreclf.windows.WindowDataset``; it
lives apart so that :mod:`genreclf.windows` (the slicing and the votes) needs
numpy only, and torch is imported where a net is trained.
"""

import numpy as np
import torch

from genreclf._augment import TILT_LIMIT_DB
from genreclf._mfcc import TOP_DB
from genreclf.windows import clip_widths, read_windows, window_index

__all__ = ["WindowDataset", "change_windows"]


def _n_variants(X):
    """Variants per clip of a ClipFeatures (1: the clip itself only)."""
    n = getattr(X, "n_variants", None)
    if n is None:
        return None
    n = np.asarray(n, dtype=np.intp)
    if n.ndim == 0:
        n = np.full(len(X), int(n), dtype=np.intp)
    return n if n.max(initial=1) > 1 else None


#: The tilt's gain is clipped to this many dB either way (``tilt_shift``), as
#: the waveform augmentation's is.
TILT_CLIP_DB = TILT_LIMIT_DB
#: Floor of the changed levels below their maximum: the MFCC kernel's.
TILT_TOP_DB = TOP_DB
_DB = float(np.log(10.0) / 10.0)  # power = exp(dB * _DB)

#: ``time_stretch``: the share of training windows stretched (each by its own
#: factor; the others are left as they are).
STRETCH_P = 0.5
#: ``noise_snr``: the share of windows that get noise, and the span of SNRs
#: (dB) above ``noise_snr`` their draw is uniform in.
NOISE_P = 0.5
NOISE_SPAN_DB = 20.0
#: ``short_excerpts``: the shortest cut, as a share of the window (1.5 s of 3 s).
SHORT_MIN = 0.5


def stretch_windows(x, rate):
    """Windows ``x`` of shape (n, channels, bands, frames) stretched in time.

    Their frames are interpolated (bilinear) to ``round(frames * rate)``, as a
    tempo change would space them: the views of
    ``GenreNet(predict_stretch=...)`` at prediction (training's
    ``time_stretch`` keeps the width: :func:`stretch_each`). A rate that
    keeps the width returns ``x`` itself.
    """
    width = max(1, int(round(x.shape[-1] * rate)))
    if width == x.shape[-1]:
        return x
    return torch.nn.functional.interpolate(
        x, size=(x.shape[-2], width), mode="bilinear", align_corners=False
    )


def stretch_each(x, rates):
    """Windows ``x``, each stretched in time by its own rate, their width kept.

    Window ``i`` is resampled (bilinear) as if its frames were spaced
    ``rates[i]`` times as far apart about its centre, as a tempo change
    ``1 / rates[i]`` would space them, then cut back to its width: a rate
    above 1 (slower music) spreads its middle frames over the window, a rate
    below 1 (faster music) brings in frames mirrored at its edges. Windows
    whose rate is 1 are returned unchanged. Keeping the width lets every
    mini-batch mix stretched and plain windows, so that batch normalisation
    sees in training the same mixture it is given running statistics of.

    Parameters
    ----------
    x : torch.Tensor of shape (n, channels, bands, frames)
    rates : torch.Tensor of shape (n,)
        Positive factors.

    Returns
    -------
    torch.Tensor of the shape of ``x``
    """
    rows = torch.nonzero(rates != 1.0).reshape(-1)
    if not len(rows):
        return x
    bands, width = x.shape[-2], x.shape[-1]
    centre = (width - 1) / 2.0
    frame = torch.arange(width, dtype=torch.float64)
    source = centre + (frame[None, :] - centre) / rates[rows, None].double()
    # grid_sample's coordinates (align_corners=False): pixel p is at
    # (2p + 1) / size - 1; the bands are sampled where they are
    across = (2.0 * source + 1.0) / width - 1.0
    down = (2.0 * torch.arange(bands, dtype=torch.float64) + 1.0) / bands - 1.0
    grid = torch.stack(
        torch.broadcast_tensors(across[:, None, :], down[None, :, None]), dim=-1
    )
    out = x.clone()
    out[rows] = torch.nn.functional.grid_sample(
        x[rows],
        grid.to(x.dtype),
        mode="bilinear",
        padding_mode="reflection",
        align_corners=False,
    )
    return out


def _tilt_basis(X):
    """What ``tilt_shift`` and ``noise_snr`` need of ``X``, as float32 tensors.

    ``(ramp, width, dct, scale, offset)``: octaves from 1 kHz of every mel
    band's centre (1, n_mels), the bands' relative widths (1, n_mels, 1),
    the orthonormal DCT-II rows of the MFCCs (n_mfcc, n_mels), and the
    affine map of ``X``'s values (1, n_mfcc, 1).
    """
    import scipy.fft

    mel_hz = getattr(X, "mel_hz", None)
    if mel_hz is None:
        raise ValueError(
            "tilt_shift and noise_snr need features that know their mel bands: the "
            "ClipFeatures of MFCCTransformer(duration=None, features='mfcc')"
        )
    mel_hz = np.asarray(mel_hz, dtype=np.float64)
    n_mels, n_mfcc = len(mel_hz), int(X.n_mfcc)
    ramp = np.log2(np.maximum(mel_hz, 20.0) / 1000.0)
    # Slaney bands reach from the centre below to the centre above.
    edges = np.concatenate([[0.0], mel_hz, [2 * mel_hz[-1] - mel_hz[-2]]])
    width = (edges[2:] - edges[:-2]) / 2
    dct = scipy.fft.dct(np.eye(n_mels), axis=0, type=2, norm="ortho")[:n_mfcc]
    scale = getattr(X, "scale", None)
    offset = getattr(X, "offset", None)
    scale = np.ones(n_mfcc) if scale is None else np.asarray(scale, np.float64)
    offset = np.zeros(n_mfcc) if offset is None else np.asarray(offset, np.float64)
    parts = (
        ramp[None, :],
        (width / width.sum())[None, :, None],
        dct,
        scale[None, :, None],
        offset[None, :, None],
    )
    return tuple(torch.from_numpy(part.astype(np.float32)) for part in parts)


def change_windows(x, tilt, basis, snr=None):
    """MFCC windows as after a tilt EQ (and white noise) of their music.

    In the mel domain the MFCCs describe (their inverse DCT, smoothed by the
    coefficients left out), each band gains ``tilt`` dB per octave about
    1 kHz (clipped to :data:`TILT_CLIP_DB`); where ``snr`` is given, white
    noise that many dB below the window's power is added to every band;
    the whole window is brought back to the power it had (as
    ``loudness="rms"`` and a mastering would), and the levels are floored
    :data:`TILT_TOP_DB` below their maximum again. The change of the floored
    levels, turned back into MFCCs, is added to ``x``, so no change gives
    ``x`` exactly. What ``WindowDataset(tilt_shift=..., noise_snr=...)``
    applies to training windows.

    Parameters
    ----------
    x : torch.Tensor of shape (n, 1, n_mfcc, width), float32
        Windows in the units of their ``ClipFeatures`` (after its affine
        map, as the net reads them).
    tilt : torch.Tensor of shape (n,)
        dB per octave, per window (0: none).
    basis : tuple
        What ``_tilt_basis(X)`` returns for the ``ClipFeatures`` ``X`` that
        the windows come from (its mel bands and affine map).
    snr : torch.Tensor of shape (n,), optional
        Signal-to-noise ratio in dB per window (``inf``: no noise); None:
        no noise at all.

    Returns
    -------
    changed : torch.Tensor, the shape and dtype of ``x``
    """
    ramp, width, dct, scale, offset = basis
    raw = (x[:, 0] - offset) / scale  # (n, n_mfcc, frames), dB cepstrum
    level = torch.einsum("cm,ncf->nmf", dct, raw)  # (n, n_mels, frames), dB
    gain = torch.clamp(tilt.to(x.dtype)[:, None] * ramp, -TILT_CLIP_DB, TILT_CLIP_DB)
    before = torch.exp(level * _DB)  # power (exp: several times faster than pow)
    after = before * torch.exp(gain * _DB)[:, :, None]
    power = (width * before).mean(dim=2).sum(dim=1)  # (n,)
    total = (width * after).mean(dim=2).sum(dim=1)
    if snr is not None:
        # white noise: the same power density in every band (Slaney bands
        # hold their mean density), at ``snr`` dB below the changed window
        noise = total * torch.exp(-snr.to(x.dtype) * _DB)
        after = after + noise[:, None, None]
        total = total + noise
    changed = 10.0 * torch.log10(after * (power / total)[:, None, None])
    # Only the change is added: the smoothed levels, floored as the changed
    # ones are, are taken away again, so no change gives ``x`` itself.
    change = _floored(changed) - _floored(level)
    out = x[:, 0] + torch.einsum("cm,nmf->ncf", dct, change) * scale
    return out[:, None]


def _floored(level):
    floor = level.amax(dim=(1, 2), keepdim=True) - TILT_TOP_DB
    return torch.maximum(level, floor)


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
        Augmentation: :data:`STRETCH_P` of the windows read as part of a
        mini-batch are stretched or squeezed in time, each by its own factor
        ``s`` drawn uniformly from ``[1 - time_stretch, 1 + time_stretch]``,
        their frames linearly interpolated as a phase-vocoder tempo change does
        (it interpolates the magnitudes of neighbouring frames at the new rate)
        and the window's width kept (:func:`stretch_each`). The others are left
        as they are: stretching every window blends every training frame, which
        frames at prediction are not (measured when whole mini-batches were
        stretched: 4 to 12 points lower on clean clips). Every mini-batch holds
        both kinds, so the running statistics of batch normalisation describe
        the batches the net learned on (until stop 26 whole mini-batches were
        stretched to another width; measured 2-4 points lower without test-time
        views, docs/results.rst). Items read one at a time are not stretched.
    tilt_shift : float, default=0.0
        Augmentation: every window read as part of a mini-batch gets a
        spectral tilt of its own, a uniform draw from ``[-tilt_shift,
        tilt_shift]`` dB per octave about 1 kHz, applied to its MFCCs
        through the mel levels they describe (:func:`change_windows`), fresh
        every epoch. Needs ``X`` to know the mel bands of its MFCCs
        (``ClipFeatures.mel_hz``).
    noise_snr : float, default=0.0
        Augmentation (0: off): :data:`NOISE_P` of the windows read as part of
        a mini-batch get white noise at an SNR drawn uniformly from
        ``[noise_snr, noise_snr + NOISE_SPAN_DB]`` dB, added to the mel
        levels their MFCCs describe (:func:`change_windows`), fresh every
        epoch. Needs ``X.mel_hz`` likewise.
    short_excerpts : float, default=0.0
        Augmentation (0: off): this share of the windows read as part of a
        mini-batch keep only their first ``L`` frames, ``L`` drawn uniformly
        from :data:`SHORT_MIN` of the window up to the whole window, and
        repeat them to fill it, as a clip shorter than one window is filled
        at prediction (:func:`~genreclf.windows.read_windows`). The net then
        sees, in training, what a 2 s clip looks like, seam included.
    variants : bool, default=False
        Read a random augmentation variant of the clip for each item, each
        time it is drawn, where ``X`` has variants (training); False reads
        variant 0, the clip itself (validation, prediction).
    pairs : bool, default=False
        Mini-batches (items read as a list) carry a second view of the same
        windows as a fifth element: the same clips and first frames, with
        their own draw of every augmentation (variant, tilt, noise,
        stretch). For ``GenreNet(consistency=...)``.

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
        tilt_shift=0.0,
        noise_snr=0.0,
        pairs=False,
        short_excerpts=0.0,
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
        self.tilt_shift = float(tilt_shift)
        self.noise_snr = float(noise_snr)
        self.short_excerpts = float(short_excerpts)
        changes = self.tilt_shift or self.noise_snr
        self._basis = _tilt_basis(X) if changes else None
        self.pairs = bool(pairs)

    def __len__(self):
        return len(self.clip_ids)

    def _starts(self, k):
        if self.mode == "all":
            return self.starts[k]
        room = self.widths[self.clip_ids[k]] - self.window
        draw = torch.rand(len(k), dtype=torch.float64).numpy()
        return np.where(room > 0, (draw * (room + 1)).astype(np.intp), 0)

    def _read(self, k, starts=None):
        pos = self.clip_ids[k]
        if starts is None:
            starts = self._starts(k)
        variants = None
        if self.n_variants is not None:
            draw = torch.rand(len(k), dtype=torch.float64).numpy()
            variants = (draw * self.n_variants[pos]).astype(np.intp)
        x = read_windows(self.X, self.indices[pos], starts, self.window, variants)
        return torch.from_numpy(x), pos, starts

    def __getitem__(self, k):
        if isinstance(k, (int, np.integer)):
            x, pos, _ = self._read(np.array([int(k)], dtype=np.intp))
            return self._augment(x[0]), torch.tensor(self.clip_labels[pos[0]])
        k = np.asarray(k, dtype=np.intp)
        x, pos, starts = self._read(k)
        weights = None if self.uniform else torch.from_numpy(self.weights[k])
        batch = (
            self._view(x),
            torch.from_numpy(self.clip_labels[pos]),
            weights,
            torch.from_numpy(pos.astype(np.int64)),
        )
        if not self.pairs:
            return batch
        return (*batch, self._view(self._read(k, starts)[0]))

    def varies(self):
        """Whether two reads of a mini-batch can differ (variants or changes on the fly)."""
        return bool(
            self.n_variants is not None
            or self._basis is not None
            or self.time_stretch
            or self.short_excerpts
            or self._augments()
        )

    def _view(self, x):
        """A mini-batch of windows after the on-the-fly augmentations."""
        if self._augments():
            x = torch.stack([self._augment(item) for item in x])
        if self.short_excerpts:
            x = self._shorten(x)
        if self._basis is not None:
            x = self._production(x)
        if self.time_stretch:
            x = self._stretch(x)
        return x

    def _production(self, x):
        n = x.shape[0]
        tilt = self.tilt_shift * (2.0 * torch.rand(n, dtype=torch.float64) - 1.0)
        snr = None
        if self.noise_snr:
            snr = self.noise_snr + NOISE_SPAN_DB * torch.rand(n, dtype=torch.float64)
            quiet = torch.rand(n, dtype=torch.float64) >= NOISE_P
            snr = snr.masked_fill(quiet, float("inf"))
        return change_windows(x, tilt, self._basis, snr)

    def _shorten(self, x):
        n, width = x.shape[0], x.shape[-1]
        cut = torch.rand(n, dtype=torch.float64) < self.short_excerpts
        shortest = max(1, int(np.ceil(SHORT_MIN * width)))
        length = torch.randint(shortest, width + 1, (n,))
        rows = torch.nonzero(cut & (length < width)).reshape(-1)
        if not len(rows):
            return x
        # frame t of a cut window is frame t mod L of the window
        frames = torch.arange(width).unsqueeze(0) % length[rows].unsqueeze(1)
        index = frames[:, None, None, :].expand(-1, *x.shape[1:3], -1)
        x = x.clone()
        x[rows] = torch.gather(x[rows], -1, index)
        return x

    def _stretch(self, x):
        # torch's seeded generator: which windows, then how much
        n = x.shape[0]
        chosen = torch.rand(n, dtype=torch.float64) < STRETCH_P
        draw = torch.rand(n, dtype=torch.float64)
        rates = torch.where(chosen, 1.0 + self.time_stretch * (2.0 * draw - 1.0), 1.0)
        return stretch_each(x, rates)

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


# Documented (and named in pickles) where users import them from.
WindowDataset.__module__ = "genreclf.windows"
change_windows.__module__ = "genreclf.windows"
stretch_each.__module__ = "genreclf.windows"
