"""Two models at once: the default and a partner, averaged or chosen per clip.

``build_pipeline("matched")`` (no production variants) is the most accurate on
music produced like the training clips and fragile under any other production;
the default is the reverse (docs/results.rst, "Three presets"). This script
measures whether combining the default with a partner keeps the best of both.
The partner (``--partner``) is the matched preset, or ``stats``: a logistic
regression on each clip's MFCC statistics (mean, spread and spread of the
frame-to-frame change of the first :data:`STATS_ROWS` coefficients of the
default's own features, over the clip's real frames), fitted on the recorded
training clips, what the MFCC-statistics baseline of the other benchmarks
does. The combinations:

- **blend**: the two models' log-probabilities averaged with the default's
  weight ``w`` (0.25, 0.5, 0.75);
- **gated**: a detector of changed production chooses between them per
  clip. It is a logistic regression on the MFCC statistics (mean, spread and
  spread of the change of every coefficient, as the nets' head sees them) of
  every 3 s window of the training clips, told apart as recorded (variant 0)
  or changed (the default's six production variants); its mean probability
  over a clip's windows is the default's weight (matched partner only).

Three parts, the same clips and models as the other benchmarks:

- ``robust``: the robustness folds of ``transfer.py`` (5 stratified folds of
  ``gtzan-100``, its changes of production), ``--members`` nets per model
  (default 1), accuracy and change from clean clips;
- ``report``: trained on NN 00-04, tested on NN 05-09 (``selection.py``'s
  report part), whole clips, 3 s and 2 s excerpts, five nets per model;
- ``dev``: stratified 5-fold cross-validation inside NN 00-04 (``selection.py``'s
  development part, where a weight is chosen), the same columns, five nets.

Usage::

    python benchmarks/combine.py                  # report and robust: 6.5 min, 2 cores
    python benchmarks/combine.py --part report    # one part
    python benchmarks/combine.py --partner stats --part dev  # choosing the weight

The recordings folder is ``$GENRECLF_REAL_AUDIO``, else ``../shared/data``.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import accuracy  # noqa: E402
import selection  # noqa: E402
import transfer  # noqa: E402

WEIGHTS = (0.25, 0.5, 0.75)
WINDOW, HOP = 129, 64
#: Coefficients whose statistics the ``stats`` partner reads (the baseline's 20).
STATS_ROWS = 20


def clips_and_splits(root, cache, part):
    """The clips of every column, the labels and the (train, test) splits of a part."""
    from sklearn.model_selection import StratifiedKFold

    from genreclf.datasets import load_folder

    paths, y = load_folder(root / "gtzan-100")
    paths, y = np.asarray(paths, dtype=object), np.asarray(y)
    cache = Path(cache)
    if part == "robust":
        cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=transfer.SEED)
        splits = list(cv.split(np.zeros(len(y)), y))
        columns = {
            "clean": paths,
            "3 s excerpt": accuracy.make_excerpts(paths, cache / "gtzan-3s", 3.0),
        }
        for name in transfer.PERTURBATIONS:
            columns[name] = transfer.make_perturbed(paths, cache / "perturbed", name)
    else:
        dev = selection.part_of(paths, "dev")
        splits = [(np.flatnonzero(dev), np.flatnonzero(~dev))]
        if part == "dev":  # selection.py's folds inside the development part
            paths, y = paths[dev], y[dev]
            cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
            splits = list(cv.split(np.zeros(len(y)), y))
        columns = {
            "whole": paths,
            "3 s": accuracy.make_excerpts(paths, cache / "gtzan-3s", 3.0),
        }
        for at in selection.TWO_SECOND_PLACES:
            columns[f"2 s at {at}"] = accuracy.make_excerpts(
                paths, cache / "gtzan-2s", 2.0, at
            )
    return columns, y, splits


def window_stats(clip):
    """MFCC statistics of every window of one clip, shape (n_windows, 3 * n_mfcc)."""
    import torch

    from genreclf.cnn import input_stats
    from genreclf.windows import window_starts

    starts = window_starts(clip.shape[-1], WINDOW, HOP)
    wins = np.stack([clip[:, s : s + WINDOW] for s in starts])[:, None]
    return input_stats(torch.from_numpy(np.ascontiguousarray(wins))).numpy()


def clip_stats(clip, rows=STATS_ROWS):
    """The nets' head statistics (:func:`~genreclf.cnn.input_stats`) of a whole clip.

    Mean, spread and spread of the change of its first ``rows`` coefficients
    over all of its frames, in float64.
    """
    import torch

    from genreclf.cnn import input_stats

    first = np.asarray(clip, dtype=np.float64)[None, None, :rows]
    return input_stats(torch.from_numpy(first))[0].numpy()


def fit_stats_model(features, y):
    """Fit the ``stats`` partner on the recorded clips of ``features`` (variant 0)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = np.array([clip_stats(features.clip(i)[0]) for i in range(len(features))])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return model.fit(rows, y)


