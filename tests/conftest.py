"""Shared fixtures: seeding, generated audio, the real-recordings folder, MLflow."""

import os
import random
from pathlib import Path

import numpy as np
import pytest

REAL_AUDIO_ENV = "GENRECLF_REAL_AUDIO"


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed Python, NumPy and torch before every test."""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def real_audio_dir():
    """The folder of real recordings (``$GENRECLF_REAL_AUDIO``); skip when absent."""
    value = os.environ.get(REAL_AUDIO_ENV)
    if not value:
        pytest.skip(f"{REAL_AUDIO_ENV} is not set: real-recording tests skipped")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"{REAL_AUDIO_ENV}={value} is not a folder: real-recording tests skipped")
    return path


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch):
    """Point MLflow at a temporary SQLite store and artifact folder, never the tree."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", str(tmp_path / "artifacts"))
    return uri
