"""The ``genreclf`` command: train, evaluate, predict, search, download.

Every command has ``--help``. Bad input ends with a one-line message on stderr
(a list of the files, where files are the problem) and exit status 1; a usage
error exits with 2; Ctrl-C with 130 and ``SIGTERM`` with 143. ``--debug`` shows
the traceback instead.

Examples
--------
>>> main(["--version"])  # doctest: +ELLIPSIS
genreclf ...
0
"""

import argparse
import ast
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

__all__ = ["DEMO", "build_parser", "main"]

#: The embedded demo: synthetic music (:func:`genreclf.datasets.make_synthetic`)
#: and pipeline settings sized so that ``mlflow run .`` (five members) trains
#: and evaluates in a few minutes on two CPU cores. Every setting the demo's
#: accuracy depends on is fixed here, whatever the preset says.
DEMO = {
    "n_per_genre": 20,
    "duration": 3.0,
    "random_state": 0,
    "options": {
        "duration": 3.0,
        "max_epochs": 12,
        "filters": (16, 32, 32),
        "dense": 32,
        "lr": 1e-3,
    },
}

#: Text options where an empty value means "not given".
_OPTIONAL_TEXT = (
    "data",
    "fma",
    "split",
    "eval_split",
    "resume",
    "checkpoint_dir",
    "experiment_name",
    "run_name",
    "device",
    "tracking_uri",
    "scheduler",
)
_EXIT_FAILURE = 1
_EXIT_USAGE = 2


class _UsageError(Exception):
    """Bad combination of options (exit status 2)."""


# --------------------------------------------------------------------------- parser


def _count(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _int_list(text):
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _boolean(text):
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# argparse names the type in its message: "invalid integer value: 'x'"
for _type, _name in ((_count, "integer"), (_fraction, "number"), (_boolean, "boolean")):
    _type.__name__ = _name


def _assignment(text):
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip(), parsed


def _add_data_options(parser, what, eval_split=False):
    group = parser.add_argument_group(
        "data", f"{what}; without --data or --fma, the embedded synthetic demo"
    )
    group.add_argument(
        "--data",
        metavar="FOLDER",
        help="a folder of audio files: a sub-folder per genre, "
        "GTZAN names (<genre>.00042.wav) or a labels.csv",
    )
    group.add_argument(
        "--fma",
        metavar="ROOT",
        help="a Free Music Archive root (fma_metadata/ and "
        "fma_<subset>/, as `genreclf download fma` leaves it)",
    )
    group.add_argument(
        "--subset",
        default="small",
        choices=["small", "medium", "large", "full"],
        help="FMA subset (default: small)",
    )
    group.add_argument(
        "--split",
        default=None,
        help="FMA official split(s) to use, comma-separated "
        "(training, validation, test)",
    )
    group.add_argument(
        "--test-size",
        type=_fraction,
        default=None,
        help="fraction of a folder (or of the demo) held out for "
        "evaluation, stratified (default: 0.25; 0: none)",
    )
    if eval_split:
        group.add_argument(
            "--eval-split",
            default="test",
            help="FMA split(s) to evaluate on (default: test; 'none': no evaluation)",
        )
    group.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed of the held-out split and of the networks (default: 0)",
    )
    group.add_argument(
        "--skip-bad-files",
        nargs="?",
        const=True,
        default=False,
        type=_boolean,
        metavar="BOOL",
        help="train on the readable files and log the others, "
        "instead of failing with their list",
    )


def _add_model_options(parser):
    group = parser.add_argument_group(
        "pipeline", "model settings (0 or omitted: the preset's value)"
    )
    group.add_argument(
        "--preset",
        default="default",
        help="build_pipeline preset: default or reference (default: default)",
    )
    group.add_argument(
        "--n-members",
        type=_count,
        default=None,
        help="networks in the ensemble (train: 5, search: 1 by default)",
    )
    group.add_argument(
        "--max-epochs",
        type=_count,
        default=None,
        help="training epochs per network",
    )
    group.add_argument(
        "--batch-size", type=_count, default=None, help="mini-batch size"
    )
    group.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of audio per clip (padded or cropped)",
    )
    group.add_argument(
        "--device", default=None, help="torch device: auto, cpu, cuda, cuda:1, ..."
    )
    group.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        type=_assignment,
        metavar="PATH=VALUE",
        help="any pipeline parameter by its scikit-learn path, "
        "e.g. ensemble__net__lr=0.001 (repeatable; VALUE is a "
        "Python literal or text)",
    )


