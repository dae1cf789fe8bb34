"""The genreclf command (genreclf.cli) and the MLproject entry points."""

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import TINY_ARGS

from genreclf.cli import main

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.usefixtures("fresh_mlflow_experiment")

ROOT = Path(__file__).resolve().parents[1]
#: options that make the CLI train a tiny net fast
TINY = TINY_ARGS


def _run(argv):
    """``main(argv)`` with its stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return SimpleNamespace(code=code, out=out.getvalue(), err=err.getvalue())


@pytest.fixture(scope="module")
def trained(module_mlflow, tiny_demo):
    """``genreclf train --data <tiny demo>`` with two tiny members, once."""
    folder = tiny_demo[0]
    result = _run(
        [
            "train",
            "--data",
            str(folder),
            "--n-members",
            "2",
            "--experiment-name",
            "cli",
            *TINY,
        ]
    )
    assert result.code == 0, result.err
    run_id = re.search(r"^run (\w+) \(train\)", result.out, re.M).group(1)
    model_uri = re.search(r"^model: (\S+)", result.out, re.M).group(1)
    return SimpleNamespace(
        out=result.out,
        run_id=run_id,
        model_uri=model_uri,
        folder=folder,
        store=module_mlflow,
    )


# --------------------------------------------------------------------------- usage


@pytest.mark.parametrize(
    "command", [[], ["train"], ["evaluate"], ["predict"], ["search"], ["download"]]
)
def test_help_on_every_command(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: genreclf {' '.join(command)}".rstrip())


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: genreclf" in capsys.readouterr().err


def test_bad_option_value_is_a_usage_error(capsys):
    assert main(["train", "--max-epochs", "many"]) == 2
    err = capsys.readouterr().err
    assert "argument --max-epochs" in err and "Traceback" not in err


def test_data_and_fma_together_is_a_usage_error(capsys):
    assert main(["train", "--data", "music", "--fma", "fma"]) == 2
    assert capsys.readouterr().err == (
        "genreclf train: error: give --data or --fma, not both\n"
    )


def test_unknown_pipeline_setting_is_a_usage_error(
    capsys, mlflow_uri, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--set", "colour=blue"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("genreclf train: error: unknown option 'colour'")
    assert not (tmp_path / ".genreclf-cache").exists()  # nothing was generated


def test_every_option_is_declared_once():
    from genreclf._cli_options import OPTIONS, build_parser

    flags = [f for names, _ in OPTIONS.values() for f in names]
    assert len(flags) == len(set(flags))
    parser = build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    for name, sub in [(None, parser), *commands.choices.items()]:
        for action in sub._actions:
            if action.option_strings == ["-h", "--help"] or action.dest == "command":
                continue
            names = action.option_strings or [action.dest]
            assert set(names) <= set(flags), (name, names)
    # one declaration: the same help wherever the option is taken
    helps = {
        cmd: {a.dest: a.help for a in sub._actions}
        for cmd, sub in commands.choices.items()
    }
    assert (
        helps["train"]["data"] == helps["search"]["data"] == helps["evaluate"]["data"]
    )
    assert helps["train"]["settings"] == helps["search"]["settings"]


def test_mlproject_entry_points_parse_as_commands():
    """Every entry point's command, with its defaults, is a valid command line."""
    import shlex

    import yaml

    from genreclf._cli_options import build_parser

    project = yaml.safe_load((ROOT / "MLproject").read_text())
    assert set(project["entry_points"]) == {"main", "search", "evaluate", "predict"}
    for name, entry in project["entry_points"].items():
        values = {}
        for key, spec in entry["parameters"].items():
            if isinstance(spec, str) or "default" not in spec:
                values[key] = "runs:/0/model" if key == "model-uri" else "a.wav"
            else:
                values[key] = str(spec["default"])
        command = entry["command"]
        for key, value in values.items():
            command = command.replace("{" + key + "}", shlex.quote(value))
        words = shlex.split(command)
        assert words[:3] == ["python", "-m", "genreclf.cli"]
        args = build_parser().parse_args(words[3:])
        assert args.command == {"main": "train"}.get(name, name)
        for key in entry["parameters"]:  # each parameter reaches an option
            assert f"--{key}" in entry["command"] or key in ("model-uri", "input")


