"""``caldaemon report`` on the example week (DESIGN.md §11): the same facts as text, JSON,
a PNG and an HTML page; no event text anywhere; a calendar that cannot be read means no
report (exit 2)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from caldaemon.cli import main

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-30T08:00"
# Text from the example's events that must never appear in a report.
EVENT_TEXT = ("R.T.", "Session", "Appointment", "Yoga", "Dentist", "Practice closed", "#heavy")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "config.example.yaml").read_text())
    return config


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["report", "--config", str(config), "--now", NOW, *args])


def as_json(config: Path, *args: str) -> dict[str, Any]:
    result = invoke(config, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_the_text_shows_each_day_its_blocks_limits_and_the_weeks_hours(example: Path) -> None:
    result = invoke(example)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("Dr. Sam Lee (lee): the week of Mon 30 Nov (America/Toronto)")
    # Monday is full: load 12 of 12, and its free working time held.
    assert "load 12 of 12 (at the limit)" in text and "11:05–11:30  held" in text
    assert "09:50–10:00  buffer" in text and "Sat 5 Dec · day off" in text
    assert "Hours: client 17.33 h" in text
    assert not any(word in text for word in EVENT_TEXT)


def test_json_carries_the_same_facts(example: Path) -> None:
    [week] = as_json(example)["weeks"]
    assert week["week"] == "2026-11-30" and len(week["days"]) == 7
    monday = week["days"][0]
    load = next(c for c in monday["counts"] if c["name"] == "load")
    assert (load["value"], load["limit"]) == (12, 12)
    kinds = {b["kind"] for b in monday["blocks"]}
    assert {"session", "buffer", "hold"} <= kinds
    flagged = [b for b in monday["blocks"] if b["flagged"]]
    assert {b["level"] for b in flagged} == {"high"}
    assert week["hours"]["client"] == pytest.approx(17.33)
    assert week["days"][5]["day_off"] is True
    assert not any(word in json.dumps(week) for word in EVENT_TEXT)


def test_the_picture_is_a_png_with_each_level_colour_and_no_text_of_events(
    example: Path, tmp_path: Path
) -> None:
    out = tmp_path / "week.png"
    result = invoke(example, "--format", "png", "--output", str(out))
    assert result.exit_code == 0, result.output
    image = Image.open(out)
    assert image.format == "PNG" and image.width >= 7 * 140 and image.height >= 400
    colours = {c for _, c in image.convert("RGB").getcolors(1 << 20) or []}
    # Okabe-Ito: low sky blue, moderate orange, high vermillion; peer support purple.
    for hex_colour in ("#56B4E9", "#E69F00", "#D55E00", "#CC79A7"):
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, hex_colour


def test_the_html_page_holds_the_picture_and_every_fact_as_text(
    example: Path, tmp_path: Path
) -> None:
    out = tmp_path / "week.html"
    assert invoke(example, "--format", "html", "--output", str(out)).exit_code == 0
    page = out.read_text()
    [data] = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"
    assert "load 12 of 12 (at the limit)" in page and "<script" not in page
    assert not any(word in page for word in EVENT_TEXT)


def test_a_past_week_is_shown_as_it_stood(example: Path) -> None:
    [week] = as_json(example, "--week", "2026-11-18")["weeks"]
    assert week["week"] == "2026-11-16"
    assert week["hours"]["client"] > 0


def test_a_calendar_that_cannot_be_read_means_no_report(example: Path) -> None:
    (example.parent / "examples" / "clinic.ics").write_text("this is not a calendar\n")
    result = invoke(example)
    assert result.exit_code == 2
    assert "clinic.ics" in result.stderr and result.stdout == ""


def test_a_picture_needs_a_file_when_several_clinicians_or_a_terminal(example: Path) -> None:
    result = invoke(example, "--format", "png", "--week", "someday")
    assert result.exit_code == 2 and "--week: 'someday' is not a date" in result.output


def test_the_practice_view_has_aggregates_only(example: Path) -> None:
    result = invoke(example, "--practice")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "sessions 20 of 22" in text and "heaviest day's load 12 of 12" in text
    assert "level_limits.max_per_day 1" in text and "on track" in text
    assert not re.search(r"\d\d:\d\d", text)  # no times
    assert not any(word in text for word in EVENT_TEXT)
    data = json.loads(invoke(example, "--practice", "--format", "json").stdout)
    [lee] = data["clinicians"]
    assert (lee["sessions"], lee["days_at_load_limit"], lee["readable"]) == (20, 1, True)
    page = invoke(example, "--practice", "--format", "html").stdout
    assert "<table" in page and "Dr. Sam Lee" in page and not re.search(r"\d\d:\d\d", page)
    assert invoke(example, "--practice", "--format", "png").exit_code == 2


def test_the_practice_view_names_a_clinician_whose_calendar_could_not_be_read(
    example: Path,
) -> None:
    (example.parent / "examples" / "personal.ics").write_text("this is not a calendar\n")
    result = invoke(example, "--practice", "--format", "json")
    assert result.exit_code == 2
    [lee] = json.loads(result.stdout)["clinicians"]
    assert lee["readable"] is False and lee["cadence"] == "unknown"
