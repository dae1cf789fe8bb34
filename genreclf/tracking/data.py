"""The data of a run: its summary, its file list, and the files that are bad."""

import hashlib
import os
import tempfile
import warnings
from collections import Counter
from pathlib import Path

from genreclf.exceptions import (
    DatasetWarning,
    FeatureExtractionError,
    TrainingInterrupted,
)
from genreclf.tracking.storage import artifact_write

__all__ = ["checked_data", "describe_dataset", "log_bad_files", "log_dataset"]


def _file_list_digest(paths, y):
    """SHA-256 of the sorted ``relative path<TAB>label`` lines of a dataset."""
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    root = os.path.commonpath(paths) if paths else ""
    if len(paths) == 1:
        root = os.path.dirname(root)
    lines = sorted(
        f"{os.path.relpath(p, root)}\t{label}"
        for p, label in zip(paths, y, strict=True)
    )
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def describe_dataset(paths, y, name=None):
    """Summarize a dataset: size, per-genre counts and a digest of its file list.

    Parameters
    ----------
    paths : sequence of str or path-like
        Audio file paths.
    y : sequence of str
        Genre of each path.
    name : str, optional
        A name for the dataset (``"demo"``, ``"fma_small"``, a folder name).

    Returns
    -------
    summary : dict
        ``name``, ``n_clips``, ``counts`` (genre to count, sorted by genre) and
        ``digest``: the SHA-256 of the sorted ``path<TAB>genre`` lines, with
        paths relative to the folder the files share, so that the same files
        give the same digest wherever they lie.

    Raises
    ------
    ValueError
        If ``paths`` and ``y`` differ in length.

    Examples
    --------
    >>> s = describe_dataset(["/a/x.wav", "/a/y.wav"], ["rock", "pop"], "tiny")
    >>> s["n_clips"], s["counts"], len(s["digest"])
    (2, {'pop': 1, 'rock': 1}, 64)
    >>> s["digest"] == describe_dataset(["/b/y.wav", "/b/x.wav"], ["pop", "rock"])[
    ...     "digest"]
    True
    """
    y = [str(label) for label in y]
    if len(paths) != len(y):
        raise ValueError(f"{len(paths)} paths but {len(y)} labels")
    return {
        "name": name,
        "n_clips": len(y),
        "counts": dict(sorted(Counter(y).items())),
        "digest": _file_list_digest(paths, y),
    }


def log_dataset(paths, y, name=None, context="training"):
    """Log a dataset's summary to the active run.

    Parameters ``data.<context>.name``, ``.n_clips``, ``.digest`` and
    ``.count.<genre>``; the file list as ``data/<context>.csv``; and the
    dataset as an MLflow input (``mlflow.log_input``, with ``context``).

    Parameters
    ----------
    paths, y, name
        As in :func:`describe_dataset`.
    context : str, default="training"
        What the data is used for (``"training"``, ``"evaluation"``).

    Returns
    -------
    summary : dict
        The output of :func:`describe_dataset`.
    """
    import mlflow
    import pandas as pd

    from genreclf.tracking.evaluation import safe_key

    summary = describe_dataset(paths, y, name)
    prefix = f"data.{context}"
    params = {
        f"{prefix}.name": summary["name"],
        f"{prefix}.n_clips": summary["n_clips"],
        f"{prefix}.digest": summary["digest"],
    }
    params.update(
        {safe_key(f"{prefix}.count.{g}"): n for g, n in summary["counts"].items()}
    )
    mlflow.log_params(params)
    frame = pd.DataFrame({"path": [os.fspath(p) for p in paths], "genre": list(y)})
    frame["genre"] = frame["genre"].astype(str)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp, f"{context}.csv")
        frame.to_csv(csv, index=False)
        with artifact_write(f"the {context} file list data/{context}.csv"):
            mlflow.log_artifact(str(csv), "data")
    try:
        dataset = mlflow.data.from_pandas(
            frame, name=name or context, targets="genre", digest=summary["digest"][:36]
        )
        # an input is a record of the tracking store, not an artifact
        store = mlflow.get_tracking_uri()
        with artifact_write(f"the {context} dataset input of the run", store):
            mlflow.log_input(dataset, context=context)
    except TrainingInterrupted:
        raise
    except Exception as exc:  # the summary above is logged anyway
        if hasattr(exc, "genreclf_written"):
            raise  # a full disk: the run fails, as every later write would
        warnings.warn(
            f"could not log the dataset as an MLflow input: {exc}", stacklevel=2
        )
    return summary


def log_bad_files(failures, context):
    """Log ``data.<context>.n_bad_files`` and, if any, the list of bad files.

    Parameters
    ----------
    failures : dict of str to str
        Path of every bad file -> the reason.
    context : str
        ``"training"`` or ``"evaluation"``; the list goes to
        ``data/<context>_bad_files.json``.
    """
    import mlflow

    mlflow.log_param(f"data.{context}.n_bad_files", len(failures))
    if failures:
        listed = f"data/{context}_bad_files.json"
        with artifact_write(f"the list of bad {context} files {listed}"):
            mlflow.log_dict(
                {"bad_files": [{"path": p, "reason": r} for p, r in failures.items()]},
                listed,
            )


def checked_data(pipeline, X, y, X_eval, y_eval, skip_bad_files):
    """Check training and evaluation files, log what is bad, then fail or drop.

    Uses the package's one bad-file screen (``check_files``) with the
    pipeline's feature step, so the features of the good files are cached for
    the fit that follows.

    Parameters
    ----------
    pipeline : Pipeline
        A genreclf pipeline (its step ``STEP_NAMES[0]`` extracts the features).
    X, y : sequences
        Training files and genres.
    X_eval, y_eval : sequences or None
        Evaluation files and genres.
    skip_bad_files : bool
        Drop the bad files (with a :class:`DatasetWarning`) instead of failing.

    Returns
    -------
    X, y, X_eval, y_eval : arrays
        The readable files and their genres.
    failures : dict of str to str
        Every bad file (training and evaluation) -> the reason.

    Raises
    ------
    FeatureExtractionError
        If files are bad and ``skip_bad_files`` is false, listing them all.
    """
    from genreclf.features import check_files
    from genreclf.pipeline import STEP_NAMES

    mfcc = pipeline.named_steps[STEP_NAMES[0]]
    failures = {}
    with warnings.catch_warnings():
        if not skip_bad_files:  # the error below lists them instead
            warnings.simplefilter("ignore", DatasetWarning)
        X, y, bad = check_files(X, y, on_error="skip", transformer=mfcc)
        log_bad_files(bad, "training")
        failures.update(bad)
        if X_eval is not None:
            X_eval, y_eval, bad = check_files(
                X_eval, y_eval, on_error="skip", transformer=mfcc
            )
            log_bad_files(bad, "evaluation")
            failures.update(bad)
    if failures and not skip_bad_files:
        n_files = len(X) + len(failures) + (0 if X_eval is None else len(X_eval))
        raise FeatureExtractionError(failures, n_files=n_files)
    return X, y, X_eval, y_eval, failures
