"""The demo's HTML report: one self-contained page from the run's summary."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from mlops_cli.demo.report import error_chart, feature_heatmap, render_demo_html


def month(
    number: int,
    system: float,
    static: float,
    *,
    share: float = 0.0,
    breach: bool = False,
    drift: bool = False,
    changes: list[dict[str, str]] | None = None,
    events: list[str] | None = None,
) -> dict[str, Any]:
    name = f"20261129T04{number:02d}00Z-v1"
    # Mid-month, the ESTIMATE breaches in the shocked month while the labels in do not yet
    mid = {
        "quality_metric": "mape",
        "live_quality": 0.07,
        "holdout_quality": 0.07,
        "quality_tolerance": 0.2,
        "quality_breach": False,
        "estimated_metric": "mape",
        "estimated_quality": 0.11 if breach else 0.07,
        "estimated_interval": [0.09, 0.14] if breach else [0.064, 0.078],
        "estimate_breach": breach,
    }
    return {
        "month": number,
        "market": "calm: prices +1%" if number else "the market v1 is trained on",
        "serving": "v1",
        "rmse_system": system,
        "rmse_static": static,
        "drift": {
            "report": name,
            "report_html": f"drift/{name}.html",
            "status": "drift" if drift else "ok",
            "dataset_drift": drift,
            "drift_share": share,
            "drift_share_threshold": 0.5,
            "quality_breach": breach,
            "feature_scores": {"sqft": 0.3 + share * 4, "interest_rate": 10.0 if breach else 0.2},
            # live quality from the labels in, and the ESTIMATE before labels (DLE)
            "quality_metric": "mape",
            "live_quality": 0.1 if breach else 0.07,
            "holdout_quality": 0.07,
            "quality_tolerance": 0.2,
            "estimated_metric": "mape",
            "estimated_quality": 0.12 if breach else 0.071,
            "estimated_interval": [0.1, 0.15] if breach else [0.065, 0.08],
            "estimate_breach": breach,
        },
        "mid_month_drift": mid,
        "events": events or [],
        "production_changes": changes or [],
    }


def example_summary() -> dict[str, Any]:
    """Four months: calm, calm, a shock caught with a canary started, the canary promoted."""
    months = [
        month(0, 26_424, 26_424),
        month(1, 25_415, 25_415),
        month(
            2,
            67_329,
            67_329,
            share=0.11,
            breach=True,
            changes=[{"label": "canary v2", "kind": "canary", "at": "end"}],
            events=["quality loss", "retrain requested", "v2 trained", "canary v2 30%"],
        ),
        month(
            3,
            39_416,
            63_645,
            share=0.56,
            drift=True,
            changes=[{"label": "v2", "kind": "promoted", "at": "mid"}],
            events=["v2 promoted"],
        ),
    ]
    return {
        "months": months,
        "versions_promoted": 1,
        "rollbacks": 0,
        "drift_detected_months": [2, 3],
        "rmse_system_last_month": 39_416,
        "rmse_static_last_month": 63_645,
        "rmse_v1_month0": 26_424,
        "seconds": 61.2,
        "drift_reports": [
            {
                "name": m["drift"]["report"],
                "html": m["drift"]["report_html"],
                "json": f"drift/{m['drift']['report']}.json",
                "verdict": f"month {m['month']}, month end: {m['drift']['status']}",
            }
            for m in months
        ],
        "rollout_reports": [
            {"name": "r1", "json": "rollout/r1.json", "verdict": "canary v2: promote (done)"}
        ],
        "settings": {"seed": 0, "months": 4},
    }


@pytest.fixture
def summary() -> dict[str, Any]:
    return example_summary()


class Page(HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[str] = []
        self.row_heads: list[str] = []
        self.text: list[str] = []
        self._row_head = False
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        self._row_head = tag == "th" and ("scope", "row") in attrs

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._row_head = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row_head:
            self.row_heads.append(data)


def test_the_page_leads_with_the_outcome_and_holds_the_charts_and_a_row_per_month(
    summary: dict[str, Any],
) -> None:
    page = Page(render_demo_html(summary))
    text = " ".join(page.text)
    assert "the system's live RMSE is 39,416, the never-retrained model's 63,645" in text
    assert "(\u221238 %)" in text  # a true minus sign, as the drift report writes it
    # error over time, live and estimated quality, drift share, feature heat map
    assert page.tags.count("svg") == 4
    assert page.row_heads == ["0", "1", "2", "3"]
    assert "ESTIMATE warned (month 2 mid-month); labels confirmed at month 2 end" in text
    assert "script" not in page.tags


def test_every_drift_report_and_rollout_verdict_is_linked_relative_to_the_page(
    summary: dict[str, Any],
) -> None:
    page = Page(render_demo_html(summary))
    for m in summary["months"]:
        assert m["drift"]["report_html"] in page.links
        assert f"drift/{m['drift']['report']}.json" in page.links
    assert "rollout/r1.json" in page.links
    assert all(not re.match(r"^[a-z]+://", link) for link in page.links)


def test_nothing_is_fetched_the_page_is_self_contained(summary: dict[str, Any]) -> None:
    markup = render_demo_html(summary)
    assert "default-src 'none'" in markup
    assert not re.search(r"""(src|href)=["']https?:""", markup)


