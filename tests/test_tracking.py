"""genreclf.tracking: one MLflow run per training, its members, data, model."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TINY_OPTIONS
from skorch.callbacks import Callback

from genreclf import tracking
from genreclf.exceptions import UsageError
from genreclf.pipeline import build_pipeline

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.usefixtures("fresh_mlflow_experiment")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _split(paths, y, n_eval=8):
    """First ``n_eval / 8`` clips of each genre for evaluation, the rest to train."""
    per_genre = {}
    for p, g in zip(paths, y, strict=True):
        per_genre.setdefault(g, []).append(p)
    k = n_eval // len(per_genre)
    X_eval = [p for ps in per_genre.values() for p in ps[:k]]
    y_eval = [g for g, ps in per_genre.items() for _ in ps[:k]]
    X = [p for ps in per_genre.values() for p in ps[k:]]
    y_train = [g for g, ps in per_genre.items() for _ in ps[k:]]
    return X, y_train, X_eval, y_eval


def _tiny(cache, n_members=5, **options):
    return build_pipeline(
        memory=str(cache),
        random_state=0,
        n_members=n_members,
        **{**TINY_OPTIONS, **options},
    )


def _children(client, run_id):
    runs = client.search_runs(
        [client.get_run(run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
    )
    return sorted(runs, key=lambda r: r.info.run_name)


def _artifacts(client, run_id, path=None):
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


@pytest.fixture(scope="module")
def tracked(module_mlflow, tiny_demo):
    """One tracked training of five tiny members, shared by the module."""
    _, paths, y = tiny_demo
    X, y_train, X_eval, y_eval = _split(paths, y)
    pipeline = _tiny(module_mlflow / "cache")
    result = tracking.train_and_log(
        pipeline,
        X,
        y_train,
        X_eval,
        y_eval,
        dataset_name="tiny",
        checkpoint_dir=module_mlflow / "checkpoints",
        experiment_name="tests",
    )
    return SimpleNamespace(
        result=result,
        client=mlflow.MlflowClient(),
        folder=module_mlflow,
        X=X,
        y=y_train,
        X_eval=X_eval,
        y_eval=y_eval,
    )


# --------------------------------------------------------------------------- run


def test_parent_run_params_and_data(tracked):
    run = tracked.client.get_run(tracked.result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    # keys are the scikit-learn parameter paths, values their text
    expected = _tiny("unused").get_params()
    assert params["ensemble__net__batch_size"] == str(
        expected["ensemble__net__batch_size"]
    )
    assert params["ensemble__n_members"] == "5"
    assert params["mfcc__duration"] == "1.0"
    assert params["ensemble__net__module__filters"] == "(4, 8, 8)"
    from genreclf.model import GenreCNN  # defined in genreclf.cnn since 0.2

    assert params["ensemble__net__module"] == f"{GenreCNN.__module__}.GenreCNN"
    assert GenreCNN.__module__ in ("genreclf.model", "genreclf.cnn")
    # every flattened parameter made it (more than one batch of 100)
    flat = tracking.flatten_params(_tiny("unused"))
    assert set(flat) - {"mfcc__memory"} <= set(params)
    # the data
    summary = tracking.describe_dataset(tracked.X, tracked.y, "tiny")
    assert params["data.training.n_clips"] == "24"
    assert params["data.training.digest"] == summary["digest"]
    assert params["data.evaluation.n_clips"] == "8"
    assert params["data.training.count.rock"] == "3"
    assert params["data.training.n_bad_files"] == "0"
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "evaluation"}
    assert json.loads(inputs["training"].profile)["num_rows"] == 24
    assert run.data.tags["genreclf.command"] == "train"


def test_five_nested_member_runs_with_epoch_metrics(tracked):
    children = _children(tracked.client, tracked.result.run_id)
    assert [r.info.run_name for r in children] == [f"member-{i}" for i in range(5)]
    assert sorted(tracked.result.child_run_ids) == sorted(
        r.info.run_id for r in children
    )
    seeds = {r.data.params["seed"] for r in children}
    assert len(seeds) == 5
    for run in children:
        assert run.info.status == "FINISHED"
        for key in ("train_loss", "valid_loss", "valid_acc"):
            history = tracked.client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in history) == [1, 2]
            assert all(np.isfinite(m.value) for m in history)
        assert run.data.tags["genreclf.resumed"] == "False"
    ensemble = tracked.result.pipeline.named_steps["ensemble"]
    member0 = ensemble.estimators_[0]
    logged = tracked.client.get_metric_history(children[0].info.run_id, "valid_loss")
    assert [m.value for m in sorted(logged, key=lambda m: m.step)] == pytest.approx(
        list(member0.history[:, "valid_loss"])
    )


def test_evaluation_metrics_and_artifacts(tracked):
    run = tracked.client.get_run(tracked.result.run_id)
    metrics = run.data.metrics
    y_pred = tracked.result.pipeline.predict(np.asarray(tracked.X_eval, dtype=object))
    assert metrics["eval_accuracy"] == pytest.approx(
        np.mean(y_pred == np.asarray(tracked.y_eval))
    )
    assert 0 <= metrics["eval_f1_macro"] <= 1
    assert {f"eval_accuracy_{g}" for g in set(tracked.y)} <= set(metrics)
    # the run holds the evaluation metrics returned, plus the ensemble's calibration
    evaluation = {k: v for k, v in metrics.items() if not k.startswith("calibration_")}
    assert evaluation == pytest.approx(tracked.result.metrics)
    assert set(metrics) - set(evaluation) <= {
        "calibration_temperature",
        "calibration_ece_before",
        "calibration_ece_after",
    }
    files = _artifacts(tracked.client, tracked.result.run_id)
    for name in (
        "figures/confusion_matrix.png",
        "figures/training_curves.png",
        "evaluation/classification_report.txt",
        "evaluation/predictions.csv",
        "data/training.csv",
        "data/evaluation.csv",
        "members/ensemble.json",
    ):
        assert name in files
    assert {f"members/member{i}.joblib" for i in range(5)} <= set(files)
    local = mlflow.artifacts.download_artifacts(
        run_id=tracked.result.run_id, artifact_path="figures"
    )
    for name in ("confusion_matrix.png", "training_curves.png"):
        with open(os.path.join(local, name), "rb") as f:
            assert f.read(8) == PNG_MAGIC
    report = mlflow.artifacts.load_text(
        f"runs:/{tracked.result.run_id}/evaluation/classification_report.txt"
    )
    assert "macro avg" in report and "rock" in report
    # the members were saved as they finished, in the run's checkpoint folder
    folder = tracked.folder / "checkpoints" / tracked.result.run_id
    assert sorted(p.name for p in folder.glob("member*.joblib")) == [
        f"member{i}.joblib" for i in range(5)
    ]


@pytest.mark.integration
def test_model_loads_and_predicts_in_a_fresh_process(tracked):
    uri = tracked.result.model_uri
    assert uri.startswith("models:/")
    assert (
        tracked.client.get_run(tracked.result.run_id).data.tags["genreclf.model_uri"]
        == uri
    )
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "paths = json.loads(sys.argv[2])\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "frame = model.predict(pd.DataFrame({'path': paths}))\n"
        "plain = model.predict(paths)\n"
        "import genreclf\n"
        "print(json.dumps({'genre': frame['genre'].tolist(),\n"
        "    'plain': plain['genre'].tolist(), 'columns': list(frame.columns),\n"
        "    'package': genreclf.__file__,\n"
        "    'sum': frame.iloc[:, 1:].sum(1).tolist()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, uri, json.dumps(tracked.X_eval)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    expected = tracked.result.pipeline.predict(np.asarray(tracked.X_eval, dtype=object))
    assert answer["genre"] == list(expected)
    assert answer["plain"] == list(expected)
    assert answer["columns"] == ["genre", *sorted(set(tracked.y))]
    assert answer["sum"] == pytest.approx([1.0] * len(tracked.X_eval), abs=1e-5)
    # the package came with the model (code_paths), not from this checkout
    assert f"{os.sep}code{os.sep}genreclf{os.sep}" in answer["package"]


def test_load_pipeline_from_uri_folder_and_file(tracked, tmp_path):
    import joblib

    X = np.asarray(tracked.X_eval, dtype=object)
    expected = tracked.result.pipeline.predict(X)
    from_uri = tracking.load_pipeline(f"runs:/{tracked.result.run_id}/model")
    assert list(from_uri.predict(X)) == list(expected)
    folder = mlflow.artifacts.download_artifacts(
        tracked.result.model_uri, dst_path=str(tmp_path / "model")
    )
    assert list(tracking.load_pipeline(folder).predict(X)) == list(expected)
    # the logged pipeline carries no training-machine state
    assert from_uri.named_steps["mfcc"].memory is None
    assert from_uri.named_steps["ensemble"].member_callback is None
    assert from_uri.named_steps["ensemble"].checkpoint_dir is None
    path = tmp_path / "pipeline.joblib"
    joblib.dump(from_uri, path)
    assert list(tracking.load_pipeline(path).predict(X)) == list(expected)
    with pytest.raises(FileNotFoundError, match="no-such-model: no such model"):
        tracking.load_pipeline(tmp_path / "no-such-model")


def test_evaluate_model_logs_a_run(tracked):
    result = tracking.evaluate_model(
        tracked.result.model_uri,
        tracked.X_eval,
        tracked.y_eval,
        dataset_name="tiny",
        run_name="evaluation",
    )
    run = tracked.client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model_uri"] == tracked.result.model_uri
    assert run.data.metrics["eval_accuracy"] == pytest.approx(
        tracked.result.metrics["eval_accuracy"]
    )
    assert "figures/confusion_matrix.png" in _artifacts(tracked.client, result.run_id)


# --------------------------------------------------------------------------- faults


class _SigintAtFit(Callback):
    """Send this process SIGINT when the ``at``-th net starts training."""

    armed = True
    started = 0

    def __init__(self, at=3):
        self.at = at

    def on_train_begin(self, net, **kwargs):
        type(self).started += 1
        if type(self).armed and type(self).started == self.at:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.integration
def test_interrupted_training_is_killed_then_resumed(module_mlflow, tiny_demo):
    _, paths, y = tiny_demo
    X, y_train, _, _ = _split(paths, y)
    client = mlflow.MlflowClient()
    cache = module_mlflow / "cache"
    options = {
        "n_members": 3,
        "ensemble__net__callbacks": [("sigint", _SigintAtFit(3))],
    }
    _SigintAtFit.armed, _SigintAtFit.started = True, 0
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under nohup or `cmd &`
    with pytest.raises(tracking.TrainingInterrupted, match="SIGINT"):
        tracking.train_and_log(
            _tiny(cache, **options),
            X,
            y_train,
            dataset_name="tiny",
            checkpoint_dir=module_mlflow / "ck-interrupt",
            log_model=False,
            run_name="interrupted",
        )
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back
    killed = mlflow.last_active_run()
    assert killed.info.run_name == "interrupted"
    assert client.get_run(killed.info.run_id).info.status == "KILLED"
    children = _children(client, killed.info.run_id)
    assert [r.info.run_name for r in children] == ["member-0", "member-1"]
    assert all(r.info.status == "FINISHED" for r in children)
    saved = _artifacts(client, killed.info.run_id, "members")
    assert {"members/member0.joblib", "members/member1.joblib"} <= set(saved)
    assert "members/member2.joblib" not in saved

    # resume from the run id: its members are downloaded, one net is trained
    _SigintAtFit.armed = False
    result = tracking.train_and_log(
        _tiny(cache, **options),
        X,
        y_train,
        dataset_name="tiny",
        resume=killed.info.run_id,
        log_model=False,
    )
    ensemble = result.pipeline.named_steps["ensemble"]
    assert ensemble.resumed_ == [0, 1]
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["genreclf.resumed_from"] == killed.info.run_id
    children = _children(client, result.run_id)
    assert [r.data.tags["genreclf.resumed"] for r in children] == [
        "True",
        "True",
        "False",
    ]
    # the reused members are the saved ones (same seeds), the others new ones
    before = [r.data.params["seed"] for r in _children(client, killed.info.run_id)]
    assert [r.data.params["seed"] for r in children[:2]] == before


def test_signals_wait_for_mlflow_bookkeeping():
    reached = []
    with tracking._signals_interrupt():
        with pytest.raises(tracking.TrainingInterrupted, match="SIGTERM"):
            with tracking._signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                reached.append(True)  # the signal waited for the block to end
    assert reached == [True]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_failure_marks_run_failed(module_mlflow):
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.tracked_run(run_name="fails"):
            raise RuntimeError("boom")
    run = mlflow.last_active_run()
    assert run.info.run_name == "fails"
    assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_under_mlflow_run_the_existing_run_is_used(module_mlflow, monkeypatch):
    client = mlflow.MlflowClient()
    experiment = mlflow.set_experiment("projects").experiment_id
    made = client.create_run(experiment)  # what `mlflow run` makes
    monkeypatch.setenv("MLFLOW_RUN_ID", made.info.run_id)
    with pytest.warns(UserWarning, match="mlflow run --experiment-name"):
        with tracking.tracked_run(experiment_name="ignored") as run:
            assert run.info.run_id == made.info.run_id
            mlflow.log_param("x", 1)
    assert client.get_run(made.info.run_id).info.status == "FINISHED"
    assert client.get_experiment_by_name("ignored") is None


def _bad_folder(tmp_path, tiny_demo):
    """The tiny demo plus a zero-byte wav and a text file named .mp3."""
    folder, paths, y = tiny_demo
    bad = tmp_path / "bad"
    bad.mkdir()
    empty = bad / "empty.wav"
    empty.write_bytes(b"")
    text = bad / "notes.mp3"
    text.write_text("not audio at all\n" * 20)
    X, y_train, X_eval, y_eval = _split(paths, y)
    return X + [str(empty), str(text)], y_train + ["rock", "folk"], X_eval, y_eval


def test_bad_files_fail_before_training_with_the_full_list(
    module_mlflow, tiny_demo, tmp_path
):
    from genreclf.features import FeatureExtractionError

    X, y, X_eval, y_eval = _bad_folder(tmp_path, tiny_demo)
    with pytest.raises(FeatureExtractionError) as info:
        tracking.train_and_log(
            _tiny(module_mlflow / "cache", n_members=1),
            X,
            y,
            X_eval,
            y_eval,
            run_name="bad",
            log_model=False,
        )
    assert set(info.value.failures) == {X[-2], X[-1]}
    assert "empty.wav" in str(info.value) and "notes.mp3" in str(info.value)
    client = mlflow.MlflowClient()
    run = client.get_run(mlflow.last_active_run().info.run_id)
    assert run.info.status == "FAILED"
    assert run.data.params["data.training.n_bad_files"] == "2"
    assert not _children(client, run.info.run_id)  # nothing was trained
    listed = mlflow.artifacts.load_dict(
        f"runs:/{run.info.run_id}/data/training_bad_files.json"
    )
    assert {item["path"] for item in listed["bad_files"]} == {X[-2], X[-1]}


def test_bad_files_skipped_on_request(module_mlflow, tiny_demo, tmp_path):
    X, y, X_eval, y_eval = _bad_folder(tmp_path, tiny_demo)
    result = tracking.train_and_log(
        _tiny(module_mlflow / "cache", n_members=1),
        X,
        y,
        X_eval,
        y_eval,
        skip_bad_files=True,
        log_model=False,
    )
    assert set(result.bad_files) == {X[-2], X[-1]}
    run = mlflow.MlflowClient().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["data.training.n_bad_files"] == "2"
    assert run.data.params["data.training.n_clips"] == "26"  # as given
    assert len(result.pipeline.named_steps["ensemble"].estimators_) == 1


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_fast_before_any_work(
    tmp_path, monkeypatch, tiny_demo
):
    _, paths, y = tiny_demo
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cache = tmp_path / "cache"
    start = time.perf_counter()
    with pytest.raises(
        tracking.TrackingServerError,
        match=f"cannot reach the MLflow tracking server at {uri}",
    ):
        tracking.train_and_log(_tiny(cache, n_members=1), paths, y)
    assert time.perf_counter() - start < 10
    assert not cache.exists()  # no feature was extracted
    # MLflow's own retry settings are left as they were
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


# --------------------------------------------------------------------------- search


@pytest.mark.integration
def test_search_logs_one_child_run_per_candidate(module_mlflow, tiny_demo):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    _, paths, y = tiny_demo
    X, y_train, X_eval, y_eval = _split(paths, y)
    pipeline = _tiny(module_mlflow / "cache", n_members=1, max_epochs=1)
    search = GridSearchCV(
        pipeline,
        {"ensemble__net__batch_size": [4, 8]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    )
    result = tracking.search_and_log(
        search,
        X,
        y_train,
        X_eval,
        y_eval,
        dataset_name="tiny",
        log_model=False,
    )
    client = mlflow.MlflowClient()
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    children = _children(client, result.run_id)
    assert [r.info.run_name for r in children] == ["candidate-0", "candidate-1"]
    assert [r.data.params["ensemble__net__batch_size"] for r in children] == ["4", "8"]
    for i, run in enumerate(children):
        assert run.data.metrics["mean_test_score"] == pytest.approx(
            search.cv_results_["mean_test_score"][i]
        )
        assert {
            "std_test_score",
            "split0_test_score",
            "split1_test_score",
            "rank_test_score",
        } <= set(run.data.metrics)
    best = str(search.best_params_["ensemble__net__batch_size"])
    assert parent.data.params["best.ensemble__net__batch_size"] == best
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "eval_accuracy" in parent.data.metrics
    assert "cv_results.csv" in _artifacts(client, result.run_id)


def test_search_with_another_fit_function(module_mlflow, tiny_demo):
    """``fit=`` replaces ``search.fit`` + ``log_search`` (e.g. a Dask fit_search)."""
    from sklearn.model_selection import GridSearchCV

    _, paths, y = tiny_demo
    calls = []

    def fit(search, X, y, parent_run_id):
        calls.append((len(X), parent_run_id))
        search.fit(X, y)
        return tracking.log_search(search, parent_run_id)

    search = GridSearchCV(
        _tiny(module_mlflow / "cache", n_members=1, max_epochs=1),
        {"ensemble__net__lr": [1e-3]},
        cv=2,
    )
    result = tracking.search_and_log(search, paths, y, log_model=False, fit=fit)
    assert calls == [(32, result.run_id)]
    [child] = result.child_run_ids
    run = mlflow.MlflowClient().get_run(child)
    assert run.data.tags["mlflow.parentRunId"] == result.run_id
    assert run.data.params["ensemble__net__lr"] == "0.001"


# --------------------------------------------------------------------------- helpers


def test_flatten_params_shortens_long_values_and_mlflow_accepts_them(
    mlflow_uri, tmp_path, monkeypatch
):
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    from sklearn.preprocessing import FunctionTransformer

    monkeypatch.chdir(tmp_path)
    est = FunctionTransformer(kw_args={"text": "x" * 20000, "n": 3})
    params = tracking.flatten_params(est)
    assert len(params["kw_args"]) == MAX_PARAM_VAL_LENGTH
    assert params["kw_args"].endswith("...[20020 chars]")
    assert params["func"] == "None"
    with mlflow.start_run() as run:
        mlflow.log_params(params)
    stored = mlflow.MlflowClient().get_run(run.info.run_id).data.params
    assert stored["kw_args"] == params["kw_args"]


def test_log_dataset_with_genre_names_mlflow_refuses_in_keys(
    mlflow_uri, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    paths = [str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), str(tmp_path / "c.wav")]
    with mlflow.start_run() as run:
        summary = tracking.log_dataset(paths, ["R&B", "Rock'n'Roll", "R&B"], "odd")
    params = mlflow.MlflowClient().get_run(run.info.run_id).data.params
    assert summary["counts"] == {"R&B": 2, "Rock'n'Roll": 1}
    assert params["data.training.count.R_B"] == "2"
    assert params["data.training.count.Rock_n_Roll"] == "1"
    assert params["data.training.name"] == "odd"


def test_flatten_params_names_classes_and_skips_estimators():
    params = tracking.flatten_params(_tiny("cache-dir"))
    assert "ensemble" not in params and "ensemble__net" not in params
    assert params["ensemble__net__optimizer"] == "torch.optim.rmsprop.RMSprop"
    assert " at 0x" not in "".join(params.values())
    assert params["mfcc__memory"] == "cache-dir"


def test_describe_dataset_digest_ignores_order_and_location():
    a = tracking.describe_dataset(["/a/r/1.wav", "/a/p/2.wav"], ["rock", "pop"])
    b = tracking.describe_dataset(["/x/y/p/2.wav", "/x/y/r/1.wav"], ["pop", "rock"])
    c = tracking.describe_dataset(["/a/r/1.wav", "/a/p/2.wav"], ["pop", "rock"])
    assert a["digest"] == b["digest"] != c["digest"]
    with pytest.raises(ValueError, match="2 paths but 1 labels"):
        tracking.describe_dataset(["a", "b"], ["rock"])


def test_evaluation_metrics_per_genre_and_safe_keys():
    m = tracking.evaluation_metrics(
        ["Rock", "Rock", "R&B", "Pop"],
        ["Rock", "Pop", "R&B", "Pop"],
        labels=["Pop", "R&B", "Rock", "Jazz"],
    )
    assert m["eval_accuracy"] == 0.75
    assert m["eval_accuracy_Rock"] == 0.5
    assert m["eval_accuracy_R_B"] == 1.0  # '&' is not allowed in an MLflow key
    assert "eval_accuracy_Jazz" not in m  # no clip of that genre
    assert 0 < m["eval_f1_macro"] < 1


def test_figures_are_drawn_without_pyplot():
    fig = tracking.plot_confusion_matrix(["a", "b", "a"], ["a", "a", "a"])
    assert fig.axes[0].get_title().startswith("Confusion")
    history = {
        1: {"train_loss": 1.0, "valid_loss": 1.2, "valid_acc": 0.5},
        2: {"train_loss": 0.8, "valid_loss": 1.0, "valid_acc": 0.6},
    }
    fig = tracking.plot_training_curves({0: history, 1: history})
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 4 and len(acc_ax.lines) == 2


def test_candidate_matching_and_values():
    from sklearn.dummy import DummyClassifier
    from sklearn.preprocessing import StandardScaler

    from genreclf.tracking.params import param_text
    from genreclf.tracking.search import CandidateScorer, same_value

    assert same_value(StandardScaler(with_mean=False), StandardScaler(with_mean=False))
    assert not same_value(StandardScaler(), StandardScaler(with_mean=False))
    assert same_value(np.array([1, 2]), np.array([1, 2]))
    assert param_text(StandardScaler()) == "StandardScaler"
    scorer = CandidateScorer(
        None,
        None,
        [{"strategy": "prior"}, {"strategy": "prior", "constant": 1}],
        ["a", "b"],
        {},
        {},
        str,
    )
    assert scorer._candidate(DummyClassifier(constant=1)) == 1
    assert scorer._candidate(DummyClassifier(strategy="uniform")) is None


def test_param_text_drops_memory_addresses():
    from genreclf.tracking.params import param_text

    class Thing:
        pass

    text = param_text([Thing(), ("a", Thing())])
    assert " at 0x" not in text
    assert text.count("Thing object>") == 2


# --------------------------------------------------------------------------- best epoch


@pytest.mark.parametrize("monitor", ["valid_loss", "valid_acc"])
def test_member_runs_log_the_epoch_the_net_kept(module_mlflow, tiny_demo, monitor):
    """``best_epoch`` is the net's own ``best_epoch_`` (chosen by its monitor)."""
    _, paths, y = tiny_demo
    result = tracking.train_and_log(
        _tiny(module_mlflow / "cache", n_members=3, max_epochs=5, monitor=monitor),
        paths,
        y,
        log_model=False,
        run_name=f"best-epoch-{monitor}",
    )
    members = result.pipeline.named_steps["ensemble"].estimators_
    client = mlflow.MlflowClient()
    runs = _children(client, result.run_id)
    assert [r.info.run_name for r in runs] == ["member-0", "member-1", "member-2"]
    logged = [int(r.data.metrics["best_epoch"]) for r in runs]
    kept = [int(m.best_epoch_) for m in members]
    assert logged == kept
    lowest_loss = [
        int(m.history[int(np.argmin(m.history[:, "valid_loss"])), "epoch"])
        for m in members
    ]
    if monitor == "valid_loss":
        assert kept == lowest_loss
    else:  # the accuracy keeps another epoch than the loss would, for some net
        assert kept != lowest_loss


