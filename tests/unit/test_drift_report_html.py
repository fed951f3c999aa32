"""The drift report page: what a person reads, that nothing is fetched, that user data stays text,
and that odd reports (no features, empty windows, thousands of categories, NaN) still render."""

from __future__ import annotations

import copy
import json
import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest

from mlops.domain.drift_report_html import render_html
from mlops.domain.report_text import MINUS, format_count, format_number, format_share
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "drift_report.json"
HOSTILE = "<script>alert('x')</script>"


@pytest.fixture
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


class Page(HTMLParser):
    """What the browser would build: the tags opened, the text of chosen elements."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.row_names: list[str] = []  # each summary-table row's header cell, in order
        self.heading = ""
        self._in_row_header = False
        self._in_heading = False
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)
        if tag == "th" and ("scope", "row") in attrs:
            self._in_row_header = True
            self.row_names.append("")
        if tag == "h1":
            self._in_heading = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_row_header = False
        if tag == "h1":
            self._in_heading = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_row_header:
            self.row_names[-1] += data
        if self._in_heading:
            self.heading += data

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def feature(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in report["features"] if f["name"] == name)
    return found


def label(element: ET.Element) -> str:
    """An SVG text's own words, without its tooltip."""
    return (element.text or "") + "".join(child.tail or "" for child in element)


