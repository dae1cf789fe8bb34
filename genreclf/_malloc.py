"""glibc malloc settings for the command line's training and prediction.

PyTorch frees and reallocates the same large buffers at every batch. With
glibc's defaults, blocks over the (dynamic) mmap threshold are mapped and
unmapped each time, and freed memory at the top of the heap is returned to the
system at once, so every batch pays for fresh, zeroed pages. The settings of
:data:`MALLOC_ENV` keep that memory in the process: training ran 1.3-1.8x
faster on a 2-core CPU (``python benchmarks/training.py --malloc-compare``).

glibc reads the ``MALLOC_*_`` variables only when a process starts, so a
running process sets them with ``mallopt(3)`` instead:
:func:`apply_malloc_settings` does that, on Linux with glibc only, and only for
the settings the user has not chosen in the environment. The library never
calls it on import; ``genreclf``'s ``main()`` does, before any work starts.
Standard library only, so that calling it costs nothing.
"""

import ctypes
import os
import sys

__all__ = ["MALLOC_ENV", "MALLOPT_PARAMS", "SERVER_MALLOC_ENV", "apply_malloc_settings"]

#: glibc malloc settings that keep freed tensor memory in the process instead
#: of returning it to the system after every batch (environment variable ->
#: bytes): a 4 GiB mmap threshold, an 8 GiB trim threshold and 1 GiB of top
#: padding. They take effect at start-up when set in the environment of a new
#: process (``benchmarks/accuracy.py`` re-runs itself with them), or at once
#: through :func:`apply_malloc_settings`.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "8589934592",
    "MALLOC_TOP_PAD_": "1073741824",
}

#: ``mallopt`` parameter numbers of glibc's ``<malloc.h>`` for each variable
#: (``M_TRIM_THRESHOLD`` -1, ``M_TOP_PAD`` -2, ``M_MMAP_THRESHOLD`` -3).
MALLOPT_PARAMS = {
    "MALLOC_TRIM_THRESHOLD_": -1,
    "MALLOC_TOP_PAD_": -2,
    "MALLOC_MMAP_THRESHOLD_": -3,
}

#: The glibc tunable (``GLIBC_TUNABLES=glibc.malloc.top_pad=...``) that sets
#: the same value as each variable: a user who set either one chose it.
_TUNABLES = {
    "MALLOC_TRIM_THRESHOLD_": "glibc.malloc.trim_threshold",
    "MALLOC_TOP_PAD_": "glibc.malloc.top_pad",
    "MALLOC_MMAP_THRESHOLD_": "glibc.malloc.mmap_threshold",
}

#: ``mallopt`` takes a C ``int``: larger values are lowered to this (2 GiB - 1),
#: which keeps every block under 2 GiB on the heap and untrimmed, as the
#: environment's 4 and 8 GiB do.
_INT_MAX = 2**31 - 1


def _glibc():
    """Return this process's C library if it is glibc with ``mallopt``, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the libraries already loaded: this process's libc
    except OSError:
        return None
    # Only glibc defines gnu_get_libc_version (musl's mallopt does nothing).
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):
        return None
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return libc


def _tunables_set(environ):
    """Names of the glibc tunables given in ``GLIBC_TUNABLES``."""
    text = environ.get("GLIBC_TUNABLES", "")
    return {item.partition("=")[0].strip() for item in text.split(":") if item}


def _as_bytes(name, value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or isinstance(value, bool):
        raise ValueError(
            f"malloc setting {name} must be a number of bytes >= 0, got {value!r}"
        )
    return number


#: For ``genreclf serve``: glibc's default thresholds, but fixed. glibc raises
#: its mmap threshold after a large block is freed, so the buffers of one burst
#: of requests would stay on the heap; fixed at 128 KiB they go back to the
#: system (benchmarks/serve_load.py: +80 MB after a burst with the dynamic
#: threshold, +32 MB with these, load ~2).
SERVER_MALLOC_ENV = {
    "MALLOC_TRIM_THRESHOLD_": 131072,
    "MALLOC_MMAP_THRESHOLD_": 131072,
    "MALLOC_TOP_PAD_": 131072,
}


def apply_malloc_settings(settings=None, *, environ=None):
    """Set glibc's malloc thresholds in this process, where the user has not.

    For each setting, on Linux with glibc, and unless the environment already
    holds that variable (or its ``GLIBC_TUNABLES`` equivalent), calls
    ``mallopt(3)`` with its value. Elsewhere (macOS, Windows, musl) it does
    nothing. Settings made this way apply to the allocations that follow; the
    process's child processes do not inherit them.

    Parameters
    ----------
    settings : dict of str to int or str, default=None
        Environment variable names (keys of :data:`MALLOPT_PARAMS`) and their
        values in bytes; None: :data:`MALLOC_ENV`.
    environ : mapping, default=None
        The environment in which the user's own settings are looked up;
        None: ``os.environ``.

    Returns
    -------
    applied : dict of str to int
        The settings that ``mallopt`` accepted, as variable name -> the bytes
        set, for the run's parameters; empty when nothing was applied.
        ``mallopt`` takes a C ``int``, so a value over 2 GiB - 1 is set (and
        reported) as 2147483647.

    Raises
    ------
    ValueError
        For an unknown setting or a value that is not a number of bytes >= 0.

    See Also
    --------
    MALLOC_ENV : The settings, and how they were measured.

    Examples
    --------
    >>> apply_malloc_settings(environ={k: "0" for k in MALLOC_ENV})
    {}
    """
    settings = MALLOC_ENV if settings is None else settings
    environ = os.environ if environ is None else environ
    values = {}
    for name, value in settings.items():
        if name not in MALLOPT_PARAMS:
            raise ValueError(
                f"unknown malloc setting {name!r}: use one of {sorted(MALLOPT_PARAMS)}"
            )
        values[name] = min(_as_bytes(name, value), _INT_MAX)
    tunables = _tunables_set(environ)
    wanted = {
        name: value
        for name, value in values.items()
        if name not in environ and _TUNABLES[name] not in tunables
    }
    libc = _glibc() if wanted else None
    if libc is None:
        return {}
    return {
        name: value
        for name, value in wanted.items()
        if libc.mallopt(MALLOPT_PARAMS[name], value) == 1
    }
