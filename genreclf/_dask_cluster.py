"""Reaching a Dask cluster for :func:`genreclf.distributed.use_dask`.

Import ``dask.distributed`` (or say how to install it), connect a client to
a scheduler by address or scheduler file, or start a local cluster of worker
processes, and make the worker plugin that sets the client's environment on
every worker. What the block does with the client (the joblib backend, the
forwarded variables, the shared-folder checks) stays in
:mod:`genreclf.distributed`.
"""

import os
from numbers import Integral

__all__ = [
    "INSTALL_HINT",
    "PLUGIN_NAME",
    "check_positive",
    "connect",
    "environ_plugin",
    "import_distributed",
    "is_local_uri",
]

INSTALL_HINT = "pip install 'genreclf[dask]'"
#: Name of the worker plugin of :func:`environ_plugin` (registering it again
#: replaces it).
PLUGIN_NAME = "genreclf-environ"


def import_distributed():
    """Import ``dask.distributed``, or fail saying how to install it."""
    try:
        import dask.distributed as distributed
    except ImportError as exc:
        raise ImportError(
            "genreclf.distributed needs dask.distributed, which is not installed "
            f"({exc}); install it with: {INSTALL_HINT}"
        ) from exc
    return distributed


def is_local_uri(uri):
    """Tell whether a tracking URI names a file on the client's own disk."""
    uri = str(uri).strip()
    return "://" not in uri or uri.startswith(("sqlite:", "file:"))


def environ_plugin(env):
    """Make a worker plugin that sets ``env`` on every worker, present or future."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class GenreclfEnviron(WorkerPlugin):
        name = PLUGIN_NAME

        def __init__(self, env):
            self.env = dict(env)

        def setup(self, worker):
            os.environ.update(self.env)

    return GenreclfEnviron(env)


def check_positive(name, value):
    """Return ``value`` as an int; ValueError unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def connect(
    distributed, scheduler, n_workers, threads_per_worker, local_directory, timeout
):
    """Return ``(client, cluster, owns_client, remote)`` for ``scheduler``."""
    if isinstance(scheduler, distributed.Client):
        return scheduler, None, False, True
    if scheduler is None or scheduler == "local":
        n_workers = check_positive("n_workers", n_workers)
        threads_per_worker = check_positive("threads_per_worker", threads_per_worker)
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # no dashboard; the scheduler's HTTP routes on any free local port
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            local_directory=None
            if local_directory is None
            else os.fspath(local_directory),
        )
        try:
            client = distributed.Client(cluster, timeout=timeout)
        except BaseException:
            cluster.close()
            raise
        return client, cluster, True, False
    if isinstance(scheduler, (str, os.PathLike)):
        text = os.fspath(scheduler)
        if "://" in text:
            kwargs = {"address": text}
        elif text.endswith(".json") or os.path.isfile(text):
            if not os.path.isfile(text):
                raise FileNotFoundError(
                    f"{text}: Dask scheduler file not found (written by "
                    "`dask scheduler --scheduler-file PATH`)"
                )
            kwargs = {"scheduler_file": text}
        else:
            kwargs = None
        if kwargs is not None:
            try:
                client = distributed.Client(**kwargs, timeout=timeout)
            except OSError as exc:  # includes TimeoutError
                raise ConnectionError(
                    f"cannot reach the Dask scheduler at {text} within {timeout} s "
                    f"({exc}); start one with `dask scheduler` and its workers with "
                    "`dask worker ADDRESS`"
                ) from exc
            return client, None, True, True
    raise ValueError(
        "scheduler must be None or 'local' (a local cluster), an address such as "
        "'tcp://HOST:8786', a scheduler file (.json) or a dask.distributed.Client; "
        f"got {scheduler!r}"
    )
