"""Shared fixtures: seeding, generated audio, the real-recordings folder, MLflow."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REAL_AUDIO_ENV = "GENRECLF_REAL_AUDIO"
# Resolved once, from the folder pytest started in: some fixtures change the
# working directory, and a relative value must not depend on which ran first.
_REAL_AUDIO_AT_START = Path(os.environ.get(REAL_AUDIO_ENV) or ".").resolve()


# -- local servers (mlflow server, mlflow models serve) on 127.0.0.1 -------------


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_server_command(folder, port):
    """``mlflow server`` on 127.0.0.1:port, SQLite store and artifacts in folder."""
    folder = Path(folder)
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "-h", "127.0.0.1", "-p", str(port), "--workers", "1",
    ]  # fmt: skip


def launch_server(cmd, cwd, env=None, log_name="server.log"):
    """Start ``cmd`` in its own process group (its workers go with it).

    Output goes to ``cwd/log_name``; the process gets ``log_path`` set to it.
    """
    log_path = Path(cwd) / log_name
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc.log_path = log_path
    return proc


def wait_for_server(proc, url, timeout=120):
    """Return once ``url`` answers 200; fail with the log if it exits or stalls."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            why = f"exited with {proc.returncode}" if proc.poll() else "no answer"
            pytest.fail(
                f"{url}: {why} within {timeout} s:\n{proc.log_path.read_text()[-2000:]}"
            )
        time.sleep(0.3)


def start_server(cmd, url, cwd, env=None, timeout=120):
    """:func:`launch_server` then :func:`wait_for_server`; return the process."""
    proc = launch_server(cmd, cwd, env, log_name=f"server-{os.path.basename(url)}.log")
    wait_for_server(proc, url, timeout)
    return proc


