"""The demo report's quality chart: live quality from the labels in, the ESTIMATE from traffic,
the breach bar, and where the estimate led the labels."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_cli.demo.digest import verdict_lines
from mlops_cli.demo.quality_chart import evaluations, led, quality_chart


def digest(
    live: float | None,
    estimate: float | None,
    *,
    live_breach: bool = False,
    estimate_breach: bool = False,
    metric: str = "mape",
    estimated_metric: str | None = None,
    holdout: float = 0.08,
) -> dict[str, Any]:
    return {
        "version": "4",
        "quality_metric": metric,
        "live_quality": live,
        "holdout_quality": holdout,
        "quality_tolerance": 0.2,
        "quality_breach": live_breach,
        "labels": 1210,
        "estimated_metric": estimated_metric or metric,
        "estimated_quality": estimate,
        "estimated_interval": None if estimate is None else [estimate * 0.85, estimate * 1.3],
        "estimated_holdout": holdout,
        "estimate_breach": estimate_breach,
        "dataset_drift": False,
        "drifted": [],
        "drift_share": 0.0,
        "retrain_requested": live_breach,
        "reasons": [],
        "status": "ok",
    }


def months(*pairs: tuple[dict[str, Any], dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"month": i, "mid_month_drift": mid, "drift": end} for i, (mid, end) in enumerate(pairs)
    ]


CALM = digest(0.08, 0.081)
# The estimate breaches at month 1 mid, while the labels in (of the half before) do not yet;
# the labels breach at month 1 end.
WARNED = digest(0.079, 0.121, estimate_breach=True)
CONFIRMED = digest(0.112, 0.128, live_breach=True, estimate_breach=True)


def test_the_estimate_leads_when_it_breaches_before_the_labels_do() -> None:
    _, points = evaluations(months((CALM, CALM), (WARNED, CONFIRMED)))
    [(warned, confirmed)] = led(points)
    assert (warned.month, warned.half) == (1, "mid")
    assert (confirmed.month, confirmed.half) == (1, "end")
    svg = quality_chart(months((CALM, CALM), (WARNED, CONFIRMED)))
    assert "ESTIMATE warned (month 1 mid-month); labels confirmed at month 1 end" in svg


def test_no_lead_when_the_labels_breach_first_or_never() -> None:
    # Labels and estimate together: the estimate was not ahead
    _, together = evaluations(months((CALM, CONFIRMED)))
    assert led(together) == []
    # An estimate breach the labels never confirm is not called a lead
    _, alone = evaluations(months((CALM, WARNED), (WARNED, WARNED)))
    assert led(alone) == []
    # A warning kept over two evaluations is one lead, from its first
    _, kept = evaluations(months((WARNED, WARNED), (CONFIRMED, CONFIRMED)))
    assert [(a.month, a.half) for a, _ in led(kept)] == [(0, "mid")]


def test_a_warning_that_lapsed_or_a_later_versions_loss_is_no_lead() -> None:
    # The estimate warned, then stopped warning, then the labels breached: not that warning's
    lapsed = [WARNED, CALM, CONFIRMED]
    _, points = evaluations(months((lapsed[0], lapsed[1]), (lapsed[2], lapsed[2])))
    assert led(points) == []
    # The labels that breached were of another version (retrained meanwhile)
    _, points = evaluations(months((CALM, WARNED), (CONFIRMED | {"version": "5"}, CALM)))
    assert led(points) == []


def test_a_partial_summary_still_draws() -> None:
    # Months without their number, an interval of one value: drawn, never a crash
    odd = digest(0.08, 0.09) | {"estimated_interval": [0.085]}
    svg = quality_chart([{"drift": odd}, {"mid_month_drift": WARNED, "drift": CONFIRMED}])
    assert svg.count("<polyline") == 2
    _, points = evaluations([{"drift": odd}])
    assert (points[0].month, points[0].low, points[0].high) == (0, 0.085, None)


def test_an_estimate_of_another_metric_is_not_drawn_against_live_quality() -> None:
    other = digest(0.08, 31_000.0, estimated_metric="rmse")
    _, points = evaluations(months((other, other)))
    assert all(p.estimate is None and p.low is None for p in points)
    svg = quality_chart(months((other, other)))
    assert svg.count("<polyline") == 1  # live quality only
    assert "ESTIMATED MAPE (no labels), month" not in svg


@pytest.mark.parametrize(
    ("metric", "holdout", "bar"),
    [("mape", 0.08, 0.096), ("rmse", 30_000.0, 36_000.0), ("f1_macro", 0.9, 0.72)],
)
def test_the_breach_bar_is_on_the_worse_side_in_both_directions(
    metric: str, holdout: float, bar: float
) -> None:
    _, [point, _] = evaluations(
        months((digest(holdout, holdout, metric=metric, holdout=holdout),) * 2)
    )
    assert point.bar == pytest.approx(bar)


def test_the_chart_shows_percent_for_mape_and_rings_breaches() -> None:
    svg = quality_chart(months((CALM, CALM), (WARNED, CONFIRMED)))
    assert svg.count("<polyline") == 2  # live and ESTIMATED
    assert "ESTIMATED MAPE (no labels), month 1 mid: 12.1% (breach)" in svg
    assert "live MAPE (labels in), month 1 end: 11.2% (breach)" in svg
    assert "live MAPE (labels in), month 1 mid: 7.9%</title>" in svg
    assert ">10%</text>" in svg  # the axis in percent


def test_an_evaluation_without_data_still_renders() -> None:
    assert "no data" in quality_chart([])
    assert "no data" in quality_chart([{"month": 0}])


def test_the_console_never_says_no_drift_under_an_estimated_loss() -> None:
    lines = verdict_lines(WARNED, month_end=False)
    kinds = [kind for kind, _, _ in lines]
    assert "calm" not in kinds
    assert ("estimate", "estimate") in [(k, short) for k, _, short in lines]
    [text] = [t for k, t, _ in lines if k == "estimate"]
    assert text.endswith("before the labels say so")
    # Once the labels agree, the estimate is no longer news in the month's table
    agreed = [(k, t, s) for k, t, s in verdict_lines(CONFIRMED, month_end=True) if k == "estimate"]
    assert agreed[0][1].endswith("the labels in agree")
    assert agreed[0][2] == ""
    assert [k for k, _, _ in verdict_lines(CALM, month_end=True)] == ["calm"]
    # No labels judged yet (late labels): still never "no drift" under an estimated loss
    early = verdict_lines(WARNED | {"live_quality": None}, month_end=False)
    assert "calm" not in [k for k, _, _ in early]
    assert ("note", "no labels judged yet", "") in early
