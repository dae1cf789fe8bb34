"""MFCCs of clips of any length, one sample per clip, kept on disk or in memory.

:class:`ClipFeatures` is what :class:`~genreclf.features.MFCCTransformer`
returns when clips keep their real length (``duration=None``): for
scikit-learn it is a 1-D sequence of ``n_clips`` samples (``len``, ``shape``,
indexing with integers, slices, index arrays and boolean masks, as
``GridSearchCV`` and ``cross_val_score`` do), while each sample is one clip's
MFCC matrix of its own width. The matrices live either in memory or in the
transformer's cache entries on disk, which are memory-mapped and read a window
at a time, so a dataset larger than memory trains in memory bounded by a
mini-batch. A per-coefficient affine map (the standardizer's) is applied as
windows are read, so standardizing copies nothing.

Indexing never copies features: a subset shares the parent's storage.

A ClipFeatures made for training may hold *variants* of every clip (see
``MFCCTransformer(augment=...)``): variant 0 is the clip itself, the others
the same clip after a random change of production; ``window(..., variant=v)``
reads one of them.
"""

import os
from collections import OrderedDict
from numbers import Integral

import numpy as np

from genreclf._mfcc_cache import ENTRY_HEADER as _ENTRY_HEADER
from genreclf._mfcc_cache import ENTRY_MAGIC as _ENTRY_MAGIC

__all__ = ["ClipFeatures", "read_entry_header"]

#: Cache entries memory-mapped at once per ClipFeatures (bounds open files).
_OPEN_MAPS = 64


def read_entry_header(entry):
    """Shape ``(n_mfcc, n_frames)`` of a cache entry, from its header.

    Parameters
    ----------
    entry : str or path-like
        A cache entry written by the MFCC transformer.

    Returns
    -------
    shape : tuple of (int, int)

    Raises
    ------
    ValueError
        The file is not a cache entry or its size does not match its header.
    """
    entry = os.fspath(entry)
    with open(entry, "rb") as fh:
        head = fh.read(_ENTRY_HEADER)
        size = os.fstat(fh.fileno()).st_size
    if len(head) != _ENTRY_HEADER or head[:4] != _ENTRY_MAGIC:
        raise ValueError(f"{entry}: not an MFCC cache entry")
    _, rows, cols, _ = np.frombuffer(head, dtype="<u4", count=4, offset=4)
    if size != _ENTRY_HEADER + 4 * int(rows) * int(cols):
        raise ValueError(f"{entry}: {size} bytes do not match shape ({rows}, {cols})")
    return int(rows), int(cols)