def fit_detector(features):
    """Fit a logistic regression of recorded (0) against changed (1) windows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows, labels = [], []
    counts = np.broadcast_to(np.asarray(features.n_variants), (len(features),))
    for i in range(len(features)):
        for v in range(int(counts[i])):
            stats = window_stats(features.clip(i, v)[0])
            rows.append(stats)
            labels.append(np.full(len(stats), int(v > 0)))
    detector = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced"),
    )
    return detector.fit(np.concatenate(rows), np.concatenate(labels))


def run_part(args, part):
    from sklearn.base import clone

    from genreclf.pipeline import build_pipeline

    columns, y, splits = clips_and_splits(Path(args.root), args.cache, part)
    first = next(iter(columns))
    members = args.members or (1 if part == "robust" else 5)
    classes = np.unique(y)  # the order of every model's columns of probabilities
    partner = args.partner
    logp = {
        name: {c: np.zeros((len(y), len(classes))) for c in columns}
        for name in ("default", partner)
    }
    presets = ("default", "matched") if partner == "matched" else ("default",)
    gate = {c: np.zeros(len(y)) for c in columns}
    tested = np.zeros(len(y), bool)
    for k, (train, test) in enumerate(splits):
        for preset in presets:
            model = build_pipeline(
                preset, memory=args.cache, random_state=transfer.SEED, n_members=members
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model.fit(columns[first][train], y[train])
            detector = stats_model = None
            if preset == "default" and partner == "stats":  # the recorded clips
                train_X = model[:-1].transform(columns[first][train])
                stats_model = fit_stats_model(train_X, y[train])
                assert list(stats_model.classes_) == list(classes)
            elif preset == "default":  # its features: the training variants, the scale
                mfcc = clone(model.named_steps["mfcc"])
                variants = mfcc.fit_transform(columns[first][train], y[train])
                detector = fit_detector(model.named_steps["scale"].transform(variants))
            for column, clips in columns.items():
                X = model[:-1].transform(clips[test])  # once for the nets and the gate
                proba = model.steps[-1][1].predict_proba(X)
                logp[preset][column][test] = np.log(np.clip(proba, 1e-9, 1.0))
                if stats_model is not None:
                    rows = np.array([clip_stats(X.clip(j)[0]) for j in range(len(X))])
                    proba = stats_model.predict_proba(rows)
                    logp["stats"][column][test] = np.log(np.clip(proba, 1e-9, 1.0))
                for j, i in enumerate(test if detector is not None else ()):
                    stats = window_stats(X.clip(j)[0])
                    gate[column][i] = detector.predict_proba(stats)[:, 1].mean()
        tested[test] = True
        transfer._log(f"{part}: split {k + 1}/{len(splits)} done")
    print(f"\n{part}: {members} net(s) per model, partner {partner}; accuracy"
          + (" and change from clean" if part == "robust" else "")
          + "; w is the default's weight")
    print(f"{'combination':<16}" + "".join(f"{c[:14]:>16}" for c in columns))
    rows = {partner: 0.0, "default": 1.0}
    rows.update({f"blend w={w}": w for w in WEIGHTS})
    if partner == "matched":
        rows["gated"] = None
    for label, w in rows.items():
        cells, clean = "", None
        for column in columns:
            weight = (gate[column] if w is None else np.full(len(y), w))[:, None]
            mix = weight * logp["default"][column]
            mix += (1 - weight) * logp[partner][column]
            acc = float(np.mean(classes[mix[tested].argmax(1)] == y[tested]))
            clean = acc if column == first else clean
            shown = part == "robust" and column != first
            change = f"({acc - clean:+.2f})" if shown else ""
            cells += f"{acc:>9.3f}{change:>7}"
        print(f"{label:<16}{cells}")
    if partner == "matched":
        means = "  ".join(f"{c}: {gate[c][tested].mean():.2f}" for c in columns)
        print(f"detector, mean probability of a changed production: {means}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    accuracy.add_data_arguments(parser)
    parser.add_argument(
        "--part", choices=("robust", "report", "dev", "both"), default="both",
        help="both: report and robust",
    )
    parser.add_argument("--partner", choices=("matched", "stats"), default="matched")
    parser.add_argument(
        "--members", type=int, default=0,
        help="nets per model (default: 1 on the robustness folds, 5 elsewhere)",
    )
    args = parser.parse_args(argv)
    if not (Path(args.root) / "gtzan-100").is_dir():
        sys.exit(f"{Path(args.root) / 'gtzan-100'} is absent")
    load = os.getloadavg()
    transfer._log(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    start = time.perf_counter()
    for part in ("report", "robust") if args.part == "both" else (args.part,):
        run_part(args, part)
    print(f"\ntotal {(time.perf_counter() - start) / 60:.1f} min; load average at the "
          f"end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