# --------------------------------------------------------------- issue 15 findings


def test_resume_with_other_settings_is_refused_before_any_run(
    module_mlflow, tiny_demo
):
    """Issue 15: resuming with other settings retrained every net, overwriting."""
    _, paths, y = tiny_demo
    X, y_train, _, _ = _split(paths, y)
    cache, ckpt = module_mlflow / "cache", module_mlflow / "ck-settings"
    first = tracking.train_and_log(
        _tiny(cache, n_members=1), X, y_train, checkpoint_dir=ckpt, log_model=False
    )
    folder = ckpt / first.run_id
    saved = {p.name: p.read_bytes() for p in folder.iterdir()}
    client = mlflow.MlflowClient()
    n_runs = len(client.search_runs([client.get_run(first.run_id).info.experiment_id]))
    for resume in (first.run_id, folder):
        with pytest.raises(
            UsageError,
            match=rf"cannot resume run {first.run_id}: its settings differ .*"
            r"ensemble__net__max_epochs: 2 -> 3",
        ):
            tracking.train_and_log(
                _tiny(cache, n_members=1, max_epochs=3), X, y_train,
                checkpoint_dir=ckpt, resume=resume, log_model=False,
            )  # fmt: skip
    with pytest.raises(UsageError, match=r"data\.training\.digest"):
        tracking.train_and_log(
            _tiny(cache, n_members=1), X[:-1], y_train[:-1],
            checkpoint_dir=ckpt, resume=first.run_id, log_model=False,
        )  # fmt: skip
    after = client.search_runs([client.get_run(first.run_id).info.experiment_id])
    assert len(after) == n_runs  # no FAILED run was left
    # the same settings: resumed from a copy, the first run's files untouched
    result = tracking.train_and_log(
        _tiny(cache, n_members=1), X, y_train, checkpoint_dir=ckpt,
        resume=folder, log_model=False,
    )  # fmt: skip
    assert result.pipeline.named_steps["ensemble"].resumed_ == [0]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == saved
    assert (ckpt / result.run_id / "member0.joblib").is_file()