def _add_run_options(parser):
    group = parser.add_argument_group("tracking")
    group.add_argument(
        "--experiment-name",
        default=None,
        help="MLflow experiment (created if needed); under "
        "`mlflow run`, give it to `mlflow run` instead",
    )
    group.add_argument("--run-name", default=None, help="MLflow run name")
    group.add_argument(
        "--cache-dir",
        default=".genreclf-cache",
        help="folder for the MFCC cache, the demo audio and the "
        "member checkpoints (default: .genreclf-cache)",
    )
    group.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bars or per-network lines",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        const=2,
        default=1,
        help="also print a table of epochs per network",
    )


def build_parser():
    """Return the argument parser of the ``genreclf`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        With sub-commands ``train``, ``evaluate``, ``predict``, ``search`` and
        ``download``.
    """
    from genreclf import __version__

    parser = argparse.ArgumentParser(
        prog="genreclf",
        description="Music-genre classification: audio files -> MFCC -> CNN "
        "ensemble, tracked in MLflow (MLFLOW_TRACKING_URI; default "
        "sqlite:///mlflow.db).",
    )
    parser.add_argument(
        "--version", action="version", version=f"genreclf {__version__}"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error"
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
        "else sqlite:///mlflow.db)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train and evaluate, tracked in MLflow",
        description="Train the pipeline in one MLflow run (a nested run per "
        "network), evaluate it on a held-out split and log it as a model.",
    )
    _add_data_options(train, "training data", eval_split=True)
    _add_model_options(train)
    _add_run_options(train)
    train.add_argument(
        "--checkpoint-dir",
        default=None,
        help="where each finished network is saved, in "
        "<dir>/<run id>/ (default: <cache-dir>/checkpoints)",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_ID_OR_DIR",
        default=None,
        help="reuse the networks saved by an interrupted run (its "
        "run id or checkpoint folder); same settings required",
    )
    train.add_argument(
        "--no-model",
        dest="log_model",
        action="store_false",
        help="do not log the fitted pipeline as an MLflow model",
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a model on a dataset, tracked in MLflow",
        description="Evaluate a logged model on a dataset in a new MLflow run: "
        "accuracy, macro-F1, per-genre accuracy, confusion matrix.",
    )
    evaluate.add_argument(
        "model",
        metavar="MODEL",
        help="runs:/<run id>/model, models:/<model id>, a model "
        "folder or a pickled pipeline",
    )
    _add_data_options(
        evaluate,
        "evaluation data (a whole folder, the FMA split "
        "given, or the demo's held-out part)",
    )
    _add_run_options(evaluate)

    predict = commands.add_parser(
        "predict",
        help="print the genre of audio files",
        description="Print the genre and the top probabilities of each file. "
        "Unreadable files are reported at the end (exit status 1).",
    )
    predict.add_argument(
        "model",
        metavar="MODEL",
        help="runs:/<run id>/model, models:/<model id>, a model "
        "folder or a pickled pipeline",
    )
    predict.add_argument(
        "inputs",
        metavar="FILE_OR_FOLDER",
        nargs="+",
        help="audio files, or folders searched for them",
    )
    predict.add_argument(
        "--format",
        default="table",
        choices=["table", "json", "csv"],
        help="output format",
    )
    predict.add_argument(
        "--top-k",
        type=_count,
        default=3,
        help="probabilities shown per file (default: 3)",
    )
    predict.add_argument(
        "--cache-dir", default=None, help="MFCC cache folder (default: a temporary one)"
    )
    predict.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )

    search = commands.add_parser(
        "search",
        help="grid-search the batch size, tracked in MLflow",
        description="GridSearchCV over ensemble__net__batch_size: one child run "
        "per candidate; the best parameters, cv_results.csv, the refitted "
        "best pipeline's evaluation and model on the parent run.",
    )
    _add_data_options(search, "training data", eval_split=True)
    group = search.add_argument_group("search")
    group.add_argument(
        "--batch-sizes",
        type=_int_list,
        default=[5, 10, 20],
        help="candidate batch sizes, comma-separated (default: 5,10,20)",
    )
    group.add_argument(
        "--cv", type=int, default=3, help="stratified folds (default: 3)"
    )
    _add_model_options(search)
    search.set_defaults(n_members=1)  # candidates compared on single networks
    group.add_argument(
        "--scheduler",
        default=None,
        help="run the candidates on a Dask cluster: tcp://HOST:PORT, a scheduler "
        "file, or 'local' (2 local worker processes); each candidate's run is "
        "then logged by its worker, so MLFLOW_TRACKING_URI must be a server the "
        "workers reach",
    )
    _add_run_options(search)
    search.add_argument(
        "--no-model",
        dest="log_model",
        action="store_false",
        help="do not log the best pipeline as an MLflow model",
    )

    download = commands.add_parser(
        "download",
        help="download a dataset (FMA)",
        description="Download and unpack the Free Music Archive, verified "
        "against its published SHA-1; an interrupted download resumes.",
    )
    download.add_argument("dataset", choices=["fma"], help="the dataset")
    download.add_argument(
        "--subset",
        default="small",
        choices=["small", "medium", "large", "full"],
        help="FMA subset (default: small, 7.2 GiB)",
    )
    download.add_argument("--dest", default=".", help="destination folder")
    download.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )
    return parser


