"""Throughput per core, and the wall time it implies for FMA on 1, 8 and 64 workers.

Measures, in this process, on one core (BLAS and torch limited to one thread,
as in a Dask worker started with ``--nthreads 1``, where Dask sets
``OMP_NUM_THREADS=1``):

- **extraction, cold**: clips/s of ``MFCCTransformer`` (default 28.56 s clips,
  no cache) on real MP3 files like FMA's (44.1 kHz stereo, ~30 s);
- **training**: samples/s of the default net (``build_pipeline()``'s: filters
  64/160/128, dense 64, 20 x 1230 MFCCs, RMSprop, batch size 5), forward,
  backward and optimizer step, after one warm-up batch; and samples/s of the
  forward pass alone (validation, prediction; batch 32);
- the same training figure on a CUDA GPU when ``torch.cuda.is_available()``.

Each rate is given per wall-clock second and per CPU second of this process;
on a machine shared with other jobs the CPU-second rate is what a dedicated
core would give, and it is the one the estimates use (``--rate wall`` to use
the other).

Then estimates, for fma_small (8,000 clips), fma_medium (25,000) and fma_large
(106,574) on 1, 8 and 64 single-core workers, of: extracting every clip once
(into the shared cache); training one ensemble (``train``); and a
``GridSearchCV`` of 3 batch sizes x 3 folds followed by the refit (``search``).
The assumptions are printed with the table.

Usage::

    python benchmarks/scale.py                      # 20 clips, 6 training batches
    python benchmarks/scale.py --data DIR --n-clips 40 --train-batches 10
    python benchmarks/scale.py --json figures.json

``--data`` defaults to ``$GENRECLF_REAL_AUDIO/styles-mp3``, else
``../shared/data/styles-mp3``; without real files, synthetic MP3 clips are made.
"""

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from genreclf.features import DEFAULT_DURATION, MFCCTransformer
from genreclf.model import STUDY_PARAM_GROUPS, GenreCNN

AUDIO_EXTS = {".wav", ".mp3", ".flac", ".ogg", ".au"}
DATASETS = {"fma_small": 8000, "fma_medium": 25000, "fma_large": 106574}
WORKERS = (1, 8, 64)

# Protocol assumed for the estimates (the defaults of genreclf).
N_MEMBERS = 5
EPOCHS = 20  # GenreNet(max_epochs=20); every epoch runs (no early stop assumed)
VALID_SIZE = 0.2  # GenreNet(valid_size=0.2): held out inside each member's fit
TRAIN_FRACTION = 0.8  # FMA's official training split: 80 % of the clips
N_CANDIDATES, N_FOLDS = 3, 3  # the search: batch sizes 5, 10, 20; 3-fold CV
MIB_PER_CLIP = 93 * 1024 / 106574  # fma_large: 93 GiB of MP3 for 106,574 clips


def default_data():
    root = os.environ.get("GENRECLF_REAL_AUDIO")
    root = Path(root) if root else Path(__file__).resolve().parents[2] / "shared/data"
    return root / "styles-mp3"


def audio_files(folder, n_clips, workdir):
    paths = []
    if folder is not None and Path(folder).is_dir():
        paths = sorted(
            str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_EXTS
        )
    if paths:
        source = str(folder)
    else:
        from genreclf.datasets import make_synthetic

        paths, _ = make_synthetic(
            Path(workdir) / "synthetic",
            n_per_genre=math.ceil(n_clips / 8),
            duration=30.0,
            sr=44100,
            random_state=0,
            format="mp3",
        )
        paths, source = list(paths), "synthetic MP3 (no real files found)"
    # Distinct names (symlinks) when there are fewer files than asked for, so
    # that each one is decoded: the cache is off anyway.
    out = []
    for i in range(n_clips):
        src = paths[i % len(paths)]
        if i < len(paths):
            out.append(src)
        else:
            link = Path(workdir) / f"copy{i}{Path(src).suffix}"
            link.symlink_to(src)
            out.append(str(link))
    return out, source


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure_extraction(paths):
    mfcc = MFCCTransformer(duration=DEFAULT_DURATION, n_jobs=1, memory=None)
    mfcc.fit_transform(paths[:1])  # imports, filterbank: not part of the rate
    wall, cpu = timed(lambda: mfcc.fit_transform(paths))
    return {
        "clips": len(paths),
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s_wall": len(paths) / wall,
        "per_s_cpu": len(paths) / cpu,
    }


