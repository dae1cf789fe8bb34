"""Errors of a full (or read-only) disk, worded for what was being written.

A bare ``OSError: [Errno 28] No space left on device`` names neither the folder
nor the file. :func:`storage_error` turns it into an ``OSError`` with the same
``errno`` whose message says both and what is kept; :func:`artifact_write`
does so for the artifacts logged to the active MLflow run.
"""

import contextlib
import errno
import os
import urllib.parse

__all__ = ["STORAGE_ERRNOS", "artifact_folder", "artifact_write", "storage_error"]

#: ``errno`` values of a full disk, an exceeded quota and a read-only folder.
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def storage_error(exc, folder, what):
    """Return an ``OSError`` naming ``folder`` and ``what`` was being written.

    Parameters
    ----------
    exc : OSError
        The error of the write.
    folder : str or path-like
        The folder (or artifact URI) being written to.
    what : str
        What was being written, e.g. ``"the checkpoint member1.joblib"``.

    Returns
    -------
    error : OSError
        With ``exc.errno`` and a message that names ``folder`` and ``what``
        and says that what was written before is kept; ``exc`` itself when
        its errno is not one of :data:`STORAGE_ERRNOS`.

    Examples
    --------
    >>> import errno
    >>> err = storage_error(OSError(errno.ENOSPC, "No space left on device"),
    ...                     "/data/ckpt", "the checkpoint member1.joblib")
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    /data/ckpt: no space left on device while writing the checkpoint
    member1.joblib; what was written before is kept: free some space (or
    choose another folder) and run the command again
    """
    if getattr(exc, "errno", None) not in STORAGE_ERRNOS or hasattr(
        exc, "genreclf_written"
    ):
        return exc
    reason = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only file system",
        errno.EFBIG: "file too large for this file system",
    }[exc.errno]
    fix = "free some space (or choose another folder)"
    if exc.errno == errno.EROFS:
        fix = "choose a writable folder"
    error = OSError(
        f"{os.fspath(folder)}: {reason} while writing {what}; what was written "
        f"before is kept: {fix} and run the command again"
    )
    error.errno = exc.errno  # str(error) stays the message alone
    error.genreclf_written = what  # worded already: callers leave it as it is
    return error


def _local_folder(uri):
    """``uri`` as a local path when it is one (``file:`` or no scheme), else ``uri``.

    Examples
    --------
    >>> _local_folder("file:///data/mlruns/0/abc/artifacts")
    '/data/mlruns/0/abc/artifacts'
    >>> _local_folder("/data/mlruns/0/abc/artifacts")
    '/data/mlruns/0/abc/artifacts'
    >>> _local_folder("s3://bucket/0/abc/artifacts")
    's3://bucket/0/abc/artifacts'
    """
    uri = os.fspath(uri)
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        from urllib.request import url2pathname

        return url2pathname(parsed.path)
    return uri  # a plain path already, or a remote store


def artifact_folder():
    """The artifact location of the active MLflow run, as a local path if it is one.

    Returns
    -------
    folder : str
        The run's artifact folder for a local (``file:``) location, the
        artifact URI itself otherwise; the tracking URI when no run is active
        (none is started).
    """
    import mlflow

    run = mlflow.active_run()
    uri = mlflow.get_tracking_uri() if run is None else run.info.artifact_uri
    return _local_folder(uri)


@contextlib.contextmanager
def artifact_write(what, folder=None):
    """Word a full disk while the block logs an artifact to the active run.

    An ``OSError`` whose errno is one of :data:`STORAGE_ERRNOS` raised in the
    block is re-raised as :func:`storage_error` of it (from it), naming
    ``folder`` and ``what``; any other exception, and an error worded already,
    propagates unchanged.

    Parameters
    ----------
    what : str
        What the block writes, e.g. ``"the confusion-matrix figure
        figures/confusion_matrix.png"``.
    folder : str or path-like, optional
        Where it is written (a ``file:`` URI is named as its path); by default
        :func:`artifact_folder`.

    Examples
    --------
    >>> try:
    ...     with artifact_write("the report report.txt", "/data/artifacts"):
    ...         raise OSError(errno.EDQUOT, "Disk quota exceeded")
    ... except OSError as err:
    ...     print(err.errno == errno.EDQUOT, err)  # doctest: +NORMALIZE_WHITESPACE
    True /data/artifacts: disk quota exceeded while writing the report
    report.txt; what was written before is kept: free some space (or choose
    another folder) and run the command again
    """
    try:
        yield
    except OSError as exc:
        if getattr(exc, "errno", None) not in STORAGE_ERRNOS or hasattr(
            exc, "genreclf_written"
        ):
            raise
        where = artifact_folder() if folder is None else _local_folder(folder)
        raise storage_error(exc, where, what) from exc