# --------------------------------------------------------------------------- data


def _splits(text):
    if text is None or text.lower() in ("", "all"):
        return None
    parts = [s.strip() for s in text.split(",") if s.strip()]
    return parts[0] if len(parts) == 1 else parts


def _holdout(paths, y, test_size, random_state):
    if not test_size:
        return paths, y, None, None
    from sklearn.model_selection import train_test_split

    return tuple(
        train_test_split(
            paths, y, test_size=test_size, stratify=y, random_state=random_state
        )
    )


def _demo_data(args):
    from genreclf.datasets import make_synthetic

    folder = os.path.join(args.cache_dir, "demo-audio")
    return make_synthetic(
        folder,
        n_per_genre=DEMO["n_per_genre"],
        duration=DEMO["duration"],
        random_state=DEMO["random_state"],
    )


def _load_data(args, evaluation_only=False):
    """Return ``(X, y, X_eval, y_eval, name)`` for the data options."""
    from genreclf.datasets import load_fma, load_folder

    test_size = 0.25 if args.test_size is None else args.test_size
    if args.fma:
        if evaluation_only:
            split = _splits(args.split or "test")
            X, y = load_fma(args.fma, subset=args.subset, split=split)
            return None, None, X, y, f"fma_{args.subset}"
        X, y = load_fma(
            args.fma, subset=args.subset, split=_splits(args.split or "training")
        )
        X_eval = y_eval = None
        if (args.eval_split or "test").lower() != "none":
            X_eval, y_eval = load_fma(
                args.fma, subset=args.subset, split=_splits(args.eval_split or "test")
            )
        return X, y, X_eval, y_eval, f"fma_{args.subset}"
    if args.data:
        X, y = load_folder(args.data)
        name = os.path.basename(os.path.abspath(args.data))
        if evaluation_only:
            return None, None, X, y, name
    else:
        X, y = _demo_data(args)
        name = "demo"
    if len(X) == 0:
        raise ValueError(f"{args.data or 'the demo'}: no audio files found")
    X, X_eval, y, y_eval = _holdout(X, y, test_size, args.random_state)
    if evaluation_only:
        return None, None, X_eval, y_eval, name
    return X, y, X_eval, y_eval, name


# --------------------------------------------------------------------------- pipeline


def _build(args, demo):
    """Build the pipeline of the options: preset, then demo sizes, then overrides."""
    from genreclf.pipeline import build_pipeline

    options = dict(DEMO["options"]) if demo else {}
    shortcuts = {
        "max_epochs": args.max_epochs,
        "batch_size": getattr(args, "batch_size", None),
        "duration": args.duration,
    }
    options.update({k: v for k, v in shortcuts.items() if v})
    options.update(dict(args.settings))
    kwargs = {"n_members": args.n_members} if args.n_members else {}
    if args.device:
        kwargs["device"] = args.device
    try:
        return build_pipeline(
            args.preset,
            memory=os.path.join(args.cache_dir, "mfcc"),
            random_state=args.random_state,
            verbose=args.verbose if args.progress else 0,
            **kwargs,
            **options,
        )
    except (ValueError, TypeError) as exc:
        raise _UsageError(str(exc)) from None


# --------------------------------------------------------------------------- commands


