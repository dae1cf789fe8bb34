"""Turning a list of paths into MFCC images: cache look-ups, then the workers.

The engine behind :meth:`genreclf.features.MFCCTransformer.transform`: every
distinct path is looked up in the cache (:mod:`genreclf._mfcc_cache`); the
others are decoded in batches by :func:`genreclf._mfcc.extract_batch`, in this
process or in joblib workers that receive the kernel built here. Private.
"""

import os
import warnings

import numpy as np

from genreclf import _mfcc, _mfcc_cache

_BATCH = 8  # clips per worker task: few round trips, results still stream


def paths_array(X):
    """Validate X as a 1-D sequence of paths; return a list of str."""
    if isinstance(X, (str, bytes, os.PathLike)):
        raise ValueError(
            "X must be a 1-D array-like of file paths, got a single path; "
            "wrap it in a list"
        )
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"X must be a 1-D array-like of file paths, got shape {arr.shape}"
        )
    paths = []
    for item in arr:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(
                "X must hold file paths (str or path-like), "
                f"got {type(item).__name__}: {item!r}"
            )
        paths.append(os.fspath(item))
    return paths


def n_rows(params):
    """Rows per frame of the output: ``n_mels`` for log-mel, else ``n_mfcc``."""
    return params["n_mels"] if params.get("features") == "logmel" else params["n_mfcc"]


def extract(paths, params, n_frames, memory=None, n_jobs=None, verbose=0):
    """MFCC images of ``paths``, each distinct file decoded at most once.

    Parameters
    ----------
    paths : list of str
        Audio files (duplicates allowed).
    params : dict
        The validated output parameters of the transformer.
    n_frames : int
        Width of every image.
    memory : None, str, path-like or joblib.Memory, default=None
        The cache.
    n_jobs : int or None, default=None
        joblib processes for the files not in the cache.
    verbose : int, default=0
        A progress bar over the decoded files when > 0.

    Returns
    -------
    features : ndarray of shape (len(paths), 1, n_mfcc, n_frames), float32
        Bad files are left as zeros.
    failures : dict of str to str
        Every bad file and its reason.
    """
    shape = (n_rows(params), n_frames)
    out = np.zeros((len(paths), 1, *shape), dtype=np.float32)
    positions = {}
    for i, path in enumerate(paths):
        positions.setdefault(path, []).append(i)
    location = _mfcc_cache.cache_location(memory)
    folder = _mfcc_cache.cache_dir(location, params, 5) if positions else None

    todo = []  # (path, cache entry or None)
    for path, idx in positions.items():
        entry = _mfcc_cache.entry_path(folder, path)
        cached = None if entry is None else _mfcc_cache.read_entry(entry, path, shape)
        if cached is None:
            todo.append((path, entry))
        else:
            out[idx, 0] = cached

    failures = {}
    results = _drive(todo, params, n_jobs, verbose, folder)
    for path, (mfcc, error, _) in results:
        if error is not None:
            failures[path] = error
        else:
            out[positions[path], 0] = mfcc
    return out, failures


