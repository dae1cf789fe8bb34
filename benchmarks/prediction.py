"""What test-time tempo views (``predict_stretch``) cost at prediction.

``GenreNet(predict_stretch=...)`` predicts every window of a clip at its own
tempo and stretched by each factor (docs/results.rst, "Tempo views at
prediction"; stop 26's default, off since stop 27). This script measures, in
one process and on the same clips, the ensemble's ``predict_proba`` with and
without those views, and puts both beside the cost of turning the audio into
MFCCs, which every prediction from files pays first:

- **mfcc**: ``MFCCTransformer.transform`` of the clips, decoded from their
  files (no cache), once;
- **nets, plain** and **nets, views**: the fitted ensemble's
  ``predict_proba`` on those features with ``predict_stretch=()`` and with
  ``--views`` (stop 26's factors by default), alternating (plain first on
  even repeats, views first on odd ones), so a change of load hits both alike.

The nets are the default preset's five, trained for one epoch on a few clips
without production variants: prediction costs the same whatever the weights.
Figures are medians over ``--repeats`` of wall and process CPU seconds per
30 s clip, with the ratio views / plain per repeat; the load average is
printed with them (the machine may be shared).

Usage::

    python benchmarks/prediction.py               # 40 clips, 5 repeats: about 1 min
    python benchmarks/prediction.py --clips 100 --repeats 9

The recordings folder is ``$GENRECLF_REAL_AUDIO``, else ``../shared/data``
(it needs ``gtzan-100``).
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    accuracy.add_data_arguments(parser)
    parser.add_argument("--clips", type=int, default=40, help="clips predicted")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--views",
        default="0.94,1.06",
        help="the factors of predict_stretch, comma-separated (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    from genreclf import build_pipeline
    from genreclf.datasets import load_folder

    rates = tuple(float(rate) for rate in args.views.split(",") if rate)
    paths, y = load_folder(Path(args.root) / "gtzan-100")
    order = np.random.default_rng(0).permutation(len(paths))
    paths = np.asarray(paths, dtype=object)[order]
    y = np.asarray(y)[order]
    train = np.concatenate([np.flatnonzero(y == g)[:2] for g in np.unique(y)])
    pipe = build_pipeline(random_state=0, max_epochs=1, augment=0, calibrate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(paths[train], y[train])
    clips = paths[: args.clips]
    features = {}

    def extract():
        features["X"] = pipe[:-1].transform(clips)

    mfcc_wall, mfcc_cpu = _timed(extract)
    X, ensemble = features["X"], pipe[-1]
    times = {"plain": [], "views": []}
    for repeat in range(args.repeats):
        order = ("plain", "views") if repeat % 2 == 0 else ("views", "plain")
        for name in order:
            views = {"predict_stretch": () if name == "plain" else rates}
            with accuracy.predicting_with(pipe, views):
                times[name].append(_timed(lambda: ensemble.predict_proba(X)))
    n = len(clips)
    load = os.getloadavg()
    print(
        f"{n} clips of gtzan-100 (30 s), five nets, predict_stretch={rates}; "
        f"{args.repeats} repeats; load average {load[0]:.2f} {load[1]:.2f}"
    )
    print(f"{'step':<14}{'wall ms/clip':>14}{'cpu ms/clip':>14}")
    print(f"{'mfcc':<14}{1e3 * mfcc_wall / n:>14.1f}{1e3 * mfcc_cpu / n:>14.1f}")
    for name in ("plain", "views"):
        wall = np.median([t[0] for t in times[name]])
        cpu = np.median([t[1] for t in times[name]])
        print(f"{'nets, ' + name:<14}{1e3 * wall / n:>14.1f}{1e3 * cpu / n:>14.1f}")
    ratios = [v[1] / p[1] for v, p in zip(times["views"], times["plain"], strict=True)]
    print(
        f"views / plain: {np.median(ratios):.2f}x CPU (median of {len(ratios)}); "
        f"{1 + len(rates)} passes of the net per window"
    )


if __name__ == "__main__":
    main()