def test_resume_from_an_unknown_run_fails_before_any_run(module_mlflow, tiny_demo):
    _, paths, y = tiny_demo
    with pytest.raises(FileNotFoundError, match="cannot resume 0123abc: neither"):
        tracking.train_and_log(
            _tiny(module_mlflow / "cache", n_members=1), paths, y,
            resume="0123abc", log_model=False,
        )  # fmt: skip


def test_evaluate_on_data_of_no_known_genre_fails_before_a_run(tracked):
    """Issue 15: "At least one label specified must be in y_true" and a FAILED run."""
    paths = list(tracked.X_eval)
    client = mlflow.MlflowClient()
    before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    with pytest.raises(ValueError, match="shares no genre with the model") as err:
        tracking.evaluate_model(tracked.result.model_uri, paths, ["zydeco"] * len(paths))
    assert "zydeco" in str(err.value) and "At least one label" not in str(err.value)
    after = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    assert after == before


def test_empty_training_and_evaluation_data_are_refused(tracked, module_mlflow):
    with pytest.raises(ValueError, match="no training files"):
        tracking.train_and_log(_tiny(module_mlflow / "cache", n_members=1), [], [])
    with pytest.raises(ValueError, match="no evaluation files"):
        tracking.evaluate_model(tracked.result.model_uri, [], [])
