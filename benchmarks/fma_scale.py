"""The FMA path end to end on a synthetic corpus of N clips, measured per stage.

Writes (once, cached) a corpus in the exact layout of the Free Music Archive,
then runs what the README tells an FMA user to run, each stage in its own
process so that its peak memory is its own:

1. ``generate``: ``ROOT/fma_metadata/tracks.csv`` (FMA's two-level header:
   ``('set', 'split')``, ``('set', 'subset')``, ``('track', 'genre_top')``,
   ``('track', 'genres')`` ...) and ``ROOT/fma_small/<3 digits>/<6 digits>.mp3``:
   30 s MP3s at 44.1 kHz stereo, balanced over the 8 FMA genres, each genre
   made by one engine of ``genreclf._synthetic`` (so genres are learnable),
   split 80/10/10 into the official ``training``/``validation``/``test``.
   MP3 encoding is most of the cost (~1.4 CPU s per 30 s clip), so at most
   ``--unique`` recordings (default 20) are made per genre and split and the
   other tracks of that genre and split are byte copies of them, each its own
   file (decoded, cached and trained on as any other: the work per clip is
   real); test tracks never share a recording with training tracks.
   ``--unique 0`` makes every track its own recording.
   Worker processes (``--jobs``) make the clips; the corpus is cached under
   ``benchmarks/results/fma_scale/`` by (N, version), or kept in ``--root``.
   The engines run at 22.05 kHz (what the features use) and the audio is
   resampled to 44.1 kHz, which halves their cost.
2. ``load_fma``: ``genreclf.load_fma(ROOT, split="training")`` and ``"test"``.
3. ``features``: the ``mfcc`` step of the pipeline that ``genreclf train``
   builds (default preset, same cache folder), over the training and test
   files: it fills the cache that the next stage reads, so that ``train``
   measures training. Calls ``genreclf._malloc.apply_malloc_settings()`` as
   the command line does.
4. ``train``: ``genreclf train --fma ROOT --max-epochs K`` (default preset,
   five networks unless ``--n-members``), which also evaluates on the test
   split; its ``eval_accuracy`` is the test accuracy reported.
5. ``evaluate``: ``genreclf evaluate <the logged model> --fma ROOT`` (the
   test split): loading the model and predicting, in a fresh process.

For each stage: wall time, CPU time (user + system of the stage's process and
its waited-for children: ``getrusage(RUSAGE_CHILDREN)`` deltas), peak resident
memory (``ru_maxrss`` of that process tree: the largest single process), the
bytes it wrote on disk (corpus, MFCC cache, checkpoints and MLflow), and its
rate: clips/s, or windows/s for ``train`` (windows of every clip x epochs x
networks: training and validation windows) and ``evaluate``. Prints a table
and ``os.getloadavg()``; with ``--json`` the last line is one JSON object
``{"clips": N, "stages": [{"name": ..., "wall_s": ..., "cpu_s": ...,
"peak_rss_mb": ..., ...}, ...], "test_accuracy": ...}``.

Nothing touches the network: MLflow writes to a SQLite file in a run folder
(``benchmarks/results/fma_scale/run-*``, removed at the end unless
``--keep``), where the MFCC cache and checkpoints also go (cold every time).

Usage::

    python benchmarks/fma_scale.py --clips 40 --max-epochs 1 --n-members 1
    python benchmarks/fma_scale.py --clips 500 --json
    python benchmarks/fma_scale.py --clips 2000 --json
    python benchmarks/fma_scale.py --clips 2000 --set mfcc__augment=0   # no variants
    python benchmarks/fma_scale.py --root /data/fma --json   # a real FMA root
"""

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "fma_scale"

