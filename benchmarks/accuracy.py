"""Accuracy of genreclf's configurations on real music, on identical folds.

Compares, in one run, on the same stratified folds (fixed seeds) and with one
MFCC cache (each clip is decoded once per MFCC setting):

- ``baseline``: per-coefficient mean and standard deviation of the MFCCs over
  the clip's audio (the zero padding of short clips left out), then
  ``StandardScaler`` and logistic regression; ``baseline-40``: the same on 40
  MFCCs, the default's features;
- ``reference``: ``build_pipeline(preset="reference")``, the study's net on
  whole clips, five seeds: rows "reference net" (its nets scored alone, mean
  accuracy) and "reference ensemble";
- ``slice``: the study's net trained on every 3 s window of the clips and
  voting the windows of each clip (one net);
- ``default``: ``build_pipeline()``, the study's proposed successors: slice
  voting (short clips repeated, not padded with silence; log-probabilities
  of the 3 s windows averaged) and a VGG-style net with batch normalization,
  dropout and a global-pooling head that also sees each window's MFCC
  statistics (two blocks of 8 and 16 filters), five seeds: rows "default
  net" (its nets scored alone, mean accuracy) and "default ensemble";
- ``deeper``: the default with three blocks of 16/32/64 filters, one net
  (``deeper-ensemble``, five nets, runs only when named);
- ``slice-ensemble`` (run only when named): five study nets with slice voting.

The study's net costs about ten times the default's per clip (whole 28.56 s
clips through 64/160/128 filters at batch 5): 5 folds x 5 nets x its 20 epochs
take hours on two cores. So the methods built on it run on the first
``--reference-folds`` folds (default 1) for ``--reference-epochs`` epochs
(default 3), and the run prints a second table of every method on those folds
alone, the like-for-like comparison. ``--reference-folds 5
--reference-epochs 20`` runs the study's schedule in full.

Every method is scored on the held-out clips of each fold ("full": the clip as
it is) and on a 2 s excerpt from the middle of each of those clips ("2 s"),
written once as WAV under the cache folder and predicted like any file. The
table gives accuracy (mean and standard deviation over folds), macro-F1 (over
the pooled out-of-fold predictions), and wall and CPU time per method; then the
per-genre accuracy of the best method (mean of its full and 2 s accuracy over
all folds). The confusion matrices of the best method and of the default
ensemble are saved as PNG in ``--out`` beside ``results.json`` (every figure,
and the out-of-fold predictions) and ``table.md``.

Usage::

    python benchmarks/accuracy.py                  # gtzan-100, 5 folds (~15-25 min)
    python benchmarks/accuracy.py --quick          # smoke run, about a minute
    python benchmarks/accuracy.py --methods baseline,default --folds 3
    python benchmarks/accuracy.py --data FOLDER    # any labelled folder (load_folder)
    python benchmarks/accuracy.py --fma ROOT       # fma_small, official split

The folder defaults to ``$GENRECLF_REAL_AUDIO/gtzan-100``, else
``../shared/data/gtzan-100`` relative to the repository root. With ``--fma``
there is one split: the nets train on the official training split (each holds
out its own part for the best epoch) and are scored on the test split.
"""

import argparse
import ast
import contextlib
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

EXCERPT_SECONDS = 2.0
SEED = 0
#: Epochs and folds of the methods built on the study's net (see the module
#: docstring); ``--reference-epochs`` and ``--reference-folds`` change them.
REFERENCE_EPOCHS = 3
REFERENCE_FOLDS = 1

#: The study's net with slice voting: every 3 s window (129 frames, 3 s
#: apart) is a training sample; the windows' probabilities are averaged.
_SLICING = {
    "window": 129,
    "window_hop": 129,
    "train_windows": "all",
    "combine": "mean",
}

