"""Choosing the default on a development part, reporting on the other part.

``gtzan-100`` holds clips ``<genre>.000NN`` with NN = 00..09. This script
splits it by number: the **development part** (NN 00-04, 50 clips) is where
settings are chosen; the **report part** (NN 05-09, 50 clips) is never looked
at while choosing. ``--part dev`` scores each variant (the default preset with
some short options changed) by stratified 5-fold cross-validation inside the
development part; ``--part report`` trains each variant on the whole
development part and scores it on the report part, the held-out figure. Both
score the held-out clips whole, as 3 s excerpts from their middle, and as 2 s
excerpts at a fifth, half and four fifths of each clip (the "2 s" column is
the accuracy over all three; most music a user sends is short, and the test
that matters is on recordings of 2-3 s). With ``--members`` above one, "nets 3 s"
and "nets 2 s" give the mean accuracy of the ensemble's nets alone on the same
excerpts. "ece" and "ece 2 s" are the expected calibration error of the
model's probabilities on the held-out whole clips and 2 s excerpts (10 bins;
0 when "0.8" is right 80% of the time), "nll 2 s" their mean log-loss on the
2 s excerpts (lower is better; both move with calibration, which accuracy
does not show; with one net per variant the nets are left uncalibrated, since a
temperature changes none of one net's answers and would cost a second fit). GTZAN's consecutive numbers often share an artist, so the report
part is also further from the training clips than random folds are.

Usage::

    python benchmarks/selection.py                       # the variants below, dev part
    python benchmarks/selection.py --part report --members 5 --variants default,baseline
    python benchmarks/selection.py --variant cmvn:normalize=cmvn --variant ...
    python benchmarks/selection.py --seeds 0,1,2 --variant n15:noise_snr=15

``--seeds`` runs every variant once per ``augment_seed`` (the draws of the cached
production variants, which alone move the held-out figures by several points:
docs/results.rst, "Repeatable training") and prints the mean and the spread of
each; the variants share the draws, so their differences stay paired.

Every variant sees the same folds and the same excerpts (paired comparison).
One net per variant by default (``--members``), which ranks settings at a fifth
of the cost of the ensemble.
"""

import argparse
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import accuracy  # noqa: E402

#: Named variants of the default preset: name -> short options.
VARIANTS = {
    "default": {},
    "baseline": None,  # MFCC mean/std + logistic regression
}
#: Where the 2 s excerpts of each clip start (0: its start, 1: its end).
TWO_SECOND_PLACES = (0.2, 0.5, 0.8)
_NUMBER = re.compile(r"\.000(\d\d)\.")


def _hits_and_proba(model, clips, y):
    """Whether each of ``clips`` is predicted right, and the model's probabilities."""
    proba = np.asarray(model.predict_proba(clips), dtype=np.float64)
    return model.classes_[proba.argmax(axis=1)] == y, proba


def _calibration(proba, y, classes):
    """Expected calibration error and mean log-loss of ``proba`` for labels ``y``."""
    from genreclf.calibration import expected_calibration_error

    index = np.searchsorted(classes, y)
    right = np.clip(proba[np.arange(len(y)), index], 1e-12, 1.0)
    return expected_calibration_error(proba, index), float(-np.log(right).mean())


