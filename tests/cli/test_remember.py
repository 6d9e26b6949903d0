"""``caldaemon mark`` and ``caldaemon ack`` on the example (DESIGN.md §10): a level given
to one event or a series, a violation accepted for good or until a date, and what
``check`` then shows and exits with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from caldaemon.cli import main

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-30T08:00"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    config = tmp_path / "config.yaml"
    text = (ROOT / "config.example.yaml").read_text()
    config.write_text(text.replace(".caldaemon-example/state", str(tmp_path / "state")))
    return config


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def check(config: Path) -> dict[str, Any]:
    result = invoke("check", "--config", str(config), "--now", NOW, "--json")
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_a_marked_series_changes_every_occurrence_and_clearing_undoes_it(example: Path) -> None:
    events = json.loads(invoke("events", "--config", str(example), "--now", NOW, "--json").stdout)[
        "events"
    ]
    late = next(e for e in events if e["start"].startswith("2026-12-01T16:30"))
    assert late["level"] == "high"
    series = late["id"].rsplit("@", 1)[0]
    marked = invoke("mark", "--config", str(example), "--now", NOW, series, "low")
    assert marked.exit_code == 0, marked.output
    events = json.loads(invoke("events", "--config", str(example), "--now", NOW, "--json").stdout)[
        "events"
    ]
    occurrences = [e for e in events if e["id"].rsplit("@", 1)[0] == series]
    assert len(occurrences) >= 2
    assert {(e["level"], e["why"]) for e in occurrences} == {("low", "marked low")}
    assert not any(v["rule"] == "level_limits.latest_start" for v in check(example)["violations"])
    cleared = invoke("mark", "--config", str(example), "--now", NOW, "--clear", series)
    assert cleared.exit_code == 0, cleared.output
    assert any(v["rule"] == "level_limits.latest_start" for v in check(example)["violations"])


def test_marking_an_unknown_event_or_level_is_refused_in_one_line(example: Path) -> None:
    unknown = invoke("mark", "--config", str(example), "--now", NOW, "no-such-event", "high")
    assert unknown.exit_code == 2 and "no event 'no-such-event'" in unknown.output
    level = invoke("mark", "--config", str(example), "--now", NOW, "no-such-event", "extreme")
    assert level.exit_code == 2 and "one of low, moderate, high" in level.output


def test_an_acked_violation_is_listed_apart_and_not_counted_in_the_exit_code(
    example: Path,
) -> None:
    data = check(example)
    double_booked = next(v for v in data["violations"] if v["rule"] == "double_booked")
    assert double_booked["accepted"] is False
    acked = invoke("ack", "--config", str(example), "--now", NOW, double_booked["fingerprint"][:8])
    assert acked.exit_code == 0, acked.output
    after = next(v for v in check(example)["violations"] if v["rule"] == "double_booked")
    assert after["accepted"] is True
    text = invoke("check", "--config", str(example), "--now", NOW).output
    # The 3 the example accepts with #ok, and this one.
    assert "4 accepted exceptions (no notices):" in text


def test_an_ack_until_a_date_ends_on_that_date(example: Path) -> None:
    data = check(example)
    target = next(v for v in data["violations"] if v["rule"] == "double_booked")
    acked = invoke(
        "ack",
        "--config",
        str(example),
        "--now",
        NOW,
        "--until",
        "2026-11-29",
        target["fingerprint"],
    )
    assert acked.exit_code == 0, acked.output
    after = next(v for v in check(example)["violations"] if v["rule"] == "double_booked")
    assert after["accepted"] is False  # 29 Nov has passed by 30 Nov


def test_only_unaccepted_errors_count_for_the_exit_code(example: Path) -> None:
    for violation in check(example)["violations"]:
        if violation["severity"] == "error" and not violation["accepted"]:
            invoke("ack", "--config", str(example), "--now", NOW, violation["fingerprint"])
    result = invoke("check", "--config", str(example), "--now", NOW)
    assert result.exit_code == 0, result.output


def test_the_ok_tag_accepts_every_violation_its_event_is_part_of(example: Path) -> None:
    accepted = [v for v in check(example)["violations"] if v["accepted"]]
    # The monthly Saturday session tagged #ok: on a day off, the 9th heavy session of its
    # week, its 6th working day.
    assert sorted(v["rule"] for v in accepted) == [
        "days_off",
        "level_limits.max_per_week",
        "max_work_days_per_week",
    ]