def svgs(markup: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", markup, flags=re.DOTALL)


# --- the verdict ---------------------------------------------------------------------------


def test_the_fixture_verdict_is_the_page_heading(report: dict[str, Any]) -> None:
    # Given the example report (7 of 9 features drifted, live RMSE 112 % over the holdout)
    # When it is rendered
    page = Page(render_html(report))
    # Then the heading says both, with the share against the threshold and the quality change
    assert page.heading == (
        "Dataset drift: 7 of 9 features drifted (78 % ≥ 50 %); quality loss: live RMSE +112 %"
    )


@pytest.mark.parametrize(
    ("verdict", "rows", "heading"),
    [
        (
            {"status": "ok", "dataset_drift": False, "drift_share": 0.0, "drifted": []},
            12000,
            "No drift",
        ),
        (
            {"status": "ok", "dataset_drift": False, "drift_share": 1 / 9, "drifted": ["sqft"]},
            12000,
            "No dataset drift: 1 of 9 features drifted (11 % < 50 %)",
        ),
        (
            {"status": "insufficient_data", "dataset_drift": False, "min_rows": 200},
            120,
            "Not enough data (120 rows < 200)",
        ),
        ({"status": "insufficient_data"}, 120, "Not enough data (120 rows)"),
        (
            {"status": "quality_loss", "dataset_drift": False, "quality_breach": True},
            12000,
            "Quality loss: live RMSE +112 %",
        ),
        # Concept drift: no feature moved, the labels did; never a green "No drift"
        (
            {"status": "ok", "dataset_drift": False, "quality_breach": True, "drifted": []},
            12000,
            "Quality loss: live RMSE +112 %",
        ),
        # Too few rows to judge the inputs, enough labels to judge the answers
        (
            {"status": "insufficient_data", "quality_breach": True, "min_rows": 200},
            120,
            "Quality loss: live RMSE +112 %",
        ),
    ],
)
def test_each_status_has_its_heading(
    report: dict[str, Any], verdict: dict[str, Any], rows: int, heading: str
) -> None:
    report["verdict"] = {"drift_share_threshold": 0.5, "reasons": [], "quality_breach": False}
    report["verdict"] |= verdict
    report["rows"] = rows
    assert Page(render_html(report)).heading == heading


def test_a_stack_without_production_says_so_rather_than_counting_rows(
    report: dict[str, Any],
) -> None:
    report["version"] = None
    report["verdict"] = {"status": "insufficient_data", "quality_breach": False}
    assert Page(render_html(report)).heading == "No production version to evaluate"


def test_a_report_without_a_verdict_flag_takes_the_breach_from_its_quality(
    report: dict[str, Any],
) -> None:
    report["verdict"] = {"status": "ok", "dataset_drift": False, "drifted": []}
    assert Page(render_html(report)).heading == "Quality loss: live RMSE +112 %"


@pytest.mark.parametrize(
    ("quality", "loss"),
    [
        ({"metric": "accuracy", "greater_is_better": True, "value": 0.81, "holdout": 0.9},
         f"live accuracy {MINUS}10 %"),
        ({"value": 61700.0, "holdout": 0.0}, "live RMSE 61,700 vs holdout 0"),
        ({"value": None}, "live RMSE worse than the holdout"),
    ],
)  # fmt: skip
def test_a_quality_loss_headline_says_what_it_can(
    report: dict[str, Any], quality: dict[str, Any], loss: str
) -> None:
    report["verdict"] |= {"status": "quality_loss", "dataset_drift": False}
    report["quality"] |= quality
    assert Page(render_html(report)).heading == f"Quality loss: {loss}"


@pytest.mark.parametrize(
    ("status", "tone"),
    [("drift", "tone-drift"), ("ok", "tone-ok"), ("insufficient_data", "tone-insufficient")],
)
def test_the_verdict_is_coloured_by_status(report: dict[str, Any], status: str, tone: str) -> None:
    report["verdict"] |= {"status": status, "dataset_drift": status == "drift", "drifted": []}
    report["verdict"]["quality_breach"] = False
    assert f'<header class="verdict {tone}">' in render_html(report)


def test_live_quality_breach_names_both_values_and_the_change(report: dict[str, Any]) -> None:
    text = Page(render_html(report)).all_text
    assert "Live RMSE 61,700 vs holdout 29,100 (+112 %): quality breach" in text


def test_live_quality_within_tolerance(report: dict[str, Any]) -> None:
    report["quality"] |= {"value": 30000.0, "breach": False}
    assert "Live RMSE 30,000 vs holdout 29,100 (+3.1 %): within tolerance (20 %)" in (
        Page(render_html(report)).all_text
    )


def test_too_few_labels_says_so(report: dict[str, Any]) -> None:
    report["quality"] |= {"value": None, "labels": 12, "breach": False, "over_time": []}
    assert "Live RMSE: not enough labels (12 < 50)" in Page(render_html(report)).all_text


def test_retrain_requested_lists_the_reasons(report: dict[str, Any]) -> None:
    text = Page(render_html(report)).all_text
    assert "Retrain requested" in text
    assert "dataset drift: 7 of 9 features drifted (78 % >= 50 %)" in text


def test_cool_down_explains_why_no_retrain(report: dict[str, Any]) -> None:
    report["verdict"]["retrain_requested"] = False
    report["cooldown"] = {
        "active": True,
        "last_request_at": "2026-11-28T21:00:00+00:00",
        "hours": 6,
    }
    assert (
        "No retrain requested: cool-down active since the request at 2026-11-28 21:00 UTC (6 h)"
        in Page(render_html(report)).all_text
    )


def test_no_drift_needs_no_retrain(report: dict[str, Any]) -> None:
    report["verdict"] = {"status": "ok", "dataset_drift": False, "drifted": [], "reasons": []}
    report["quality"]["breach"] = False
    assert "No retrain needed" in Page(render_html(report)).all_text


def test_window_model_and_rows_are_shown(report: dict[str, Any]) -> None:
    text = Page(render_html(report)).all_text
    assert "2026-11-28 00:00 UTC → 2026-11-29 00:00 UTC (24 h)" in text
    assert "house-prices" in text
    assert "production" in text
    assert "12,000" in text
    assert "3,200" in text


# --- the table and the charts --------------------------------------------------------------


def test_every_feature_has_a_row_drifted_first(report: dict[str, Any]) -> None:
    page = Page(render_html(report))
    names = [feature["name"] for feature in report["features"]]
    drifted = [feature["name"] for feature in report["features"] if feature["drifted"]]
    # the features' table, then the prediction's one-row table
    assert page.row_names == [*drifted, *(n for n in names if n not in drifted), "prediction"]


def test_a_row_shows_statistics_thresholds_state_rows_and_missing_rates(
    report: dict[str, Any],
) -> None:
    markup = render_html(report)
    row = re.search(r"<tr[^>]*><th scope=\"row\"><a [^>]*>year_built</a>.*?</tr>", markup)
    assert row is not None
    text = Page(row.group(0)).all_text
    assert "PSI 0.00483 < 0.25" in text
    assert "missing-rate change +2.1 % < 5 %" in text
    assert "✗ stable" in text
    assert "3,200 → 11,748" in text
    assert "0 % → 2.1 %" in text


def test_an_exceeded_statistic_is_marked(report: dict[str, Any]) -> None:
    markup = render_html(report)
    assert '<span class="stat exceeded">PSI 8.21 ≥ 0.25</span>' in markup
    assert '<span class="stat exceeded">unseen share 16 % ≥ 5 %</span>' in markup


def test_a_warning_is_shown_as_such(report: dict[str, Any]) -> None:
    feature(report, "year_built").update(drifted=False, warning=True)
    markup = render_html(report)
    assert '<td class="state state-warning">✗ warning</td>' in markup


def test_one_well_formed_svg_per_feature_prediction_and_quality(report: dict[str, Any]) -> None:
    charts = svgs(render_html(report))
    assert len(charts) == len(report["features"]) + 2
    for chart in charts:
        root = ET.fromstring(chart)  # inline SVG, written as XML: it must parse as XML
        assert root.tag == "svg"
        assert root.get("viewBox")
        assert root.find("title") is not None
        assert root.findall(".//rect") or root.findall(".//path")


def test_a_numeric_chart_has_a_bar_per_bin_and_side(report: dict[str, Any]) -> None:
    sqft = next(feature for feature in report["features"] if feature["name"] == "sqft")
    report["features"] = [sqft]
    report["prediction"] = None
    report["quality"] = None
    root = ET.fromstring(svgs(render_html(report))[0])
    bars = [rect for rect in root.iter("rect") if rect.find("title") is not None]
    assert len(bars) == 2 * (len(sqft["histogram"]["edges"]) + 1)
    edge_labels = {text.text for text in root.iter("text")}
    assert {"1269", "1547", "7618"} <= edge_labels


def test_unseen_categories_have_their_own_bar(report: dict[str, Any]) -> None:
    markup = render_html(report)
    assert "location: current 16 %" not in markup
    assert "unseen: current 16 %" in markup


def test_the_quality_chart_has_the_holdout_line_and_label_counts(report: dict[str, Any]) -> None:
    chart = svgs(render_html(report))[-1]
    root = ET.fromstring(chart)
    texts = {text.text for text in root.iter("text")}
    assert "holdout 29,100" in texts
    assert "breach 34,920" in texts
    assert {"n=96", "n=109"} <= texts
    assert any(line.get("stroke-dasharray") for line in root.iter("line"))
    assert len(list(root.iter("circle"))) == len(report["quality"]["over_time"])


def test_no_quality_chart_without_points(report: dict[str, Any]) -> None:
    report["quality"]["over_time"] = []
    assert len(svgs(render_html(report))) == len(report["features"]) + 1


# --- safety --------------------------------------------------------------------------------


def test_hostile_names_render_as_text(report: dict[str, Any]) -> None:
    # Given feature, category and reason strings written by an attacker
    location = feature(report, "location")
    location["name"] = HOSTILE
    location["histogram"]["categories"][0] = '<img src=x onerror="alert(1)">'
    location["reasons"] = ["</li></ul><script>alert(2)</script>"]
    report["model"] = '"><script>alert(3)</script>'
    report["verdict"]["reasons"].append("<b>bold</b> & more")
    # When the page is rendered
    markup = render_html(report)
    page = Page(markup)
    # Then no element came from the data: every string is text
    assert "script" not in page.tags
    assert "img" not in page.tags
    assert "b" not in page.tags
    assert "<script>" not in markup
    assert HOSTILE in page.row_names
    assert '<img src=x onerror="alert(1)">' in page.all_text
    assert "<b>bold</b> & more" in page.all_text
    for chart in svgs(markup):
        ET.fromstring(chart)


# A category that reads "txt.exe" backwards through a right-to-left override, a name that
# isolates its tail, a terminal escape, a NUL and a lone surrogate (JSON "\\ud800" decodes to one).
SPOOFED_CATEGORY = "cod\u202eexe.txt"
SPOOFED_NAME = "price\u2066 (ok)\u2069\x1b[31m\x00\ud800"


def test_bidirectional_overrides_and_controls_are_shown_as_code_points(
    report: dict[str, Any],
) -> None:
    # Given user strings holding bidirectional overrides, isolates and control characters
    location = feature(report, "location")
    location["name"] = SPOOFED_NAME
    location["histogram"]["categories"][0] = SPOOFED_CATEGORY
    report["verdict"]["reasons"].append(f"unseen category {SPOOFED_CATEGORY}")
    # When the page is rendered
    markup = render_html(report)
    # Then none of them reaches the page; each is shown where it was, as its code point
    assert not re.search("[\x00-\x08\x0b-\x1f\u202a-\u202e\u2066-\u2069\ud800-\udfff]", markup)
    text = Page(markup).all_text
    assert "cod[U+202E]exe.txt" in text
    assert "price[U+2066] (ok)[U+2069][U+001B][31m[U+0000][U+D800]" in text
    assert "unseen category cod[U+202E]exe.txt" in text
    markup.encode("utf-8")  # a lone surrogate would make the page unencodable
    for chart in svgs(markup):
        ET.fromstring(chart)


def test_every_control_and_format_character_is_neutralised_but_the_joiners() -> None:
    # Given every code point Unicode (as this Python knows it) calls a control, a format
    # character or a surrogate
    invisible = [
        chr(code)
        for code in range(0x110000)
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Cs")
    ]
    # When each is rendered as a model name, Then only the zero-width (non-)joiners that
    # scripts and emoji sequences need come through as themselves
    kept = {c for c in invisible if f"&lt;{c}&gt;" in render_html({"model": f"<{c}>"})}
    assert kept == {"\u200c", "\u200d"}
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert family in Page(render_html({"model": family})).all_text


def test_nothing_is_fetched_from_anywhere(report: dict[str, Any]) -> None:
    markup = render_html(report)
    page = Page(markup)
    assert not re.search(r"(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/", markup)
    assert not re.search(r"(?i)\b(src|srcset|xlink:href)\s*=", markup)
    assert "url(" not in markup
    assert "@import" not in markup
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    hrefs = [value for name, value in page.attributes if name == "href"]
    assert hrefs
    assert all(value and value.startswith("#") for value in hrefs)
    assert "default-src 'none'" in markup  # a Content-Security-Policy says so too


def test_the_page_is_one_document_with_inline_style(report: dict[str, Any]) -> None:
    markup = render_html(report)
    assert markup.startswith("<!DOCTYPE html>")
    assert markup.count("<style>") == 1
    assert '<meta charset="utf-8">' in markup
    assert "@media print" in markup


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.31, "0.31"),
        (0.123456, "0.123"),
        (8.2134, "8.21"),
        (123.456, "123"),
        (61000.0, "61,000"),
        (29111.4, "29,111"),
        (0.000123, "0.000123"),
        (1.5e-30, f"1.5e{MINUS}30"),
        (-0.25, f"{MINUS}0.25"),
        (0, "0"),
        (None, "n/a"),
        (math.nan, "n/a"),
        (math.inf, "∞"),
        ("0.3", "n/a"),
        (True, "n/a"),
    ],
)
def test_statistics_have_three_significant_digits(value: object, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("value", "signed", "text"),
    [
        (0.56, False, "56 %"),
        (0.5, False, "50 %"),
        (0.021, False, "2.1 %"),
        (0.02, False, "2 %"),
        (0.0004, False, "< 0.1 %"),
        (0.0, False, "0 %"),
        (1.0, False, "100 %"),
        (1.1034, True, "+110 %"),
        (-0.25, True, f"{MINUS}25 %"),
        (0.0, True, "0 %"),
        (None, False, "n/a"),
        (math.nan, True, "n/a"),
    ],
)
def test_shares_are_percentages(value: object, signed: bool, text: str) -> None:
    assert format_share(value, signed=signed) == text


