"""The drift report as one self-contained HTML page that a person reads (and prints).

``render_html`` lays out what ``drift_report`` says, top to bottom: the verdict, the window and
the model, a summary table (drifted features first), a reference-vs-current chart per feature
and for the prediction (``drift_report_charts``), and live quality over time.

Nothing on the page comes from anywhere else: the CSS is inline, the charts are inline SVG, and
a Content-Security-Policy forbids every fetch and script. Markup is built here as strings, and
every text in it passes through ``html_escape.escape``, the one place report text enters the
page (feature and category names are user data). Not a template engine: Jinja2's autoescape
would not show control characters as code points, so ``escape`` would stay anyway, and the
engine would ride in the layer every function carries, the retrainer's among them (10.3 MB
under its 250 MB budget at the last ``make size``).

Pure and stdlib-only: it ships in the Lambda layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.domain.drift_report import (
    facts,
    feature_state,
    headline,
    identity,
    page_title,
    quality_detail,
    quality_line,
    retrain_line,
    retrain_requested,
    sorted_features,
    statistic_parts,
    verdict_reasons,
)
from mlops.domain.drift_report_charts import feature_chart, quality_chart
from mlops.domain.drift_report_estimate import estimate_html
from mlops.domain.html_escape import escape
from mlops.domain.report_text import (
    NOT_AVAILABLE,
    as_mapping,
    as_sequence,
    format_count,
    format_share,
    format_time,
    truncate,
)

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


def _section(anchor: str, title: str, body: str) -> str:
    """One titled part of the page; ``body`` is markup already."""
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def _empty(note: str) -> str:
    """What a part of the page says when the report has nothing for it."""
    return f'<p class="empty">{escape(note)}</p>'


def _verdict_section(report: Mapping[str, Any]) -> str:
    title, tone = headline(report)
    quality = report.get("quality")
    quality_text, quality_tone = quality_line(quality if isinstance(quality, Mapping) else None)
    retrain = retrain_line(report, tone)
    reasons = verdict_reasons(report)
    reason_items = "".join(f"<li>{escape(reason)}</li>" for reason in reasons)
    reason_list = f'<ul class="reasons">{reason_items}</ul>' if reasons else ""
    requested = retrain_requested(report)
    return (
        f'<header class="verdict tone-{tone}">'
        f'<p class="eyebrow">Drift report · {escape(identity(report))}</p>'
        f'<h1 id="verdict">{escape(title)}</h1>'
        f'<p class="line tone-{quality_tone}" id="quality">{escape(quality_text)}</p>'
        f'<p class="line {"tone-drift" if requested else "tone-muted"}" id="retrain">'
        f"{escape(retrain)}{':' if reasons else ''}</p>"
        f"{reason_list}</header>"
    )


def _facts_section(report: Mapping[str, Any]) -> str:
    items = "".join(
        f'<div class="fact-{index}"><dt>{escape(key)}</dt><dd>{escape(value)}</dd></div>'
        for index, (key, value) in enumerate(facts(report))
    )
    return f'<dl class="facts">{items}</dl>'


def _table_row(anchor: str, feature: Mapping[str, Any]) -> str:
    state, tone = feature_state(feature)
    name = str(feature.get("name"))
    stats = (
        "".join(
            f'<span class="stat{" exceeded" if exceeded else ""}">{escape(text)}</span>'
            for text, exceeded in statistic_parts(feature)
        )
        or f'<span class="stat">{escape(NOT_AVAILABLE)}</span>'
    )
    missing = as_mapping(feature.get("missing_rate"))
    reference_rows = format_count(feature.get("reference_rows"))
    rows = f"{reference_rows} → {format_count(feature.get('current_rows'))}"
    missing_text = (
        f"{format_share(missing.get('reference'))} → {format_share(missing.get('current'))}"
    )
    return (
        f'<tr class="row-{tone}">'
        f'<th scope="row"><a href="#{anchor}" title="{escape(name)}">'
        f"{escape(truncate(name, 32))}</a></th>"
        f"<td>{escape(feature.get('type') or NOT_AVAILABLE)}</td>"
        f"<td>{escape(feature.get('test') or NOT_AVAILABLE)}</td>"
        f'<td class="stats">{stats}</td>'
        f'<td class="state state-{tone}">{escape(state)}</td>'
        f'<td class="num">{escape(rows)}</td>'
        f'<td class="num">{escape(missing_text)}</td></tr>'
    )


_TABLE_HEAD = (
    "<thead><tr><th scope='col'>Feature</th><th scope='col'>Type</th><th scope='col'>Test</th>"
    "<th scope='col'>Statistics (value vs threshold)</th><th scope='col'>Drifted</th>"
    "<th scope='col' class='num'>Rows: reference → current</th>"
    "<th scope='col' class='num'>Missing: reference → current</th></tr></thead>"
)


def _table(rows: list[str], caption: str) -> str:
    return (
        f'<table class="summary"><caption>{escape(caption)}</caption>{_TABLE_HEAD}'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _feature_card(anchor: str, feature: Mapping[str, Any]) -> str:
    state, tone = feature_state(feature)
    badge = {"drift": "drifted", "warning": "warning", "stable": "stable"}[tone]
    stats = " · ".join(text for text, _ in statistic_parts(feature))
    reasons = "".join(
        f"<li>{escape(reason)}</li>" for reason in as_sequence(feature.get("reasons"))
    )
    kind = f"{feature.get('type') or NOT_AVAILABLE} · {feature.get('test') or NOT_AVAILABLE}"
    return (
        f'<article class="card card-{tone}" id="{anchor}">'
        f"<header><h3>{escape(feature.get('name'))}</h3>"
        f'<span class="badge badge-{tone}" title="{escape(state)}">{escape(badge)}</span></header>'
        f'<p class="kind">{escape(kind)}</p>'
        f'<p class="card-stats">{escape(stats or NOT_AVAILABLE)}</p>'
        f"{feature_chart(feature)}"
        f"{f'<ul class=card-reasons>{reasons}</ul>' if reasons else ''}</article>"
    )


def _features_section(report: Mapping[str, Any]) -> str:
    features = sorted_features(as_sequence(report.get("features")))
    if not features:
        return _section("features", "Features", _empty("No features in this report."))
    rows = [_table_row(f"feature-{index}", feature) for index, feature in features]
    cards = "".join(_feature_card(f"feature-{index}", feature) for index, feature in features)
    drifted = sum(1 for _, feature in features if feature.get("drifted") is True)
    caption = f"{len(features)} features, {drifted} drifted (drifted first)"
    return _section("features", "Features", _table(rows, caption)) + _section(
        "distributions",
        "Distributions: reference vs current",
        f'<div class="cards">{cards}</div>',
    )


def _prediction_section(report: Mapping[str, Any]) -> str:
    prediction = report.get("prediction")
    if not isinstance(prediction, Mapping):
        return _section("prediction", "Prediction drift", _empty("Not evaluated in this report."))
    row = _table_row("prediction-chart", prediction)
    return _section(
        "prediction",
        "Prediction drift",
        f"{_table([row], 'The model output, tested like a feature')}"
        f'<div class="cards">{_feature_card("prediction-chart", prediction)}</div>',
    )


def _quality_section(report: Mapping[str, Any]) -> str:
    quality = report.get("quality")
    if not isinstance(quality, Mapping):
        note = "No labels joined in this window: live quality not evaluated."
        return _section("live-quality", "Live quality", _empty(note))
    text, tone = quality_line(quality)
    chart = ""
    if as_sequence(quality.get("over_time")):
        chart = f'<figure class="wide">{quality_chart(quality)}</figure>'
    return _section(
        "live-quality",
        "Live quality",
        f'<p class="line tone-{tone}">{escape(text)}</p>'
        f'<p class="detail">{escape(quality_detail(quality))}</p>{chart}',
    )


_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f9; color: #1f2937;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  font-variant-numeric: tabular-nums; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 28px 48px; }
h1 { font-size: 28px; line-height: 1.2; margin: 4px 0 12px; }
h2 { font-size: 18px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 0; overflow-wrap: anywhere; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 10px; padding: 20px 22px;
  margin-top: 18px; }
.verdict { border-radius: 12px; padding: 22px 26px; border: 1px solid; border-left-width: 8px; }
.verdict.tone-drift { background: #fef3f2; border-color: #fecdca; border-left-color: #d92d20; }
.verdict.tone-drift h1 { color: #b42318; }
.verdict.tone-ok { background: #ecfdf3; border-color: #abefc6; border-left-color: #079455; }
.verdict.tone-ok h1 { color: #067647; }
.verdict.tone-insufficient { background: #fffaeb; border-color: #fedf89;
  border-left-color: #dc6803; }
.verdict.tone-insufficient h1 { color: #93370d; }
.eyebrow { margin: 0; text-transform: uppercase; letter-spacing: .06em; font-size: 12px;
  color: #4b5563; font-weight: 600; }
.line { margin: 4px 0; font-size: 16px; font-weight: 600; }
.tone-drift.line { color: #b42318; }
.tone-ok.line { color: #067647; }
.tone-muted.line { color: #4b5563; }
.reasons { margin: 6px 0 0; padding-left: 20px; color: #374151; }
.facts { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px 18px; margin: 18px 0 0;
  background: #fff; border: 1px solid #e5e7eb; border-radius: 10px; padding: 16px 22px; }
.facts dt { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: #6b7280; }
.facts dd { margin: 2px 0 0; font-weight: 600; overflow-wrap: anywhere; }
.facts .fact-0, .facts .fact-4 { grid-column: span 3; }
.facts .fact-6 { grid-column: span 2; }
table.summary { width: 100%; border-collapse: collapse; font-size: 13px; }
.summary caption { text-align: left; color: #6b7280; padding-bottom: 8px; }
.summary th, .summary td { padding: 7px 10px; border-bottom: 1px solid #eef0f3; text-align: left;
  vertical-align: top; }
.summary thead th { font-size: 11px; text-transform: uppercase; letter-spacing: .04em;
  color: #6b7280; border-bottom: 2px solid #e5e7eb; }
.summary tbody th { white-space: nowrap; }
.summary tbody th a { color: #1d4ed8; text-decoration: none; }
.summary .num { text-align: right; }
.summary td.num { white-space: nowrap; }
.row-drift { background: #fff7f6; }
.stats .stat { display: block; white-space: nowrap; }
.stat.exceeded { color: #b42318; font-weight: 600; }
.state { white-space: nowrap; font-weight: 600; }
.state-drift { color: #b42318; }
.state-warning { color: #b54708; }
.state-stable { color: #6b7280; font-weight: 400; }
.cards { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
#prediction .cards { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); margin-top: 14px; }
.card { border: 1px solid #e5e7eb; border-top: 4px solid #d0d5dd; border-radius: 8px;
  padding: 12px 14px; background: #fff; break-inside: avoid; }
.card-drift { border-top-color: #d92d20; }
.card-warning { border-top-color: #f79009; }
.card header { display: flex; justify-content: space-between; align-items: center; gap: 8px; }
.badge { font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .04em;
  border-radius: 999px; padding: 2px 9px; }
.badge-drift { background: #fee4e2; color: #b42318; }
.badge-warning { background: #fef0c7; color: #93370d; }
.badge-stable { background: #f2f4f7; color: #475467; }
.kind { margin: 2px 0 0; color: #6b7280; font-size: 12px; }
.card-stats { margin: 4px 0 6px; font-size: 12.5px; }
.card-reasons { margin: 4px 0 0; padding-left: 18px; font-size: 12px; color: #b42318; }
svg.chart { display: block; width: 100%; height: auto; font-family: inherit; }
figure.wide { margin: 12px 0 0; }
.detail { color: #4b5563; margin: 2px 0 0; }
.empty { color: #6b7280; font-style: italic; margin: 0; }
footer { color: #9ca3af; font-size: 12px; margin-top: 18px; text-align: center; }
@media (max-width: 820px) { .cards, #prediction .cards { grid-template-columns: 1fr; }
  .facts { grid-template-columns: 1fr 1fr; } .facts > div { grid-column: auto !important; } }
@page { size: A4; margin: 12mm; }
@media print {
  body { background: #fff; font-size: 11px; -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
  main { max-width: none; padding: 0; }
  section, .facts { border: none; padding: 8px 0; }
  .card, tr, .verdict, figure { break-inside: avoid; }
  h2 { break-after: avoid; }
  .summary tbody th a { color: inherit; }
}
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The drift report as one self-contained HTML page (UTF-8, no external resources)."""
    version = report.get("schema_version")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(page_title(report))}</title>"
        f"<style>{_STYLE}</style></head>\n<body><main>"
        f"{_verdict_section(report)}{_facts_section(report)}"
        f"{_features_section(report)}{_prediction_section(report)}{_quality_section(report)}"
        f"{estimate_html(report)}"
        f"<footer>{escape(report.get('kind') or 'drift_report')}, schema version "
        f"{escape(version if version is not None else NOT_AVAILABLE)} · "
        f"generated {escape(format_time(report.get('generated_at')))}</footer>"
        "</main></body></html>\n"
    )
