"""Check at once that the MLflow tracking store answers.

A local SQLite store (``sqlite:///mlflow.db``) is created on first use. Two
commands started at once in a fresh folder would both create its tables (and
one fail with SQLite's "duplicate column name"), so its first opening is
serialised by a lock file next to it, ``<database>.lock``.
"""

import contextlib
import os
import time

from genreclf.exceptions import TrackingServerError, TrainingInterrupted

__all__ = ["TrackingServerError", "check_tracking_server"]


@contextlib.contextmanager
def _environ(**values):
    """Set environment variables for the block, then put the old values back."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update({key: str(value) for key, value in values.items()})
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _sqlite_path(uri):
    """The database file of a ``sqlite:///`` URI, or None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


@contextlib.contextmanager
def _store_lock(uri):
    """Hold an exclusive lock on ``<database>.lock`` for a SQLite store."""
    path = _sqlite_path(uri)
    if path is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no lock
        yield
        return
    try:
        fh = open(os.path.abspath(path) + ".lock", "a")  # noqa: SIM115
    except OSError:  # a read-only folder: MLflow's own error says it below
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _reason(exc):
    reason = " ".join(str(exc).split())
    return reason if len(reason) <= 300 else reason[:300] + "..."


def check_tracking_server(tracking_uri=None, timeout=5):
    """Check at once that the MLflow tracking store answers.

    An unreachable HTTP server otherwise costs minutes of retries, after the
    training has already run. This makes one request with no retries and a
    short timeout.

    Parameters
    ----------
    tracking_uri : str, optional
        The URI to check; by default MLflow's current one
        (``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    timeout : int, default=5
        Seconds to wait for an answer.

    Returns
    -------
    tracking_uri : str
        The URI checked.

    Raises
    ------
    TrackingServerError
        If the store does not answer, with the URI and the reason.
    """
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    database = _sqlite_path(uri)
    with _environ(
        MLFLOW_HTTP_REQUEST_MAX_RETRIES=0,
        MLFLOW_HTTP_REQUEST_TIMEOUT=max(1, int(timeout)),
    ):
        for attempt in range(3 if database else 1):
            try:
                with _store_lock(uri):
                    mlflow.MlflowClient(uri).search_experiments(max_results=1)
                break
            except TrainingInterrupted:
                raise
            except Exception as exc:
                if database is None:
                    raise TrackingServerError(
                        f"cannot reach the MLflow tracking server at {uri} "
                        f"({_reason(exc)}); start it, or point MLFLOW_TRACKING_URI "
                        "at one that runs"
                    ) from exc
                if attempt == 2:
                    raise TrackingServerError(
                        f"cannot open the local MLflow store {database} ({uri}): "
                        f"{_reason(exc)}; check that its folder is writable and "
                        "the file is an MLflow database, or choose another with "
                        "--tracking-uri / MLFLOW_TRACKING_URI"
                    ) from exc
                time.sleep(0.2 * (attempt + 1))  # another process created it
    return uri
