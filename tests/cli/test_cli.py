"""The command line contract of DESIGN.md §4: check, events, validate; exit codes and JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon.cli import main

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-30T08:00"


@pytest.fixture
def example(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "config.example.yaml").read_text())
    return config


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_check_json_has_the_contract_fields(example):
    result = invoke("check", "--config", str(example), "--now", NOW, "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["now"] == "2026-11-30T08:00:00-05:00"
    violation = data["violations"][0]
    assert {"clinician", "rule", "severity", "date", "start", "end", "message", "events"} <= set(
        violation
    )
    limits = [v for v in data["violations"] if v["rule"] == "level_limits.max_per_day"]
    assert limits[0]["level"] == "high" and limits[0]["date"] == "2026-11-30"
    assert limits[0]["message"] == "3 high-intensity sessions on Mon 30 Nov; your limit is 2"
    buffer = data["buffers"][0]
    assert set(buffer) == {"clinician", "calendar", "start", "end", "title", "after"}
    assert buffer["calendar"] == "buffers"


def test_check_text_is_grouped_by_day_and_says_each_fact_once(example):
    result = invoke("check", "--config", str(example), "--now", NOW)
    assert result.exit_code == 1
    data = json.loads(invoke("check", "--config", str(example), "--now", NOW, "--json").stdout)
    open_ones = [v for v in data["violations"] if not v.get("accepted")]
    # 16 open violations are 7 facts (DESIGN.md §10 "One fact, one line"); the monthly
    # Saturday session tagged #ok accepts the 3 it is part of.
    assert (len(open_ones), len({v["group"] for v in open_ones})) == (16, 7)
    assert "Dr. Sam Lee (lee): 7 things to look at" in result.output
    assert "3 accepted exceptions (no notices):" in result.output
    assert "\n  Tue 1 Dec\n" in result.output
    assert (
        "every Tuesday, 16:30–17:20: outside your hours (09:00–17:00) and after 15:00 for "
        "high-intensity work; 1 Dec, 8 Dec" in result.output
    )
    assert "grounding time shortened to 10 minutes" in result.output
    assert "Protected time (8 holds):" in result.output  # Mondays are full (load 12 of 12)
    assert "Buffers (34, on 'buffers')" in result.output


def test_check_exits_0_when_only_warnings_remain(example):
    text = example.read_text().replace(
        "severity: {max_daily_load: warning, breaks: warning}",
        "severity: {level_limits: warning, working_hours: warning,"
        " no_back_to_back: warning, buffers: warning, days_off: "
        "warning, double_booked: warning, max_work_days_per_week:"
        " warning, breaks: warning}",
    )
    example.write_text(text)
    result = invoke("check", "--config", str(example), "--now", NOW)
    assert result.exit_code == 0, result.output


def test_check_for_one_clinician_and_an_unknown_one(example):
    assert (
        invoke("check", "--config", str(example), "--now", NOW, "--clinician", "lee").exit_code == 1
    )
    result = invoke("check", "--config", str(example), "--now", NOW, "--clinician", "kim")
    assert result.exit_code == 2 and "no clinician 'kim' (known: lee)" in result.output


def test_an_unreadable_calendar_is_one_line_exit_2_and_nothing_is_judged_from_the_rest(
    example,
):
    (example.parent / "examples" / "personal.ics").write_text("this is not a calendar\n")
    result = invoke("check", "--config", str(example), "--now", NOW, "--json")
    assert result.exit_code == 2
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert "personal.ics" in line
    out = json.loads(result.stdout)
    # Failing closed (DESIGN.md §5): rules over the practice calendar alone would judge
    # partial data (a busy personal event could be the reason a buffer has no room).
    assert out["violations"] == [] and out["buffers"] == []
    assert [i["calendar"] for i in out["incomplete"]] == ["personal"]
    text = invoke("check", "--config", str(example), "--now", NOW)
    assert text.exit_code == 2
    assert "incomplete: could not read 'personal'" in text.stdout
    assert "everything fits" not in text.stdout


def test_missing_calendar_file_is_named(example):
    (example.parent / "examples" / "practice.ics").unlink()
    result = invoke("events", "--config", str(example), "--now", NOW)
    assert result.exit_code == 2
    assert "practice.ics: file not found" in result.stderr
    assert "Traceback" not in result.output


def test_events_shows_kind_level_and_why(example):
    result = invoke("events", "--config", str(example), "--now", NOW, "--json")
    assert result.exit_code == 0
    events = json.loads(result.stdout)["events"]
    heavy = [e for e in events if e.get("title", "").startswith("Session R.T.")]
    assert heavy[0]["kind"] == "session" and heavy[0]["level"] == "high"
    assert heavy[0]["why"] == "tag #heavy → high" and heavy[0]["accepted"] is False
    clinic = next(e for e in events if e["calendar"] == "clinic" and e["title"] == "Appointment")
    assert clinic["why"].startswith("classification.rules[")
    saturday = next(e for e in events if e.get("title", "").startswith("Session N.U."))
    assert saturday["accepted"] is True  # tagged #ok
    redacted = invoke("events", "--config", str(example), "--now", NOW, "--redact")
    assert "R.T." not in redacted.output and "session/high" in redacted.output


def test_bad_now_is_a_clear_error(example):
    result = invoke("check", "--config", str(example), "--now", "monday")
    assert result.exit_code == 2
    assert "--now: 'monday' is not an ISO 8601 time" in result.output


def test_help_lists_every_command():
    result = invoke("--help")
    for command in ("run", "check", "events", "validate", "auth", "status"):
        assert f"  {command} " in result.output