#: Bump when the corpus writer changes what it writes: cached corpora are remade.
CORPUS_VERSION = 2
MANIFEST = "corpus.json"
SUBSET = "small"
SR = 44100  # FMA's MP3s
SYNTH_SR = 22050  # the engines' rate; resampled to SR
DURATION = 30.0
#: Recordings made per genre and split; the other tracks are copies of them.
UNIQUE = 20
#: The 8 genres of fma_small, their FMA genre ids, and the engine of each.
FMA_GENRES = {
    "Electronic": (15, "techno"),
    "Experimental": (38, "noise"),
    "Folk": (17, "folk"),
    "Hip-Hop": (21, "hiphop"),
    "Instrumental": (1235, "ambient"),
    "International": (2, "swing"),
    "Pop": (10, "chiptune"),
    "Rock": (12, "rock"),
}
#: tracks.csv columns (two-level header), as FMA's own file names them.
COLUMNS = [
    ("album", "title"),
    ("artist", "name"),
    ("set", "split"),
    ("set", "subset"),
    ("track", "duration"),
    ("track", "genre_top"),
    ("track", "genres"),
    ("track", "title"),
]
STAGES = ("generate", "load_fma", "features", "train", "evaluate")
_MB = 1024 * 1024


# ------------------------------------------------------------------ the corpus


