"""The on-disk MFCC cache: where it lives, and the format of its entries.

One small file per (clip, parameter set), in a folder per parameter set::

    <memory>/genreclf-mfcc/v<CACHE_VERSION>-<hash of the parameters>/
        params.json            the parameters, for a person reading the folder
        <file key>.mfcc        magic, version, shape, CRC-32, float32 data

Light on purpose (NumPy and the standard library): the joblib workers of
:class:`genreclf.features.MFCCTransformer` import it to write their entries.
Everything here is private.
"""

import hashlib
import json
import os
import warnings
import zlib

import numpy as np

from genreclf._files import atomic_write

# Bump when the features or the entry layout change: old entries are then ignored.
CACHE_VERSION = 1
CACHE_ROOT = "genreclf-mfcc"
ENTRY_SUFFIX = ".mfcc"
ENTRY_MAGIC = b"GCMF"
ENTRY_HEADER = 20  # magic, version, n_mfcc, n_frames, crc32: 5 x 4 bytes


def cache_location(memory):
    """Return the folder that ``memory`` (None, path or joblib.Memory) names."""
    if memory is None:
        return None
    if isinstance(memory, (str, os.PathLike)):
        return os.path.expanduser(os.fspath(memory))
    location = getattr(memory, "location", None)
    if location is None and hasattr(memory, "cachedir"):  # pragma: no cover
        location = memory.cachedir
    return None if location is None else os.fspath(location)


def cache_dir(location, params, stacklevel=4):
    """Create (if needed) and return the folder of one parameter set.

    Parameters
    ----------
    location : str or None
        The cache root (:func:`cache_location`); None means no cache.
    params : dict
        The parameters that change the output; their JSON text is hashed.
    stacklevel : int, default=4
        Of the warning when the folder cannot be created.

    Returns
    -------
    folder : str or None
        None when there is no cache or it cannot be created (with a
        ``RuntimeWarning``).
    """
    if location is None:
        return None
    blob = json.dumps({"version": CACHE_VERSION, **params}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    folder = os.path.join(location, CACHE_ROOT, f"v{CACHE_VERSION}-{digest}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        warnings.warn(
            f"MFCC cache folder {folder} cannot be created ({exc}); "
            "features are computed without a cache",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        return None
    info = os.path.join(folder, "params.json")
    if not os.path.exists(info):
        try:
            with atomic_write(info, "w") as fh:
                fh.write(blob)
        except OSError:
            pass  # only informative; a read-only cache is reported on write
    return folder


def file_key(path):
    """Cache key of a file: absolute path, size and mtime (None if no stat)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError, TypeError):
        return None
    ident = f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()


def entry_name(key, variant=0):
    """File name of the entry of a file key: ``<key>.mfcc``, ``<key>-v<j>.mfcc``."""
    return f"{key}{ENTRY_SUFFIX}" if not variant else f"{key}-v{variant}{ENTRY_SUFFIX}"


def entry_path(folder, path, variant=0):
    """Return the entry of ``path`` in ``folder``, or None (no cache, or no stat).

    Variant ``j > 0`` (``MFCCTransformer(augment=...)``) has its own entry,
    ``<key>-v<j>.mfcc``, in the folder of the augmentation's parameters.
    """
    key = file_key(path) if folder is not None else None
    return None if key is None else os.path.join(folder, entry_name(key, variant))


def encode_entry(arr):
    """Serialise MFCCs: magic, version, shape, CRC-32, little-endian float32."""
    data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
    header = np.array(
        [CACHE_VERSION, arr.shape[0], arr.shape[1], zlib.crc32(data)], dtype="<u4"
    )
    return ENTRY_MAGIC + header.tobytes() + data


def decode_entry(raw, shape):
    """Parse and validate an entry; raise ValueError when it is damaged.

    ``shape`` is ``(n_rows, n_frames)``; ``n_frames`` None accepts the width
    that the header gives (clips of their real length), checked against the
    size.
    """
    if len(raw) < ENTRY_HEADER:
        raise ValueError(f"{len(raw)} bytes, shorter than the header")
    if raw[:4] != ENTRY_MAGIC:
        raise ValueError("bad magic number")
    version, rows, cols, crc = np.frombuffer(raw, dtype="<u4", count=4, offset=4)
    n_mfcc, n_frames = shape
    if n_frames is None:
        n_frames = int(cols)
    expected = ENTRY_HEADER + 4 * n_mfcc * n_frames
    if len(raw) != expected:
        raise ValueError(f"{len(raw)} bytes, expected {expected}")
    if (int(version), int(rows), int(cols)) != (CACHE_VERSION, n_mfcc, n_frames):
        raise ValueError(f"header says version {version}, shape ({rows}, {cols})")
    data = raw[ENTRY_HEADER:]
    if zlib.crc32(data) != int(crc):
        raise ValueError("checksum mismatch")
    arr = np.frombuffer(data, dtype="<f4").reshape(n_mfcc, n_frames)
    if not np.isfinite(arr).all():
        raise ValueError("non-finite values")
    return arr.astype(np.float32, copy=True)


def read_entry(entry, path, shape, stacklevel=5):
    """Return the cached MFCCs of ``path``, or None to recompute them.

    A missing entry is None silently; an unreadable or damaged one is None
    with a ``RuntimeWarning`` naming the entry and the file.
    """
    try:
        with open(entry, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        warnings.warn(
            f"MFCC cache entry {entry} for {path} cannot be read ({exc}); "
            "recomputing it",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        return None
    try:
        return decode_entry(raw, shape)
    except ValueError as exc:
        warnings.warn(
            f"MFCC cache entry {entry} for {path} is damaged ({exc}); recomputing it",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        return None


def write_entry(entry, arr):
    """Write an entry atomically (:func:`genreclf._files.atomic_write`).

    Returns
    -------
    problem : str or None
        None on success, else why the entry could not be written.
    """
    folder = os.path.dirname(entry)
    for attempt in range(2):
        try:
            with atomic_write(entry) as fh:
                fh.write(encode_entry(arr))
            return None
        except FileNotFoundError as exc:
            if attempt == 0:  # the folder vanished: make it again, once
                try:
                    os.makedirs(folder, exist_ok=True)
                    continue
                except OSError as exc2:
                    return f"{type(exc2).__name__}: {exc2}"
            return f"{type(exc).__name__}: {exc}"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
    return "the cache folder keeps disappearing"  # pragma: no cover
