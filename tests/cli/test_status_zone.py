"""``caldaemon status`` shows times as each clinician reads them (DESIGN.md §12): in their
own time zone, with the zone named; ``--json`` keeps UTC (a contract of §4)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from caldaemon.cli import main

CALENDAR = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"
# 08:00 in Toronto: 13:00 UTC, 14:00 in Berlin.
NOW = "2026-11-30T08:00"


def test_status_prints_each_clinicians_times_in_their_zone_and_names_it(tmp_path: Path) -> None:
    (tmp_path / "lee.ics").write_text(CALENDAR)
    (tmp_path / "kim.ics").write_text(CALENDAR)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"timezone: America/Toronto\n"
        f"daemon: {{state_dir: '{tmp_path / 'state'}'}}\n"
        "clinicians:\n"
        "  - id: lee\n"
        "    timezone: Europe/Berlin\n"
        "    rules: standard\n"
        "    calendars:\n"
        f"      - {{id: practice, provider: ics, path: '{tmp_path / 'lee.ics'}'}}\n"
        f"      - {{id: clinic, provider: ics, path: '{tmp_path / 'missing.ics'}'}}\n"
        "  - id: kim\n"
        "    rules: standard\n"
        "    calendars:\n"
        f"      - {{id: practice, provider: ics, path: '{tmp_path / 'kim.ics'}'}}\n"
        "rule_sets:\n"
        "  standard: {max_sessions_per_day: 6}\n"
    )
    run = CliRunner().invoke(main, ["run", "--config", str(path), "--once", "--now", NOW])
    assert run.exit_code == 2  # lee's clinic calendar cannot be read

    text = CliRunner().invoke(main, ["status", "--config", str(path)])
    assert text.exit_code == 0, text.output
    calendars = {line.split(":")[0].strip(): line for line in text.stdout.splitlines()}
    assert "last sync Mon 30 Nov 14:00 Europe/Berlin; ok" in calendars["lee/practice"]
    assert (
        "last sync never; last error Mon 30 Nov 14:00 Europe/Berlin:" in (calendars["lee/clinic"])
    )
    assert "last sync Mon 30 Nov 08:00 America/Toronto; ok" in calendars["kim/practice"]

    raw = json.loads(CliRunner().invoke(main, ["status", "--config", str(path), "--json"]).stdout)
    stamps = {(c["clinician"], c["calendar"]): c["last_success"] for c in raw["calendars"]}
    assert stamps[("lee", "practice")] == stamps[("kim", "practice")] == "2026-11-30T13:00:00+00:00"