def stop_server(proc, timeout=20):
    """End a server and its process group: SIGTERM, then SIGKILL after timeout."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session", autouse=True)
def _interpreter_bin_on_path():
    """Put this interpreter's ``bin/`` first on PATH for the whole session.

    Tests start ``mlflow run``, ``mlflow models serve`` (uvicorn) and
    ``python -m ...`` in subprocesses; they must find the programs of the
    environment running the tests, also when it was not activated
    (``.venv/bin/python -m pytest``).
    """
    bindir = os.path.dirname(sys.executable)
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = bindir + os.pathsep + old
    yield
    os.environ["PATH"] = old


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed Python, NumPy and torch before every test."""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module (``pytestmark`` usefixtures).

    On a shared 2-core machine more threads only spin; training tests run
    faster and time more steadily with one.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real_audio_dir():
    """The folder of real recordings (``$GENRECLF_REAL_AUDIO``); skip when absent."""
    value = os.environ.get(REAL_AUDIO_ENV)
    if not value:
        pytest.skip(f"{REAL_AUDIO_ENV} is not set: real-recording tests skipped")
    path = _REAL_AUDIO_AT_START
    if not path.is_dir():
        pytest.skip(
            f"{REAL_AUDIO_ENV}={value} is not a folder: real-recording tests skipped"
        )
    return path


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch):
    """Point MLflow at a temporary SQLite store and artifact folder, never the tree."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", str(tmp_path / "artifacts"))
    return uri


# --- generated audio (audio/features tests) ------------------------------------

AUDIO_FORMATS = {  # extension -> soundfile subtype
    "wav": "PCM_16",
    "flac": "PCM_16",
    "ogg": "VORBIS",
    "mp3": "MPEG_LAYER_III",
    "au": "PCM_16",
}


def synth_signal(kind="tone", sr=22050, seconds=1.0, channels=1, seed=0):
    """A test signal of shape (n, channels): tone, chirp, noise, clicks or silence."""
    n = int(round(sr * seconds))
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    if kind == "tone":
        y = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    elif kind == "chirp":
        f0, f1 = 100.0, min(8000.0, sr / 2.5)
        sweep = (f1 - f0) * t**2 / (2 * max(seconds, 1e-9))
        y = 0.5 * np.sin(2 * np.pi * (f0 * t + sweep))
    elif kind == "noise":
        y = 0.3 * rng.standard_normal(n)
    elif kind == "clicks":
        y = np.zeros(n)
        y[:: max(1, sr // 8)] = 0.9
    elif kind == "silence":
        y = np.zeros(n)
    else:  # pragma: no cover
        raise ValueError(kind)
    # Channels differ slightly so that mixing down is visible.
    out = np.stack([y * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return out.astype(np.float32)


@pytest.fixture(scope="session")
def write_audio():
    """Factory: ``write_audio(path, kind=, sr=, seconds=, channels=, fmt=)`` -> path."""
    import soundfile as sf

    def _write(path, kind="tone", sr=22050, seconds=1.0, channels=1, fmt=None, seed=0):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = fmt or path.suffix.lstrip(".").lower()
        data = synth_signal(kind, sr, seconds, channels, seed)
        sf.write(path, data, sr, subtype=AUDIO_FORMATS.get(fmt), format=fmt.upper())
        return path

    return _write


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory, write_audio):
    """Generated 1 s clips: {name: path} for every format, kind, rate and layout."""
    root = tmp_path_factory.mktemp("audio")
    files = {}
    for fmt in AUDIO_FORMATS:
        for kind in ("tone", "chirp", "noise", "clicks"):
            name = f"{kind}_22050_1ch.{fmt}"
            files[name] = write_audio(root / name, kind, 22050, 1.0, 1)
    for sr in (8000, 44100, 48000, 96000):
        for channels in (1, 2, 6):
            for fmt in ("wav", "flac", "ogg", "mp3"):
                if fmt == "mp3" and (sr > 48000 or channels > 2):
                    continue  # MPEG audio: rates up to 48 kHz, 1-2 channels
                name = f"chirp_{sr}_{channels}ch.{fmt}"
                files[name] = write_audio(root / name, "chirp", sr, 1.0, channels)
    return files


# --- FMA layout (datasets/download tests) ----------------------------------------

# (track_id, subset, split, genre_top): a miniature tracks.csv. 99134 has no
# audio and 98565 is too short in the real fma_small (known-bad tracks).
FMA_TRACKS = [
    (2, "small", "training", "Hip-Hop"),
    (5, "small", "validation", "Hip-Hop"),
    (10, "small", "test", "Pop"),
    (140, "small", "training", "Folk"),
    (141, "small", "training", "Folk"),
    (98565, "small", "training", "Experimental"),
    (99134, "small", "test", "Rock"),
    (213, "medium", "training", "Rock"),
    (255, "large", "training", "Electronic"),
    (256, "large", "test", None),
]


def fma_tracks_frame(tracks=FMA_TRACKS):
    """A DataFrame with FMA's two-level columns (a few of tracks.csv's 52)."""
    import pandas as pd

    columns = pd.MultiIndex.from_tuples(
        [
            ("album", "title"),
            ("artist", "name"),
            ("set", "split"),
            ("set", "subset"),
            ("track", "genre_top"),
            ("track", "genres"),
            ("track", "title"),
        ]
    )
    rows = [
        [
            f"Album {tid}",
            f'Artist "{tid}", Jr.',
            split,
            subset,
            genre,
            "[21]",
            f"Title {tid},\nwith a line break",
        ]
        for tid, subset, split, genre in tracks
    ]
    index = pd.Index([t[0] for t in tracks], name="track_id")
    return pd.DataFrame(rows, index=index, columns=columns)


@pytest.fixture(scope="session")
def fma_layout():
    """Factory: ``fma_layout(root, subsets=("small",), missing=())`` -> root.

    Writes ``root/fma_metadata/tracks.csv`` in FMA's layout (two-row column
    header plus the ``track_id`` row, as pandas writes it) and a 0.2 s mp3 per
    track at ``root/fma_<subset>/<3 digits>/<6 digits>.mp3`` for each subset
    that holds it; the known-bad 99134 gets an empty file, ``missing`` ids
    get none.
    """
    import soundfile as sf

    order = {"small": 0, "medium": 1, "large": 2, "full": 3}

    def _make(root, subsets=("small",), missing=(), tracks=FMA_TRACKS):
        root = Path(root)
        (root / "fma_metadata").mkdir(parents=True, exist_ok=True)
        fma_tracks_frame(tracks).to_csv(root / "fma_metadata" / "tracks.csv")
        tone = synth_signal("tone", 22050, 0.2)
        for subset in subsets:
            for tid, track_subset, _, _ in tracks:
                if order[track_subset] > order[subset] or tid in missing:
                    continue
                path = root / f"fma_{subset}" / f"{tid:06d}"[:3] / f"{tid:06d}.mp3"
                path.parent.mkdir(parents=True, exist_ok=True)
                if tid == 99134:
                    path.write_bytes(b"")
                else:
                    sf.write(path, tone, 22050, format="MP3")
        return root

    return _make


# --- tracking, CLI and serving tests (genreclf.tracking, genreclf.cli) -----------

#: build_pipeline options of a net small enough for tests: 1 s clips, 2 epochs.
#: The same tiny net as ``genreclf train`` arguments (one epoch, no bar).
TINY_ARGS = [
    "--duration",
    "1",
    "--max-epochs",
    "1",
    "--set",
    "filters=(4,8,8)",
    "--set",
    "dense=8",
    "--set",
    "valid_size=8",
    "--no-progress",
]

TINY_OPTIONS = {
    "duration": 1.0,
    "max_epochs": 2,
    "filters": (4, 8, 8),
    "dense": 8,
    "valid_size": 8,
}


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """A tiny synthetic dataset ``(folder, paths, y)``: 4 clips of 1 s per genre."""
    from genreclf.datasets import make_synthetic

    folder = tmp_path_factory.mktemp("tiny-demo")
    paths, y = make_synthetic(folder, n_per_genre=4, duration=1.0, random_state=0)
    return folder, list(paths), list(y)


def _forget_mlflow_experiment():
    """Undo ``mlflow.set_experiment``, whose choice is process-wide (and in the env)."""
    import mlflow.tracking.fluent

    mlflow.tracking.fluent._active_experiment_id = None
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        os.environ.pop(name, None)


@pytest.fixture
def fresh_mlflow_experiment():
    """No experiment chosen before or after the test (the store's Default one)."""
    _forget_mlflow_experiment()
    yield
    _forget_mlflow_experiment()


@pytest.fixture(scope="module")
def module_mlflow(tmp_path_factory):
    """A module-wide MLflow store: cwd, MLFLOW_TRACKING_URI and artifacts in tmp."""
    folder = tmp_path_factory.mktemp("mlflow")
    _forget_mlflow_experiment()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        yield folder
    _forget_mlflow_experiment()


@pytest.fixture
def count_loads(monkeypatch):
    """Count the clips that the MFCC transformer decodes (in this process)."""
    import genreclf._mfcc as mfcc_impl
    from genreclf.audio import load_audio

    calls = []

    def counting(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return load_audio(path, *args, **kwargs)

    monkeypatch.setattr(mfcc_impl, "load_audio", counting)
    return calls


def assert_paths_array(paths, y):
    """What every loader returns: 1-D object arrays of existing absolute paths, labels."""
    for arr in (paths, y):
        assert isinstance(arr, np.ndarray) and arr.ndim == 1
        assert arr.dtype == object and all(isinstance(v, str) for v in arr)
    assert len(paths) == len(y)
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in paths)
