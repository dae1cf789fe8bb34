"""Load on the served model: ``genreclf serve`` under concurrent clients.

Starts ``genreclf serve MODEL --host 127.0.0.1 --port <free port>`` in a
subprocess and, for each concurrency level (``--levels``, default 1,4,16),
sends ``--requests`` requests (default 200 per level) from that many client
threads (``http.client``, one connection per request). The requests mix, in
a fixed seeded proportion (``--mix``, default 45/45/10):

- **path** rows: files on this machine (the demo clips the model was trained
  on, generated WAVs and the real MP3s), in MLflow's ``inputs``,
  ``dataframe_split`` and ``dataframe_records`` formats in turn;
- **audio** rows: the bytes themselves, base64 in the ``audio`` column with a
  ``filename`` (the real MP3s when there are some, else generated WAVs);
- **bad** rows: bytes that are not audio (seeded garbage without an MPEG sync
  byte), alone or after a good path row.

Each answer is classified: ``good_ok`` (200, a genre of the model),
``good_failed`` (anything else for a good row: a status, a timeout, a refused
connection), ``bad_rejected`` (400 whose message names the bad row, and the
good row of the request keeps its genre) or ``bad_accepted`` (a bad row that
did not get its 400). A sampler thread reads the server's resident memory
every 50 ms (psutil when installed, else ``VmRSS`` of ``/proc/<pid>/status``):
per level ``rss_before``, the peak, and ``rss_after`` once the level has
settled. After the last level ``/ping`` must still answer.

The model: ``--model URI_OR_FILE``, or a tiny network trained once with
``genreclf train`` on the embedded demo (one member, 1 s clips, one epoch)
into an MLflow store under ``--work-dir`` (default
``benchmarks/results/serve_load``) and reused by later runs (``--retrain``
trains again). Real MP3s come from ``$GENRECLF_REAL_AUDIO``, else
``../shared/data/fma`` (``--real-audio none``: generated WAVs only). With
``--model``, the server sees this script's MLflow variables (a ``runs:/`` or
``models:/`` URI of your store); without it, only the store under
``--work-dir``.

Memory: ``rss_returned`` holds when the server's RSS after the last level is
within ``--rss-tolerance-mb`` (default 64, about a tenth of the tiny model's
server) of its level after the warm-up. ``genreclf`` applies glibc malloc
settings that keep freed memory in the process (:mod:`genreclf._malloc`);
variables of this script's environment reach the server, so
``MALLOC_TRIM_THRESHOLD_=131072 MALLOC_TOP_PAD_=131072
MALLOC_MMAP_THRESHOLD_=131072 python benchmarks/serve_load.py`` measures the
same server with glibc's own defaults. Repeating a level (``--levels
16,16,16,16``) tells memory kept by the allocator (a plateau) from a leak
(growth at every level).

Bounds: only 127.0.0.1 is ever contacted; each request has ``--timeout``
seconds (default 60); no request is sent after ``--max-seconds`` (default
600) from the start, training included; the server is always stopped.

Usage::

    python benchmarks/serve_load.py                       # 1, 4, 16 clients
    python benchmarks/serve_load.py --levels 16 --requests 500
    python benchmarks/serve_load.py --json                # + one JSON line

The exit status is 0 when every check holds (no good request failed, every
bad row rejected, memory back within ``--rss-tolerance-mb`` of its level,
``/ping`` answering after the run), else 1. With the defaults the whole run
(training included) takes about 2-4 minutes on two busy cores.
"""

import argparse
import base64
import http.client
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

HOST = "127.0.0.1"  # the only address this script ever talks to
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DIR = ROOT / "benchmarks" / "results" / "serve_load"
#: ``genreclf train`` settings of the tiny model (one member, 1 s clips).
TRAIN_ARGS = [
    "--n-members", "1", "--duration", "1", "--max-epochs", "1",
    "--set", "filters=(4,8,8)", "--set", "dense=8", "--set", "valid_size=8",
    "--no-progress", "--experiment-name", "serve-load",
]  # fmt: skip
KINDS = ("path", "audio", "bad")
SAMPLE_EVERY = 0.05  # seconds between two readings of the server's memory
MB = 2**20