def _cmd_train(args):
    from genreclf import tracking

    pipeline = _build(args, demo=not (args.data or args.fma))
    tracking.check_tracking_server()
    X, y, X_eval, y_eval, name = _load_data(args)
    checkpoints = args.checkpoint_dir or os.path.join(args.cache_dir, "checkpoints")
    resume = args.resume
    if resume and not os.path.isdir(resume):
        local = os.path.join(checkpoints, resume)
        resume = local if os.path.isdir(local) else resume
    try:
        result = tracking.train_and_log(
            pipeline,
            X,
            y,
            X_eval,
            y_eval,
            dataset_name=name,
            experiment_name=args.experiment_name,
            run_name=args.run_name,
            checkpoint_dir=checkpoints,
            resume=resume,
            skip_bad_files=args.skip_bad_files,
            log_model=args.log_model,
            progress=args.progress and args.verbose < 2,  # -v: tables of epochs
            check_server=False,
        )
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, tracking.TrainingInterrupted)):
            _report_interrupted(checkpoints)
        raise
    _print_result(result, "train")
    return 0


def _report_interrupted(checkpoints):
    import mlflow

    run = mlflow.last_active_run()
    if run is None:
        return
    run_id = run.info.run_id
    folder = os.path.join(checkpoints, run_id)
    n = len(list(Path(folder).glob("member*.joblib")))
    print(
        f"genreclf: interrupted: run {run_id} marked KILLED; {n} finished "
        f"network(s) saved in {folder}; continue with --resume {run_id}",
        file=sys.stderr,
    )


def _print_result(result, command):
    print(f"run {result.run_id} ({command})")
    for key, value in sorted(result.metrics.items()):
        print(f"  {key} = {value:.4f}")
    if result.bad_files:
        print(f"  skipped {len(result.bad_files)} unreadable file(s)")
    if result.model_uri:
        print(f"model: {result.model_uri}")


def _cmd_evaluate(args):
    from genreclf import tracking

    tracking.check_tracking_server()
    _, _, X, y, name = _load_data(args, evaluation_only=True)
    if X is None or len(X) == 0:
        raise ValueError("no evaluation data: give --data, --fma or a --test-size > 0")
    result = tracking.evaluate_model(
        args.model,
        X,
        y,
        dataset_name=name,
        experiment_name=args.experiment_name,
        run_name=args.run_name,
        skip_bad_files=args.skip_bad_files,
        check_server=False,
    )
    _print_result(result, "evaluate")
    return 0


def _cmd_search(args):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from genreclf import tracking

    pipeline = _build(args, demo=not (args.data or args.fma))
    tracking.check_tracking_server()
    X, y, X_eval, y_eval, name = _load_data(args)
    cv = StratifiedKFold(args.cv, shuffle=True, random_state=args.random_state)
    search = GridSearchCV(
        pipeline,
        {"ensemble__net__batch_size": args.batch_sizes},
        cv=cv,
        scoring="accuracy",
        refit=True,
        error_score="raise",
    )
    with contextlib.ExitStack() as stack:
        fit = None
        if args.scheduler:
            from genreclf.distributed import fit_search, use_dask

            stack.enter_context(use_dask(args.scheduler))
            search.set_params(n_jobs=-1)
            fit = fit_search
        result = tracking.search_and_log(
            search,
            X,
            y,
            X_eval,
            y_eval,
            dataset_name=name,
            experiment_name=args.experiment_name,
            run_name=args.run_name,
            skip_bad_files=args.skip_bad_files,
            log_model=args.log_model,
            fit=fit,
            check_server=False,
        )
    print(
        f"best: {result.search.best_params_} "
        f"(cv accuracy {result.search.best_score_:.4f})"
    )
    _print_result(result, "search")
    return 0


def _expand_inputs(inputs):
    from genreclf.datasets import AUDIO_EXTENSIONS

    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = []
            for folder, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [
                    os.path.join(folder, f)
                    for f in files
                    if f.lower().endswith(AUDIO_EXTENSIONS) and not f.startswith(".")
                ]
            if not found:
                raise FileNotFoundError(f"{item}: no audio files in this folder")
            paths += sorted(found)
        else:
            paths.append(item)
    return paths


def _prediction_rows(pipeline, paths, top_k):
    """Predict the readable files; return the rows and the unreadable files.

    The files are decoded once: ``find_bad_files`` fills the feature cache that
    ``predict_proba`` then reads.
    """
    import numpy as np

    from genreclf.features import find_bad_files

    bad = find_bad_files(paths, transformer=pipeline.steps[0][1])
    failures = {str(p): reason for p, reason in bad.items()}
    good = [p for p in paths if p not in failures]
    rows = []
    if good:
        proba = np.asarray(pipeline.predict_proba(np.asarray(good, dtype=object)))
        classes = [str(c) for c in pipeline.classes_]
        for path, p in zip(good, proba, strict=True):
            order = np.argsort(-p)[:top_k]
            rows.append(
                {
                    "path": path,
                    "genre": classes[int(np.argmax(p))],
                    "top": [
                        {"genre": classes[j], "probability": float(p[j])} for j in order
                    ],
                }
            )
    return rows, failures


