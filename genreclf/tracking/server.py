"""Check at once that the MLflow tracking store answers."""

import contextlib
import os

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
    with _environ(
        MLFLOW_HTTP_REQUEST_MAX_RETRIES=0,
        MLFLOW_HTTP_REQUEST_TIMEOUT=max(1, int(timeout)),
    ):
        try:
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
        except TrainingInterrupted:
            raise
        except Exception as exc:
            reason = " ".join(str(exc).split())
            if len(reason) > 300:
                reason = reason[:300] + "..."
            raise TrackingServerError(
                f"cannot reach the MLflow tracking server at {uri} ({reason}); start "
                "it, or point MLFLOW_TRACKING_URI at one that runs"
            ) from exc
    return uri
