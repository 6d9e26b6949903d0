"""``caldaemon hours`` (DESIGN.md §11): the log adds up, past sessions a feed stopped
showing still count from the daemon's history, and a calendar that cannot be read shows no
total."""

from __future__ import annotations

import csv
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from caldaemon.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-30T08:00"
KINDS = ("client", "supervision", "peer_support", "admin", "personal")
CANARY = "Canary Client Rosalind"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    path = tmp_path / "config.yaml"
    text = (ROOT / "config.example.yaml").read_text()
    path.write_text(text.replace(".caldaemon-example/", f"{tmp_path}/state-folder/"))
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["hours", *args])


def rows(result: Result) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_weeks_and_months_each_add_up_to_the_total_in_every_column(example: Path) -> None:
    table = rows(invoke("--config", str(example), "--now", NOW, "--csv"))
    [total] = [r for r in table if r["period"] == "total"]
    assert (total["start"], total["end"]) == ("2025-12-01", "2026-11-30")
    assert Decimal(total["client_hours"]) > 800  # the example's recurring week, a year of it
    for period in ("week", "month"):
        part = [r for r in table if r["period"] == period]
        assert len(part) == (53 if period == "week" else 12)
        for kind in KINDS:
            column = f"{kind}_hours"
            assert sum(Decimal(r[column]) for r in part) == Decimal(total[column]), column
        assert sum(int(r["sessions"]) for r in part) == int(total["sessions"])


def test_the_table_names_the_range_and_where_each_calendar_was_read(example: Path) -> None:
    result = invoke("--config", str(example), "--now", NOW, "--from", "2026-11-01")
    assert result.exit_code == 0, result.output
    assert "Hours of Dr. Sam Lee (lee), 1 Nov 2026 to 30 Nov 2026" in result.stdout
    assert "Nov 2026" in result.stdout and "Total" in result.stdout
    assert "practice, clinic, personal, buffers: read live" in result.stdout


SESSION = """BEGIN:VEVENT
UID:{uid}
DTSTAMP:20261101T120000Z
DTSTART;TZID=America/Toronto:{day}T{hour}0000
DTEND;TZID=America/Toronto:{day}T{hour}5000
SUMMARY:{canary} #heavy
END:VEVENT
"""


def feed(path: Path, days: list[str]) -> None:
    events = "".join(
        SESSION.format(uid=f"s-{day}-{hour}", day=day, hour=hour, canary=CANARY)
        for day in days
        for hour in (10, 11)
    )
    path.write_text(f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{events}END:VCALENDAR\n")


def test_sessions_a_feed_stopped_showing_still_count_from_the_daemons_history(
    example: Path,
) -> None:
    practice = example.parent / "examples" / "practice.ics"
    feed(practice, ["20261116", "20261117", "20261124"])
    runner = CliRunner()
    run = runner.invoke(
        main, ["run", "--once", "--config", str(example), "--now", "2026-11-17T18:00"]
    )
    assert run.exit_code in (0, 1), run.output
    # A week later the practice system's feed shows only what is to come.
    feed(practice, ["20261124"])
    later = "2026-11-24T18:00"
    run = runner.invoke(main, ["run", "--once", "--config", str(example), "--now", later])
    assert run.exit_code in (0, 1), run.output

    args = ("--config", str(example), "--now", later, "--from", "2026-11-16", "--csv")
    [kept] = [r for r in rows(invoke(*args)) if r["period"] == "total"]
    [live] = [r for r in rows(invoke(*args, "--live")) if r["period"] == "total"]
    # Three days of two 50-minute heavy sessions from history; --live sees only the last.
    assert int(kept["sessions_high"]) - int(live["sessions_high"]) == 4
    assert Decimal(kept["client_hours"]) - Decimal(live["client_hours"]) == Decimal("3.33")
    text = invoke("--config", str(example), "--now", later, "--from", "2026-11-16")
    assert "buffers: caldaemon's history from 2026-11-16." in text.stdout
    state = (example.parent / "state-folder" / "state" / "state.sqlite3").read_bytes()
    assert CANARY.encode() not in state and CANARY not in text.output


def test_an_unreadable_calendar_shows_no_total_and_exits_2(example: Path) -> None:
    (example.parent / "examples" / "clinic.ics").write_text("not a calendar\n")
    result = invoke("--config", str(example), "--now", NOW, "--csv")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "clinic.ics" in result.stderr and "no hours shown" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-12-01"], "--from 2026-12-01 is after today (2026-11-30)"),
        (["--from", "2026-11-10", "--to", "2026-11-01"], "--from 2026-11-10 is after --to"),
        (["--from", "2000-01-01"], "more than ten years apart"),
        (["--to", "yesterday"], "--to: 'yesterday' is not a date"),
    ],
)
def test_a_range_that_cannot_be_counted_is_a_clear_error(
    example: Path, args: list[str], message: str
) -> None:
    result = invoke("--config", str(example), "--now", NOW, *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
