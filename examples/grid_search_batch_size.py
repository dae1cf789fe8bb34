"""Search the batch size of all five nets with scikit-learn's own GridSearchCV.

Generates a small demo dataset (``genreclf.make_synthetic``), builds the
pipeline with a small net and few epochs, and searches
``ensemble__net__batch_size``, the one parameter path that sets the batch size
of every member. The MFCC cache (``memory=``) decodes each clip once, whatever
the number of folds and candidates. Prints ``cv_results_`` as a table.

Run: ``python examples/grid_search_batch_size.py [--out DIR] [--full]``
(a few minutes on two CPU cores; ``--full`` uses the study's network and
clip length instead, which takes much longer).
"""

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from genreclf.datasets import make_synthetic
from genreclf.pipeline import build_pipeline


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the demo audio and the MFCC cache")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[5, 16])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the study's settings")
    args = parser.parse_args(argv)

    out = Path(args.out or tempfile.mkdtemp(prefix="genreclf-gridsearch-"))
    duration = 10.0 if args.full else 3.0
    paths, genres = make_synthetic(
        out / "demo", n_per_genre=8, duration=duration, random_state=0
    )
    print(f"{len(paths)} clips of {duration:g} s in {out / 'demo'}")

    # A small net learns quickly at 1e-3 (the study's size needs 1e-4, the default).
    small = {"filters": (16, 32, 32), "dense": 32, "max_epochs": 8, "lr": 1e-3}
    options = {} if args.full else small
    pipe = build_pipeline(
        memory=out / "cache",
        random_state=0,
        duration=duration,
        **options,
    )
    search = GridSearchCV(
        pipe,
        {"ensemble__net__batch_size": args.batch_sizes},
        cv=StratifiedKFold(args.folds, shuffle=True, random_state=0),
        n_jobs=None,  # one level of parallelism: leave the cores to torch
    )
    start = time.perf_counter()
    search.fit(paths, genres)
    print(f"search took {time.perf_counter() - start:.0f} s")

    columns = [
        "param_ensemble__net__batch_size",
        "mean_test_score",
        "std_test_score",
        "rank_test_score",
        "mean_fit_time",
    ]
    table = pd.DataFrame(search.cv_results_)[columns]
    print(table.to_string(index=False))
    print(f"best: {search.best_params_} (accuracy {search.best_score_:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