def test_demo_settings_moved_with_a_deprecation():
    import genreclf.cli
    from genreclf.pipeline import DEMO_OPTIONS
    from genreclf.sources import DEMO_DATA

    with pytest.warns(FutureWarning, match=r"genreclf\.cli\.DEMO is deprecated"):
        demo = genreclf.cli.DEMO
    assert demo == {**DEMO_DATA, "options": dict(DEMO_OPTIONS)}
    assert "DEMO" not in genreclf.cli.__all__
    with pytest.raises(AttributeError, match="no attribute 'DEMOS'"):
        genreclf.cli.DEMOS  # noqa: B018


@pytest.mark.parametrize(
    "error, status, message",
    [
        (
            "download",
            1,
            "genreclf: error: connection lost after 10 bytes",
        ),
        ("checksum", 1, "genreclf: error: sha1 mismatch"),
        ("audio", 1, "genreclf: error: a.mp3: empty file\n"),
        (
            "key",
            1,
            "genreclf: error: KeyError: 'x' (--debug shows the traceback)",
        ),
        ("sigterm", 128 + signal.SIGTERM, "genreclf: interrupted by SIGTERM"),
        ("ctrl-c", 130, "genreclf: interrupted"),
    ],
)
def test_errors_end_with_one_line_and_their_status(
    error, status, message, monkeypatch, capsys
):
    import genreclf.download
    from genreclf.exceptions import (
        AudioLoadError,
        ChecksumError,
        DownloadError,
        GenreclfError,
        TrainingInterrupted,
    )

    errors = {
        "download": DownloadError("connection lost\n after 10 bytes"),
        "checksum": ChecksumError("sha1 mismatch"),
        "audio": AudioLoadError("a.mp3", "empty file"),
        "key": KeyError("x"),
        "sigterm": TrainingInterrupted(signal.SIGTERM),
        "ctrl-c": KeyboardInterrupt(),
    }

    def fail(**kwargs):
        raise errors[error]

    monkeypatch.setattr(genreclf.download, "download_fma", fail)
    assert main(["download", "fma"]) == status
    err = capsys.readouterr().err
    assert err.strip() == message.strip() and "Traceback" not in err
    if isinstance(errors[error], GenreclfError):
        with pytest.raises(type(errors[error])):  # --debug: the traceback
            main(["--debug", "download", "fma"])


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("genreclf ")


# --------------------------------------------------------------------------- train


def test_train_logs_a_run_with_member_runs_and_a_model(trained):
    client = mlflow.MlflowClient()
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "cli"
    assert run.data.params["ensemble__n_members"] == "2"
    assert run.data.params["ensemble__net__module__filters"] == "(4, 8, 8)"
    assert run.data.params["data.training.name"] == trained.folder.name
    assert "eval_accuracy" in run.data.metrics
    assert re.search(r"^  eval_accuracy = \d\.\d{4}$", trained.out, re.M)
    members = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{trained.run_id}'",
    )
    assert len(members) == 2
    # the members were saved under the cache folder's checkpoints/<run id>/
    saved = trained.store / ".genreclf-cache" / "checkpoints" / trained.run_id
    assert sorted(p.name for p in saved.glob("member*.joblib")) == [
        "member0.joblib",
        "member1.joblib",
    ]


def test_train_with_test_size_zero_trains_on_every_file(tiny_demo, module_mlflow):
    """``--test-size 0`` ("0: none"): no held-out part, no evaluation."""
    folder = tiny_demo[0]
    argv = ["train", "--data", str(folder), "--test-size", "0", "--n-members", "1"]
    result = _run([*argv, "--no-model", "--preset", "matched", *TINY])
    assert result.code == 0, result.err
    run_id = re.search(r"^run (\w+) \(train\)", result.out, re.M).group(1)
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["data.training.n_clips"] == "32"  # the whole folder
    assert "data.evaluation.n_clips" not in run.data.params
    assert "eval_accuracy" not in run.data.metrics
    assert run.data.tags["genreclf.preset"] == "matched"  # the preset it started from