def track_ids(n_clips):
    """``n_clips`` FMA-like track ids spread over the ``<3 digits>`` folders."""
    from genreclf.datasets import KNOWN_BAD_FMA_TRACKS

    stride = max(1, min(53, 999_000 // max(n_clips, 1)))
    ids, tid = [], 2
    while len(ids) < n_clips:
        if tid not in KNOWN_BAD_FMA_TRACKS:
            ids.append(tid)
        tid += stride
    return ids


def plan_corpus(n_clips, seed=0):
    """Rows ``(track_id, genre, split)``: balanced genres, 80/10/10 per genre."""
    rng = np.random.default_rng(seed)
    names = list(FMA_GENRES)
    genres = [names[i % len(names)] for i in range(n_clips)]
    genres = [genres[i] for i in rng.permutation(n_clips)]
    splits = [None] * n_clips
    for genre in names:
        where = [i for i, g in enumerate(genres) if g == genre]
        n = len(where)
        n_test = max(1, round(0.1 * n)) if n >= 3 else 0
        n_valid = max(1, round(0.1 * n)) if n >= 3 else 0
        for k, i in enumerate(where):
            splits[i] = (
                "test"
                if k < n_test
                else "validation"
                if k < n_test + n_valid
                else "training"
            )
    ids = track_ids(n_clips)
    return list(zip(ids, genres, splits, strict=True))


def audio_path(root, track_id):
    """``root/fma_small/<3 digits>/<6 digits>.mp3``, FMA's layout."""
    tid = f"{int(track_id):06d}"
    return Path(root) / f"fma_{SUBSET}" / tid[:3] / f"{tid}.mp3"


def make_clip(track_id, genre, seed=0, duration=DURATION):
    """One stereo clip ``(n_samples, 2)`` float32 at :data:`SR` of ``genre``."""
    from genreclf._synthetic import synth_clip

    rng = np.random.default_rng([seed, int(track_id)])
    n_out = int(round(duration * SR))
    n_syn = int(round(duration * SYNTH_SR))
    mono = synth_clip(FMA_GENRES[genre][1], rng, n_syn, SYNTH_SR)
    spec = np.fft.rfft(mono)  # band-limited resampling to SR
    up = np.fft.irfft(spec, n_out) * (n_out / n_syn)
    delay = int(rng.integers(0, 40))  # a little width: delayed, quieter right
    right = np.roll(up, delay) * rng.uniform(0.7, 1.0)
    stereo = np.stack([up, right], axis=1)
    return (stereo / max(1.0, float(np.max(np.abs(stereo))))).astype(np.float32)


def _write_clip(task):
    """Worker: write one MP3 unless a previous (interrupted) run wrote it."""
    import soundfile

    from genreclf._files import atomic_write

    path, track_id, genre, seed, duration = task
    if os.path.isfile(path):
        return 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_write(path) as f:
        soundfile.write(f, make_clip(track_id, genre, seed, duration), SR, format="MP3")
    return 1


def _write_tracks_csv(path, rows, duration):
    from genreclf._files import atomic_write

    with atomic_write(path, "w") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow([""] + [top for top, _ in COLUMNS])
        out.writerow([""] + [sub for _, sub in COLUMNS])
        out.writerow(["track_id"] + [""] * len(COLUMNS))
        for tid, genre, split in rows:
            out.writerow(
                [
                    tid,
                    f"Synthetic {FMA_GENRES[genre][1]}",
                    "genreclf benchmarks",
                    split,
                    SUBSET,
                    int(round(duration)),
                    genre,
                    f"[{FMA_GENRES[genre][0]}]",
                    f"Clip {tid}",
                ]
            )


def corpus_key(n_clips, seed=0, duration=DURATION, unique=UNIQUE):
    """What identifies a cached corpus (written to its manifest)."""
    from genreclf._synthetic import VERSION

    return {
        "clips": int(n_clips),
        "version": f"{CORPUS_VERSION}.{VERSION}",
        "seed": int(seed),
        "duration": float(duration),
        "sr": SR,
        "unique": int(unique),
    }


def default_root(n_clips, seed=0, duration=DURATION, unique=UNIQUE):
    """The cache folder of a corpus under ``benchmarks/results/fma_scale/``."""
    key = corpus_key(n_clips, seed, duration, unique)
    name = f"corpus-{n_clips}-v{key['version']}"
    if seed or duration != DURATION:
        name += f"-s{seed}-d{duration:g}"
    if unique != UNIQUE:
        name += f"-u{unique}"
    return RESULTS / name


def recording_sources(rows, unique=UNIQUE):
    """For each row, the index of the row whose recording it carries.

    Within each (genre, split), the first ``unique`` rows are recordings of
    their own and the others cycle through them; ``unique`` 0: all their own.
    """
    sources = list(range(len(rows)))
    if unique <= 0:
        return sources
    groups = {}
    for i, (_, genre, split) in enumerate(rows):
        group = groups.setdefault((genre, split), [])
        if len(group) >= unique:
            sources[i] = group[len(group) % unique]
        group.append(i)
    return sources


def read_manifest(root):
    """The corpus manifest of ``root``, or None."""
    try:
        return json.loads((Path(root) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def write_corpus(
    root, n_clips, *, jobs=None, seed=0, duration=DURATION, unique=UNIQUE
):
    """Write (or finish, or find) a synthetic FMA corpus of ``n_clips`` in ``root``.

    Returns ``(written, cached)``: the number of MP3 files written now
    (recordings and copies), and whether the corpus was complete already.
    ``unique``: recordings per genre and split (:func:`recording_sources`).
    ``tracks.csv`` and the manifest are written last, each atomically, so
    that a killed run leaves a folder that the next run completes.
    """
    root = Path(root)
    key = corpus_key(n_clips, seed, duration, unique)
    found = read_manifest(root)
    if found is not None:
        if found.get("key") != key:
            raise SystemExit(
                f"{root} holds another corpus ({found.get('key')}); "
                "choose another --root"
            )
        return 0, True
    tracks_csv = root / "fma_metadata" / "tracks.csv"
    if tracks_csv.exists():
        raise SystemExit(f"{root}: an FMA root without {MANIFEST}: not overwritten")
    rows = plan_corpus(n_clips, seed)
    sources = recording_sources(rows, unique)
    paths = [str(audio_path(root, tid)) for tid, _, _ in rows]
    tasks = [
        (paths[i], tid, genre, seed, duration)
        for i, (tid, genre, _) in enumerate(rows)
        if sources[i] == i
    ]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    written = 0
    step = max(1, len(tasks) // 10)
    with ProcessPoolExecutor(jobs) as pool:
        for k, n in enumerate(pool.map(_write_clip, tasks, chunksize=4), 1):
            written += n
            if k % step == 0:
                print(
                    f"generate: {k}/{len(tasks)} recordings",
                    file=sys.stderr,
                    flush=True,
                )
    from genreclf._files import atomic_write

    for i, source in enumerate(sources):
        if source == i or os.path.isfile(paths[i]):
            continue
        os.makedirs(os.path.dirname(paths[i]), exist_ok=True)
        with open(paths[source], "rb") as src, atomic_write(paths[i]) as dst:
            shutil.copyfileobj(src, dst)
        written += 1
    tracks_csv.parent.mkdir(parents=True, exist_ok=True)
    _write_tracks_csv(tracks_csv, rows, duration)
    with atomic_write(root / MANIFEST, "w") as f:
        json.dump({"key": key, "clips": len(rows), "recordings": len(tasks)}, f)
    return written, False


def folder_bytes(*folders):
    """Bytes of the files under ``folders`` (missing ones count 0)."""
    total = 0
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
    return total


# ------------------------------------------------- stages run in a child process


def _stage_generate(args):
    written, cached = write_corpus(
        args.root,
        args.clips,
        jobs=args.jobs,
        seed=args.seed,
        duration=args.duration,
        unique=args.unique,
    )
    return {"clips": written, "cached": cached}


def _stage_load_fma(args):
    from genreclf.datasets import load_fma

    files = {}
    for split in ("training", "test"):
        paths, y = load_fma(args.root, subset=SUBSET, split=split)
        files[split] = {"paths": paths.tolist(), "y": y.tolist()}
    (Path(args.work) / "files.json").write_text(json.dumps(files))
    return {
        "clips": sum(len(v["paths"]) for v in files.values()),
        "n_train": len(files["training"]["paths"]),
        "n_test": len(files["test"]["paths"]),
    }


def _stage_features(args):
    from genreclf._malloc import apply_malloc_settings

    malloc = apply_malloc_settings()  # as genreclf's main() does
    from genreclf._cli_options import _assignment  # as `genreclf train --set` reads
    from genreclf.pipeline import build_pipeline
    from genreclf.windows import window_starts

    files = json.loads((Path(args.work) / "files.json").read_text())
    n_train = len(files["training"]["paths"])
    paths = files["training"]["paths"] + files["test"]["paths"]
    # the pipeline of `genreclf train --fma --set ...`: memory=<cache-dir>/mfcc
    pipe = build_pipeline(
        "default",
        memory=os.path.join(args.work, "cache", "mfcc"),
        **dict(_assignment(text) for text in args.set),
    )
    params = pipe.get_params()
    window, hop = params["ensemble__net__window"], params["ensemble__net__window_hop"]
    mfcc = pipe.named_steps["mfcc"].fit()
    widths = []
    for start in range(0, len(paths), 64):  # in batches: memory bounded by one
        X = mfcc.transform(paths[start : start + 64])
        found = getattr(X, "n_frames", None)  # ClipFeatures: each clip's width
        widths.extend(
            [int(w) for w in found] if found is not None else [X.shape[-1]] * len(X)
        )
    windows = [
        1 if window is None else len(window_starts(w, window, hop)) for w in widths
    ]
    return {
        "clips": len(paths),
        "n_frames": int(np.median(widths)),
        "windows_per_clip": float(np.mean(windows)),
        "train_windows": int(sum(windows[:n_train])),
        "test_windows": int(sum(windows[n_train:])),
        "n_members": int(params["ensemble__n_members"]),
        "max_epochs": int(params["ensemble__net__max_epochs"]),
        "malloc": malloc,
    }


_CHILD_STAGES = {
    "generate": _stage_generate,
    "load_fma": _stage_load_fma,
    "features": _stage_features,
}


def _child_main(args):
    result = _CHILD_STAGES[args.stage](args)
    Path(args.result).write_text(json.dumps(result))
    return 0


# ------------------------------------------------------------- the measurement


def run_stage(name, cmd, work, log_lines=40):
    """Run ``cmd`` in its own process; return its output and its measurements."""
    log_path = Path(work) / f"{name}.log"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-log_lines:])
        raise SystemExit(f"stage {name} failed ({proc.returncode}):\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return output, {
        "name": name,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
    }


def _child_cmd(args, stage, work):
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--stage",
        stage,
        "--result",
        str(Path(work) / f"{stage}.json"),
        "--work",
        str(work),
        "--root",
        str(args.root),
        "--clips",
        str(args.clips),
        "--jobs",
        str(args.jobs),
        "--seed",
        str(args.seed),
        "--duration",
        str(args.duration),
        *[word for text in args.set for word in ("--set", text)],
    ]


def _cli_cmd(args, work, *command):
    return [
        sys.executable,
        "-m",
        "genreclf",
        "--tracking-uri",
        f"sqlite:///{Path(work) / 'mlflow.db'}",
        *command,
        "--fma",
        str(args.root),
        "--experiment-name",
        "fma-scale",
        "--cache-dir",
        str(Path(work) / "cache"),
        "--no-progress",
    ]


def _metric(output, name):
    found = re.findall(rf"^\s+{re.escape(name)} = ([0-9.eE+-]+)\s*$", output, re.M)
    return float(found[-1]) if found else None


def _rate(stage, count, unit):
    stage[f"{unit}_per_s"] = (
        round(count / stage["wall_s"], 2) if stage["wall_s"] else None
    )


def measure(args):
    """Run the five stages; return the figures of the run."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or RESULTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}")
    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()
    figures = {
        "clips": args.clips,
        "root": str(args.root),
        "stages": [],
        "loadavg_start": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "settings": list(args.set),
    }
    stages = figures["stages"]
    external = (
        read_manifest(args.root) is None
        and (Path(args.root) / "fma_metadata" / "tracks.csv").exists()
    )
    try:
        if external:
            print(f"{args.root}: an FMA root (no {MANIFEST}): nothing generated")
        else:
            _, stage = run_stage("generate", _child_cmd(args, "generate", work), work)
            result = json.loads((work / "generate.json").read_text())
            stage.update(cached=result["cached"], disk_mb=folder_bytes(args.root) / _MB)
            if result["cached"]:
                stage["clips_per_s"] = None
            else:
                _rate(stage, result["clips"], "clips")
            stages.append(stage)

        _, stage = run_stage("load_fma", _child_cmd(args, "load_fma", work), work)
        loaded = json.loads((work / "load_fma.json").read_text())
        figures.update(n_train=loaded["n_train"], n_test=loaded["n_test"])
        if external:
            figures["clips"] = loaded["clips"]
        _rate(stage, loaded["clips"], "clips")
        stages.append(stage)

        cache = work / "cache"
        _, stage = run_stage("features", _child_cmd(args, "features", work), work)
        feats = json.loads((work / "features.json").read_text())
        stage["disk_mb"] = folder_bytes(cache) / _MB
        _rate(stage, feats["clips"], "clips")
        stages.append(stage)
        figures.update(
            n_frames=feats["n_frames"],
            windows_per_clip=feats["windows_per_clip"],
            malloc=feats["malloc"],
        )

        n_members = args.n_members or feats["n_members"]
        train_cmd = ["train", "--max-epochs", str(args.max_epochs)]
        if args.n_members:
            train_cmd += ["--n-members", str(args.n_members)]
        for text in args.set:
            train_cmd += ["--set", text]
        before = folder_bytes(work)
        output, stage = run_stage("train", _cli_cmd(args, work, *train_cmd), work)
        stage["disk_mb"] = (folder_bytes(work) - before) / _MB
        windows = feats["train_windows"] * args.max_epochs * n_members
        _rate(stage, windows, "windows")
        stages.append(stage)
        figures.update(
            max_epochs=args.max_epochs,
            n_members=n_members,
            test_accuracy=_metric(output, "eval_accuracy"),
        )
        model = re.findall(r"^model: (\S+)", output, re.M)

        if model:
            before = folder_bytes(work)
            output, stage = run_stage(
                "evaluate", _cli_cmd(args, work, "evaluate", model[-1]), work
            )
            stage["disk_mb"] = (folder_bytes(work) - before) / _MB
            _rate(
                stage,
                feats["test_windows"] * n_members,
                "windows",
            )
            stage["clips_per_s"] = round(loaded["n_test"] / stage["wall_s"], 2)
            stage["accuracy"] = _metric(output, "eval_accuracy")
            stages.append(stage)
        else:
            print("train logged no model: evaluate stage skipped", file=sys.stderr)
        figures["cache_mb"] = folder_bytes(cache / "mfcc") / _MB
    finally:
        figures["loadavg_end"] = list(os.getloadavg())
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            figures["work"] = str(work)
    for stage in stages:
        if "disk_mb" in stage:
            stage["disk_mb"] = round(stage["disk_mb"], 2)
    figures["cache_mb"] = round(figures.get("cache_mb", 0.0), 2)
    return figures


def print_table(figures):
    print(
        f"\nFMA path on {figures['clips']} synthetic clips "
        f"({figures.get('n_train')} training, {figures.get('n_test')} test), "
        f"{figures.get('n_members')} network(s) x {figures.get('max_epochs')} "
        f"epoch(s), {figures['cpu_count']} CPU(s)"
    )
    print(
        f"{'stage':<10} {'wall s':>9} {'CPU s':>9} {'peak MB':>9} "
        f"{'disk MB':>9} {'rate':>16}"
    )
    for s in figures["stages"]:
        if "windows_per_s" in s:
            rate = f"{s['windows_per_s']} win/s"
        else:
            rate = f"{s.get('clips_per_s')} clips/s"
        if s.get("cached"):
            rate = "cached"
        disk = s.get("disk_mb")
        print(
            f"{s['name']:<10} {s['wall_s']:>9.1f} {s['cpu_s']:>9.1f} "
            f"{s['peak_rss_mb']:>9.1f} {'' if disk is None else f'{disk:.1f}':>9} "
            f"{rate:>16}"
        )
    acc = figures.get("test_accuracy")
    print(f"test accuracy: {'n/a' if acc is None else f'{acc:.4f}'}")
    print(f"MFCC cache: {figures['cache_mb']:.1f} MB; malloc: {figures.get('malloc')}")
    print(
        f"os.getloadavg(): {tuple(round(x, 2) for x in figures['loadavg_start'])} "
        f"at the start, {tuple(round(x, 2) for x in figures['loadavg_end'])} at the end"
    )


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--clips", type=int, default=2000, help="clips of the corpus (default: 2000)"
    )
    parser.add_argument(
        "--root",
        default=None,
        help="corpus folder (default: benchmarks/results/fma_scale/"
        "corpus-<clips>-v<version>); a real FMA root is used as is",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes that write the corpus (default: os.cpu_count())",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=1,
        help="genreclf train --max-epochs (default: 1)",
    )
    parser.add_argument(
        "--n-members",
        type=int,
        default=None,
        help="genreclf train --n-members (default: the default preset's 5 networks)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DURATION,
        help="seconds per clip (default: 30, as FMA)",
    )
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default: 0)")
    parser.add_argument(
        "--unique",
        type=int,
        default=UNIQUE,
        help="recordings per genre and split; other tracks are byte copies "
        f"of them (default: {UNIQUE}; 0: every track its own recording)",
    )
    parser.add_argument(
        "--work",
        default=None,
        help="run folder: MLflow, MFCC cache, checkpoints, logs "
        "(default: a new benchmarks/results/fma_scale/run-*)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the run folder (default: removed at the end)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object on the last line",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a pipeline parameter by its scikit-learn path, given to every "
        "stage and to `genreclf train --set` (repeatable), e.g. mfcc__augment=0",
    )
    parser.add_argument(
        "--stage", choices=sorted(_CHILD_STAGES), help=argparse.SUPPRESS
    )
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.clips < 1 or args.max_epochs < 1 or (args.n_members or 1) < 1:
        raise SystemExit("--clips, --max-epochs and --n-members must be >= 1")
    if args.root is None:
        args.root = default_root(args.clips, args.seed, args.duration, args.unique)
    args.root = Path(args.root).resolve()
    if args.stage:
        return _child_main(args)
    print(f"os.getloadavg(): {os.getloadavg()}", flush=True)
    figures = measure(args)
    print_table(figures)
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