def _print_rows(rows, fmt, top_k):
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    if fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        header = ["path", "genre"]
        for k in range(1, top_k + 1):
            header += [f"genre_{k}", f"probability_{k}"]
        writer.writerow(header)
        for row in rows:
            cells = [row["path"], row["genre"]]
            for t in row["top"]:
                cells += [t["genre"], f"{t['probability']:.4f}"]
            writer.writerow(cells)
        return
    tops = [
        ", ".join(f"{t['genre']} {t['probability']:.2f}" for t in row["top"])
        for row in rows
    ]
    width = max([4] + [len(r["path"]) for r in rows])
    gwidth = max([5] + [len(r["genre"]) for r in rows])
    print(f"{'path':<{width}}  {'genre':<{gwidth}}  top-{top_k}")
    for row, top in zip(rows, tops, strict=True):
        print(f"{row['path']:<{width}}  {row['genre']:<{gwidth}}  {top}")


def _cmd_predict(args):
    import tempfile

    from genreclf.tracking import load_pipeline

    paths = _expand_inputs(args.inputs)
    pipeline = load_pipeline(args.model)
    top_k = min(args.top_k, len(pipeline.classes_))
    with contextlib.ExitStack() as stack:
        cache = args.cache_dir or stack.enter_context(tempfile.TemporaryDirectory())
        pipeline.steps[0][1].set_params(memory=cache, verbose=int(args.progress))
        rows, failures = _prediction_rows(pipeline, paths, top_k)
    _print_rows(rows, args.format, top_k)
    sys.stdout.flush()
    if failures:
        listing = "; ".join(f"{p} ({r})" for p, r in failures.items())
        print(
            f"genreclf: error: {len(failures)} file(s) could not be read: {listing}",
            file=sys.stderr,
        )
        return _EXIT_FAILURE
    return 0


def _cmd_download(args):
    from genreclf.download import download_fma

    root = download_fma(subset=args.subset, dest=args.dest, progress=args.progress)
    print(
        f"FMA {args.subset} ready in {root}; train with: genreclf train --fma "
        f"{root} --subset {args.subset}"
    )
    return 0


_COMMANDS = {
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "predict": _cmd_predict,
    "search": _cmd_search,
    "download": _cmd_download,
}


# --------------------------------------------------------------------------- main


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    from genreclf.audio import AudioLoadError

    if isinstance(exc, AudioLoadError):  # keep the list of files, one per line
        return text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)


def main(argv=None):
    """Run the ``genreclf`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 1 on failure, 2 on a usage error, 130 on Ctrl-C, 143 on
        ``SIGTERM``.
    """
    parser = build_parser()
    if hasattr(sys.stdout, "reconfigure"):  # progress lines show up in logs at once
        sys.stdout.reconfigure(line_buffering=True)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return _EXIT_USAGE
    for name in _OPTIONAL_TEXT:  # MLproject passes '' for "not given"
        if getattr(args, name, None) == "":
            setattr(args, name, None)
    if getattr(args, "data", None) and getattr(args, "fma", None):
        print(
            f"genreclf {args.command}: error: give --data or --fma, not both",
            file=sys.stderr,
        )
        return _EXIT_USAGE
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    # MLflow's bars for each small model download are noise next to ours
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.filterwarnings("ignore", module="mlflow")
            return _COMMANDS[args.command](args)
    except _UsageError as exc:
        if args.debug:
            raise
        print(f"genreclf {args.command}: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("genreclf: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        from genreclf.audio import AudioLoadError

        known = (OSError, ValueError, RuntimeError, AudioLoadError)
        message = _one_line(exc)
        if not isinstance(exc, known) and type(exc).__module__.split(".")[0] not in (
            "mlflow",
            "genreclf",
        ):
            message = f"{type(exc).__name__}: {message} (--debug shows the traceback)"
        print(f"genreclf: error: {message}", file=sys.stderr)
        return _EXIT_FAILURE
    except BaseException as exc:
        from genreclf.tracking import TrainingInterrupted

        if not isinstance(exc, TrainingInterrupted) or args.debug:
            raise
        print(f"genreclf: {exc}", file=sys.stderr)
        return 128 + int(exc.signum)


if __name__ == "__main__":
    sys.exit(main())
