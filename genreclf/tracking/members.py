"""The ensemble's members in MLflow: one nested run each, and their checkpoints.

:class:`MemberLogger` is the ensemble's ``member_callback`` during a tracked
training; :func:`fetch_members` downloads what an earlier run saved, to
resume it. The checkpoint file names are the ensemble's own
(:func:`genreclf.ensemble.member_filename`, :data:`~genreclf.ensemble.MANIFEST`,
:data:`~genreclf.ensemble.MEMBER_GLOB`).
"""

import os
import time
from pathlib import Path

import numpy as np

from genreclf.exceptions import TrainingInterrupted
from genreclf.tracking.runs import PARENT_TAG, now_ms, process_tags, signals_held
from genreclf.tracking.storage import storage_error

__all__ = ["HISTORY_KEYS", "MemberLogger", "fetch_members", "member_history"]

#: Per-epoch history entries logged for each member, when present.
HISTORY_KEYS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "dur")


def member_history(member, keys=HISTORY_KEYS):
    """Return the per-epoch values of ``keys`` (numbers only) of a fitted net.

    Parameters
    ----------
    member : skorch.NeuralNet
        A fitted net (anything with a skorch ``history``).
    keys : sequence of str, default=HISTORY_KEYS
        The history entries to keep.

    Returns
    -------
    history : dict of int to dict of str to float
        ``{epoch: {key: value}}``; empty without a history.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> net = SimpleNamespace(history=[{"epoch": 1, "valid_loss": 0.5, "x": "a"}])
    >>> member_history(net)
    {1: {'valid_loss': 0.5}}
    """
    history = getattr(member, "history", None) or []
    rows = {}
    for row in history:
        epoch = int(row.get("epoch", len(rows) + 1))
        rows[epoch] = {
            key: float(row[key])
            for key in keys
            if isinstance(row.get(key), (int, float, np.number))
            and not isinstance(row.get(key), bool)
        }
    return rows


class MemberLogger:
    """Ensemble ``member_callback``: log each member as soon as it finishes.

    :class:`~genreclf.ensemble.GenreEnsemble` calls it as
    ``logger(index, fitted_member, seed)`` after it has saved the member to its
    ``checkpoint_dir``. The logger uploads that checkpoint file (and the
    folder's manifest) under ``members/`` of the parent run, so the run holds
    every finished member even if the training dies next, and creates one
    nested run ``member-<index>`` with the seed, the member's per-epoch
    metrics (``step`` is the epoch) and ``best_epoch``, the epoch whose
    parameters the net kept (its ``best_epoch_``, chosen by its ``monitor``).
    It talks to MLflow through an explicit client and run id, never through
    the active run, so it cannot end the parent run, and it works in any
    process that reaches the tracking server.

    Parameters
    ----------
    parent_run_id : str
        The run the member runs are nested under.
    checkpoint_dir : str or path-like, optional
        The ensemble's ``checkpoint_dir``; without it no member file is
        uploaded.
    tracking_uri : str, optional
        Tracking URI; by default MLflow's current one when created.
    on_logged : callable, optional
        Called as ``on_logged(index)`` after each member is logged (e.g. to
        advance a progress bar).

    Attributes
    ----------
    run_ids_ : dict of int to str
        Nested run id of each member logged.
    """

    def __init__(
        self, parent_run_id, checkpoint_dir=None, tracking_uri=None, on_logged=None
    ):
        import mlflow

        self.parent_run_id = parent_run_id
        self.checkpoint_dir = checkpoint_dir
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.on_logged = on_logged
        self.run_ids_ = {}
        self._started = time.time()

    def __call__(self, index, member, seed):
        """Upload ``member``'s checkpoint and log nested run ``member-<index>``."""
        with signals_held():
            self._log(index, member, seed)
        if self.on_logged is not None:
            self.on_logged(index)

    def _log(self, index, member, seed):
        import mlflow
        from mlflow.entities import Metric, Param, RunTag

        from genreclf.ensemble import MANIFEST, member_filename

        client = mlflow.MlflowClient(self.tracking_uri)
        resumed = False
        if self.checkpoint_dir is not None:
            folder = Path(self.checkpoint_dir)
            for path in (folder / member_filename(index), folder / MANIFEST):
                if path.is_file():
                    resumed = resumed or path.stat().st_mtime < self._started
                    try:
                        client.log_artifact(self.parent_run_id, str(path), "members")
                    except OSError as exc:
                        raise storage_error(
                            exc,
                            client.get_run(self.parent_run_id).info.artifact_uri,
                            f"members/{path.name} of run {self.parent_run_id}",
                        ) from exc
        experiment_id = client.get_run(self.parent_run_id).info.experiment_id
        run = client.create_run(
            experiment_id,
            run_name=f"member-{index}",
            tags={PARENT_TAG: self.parent_run_id, **process_tags()},
        )
        history = member_history(member)
        now = now_ms()
        metrics = [
            Metric(key, value, now, epoch)
            for epoch, values in history.items()
            for key, value in values.items()
        ]
        best = getattr(member, "best_epoch_", None)
        if best is not None:
            metrics.append(Metric("best_epoch", int(best), now, 0))
        params = [
            Param("member_index", str(index)),
            Param("seed", str(seed)),
            Param("n_epochs", str(len(history))),
        ]
        tags = [RunTag("genreclf.resumed", str(resumed))]
        if self.checkpoint_dir is not None:
            tags.append(
                RunTag("genreclf.checkpoint", f"members/{member_filename(index)}")
            )
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run.info.run_id, "FINISHED")
        self.run_ids_[int(index)] = run.info.run_id


def fetch_members(run_id, dest, tracking_uri=None):
    """Download the members an earlier run saved, to resume its training.

    Parameters
    ----------
    run_id : str
        An MLflow run logged by :func:`~genreclf.tracking.train_and_log` (its
        ``members/``).
    dest : str or path-like
        Folder to put them in; pass it to the ensemble as ``checkpoint_dir``
        with ``resume=True``.
    tracking_uri : str, optional
        By default MLflow's current one.

    Returns
    -------
    n_members : int
        How many member files were downloaded.

    Raises
    ------
    FileNotFoundError
        If the run does not exist or saved no member.

    Notes
    -----
    A run that is still marked ``RUNNING`` is marked ``KILLED``: its process is
    assumed dead (killed with ``SIGKILL``, or the machine went down), since the
    user asks to continue its work.
    """
    import mlflow

    from genreclf.ensemble import MEMBER_GLOB

    client = mlflow.MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
        local = client.download_artifacts(run_id, "members", os.fspath(dest))
    except TrainingInterrupted:
        raise
    except Exception as exc:
        raise FileNotFoundError(
            f"{run_id}: no saved members in this run "
            f"({' '.join(str(exc).split())[:200]})"
        ) from exc
    folder = Path(dest)
    for path in Path(local).iterdir():
        if path.parent != folder:
            os.replace(path, folder / path.name)
    n = len(list(folder.glob(MEMBER_GLOB)))
    if not n:
        raise FileNotFoundError(f"{run_id}: no saved members in this run")
    if run.info.status == "RUNNING":
        client.set_terminated(run_id, "KILLED")
    return n
