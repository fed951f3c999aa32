"""The champion/challenger rule, on numbers alone: MLflow ``MetricThreshold`` semantics as
``PromotionConfig`` documents them, and what makes a challenger a different model.

"A hair" is 1e-9 relative: far beyond float64 rounding (which the gate treats as a tie, so a
change exactly at the bar as written passes), far below any change anyone configures.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from mlops.domain.config import LOWER_IS_BETTER, METRICS, PromotionConfig, Task
from mlops.domain.gate import decide, feature_set_change
from mlops.domain.schema import Feature, FeatureType, Signature

HAIR = 1e-9


def policy(**changes: Any) -> PromotionConfig:
    """No bar but the one under test."""
    return PromotionConfig(**({"min_relative_change": 0.0, "min_absolute_change": 0.0} | changes))


# (metric, champion, challenger exactly 1 % better)
RELATIVE_AT_BAR = [
    ("rmse", 10.0, 9.9),  # 10 - 9.9 < 0.1 in binary
    ("rmse", 100.0, 99.0),
    ("r2", 0.8, 0.808),
    ("f1_macro", 0.5, 0.505),
]
# (metric, champion, challenger, absolute bar the challenger is exactly at)
ABSOLUTE_AT_BAR = [
    ("rmse", 10.0, 9.75, 0.25),
    ("mae", 0.3, 0.2, 0.1),  # 0.3 - 0.2 < 0.1 in binary
    ("r2", 0.8, 0.85, 0.05),  # 0.85 - 0.8 < 0.05 in binary
    ("f1_macro", 0.7, 0.8, 0.1),
]


def task_of(metric: str) -> Task:
    return "classification" if metric in METRICS["classification"] else "regression"


def a_hair_worse(metric: str, value: float) -> float:
    worse = 1 if metric in LOWER_IS_BETTER else -1
    return value + worse * HAIR * abs(value)


# --- min_relative_change -------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "champion", "challenger"), RELATIVE_AT_BAR)
def test_improvement_exactly_at_min_relative_change_passes(
    metric: str, champion: float, challenger: float
) -> None:
    # Given a challenger exactly 1 % better than production
    rule = policy(metric=metric, min_relative_change=0.01)

    # When the gate decides
    decision = decide(rule, task_of(metric), {metric: challenger}, {metric: champion})

    # Then it passes
    assert decision.passed, decision.reasons


@pytest.mark.parametrize(("metric", "champion", "challenger"), RELATIVE_AT_BAR)
def test_improvement_a_hair_below_min_relative_change_fails(
    metric: str, champion: float, challenger: float
) -> None:
    # Given a challenger a hair less than 1 % better than production
    rule = policy(metric=metric, min_relative_change=0.01)
    short = a_hair_worse(metric, challenger)

    # When the gate decides
    decision = decide(rule, task_of(metric), {metric: short}, {metric: champion})

    # Then it fails, saying by how much it improved and how much is required
    assert not decision.passed
    assert decision.reasons == (
        f"{metric} {short:,.6g} vs production {champion:,.6g} (1.00% better): "
        "the gate requires at least 1.00% better",
    )


# --- min_absolute_change -------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "champion", "challenger", "bar"), ABSOLUTE_AT_BAR)
def test_improvement_exactly_at_min_absolute_change_passes(
    metric: str, champion: float, challenger: float, bar: float
) -> None:
    # Given a challenger better than production by exactly the absolute bar
    rule = policy(metric=metric, min_absolute_change=bar)

    # When the gate decides
    decision = decide(rule, task_of(metric), {metric: challenger}, {metric: champion})

    # Then it passes
    assert decision.passed, decision.reasons


@pytest.mark.parametrize(("metric", "champion", "challenger", "bar"), ABSOLUTE_AT_BAR)
def test_improvement_a_hair_below_min_absolute_change_fails(
    metric: str, champion: float, challenger: float, bar: float
) -> None:
    # Given a challenger a hair short of the absolute bar
    rule = policy(metric=metric, min_absolute_change=bar)
    short = a_hair_worse(metric, challenger)

    # When the gate decides
    decision = decide(rule, task_of(metric), {metric: short}, {metric: champion})

    # Then it fails, naming the metric, both values and the bar
    assert not decision.passed
    (reason,) = decision.reasons
    assert reason.startswith(f"{metric} {short:,.6g} vs production {champion:,.6g} (")
    assert "% better): " in reason
    assert reason.endswith(f": the gate requires an improvement of at least {bar:,.6g}")


def test_a_worse_challenger_fails_both_changes_with_a_negative_improvement() -> None:
    # Given the default policy (1 % relative, no absolute minimum) and a worse challenger
    rule = PromotionConfig()

    # When the gate decides
    decision = decide(rule, "regression", {"rmse": 11.0}, {"rmse": 10.0})

    # Then it fails with a negative improvement, in one reason naming the relative bar
    # (with no absolute minimum configured, "an improvement of at least 0" is left unsaid)
    assert (decision.passed, decision.improvement) == (False, -1.0)
    assert decision.reasons == (
        "rmse 11 vs production 10 (10.00% worse): the gate requires at least 1.00% better",
    )


# --- threshold -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "task", "bar", "past"),
    [
        ("rmse", "regression", 50_000.0, math.nextafter(50_000.0, math.inf)),
        ("r2", "regression", 0.7, math.nextafter(0.7, -math.inf)),
        ("f1_macro", "classification", 0.9, math.nextafter(0.9, -math.inf)),
    ],
)
@pytest.mark.parametrize("at_bar", [True, False])
def test_threshold_is_inclusive_in_the_metrics_direction(
    metric: str, task: Task, bar: float, past: float, at_bar: bool
) -> None:
    # Given a threshold and a first model exactly on it, or one float past it
    rule = policy(metric=metric, threshold=bar)
    value = bar if at_bar else past

    # When the gate decides
    decision = decide(rule, task, {metric: value}, None)

    # Then on the bar passes, past it fails
    assert decision.passed is at_bar


def test_threshold_failure_names_the_metric_value_and_bar() -> None:
    # Given an rmse above its threshold, with a champion it beats
    rule = policy(metric="rmse", threshold=40_000.0)

    # When the gate decides
    decision = decide(rule, "regression", {"rmse": 41_000.0}, {"rmse": 60_000.0})

    # Then it fails on the threshold alone
    assert not decision.passed
    assert decision.reasons == ("rmse 41,000 does not meet the threshold (<= 40,000)",)


# --- the first model -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "task", "naive", "beats"),
    [
        ("rmse", "regression", 80_000.0, math.nextafter(80_000.0, 0.0)),
        ("r2", "regression", 0.0, math.nextafter(0.0, 1.0)),
        ("f1_macro", "classification", 0.25, math.nextafter(0.25, 1.0)),
    ],
)
@pytest.mark.parametrize("ties", [True, False])
def test_first_model_must_strictly_beat_the_naive_baseline(
    metric: str, task: Task, naive: float, beats: float, ties: bool
) -> None:
    # Given no champion, and a challenger equal to or one float better than the naive model
    value = naive if ties else beats

    # When the gate decides
    decision = decide(policy(metric=metric), task, {metric: value}, None, {metric: naive})

    # Then equal fails, better passes
    assert decision.passed is not ties


def test_first_model_no_better_than_naive_says_so_with_both_values() -> None:
    # Given a first model that scores like a model ignoring its inputs
    decision = decide(policy(), "regression", {"rmse": 80_000.0}, None, {"rmse": 80_000.0})

    # Then the reason names the metric and both values
    assert decision.reasons == (
        "rmse 80,000 is no better than a model that ignores its inputs (80,000)",
    )


def test_first_model_beating_naive_must_still_meet_the_threshold() -> None:
    # Given a first model better than naive but short of the threshold
    rule = policy(metric="r2", threshold=0.6)

    # When the gate decides
    decision = decide(rule, "regression", {"r2": 0.5}, None, {"r2": 0.0})

    # Then it fails on the threshold
    assert not decision.passed
    assert decision.reasons == ("r2 0.5 does not meet the threshold (>= 0.6)",)


def test_first_model_that_passes_records_no_champion_and_the_naive_value() -> None:
    # Given a first model better than naive
    decision = decide(policy(), "regression", {"rmse": 30_000.0}, None, {"rmse": 80_000.0})

    # Then it passes, with no champion (so no improvement) and the naive bar recorded
    assert (decision.passed, decision.champion, decision.naive) == (True, None, 80_000.0)
    assert decision.improvement is None
    assert decision.reasons == (
        "first model: rmse 30,000, better than the no-skill baseline 80,000",
    )


# --- a champion value of 0 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("challenger", "passed"),
    [(0.1, True), (0.0, False), (-0.1, False)],
)
def test_relative_change_against_a_zero_champion_requires_strictly_better(
    challenger: float, passed: bool
) -> None:
    # Given production r2 of exactly 0 (relative change undefined) and a 1 % relative bar
    rule = policy(metric="r2", min_relative_change=0.01)

    # When the gate decides
    decision = decide(rule, "regression", {"r2": challenger}, {"r2": 0.0})

    # Then only a strictly better challenger passes (MLflow's fallback)
    assert decision.passed is passed


def test_a_worse_challenger_fails_against_a_zero_champion_even_when_worse_is_tolerated() -> None:
    # Given a policy tolerating some loss, and production at exactly 0
    rule = policy(metric="r2", min_relative_change=-0.5, min_absolute_change=-1.0)

    # When a worse challenger is judged
    decision = decide(rule, "regression", {"r2": -0.1}, {"r2": 0.0})

    # Then it fails: any loss against 0 is an infinite relative loss
    assert not decision.passed
    assert decision.reasons == (
        "r2 -0.1 vs production 0 (-0.1): the gate requires it to be strictly better "
        "(against 0 no relative change exists)",
    )


def test_passing_against_a_zero_champion_reports_the_absolute_change() -> None:
    # Given a challenger better than a zero production value
    decision = decide(policy(metric="r2"), "regression", {"r2": 0.25}, {"r2": 0.0})

    # Then the reason gives the change as a signed number, not an infinite percentage
    assert decision.passed
    assert decision.reasons == ("r2 0.25 vs production 0 (+0.25)",)


# --- missing or NaN metrics ----------------------------------------------------------------


@pytest.mark.parametrize("challenger", [{}, {"f1_macro": math.nan}, {"accuracy": 0.9}])
def test_challenger_without_the_metric_fails_naming_it(challenger: dict[str, float]) -> None:
    # Given a challenger with no usable f1_macro (missing or NaN)

    # When the gate decides, even against no champion
    decision = decide(policy(), "classification", challenger, None)

    # Then it fails, saying which metric is missing
    assert not decision.passed
    assert decision.reasons == ("the challenger has no f1_macro on the holdout",)


@pytest.mark.parametrize("champion", [{"rmse": math.nan}, {"mae": 1.0}])
def test_champion_without_the_metric_is_no_bar_and_says_so(champion: dict[str, float]) -> None:
    # Given a production model whose rmse is missing or NaN
    challenger = {"rmse": 90_000.0}

    # When the gate decides with a naive baseline the challenger does not beat
    decision = decide(policy(), "regression", challenger, champion, {"rmse": 80_000.0})

    # Then it is judged as a first model (against the naive baseline), and says so
    assert not decision.passed
    assert decision.champion is None
    assert decision.reasons[0] == "production has no rmse on the holdout: judged as a first model"


# --- reasons and the record ----------------------------------------------------------------


def test_passing_reason_names_the_metric_both_values_and_the_change() -> None:
    # Given a challenger 10 % better than production
    decision = decide(PromotionConfig(), "regression", {"rmse": 45_000.0}, {"rmse": 50_000.0})

    # Then the reason reads as a sentence about both values
    assert decision.passed
    assert decision.reasons == ("rmse 45,000 vs production 50,000 (10.00% better)",)


def test_decision_record_is_json_ready_and_signs_the_improvement_by_direction() -> None:
    # Given a lower-is-better metric that fell by 5000
    decision = decide(PromotionConfig(), "regression", {"rmse": 45_000.0}, {"rmse": 50_000.0})

    # When it is recorded
    record = decision.as_dict()

    # Then the improvement is positive (better), the reasons a list
    assert record == {
        "passed": True,
        "metric": "rmse",
        "greater_is_better": False,
        "challenger": 45_000.0,
        "champion": 50_000.0,
        "naive": None,
        "improvement": 5_000.0,
        "reasons": ["rmse 45,000 vs production 50,000 (10.00% better)"],
        "outcome": "passed",
        "sets": [],
        "label_check": None,
    }


# --- feature_set_change --------------------------------------------------------------------

PRODUCTION = Signature(
    (
        Feature("sqft", "numeric", min=100.0),
        Feature("bedrooms", "numeric"),
        Feature("location", "categorical", categories=("downtown", "suburbs")),
    )
)


def signature(*features: tuple[str, FeatureType]) -> Signature:
    return Signature(tuple(Feature(name, kind) for name, kind in features))


def test_same_features_are_no_change() -> None:
    # Given the production features, bounds dropped
    same = signature(("sqft", "numeric"), ("bedrooms", "numeric"), ("location", "categorical"))

    # Then the challenger is a new version of the same model
    assert feature_set_change(PRODUCTION, same) is None


def test_new_categories_are_no_change() -> None:
    # Given the same features, with a category production never saw
    grown = Signature(
        (
            *PRODUCTION.features[:2],
            Feature("location", "categorical", categories=("downtown", "riverside", "suburbs")),
        )
    )

    # Then new data brought a new value, not a new model
    assert feature_set_change(PRODUCTION, grown) is None


@pytest.mark.parametrize(
    ("challenger", "change"),
    [
        (
            signature(
                ("sqft", "numeric"),
                ("bedrooms", "numeric"),
                ("location", "categorical"),
                ("garage", "numeric"),
            ),
            "added garage",
        ),
        (signature(("sqft", "numeric"), ("location", "categorical")), "removed bedrooms"),
        (
            signature(
                ("sqft", "numeric"), ("bedrooms", "categorical"), ("location", "categorical")
            ),
            "changed type of bedrooms (numeric -> categorical)",
        ),
        (
            signature(("bedrooms", "numeric"), ("sqft", "numeric"), ("location", "categorical")),
            "reordered features",
        ),
    ],
    ids=["added", "removed", "retyped", "reordered"],
)
def test_each_kind_of_feature_change_is_named(challenger: Signature, change: str) -> None:
    # Given a challenger whose features differ from production in one way

    # When the feature sets are compared
    why = feature_set_change(PRODUCTION, challenger)

    # Then the change is named
    assert why == change


def test_several_changes_are_all_named() -> None:
    # Given a challenger that drops one feature, adds another and retypes a third
    challenger = signature(
        ("sqft", "categorical"), ("location", "categorical"), ("garage", "numeric")
    )

    # Then each change is listed
    assert feature_set_change(PRODUCTION, challenger) == (
        "added garage; removed bedrooms; changed type of sqft (numeric -> categorical)"
    )
