"""The command line of ``genreclf``: every option declared once, and the parser.

:data:`OPTIONS` declares each option of every command one time (its flags and
its ``add_argument`` keywords); :func:`build_parser` lists which commands take
which, changing only a help text or a default where a command needs its own.
:mod:`genreclf.cli` runs the commands.
"""

import argparse
import ast

from genreclf.exceptions import UsageError

__all__ = ["OPTIONAL_TEXT", "OPTIONS", "UsageError", "build_parser"]

_FMA_SUBSETS = ["small", "medium", "large", "full"]


# --------------------------------------------------------------------------- types


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


# --------------------------------------------------------------------------- options

_MODEL_HELP = (
    "runs:/<run id>/model, models:/<model id>, models:/<name>@<alias>, a model "
    "folder or a pickled pipeline"
)


def _opt(*flags, **spec):
    return list(flags), spec


#: Every option of every command, declared once: name -> (flags, add_argument
#: keywords). A command may change the help or the default of one it takes.
OPTIONS = {
    # data
    "data": _opt(
        "--data",
        metavar="FOLDER",
        help="a folder of audio files: a sub-folder per genre, "
        "GTZAN names (<genre>.00042.wav) or a labels.csv",
    ),
    "fma": _opt(
        "--fma",
        metavar="ROOT",
        help="a Free Music Archive root (fma_metadata/ and "
        "fma_<subset>/, as `genreclf download fma` leaves it)",
    ),
    "subset": _opt(
        "--subset",
        default="small",
        choices=_FMA_SUBSETS,
        help="FMA subset (default: small)",
    ),
    "split": _opt(
        "--split",
        default=None,
        help="FMA official split(s) to use, comma-separated "
        "(training, validation, test)",
    ),
    "test_size": _opt(
        "--test-size",
        type=_fraction,
        default=None,
        help="fraction of a folder (or of the demo) held out for "
        "evaluation, stratified (default: 0.25; 0: none)",
    ),
    "eval_split": _opt(
        "--eval-split",
        default="test",
        help="FMA split(s) to evaluate on (default: test; 'none': no evaluation)",
    ),
    "random_state": _opt(
        "--random-state",
        type=int,
        default=0,
        help="seed of the held-out split and of the networks (default: 0)",
    ),
    "skip_bad_files": _opt(
        "--skip-bad-files",
        nargs="?",
        const=True,
        default=False,
        type=_boolean,
        metavar="BOOL",
        help="train on the readable files and log the others, "
        "instead of failing with their list",
    ),
    # pipeline
    "preset": _opt(
        "--preset",
        default="default",
        help="build_pipeline preset: default (music from elsewhere), matched "
        "(music produced like the training clips), robust (the default without "
        "its tempo views at prediction: a third of the work) or reference "
        "(default: default)",
    ),
    "n_members": _opt(
        "--n-members",
        type=_count,
        default=None,
        help="networks in the ensemble (train: 5, search: 1 by default)",
    ),
    "max_epochs": _opt(
        "--max-epochs", type=_count, default=None, help="training epochs per network"
    ),
    "batch_size": _opt(
        "--batch-size", type=_count, default=None, help="mini-batch size"
    ),
    "duration": _opt(
        "--duration",
        type=float,
        default=None,
        help="seconds of audio per clip (padded or cropped)",
    ),
    "device": _opt(
        "--device", default=None, help="torch device: auto, cpu, cuda, cuda:1, ..."
    ),
    "settings": _opt(
        "--set",
        dest="settings",
        action="append",
        default=[],
        type=_assignment,
        metavar="PATH=VALUE",
        help="any pipeline parameter by its scikit-learn path, "
        "e.g. ensemble__net__lr=0.001 (repeatable; VALUE is a "
        "Python literal or text)",
    ),
    # tracking
    "experiment_name": _opt(
        "--experiment-name",
        default=None,
        help="MLflow experiment (created if needed); under "
        "`mlflow run`, give it to `mlflow run` instead",
    ),
    "run_name": _opt("--run-name", default=None, help="MLflow run name"),
    "cache_dir": _opt(
        "--cache-dir",
        default=".genreclf-cache",
        help="folder for the MFCC cache, the demo audio and the "
        "member checkpoints (default: .genreclf-cache)",
    ),
    "progress": _opt(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bars or per-network lines",
    ),
    "verbose": _opt(
        "-v",
        "--verbose",
        action="store_const",
        const=2,
        default=1,
        help="also print a table of epochs per network",
    ),
    "log_model": _opt(
        "--no-model",
        dest="log_model",
        action="store_false",
        help="do not log the fitted pipeline as an MLflow model",
    ),
    # train
    "checkpoint_dir": _opt(
        "--checkpoint-dir",
        default=None,
        help="where each finished network is saved, in "
        "<dir>/<run id>/ (default: <cache-dir>/checkpoints)",
    ),
    "resume": _opt(
        "--resume",
        metavar="RUN_ID_OR_DIR",
        default=None,
        help="reuse the networks saved by an interrupted run (its "
        "run id or checkpoint folder); same settings required",
    ),
    # search
    "batch_sizes": _opt(
        "--batch-sizes",
        type=_int_list,
        default=[5, 10, 20],
        help="candidate batch sizes, comma-separated (default: 5,10,20)",
    ),
    "cv": _opt("--cv", type=int, default=3, help="stratified folds (default: 3)"),
    "scheduler": _opt(
        "--scheduler",
        default=None,
        help="run the candidates on a Dask cluster: tcp://HOST:PORT, a scheduler "
        "file, or 'local' (2 local worker processes); each candidate's run is "
        "then logged by its worker, so MLFLOW_TRACKING_URI must be a server the "
        "workers reach",
    ),
    # evaluate, predict
    "model": _opt("model", metavar="MODEL", help=_MODEL_HELP),
    "inputs": _opt(
        "inputs",
        metavar="FILE_OR_FOLDER",
        nargs="+",
        help="audio files, or folders searched for them",
    ),
    "format": _opt(
        "--format",
        default="table",
        choices=["table", "json", "csv"],
        help="output format",
    ),
    "top_k": _opt(
        "--top-k",
        type=_count,
        default=3,
        help="probabilities shown per file (default: 3)",
    ),
    # train: the model registry
    "register": _opt(
        "--register",
        metavar="NAME",
        default=None,
        help="register the logged model under NAME in the MLflow model registry "
        "(a new version); load it as models:/NAME/<version>",
    ),
    "alias": _opt(
        "--alias",
        metavar="ALIAS",
        default=None,
        help="with --register: point ALIAS (e.g. champion) at the new version; "
        "load it as models:/NAME@ALIAS",
    ),
    # serve
    "host": _opt(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    ),
    "port": _opt("--port", type=int, default=5000, help="TCP port (default: 5000)"),
    "max_body_mb": _opt(
        "--max-body-mb",
        type=float,
        default=50.0,
        help="largest request body and clip, in MiB (default: 50)",
    ),
    "max_duration": _opt(
        "--max-duration",
        type=float,
        default=3600.0,
        help="longest clip, in seconds, as its header declares it; longer ones "
        "are refused without being decoded (default: 3600)",
    ),
    # download
    "dataset": _opt("dataset", choices=["fma"], help="the dataset"),
    "dest": _opt("--dest", default=".", help="destination folder"),
    # the whole command
    "version": _opt("--version", action="version"),
    "debug": _opt(
        "--debug", action="store_true", help="show the traceback of an error"
    ),
    "tracking_uri": _opt(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
        "else sqlite:///mlflow.db)",
    ),
}