def extract_clips(
    paths,
    params,
    memory=None,
    n_jobs=None,
    verbose=0,
    augment=0,
    augment_seed=0,
    augment_recipe="stacked",
):
    """Features of ``paths`` at their real length, as a :class:`ClipFeatures`.

    With a cache, every clip's entry is checked (CRC) or computed and written,
    and the result refers to the entries: no clip's features stay in memory.
    Without one (or where an entry cannot be written), the features are kept
    in memory.

    Parameters
    ----------
    paths : list of str
        Audio files (duplicates allowed).
    params : dict
        The validated output parameters, with ``duration`` None.
    memory, n_jobs, verbose
        As :func:`extract`.
    augment : int, default=0
        Extra variants per clip (``MFCCTransformer(augment=...)``).
    augment_seed : int, default=0
        Their seed.
    augment_recipe : {"stacked", "single"}, default="stacked"
        How their changes are drawn (``MFCCTransformer(augment_recipe=...)``).

    Returns
    -------
    features : ClipFeatures
        One sample per path; a bad file is one frame of zeros.
    failures : dict of str to str
        Every bad file and its reason.
    """
    from genreclf._augment import AUGMENT_VERSION
    from genreclf.clips import ClipFeatures

    rows = n_rows(params)
    n_var = 1 + int(augment)
    positions = {}
    for i, path in enumerate(paths):
        positions.setdefault(path, []).append(i)
    location = _mfcc_cache.cache_location(memory)
    folders = [None] * n_var
    if positions and location is not None:
        folders[0] = _mfcc_cache.cache_dir(location, params, 5)
        if augment:
            aug = {
                **params,
                "augment_version": AUGMENT_VERSION,
                "augment_seed": int(augment_seed),
            }
            if augment_recipe != "stacked":  # stacked entries keep their names
                aug["augment_recipe"] = augment_recipe
            folders[1:] = [_mfcc_cache.cache_dir(location, aug, 5)] * augment
    found = {}  # path -> [source per variant]: an entry path or an array
    widths = {}  # path -> [width per variant]
    todo = []  # (path, entry of variant 0, [(variant, entry), ...] to compute)
    for path in positions:
        found[path] = [None] * n_var
        widths[path] = [0] * n_var
        missing = []
        for j in range(n_var):
            entry = _mfcc_cache.entry_path(folders[j], path, j)
            cached = (
                None
                if entry is None
                else _mfcc_cache.read_entry(entry, path, (rows, None))
            )
            if cached is None:
                missing.append((j, entry))
            else:  # checked once; handed out as a reference to the entry
                found[path][j] = entry
                widths[path][j] = cached.shape[1]
        if missing:
            todo.append((path, missing[0][1], missing))

    failures = {}
    missing_of = {path: missing for path, _, missing in todo}
    keep = location is None
    for path, (outs, error, _) in _drive(
        todo,
        params,
        n_jobs,
        verbose,
        folders[0],
        keep,
        augment_seed=augment_seed,
        augment_recipe=augment_recipe,
    ):
        if error is not None:
            failures[path] = error
            continue
        for (j, entry), out in zip(missing_of[path], outs, strict=True):
            if isinstance(out, tuple):  # written: refer to the entry
                found[path][j] = entry
                widths[path][j] = out[1]
            else:
                found[path][j] = out
                widths[path][j] = out.shape[1]

    store = np.empty((len(paths), n_var), dtype=object)
    frames = np.ones((len(paths), n_var), dtype=np.intp)
    blank = np.zeros((rows, 1), dtype=np.float32)
    for path, idx in positions.items():
        for j in range(n_var):
            src = found[path][j]
            for i in idx:
                store[i, j] = blank if src is None else src
                frames[i, j] = 1 if src is None else widths[path][j]
    return ClipFeatures._from_parts(store, frames, rows), failures


def _drive(
    todo,
    params,
    n_jobs,
    verbose,
    folder,
    keep=True,
    augment_seed=0,
    augment_recipe="stacked",
):
    """:func:`_run` with a progress bar and the warning of an unwritable cache."""
    cache_problem = None
    bar = None
    if verbose and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="MFCC", unit="clip", leave=False)
    try:
        for path, result in _run(
            todo, params, n_jobs, keep, augment_seed, augment_recipe
        ):
            if result[2] is not None and cache_problem is None:
                cache_problem = result[2]
            if bar is not None:
                bar.update()
            yield path, result
    finally:
        if bar is not None:
            bar.close()
    if cache_problem is not None:
        warnings.warn(
            f"MFCC cache folder {folder} is not writable ({cache_problem}); "
            "features are computed without a cache",
            RuntimeWarning,
            stacklevel=5,
        )


def _run(todo, params, n_jobs, keep=True, augment_seed=0, augment_recipe="stacked"):
    """Yield ``(path, (output, error, cache_problem))`` as clips finish.

    ``todo`` holds ``(path, entry)`` or ``(path, entry, variants)`` items
    (see :func:`genreclf._mfcc.extract_task`).
    """
    if not todo:
        return
    from joblib import Parallel, delayed, effective_n_jobs

    # Built here (with librosa) and sent along: workers never import librosa.
    kernel = _mfcc.params_kernel(params)
    n_jobs = min(effective_n_jobs(n_jobs), len(todo))
    size = max(1, min(_BATCH, len(todo) // max(1, 4 * n_jobs)))
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    if n_jobs <= 1:
        entries_ok = True
        for batch in batches:
            if not entries_ok:  # the cache is not writable: stop trying
                batch = [_without_entries(item) for item in batch]
            results = _mfcc.extract_batch(
                batch, params, kernel, augment_seed, keep, augment_recipe
            )
            for item, result in zip(batch, results, strict=True):
                entries_ok = entries_ok and result[2] is None
                yield item[0], result
        return
    outputs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_mfcc.extract_batch)(
            batch, params, kernel, augment_seed, keep, augment_recipe
        )
        for batch in batches
    )
    for batch, results in zip(batches, outputs, strict=True):
        yield from zip((item[0] for item in batch), results, strict=True)


def _without_entries(item):
    """Return ``item`` (a todo item) with no cache entry to write."""
    if len(item) == 2:
        return item[0], None
    return item[0], None, [(j, None) for j, _ in item[2]]