def _net_and_data(device, batch_size):
    torch.manual_seed(0)
    net = GenreCNN(n_classes=8).to(device)
    decay = [
        p
        for n, p in net.named_parameters()
        if n.startswith("blocks.1.conv") and n.endswith(".weight")
    ]
    rest = [p for p in net.parameters() if all(p is not q for q in decay)]
    weight_decay = STUDY_PARAM_GROUPS[0][1]["weight_decay"]
    optimizer = torch.optim.RMSprop(
        [{"params": rest}, {"params": decay, "weight_decay": weight_decay}],
        lr=1e-3,
        alpha=0.9,
    )
    X = torch.randn(batch_size, 1, 20, net.n_frames, device=device)
    y = torch.randint(0, 8, (batch_size,), device=device)
    return net, optimizer, X, y


def measure_training(device, batch_size, n_batches):
    net, optimizer, X, y = _net_and_data(device, batch_size)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(net(X), y).backward()
        optimizer.step()

    def run():
        for _ in range(n_batches):
            step()
        if device != "cpu":
            torch.cuda.synchronize()

    net.train()
    step()  # warm-up
    wall, cpu = timed(run)
    n = batch_size * n_batches
    return {
        "device": device,
        "batch_size": batch_size,
        "samples": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s_wall": n / wall,
        "per_s_cpu": n / cpu,
    }


def measure_forward(device, batch_size, n_batches):
    net, _, X, _ = _net_and_data(device, batch_size)
    net.eval()

    def run():
        with torch.no_grad():
            for _ in range(n_batches):
                net(X)
        if device != "cpu":
            torch.cuda.synchronize()

    with torch.no_grad():
        net(X)
    wall, cpu = timed(run)
    n = batch_size * n_batches
    return {
        "device": device,
        "batch_size": batch_size,
        "samples": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s_wall": n / wall,
        "per_s_cpu": n / cpu,
    }


def member_seconds(n_clips, train_rate, forward_rate):
    """One member's fit on ``n_clips``: EPOCHS x (train 80 %, validate 20 %)."""
    n_valid = math.ceil(VALID_SIZE * n_clips)
    per_epoch = (n_clips - n_valid) / train_rate + n_valid / forward_rate
    return EPOCHS * per_epoch


def estimate(n_total, workers, extract_rate, train_rate, forward_rate):
    """Seconds for extraction, one training and one search on ``workers`` cores."""
    n_train = round(TRAIN_FRACTION * n_total)
    extraction = n_total / (extract_rate * workers)
    member = member_seconds(n_train, train_rate, forward_rate)
    train = math.ceil(N_MEMBERS / workers) * member
    fold_member = member_seconds(
        round(n_train * (N_FOLDS - 1) / N_FOLDS), train_rate, forward_rate
    )
    units = N_CANDIDATES * N_FOLDS * N_MEMBERS
    scoring = N_CANDIDATES * N_FOLDS * N_MEMBERS * (n_train / N_FOLDS) / forward_rate
    search = (math.ceil(units / workers) * fold_member + scoring / workers) + train
    return {"extraction_s": extraction, "train_s": train, "search_s": search}


