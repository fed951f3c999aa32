"""The drift report in a real browser, as a person opens it: headless Chromium loads the file,
and we read what it built (the DOM) and what it drew (a 1280 px wide screenshot).

Chromium is Debian's package; ``scripts/ensure_chromium.sh`` installs it when it is missing (as
root). Only when that fails do these tests skip, naming the reason.
"""

from __future__ import annotations

import copy
import json
import struct
import subprocess
import zlib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mlops.domain.drift_report_html import render_html
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "drift_report.json"
WIDTH = 1280
HEIGHT = 4400  # the whole example report
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


Browse = Callable[..., str]


@pytest.fixture
def browse(chromium: str, tmp_path: Path) -> Browse:
    """Run Chromium headless on a rendered report; returns its standard output."""

    def run(report: dict[str, Any], *flags: str) -> str:
        page = tmp_path / "report.html"
        page.write_text(render_html(report), encoding="utf-8")
        command = [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            *flags,
            page.as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    return run


class Dom(HTMLParser):
    """The tags, the text and a few elements of Chromium's serialised DOM."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.heading = ""
        self.row_names: list[str] = []
        self.card_names: list[str] = []
        self._open: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "h1":
            self._open.append("heading")
        elif tag == "th" and ("scope", "row") in attrs:
            self._open.append("row")
            self.row_names.append("")
        elif tag == "h3":
            self._open.append("card")
            self.card_names.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "th", "h3") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        where = self._open[-1] if self._open else None
        if where == "heading":
            self.heading += data
        elif where == "row":
            self.row_names[-1] += data
        elif where == "card":
            self.card_names[-1] += data


def png_rows(data: bytes, count: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first ``count`` rows of an 8-bit RGB(A) PNG, unfiltered."""
    assert data.startswith(PNG_SIGNATURE)
    position, compressed = 8, b""
    width = height = channels = 0
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0)
            channels = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            compressed += body
    raw = zlib.decompress(compressed)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(min(count, height)):
        start = y * (stride + 1)
        kind, line = raw[start], raw[start + 1 : start + 1 + stride]
        row = bytearray(stride)
        for i in range(stride):
            a = row[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 0:
                predictor = 0
            elif kind == 1:
                predictor = a
            elif kind == 2:
                predictor = b
            elif kind == 3:
                predictor = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            row[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(row))
        previous = row
    return width, height, [row[: width * channels] for row in rows]


def test_the_page_a_person_opens_shows_verdict_table_and_charts(
    browse: Browse, report: dict[str, Any]
) -> None:
    # Given the example report, rendered to a file
    # When Chromium opens it and serialises what it built
    dom = Dom(browse(report, "--dump-dom"))
    # Then the verdict heads the page, every feature has a row and a chart
    assert dom.heading == (
        "Dataset drift: 7 of 9 features drifted (78 % ≥ 50 %); quality loss: live RMSE +112 %"
    )
    text = " ".join(dom.text)
    assert "Live RMSE 61,700 vs holdout 29,100 (+112 %): quality breach" in text
    assert "Retrain requested" in text
    names = [feature["name"] for feature in report["features"]]
    assert sorted(dom.row_names) == sorted([*names, "prediction"])
    assert sorted(dom.card_names) == sorted([*names, "prediction"])
    assert dom.tags.count("svg") == len(names) + 2  # each feature, the prediction, quality
    assert "script" not in dom.tags


def test_hostile_names_stay_text_in_the_browser(browse: Browse, report: dict[str, Any]) -> None:
    hostile = copy.deepcopy(report)
    hostile["features"][0]["name"] = "<script>document.title='owned'</script>"
    location = next(f for f in hostile["features"] if f["name"] == "location")
    location["histogram"]["categories"][0] = "<img src=x onerror=alert(1)>"
    dom = Dom(browse(hostile, "--dump-dom"))
    assert "script" not in dom.tags
    assert "img" not in dom.tags
    assert "<script>document.title='owned'</script>" in dom.card_names


def test_bidirectional_overrides_reach_the_browser_as_visible_code_points(
    browse: Browse, report: dict[str, Any]
) -> None:
    # Given a category that would read "cod" + "txt.exe" reversed, and an isolating name
    spoofed = copy.deepcopy(report)
    spoofed["features"][0]["name"] = "sqft\u2067 (stable)\u2069"
    location = next(f for f in spoofed["features"] if f["name"] == "location")
    location["histogram"]["categories"][0] = "cod\u202eexe.txt"
    # When Chromium builds the page
    dom = Dom(browse(spoofed, "--dump-dom"))
    text = " ".join(dom.text)
    # Then no override or isolate is in what it built; each shows as its code point
    assert not any(c in text for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "sqft[U+2067] (stable)[U+2069]" in dom.card_names
    assert "cod[U+202E]exe.txt" in text


def _banner_pixels(data: bytes) -> list[bytes]:
    width, _, rows = png_rows(data, 160)
    return [row[i : i + 3] for row in rows for i in range(0, len(row), len(row) // width)]


def test_a_concept_shift_is_a_red_quality_loss_not_a_green_no_drift(
    browse: Browse, report: dict[str, Any], tmp_path: Path
) -> None:
    # Given inputs that did not move (no feature drifted) and live RMSE 112 % over the holdout
    shift = copy.deepcopy(report)
    for feature in shift["features"]:
        feature["drifted"] = False
    shift["verdict"] |= {
        "status": "quality_loss",
        "dataset_drift": False,
        "drift_share": 0.0,
        "drifted": [],
    }
    # When Chromium opens it
    dom = Dom(browse(shift, "--dump-dom"))
    shot = tmp_path / "shift.png"
    browse(shift, f"--window-size={WIDTH},800", f"--screenshot={shot}")
    # Then the heading is the quality loss, and the banner is red, not green
    assert dom.heading == "Quality loss: live RMSE +112 %"
    pixels = _banner_pixels(shot.read_bytes())
    reddish = [p for p in pixels if p[0] > p[1] + 6 and p[0] > p[2] + 6]
    greenish = [p for p in pixels if p[1] > p[0] + 6 and p[1] > p[2] + 6]
    assert len(reddish) > 0.2 * len(pixels)
    assert len(greenish) < 0.01 * len(pixels)


def test_the_screenshot_is_the_report_not_a_blank_page(
    browse: Browse, report: dict[str, Any], tmp_path: Path
) -> None:
    # Given a screenshot of the report at 1280 px and one of an empty page
    shot = tmp_path / "report.png"
    browse(report, f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}")
    data = shot.read_bytes()
    blank = tmp_path / "blank.png"
    browse({}, "--window-size=1280,400", f"--screenshot={blank}")
    # Then it is a 1280 px wide picture with far more in it than an empty page
    width, height, rows = png_rows(data, 260)
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(data) > 100_000
    assert len(data) > 10 * blank.stat().st_size
    # and the verdict banner at the top is red: many reddish pixels, some strongly red (the text)
    pixels = [row[i : i + 3] for row in rows for i in range(0, len(row), len(row) // width)]
    reddish = [p for p in pixels if p[0] > p[1] + 6 and p[0] > p[2] + 6]
    strong = [p for p in pixels if p[0] > 150 and p[1] < 90 and p[2] < 90]
    assert len(reddish) > 0.2 * len(pixels)
    assert len(strong) > 500
