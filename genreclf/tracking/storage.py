"""Errors of a full (or read-only) disk, worded for what was being written.

A bare ``OSError: [Errno 28] No space left on device`` names neither the folder
nor the file. :func:`storage_error` turns it into an ``OSError`` with the same
``errno`` whose message says both and what is kept.
"""

import errno
import os

__all__ = ["STORAGE_ERRNOS", "storage_error"]

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
