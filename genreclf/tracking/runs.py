"""The life of a run: signals held during bookkeeping, and runs that always end.

A tracked run ends ``FINISHED`` when its block completes, ``KILLED`` on Ctrl-C or
``SIGTERM`` and ``FAILED`` on any other exception; none is left ``RUNNING``.
Child runs (members, search candidates) name their parent with the one tag
:data:`PARENT_TAG`.

A process killed with ``SIGKILL`` (or a machine that went down) cannot end its
runs. Every run therefore records the process that owns it
(:data:`PROCESS_TAG`: host, pid and the process's start time), and the next
tracked run on the same host ends the ``RUNNING`` runs of dead processes as
``KILLED`` (:func:`end_stale_runs`).
"""

import contextlib
import os
import signal
import socket
import threading
import time
import warnings

from genreclf.exceptions import TrainingInterrupted
from genreclf.tracking.server import check_tracking_server

__all__ = [
    "PARENT_TAG",
    "PROCESS_TAG",
    "TrainingInterrupted",
    "base_tags",
    "end_stale_runs",
    "process_tags",
    "now_ms",
    "resolve_parent_run",
    "signals_held",
    "signals_interrupt",
    "tracked_run",
]

#: The tag that nests a run under its parent in MLflow's run list.
PARENT_TAG = "mlflow.parentRunId"

#: The tag naming the process that owns a run: ``<host>:<pid>:<start time>``.
PROCESS_TAG = "genreclf.process"

#: Signals caught while MLflow bookkeeping runs, delivered when it is done.
_SIGNALS = {"held": 0, "pending": None}


def now_ms():
    """Return the current time in milliseconds, as MLflow stamps metrics."""
    return int(time.time() * 1000)


def resolve_parent_run(parent_run_id=None):
    """Return ``parent_run_id``, or the active run's id when it is None.

    Parameters
    ----------
    parent_run_id : str or None, default=None
        An explicit parent run.

    Returns
    -------
    run_id : str
        The parent run's id.

    Raises
    ------
    ValueError
        If ``parent_run_id`` is None and no MLflow run is active.
    """
    if parent_run_id is not None:
        return parent_run_id
    import mlflow

    active = mlflow.active_run()
    if active is None:
        raise ValueError("no parent_run_id given and no active MLflow run")
    return active.info.run_id