@pytest.mark.parametrize(
    ("value", "text"), [(12000, "12,000"), (3200.0, "3,200"), (0, "0"), (None, "n/a")]
)
def test_counts_have_thousands_separators(value: object, text: str) -> None:
    assert format_count(value) == text


# --- edge cases ----------------------------------------------------------------------------


def test_a_report_without_features_renders(report: dict[str, Any]) -> None:
    report["features"] = []
    report["verdict"] |= {"status": "ok", "dataset_drift": False, "drifted": []}
    report["verdict"]["quality_breach"] = False
    page = Page(render_html(report))
    assert "No features in this report." in page.all_text
    assert page.heading == "No drift"


def test_an_empty_current_window_says_so_instead_of_dividing_by_zero(
    report: dict[str, Any],
) -> None:
    sqft = feature(report, "sqft")
    sqft["histogram"]["current"] = [0] * len(sqft["histogram"]["current"])
    sqft["current_rows"] = 0
    location = feature(report, "location")
    location["histogram"]["current"] = [0] * len(location["histogram"]["current"])
    markup = render_html(report)
    assert "no current values in this window" in markup
    assert "no values on one side" in markup
    assert "nan" not in Page(markup).all_text.lower().replace("n/a", "")


def test_thousands_of_categories_show_the_top_ones_and_the_rest_as_other(
    report: dict[str, Any],
) -> None:
    categories = [f"street-{index}" for index in range(5000)] + ["unseen"]
    reference = [1.0 / 5000] * 5000 + [0.0]
    current = [0.9 / 5000] * 5000 + [0.1]
    reference[4321] = current[4321] = 0.5  # one big category: it must be shown first
    location = feature(report, "location")
    location["histogram"] = {"categories": categories, "reference": reference, "current": current}
    markup = render_html(report)
    chart = next(svg for svg in svgs(markup) if "location: reference vs current" in svg)
    root = ET.fromstring(chart)
    labels = [label(text) for text in root.iter("text") if text.get("text-anchor") == "end"]
    assert labels[0] == "street-4321"
    assert labels[-2:] == ["4,988 others", "unseen"]
    assert len(labels) == 14  # 12 top categories, other, unseen
    assert len(chart) < 20_000