def test_error_chart_draws_both_series_and_marks_production_changes(
    summary: dict[str, Any],
) -> None:
    svg = error_chart(summary["months"])
    assert svg.count("<polyline") == 2  # the system and the twin: measured, both
    assert svg.count("<circle") == 2 * len(summary["months"])
    assert "ESTIMATED" not in svg  # estimates have their own chart, in their own metric
    assert ">canary v2</text>" in svg
    assert ">v2</text>" in svg


def test_heatmap_has_a_cell_per_feature_and_month(summary: dict[str, Any]) -> None:
    svg = feature_heatmap(summary["months"])
    assert svg.count("<rect") == 2 * 4 + 3  # features x months, and the legend
    assert "interest_rate, month 2: 10.0 x its threshold" in svg


def test_names_from_the_run_are_escaped(summary: dict[str, Any]) -> None:
    hostile = copy.deepcopy(summary)
    hostile["months"][0]["events"] = ["<script>alert(1)</script>"]
    hostile["months"][0]["drift"]["feature_scores"] = {"<img src=x onerror=alert(1)>": 1.0}
    markup = render_demo_html(hostile)
    assert "<script>" not in markup
    assert "<img" not in markup
    assert "&lt;script&gt;" in markup


def test_an_empty_or_partial_summary_still_renders() -> None:
    # A run that stopped early: no months, no drift, no numbers.
    page = Page(render_demo_html({}))
    assert page.tags.count("svg") == 4
    assert "No drift reports were written." in " ".join(page.text)
    partial = {"months": [{"month": 0, "rmse_system": None, "rmse_static": float("nan")}]}
    assert "<table>" in render_demo_html(partial)


def test_a_month_s_estimate_breach_is_said_as_an_estimate() -> None:
    from mlops_cli.demo.digest import estimate_text

    drift = {
        "estimate_breach": True,
        "estimated_metric": "rmse",
        "estimated_quality": 61_000.0,
        "estimated_interval": [52_000.0, 70_000.0],
    }
    assert estimate_text(drift) == (
        "ESTIMATED RMSE 61,000 (95% interval 52,000 to 70,000) from traffic alone: worse "
        "with confidence"
    )
    assert estimate_text(drift | {"estimated_holdout": 48_000.0}).startswith(
        "ESTIMATED RMSE 61,000 (95% interval 52,000 to 70,000) vs holdout 48,000 "
    )
    mape = drift | {"estimated_metric": "mape", "estimated_quality": 0.121}
    assert estimate_text(mape | {"estimated_interval": [0.101, 0.164]}).startswith(
        "ESTIMATED MAPE 12.1% (95% interval 10.1% to 16.4%)"
    )
    assert estimate_text(drift | {"estimate_breach": False}) == ""
    assert estimate_text(drift | {"estimated_quality": None}) == ""
