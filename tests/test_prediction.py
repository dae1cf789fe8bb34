"""genreclf.prediction: one table of predictions, and its text, JSON and CSV."""

import csv
import io
import json
import os
import warnings

import numpy as np
import pytest
from conftest import TINY_OPTIONS

from genreclf.exceptions import FeatureExtractionError
from genreclf.pipeline import build_pipeline
from genreclf.prediction import (
    PredictionTable,
    format_bad_files,
    format_predictions,
    predict_frame,
    predict_table,
)


@pytest.fixture(scope="module")
def fitted(tiny_demo, tmp_path_factory):
    """A one-member tiny pipeline fitted on half the tiny demo (no cache)."""
    _, paths, y = tiny_demo
    pipeline = build_pipeline(random_state=0, n_members=1, **TINY_OPTIONS)
    pipeline.fit(np.asarray(paths[::2], dtype=object), np.asarray(y[::2]))
    return pipeline, paths[1::2]


def _table():
    return PredictionTable(
        paths=["a.wav", "long/name.wav"],
        classes=["pop", "rock", "jazz"],
        proba=np.array([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]]),
        bad={"c.wav": "empty file (0 bytes)"},
    )


def test_table_rows_and_frame():
    table = _table()
    assert table.genres == ["rock", "pop"]
    rows = table.rows(top_k=2)
    assert rows[0] == {
        "path": "a.wav",
        "genre": "rock",
        "top": [
            {"genre": "rock", "probability": 0.7},
            {"genre": "pop", "probability": 0.2},
        ],
    }
    assert [len(r["top"]) for r in table.rows(top_k=10)] == [3, 3]  # at most all
    frame = table.frame()
    assert list(frame.columns) == ["genre", "pop", "rock", "jazz"]
    assert frame["genre"].tolist() == ["rock", "pop"]
    empty = PredictionTable([], ["pop"], np.zeros((0, 1))).frame()
    assert list(empty.columns) == ["genre", "pop"] and len(empty) == 0


def test_formats():
    table = _table()
    lines = format_predictions(table, "text", top_k=2).splitlines()
    assert lines[0].split() == ["path", "genre", "top-2"]
    assert lines[1].split() == ["a.wav", "rock", "rock", "0.70,", "pop", "0.20"]
    # columns are aligned on the longest path
    assert lines[1].index("rock") == lines[2].index("pop") == len("long/name.wav") + 2
    assert json.loads(format_predictions(table, "json", top_k=1)) == table.rows(1)
    rows = list(csv.DictReader(io.StringIO(format_predictions(table, "csv"))))
    assert rows[1] == {
        "path": "long/name.wav",
        "genre": "pop",
        "genre_1": "pop",
        "probability_1": "0.5000",
        "genre_2": "jazz",
        "probability_2": "0.4000",
        "genre_3": "rock",
        "probability_3": "0.1000",
    }
    assert format_bad_files(table.bad) == (
        "1 file(s) could not be read: c.wav (empty file (0 bytes))"
    )
    with pytest.raises(ValueError, match="'fmt' parameter .* Got 'xml' instead"):
        format_predictions(table, "xml")


def test_predict_table_lists_bad_files_apart(fitted, tmp_path):
    pipeline, paths = fitted
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    asked = [paths[0], str(empty), paths[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the bad file is listed, not warned about
        table = predict_table(pipeline, asked)
    assert table.paths == [paths[0], paths[1]]
    assert table.bad == {str(empty): "empty file (0 bytes)"}
    expected = pipeline.predict_proba(np.asarray(paths[:2], dtype=object))
    np.testing.assert_allclose(table.proba, expected)
    assert table.genres == list(pipeline.predict(np.asarray(paths[:2], dtype=object)))
    assert pipeline.named_steps["mfcc"].memory is None  # the call's cache is gone
    cache = tmp_path / "cache"
    predict_table(pipeline, paths[:1], memory=cache)
    assert os.listdir(cache) and pipeline.named_steps["mfcc"].memory is None


def test_predict_frame_raises_on_bad_files(fitted, tmp_path):
    pipeline, paths = fitted
    frame = predict_frame(pipeline, paths[:3])
    assert list(frame.columns) == ["genre", *pipeline.classes_]
    assert frame.iloc[:, 1:].sum(axis=1).to_numpy() == pytest.approx(1)
    missing = str(tmp_path / "missing.wav")
    with pytest.raises(FeatureExtractionError, match="missing.wav: file not found"):
        predict_frame(pipeline, [paths[0], missing])
    with pytest.raises(ValueError, match="'on_error' parameter"):
        predict_table(pipeline, paths, on_error="ignore")
    assert predict_table(pipeline, []).paths == []