def test_long_names_are_shortened_in_charts_but_kept_whole_in_tooltips(
    report: dict[str, Any],
) -> None:
    long_name = "a-very-long-category-name-" * 4
    feature(report, "location")["histogram"]["categories"][0] = long_name
    chart = next(svg for svg in svgs(render_html(report)) if "location: reference" in svg)
    root = ET.fromstring(chart)
    assert any(label(text).endswith("…") for text in root.iter("text"))
    assert long_name in {title.text for title in root.iter("title")}


def test_missing_optional_sections(report: dict[str, Any]) -> None:
    report["quality"] = None
    report["prediction"] = None
    report["cooldown"] = None
    report["alias"] = None
    markup = render_html(report)
    text = Page(markup).all_text
    assert "Live quality: not evaluated (no labels joined in this window)" in text
    assert "Prediction drift" in text
    assert "Not evaluated in this report." in text
    assert len(svgs(markup)) == len(report["features"])


@pytest.mark.parametrize("missing", [None, math.nan])
def test_missing_statistics_read_n_a(report: dict[str, Any], missing: float | None) -> None:
    report["features"][0]["statistics"] = {"psi": missing, "wasserstein": missing}
    report["features"][0]["missing_rate"] = {"reference": None, "current": missing}
    markup = render_html(report)
    assert "PSI n/a" in markup
    assert "Wasserstein n/a" in markup
    assert "n/a → n/a" in markup