def _start_time(pid):
    """Start time of process ``pid`` (clock ticks since boot), "" if unknown.

    Together with the pid it names one process: a pid that the system gave to
    a new process has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def process_tags():
    """The tag that names this process as the owner of a run.

    Returns
    -------
    tags : dict of str to str
        ``{PROCESS_TAG: "<host>:<pid>:<start time>"}``.
    """
    pid = os.getpid()
    return {PROCESS_TAG: f"{socket.gethostname()}:{pid}:{_start_time(pid)}"}


def _process_dead(value):
    """True if ``value`` (a :data:`PROCESS_TAG`) names a dead process of this host."""
    host, _, rest = (value or "").rpartition(":")
    host, _, pid = host.rpartition(":")
    start = rest
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process (or no tag): cannot tell
    pid = int(pid)
    if pid == os.getpid():
        return False
    if os.path.isdir("/proc"):
        now = _start_time(pid)
        return now == "" or (start != "" and now != start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: alive
        return False
    return False


def end_stale_runs(tracking_uri=None):
    """End as ``KILLED`` the ``RUNNING`` runs whose process is dead.

    Only runs of this host whose :data:`PROCESS_TAG` names a process that no
    longer exists are ended: a training killed with ``SIGKILL``, say.
    Runs of living processes, of other hosts and runs without the tag are
    left alone. Errors of the store are ignored: this is housekeeping.

    Parameters
    ----------
    tracking_uri : str, optional
        By default MLflow's current one.

    Returns
    -------
    run_ids : list of str
        The runs ended.
    """
    import mlflow

    ended = []
    try:
        client = mlflow.MlflowClient(tracking_uri)
        ids = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        runs = client.search_runs(
            ids, filter_string="attributes.status = 'RUNNING'", max_results=5000
        )
        for run in runs:
            if _process_dead(run.data.tags.get(PROCESS_TAG)):
                client.set_terminated(run.info.run_id, "KILLED")
                client.set_tag(run.info.run_id, "genreclf.ended_by", "end_stale_runs")
                ended.append(run.info.run_id)
    except TrainingInterrupted:
        raise
    except Exception:  # noqa: BLE001 - housekeeping must never stop a command
        pass
    return ended


def base_tags(command, tags=None):
    """Tags of every genreclf run: the package version and the command.

    Parameters
    ----------
    command : str
        ``"train"``, ``"search"`` or ``"evaluate"``.
    tags : dict or None, default=None
        Further tags, which win over these.

    Returns
    -------
    tags : dict of str to str
        With :data:`PROCESS_TAG`, which names this process.
    """
    import genreclf

    out = {"genreclf.version": genreclf.__version__, "genreclf.command": command}
    out.update(process_tags())
    out.update(tags or {})
    return out


@contextlib.contextmanager
def signals_held():
    """Hold Ctrl-C and SIGTERM until the block ends.

    So that a run is never created without being ended, nor a member run
    created without its metrics and end. A signal received meanwhile raises
    :class:`~genreclf.exceptions.TrainingInterrupted` when the outermost held
    block ends.
    """
    _SIGNALS["held"] += 1
    try:
        yield
    finally:
        _SIGNALS["held"] -= 1
        pending = _SIGNALS["pending"]
        if pending is not None and not _SIGNALS["held"]:
            _SIGNALS["pending"] = None
            raise TrainingInterrupted(pending)


@contextlib.contextmanager
def signals_interrupt():
    """Make SIGINT and SIGTERM raise :class:`TrainingInterrupted` (main thread).

    Elsewhere than in the main thread the block runs unchanged. The previous
    handlers are put back when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _SIGNALS["held"]:
            _SIGNALS["pending"] = signum
            return
        raise TrainingInterrupted(signum)

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def tracked_run(experiment_name=None, run_name=None, tags=None, check_server=True):
    """Start (or, under ``mlflow run``, resume) a run that never stays RUNNING.

    The run ends ``FINISHED`` when the block completes, ``KILLED`` on Ctrl-C
    or ``SIGTERM`` (both raise :class:`TrainingInterrupted` meanwhile), and
    ``FAILED`` on any other exception, which propagates.

    Parameters
    ----------
    experiment_name : str, optional
        Experiment to log to (created if needed). Ignored, with a warning,
        under ``mlflow run`` (``MLFLOW_RUN_ID`` set), whose run already belongs
        to the experiment given to ``mlflow run --experiment-name``.
    run_name : str, optional
        The run's name.
    tags : dict, optional
        Tags set on the run.
    check_server : bool, default=True
        Call :func:`check_tracking_server` first, so an unreachable server
        fails at once.

    Notes
    -----
    Before the run starts, the ``RUNNING`` runs of dead processes of this host
    are ended ``KILLED`` (:func:`end_stale_runs`); the run gets the
    :data:`PROCESS_TAG` of this process.

    Yields
    ------
    run : mlflow.ActiveRun
        The active run; nested under the caller's run if one is active.
    """
    import mlflow

    if check_server:
        check_tracking_server()
    end_stale_runs()
    tags = {**process_tags(), **(tags or {})}
    if os.environ.get("MLFLOW_RUN_ID"):
        if experiment_name:
            warnings.warn(
                "experiment_name is ignored under `mlflow run`: use "
                "`mlflow run --experiment-name`",
                stacklevel=3,
            )
    elif experiment_name:
        mlflow.set_experiment(experiment_name)
    with signals_interrupt():
        with signals_held():
            nested = mlflow.active_run() is not None
            run = mlflow.start_run(run_name=run_name, tags=tags, nested=nested)
        status = "FAILED"
        try:
            yield run
            status = "FINISHED"
        except (KeyboardInterrupt, TrainingInterrupted) as exc:
            status = "KILLED"
            if isinstance(exc, TrainingInterrupted):
                exc.run_id = run.info.run_id  # the CLI names it in its resume hint
            raise
        finally:
            active = mlflow.active_run()
            if active is not None and active.info.run_id == run.info.run_id:
                with signals_held():
                    try:
                        mlflow.end_run(status)
                    except Exception:  # the server went away: nothing more to do
                        if status == "FINISHED":
                            raise