#: Text options where an empty value means "not given" (MLproject passes '').
OPTIONAL_TEXT = (
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
    "register",
    "alias",
)

_DATA_OPTIONS = ("data", "fma", "subset", "split", "test_size")
_DATA_TAIL = ("random_state", "skip_bad_files")
_MODEL_OPTIONS = (
    "preset",
    "n_members",
    "max_epochs",
    "batch_size",
    "duration",
    "device",
    "settings",
)
_RUN_OPTIONS = ("experiment_name", "run_name", "cache_dir", "progress", "verbose")


def _add(parser, name, **changes):
    """Add the option ``name`` of :data:`OPTIONS` to a parser or group."""
    flags, spec = OPTIONS[name]
    parser.add_argument(*flags, **{**spec, **changes})


def _add_all(parser, names):
    for name in names:
        _add(parser, name)


def _data_group(parser, what, eval_split=False):
    group = parser.add_argument_group(
        "data", f"{what}; without --data or --fma, the embedded synthetic demo"
    )
    _add_all(group, _DATA_OPTIONS + ("eval_split",) * eval_split + _DATA_TAIL)


def _model_group(parser):
    group = parser.add_argument_group(
        "pipeline", "model settings (0 or omitted: the preset's value)"
    )
    _add_all(group, _MODEL_OPTIONS)