#: What each method runs: ``preset`` and ``options`` of ``build_pipeline``
#: (``preset`` None: the baseline), its nets, whether it is built on the
#: study's net (``study``: reference epochs and folds), and its rows in the
#: table as ``(row, which)``: "ensemble" scores the method's prediction,
#: "members" the mean accuracy of its nets scored alone.
METHODS = {
    "baseline": {
        "what": "MFCC mean/std + logistic regression",
        "preset": None,
        "n_mfcc": 20,
        "rows": (("baseline", "ensemble"),),
    },
    "baseline-40": {
        "what": "the baseline on 40 MFCCs (the default's features)",
        "preset": None,
        "n_mfcc": 40,
        "rows": (("baseline, 40 MFCCs", "ensemble"),),
    },
    "reference": {
        "what": "study's net, whole clips",
        "preset": "reference",
        "options": {},
        "study": True,
        "n_members": 5,
        "rows": (("reference net", "members"), ("reference ensemble", "ensemble")),
    },
    "slice": {
        "what": "study's net, 3 s windows voted",
        "preset": "reference",
        "options": _SLICING,
        "study": True,
        "n_members": 1,
        "rows": (("slice net", "ensemble"),),
    },
    "slice-ensemble": {
        "what": "five study nets, 3 s windows voted",
        "preset": "reference",
        "options": _SLICING,
        "study": True,
        "n_members": 5,
        "rows": (("slice ensemble", "ensemble"),),
    },
    "deeper": {
        "what": "the default with three blocks of 16/32/64 filters",
        "preset": "default",
        "options": {"filters": (16, 32, 64)},
        "n_members": 1,
        "rows": (("deeper net", "ensemble"),),
    },
    "deeper-ensemble": {
        "what": "five deeper nets",
        "preset": "default",
        "options": {"filters": (16, 32, 64)},
        "n_members": 5,
        "rows": (("deeper ensemble", "ensemble"),),
    },
    "default": {
        "what": "small net with BN, dropout, global head, MFCC statistics; "
        "3 s windows voted",
        "preset": "default",
        "options": {},
        "n_members": 5,
        "rows": (("default net", "members"), ("default ensemble", "ensemble")),
    },
}
DEFAULT_METHODS = (
    "baseline",
    "baseline-40",
    "reference",
    "slice",
    "deeper",
    "default",
)

#: ``--quick``: two folds of tiny nets, to check that everything runs.
QUICK = {
    "folds": 2,
    "epochs": 2,
    "options": {"filters": (4, 8), "dense": 8},
    "n_members": 2,
}


def _default_data():
    env = os.environ.get("GENRECLF_REAL_AUDIO")
    if env:
        return Path(env) / "gtzan-100"
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gtzan-100"


def _log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- data ---------------------------------------------------------------------------


def load_data(args):
    """Return ``(paths, y, splits)``; ``splits`` is a list of (train, test) indices."""
    from genreclf.datasets import load_fma, load_folder

    if args.fma:
        train_paths, train_y = load_fma(args.fma, subset=args.subset, split="training")
        test_paths, test_y = load_fma(args.fma, subset=args.subset, split="test")
        paths = np.concatenate([train_paths, test_paths])
        y = np.concatenate([train_y, test_y])
        n = len(train_paths)
        return paths, y, [(np.arange(n), np.arange(n, len(paths)))]
    paths, y = load_folder(args.data)
    from sklearn.model_selection import StratifiedKFold

    counts = np.unique(y, return_counts=True)[1]
    if counts.min() < args.folds:
        sys.exit(
            f"{args.data}: the smallest genre has {counts.min()} clips, fewer than "
            f"--folds {args.folds}"
        )
    cv = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=SEED)
    return paths, y, list(cv.split(np.zeros(len(y)), y))


def make_excerpts(paths, folder, seconds=EXCERPT_SECONDS, at=0.5):
    """Write ``seconds`` of every clip as a WAV file; return the paths.

    ``at`` places the excerpt: 0 at the start, 0.5 (the default) in the
    middle, 1 at the end of the clip. An excerpt already in ``folder`` (same
    source path, size, time and place) is kept, so that its MFCCs stay in the
    cache from one run to the next.
    """
    import hashlib

    import soundfile as sf

    from genreclf.audio import DEFAULT_SR, load_audio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    n = int(round(seconds * DEFAULT_SR))
    for path in paths:
        st = os.stat(path)
        ident = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{seconds}"
        if at != 0.5:  # middle excerpts keep the names they were cached under
            ident += f"|{at}"
        digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
        target = folder / f"{Path(path).stem}-{digest}.wav"
        if not target.exists():
            wave = load_audio(path, sr=DEFAULT_SR)
            start = int(max(0, len(wave) - n) * at)
            sf.write(target, wave[start : start + n], DEFAULT_SR, subtype="FLOAT")
        out.append(str(target))
    return np.array(out, dtype=object)


