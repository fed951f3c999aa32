"""The demo's report in a real browser, as a person opens it: headless Chromium loads the page
from disk next to the drift reports it links, and we read what it built (the DOM) and what it
drew (a screenshot). Chromium as in the drift report's browser test: Debian's package,
installed by ``scripts/ensure_chromium.sh`` when missing; only when that fails do these skip.
"""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlops_cli.demo.report import render_demo_html
from tests.integration.test_drift_report_browser import png_rows
from tests.unit.test_demo_report import example_summary

WIDTH, HEIGHT = 1280, 2400


@pytest.fixture
def page(tmp_path: Path) -> Path:
    """The report as the demo leaves it: report.html with drift/ and rollout/ beside it."""
    summary = example_summary()
    for entry in summary["drift_reports"]:
        for link in (entry["html"], entry["json"]):
            target = tmp_path / link
            target.parent.mkdir(exist_ok=True)
            html = link.endswith(".html")
            target.write_text("<!doctype html><title>drift report</title>" if html else "{}")
    (tmp_path / "rollout").mkdir()
    (tmp_path / "rollout" / "r1.json").write_text("{}")
    path = tmp_path / "report.html"
    path.write_text(render_demo_html(summary), encoding="utf-8")
    return path


def browse(chromium: str, page: Path, *flags: str) -> str:
    command = [
        chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
        "--hide-scrollbars", f"--user-data-dir={page.parent / 'profile'}", *flags, page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Dom(HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.links: list[str] = []
        self.rows = 0
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        if tag == "th" and ("scope", "row") in attrs:
            self.rows += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_page_shows_the_outcome_the_table_and_the_charts(chromium: str, page: Path) -> None:
    dom = Dom(browse(chromium, page, "--dump-dom"))
    text = " ".join(dom.text)
    assert "never-retrained model's 63,645" in text
    assert dom.rows == 4  # a row per month
    assert dom.tags.count("svg") == 4
    # the system and the twin; then live quality and the ESTIMATE (dashed)
    assert dom.tags.count("polyline") == 4
    assert "ESTIMATE warned (month 2 mid-month); labels confirmed at month 2 end" in text
    assert "script" not in dom.tags


def test_the_links_open_the_copied_reports(chromium: str, page: Path) -> None:
    dom = Dom(browse(chromium, page, "--dump-dom"))
    local = [link for link in dom.links if not link.startswith("http")]
    assert local
    for link in local:
        assert (page.parent / link).is_file(), link


def test_the_screenshot_is_the_report_not_a_blank_page(chromium: str, page: Path) -> None:
    shot = page.parent / "report.png"
    browse(chromium, page, f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}")
    blank = page.parent / "blank.html"
    blank.write_text("<!doctype html><title>blank</title>")
    blank_shot = page.parent / "blank.png"
    browse(chromium, blank, f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={blank_shot}")
    data = shot.read_bytes()
    width, height, rows = png_rows(data, 1400)
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(data) > 5 * blank_shot.stat().st_size
    # The error chart's two lines are drawn: blue (system) and orange (twin) pixels near the top,
    pixels = [bytes(row[i : i + 3]) for row in rows for i in range(0, len(row), len(row) // width)]
    blue = [p for p in pixels if p[2] > 180 and p[0] < 90]
    orange = [p for p in pixels if p[0] > 200 and 70 < p[1] < 130 and p[2] < 60]
    assert len(blue) > 50
    assert len(orange) > 50
    # and the quality chart below it: the estimate's dashed purple line and its intervals
    purple = [p for p in pixels if 100 < p[0] < 150 and p[1] < 90 and p[2] > 200]
    assert len(purple) > 20