# -- the model and the audio ------------------------------------------------------


def _env(work, own_store=True):
    """This process's environment; with ``own_store``, MLflow pointed at ``work``."""
    if not own_store:  # --model: the user's store, as the user's MLFLOW_* say
        return dict(os.environ)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    return env


def train_model(work, retrain, timeout):
    """The tiny demo model's URI: trained into ``work`` or read from its record."""
    record = work / "model.json"
    if record.exists() and not retrain:
        saved = json.loads(record.read_text())
        if saved.get("train_args") == TRAIN_ARGS and (work / "mlflow.db").exists():
            print(f"reusing {saved['model_uri']} ({record})", flush=True)
            return saved["model_uri"]
    print("training the tiny demo model with `genreclf train` ...", flush=True)
    command = [sys.executable, "-m", "genreclf", "train", *TRAIN_ARGS,
               "--cache-dir", str(work / "cache")]  # fmt: skip
    env = {"OMP_NUM_THREADS": "1", **_env(work)}  # a tiny net: one thread is faster
    done = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    uris = [ln.split(":", 1)[1].strip() for ln in done.stdout.splitlines()
            if ln.startswith("model: ")]  # fmt: skip
    if done.returncode or not uris:
        sys.exit(f"genreclf train failed ({done.returncode}):\n"
                 f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")  # fmt: skip
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps({"model_uri": uris[-1], "train_args": TRAIN_ARGS}))
    os.replace(tmp, record)
    return uris[-1]


def write_wavs(folder, n=4, seconds=2.0, sr=22050):
    """``n`` generated 16-bit WAVs (tones, noise) in ``folder``: their paths."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    paths = []
    for i in range(n):
        if i % 2:
            y = 0.3 * rng.standard_normal(t.size)
        else:
            y = 0.5 * np.sin(2 * np.pi * (220.0 * (i + 1)) * t)
        path = folder / f"generated-{i}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(sr)
            out.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
        paths.append(str(path))
    return paths


def real_mp3s(choice, limit=5):
    """Up to ``limit`` MP3s of ``choice``, $GENRECLF_REAL_AUDIO or shared/data/fma."""
    if choice == "none":
        return []
    folders = [choice] if choice else [
        os.environ.get("GENRECLF_REAL_AUDIO") or "", ROOT.parent / "shared/data/fma"
    ]  # fmt: skip
    for folder in folders:
        if folder and Path(folder).is_dir():
            found = sorted(str(p) for p in Path(folder).rglob("*.mp3"))
            if found:
                return found[:limit]
    return []


def garbage(rng, n):
    """``n`` bytes that are no audio format: seeded, no 0xFF (no MPEG sync)."""
    return bytes(rng.randrange(0, 128) for _ in range(n))


def make_requests(rng, n, mix, paths, clips, blobs):
    """``n`` requests ``(kind, body, bad_row)``, kinds drawn with weights ``mix``."""
    requests = []
    for i, kind in enumerate(rng.choices(KINDS, weights=mix, k=n)):
        if kind == "path":
            path = rng.choice(paths)
            payload = [
                {"inputs": [path]},
                {"dataframe_split": {"columns": ["path"], "data": [[path]]}},
                {"dataframe_records": [{"path": path}]},
            ][i % 3]
            bad_row = None
        elif kind == "audio":
            name, text = rng.choice(clips)
            columns = ["audio", "filename"]
            payload = {"dataframe_split": {"columns": columns, "data": [[text, name]]}}
            bad_row = None
        else:
            data = [[None, rng.choice(blobs), f"junk-{i}.bin"]]
            if rng.random() < 0.5:  # after a good row, which keeps its answer
                data.insert(0, [rng.choice(paths), None, None])
            columns = ["path", "audio", "filename"]
            payload = {"dataframe_split": {"columns": columns, "data": data}}
            bad_row = len(data) - 1
        requests.append((kind, json.dumps(payload).encode(), bad_row))
    return requests


# -- the server -------------------------------------------------------------------


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request(port, method, url, body=None, timeout=10.0):
    """``(status, body bytes)`` of one request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, url, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def ping(port, timeout=5.0):
    """Whether ``GET /ping`` answers 200."""
    try:
        return request(port, "GET", "/ping", timeout=timeout)[0] == 200
    except OSError:
        return False


