"""Every error and warning of genreclf derives from genreclf.GenreclfError."""

import importlib
import inspect
import pickle
import pkgutil

import pytest

import genreclf
from genreclf import exceptions


def _package_modules():
    names = ["genreclf"]
    for info in pkgutil.walk_packages(genreclf.__path__, "genreclf."):
        if info.name.split(".")[-1] not in ("__main__",):
            names.append(info.name)
    return names


def _error_classes():
    """``{qualified name: class}`` of every exception class the package defines."""
    found = {}
    for name in _package_modules():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # an optional dependency that is absent
            pytest.skip(f"{name} cannot be imported here: {exc}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith(
                "genreclf"
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_class_derives_from_genreclf_error():
    classes = _error_classes()
    # the ones the package has always had are all found
    for name in exceptions.__all__:
        assert f"genreclf.exceptions.{name}" in classes
    outside = sorted(
        n for n, c in classes.items() if not issubclass(c, exceptions.GenreclfError)
    )
    assert outside == [], f"not a GenreclfError: {outside}"
    # ... and defined once: the old modules re-export the same classes
    strays = sorted(n for n in classes if not n.startswith("genreclf.exceptions."))
    assert strays == [], f"defined outside genreclf.exceptions: {strays}"


def test_standard_bases_are_kept():
    assert genreclf.GenreclfError is exceptions.GenreclfError
    assert issubclass(genreclf.AudioLoadError, ValueError)
    assert issubclass(genreclf.FeatureExtractionError, genreclf.AudioLoadError)
    assert issubclass(genreclf.TrackingServerError, RuntimeError)
    assert issubclass(genreclf.DownloadError, OSError)
    assert issubclass(genreclf.ChecksumError, ValueError)
    assert issubclass(genreclf.DatasetWarning, UserWarning)
    assert not issubclass(genreclf.TrainingInterrupted, KeyboardInterrupt)


def test_old_import_locations_name_the_same_classes():
    from genreclf.audio import AudioLoadError
    from genreclf.datasets import DatasetWarning
    from genreclf.download import ChecksumError, DownloadError
    from genreclf.features import FeatureExtractionError

    assert AudioLoadError is exceptions.AudioLoadError
    assert FeatureExtractionError is exceptions.FeatureExtractionError
    assert DatasetWarning is exceptions.DatasetWarning
    assert DownloadError is exceptions.DownloadError
    assert ChecksumError is exceptions.ChecksumError


def test_one_except_clause_catches_them_and_they_pickle(tmp_path):
    from genreclf.audio import load_audio

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(genreclf.GenreclfError, match="empty file") as info:
        load_audio(empty)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is exceptions.AudioLoadError and str(again) == str(info.value)


def test_exports_are_listed_and_lazy():
    import subprocess
    import sys

    for name in exceptions.__all__:
        assert name in genreclf.__all__
    code = (
        "import sys, genreclf; genreclf.GenreclfError; "
        "print(sorted(m for m in ('sklearn', 'torch', 'mlflow', 'librosa') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
