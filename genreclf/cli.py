"""The ``genreclf`` command: train, evaluate, predict, search, download.

Every command has ``--help``. Bad input ends with a one-line message on stderr
(a list of the files, where files are the problem) and exit status 1; a usage
error exits with 2; Ctrl-C with 130 and ``SIGTERM`` with 143. ``--debug`` shows
the traceback instead.

This module runs the commands that :func:`build_parser` (declared in
``genreclf._cli_options``, each option once) reads, and only calls the
package: the data a command uses comes from :mod:`genreclf.sources`, the pipeline from
:func:`genreclf.pipeline.build_pipeline`, the runs from
:mod:`genreclf.tracking` and the table of predictions from
:mod:`genreclf.prediction`.

Examples
--------
>>> main(["--version"])  # doctest: +ELLIPSIS
genreclf ...
0
"""

import contextlib
import os
import sys
import warnings
from pathlib import Path

from genreclf._cli_options import OPTIONAL_TEXT, UsageError, build_parser
from genreclf.exceptions import AudioLoadError, GenreclfError, TrainingInterrupted

__all__ = ["build_parser", "main"]

_EXIT_FAILURE = 1
_EXIT_USAGE = 2
#: ``--format`` values -> :func:`genreclf.prediction.format_predictions` formats.
_PREDICT_FORMATS = {"table": "text"}


# --------------------------------------------------------------------------- commands


def _select(args, evaluation_only=False):
    """Return the command's data (:func:`genreclf.sources.select_data`)."""
    from genreclf.sources import select_data

    return select_data(
        args.data,
        args.fma,
        subset=args.subset,
        split=args.split,
        eval_split=getattr(args, "eval_split", None),
        test_size=args.test_size,
        random_state=args.random_state,
        cache_dir=args.cache_dir,
        evaluation_only=evaluation_only,
    )


def _build(args):
    """Build the pipeline: the preset, then the demo's sizes, then the overrides."""
    from genreclf import pipeline

    options = {}
    if not (args.data or args.fma):  # the demo: its sizes, whatever the preset
        options.update(pipeline.DEMO_OPTIONS)
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
        return pipeline.build_pipeline(
            args.preset,
            memory=os.path.join(args.cache_dir, "mfcc"),
            random_state=args.random_state,
            verbose=args.verbose if args.progress else 0,
            **kwargs,
            **options,
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


#: Commands that train or predict in this process (see benchmarks/training.py).
_MALLOC_COMMANDS = ("train", "search", "evaluate", "predict")


def _run_tags(args):
    """The preset and the allocator settings the command applied, as run tags."""
    applied = getattr(args, "malloc_settings", None) or {}
    tags = {f"genreclf.malloc.{name}": str(value) for name, value in applied.items()}
    tags["genreclf.preset"] = args.preset
    return tags


def _cmd_train(args):
    from genreclf import tracking

    if args.alias and not args.register:
        raise UsageError("--alias needs --register NAME")
    if args.register and not args.log_model:
        raise UsageError("--register needs the model: drop --no-model")
    pipeline = _build(args)
    tracking.check_tracking_server()
    X, y, X_eval, y_eval, name = _select(args)
    checkpoints = args.checkpoint_dir or os.path.join(args.cache_dir, "checkpoints")
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
            resume=args.resume,
            skip_bad_files=args.skip_bad_files,
            log_model=args.log_model,
            progress=args.progress and args.verbose < 2,  # -v: tables of epochs
            check_server=False,
            tags=_run_tags(args),
        )
    except (KeyboardInterrupt, TrainingInterrupted) as exc:
        _report_interrupted(exc, checkpoints)
        raise
    _print_result(result, "train")
    if args.register:
        from genreclf.tracking.registry import register_model

        registered = register_model(result.model_uri, args.register, alias=args.alias)
        print(f"registered: {registered.uri} (version {registered.version})")
    return 0


def _report_interrupted(exc, checkpoints):
    """Say which run was killed, what it saved and how to continue it."""
    run_id = getattr(exc, "run_id", None)  # set by genreclf.tracking.tracked_run
    if run_id is None:
        return
    from genreclf.ensemble import MEMBER_GLOB

    folder = os.path.join(checkpoints, run_id)
    n = len(list(Path(folder).glob(MEMBER_GLOB)))
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
    _, _, X, y, name = _select(args, evaluation_only=True)
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

    pipeline = _build(args)
    tracking.check_tracking_server()
    X, y, X_eval, y_eval, name = _select(args)
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