def start_server(model, port, work, deadline, own_store=True):
    """``genreclf serve`` in its own process group; returns once /ping answers."""
    log = open(work / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "genreclf", "serve", str(model),
         "--host", HOST, "--port", str(port)],
        cwd=work, env=_env(work, own_store), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    while not ping(port, timeout=2.0):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            tail = (work / "server.log").read_text()[-3000:]
            sys.exit(f"genreclf serve did not answer /ping "
                     f"(exit {proc.returncode}):\n{tail}")  # fmt: skip
        time.sleep(0.3)
    return proc


def stop_server(proc, timeout=20):
    """SIGTERM to the server's process group, SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def rss_reader(pid):
    """A function returning the resident memory of ``pid`` in bytes (or None)."""
    try:
        import psutil

        process = psutil.Process(pid)

        def read():
            try:
                return process.memory_info().rss
            except psutil.Error:
                return None

        return read
    except ImportError:
        status = f"/proc/{pid}/status"

        def read():
            try:
                with open(status) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1]) * 1024
            except OSError:
                return None
            return None

        return read


class MemorySampler(threading.Thread):
    """Reads a process's RSS every 50 ms; :meth:`peak` of a time span."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.read = rss_reader(pid)
        self.samples = []  # (monotonic time, bytes)
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            value = self.read()
            if value is not None:
                self.samples.append((time.monotonic(), value))
            self.done.wait(SAMPLE_EVERY)

    def now(self):
        """The RSS right now, in bytes (0 when it cannot be read)."""
        return self.read() or 0

    def peak(self, start, end):
        """The highest reading between ``start`` and ``end`` (monotonic times)."""
        inside = [v for t, v in list(self.samples) if start <= t <= end]
        return max(inside, default=0)


# -- one level --------------------------------------------------------------------


def classify(kind, status, body, bad_row, genres):
    """``good_ok``, ``good_failed``, ``bad_rejected`` or ``bad_accepted``."""
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = {}
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if kind != "bad":
        ok = status == 200 and predictions and predictions[0].get("genre") in genres
        return "good_ok" if ok else "good_failed"
    named = f"row {bad_row}: junk-" in str(answer.get("message", ""))
    kept = bool(predictions) and len(predictions) == bad_row + 1 and all(
        p.get("genre") in genres for p in predictions[:bad_row]
    ) and predictions[bad_row].get("genre") is None
    return "bad_rejected" if status == 400 and named and kept else "bad_accepted"


