"""Feature extraction speed: path -> MFCC, clips per second, in one run.

Compares, on the same files and in the same run:

(a) the naive loop a user would write: ``librosa.load(path, sr=22050)`` then
    ``librosa.feature.mfcc`` (one core);
(b) genreclf cold (empty cache) with one core and with all cores;
(c) genreclf warm (cache filled by the cold run);
(d) genreclf with ``duration=None`` (every clip at its real length, the output
    a disk-backed ``ClipFeatures``), cold, and (e) warm, one core.

The ``frames`` column is the number of MFCC frames the run produced (the
padded/cropped width times the clips for the dense path, each clip's real
width for the ragged one) and ``features MB`` their size, held in memory by
the dense path and left on disk by the ragged one.

Each measurement runs in a fresh Python process (so imports and caches do not
leak between them); the clock covers only the extraction. The CPU time of the
measuring process is shown beside the wall-clock time: on a machine shared with
other jobs it is the steadier comparison of the one-core runs. Peak memory is
the peak resident set size (ru_maxrss) of the measuring process and of its
largest worker process.

Usage::

    python benchmarks/features.py                   # ../shared/data, every file
    python benchmarks/features.py --repeat 3        # 3 x the files (symlinked)
    python benchmarks/features.py --data DIR --duration 10 --rounds 3
    python benchmarks/features.py --kernel          # which parts of the kernel pay

``--kernel`` times, on one generated clip of the default duration and one
thread, each part of ``genreclf._mfcc.MFCCKernel`` against the plain
alternative (one large FFT, the dense mel product, ``librosa.power_to_db``,
a DCT matrix), and the import that a joblib worker would pay if it loaded
librosa itself. CPU milliseconds, best of ``--rounds`` (at least 7).

The folder defaults to ``$GENRECLF_REAL_AUDIO``, else ``../shared/data``
relative to the repository root.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AUDIO_EXTS = {".wav", ".mp3", ".flac", ".ogg", ".au"}
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


def _default_data():
    env = os.environ.get("GENRECLF_REAL_AUDIO")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _files(folder, repeat, workdir):
    paths = sorted(
        str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_EXTS
    )
    if not paths:
        sys.exit(f"no audio files under {folder}")
    if repeat <= 1:
        return paths
    # Distinct names (symlinks) so that every copy is decoded and cached anew.
    out = []
    for r in range(repeat):
        sub = Path(workdir) / f"copy{r}"
        sub.mkdir()
        for i, p in enumerate(paths):
            link = sub / f"{i:04d}{Path(p).suffix}"
            link.symlink_to(p)
            out.append(str(link))
    return out


# -- the kernel's parts -----------------------------------------------------------


def _best_ms(fn, rounds):
    best = float("inf")
    for _ in range(rounds):
        cpu = time.process_time()
        fn()
        best = min(best, time.process_time() - cpu)
    return 1000 * best


def _import_seconds(statement):
    code = f"import time; t = time.perf_counter(); {statement}; "
    code += "print(time.perf_counter() - t)"
    env = dict(os.environ, **ONE_THREAD)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    return float(out.stdout.strip())


def kernel_parts(duration, rounds):
    """Print CPU ms of each part of the MFCC kernel and of its alternative."""
    import librosa
    import numpy as np
    import scipy.fft
    from threadpoolctl import threadpool_limits

    from genreclf import _mfcc

    sr, n_fft, hop = 22050, 2048, 512
    y = np.random.default_rng(0).standard_normal(int(round(duration * sr)))
    y = (0.1 * y).astype(np.float32)
    kernel = _mfcc.kernel(sr, n_fft, hop, 128, 20)
    padded = np.pad(y, n_fft // 2)
    n_frames = 1 + (len(padded) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    frames = frames[:n_frames]

    def stft(block):
        out = []
        for start in range(0, n_frames, block):
            spec = scipy.fft.rfft(frames[start : start + block] * kernel.window)
            out.append(spec.real**2 + spec.imag**2)
        return np.concatenate(out)

    power = stft(n_frames).astype(np.float32)
    dense = np.ascontiguousarray(kernel.filterbank().T)

    def banded():
        mel = np.zeros((n_frames, kernel.n_mels), np.float32)
        for lo, hi, m0, m1, weights in kernel.groups:
            mel[:, m0:m1] = power[:, lo:hi] @ weights
        return mel

    mel = banded()
    log_mel = librosa.power_to_db(mel)
    dct = np.ascontiguousarray(
        scipy.fft.dct(np.eye(kernel.n_mels, dtype=np.float32), norm="ortho")[:, :20]
    )
    rows = [
        ("whole kernel", lambda: kernel(y), "librosa.feature.mfcc",
         lambda: librosa.feature.mfcc(y=y, sr=sr)),
        (f"STFT in blocks of {_mfcc._STFT_BLOCK}",
         lambda: stft(_mfcc._STFT_BLOCK), "one FFT of all frames",
         lambda: stft(n_frames)),
        ("banded mel product", banded, "dense mel product", lambda: power @ dense),
        ("power_to_db in place", lambda: _mfcc.power_to_db(mel.copy()),
         "librosa.power_to_db", lambda: librosa.power_to_db(mel)),
        ("scipy.fft.dct, keep 20", lambda: scipy.fft.dct(log_mel, axis=1,
         norm="ortho")[:, :20], "DCT matrix (20 rows)", lambda: log_mel @ dct),
    ]  # fmt: skip
    print(f"kernel parts, one {duration:g} s clip, 1 thread, CPU ms, best of {rounds}")
    print(f"| {'ours':<28} | {'ms':>6} | {'alternative':<24} | {'ms':>6} |")
    print(f"|{'-' * 30}|{'-' * 8}|{'-' * 26}|{'-' * 8}|")
    with threadpool_limits(1):
        for ours, fn, other, alt in rows:
            a, b = _best_ms(fn, rounds), _best_ms(alt, rounds)
            print(f"| {ours:<28} | {a:>6.2f} | {other:<24} | {b:>6.2f} |")
    light = _import_seconds("import genreclf._mfcc")
    heavy = _import_seconds("import genreclf._mfcc, librosa.core.spectrum")
    print(
        f"worker imports: genreclf._mfcc {light:.2f} s; "
        f"with librosa.power_to_db's module {heavy:.2f} s"
    )


# -- measuring process -----------------------------------------------------------


def _peak_rss_mb(who):
    import resource

    rss = resource.getrusage(who).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _measure(mode, list_file, cache, duration, n_jobs):
    import numpy as np

    paths = Path(list_file).read_text().splitlines()
    if mode == "naive":
        import librosa

        def run():
            for path in paths:
                y, _ = librosa.load(path, sr=22050)
                librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20)

        # librosa builds its filterbank/FFT plans on first use: warm that up
        # on a synthetic signal (not on the files, which would be cached).
        librosa.feature.mfcc(y=np.zeros(22050, np.float32), sr=22050)
    else:
        from genreclf.features import MFCCTransformer, compute_mfcc

        if mode.startswith("ragged"):
            duration = None
        transformer = MFCCTransformer(duration=duration, memory=cache, n_jobs=n_jobs)
        compute_mfcc(np.zeros(22050, np.float32))  # the same warm-up as (a)

        def run():
            return transformer.transform(paths)

    start, cpu = time.perf_counter(), time.process_time()
    out = run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if out is None:
        frames, feature_mb = None, None
    elif duration is None:
        frames = int(out.n_frames.sum())
        feature_mb = frames * out.n_mfcc * 4 / 1e6
    else:
        frames = int(out.shape[0] * out.shape[-1])
        feature_mb = out.nbytes / 1e6
    if mode == "cold_all":
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    import resource

    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "n": len(paths),
        "frames": frames,
        "feature_mb": feature_mb,
        "rss_mb": _peak_rss_mb(resource.RUSAGE_SELF),
        "worker_rss_mb": _peak_rss_mb(resource.RUSAGE_CHILDREN),
    }


def _spawn(mode, list_file, cache, duration, n_jobs, one_thread):
    env = dict(os.environ)
    if one_thread:
        env.update(ONE_THREAD)
    cmd = [
        sys.executable,
        __file__,
        "--_measure",
        mode,
        list_file,
        cache,
        str(duration),
        str(n_jobs),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=_default_data())
    parser.add_argument("--repeat", type=int, default=1, help="use the files N times")
    parser.add_argument("--duration", type=float, default=None, help="clip seconds")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="all cores")
    parser.add_argument("--rounds", type=int, default=1, help="best of N rounds")
    parser.add_argument(
        "--kernel", action="store_true", help="time the parts of the MFCC kernel"
    )
    parser.add_argument("--_measure", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.kernel:
        from genreclf.features import DEFAULT_DURATION

        kernel_parts(args.duration or DEFAULT_DURATION, max(7, args.rounds))
        return 0

    if args._measure:
        mode, list_file, cache, duration, n_jobs = args._measure
        print(
            json.dumps(_measure(mode, list_file, cache, float(duration), int(n_jobs)))
        )
        return 0

    from genreclf.features import DEFAULT_DURATION

    duration = args.duration or DEFAULT_DURATION
    with tempfile.TemporaryDirectory(prefix="genreclf-bench-") as work:
        paths = _files(args.data, args.repeat, work)
        list_file = os.path.join(work, "files.txt")
        Path(list_file).write_text("\n".join(paths))
        print(
            f"{len(paths)} files from {args.data} (x{args.repeat}), "
            f"clips of {duration:g} s, {os.cpu_count()} cores, "
            f"python {sys.version.split()[0]}"
        )
        best = {}
        for r in range(args.rounds):
            caches = {
                m: os.path.join(work, f"cache-{m}-{r}") for m in ("c1", "ca", "rg")
            }
            runs = [
                ("naive", "(a) naive librosa loop, 1 core", "-", 1, True),
                ("cold_1", "(b) genreclf cold, 1 core", caches["c1"], 1, True),
                (
                    "cold_all",
                    f"(b) genreclf cold, {args.jobs} cores",
                    caches["ca"],
                    args.jobs,
                    False,
                ),
                ("warm", "(c) genreclf warm, 1 core", caches["c1"], 1, True),
                ("ragged_cold", "(d) ragged (duration=None) cold", caches["rg"], 1,
                 True),
                ("ragged_warm", "(e) ragged (duration=None) warm", caches["rg"], 1,
                 True),
            ]  # fmt: skip
            for mode, label, cache, n_jobs, one in runs:
                res = _spawn(mode, list_file, cache, duration, n_jobs, one)
                res["label"] = label
                if mode not in best or res["seconds"] < best[mode]["seconds"]:
                    best[mode] = res

    naive = best["naive"]["n"] / best["naive"]["seconds"]
    header = (
        f"| {'mode':<34} | {'clips':>5} | {'seconds':>8} | {'clips/s':>8} | "
        f"{'vs (a)':>7} | {'CPU s':>7} | {'CPU vs (a)':>10} | {'peak RSS MB':>11} | "
        f"{'worker RSS MB':>13} | {'frames':>9} | {'features MB':>11} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for mode in ("naive", "cold_1", "cold_all", "warm", "ragged_cold", "ragged_warm"):
        r = best[mode]
        rate = r["n"] / r["seconds"]
        worker = f"{r['worker_rss_mb']:.0f}" if mode == "cold_all" else "-"
        if mode == "cold_all":  # the work is done in the workers
            cpu, cpu_ratio = "-", "-"
        else:
            cpu = f"{r['cpu_seconds']:.3f}"
            cpu_ratio = f"{best['naive']['cpu_seconds'] / r['cpu_seconds']:.1f}x"
        frames = "-" if r["frames"] is None else str(r["frames"])
        size = "-" if r["feature_mb"] is None else f"{r['feature_mb']:.1f}"
        print(
            f"| {r['label']:<34} | {r['n']:>5} | {r['seconds']:>8.3f} | "
            f"{rate:>8.1f} | {rate / naive:>6.1f}x | {cpu:>7} | {cpu_ratio:>10} | "
            f"{r['rss_mb']:>11.0f} | {worker:>13} | {frames:>9} | {size:>11} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