def part_of(paths, part):
    """Boolean mask of the clips of ``part`` ("dev": NN 00-04, "report": 05-09)."""
    numbers = np.array([int(_NUMBER.search(Path(p).name).group(1)) for p in paths])
    return numbers < 5 if part == "dev" else numbers >= 5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    accuracy.add_data_arguments(parser)
    parser.add_argument("--part", choices=("dev", "report"), default="dev")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:K=V,..")
    parser.add_argument("--variants", help="comma list of the named variants to run")
    parser.add_argument(
        "--seeds",
        help="comma list of augment_seed values: every variant is run with each (the "
        "same draws for every variant: paired), then their mean is printed",
    )
    args = parser.parse_args(argv)
    from sklearn.model_selection import StratifiedKFold

    from genreclf.datasets import load_folder
    from genreclf.pipeline import build_pipeline

    variants = dict(VARIANTS)
    if args.variants:
        variants = {k: variants[k] for k in args.variants.split(",")}
    variants.update(accuracy.parse_variant(v) for v in args.variant)
    variants, groups = with_seeds(variants, args.seeds)
    paths, y = load_folder(Path(args.root) / "gtzan-100")
    paths, y = np.asarray(paths, dtype=object), np.asarray(y)
    if args.part == "dev":
        keep = part_of(paths, "dev")
        paths, y = paths[keep], y[keep]
        cv = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0)
        splits = list(cv.split(np.zeros(len(y)), y))
    else:  # train on the development part, test on the report part
        dev = part_of(paths, "dev")
        splits = [(np.flatnonzero(dev), np.flatnonzero(~dev))]
    short = accuracy.make_excerpts(paths, Path(args.cache) / "gtzan-3s", 3.0)
    # 2 s excerpts at three places of every clip: the shortest music a user
    # sends, scored on three times as many excerpts (less noise than one each)
    tiny = [
        accuracy.make_excerpts(paths, Path(args.cache) / "gtzan-2s", 2.0, at)
        for at in TWO_SECOND_PLACES
    ]
    load = os.getloadavg()
    folds = len(splits)
    print(f"part {args.part}: {len(y)} clips, {folds} split(s), "
          f"{args.members} net(s) per variant; load average {load[0]:.2f}", flush=True)
    header = "".join(f"{title:>{width}}" for title, width, _ in COLUMNS)
    print(f"{'variant':<28}{header}", flush=True)
    rows = {}
    for name, options in variants.items():
        tested = np.zeros(len(y), bool)
        whole, excerpt = np.zeros(len(y), bool), np.zeros(len(y), bool)
        two = np.zeros((len(TWO_SECOND_PLACES), len(y)), bool)
        # probabilities of the whole clips and of the 2 s excerpts, per clip
        probas = {"whole": {}, "2 s": [{} for _ in TWO_SECOND_PLACES]}
        # the nets alone: hits of each single net (rows) on the excerpts
        nets = {
            "3 s": np.zeros((args.members, len(y))),
            "2 s": np.zeros((len(TWO_SECOND_PLACES), args.members, len(y))),
        }
        spent = [0.0, 0.0]  # wall and CPU seconds of the nets' own predictions
        start, cpu = time.perf_counter(), time.process_time()
        for train, test in splits:
            if options is None:
                model = accuracy.make_baseline(args.cache, 20)
            else:
                if args.members == 1:  # one net: a temperature changes no answer,
                    # and the default's calibration net would double the fit
                    options = {"calibrate": False, **options}
                model = build_pipeline(
                    memory=args.cache, random_state=0, n_members=args.members, **options
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model.fit(paths[train], y[train])
            whole[test], proba = _hits_and_proba(model, paths[test], y[test])
            probas["whole"].update(zip(test, proba, strict=True))
            excerpt[test] = model.predict(short[test]) == y[test]
            for row, clips, kept in zip(two, tiny, probas["2 s"], strict=True):
                row[test], proba = _hits_and_proba(model, clips[test], y[test])
                kept.update(zip(test, proba, strict=True))
            if args.members > 1 and options is not None:
                t0, c0 = time.perf_counter(), time.process_time()
                hits = accuracy.member_hits
                nets["3 s"][:, test] = hits(model, short[test], y[test])
                for k, clips in enumerate(tiny):
                    nets["2 s"][k][:, test] = hits(model, clips[test], y[test])
                spent[0] += time.perf_counter() - t0
                spent[1] += time.process_time() - c0
            tested[test] = True
        wall = time.perf_counter() - start - spent[0]
        cpu = time.process_time() - cpu - spent[1]
        whole, excerpt, two = whole[tested], excerpt[tested], two[:, tested]
        classes = np.unique(y)
        order = np.flatnonzero(tested)
        ece, _ = _calibration(
            np.array([probas["whole"][i] for i in order]), y[order], classes
        )
        ece_2, nll_2 = _calibration(
            np.array([kept[i] for kept in probas["2 s"] for i in order]),
            np.tile(y[order], len(TWO_SECOND_PLACES)),
            classes,
        )
        alone = [np.nan, np.nan]
        if args.members > 1 and options is not None:
            alone = [nets["3 s"][:, tested].mean(), nets["2 s"][..., tested].mean()]
        rows[name] = [whole.mean(), excerpt.mean(), two.mean(), *alone]
        rows[name] += [ece, ece_2, nll_2, wall, cpu]
        print(_row(name, rows[name]), flush=True)
    for name, members in groups.items():
        print(_row(f"{name} (mean)", np.mean([rows[m] for m in members], axis=0)))
        spread = np.ptp([rows[m] for m in members], axis=0)
        print(_row(f"{name} (max - min)", spread), flush=True)


#: The table's columns after the variant's name: (title, width, decimals).
COLUMNS = (
    ("whole", 8, 3),
    ("3 s", 8, 3),
    ("2 s", 8, 3),
    ("nets 3 s", 10, 3),
    ("nets 2 s", 10, 3),
    ("ece", 7, 3),
    ("ece 2 s", 8, 3),
    ("nll 2 s", 8, 3),
    ("fit s", 8, 0),
    ("cpu s", 8, 0),
)


def _row(name, figures):
    """One line of the table (:data:`COLUMNS`; NaN prints as "-")."""
    cells = [
        f"{'-':>{w}}" if np.isnan(v) else f"{v:>{w}.{d}f}"
        for v, (_, w, d) in zip(figures, COLUMNS, strict=True)
    ]
    return f"{name:<28}" + "".join(cells)


def with_seeds(variants, seeds):
    """Each variant once per ``augment_seed`` of ``seeds`` (a comma list, or None).

    Returns ``(variants, groups)``: the runs by name (``"<name>@<seed>"``), and
    the names of each variant's runs, whose mean is printed. A variant that sets
    its own ``augment_seed``, and the baseline (no augmentation), run once.

    >>> runs, groups = with_seeds({"default": {}, "baseline": None}, "0,1")
    >>> list(runs), groups
    (['default@0', 'default@1', 'baseline'], {'default': ['default@0', 'default@1']})
    """
    if not seeds:
        return variants, {}
    values = [int(v) for v in seeds.split(",")]
    runs, groups = {}, {}
    for name, options in variants.items():
        if options is None or "augment_seed" in options:
            runs[name] = options
            continue
        groups[name] = []
        for seed in values:
            runs[f"{name}@{seed}"] = {**options, "augment_seed": seed}
            groups[name].append(f"{name}@{seed}")
    return runs, groups


if __name__ == "__main__":
    main()