def _run_group(parser):
    _add_all(parser.add_argument_group("tracking"), _RUN_OPTIONS)


def build_parser():
    """Return the argument parser of the ``genreclf`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        With sub-commands ``train``, ``evaluate``, ``predict``, ``search`` and
        ``download``.

    Examples
    --------
    >>> args = build_parser().parse_args(["train", "--test-size", "0"])
    >>> args.command, args.test_size, args.n_members
    ('train', 0.0, None)
    """
    from genreclf import __version__

    parser = argparse.ArgumentParser(
        prog="genreclf",
        description="Music-genre classification: audio files -> MFCC -> CNN "
        "ensemble, tracked in MLflow (MLFLOW_TRACKING_URI; default "
        "sqlite:///mlflow.db).",
    )
    _add(parser, "version", version=f"genreclf {__version__}")
    _add_all(parser, ("debug", "tracking_uri"))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train and evaluate, tracked in MLflow",
        description="Train the pipeline in one MLflow run (a nested run per "
        "network), evaluate it on a held-out split and log it as a model.",
    )
    _data_group(train, "training data", eval_split=True)
    _model_group(train)
    _run_group(train)
    _add_all(train, ("checkpoint_dir", "resume", "log_model"))
    _add_all(train.add_argument_group("registry"), ("register", "alias"))

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a model on a dataset, tracked in MLflow",
        description="Evaluate a logged model on a dataset in a new MLflow run: "
        "accuracy, macro-F1, per-genre accuracy, confusion matrix.",
    )
    _add(evaluate, "model")
    _data_group(
        evaluate,
        "evaluation data (a whole folder, the FMA split given, or the demo's "
        "held-out part)",
    )
    _run_group(evaluate)

    predict = commands.add_parser(
        "predict",
        help="print the genre of audio files",
        description="Print the genre and the top probabilities of each file. "
        "Unreadable files are reported at the end (exit status 1).",
    )
    _add_all(predict, ("model", "inputs", "format", "top_k"))
    _add(
        predict,
        "cache_dir",
        default=None,
        help="MFCC cache folder (default: a temporary one)",
    )
    _add(predict, "progress", help="no progress bar")

    search = commands.add_parser(
        "search",
        help="grid-search the batch size, tracked in MLflow",
        description="GridSearchCV over ensemble__net__batch_size: one child run "
        "per candidate; the best parameters, cv_results.csv, the refitted "
        "best pipeline's evaluation and model on the parent run.",
    )
    _data_group(search, "training data", eval_split=True)
    group = search.add_argument_group("search")
    _add_all(group, ("batch_sizes", "cv"))
    _model_group(search)
    search.set_defaults(n_members=1)  # candidates compared on single networks
    _add(group, "scheduler")
    _run_group(search)
    _add(search, "log_model", help="do not log the best pipeline as an MLflow model")

    serve = commands.add_parser(
        "serve",
        help="serve a model over HTTP, with a page for people",
        description="Serve a model on HTTP: POST /invocations (MLflow's JSON "
        "formats; rows of file paths or base64 audio), GET /ping, and a page at "
        "/ where audio files are chosen or dropped and their genres shown.",
    )
    _add_all(serve, ("model", "host", "port", "top_k", "max_body_mb", "max_duration"))

    describe = commands.add_parser(
        "describe",
        help="print a model's card",
        description="Print the model card (Markdown) of a model: its genres, "
        "training data, settings, evaluation, calibration and known limits.",
    )
    _add(describe, "model")

    download = commands.add_parser(
        "download",
        help="download a dataset (FMA)",
        description="Download and unpack the Free Music Archive, verified "
        "against its published SHA-1; an interrupted download resumes.",
    )
    _add(download, "dataset")
    _add(download, "subset", help="FMA subset (default: small, 7.2 GiB)")
    _add(download, "dest")
    _add(download, "progress", help="no progress bars")
    return parser
