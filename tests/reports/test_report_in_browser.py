"""The week's HTML report as a person sees it (DESIGN.md §11): ``caldaemon report --format
html`` of the example week, rendered by a real headless chromium on a wide screen and on a
phone. Checked by decoding what the browser gives back (the screenshot, the DOM after
layout), never against a golden image. Skipped, with the reason, where chromium is missing
or cannot start (.ci/run installs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon.cli import main
from tests.browser import PHONE, Browser, browser, decode_png, near, visible_text

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-30T08:00"
WIDE = (1280, 900)
# Okabe-Ito colours of the levels in the picture (caldaemon/reports/picture.py).
LEVEL_COLOURS = {"low": "#56B4E9", "moderate": "#E69F00", "high": "#D55E00"}
CANARY = "Zebulon Quixote"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    return browser(tmp_path_factory.mktemp("chromium"))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, tuple[str, ...]]:
    """The example week's page (a canary client name in one session's title), the text
    report's lines, and every event title of the example."""
    folder = tmp_path_factory.mktemp("report")
    shutil.copytree(ROOT / "examples", folder / "examples")
    practice = folder / "examples" / "practice.ics"
    practice.write_text(practice.read_text().replace("Session A.K.", f"Session {CANARY}"))
    config = folder / "config.yaml"
    config.write_text((ROOT / "config.example.yaml").read_text())
    page = folder / "week.html"
    common = ["report", "--config", str(config), "--now", NOW]
    result = CliRunner().invoke(main, [*common, "--format", "html", "--output", str(page)])
    assert result.exit_code == 0, result.output
    text = CliRunner().invoke(main, common)
    assert text.exit_code == 0, text.output
    titles = tuple(
        line.split(":", 1)[1].strip()
        for ics in (folder / "examples").glob("*.ics")
        for line in ics.read_text().splitlines()
        if line.startswith("SUMMARY:")
    )
    assert any(CANARY in title for title in titles)
    return page, text.stdout, titles


@pytest.mark.parametrize("size", [WIDE, PHONE], ids=["wide", "phone"])
def test_the_picture_is_drawn_with_every_level_colour_on_the_first_screen(
    chromium: Browser, report: tuple[Path, str, tuple[str, ...]], size: tuple[int, int]
) -> None:
    picture = decode_png(chromium.screenshot(report[0], size))
    assert (picture.width, picture.height) == size
    pixels = set(picture.pixels())
    # The inline PNG loaded and scaled into the screen: each level's colour is on it.
    for level, colour in LEVEL_COLOURS.items():
        assert any(near(p, colour, tolerance=12) for p in pixels), level


def test_on_a_phone_the_picture_shrinks_to_the_screen(
    chromium: Browser, report: tuple[Path, str, tuple[str, ...]]
) -> None:
    picture = decode_png(chromium.screenshot(report[0], PHONE))
    # The week's seven columns all fit: Sunday's edge (the picture's right border, drawn
    # #dddddd) lies inside the phone's width, so nothing is cut off to the right.
    border = [
        x
        for x in range(picture.width)
        if sum(near(picture.at(x, y), "#dddddd", 4) for y in range(100, 300)) > 150
    ]
    assert border and max(border) < PHONE[0] - 8


def test_the_page_says_every_fact_of_the_text_report_and_no_event_text(
    chromium: Browser, report: tuple[Path, str, tuple[str, ...]]
) -> None:
    page, text, titles = report
    dom = chromium.dom(page)
    seen = visible_text(dom)
    facts = [line.strip() for line in text.splitlines() if line.strip()]
    assert len(facts) > 40
    for fact in facts:
        assert " ".join(fact.split()) in " ".join(seen.split()), fact
    assert "<script" not in dom.lower()
    assert CANARY not in dom
    for title in titles:
        assert title not in seen, title
