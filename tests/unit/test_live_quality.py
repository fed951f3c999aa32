"""Live quality: joining late labels to predictions and judging the metric against the holdout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops.domain.quality import join, measure

HOUR = 3_600_000
DELAY = 72 * HOUR


def capture(pid: str, ts: int, prediction: Any, version: str = "1", **extra: Any) -> dict[str, Any]:
    return {"prediction_id": pid, "ts": ts, "version": version, "prediction": prediction} | extra


def label(pid: str, ts: int, actual: Any) -> dict[str, Any]:
    return {"prediction_id": pid, "ts": ts, "actual": actual, "model": "m"}


def test_the_last_label_wins_and_late_or_early_labels_are_not_joined() -> None:
    captures = [capture("a", 0, 10.0), capture("b", 0, 20.0), capture("c", 0, 30.0)]
    feedback = [
        label("a", 1, 11.0),
        label("a", 5, 12.0),  # a correction: the later label counts
        label("b", DELAY, 21.0),  # exactly at the delay: joined
        label("c", DELAY + 1, 31.0),  # one ms past it: not joined
        label("zzz", 3, 1.0),  # a prediction never captured
    ]
    joined = join(captures, feedback, label_delay_ms=DELAY)
    assert joined.predictions == [10.0, 20.0]
    assert joined.actuals == [12.0, 21.0]
    assert (joined.captured, joined.labels, joined.unmatched_labels) == (3, 5, 2)


def test_a_label_older_than_its_prediction_is_not_joined_and_versions_are_separate() -> None:
    captures = [capture("a", 100, 1.0), capture("b", 100, 2.0, version="2")]
    feedback = [label("a", 99, 1.0), label("b", 101, 2.5)]
    assert join(captures, feedback, label_delay_ms=DELAY).actuals == [2.5]
    assert join(captures, feedback, version="1", label_delay_ms=DELAY).actuals == []
    assert join(captures, feedback, version="2", label_delay_ms=DELAY).actuals == [2.5]


def regression_joined(n: int, noise: float, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    actual = rng.normal(300_000, 50_000, n)
    predicted = actual + rng.normal(0, noise, n)
    captures = [capture(f"p{i}", i * 60_000, float(predicted[i])) for i in range(n)]
    feedback = [label(f"p{i}", i * 60_000 + 1, float(actual[i])) for i in range(n)]
    return join(captures, feedback, label_delay_ms=DELAY), actual, predicted


def test_regression_quality_matches_scikit_learn_and_is_bucketed_by_hour() -> None:
    joined, actual, predicted = regression_joined(150, 20_000)
    result = measure(
        joined,
        task="regression",
        classes=(),
        metric="rmse",
        greater_is_better=False,
        holdout=20_000.0,
        tolerance=0.2,
        min_labels=50,
    )
    assert result.value == pytest.approx(np.sqrt(skm.mean_squared_error(actual, predicted)))
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(actual, predicted))
    # 150 predictions a minute apart: three hourly points, 60 + 60 + 30 labels
    assert [p["labels"] for p in result.over_time] == [60, 60, 30]
    assert result.over_time[0]["start"] == "1970-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("holdout", "breach"),
    [
        (20_000.0, False),  # about as good as the holdout
        (10_000.0, True),  # twice as bad
    ],
)
def test_a_breach_is_live_error_worse_than_the_holdout_beyond_the_tolerance(
    holdout: float, breach: bool
) -> None:
    joined, _, _ = regression_joined(200, 20_000)
    result = measure(
        joined,
        task="regression",
        classes=(),
        metric="rmse",
        greater_is_better=False,
        holdout=holdout,
        tolerance=0.2,
        min_labels=50,
    )
    assert result.breach is breach
    assert "vs holdout" in result.reason


def test_the_tolerance_bound_is_exclusive() -> None:
    joined, _, _ = regression_joined(200, 20_000)
    live = measure(
        joined, task="regression", classes=(), metric="rmse", greater_is_better=False,
        holdout=None, tolerance=0.2, min_labels=1,
    ).value  # fmt: skip
    assert live is not None

    def judged(holdout: float) -> bool:
        return measure(
            joined, task="regression", classes=(), metric="rmse", greater_is_better=False,
            holdout=holdout, tolerance=0.25, min_labels=1,
        ).breach  # fmt: skip

    # live = holdout * 1.25: exactly 25 % worse is not a breach; a hair more is
    assert not judged(live / 1.25 * (1 + 1e-12))
    assert judged(live / 1.25 * (1 - 1e-9))


def test_higher_is_better_metrics_breach_downwards() -> None:
    joined, actual, predicted = regression_joined(200, 20_000)
    r2 = skm.r2_score(actual, predicted)
    common: dict[str, Any] = {
        "task": "regression", "classes": (), "metric": "r2", "greater_is_better": True,
        "tolerance": 0.1, "min_labels": 10,
    }  # fmt: skip
    assert measure(joined, holdout=r2 / 0.85, **common).breach  # live 15 % below the holdout
    assert not measure(joined, holdout=r2 / 0.95, **common).breach  # 5 % below


def test_too_few_labels_are_reported_not_judged() -> None:
    joined, _, _ = regression_joined(50, 90_000)
    common: dict[str, Any] = {
        "task": "regression", "classes": (), "metric": "rmse", "greater_is_better": False,
        "holdout": 1.0, "tolerance": 0.2,
    }  # fmt: skip
    assert measure(joined, min_labels=50, **common).breach  # exactly enough: judged
    short = measure(joined, min_labels=51, **common)
    assert not short.breach
    assert not short.enough_labels
    assert "fewer than the 51" in short.reason


def test_no_labels_is_an_empty_result() -> None:
    result = measure(
        join([], [], label_delay_ms=DELAY), task="regression", classes=(), metric="rmse",
        greater_is_better=False, holdout=1.0, tolerance=0.2, min_labels=1,
    )  # fmt: skip
    assert (result.value, result.labels, result.breach) == (None, 0, False)


def test_classification_quality_uses_the_captured_probabilities() -> None:
    rng = np.random.default_rng(3)
    classes = ["churn", "stay"]
    actual = rng.choice(classes, 300)
    p_stay = np.clip(np.where(actual == "stay", 0.7, 0.3) + rng.normal(0, 0.2, 300), 0.01, 0.99)
    predicted = np.where(p_stay >= 0.5, "stay", "churn")
    captures = [
        capture(f"p{i}", i, predicted[i], probabilities={"churn": 1 - p_stay[i], "stay": p_stay[i]})
        for i in range(300)
    ]
    feedback = [label(f"p{i}", i + 1, actual[i]) for i in range(300)]
    result = measure(
        join(captures, feedback, label_delay_ms=DELAY), task="classification", classes=classes,
        metric="f1_macro", greater_is_better=True, holdout=0.9, tolerance=0.1, min_labels=50,
    )  # fmt: skip
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted))
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(actual == "stay", p_stay))
    assert result.value == pytest.approx(skm.f1_score(actual, predicted, average="macro"))