class ClipFeatures:
    """One MFCC matrix per clip, each of its own width.

    Parameters
    ----------
    sources : sequence
        One item per clip: an ndarray of shape ``(n_mfcc, n_frames_i)`` or
        ``(1, n_mfcc, n_frames_i)`` (kept in memory), or the path of a cache
        entry on disk (memory-mapped when read).
    n_frames : array-like of int, optional
        Width of each clip; read from the arrays or the entry headers when
        None.
    scale, offset : ndarray of shape (n_mfcc,), optional
        Per-coefficient affine map ``x * scale + offset`` applied when
        windows or clips are read (identity when None).
    variants : sequence of sequences, optional
        For training: ``variants[i]`` holds the ``n_variants - 1`` extra
        versions of clip ``i`` (arrays or cache entries, as ``sources``),
        the same number for every clip. None: each clip is its only variant.

    Attributes
    ----------
    n_frames : ndarray of shape (n_clips,), int
        Width of each clip, in frames.
    n_mfcc : int
        Coefficients (rows) per frame (0 for an empty set).
    n_variants : int
        Versions of every clip: 1, or ``1 + augment`` for the training
        features of ``MFCCTransformer(augment=...)``.
    variant_frames : ndarray of shape (n_clips, n_variants), int
        Width of every variant; column 0 is ``n_frames``.
    shape : tuple of (int,)
        ``(n_clips,)``: one sample per clip, as scikit-learn counts them.

    Examples
    --------
    >>> import numpy as np
    >>> X = ClipFeatures([np.ones((3, 5)), np.zeros((3, 2))])
    >>> X.shape, X.n_frames.tolist()
    ((2,), [5, 2])
    >>> X[1].shape
    (1, 3, 2)
    >>> X[[1, 0]].n_frames.tolist()
    [2, 5]
    >>> X.window(1, 0, 4)[0, 0].tolist()  # shorter than the window: repeated
    [0.0, 0.0, 0.0, 0.0]
    >>> V = ClipFeatures([np.ones((3, 5))], variants=[[np.full((3, 6), 2.0)]])
    >>> V.n_variants, V.variant_frames.tolist(), V.window(0, 4, 2, variant=1).max()
    (2, [[5, 6]], np.float32(2.0))
    """

    ndim = 1
    dtype = np.dtype(np.float32)
    #: Centre frequency (Hz) of each mel band the MFCCs were computed from,
    #: set by ``MFCCTransformer`` (``features="mfcc"``); None where unknown.
    #: ``GenreNet(tilt_shift=...)`` needs it.
    mel_hz = None

    def __init__(self, sources, n_frames=None, scale=None, offset=None, variants=None):
        sources = list(sources)
        n_clips = len(sources)
        if variants is None:
            extra = 0
            variants = [()] * n_clips
        else:
            variants = [list(v) for v in variants]
            if len(variants) != n_clips:
                raise ValueError(
                    f"{n_clips} clips but variants for {len(variants)} clips"
                )
            extras = {len(v) for v in variants}
            if len(extras) > 1:
                raise ValueError(
                    "every clip must have the same number of variants, got "
                    f"{sorted(extras)}"
                )
            extra = extras.pop() if extras else 0
        store = np.empty((n_clips, 1 + extra), dtype=object)
        frames = np.zeros((n_clips, 1 + extra), dtype=np.intp)
        n_mfccs = set()
        for i, (src, more) in enumerate(zip(sources, variants, strict=True)):
            for v, item in enumerate([src, *more]):
                if isinstance(item, (str, os.PathLike)):
                    store[i, v] = os.fspath(item)
                    if n_frames is None or v > 0:
                        rows, frames[i, v] = read_entry_header(store[i, v])
                        n_mfccs.add(rows)
                    continue
                arr = np.asarray(item, dtype=np.float32)
                if arr.ndim == 3 and arr.shape[0] == 1:
                    arr = arr[0]
                if arr.ndim != 2:
                    raise ValueError(
                        "each clip must be an array of shape (n_mfcc, n_frames), "
                        f"got shape {arr.shape} for clip {i}"
                    )
                store[i, v] = arr
                frames[i, v] = arr.shape[1]
                n_mfccs.add(arr.shape[0])
        if n_frames is not None:
            n_frames = np.asarray(n_frames, dtype=np.intp).reshape(-1)
            if len(n_frames) != n_clips:
                raise ValueError(
                    f"{n_clips} clips but {len(n_frames)} widths in n_frames"
                )
            frames[:, 0] = n_frames
        if len(n_mfccs) > 1:
            raise ValueError(
                f"clips have different numbers of coefficients: {sorted(n_mfccs)}"
            )
        self._store = store
        self._frames = frames
        self._maps = OrderedDict()
        if n_mfccs:
            self.n_mfcc = n_mfccs.pop()
        else:
            self.n_mfcc = self._raw(0).shape[0] if n_clips else 0
        self.scale = None if scale is None else np.asarray(scale, np.float32)
        self.offset = None if offset is None else np.asarray(offset, np.float32)

    @classmethod
    def _from_parts(cls, store, frames, n_mfcc, scale=None, offset=None):
        """Build from a checked ``store`` (n_clips, n_variants) and its widths."""
        new = object.__new__(cls)
        store = np.asarray(store, dtype=object)
        # no clip at all: (0, n_variants) as given (reshape(0, -1) is ambiguous)
        new._store = store if store.ndim == 2 else store.reshape(len(store), -1)
        new._frames = np.asarray(frames, dtype=np.intp).reshape(new._store.shape)
        new.n_mfcc = int(n_mfcc)
        new.scale, new.offset = scale, offset
        new._maps = OrderedDict()
        return new

    # ------------------------------------------------------------ sequence

    @property
    def shape(self):
        """``(n_clips,)``."""
        return (len(self._store),)

    def __len__(self):
        return len(self._store)

    @property
    def n_frames(self):
        """Width of each clip (variant 0), ndarray of shape (n_clips,), int."""
        return self._frames[:, 0]

    @property
    def n_variants(self):
        """Versions of every clip (1 without augmentation)."""
        return self._store.shape[1]

    @property
    def variant_frames(self):
        """Width of every variant, ndarray of shape (n_clips, n_variants), int."""
        return self._frames

    def __repr__(self):
        where = "disk" if self.on_disk else "memory"
        more = f", {self.n_variants} variants" if self.n_variants > 1 else ""
        return (
            f"ClipFeatures({len(self)} clips, n_mfcc={self.n_mfcc}, "
            f"{int(self.n_frames.sum())} frames{more}, in {where})"
        )

    @property
    def on_disk(self):
        """True when the clips are read from cache entries on disk."""
        return any(isinstance(s, str) for s in self._store.flat)

    def __getitem__(self, key):
        """One clip (an int) or a subset (a slice, index array or mask)."""
        if isinstance(key, tuple):  # scikit-learn's _array_indexing: X[key, ...]
            key = key[0] if len(key) and key[1:] in ((), (Ellipsis,)) else key
            if isinstance(key, tuple):
                raise IndexError(f"ClipFeatures takes one index, got {key!r}")
        if isinstance(key, Integral):
            return self.clip(int(key))
        index = np.arange(len(self))[key]
        return self._subset(index)

    def _subset(self, index):
        new = object.__new__(type(self))
        new._store = self._store[index]
        new._frames = self._frames[index]
        new.n_mfcc = self.n_mfcc
        new.scale, new.offset = self.scale, self.offset
        new.mel_hz = self.mel_hz
        new._maps = OrderedDict()
        return new

    def select_variants(self, variants):
        """Return a view that keeps each clip and only the variants ``variants``.

        Parameters
        ----------
        variants : array-like of int
            Variants to keep (1 to ``n_variants - 1``), in the order given; the
            clip itself (variant 0) is always kept, first.

        Returns
        -------
        clips : ClipFeatures
            Sharing this storage, with ``1 + len(variants)`` variants per clip.

        Examples
        --------
        >>> import numpy as np
        >>> more = [[np.zeros((3, 6)), np.zeros((3, 7))]]
        >>> V = ClipFeatures([np.ones((3, 5))], variants=more)
        >>> V.select_variants([2]).variant_frames.tolist()
        [[5, 7]]
        """
        keep = np.asarray(variants, dtype=np.intp).reshape(-1)
        if np.any(keep < 1) or np.any(keep >= self.n_variants):
            raise IndexError(
                f"variants must lie in 1..{self.n_variants - 1} (0 is the clip "
                f"itself, always kept), got {keep.tolist()}"
            )
        columns = np.concatenate([[0], keep])
        new = self._subset(np.arange(len(self)))
        new._store = self._store[:, columns]
        new._frames = self._frames[:, columns]
        return new

    def take(self, indices, axis=0):
        """Return the clips at ``indices`` (a subset sharing this storage)."""
        if axis != 0:
            raise ValueError("ClipFeatures can only be indexed along its clips")
        return self._subset(np.asarray(indices, dtype=np.intp))

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "ClipFeatures holds clips of different widths and is not turned into "
            "one array; pass it to genreclf's standardizer and GenreNet, or use "
            "clip(i) / window(i, start, width)"
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_maps"] = OrderedDict()  # open memory maps are not pickled
        return state

    # ------------------------------------------------------------ reading

    def _raw(self, i, variant=0):
        """Clip ``i`` (``variant``) as stored: an array or a read-only memory map."""
        src = self._store[i, variant]
        if not isinstance(src, str):
            return src
        arr = self._maps.get(src)
        if arr is None:
            try:
                rows, cols = read_entry_header(src)
                arr = np.memmap(
                    src, dtype="<f4", mode="r", offset=_ENTRY_HEADER, shape=(rows, cols)
                )
            except (OSError, ValueError) as exc:
                raise OSError(
                    f"MFCC cache entry {src} cannot be read ({exc}); it was removed "
                    "or changed after the features were computed: transform the "
                    "clips again"
                ) from None
            self._maps[src] = arr
            if len(self._maps) > _OPEN_MAPS:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(src)
        return arr

    def _affine(self, out):
        """Apply the affine map in place to ``out`` (..., n_mfcc, width)."""
        if self.scale is not None:
            out *= self.scale[:, None]
        if self.offset is not None:
            out += self.offset[:, None]
        return out

    def _block(self, i, start, width, variant, out):
        """Write frames ``start:start + width`` of clip ``i`` (raw) into ``out``."""
        raw = self._raw(i, variant)
        n = raw.shape[1]
        if n >= width:
            start = min(max(0, int(start)), n - width)
            out[...] = raw[:, start : start + width]
            return out
        for pos in range(0, width, n):  # shorter than the window: repeat it
            stop = min(width, pos + n)
            out[:, pos:stop] = raw[:, : stop - pos]
        return out

    def clip(self, i, variant=0):
        """Clip ``i``'s MFCCs, ndarray of shape (1, n_mfcc, n_frames_i), float32.

        Parameters
        ----------
        i : int
            The clip.
        variant : int, default=0
            Which version (0: the clip itself; see ``n_variants``).
        """
        out = np.array(self._raw(i, variant), dtype=np.float32, copy=True)
        return self._affine(out)[None]

    def window(self, i, start, width, variant=0):
        """Frames ``start:start + width`` of clip ``i``, shape (1, n_mfcc, width).

        A clip narrower than ``width`` is repeated along time to fill it;
        ``start`` is clamped to the variant's own width.

        Parameters
        ----------
        i : int
            The clip.
        start : int
            First frame.
        width : int
            Frames returned.
        variant : int, default=0
            Which version (0: the clip itself; see ``n_variants``).

        Returns
        -------
        window : ndarray of shape (1, n_mfcc, width), float32
        """
        out = np.empty((self.n_mfcc, int(width)), dtype=np.float32)
        self._block(i, start, int(width), variant, out)
        return self._affine(out)[None]

    def windows(self, clips, starts, width, variants=None):
        """Read a batch of windows: :meth:`window` of each, stacked.

        Parameters
        ----------
        clips, starts : array-like of int, of one length
            Clip and first frame of each window.
        width : int
            Frames per window.
        variants : array-like of int or None, default=None
            Variant of each window; None reads variant 0 everywhere.

        Returns
        -------
        batch : ndarray of shape (len(clips), 1, n_mfcc, width), float32
        """
        clips = np.asarray(clips, dtype=np.intp).reshape(-1)
        starts = np.broadcast_to(np.asarray(starts, dtype=np.intp), clips.shape)
        if variants is None:
            variants = np.zeros_like(clips)
        variants = np.broadcast_to(np.asarray(variants, dtype=np.intp), clips.shape)
        width = int(width)
        out = np.empty((len(clips), 1, self.n_mfcc, width), dtype=np.float32)
        for k, (i, s, v) in enumerate(zip(clips, starts, variants, strict=True)):
            self._block(int(i), int(s), width, int(v), out[k, 0])
        return self._affine(out)

    def iter_clips(self):
        """Yield each clip as :meth:`clip` returns it, in order."""
        for i in range(len(self)):
            yield self.clip(i)

    def with_affine(self, scale, offset):
        """Return a view whose values are ``x * scale + offset`` after this map."""
        scale = np.asarray(scale, dtype=np.float32)
        offset = np.asarray(offset, dtype=np.float32)
        old_scale = (
            np.ones(self.n_mfcc, np.float32) if self.scale is None else self.scale
        )
        old_offset = (
            np.zeros(self.n_mfcc, np.float32) if self.offset is None else self.offset
        )
        new = self._subset(np.arange(len(self)))
        new.scale = old_scale * scale
        new.offset = old_offset * scale + offset
        return new

    def to_padded(self, n_frames=None):
        """All clips in one array (n_clips, 1, n_mfcc, width), repeated to fill.

        For small data and tests only: this holds every clip in memory.
        """
        width = int(n_frames or (self.n_frames.max() if len(self) else 0))
        return self.windows(np.arange(len(self)), 0, width)