def percentile(values, q):
    """The ``q``-th percentile (0-100) of ``values``, linear between ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def run_level(port, clients, requests, genres, timeout, deadline):
    """Send ``requests`` from ``clients`` threads; one record per answered request."""
    todo = queue.SimpleQueue()
    for item in requests:
        todo.put(item)
    records, lock = [], threading.Lock()

    def client():
        while time.monotonic() < deadline:
            try:
                kind, body, bad_row = todo.get_nowait()
            except queue.Empty:
                return
            start = time.perf_counter()
            try:
                status, answer = request(port, "POST", "/invocations", body, timeout)
            except (OSError, http.client.HTTPException) as exc:
                status, answer = 0, str(exc).encode()
            seconds = time.perf_counter() - start
            outcome = classify(kind, status, answer, bad_row, genres)
            with lock:
                records.append((kind, status, seconds, outcome))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:  # each request ends within ``timeout``
        thread.join(max(0.0, deadline - time.monotonic()) + timeout + 5)
    with lock:
        return list(records)


def summarize(clients, planned, records, seconds, rss):
    """The figures of one level (times in ms, memory in MB)."""
    latencies = [r[2] * 1000 for r in records]
    counts = {k: 0 for k in ("good_ok", "good_failed", "bad_rejected", "bad_accepted")}
    statuses = {}
    for _, status, _, outcome in records:
        counts[outcome] += 1
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    rounded = {k: None if v is None else round(v, 1) for k, v in (
        ("p50_ms", percentile(latencies, 50)), ("p95_ms", percentile(latencies, 95)),
        ("p99_ms", percentile(latencies, 99)),
        ("max_ms", max(latencies) if latencies else None),
    )}  # fmt: skip
    return {
        "clients": clients,
        "requests": planned,
        "completed": len(records),
        "not_sent": planned - len(records),
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(records) / seconds, 2) if seconds else 0.0,
        **counts,
        **rounded,
        "statuses": statuses,
        "kinds": {k: sum(r[0] == k for r in records) for k in KINDS},
        "rss_before_mb": round(rss[0] / MB, 1),
        "server_peak_rss_mb": round(rss[1] / MB, 1),
        "rss_after_mb": round(rss[2] / MB, 1),
    }


# -- the run ----------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Defaults: 200 requests per level at 1, 4 and 16 clients, mix "
        "45/45/10, 60 s per request, 600 s overall.",
    )
    parser.add_argument("--levels", default="1,4,16",
                        help="concurrent clients per level (default: 1,4,16)")
    parser.add_argument("--requests", type=int, default=200,
                        help="requests sent per level (default: 200)")
    parser.add_argument("--mix", default="45,45,10",
                        help="weights of path, audio and bad rows (default: 45,45,10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mix")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds per request (default: 60)")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="no request is sent after this many seconds from the "
                        "start, training included (default: 600)")
    parser.add_argument("--model", help="model to serve (URI, folder or pickled "
                        "pipeline); default: the tiny demo model, trained once")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="MLflow store, cache, clips and server log "
                        f"(default: {DEFAULT_WORK_DIR.relative_to(ROOT)})")
    parser.add_argument("--retrain", action="store_true",
                        help="train the demo model again instead of reusing it")
    parser.add_argument("--real-audio", default=None, help="folder of real MP3s "
                        "(default: $GENRECLF_REAL_AUDIO, else ../shared/data/fma; "
                        "'none': generated WAVs only)")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds after a level before rss_after (default: 2)")
    parser.add_argument("--rss-tolerance-mb", type=float, default=64.0,
                        help="how far above its level the memory may stay after "
                        "the run (default: 64)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object of every figure on the last line")
    args = parser.parse_args(argv)
    try:
        args.levels = [int(v) for v in args.levels.split(",")]
        args.mix = [float(v) for v in args.mix.split(",")]
    except ValueError:
        parser.error("--levels and --mix take comma-separated numbers")
    if len(args.mix) != 3 or min(args.mix) < 0 or not sum(args.mix):
        parser.error("--mix takes three weights >= 0 (path, audio, bad)")
    if min(args.levels) < 1 or args.requests < 1 or args.timeout <= 0:
        parser.error("--levels, --requests and --timeout must be positive")
    return args


def print_table(levels, load):
    print(f"{'clients':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'good_ok':>7} {'good_failed':>11} "
          f"{'bad_rejected':>12} {'bad_accepted':>12} {'peak RSS MB':>11}")
    for lv in levels:
        cells = [lv["p50_ms"], lv["p95_ms"], lv["p99_ms"]]
        p50, p95, p99 = ("-" if c is None else f"{c:.0f}" for c in cells)
        print(f"{lv['clients']:>7} {lv['completed']:>8} {lv['throughput_rps']:>7.2f} "
              f"{p50:>8} {p95:>8} {p99:>8} {lv['good_ok']:>7} {lv['good_failed']:>11} "
              f"{lv['bad_rejected']:>12} {lv['bad_accepted']:>12} "
              f"{lv['server_peak_rss_mb']:>11.0f}")  # fmt: skip
    print("load average (1, 5, 15 min): before %.2f %.2f %.2f, after %.2f %.2f %.2f"
          % (*load[0], *load[1]))


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    deadline = started + args.max_seconds
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = args.model or train_model(work, args.retrain, args.max_seconds)
    real = real_mp3s(args.real_audio)
    generated = write_wavs(work / "clips")
    demo = sorted(str(p) for p in (work / "cache" / "demo-audio").rglob("*.wav"))
    paths = generated + real + demo[::10]
    clips = []
    for path in real or generated:
        data = Path(path).read_bytes()
        clips.append((os.path.basename(path), base64.b64encode(data).decode()))
    rng = random.Random(args.seed)
    blobs = [base64.b64encode(garbage(rng, n)).decode() for n in (64, 2000, 40000)]
    plans = [make_requests(rng, args.requests, args.mix, paths, clips, blobs)
             for _ in args.levels]  # fmt: skip
    print(f"model {model}; {len(paths)} path(s), {len(clips)} clip(s) "
          f"({'real MP3' if real else 'generated WAV'}), levels {args.levels}, "
          f"{args.requests} requests each", flush=True)

    port = free_port()
    proc = start_server(model, port, work, min(deadline, time.monotonic() + 180),
                        own_store=not args.model)  # fmt: skip
    sampler = MemorySampler(proc.pid)
    sampler.start()
    levels, load_before = [], os.getloadavg()
    try:
        status, info = request(port, "GET", "/info")
        genres = set(json.loads(info)["genres"])
        # warm-up, outside the figures: one request of each kind, in turn
        warm = make_requests(random.Random(args.seed + 1), 6, [1, 1, 1], paths, clips,
                             blobs)  # fmt: skip
        run_level(port, 1, warm, genres, args.timeout, deadline)
        time.sleep(args.settle)
        baseline = sampler.now()
        for clients, plan in zip(args.levels, plans, strict=True):
            before, t0 = sampler.now(), time.monotonic()
            records = run_level(port, clients, plan, genres, args.timeout, deadline)
            t1 = time.monotonic()
            time.sleep(args.settle)
            rss = (before, max(sampler.peak(t0, t1), before), sampler.now())
            levels.append(summarize(clients, len(plan), records, t1 - t0, rss))
            print(f"  {clients} client(s): {len(records)} answers in {t1 - t0:.1f} s",
                  flush=True)
        ping_after = ping(port)
        final = sampler.now()
    finally:
        sampler.done.set()
        stop_server(proc)
    load_after = os.getloadavg()

    growth = (final - baseline) / MB
    checks = {
        "all_sent": all(lv["not_sent"] == 0 for lv in levels),
        "no_good_failed": all(lv["good_failed"] == 0 for lv in levels),
        "every_bad_rejected": all(lv["bad_accepted"] == 0 for lv in levels),
        "rss_returned": growth <= args.rss_tolerance_mb,
        "ping_after": ping_after,
    }
    print()
    print_table(levels, (load_before, load_after))
    print(f"server RSS: {baseline / MB:.0f} MB after warm-up, {final / MB:.0f} MB "
          f"after the run ({growth:+.0f} MB; tolerance {args.rss_tolerance_mb:.0f})")
    print(f"/ping after the run: {'answers' if ping_after else 'NO ANSWER'}")
    failed = [name for name, ok in checks.items() if not ok]
    print(f"checks: {'all pass' if not failed else 'FAILED: ' + ', '.join(failed)} "
          f"({time.monotonic() - started:.0f} s in all)")
    if args.json:
        print(json.dumps({
            "levels": levels,
            "ping_after": ping_after,
            "model": str(model),
            "audio": "real MP3" if real else "generated WAV",
            "mix": dict(zip(KINDS, args.mix, strict=True)),
            "rss_baseline_mb": round(baseline / MB, 1),
            "rss_final_mb": round(final / MB, 1),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in load_after],
            "checks": checks,
            "ok": not failed,
        }))  # fmt: skip
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
