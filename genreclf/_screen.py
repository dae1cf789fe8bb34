"""The one bad-file screen of genreclf: which clips cannot be decoded, and why.

:func:`check_files` and :func:`find_bad_files` are public as
``genreclf.features.check_files`` and ``genreclf.features.find_bad_files``;
they live apart so that :mod:`genreclf.features` stays the transformer.
"""

import warnings

import numpy as np

from genreclf.datasets import _as_1d
from genreclf.exceptions import DatasetWarning, FeatureExtractionError

__all__ = ["check_files", "find_bad_files"]


def find_bad_files(paths, transformer=None):
    """List the audio files that cannot be decoded, and why.

    Every good file is extracted (and cached, when the transformer has a
    ``memory``), so a later ``fit`` on the same files decodes nothing.

    Parameters
    ----------
    paths : array-like of shape (n_clips,) of str or path-like
        Audio files.
    transformer : MFCCTransformer or None, default=None
        The transformer whose settings and cache to use; None uses the
        defaults (no cache).

    Returns
    -------
    failures : dict of str to str
        Path of every bad file -> the reason; empty when all files are good.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> empty = os.path.join(folder, "empty.wav")
    >>> open(empty, "wb").close()
    >>> find_bad_files([empty]) == {empty: "empty file (0 bytes)"}
    True
    """
    if transformer is None:
        from genreclf.features import MFCCTransformer

        transformer = MFCCTransformer()
    _, failures = transformer._extract(paths)
    return failures


def check_files(paths, y=None, *, on_error="raise", transformer=None):
    """Find unreadable audio files before training; raise or skip them.

    The one bad-file screen of genreclf: every file is decoded and turned into
    features once, through ``transformer``'s cache (see
    :func:`find_bad_files`), so that the ``fit`` that follows reads the
    features from the cache.

    Parameters
    ----------
    paths : array-like of shape (n_files,)
        Audio file paths.
    y : array-like of shape (n_files,) or None, default=None
        Labels aligned with ``paths``.
    on_error : {"raise", "skip"}, default="raise"
        "raise": raise one error that lists every bad file and its reason.
        "skip": warn (:class:`~genreclf.exceptions.DatasetWarning`, naming the
        files) and return the good files with their own labels.
    transformer : MFCCTransformer or None, default=None
        The feature extractor (and cache) that training will use; None uses
        a default ``MFCCTransformer()``.

    Returns
    -------
    paths : ndarray of shape (n_good,), dtype=object
        The readable files, in their original order.
    y : ndarray of shape (n_good,) or None
        Their labels (the same rows as ``paths``); None when ``y`` is None.
    bad : dict of str to str
        ``{path: reason}`` for every file left out (empty when all are good).

    Raises
    ------
    FeatureExtractionError
        With ``on_error="raise"`` when any file is bad; its message and
        ``failures`` attribute list every bad file with the reason.
    ValueError
        ``paths`` and ``y`` differ in length, or ``on_error`` is invalid.

    See Also
    --------
    find_bad_files : The check itself (``{path: reason}``).

    Examples
    --------
    >>> import os, tempfile, warnings
    >>> from genreclf.features import MFCCTransformer
    >>> from genreclf.synthetic import make_synthetic
    >>> folder = tempfile.mkdtemp()
    >>> paths, y = make_synthetic(folder, n_per_genre=1, duration=0.2,
    ...                           random_state=0, genres=["rock", "swing"])
    >>> empty = os.path.join(folder, "empty.wav")
    >>> open(empty, "wb").close()
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     good, good_y, bad = check_files(
    ...         [paths[0], empty, paths[1]], ["rock", "jazz", "swing"],
    ...         on_error="skip", transformer=MFCCTransformer(duration=0.2))
    >>> good_y.tolist(), bad == {empty: "empty file (0 bytes)"}
    (['rock', 'swing'], True)
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be one of ['raise', 'skip'], got {on_error!r}")
    paths = _as_1d(np.asarray(paths, dtype=object).reshape(-1))
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(paths):
            raise ValueError(
                f"paths and y must be 1-D of the same length, got {len(paths)} paths "
                f"and y of shape {y.shape}"
            )
    bad = {str(p): str(r) for p, r in find_bad_files(paths, transformer).items()}
    if not bad:
        return paths, y, {}
    if on_error == "raise":
        raise FeatureExtractionError(bad, n_files=len(set(paths)))
    listing = "\n".join(f"  {p}: {r}" for p, r in bad.items())
    warnings.warn(
        f"{len(bad)} of {len(paths)} files cannot be read and are skipped:\n{listing}",
        DatasetWarning,
        stacklevel=2,
    )
    keep = np.array([p not in bad for p in paths], dtype=bool)
    return paths[keep], (None if y is None else y[keep]), bad