def _cmd_predict(args):
    import tempfile

    from genreclf.pipeline import STEP_NAMES
    from genreclf.prediction import format_bad_files, format_predictions, predict_table
    from genreclf.sources import find_audio_files
    from genreclf.tracking import load_pipeline

    paths = find_audio_files(args.inputs)
    pipeline = load_pipeline(args.model)
    pipeline.named_steps[STEP_NAMES[0]].set_params(verbose=int(args.progress))
    with contextlib.ExitStack() as stack:
        cache = args.cache_dir or stack.enter_context(tempfile.TemporaryDirectory())
        table = predict_table(pipeline, paths, memory=cache)
    fmt = _PREDICT_FORMATS.get(args.format, args.format)
    if table.paths:  # only bad files: the error alone, no empty table
        print(format_predictions(table, fmt, top_k=args.top_k), end="")
        sys.stdout.flush()
    if table.bad:
        print(f"genreclf: error: {format_bad_files(table.bad)}", file=sys.stderr)
        return _EXIT_FAILURE
    return 0


def _cmd_serve(args):
    from genreclf.rows import Limits
    from genreclf.serving import serve

    if args.max_body_mb <= 0 or args.max_duration <= 0:
        raise UsageError("--max-body-mb and --max-duration must be positive")
    limits = Limits(int(args.max_body_mb * 2**20), args.max_duration)
    serve(args.model, args.host, args.port, limits=limits, top_k=args.top_k)
    return 0


def _cmd_describe(args):
    from genreclf.tracking.card import read_model_card

    print(read_model_card(args.model), end="")
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
    "serve": _cmd_serve,
    "describe": _cmd_describe,
}


# --------------------------------------------------------------------------- main

#: Errors reported as their message alone; others get their type's name too.
_KNOWN_ERRORS = (GenreclfError, OSError, ValueError, RuntimeError)


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, AudioLoadError):  # keep the list of files, one per line
        return text
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _error_message(exc):
    message = _one_line(exc)
    if isinstance(exc, _KNOWN_ERRORS) or type(exc).__module__.split(".")[0] == "mlflow":
        return message
    return f"{type(exc).__name__}: {message} (--debug shows the traceback)"


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
    for name in OPTIONAL_TEXT:
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
    # glibc allocator settings measured by benchmarks/training.py (x1.4-1.5),
    # for training and prediction, where the user has not set them; a
    # long-lived server gets fixed small thresholds, so that the memory a burst
    # of requests took goes back to the system
    args.malloc_settings = {}
    if args.command in _MALLOC_COMMANDS or args.command == "serve":
        from genreclf._malloc import SERVER_MALLOC_ENV, apply_malloc_settings

        server = args.command == "serve"
        args.malloc_settings = apply_malloc_settings(
            SERVER_MALLOC_ENV if server else None
        )
    # MLflow's bars for each small model download are noise next to ours
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.filterwarnings("ignore", module="mlflow")
            return _COMMANDS[args.command](args)
    except UsageError as exc:
        if args.debug:
            raise
        print(f"genreclf {args.command}: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("genreclf: interrupted", file=sys.stderr)
        return 130
    except TrainingInterrupted as exc:
        if args.debug:
            raise
        print(f"genreclf: {exc}", file=sys.stderr)
        return 128 + int(exc.signum)
    except Exception as exc:
        if args.debug:
            raise
        print(f"genreclf: error: {_error_message(exc)}", file=sys.stderr)
        return _EXIT_FAILURE


def __getattr__(name):
    # ``genreclf.cli.DEMO`` (until 0.x): the demo's settings now live where they
    # are used, genreclf.sources.DEMO_DATA and genreclf.pipeline.DEMO_OPTIONS.
    if name == "DEMO":
        warnings.warn(
            "genreclf.cli.DEMO is deprecated and will be removed in the next "
            "release: use genreclf.sources.DEMO_DATA (the demo's data) and "
            "genreclf.pipeline.DEMO_OPTIONS (its model settings)",
            FutureWarning,
            stacklevel=2,
        )
        from genreclf.pipeline import DEMO_OPTIONS
        from genreclf.sources import DEMO_DATA

        return {**DEMO_DATA, "options": dict(DEMO_OPTIONS)}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
