"""Generation speed of the synthetic demo dataset (``genreclf.make_synthetic``).

Times ``make_synthetic`` into an empty folder (every clip made and written)
and again into the same folder (every clip reused), and prints seconds of
audio generated per second, per genre and in all. This is the measurement
that ``tests/test_datasets.py`` (now ``tests/test_synthetic.py``) once held as a time limit ("80 s of audio in
under 10 s"); the test now checks what the limit stood for, that each clip is
made and written once.

Usage::

    python benchmarks/synthetic.py                       # 2 clips of 5 s per genre
    python benchmarks/synthetic.py --n-per-genre 20 --duration 3 --format flac
"""

import argparse
import sys
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-per-genre", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5.0, help="clip seconds")
    parser.add_argument("--format", default="wav")
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds")
    args = parser.parse_args(argv)

    import numpy as np

    from genreclf import _synthetic
    from genreclf.synthetic import SYNTHETIC_GENRES, make_synthetic

    n = int(round(args.duration * 22050))
    print(f"per genre: one clip of {args.duration:g} s, best of {args.rounds}")
    print(f"| {'genre':<10} | {'ms':>8} | {'audio s / s':>11} |")
    print(f"|{'-' * 12}|{'-' * 10}|{'-' * 13}|")
    for genre in SYNTHETIC_GENRES:
        best = float("inf")
        for r in range(args.rounds):
            rng = np.random.default_rng(r)
            start = time.perf_counter()
            _synthetic.synth_clip(genre, rng, n, 22050)
            best = min(best, time.perf_counter() - start)
        print(f"| {genre:<10} | {1000 * best:>8.1f} | {args.duration / best:>11.0f} |")

    total = args.n_per_genre * len(SYNTHETIC_GENRES) * args.duration
    cold = warm = float("inf")
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="genreclf-synth-") as out:
            kwargs = {
                "n_per_genre": args.n_per_genre,
                "duration": args.duration,
                "random_state": 0,
                "format": args.format,
            }
            start = time.perf_counter()
            make_synthetic(out, **kwargs)
            cold = min(cold, time.perf_counter() - start)
            start = time.perf_counter()
            make_synthetic(out, **kwargs)
            warm = min(warm, time.perf_counter() - start)
    print(
        f"make_synthetic, {total:g} s of {args.format} audio: "
        f"{cold:.2f} s into an empty folder ({total / cold:.0f} audio s / s), "
        f"{warm:.3f} s again (all reused)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