def add_data_arguments(parser):
    """Add ``--root`` and ``--cache``, read by the benchmarks on real recordings.

    ``--root`` is the real recordings folder: ``$GENRECLF_REAL_AUDIO``, else
    ``../shared/data`` beside the repository; ``--cache`` the MFCC cache and
    the excerpts and changed clips written from the recordings
    (``benchmarks/results/mfcc-cache``).
    """
    default_root = os.environ.get("GENRECLF_REAL_AUDIO") or str(
        Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    parser.add_argument("--root", default=default_root, help="real recordings folder")
    parser.add_argument(
        "--cache", default=str(Path(__file__).parent / "results" / "mfcc-cache"),
        help="MFCC cache, excerpts and changed clips",
    )


def member_hits(model, paths, y):
    """Whether each net of a genreclf pipeline's ensemble alone names each clip right.

    Returns a boolean array of shape (n_nets, n_clips); (0, n_clips) for a
    model without nets (the baseline). The features are computed once and
    every net reads them as the ensemble does.
    """
    nets = list(getattr(model.steps[-1][1], "estimators_", []) or [])
    if not nets:
        return np.zeros((0, len(y)), bool)
    X = model[:-1].transform(np.asarray(paths, dtype=object))
    classes = model.classes_
    return np.array([classes[net.predict_proba(X).argmax(1)] == y for net in nets])


@contextlib.contextmanager
def predicting_with(model, options):
    """The fitted ``model`` with prediction-time ``options`` set on each of its nets.

    Only options a fitted net reads at prediction (``predict_stretch``) make
    sense here: the nets are not refitted, so what they predict is paired with
    what they predict without (the same nets, the same temperatures); the
    options are put back on the way out.
    """
    nets = list(getattr(model.steps[-1][1], "estimators_", []) or [])
    saved = [{k: getattr(net, k) for k in options} for net in nets]
    try:
        for net in nets:
            for key, value in options.items():
                setattr(net, key, value)
        yield model
    finally:
        for net, old in zip(nets, saved, strict=True):
            for key, value in old.items():
                setattr(net, key, value)


def member_accuracy(model, paths, y):
    """Accuracy of each net of the ensemble alone on ``paths`` (a list)."""
    return [float(hits.mean()) for hits in member_hits(model, paths, y)]


# -- the baseline -------------------------------------------------------------------


def _mfcc_stats(X):
    """Mean and std of each MFCC over the frames that are not zero padding.

    A frame of digital silence (the padding ``MFCCTransformer`` adds to short
    clips) has equal log-mel energies in every band, hence MFCCs 1.. of zero.
    """
    X = X[:, 0]  # (n, n_mfcc, n_frames)
    rows = []
    for clip in X:
        keep = np.abs(clip[1:]).max(axis=0) > 1e-3
        frames = clip[:, keep] if keep.sum() >= 2 else clip
        rows.append(np.concatenate([frames.mean(axis=1), frames.std(axis=1)]))
    return np.asarray(rows)


def make_baseline(memory, n_mfcc=20):
    """MFCC mean/std per coefficient + StandardScaler + logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from genreclf.features import MFCCTransformer

    return make_pipeline(
        MFCCTransformer(n_mfcc=n_mfcc, memory=memory),
        FunctionTransformer(_mfcc_stats),
        StandardScaler(),
        LogisticRegression(max_iter=5000),
    )


# -- one method on every split ------------------------------------------------------


def make_method(spec, args):
    """The unfitted estimator of a method."""
    if spec["preset"] is None:
        return make_baseline(args.cache, spec["n_mfcc"])
    from genreclf.pipeline import build_pipeline

    options = {**spec["options"], **args.extra_options}
    if spec.get("study") and args.reference_epochs is not None:
        options["max_epochs"] = args.reference_epochs
    if args.epochs is not None:
        options["max_epochs"] = args.epochs
    return build_pipeline(
        spec["preset"],
        memory=args.cache,
        random_state=SEED,
        n_members=args.n_members or spec.get("n_members", 5),
        **options,
    )


def _predict(pipe, paths):
    """Labels of the pipeline and, for an ensemble, of each of its nets."""
    ens = pipe[-1]
    if not hasattr(ens, "estimators_"):
        return pipe.predict(paths), []
    X = pipe[:-1].transform(paths)
    members = [ens.le_.inverse_transform(m.predict(X)) for m in ens.estimators_]
    return ens.predict(X), members


def run_method(name, spec, args, paths, y, excerpts, splits):
    """Fit and score a method on its folds.

    Returns
    -------
    record : dict
        ``accuracy[row][kind]``: {fold index: accuracy}; ``pred[row][kind]``:
        out-of-fold labels (None where not tested); ``wall``/``cpu``: seconds.
    """
    from sklearn.base import clone

    folds = range(len(splits))
    if spec.get("study"):
        folds = range(min(args.reference_folds, len(splits)))
    template = make_method(spec, args)
    kinds = ("full", "2s")
    acc = {row: {kind: {} for kind in kinds} for row, _ in spec["rows"]}
    pred = {
        row: {kind: np.full(len(y), None, object) for kind in kinds}
        for row, _ in spec["rows"]
    }
    wall = cpu = 0.0
    for k in folds:
        train, test = splits[k]
        start, cpu_start = time.perf_counter(), time.process_time()
        pipe = clone(template)
        with warnings.catch_warnings():
            # GenreNet's notes on small held-out parts; the table says enough.
            warnings.simplefilter("ignore", UserWarning)
            pipe.fit(paths[train], y[train])
            for kind, X in zip(kinds, (paths[test], excerpts[test]), strict=True):
                labels, members = _predict(pipe, X)
                for row, which in spec["rows"]:
                    if which == "members":
                        scores = [np.mean(m == y[test]) for m in members]
                        acc[row][kind][k] = float(np.mean(scores))
                        pred[row][kind][test] = members[0]
                    else:
                        acc[row][kind][k] = float(np.mean(labels == y[test]))
                        pred[row][kind][test] = labels
        seconds = time.perf_counter() - start
        wall += seconds
        cpu += time.process_time() - cpu_start
        shown = ", ".join(
            f"{row} {acc[row]['full'][k]:.2f}/{acc[row]['2s'][k]:.2f}"
            for row, _ in spec["rows"]
        )
        _log(
            f"  {name} fold {k + 1}/{len(splits)}: {shown} (full/2 s), {seconds:.0f} s"
        )
    tests = {k: splits[k][1] for k in folds}
    return {"accuracy": acc, "pred": pred, "wall": wall, "cpu": cpu, "tests": tests}


# -- report -------------------------------------------------------------------------


def _confusion_png(y_true, y_pred, labels, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, ax=ax, colorbar=False, xticks_rotation=45
    )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(results, y, folds=None):
    """One entry per table row: accuracy over folds, pooled macro-F1, time.

    ``folds``: restrict every row to these fold indices (None: each row's own).
    """
    from sklearn.metrics import f1_score

    table = []
    for name, record in results.items():
        for row, which in METHODS[name]["rows"]:
            entry = {
                "method": name,
                "row": row,
                "which": which,
                "what": METHODS[name]["what"],
                "wall_seconds": record["wall"],
                "cpu_seconds": record["cpu"],
            }
            for kind in ("full", "2s"):
                by_fold = record["accuracy"][row][kind]
                keys = sorted(by_fold) if folds is None else list(folds)
                accs = np.array([by_fold[k] for k in keys])
                pred = record["pred"][row][kind]
                tested = np.flatnonzero(pred != None)  # noqa: E711 - object array
                entry["folds"] = [k + 1 for k in keys]
                entry[kind] = {
                    "accuracy": float(accs.mean()),
                    "std": float(accs.std()),
                    "by_fold": accs.tolist(),
                    "macro_f1": float(
                        f1_score(
                            y[tested].astype(str),
                            pred[tested].astype(str),
                            average="macro",
                        )
                    ),
                }
            table.append(entry)
    return table


def format_table(table, markdown=False, times=True):
    """The table as text: aligned columns, or Markdown."""
    head = [
        "method",
        "folds",
        "accuracy, full clips",
        "macro-F1",
        "accuracy, 2 s",
        "macro-F1",
    ]
    if times:
        head += ["wall", "CPU"]
    lines = []
    for e in table:
        f, s = e["full"], e["2s"]
        line = [
            e["row"],
            str(len(e["folds"])),
            f"{f['accuracy']:.3f} ± {f['std']:.3f}",
            f"{f['macro_f1']:.3f}",
            f"{s['accuracy']:.3f} ± {s['std']:.3f}",
            f"{s['macro_f1']:.3f}",
        ]
        if times:
            line += [
                f"{e['wall_seconds'] / 60:.1f} min",
                f"{e['cpu_seconds'] / 60:.1f} min",
            ]
        lines.append(line)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *lines]
    )


def _paired_table(results, y):
    """Every method on the folds that all of them ran (None if that is all)."""
    common = None
    for record in results.values():
        for row in record["accuracy"].values():
            folds = set(row["full"])
            common = folds if common is None else common & folds
    all_folds = set().union(
        *(set(r["full"]) for rec in results.values() for r in rec["accuracy"].values())
    )
    if not common or common == all_folds:
        return None
    restricted = {}
    for name, record in results.items():
        pred = {}
        for row, kinds in record["pred"].items():
            pred[row] = {}
            for kind, labels in kinds.items():
                keep = np.full(len(y), None, object)
                for k in common:
                    test = record["tests"][k]
                    keep[test] = labels[test]
                pred[row][kind] = keep
        restricted[name] = {**record, "pred": pred}
    return _table(restricted, y, folds=sorted(common))


def report(results, paths, y, args, total_seconds):
    """Print the tables and the best method's per-genre accuracy; save figures."""
    table = _table(results, y)
    print()
    print(format_table(table))
    print(
        "accuracy: mean ± std over folds; macro-F1: over the pooled out-of-fold "
        'predictions; "... net" rows:\nthe nets of a five-net method scored '
        "alone (mean accuracy; macro-F1 of its first net); wall/CPU: per method"
    )
    paired = _paired_table(results, y)
    if paired is not None:
        shown = ", ".join(str(k) for k in paired[0]["folds"])
        print(
            f"\nEvery method on fold(s) {shown} only (the like-for-like "
            "comparison with the study's net):"
        )
        print(format_table(paired, times=False))
    best = max(
        table,
        key=lambda e: (
            e["full"]["accuracy"] + e["2s"]["accuracy"],
            e["which"] == "ensemble",
        ),
    )
    labels = sorted(set(y))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_genre = {}
    shown = [best]
    shown += [e for e in table if e["row"] == "default ensemble" and e is not best]
    for entry in shown:
        for kind in ("full", "2s"):
            pred = results[entry["method"]]["pred"][entry["row"]][kind]
            tested = np.flatnonzero(pred != None)  # noqa: E711 - object array
            pred, truth = pred[tested].astype(str), y[tested].astype(str)
            if entry is best:
                per_genre[kind] = {
                    g: float(np.mean(pred[truth == g] == g)) for g in labels
                }
            what = "full clips" if kind == "full" else "2 s excerpts"
            slug = re.sub(r"[^a-z0-9]+", "_", entry["row"].lower()).strip("_")
            _confusion_png(
                truth,
                pred,
                labels,
                f"{entry['row']}: {what}, out-of-fold",
                out / f"confusion_{slug}_{kind}.png",
            )
    print(
        f"\nBest (mean of full and 2 s accuracy): {best['row']}; accuracy per "
        "genre (recall over its folds):"
    )
    width = max(len(g) for g in labels)
    print(f"  {'genre':<{width}}  full   2 s")
    for g in labels:
        print(f"  {g:<{width}}  {per_genre['full'][g]:.2f}  {per_genre['2s'][g]:.2f}")
    summary = {
        "command": " ".join(["python", Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "data": str(args.fma or args.data),
        "n_clips": int(len(y)),
        "folds": args.folds,
        "reference_folds": args.reference_folds,
        "reference_epochs": args.reference_epochs,
        "epochs": args.epochs,
        "total_wall_seconds": total_seconds,
        "cpu_count": os.cpu_count(),
        "table": table,
        "paired_table": paired,
        "best": best["row"],
        "per_genre": per_genre,
        "clips": [str(p) for p in paths],
        "genres": [str(g) for g in y],
        "out_of_fold": {
            row: {
                kind: [None if v is None else str(v) for v in labels_]
                for kind, labels_ in kinds.items()
            }
            for record in results.values()
            for row, kinds in record["pred"].items()
        },
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    md = format_table(table, markdown=True) + "\n"
    if paired is not None:
        md += "\n" + format_table(paired, markdown=True, times=False) + "\n"
    (out / "table.md").write_text(md)
    print(
        f"\nConfusion matrices, table.md and results.json in {out}; total wall "
        f"time {total_seconds / 60:.1f} min"
    )
    return summary


# -- command line -------------------------------------------------------------------


def _parse_option(text):
    key, _, value = text.partition("=")
    if not _:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return key, json.loads(value.replace("(", "[").replace(")", "]"))
    except ValueError:
        pass
    try:  # Python's spelling too, as the genreclf command reads it: True, None
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def parse_variant(text):
    """``NAME:option=value,...`` as ``(NAME, {option: value})``.

    Commas inside brackets belong to a value: ``tta:predict_stretch=(0.94,1.06)``.
    """
    name, _, opts = text.partition(":")
    parts = re.split(r",(?![^()\[\]]*[)\]])", opts)
    return name, dict(_parse_option(o) for o in parts if o)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", default=None, help="labelled folder (load_folder)")
    source.add_argument("--fma", default=None, help="FMA root (official split)")
    parser.add_argument("--subset", default="small", help="FMA subset (--fma)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, from {', '.join(METHODS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="max_epochs of every net (default: each preset's)",
    )
    parser.add_argument(
        "--reference-epochs",
        type=int,
        default=REFERENCE_EPOCHS,
        help="max_epochs of the nets built on the study's net (reference, "
        "slice; the study: 20; default: %(default)s, to fit the time budget)",
    )
    parser.add_argument(
        "--reference-folds",
        type=int,
        default=REFERENCE_FOLDS,
        help="run the methods built on the study's net on the first N folds "
        "only (default: %(default)s)",
    )
    parser.add_argument(
        "--n-members",
        type=int,
        default=None,
        help="nets per ensemble (default: each method's)",
    )
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        type=_parse_option,
        metavar="NAME=VALUE",
        help="build_pipeline option for every net (repeatable)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 folds (every method), 2 epochs, tiny nets, 2 members",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument(
        "--no-malloc-settings",
        dest="malloc_settings",
        action="store_false",
        help="do not re-run with glibc's MALLOC_* settings (faster training on "
        "Linux; see genreclf._training.MALLOC_ENV)",
    )
    parser.add_argument(
        "--cache", default=None, help="MFCC cache folder (default: OUT/mfcc-cache)"
    )
    args = parser.parse_args(argv)
    args.extra_options = dict(args.extra)
    if args.quick:
        args.folds = QUICK["folds"]
        args.reference_folds = QUICK["folds"]
        args.epochs = args.epochs or QUICK["epochs"]
        args.n_members = args.n_members or QUICK["n_members"]
        args.extra_options = {**QUICK["options"], **args.extra_options}
    if args.data is None and args.fma is None:
        args.data = str(_default_data())
    args.cache = args.cache or str(Path(args.out) / "mfcc-cache")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    return args


def _with_malloc_settings(argv):
    """Re-run this script once with glibc's malloc settings (training is faster).

    glibc reads them at start-up only, hence a new process. Skipped off Linux,
    when they are already set, or with ``--no-malloc-settings``.
    """
    from genreclf._training import MALLOC_ENV

    if sys.platform != "linux" or all(k in os.environ for k in MALLOC_ENV):
        return
    argv = sys.argv[1:] if argv is None else list(argv)
    os.execve(
        sys.executable,
        [sys.executable, os.path.abspath(__file__), *argv],
        {**os.environ, **MALLOC_ENV},
    )


def main(argv=None):
    args = parse_args(argv)
    if args.malloc_settings:
        _with_malloc_settings(argv)
    import torch

    start = time.perf_counter()
    paths, y, splits = load_data(args)
    _log(
        f"{len(y)} clips, {len(np.unique(y))} genres from {args.fma or args.data}; "
        f"{len(splits)} split(s); torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs"
    )
    tested = np.zeros(len(y), bool)
    for _, test in splits:
        tested[test] = True
    excerpts = np.array(paths, dtype=object)
    excerpts[tested] = make_excerpts(
        paths[tested], Path(args.cache) / f"excerpts-{EXCERPT_SECONDS:g}s"
    )
    _log(f"{tested.sum()} excerpts of {EXCERPT_SECONDS:g} s (middle of each test clip)")
    results = {}
    for name in args.methods:
        _log(f"{name}: {METHODS[name]['what']}")
        results[name] = run_method(
            name, METHODS[name], args, paths, y, excerpts, splits
        )
    return report(results, paths, y, args, time.perf_counter() - start)


if __name__ == "__main__":
    main()