def human(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data(),
        help="folder of audio files (MP3 like FMA's)",
    )
    parser.add_argument("--n-clips", type=int, default=20)
    parser.add_argument("--train-batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument(
        "--rate",
        choices=["cpu", "wall"],
        default="cpu",
        help="which per-core rate the estimates use",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load:.1f}; torch {torch.__version__}"
    )
    if load > (os.cpu_count() or 1) * 0.5:
        print(
            "note: the machine is busy; wall-clock rates are contended, "
            "CPU-second rates less so"
        )

    figures = {"load_average": load, "cpu_count": os.cpu_count()}
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as workdir, threadpool_limits(1):
        paths, source = audio_files(args.data, args.n_clips, workdir)
        print(
            f"\nextraction: {len(paths)} clips from {source}, "
            f"{DEFAULT_DURATION} s each, cold (no cache), 1 core ..."
        )
        figures["extraction"] = ext = measure_extraction(paths)
        print(
            f"training: default net, batch {args.batch_size}, "
            f"{args.train_batches} batches, 1 core ..."
        )
        figures["training"] = tr = measure_training(
            "cpu", args.batch_size, args.train_batches
        )
        figures["forward"] = fw = measure_forward("cpu", 32, 2)
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        print(f"training on GPU ({name}) ...")
        gpu = measure_training("cuda", args.batch_size, 20 * args.train_batches)
        gpu["name"] = name
        figures["training_gpu"] = gpu
        figures["forward_gpu"] = measure_forward("cuda", 32, 20)
    else:
        figures["training_gpu"] = None

    print("\nMeasured (one core; per wall second / per CPU second):")
    rows = [
        ("extraction, cold", ext, "clips/s"),
        ("training step", tr, "samples/s"),
        ("forward only (batch 32)", fw, "samples/s"),
    ]
    for label, fig, unit in rows:
        print(
            f"  {label:<24} {fig['per_s_wall']:8.2f} / {fig['per_s_cpu']:8.2f} {unit}"
        )
    if figures["training_gpu"]:
        g = figures["training_gpu"]
        print(
            f"  training step on {g['name']}: {g['per_s_wall']:.1f} samples/s "
            f"(batch {g['batch_size']})"
        )
    else:
        print("  GPU: not measured (no CUDA device here)")

    key = f"per_s_{args.rate}"
    rates = ext[key], tr[key], fw[key]
    print(f"\nEstimated wall time ({args.rate}-second rates; 1 worker = 1 core):")
    header = (
        f"  {'dataset':<11}{'clips':>8}{'workers':>9}  {'extract (cold)':>15}"
        f"{'train':>10}{'search 3x3':>12}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    table = []
    for name, n_total in DATASETS.items():
        for workers in WORKERS:
            est = estimate(n_total, workers, *rates)
            table.append({"dataset": name, "clips": n_total, "workers": workers, **est})
            print(
                f"  {name:<11}{n_total:>8}{workers:>9}  "
                f"{human(est['extraction_s']):>15}{human(est['train_s']):>10}"
                f"{human(est['search_s']):>12}"
            )
    figures["estimates"] = table
    need = max(WORKERS) * ext[key] * MIB_PER_CLIP
    print(
        f"  cold extraction on {max(WORKERS)} workers reads ~{need:,.0f} MiB/s of "
        f"MP3 (FMA: {MIB_PER_CLIP:.2f} MiB per clip): below that, storage bounds it"
    )
    if figures["training_gpu"]:
        g = figures["training_gpu"]["per_s_wall"], figures["forward_gpu"]["per_s_wall"]
        print("\n  with one GPU per worker (training only; extraction as above):")
        for name, n_total in DATASETS.items():
            for workers in WORKERS:
                est = estimate(n_total, workers, ext[key], *g)
                print(
                    f"  {name:<11}{n_total:>8}{workers:>9}  {'':>15}"
                    f"{human(est['train_s']):>10}{human(est['search_s']):>12}"
                )
    print(f"""
Assumptions: linear scaling over workers (each worker one core, features read
from the shared cache after one cold pass, storage fast enough: fma_large is
93 GiB, read once); {TRAIN_FRACTION:.0%} of the clips in the training split;
each member trains {EPOCHS} epochs (no early stop) on {1 - VALID_SIZE:.0%} of
its data and validates on {VALID_SIZE:.0%}; a training fits {N_MEMBERS} members,
so more than {N_MEMBERS} workers do not speed it up; the search fits
{N_CANDIDATES} batch sizes x {N_FOLDS} folds x {N_MEMBERS} members
({N_CANDIDATES * N_FOLDS * N_MEMBERS} independent fits, on 2/3 of the training
split, all at the batch-{args.batch_size} rate; ensemble__n_jobs=-1 to spread
members), scores each fold, then refits the best on the whole training split.""")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
