"""``caldaemon slots`` on the example (DESIGN.md §11): every start it offers, booked on the
calendar, makes ``check`` report no new error; its JSON; failing closed."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import caldaemon.cli.slots  # noqa: F401
from caldaemon import config
from caldaemon.cli.app import main
from caldaemon.core.assess import assess, window
from caldaemon.model import Event, Severity, Window
from caldaemon.service.read import read_calendars

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-30T08:00"
# How a clinician would write each level on the practice calendar (config.example.yaml).
TITLES = {"high": "Client session #heavy", "moderate": "Intake #intake", "low": "Client #light"}


@pytest.fixture
def example(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    path = tmp_path / "config.yaml"
    path.write_text((ROOT / "config.example.yaml").read_text())
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def slots(example: Path, *args: str):
    return invoke("slots", "--config", str(example), "--now", NOW, "--length", "50m", *args)


def _errors(events: list[Event], settings: config.Settings, now: datetime):
    clinician = settings.clinicians[0]
    found = assess(clinician, settings.classification, events, now, settings.daemon.horizon)
    return {
        v.fingerprint: v for v in found.evaluation.violations if v.severity is Severity.ERROR
    }, found.classified


@pytest.mark.parametrize("level", ["high", "moderate", "low"])
def test_no_start_offered_would_make_check_report_a_new_error(example, level):
    result = slots(example, "--level", level, "--count", "50", "--step", "5m", "--json")
    offered = json.loads(result.stdout)["slots"]
    assert result.exit_code == (0 if offered else 1), result.output
    settings = config.load(example)
    now = datetime.fromisoformat(NOW).replace(tzinfo=settings.tz)
    clinician = settings.clinicians[0]
    events, _, problems = read_calendars(
        settings, clinician, Window(*window(clinician, now, settings.daemon.horizon))
    )
    assert problems == []
    before, _ = _errors(events, settings, now)
    for n, slot in enumerate(offered):
        booked = Event(
            calendar="practice",
            id=f"booked-{n}",
            start=datetime.fromisoformat(slot["start"]),
            end=datetime.fromisoformat(slot["end"]),
            title=TITLES[level],
        )
        after, classified = _errors([*events, booked], settings, now)
        assert next(c.level for c in classified if c.event is booked) == level
        new = [
            v
            for fp, v in after.items()
            if fp not in before or (booked.key in v.events and before[fp].message != v.message)
        ]
        assert new == [], (slot["start"], [v.message for v in new])
    if level == "high":
        # The example keeps 8 high-intensity sessions a week and has them every week.
        assert offered == []
    else:
        assert len(offered) == 50


def test_text_lists_start_times_with_their_buffers_and_warnings(example):
    result = slots(example, "--level", "moderate", "--count", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Dr. Sam Lee (lee): 2 start times for a 50-minute moderate-intensity session "
        "(Mon 30 Nov 08:00 to Mon 14 Dec 08:00):"
    )
    assert lines[1] == "  Tue 1 Dec 13:00–13:50 (moderate) — notes 13:50–14:00"
    # Tuesday's load goes over a limit kept as a warning: said, not ruled out.
    assert lines[2].startswith("      warning: a session load of 13")


def test_text_says_why_nothing_fits(example):
    result = slots(example, "--level", "high")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "Dr. Sam Lee (lee): nowhere from Mon 30 Nov 08:00 to Mon 14 Dec 08:00 does a "
        "50-minute high-intensity session fit inside your boundaries.",
        "  Days ruled out: 11 by level_limits.max_per_week, 4 by days_off.",
    ]


def test_json_has_the_contract_fields(example):
    result = slots(example, "--level", "moderate", "--count", "3", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {"now", "slots", "warnings", "errors"} <= set(data)
    assert data["now"] == "2026-11-30T08:00:00-05:00" and data["errors"] == []
    first = data["slots"][0]
    assert set(first) == {"clinician", "start", "end", "level", "buffers", "warnings"}
    assert (first["clinician"], first["level"]) == ("lee", "moderate")
    assert (first["start"], first["end"]) == (
        "2026-12-01T13:00:00-05:00",
        "2026-12-01T13:50:00-05:00",
    )
    assert first["buffers"] == [
        {
            "start": "2026-12-01T13:50:00-05:00",
            "end": "2026-12-01T14:00:00-05:00",
            "title": "Notes",
            "calendar": "buffers",
        }
    ]
    assert {w["rule"] for w in first["warnings"]} == {"max_daily_load", "breaks"}
    [searched] = data["searched"]
    assert searched["clinician"] == "lee" and searched["to"] == "2026-12-14T08:00:00-05:00"


def test_from_a_later_day_and_the_default_level(example):
    result = slots(example, "--from", "2026-12-07", "--count", "1", "--json")
    [slot] = json.loads(result.stdout)["slots"]
    assert slot["level"] == "moderate"  # classification.default_level
    assert slot["start"] >= "2026-12-07"


def test_nothing_from_an_event_is_printed(example):
    settings = config.load(example)
    now = datetime.fromisoformat(NOW).replace(tzinfo=settings.tz)
    clinician = settings.clinicians[0]
    events, _, _ = read_calendars(
        settings, clinician, Window(*window(clinician, now, settings.daemon.horizon))
    )
    titles = {e.title for e in events if e.title}
    out = slots(example, "--level", "low", "--count", "50").stdout
    out += slots(example, "--level", "low", "--count", "50", "--json").stdout
    assert titles and not [t for t in titles if t in out]


def test_an_unreadable_calendar_shows_no_start_and_exits_2(example):
    (example.parent / "examples" / "personal.ics").write_text("this is not a calendar\n")
    result = slots(example, "--level", "low", "--json")
    assert result.exit_code == 2
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert "personal.ics" in line
    data = json.loads(result.stdout)
    assert data["slots"] == [] and len(data["errors"]) == 1
    text = slots(example, "--level", "low")
    assert text.exit_code == 2
    assert "incomplete: could not read 'personal'" in text.stdout
    assert "start times for" not in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--level", "extreme"], "--level: 'extreme' is not a level (levels: low, moderate, high)"),
        (["--length", "0m"], "--length: '0m' must be whole minutes"),
        (["--length", "13h"], "--length: '13h' must be whole minutes, more than 0 and at most 12h"),
        (["--length", "50m30s"], "--length: '50m30s' must be whole minutes"),
        (["--length", "soon"], "--length: 'soon' is not a duration"),
        (["--step", "7m"], "--step: '7m' is not one of 5m, 10m, 15m, 20m, 30m, 60m"),
        (["--count", "0"], "0 is not in the range 1<=x<=50"),
        (["--count", "51"], "51 is not in the range 1<=x<=50"),
        (["--from", "next week"], "--from: 'next week' is not a date"),
        (["--clinician", "kim"], "no clinician 'kim' (known: lee)"),
    ],
)
def test_bad_input_is_a_clear_error_exit_2(example, args, message):
    result = invoke("slots", "--config", str(example), "--now", NOW, "--length", "50m", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
