"""Batch capture lines: the column-at-a-time encoder writes exactly the rows the logger's
format has (``batch_capture_rows``), for regressors and classifiers, odd names included."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlops.domain.batch_capture import batch_capture_key, batch_capture_rows, capture_jsonl
from mlops.domain.batch_job import BatchJob
from mlops.domain.capture import is_live
from mlops.domain.scoring import Scores

FEATURES = ["sqft", 'odd "name" 100%s', "location"]
COLUMNS = {
    "sqft": np.asarray([1850.0, 0.1, -3e-7]),
    'odd "name" 100%s': np.asarray([1.0, 2.5, 1e22]),
    "location": np.asarray(["riverside", 'quo"te\\', "Zürich"], dtype=object),
}
IDS = [
    "0190a1b2-0000-7000-8000-000000000001",
    "0190a1b2-0000-7000-8000-000000000002",
    "0190a1b2-0000-7000-8000-000000000003",
]


def job(model_version: str = "3") -> BatchJob:
    return BatchJob(
        "job-1",
        "b",
        "batch/x.csv",
        "e",
        None,
        10,
        "house-prices",
        model_version,
        "lambda",
        1_796_634_902_481,
    )


@pytest.mark.parametrize(
    "scores",
    [
        Scores(values=[412345.6, 0.1 + 0.2, 1e-300]),
        Scores(
            values=["yes", "no", "yes"],
            probabilities=np.asarray([[0.25, 0.75], [0.9, 0.1], [1 / 3, 2 / 3]], dtype=np.float32),
            classes=("no", "yes"),
        ),
        Scores(
            values=[1, 0, 1],
            probabilities=np.asarray([[0.2, 0.8], [0.6, 0.4], [0.0, 1.0]], dtype=np.float32),
            classes=(0, 1),
        ),
    ],
    ids=["regression", "string classes", "integer classes"],
)
def test_the_fast_lines_are_the_capture_rows(scores: Scores) -> None:
    text = capture_jsonl(job(), FEATURES, COLUMNS, scores, IDS)
    parsed = [json.loads(line) for line in text.splitlines()]
    assert parsed == batch_capture_rows(job(), FEATURES, COLUMNS, scores, IDS)
    assert all(r["source"] == "batch" and not is_live(r) for r in parsed)
    assert all(line.startswith('{"prediction_id":"') for line in text.splitlines())


def test_a_non_finite_prediction_is_written_as_null() -> None:
    scores = Scores(values=[1.0, math.nan, math.inf])
    parsed = [
        json.loads(x) for x in capture_jsonl(job(), FEATURES, COLUMNS, scores, IDS).splitlines()
    ]
    assert [r["prediction"] for r in parsed] == [1.0, None, None]


def test_batch_capture_objects_sit_in_the_capture_hour_under_their_own_name() -> None:
    assert batch_capture_key(job(), 50_001) == (
        "captures/model=house-prices/version=3/dt=2026-12-07/hour=09/"
        "batch-job-1-000000050001.jsonl.gz"
    )


def test_a_classifiers_part_has_a_probability_column_per_class() -> None:
    import csv
    import io

    from mlops.domain.batch_job import predictions_csv
    from mlops.domain.batch_rows import ValidChunk

    chunk = ValidChunk(
        rows=np.asarray([7, 8, 9]),
        ids=["a", "b,c", "d"],
        valid=np.asarray([True, False, True]),
        columns={},
    )
    scores = Scores(
        values=["no", "yes"],
        probabilities=np.asarray([[0.75, 0.25], [0.1, 0.9]], dtype=np.float32),
        classes=("no", "yes"),
    )
    text = predictions_csv(chunk, scores, "4", "loan", IDS[:2])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "row",
        "loan",
        "prediction_id",
        "prediction",
        "probability_no",
        "probability_yes",
        "model_version",
    ]
    assert [(r["row"], r["loan"], r["prediction"]) for r in rows] == [
        ("7", "a", "no"),
        ("9", "d", "yes"),
    ]
    assert (rows[1]["probability_yes"], rows[1]["model_version"]) == ("0.900000", "4")
