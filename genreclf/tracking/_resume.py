"""Resuming a tracked training: the checks before the run, and its checkpoint folder.

The steps of :func:`~genreclf.tracking.workflows.train_and_log` that concern
the members saved on disk: :func:`check_resume` refuses, before any run
starts, to resume a run with other settings or data;
:func:`checkpoint_folder` gives the run its own folder (filled first with the
earlier run's members when resuming); :func:`storage_failure` names the file
of a checkpoint write that failed for lack of space.
"""

import os
import shutil
import tempfile

from genreclf.exceptions import UsageError
from genreclf.tracking.data import describe_dataset
from genreclf.tracking.members import fetch_members
from genreclf.tracking.params import flatten_params
from genreclf.tracking.storage import STORAGE_ERRNOS, storage_error

__all__ = [
    "check_resume",
    "checkpoint_folder",
    "resumed_run",
    "settings_differences",
    "storage_failure",
]

#: Last parts of parameter paths that never change what a member learns: a
#: resumed run may differ in them.
_BOOKKEEPING = ("member_callback", "checkpoint_dir", "resume", "memory", "n_jobs")


def settings_differences(pipeline, X, y, run):
    """The settings and data in which ``pipeline`` on ``X, y`` differs from ``run``.

    Returns a list of ``"key: <the run's value> -> <this value>"``.
    """
    now = flatten_params(pipeline)
    now["data.training.digest"] = describe_dataset(X, y)["digest"]
    old = run.data.params
    differences = []
    for key in sorted(set(now) | {k for k in old if not k.startswith("data.")}):
        last = key.rsplit("__", 1)[-1]
        if last in _BOOKKEEPING or (last == "verbose" and "__net__" not in key):
            continue
        if key.startswith("data.") and key != "data.training.digest":
            continue
        if key not in old and key.startswith("data."):
            continue
        if old.get(key) != now.get(key):
            differences.append(
                f"{key}: {old.get(key, '(not set)')} -> {now.get(key, '(not set)')}"
            )
    return differences


def resumed_run(resume):
    """The MLflow run that ``resume`` (a run id or its checkpoint folder) continues.

    None for a folder that names no run of the store.
    """
    import mlflow

    client = mlflow.MlflowClient()
    if os.path.isdir(resume):
        try:
            return client.get_run(os.path.basename(os.path.abspath(resume)))
        except Exception:  # noqa: BLE001 - a folder of no run: nothing to compare
            return None
    try:
        return client.get_run(os.fspath(resume))
    except Exception as exc:
        raise FileNotFoundError(
            f"cannot resume {os.fspath(resume)}: neither a checkpoint folder nor a "
            f"run of the tracking store {mlflow.get_tracking_uri()} "
            f"({' '.join(str(exc).split())[:200]})"
        ) from exc


def check_resume(pipeline, X, y, resume):
    """Refuse to resume a run with other settings or data (before any run starts)."""
    run = resumed_run(resume)
    if run is None:
        return
    differences = settings_differences(pipeline, X, y, run)
    if differences:
        raise UsageError(
            f"cannot resume run {run.info.run_id}: its settings differ from these "
            f"({'; '.join(differences)}); resuming would train every network "
            "again: give the run's own settings (its parameters in MLflow), or "
            "train a new run without --resume"
        )


def checkpoint_folder(stack, run_id, checkpoint_dir, resume):
    """The folder this run saves its members in (and, to resume, fills first).

    Always the run's own folder: a resumed run starts from a copy of the
    earlier run's members, so that it never overwrites another run's files.
    """
    if checkpoint_dir is not None:
        folder = os.path.join(checkpoint_dir, run_id)
    else:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
    if resume is None:
        return folder
    if os.path.isdir(resume):
        shutil.copytree(resume, folder, dirs_exist_ok=True)
    else:
        os.makedirs(folder, exist_ok=True)
        fetch_members(resume, folder)
    return folder


def storage_failure(exc, folder, logger, n_members):
    """Name the folder and the file of a failed checkpoint write (full disk).

    The ensemble saves its members in index order, each before it is logged,
    so the write that failed is that of the first member not logged yet.
    """
    from genreclf.ensemble import member_filename

    if getattr(exc, "errno", None) not in STORAGE_ERRNOS or folder in str(exc):
        return exc
    done = set(logger.run_ids_)
    index = min(i for i in range(len(done) + 1) if i not in done)
    what = (
        f"the checkpoint {member_filename(index)} of network {index + 1} of "
        f"{n_members}"
    )
    return storage_error(exc, folder, what)