def test_a_histogram_shorter_than_its_edges_is_padded(report: dict[str, Any]) -> None:
    report["features"][0]["histogram"]["current"] = [0.5, 0.5]
    report["features"][0]["histogram"].pop("bounds")
    for chart in svgs(render_html(report)):
        ET.fromstring(chart)


def test_quality_points_without_values_leave_a_gap(report: dict[str, Any]) -> None:
    report["quality"]["over_time"][2]["value"] = None
    report["quality"]["over_time"][3]["value"] = math.nan
    root = ET.fromstring(svgs(render_html(report))[-1])
    path = next(root.iter("path")).get("d") or ""
    assert path.count("M") == 2
    assert len(list(root.iter("circle"))) == 4


def test_a_single_quality_point_and_a_greater_is_better_metric(report: dict[str, Any]) -> None:
    report["quality"] = {
        "metric": "accuracy",
        "greater_is_better": True,
        "labels": 60,
        "value": 0.81,
        "holdout": 0.9,
        "tolerance": 0.05,
        "breach": True,
        "metrics": {"accuracy": 0.81},
        "over_time": [{"start": "2026-11-28T00:00:00+00:00", "labels": 60, "value": 0.81}],
    }
    markup = render_html(report)
    assert (
        f"Live accuracy 0.81 vs holdout 0.9 ({MINUS}10 %): quality breach" in Page(markup).all_text
    )
    texts = {text.text for text in ET.fromstring(svgs(markup)[-1]).iter("text")}
    assert "breach 0.855" in texts


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"kind": "drift_report", "features": None, "verdict": None, "quality": "nonsense"},
        {"features": [{}], "prediction": {}, "quality": {"over_time": [{}]}},
        {"features": [{"name": 7, "histogram": {"categories": [1, None], "reference": "x"}}]},
        {"window": {"start": "not a date", "end": 5}, "rows": "many", "verdict": {"status": "?"}},
    ],
)
def test_malformed_reports_still_render(report: dict[str, Any]) -> None:
    markup = render_html(report)
    assert markup.startswith("<!DOCTYPE html>")
    for chart in svgs(markup):
        ET.fromstring(chart)


def test_rendering_leaves_the_report_unchanged(report: dict[str, Any]) -> None:
    before = copy.deepcopy(report)
    render_html(report)
    assert report == before