def test_train_names_a_genre_with_a_single_file(
    tiny_demo, tmp_path, mlflow_uri, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "music"
    shutil.copytree(tiny_demo[0], folder)
    for extra in sorted((folder / "swing").glob("*.wav"))[1:]:
        extra.unlink()
    result = _run(["train", "--data", str(folder), *TINY])
    assert result.code == 1
    assert result.err.strip().splitlines()[-1] == (
        "genreclf: error: genre 'swing' has a single file: holding out a "
        "stratified 0.25 for evaluation needs at least 2 files per genre; add "
        "files of it, remove it, or hold out nothing (test_size=0, --test-size 0)"
    )


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_fails_fast(tiny_demo, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    start = time.perf_counter()
    result = _run(["train", "--data", str(tiny_demo[0]), *TINY])
    assert result.code == 1
    assert time.perf_counter() - start < 10
    last = result.err.strip().splitlines()[-1]
    assert last.startswith(
        f"genreclf: error: cannot reach the MLflow tracking server at {uri}"
    )
    assert "Traceback" not in result.err
    assert not (tmp_path / ".genreclf-cache").exists()


@pytest.fixture
def folder_with_bad_files(tiny_demo, tmp_path):
    folder = tmp_path / "music"
    shutil.copytree(tiny_demo[0], folder)
    (folder / "rock" / "empty.wav").write_bytes(b"")
    (folder / "folk" / "readme.mp3").write_text("this is text, not audio\n" * 10)
    return folder


def test_train_on_bad_files_fails_with_their_list_or_skips_them(
    folder_with_bad_files, module_mlflow
):
    folder = folder_with_bad_files
    argv = ["train", "--data", str(folder), "--n-members", "1", "--no-model", *TINY]
    result = _run(argv)
    assert result.code == 1
    assert "error: 2 of 34 audio files could not be read:" in result.err
    for name in ("rock/empty.wav", "folk/readme.mp3"):
        assert str(folder / name) in result.err
    assert "Traceback" not in result.err
    result = _run([*argv, "--skip-bad-files"])
    assert result.code == 0, result.err
    assert "skipped 2 unreadable file(s)" in result.out


# --------------------------------------------------------------------------- predict


def test_predict_prints_a_table_of_genres(trained, capsys):
    folder = trained.folder
    one = str(folder / "rock" / "rock.00000.wav")
    assert main(["predict", trained.model_uri, one, str(folder / "folk")]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].split() == ["path", "genre", "top-3"]
    assert len(lines) == 1 + 1 + 4  # header, one file, the 4 clips of folk/
    genres = set(os.listdir(folder)) - {".genreclf-synthetic.json"}
    for line in lines[1:]:
        path, genre, *top = line.split()
        assert os.path.exists(path) and genre in genres
        assert top[0] == genre  # the best of the top 3 is the prediction
        assert len(top) == 6  # three "genre probability," pairs
    assert "Downloading artifacts" not in err


def test_predict_json_and_csv(trained, capsys):
    files = [str(p) for p in sorted((trained.folder / "swing").glob("*.wav"))]
    assert (
        main(["predict", trained.model_uri, *files, "--format", "json", "--top-k", "2"])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in rows] == files
    for row in rows:
        assert len(row["top"]) == 2
        assert row["top"][0]["genre"] == row["genre"]
        assert row["top"][0]["probability"] >= row["top"][1]["probability"]
    assert main(["predict", trained.model_uri, *files, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["path"] for r in table] == files
    assert [r["genre"] for r in table] == [r["genre"] for r in rows]
    assert set(table[0]) == {
        "path",
        "genre",
        "genre_1",
        "probability_1",
        "genre_2",
        "probability_2",
        "genre_3",
        "probability_3",
    }


def test_predict_from_a_local_model_folder(trained, tmp_path, capsys):
    local = mlflow.artifacts.download_artifacts(
        trained.model_uri, dst_path=str(tmp_path)
    )
    one = str(trained.folder / "techno" / "techno.00001.wav")
    assert main(["predict", local, one, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"] == one


def test_predict_reports_a_corrupt_file_after_the_others(trained, tmp_path, capsys):
    good = [str(p) for p in sorted((trained.folder / "rock").glob("*.wav"))[:2]]
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"ID3" + b"\x00" * 64)
    assert main(["predict", trained.model_uri, good[0], str(bad), good[1]]) == 1
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.strip().splitlines()[1:]] == good
    last = err.strip().splitlines()[-1]
    assert last.startswith("genreclf: error: 1 file(s) could not be read: ")
    assert str(bad) in last and "Traceback" not in err


def test_predict_with_a_missing_model(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nothing"), "a.wav"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"genreclf: error: {tmp_path / 'nothing'}: no such model folder, file or "
        "model URI"
    )


def test_predict_on_an_empty_folder(tmp_path, capsys, trained):
    (tmp_path / "empty").mkdir()
    assert main(["predict", trained.model_uri, str(tmp_path / "empty")]) == 1
    assert "no audio files in this folder" in capsys.readouterr().err


@pytest.mark.real_audio
def test_predict_on_real_fma_mp3s(trained, real_audio_dir, tmp_path, capsys):
    fma = real_audio_dir / "fma" / "fma_small"
    files = sorted(str(p) for p in fma.rglob("*.mp3"))
    assert len(files) == 5
    corrupt = tmp_path / "000999.mp3"
    corrupt.write_bytes(Path(files[0]).read_bytes()[:300])
    assert main(["predict", trained.model_uri, str(fma)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert [r.split()[0] for r in rows] == files
    assert main(["predict", trained.model_uri, str(fma), str(corrupt)]) == 1
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1 + 5
    assert str(corrupt) in err.strip().splitlines()[-1]


# --------------------------------------------------------------------------- evaluate


def test_evaluate_a_logged_model_on_a_folder(trained):
    result = _run(
        ["evaluate", trained.model_uri, "--data", str(trained.folder), "--no-progress"]
    )
    assert result.code == 0, result.err
    run_id = re.search(r"^run (\w+) \(evaluate\)", result.out, re.M).group(1)
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.params["data.evaluation.n_clips"] == "32"  # the whole folder
    assert run.data.params["model_uri"] == trained.model_uri
    assert 0 <= run.data.metrics["eval_accuracy"] <= 1


def test_evaluate_a_model_of_real_length_clips(module_mlflow, tiny_demo):
    """The default preset's duration=None: evaluate screens an empty training list."""
    assert TINY[:2] == ["--duration", "1"]
    folder = str(tiny_demo[0])
    argv = ["--n-members", "1", "--experiment-name", "cli-real-length", *TINY[2:]]
    trained = _run(["train", "--data", folder, "--no-progress", *argv])
    assert trained.code == 0, trained.err
    uri = re.search(r"^model: (\S+)", trained.out, re.M).group(1)
    result = _run(["evaluate", uri, "--data", folder, "--no-progress"])
    assert result.code == 0, result.err
    assert re.search(r"^  eval_accuracy = [01]\.\d{4}$", result.out, re.M)


# --------------------------------------------------------------------------- download


def test_download_calls_download_fma(monkeypatch, tmp_path, capsys):
    import genreclf.download

    calls = []

    def fake(subset, dest, progress):
        calls.append((subset, dest, progress))
        return str(tmp_path / "fma")

    monkeypatch.setattr(genreclf.download, "download_fma", fake)
    assert (
        main(
            [
                "download",
                "fma",
                "--subset",
                "medium",
                "--dest",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    assert calls == [("medium", str(tmp_path), False)]
    assert f"ready in {tmp_path / 'fma'}" in capsys.readouterr().out
    assert main(["download", "fma", "--subset", "huge"]) == 2


# --------------------------------------------------------------------------- faults


def _subprocess_env(store):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.integration
def test_sigterm_after_two_members_keeps_them_and_resumes(module_mlflow, tiny_demo):
    """Kill a training after two of three members: both saved, run KILLED."""
    cache = module_mlflow / "sigterm-cache"
    argv = [
        "train",
        "--data",
        str(tiny_demo[0]),
        "--n-members",
        "3",
        "--cache-dir",
        str(cache),
        "--no-model",
        *TINY[:2],
        "--max-epochs",
        "5",
        *TINY[4:],
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "genreclf", *argv],
        cwd=module_mlflow,
        env=_subprocess_env(module_mlflow),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not list(cache.glob("checkpoints/*/member1.joblib")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no second member in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    [folder] = cache.glob("checkpoints/*")
    run_id = folder.name
    saved = sorted(p.name for p in folder.glob("member*.joblib"))
    assert saved[:2] == ["member0.joblib", "member1.joblib"]
    assert f"run {run_id} marked KILLED" in err
    assert f"--resume {run_id}" in err
    client = mlflow.MlflowClient()
    assert client.get_run(run_id).info.status == "KILLED"
    # resume by run id: the local checkpoint folder is found and reused
    result = _run([*argv, "--resume", run_id])
    assert result.code == 0, result.err
    new_id = re.search(r"^run (\w+) \(train\)", result.out, re.M).group(1)
    resumed = client.search_runs(
        [client.get_run(new_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{new_id}' "
        "and tags.genreclf.resumed = 'True'",
    )
    assert len(resumed) == len(saved)


# --------------------------------------------------------------------------- MLproject


@pytest.mark.integration
def test_mlflow_run_main_entry_point(module_mlflow, tiny_demo):
    """``mlflow run . -e main`` in the active environment, on a folder, tiny."""
    client = mlflow.MlflowClient()
    client.create_experiment("project", artifact_location=str(module_mlflow / "art"))
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "run",
        str(ROOT),
        "-e",
        "main",
        "--env-manager",
        "local",
        "--experiment-name",
        "project",
        "-P",
        f"data={tiny_demo[0]}",
        "-P",
        "n-members=2",
        "-P",
        "max-epochs=1",
        "-P",
        f"cache-dir={module_mlflow / 'project-cache'}",
        "-P",
        "set=filters=(4,8,8)",
        "-P",
        "duration=1",
    ]
    proc = subprocess.run(
        cmd,
        cwd=module_mlflow,
        env=_subprocess_env(module_mlflow),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = client.search_runs(
        [client.get_experiment_by_name("project").experiment_id],
        filter_string="tags.mlflow.runName != 'member-0' and "
        "tags.mlflow.runName != 'member-1'",
    )
    assert run.info.status == "FINISHED"
    assert run.data.params["n-members"] == "2"  # MLflow's entry-point parameter
    assert run.data.params["ensemble__n_members"] == "2"  # genreclf's, same run
    assert "eval_accuracy" in run.data.metrics
    assert run.data.tags["genreclf.model_uri"].startswith("models:/")
    assert run.data.tags["genreclf.preset"] == "default"  # which preset it started from
    members = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'",
    )
    assert len(members) == 2


def test_predict_on_only_bad_files_prints_no_empty_table(trained, tmp_path, capsys):
    """Issue 15: an empty table header came before the error."""
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF" + b"\x00" * 40)
    assert main(["predict", trained.model_uri, str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "genreclf: error: 1 file(s) could not be read" in err


def test_evaluate_on_data_sharing_no_genre_fails_before_a_run(trained, tmp_path):
    """Issue 15: scikit-learn's "At least one label ..." and a FAILED run."""
    import shutil

    for i, wav in enumerate(sorted(Path(trained.folder).rglob("*.wav"))[:2]):
        (tmp_path / "zydeco").mkdir(exist_ok=True)
        shutil.copy(wav, tmp_path / "zydeco" / f"{i}.wav")
    client = mlflow.MlflowClient()
    before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    result = _run(["evaluate", trained.model_uri, "--data", str(tmp_path)])
    assert result.code == 1
    assert "shares no genre with the model" in result.err and "zydeco" in result.err
    assert "At least one label" not in result.err
    after = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    assert after == before
