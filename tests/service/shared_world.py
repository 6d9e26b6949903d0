"""Six clinicians on one PostgreSQL state, for the tests of instances that share it: each
has a practice calendar (.ics) with two heavy sessions on Tuesday (one over the day's
limit: a notice) and more on the days given, and a buffers calendar (.ics)."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

from caldaemon.state.postgres import PostgresLocation
from tests.service.workspace import Session, stamp
from tests.support import TZ

START = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)  # a Monday, 08:00
CLINICIANS = [f"c{n}" for n in range(6)]
POLL = 10  # seconds, the shortest poll_interval: leases last 3 polls


def practice(sessions: list[Session]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//practice//EN"]
    for s in sessions:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{s.uid}",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID=America/Toronto:{stamp(s.start)}",
            f"DTEND;TZID=America/Toronto:{stamp(s.start + timedelta(minutes=s.minutes))}",
            f"SUMMARY:{s.title}",
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"


def sessions(day_offsets: list[int]) -> list[Session]:
    """Two heavy sessions on Tuesday (one over the day's limit: a notice), and one on each
    of ``day_offsets`` days after START (a buffer each)."""
    tuesday = START + timedelta(days=1)
    found = [
        Session("tue-1", tuesday.replace(hour=10)),
        Session("tue-2", tuesday.replace(hour=13)),
    ]
    found += [
        Session(f"day-{n}", (START + timedelta(days=n)).replace(hour=11)) for n in day_offsets
    ]
    return found


def write_world(root: Path, location: PostgresLocation) -> Path:
    blocks = []
    for clinician in CLINICIANS:
        folder = root / clinician
        folder.mkdir()
        (folder / "practice.ics").write_text(practice(sessions([2])))
        blocks.append(
            textwrap.indent(
                textwrap.dedent(f"""\
                - id: {clinician}
                  email: {clinician}@example.org
                  rules: standard
                  calendars:
                    - {{id: practice, provider: ics, path: {clinician}/practice.ics}}
                    - {{id: buffers, provider: ics, path: {clinician}/buffers.ics}}
                  buffers_to: buffers
                """),
                "  ",
            )
        )
    config = root / "config.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        timezone: America/Toronto
        daemon:
          state_dir: state
          poll_interval: {POLL}s
          horizon: 7d
          state: "{location.url}"
          state_password_file: {location.password_file}
        clinicians:
        """)
        + "".join(blocks)
        + textwrap.dedent("""\
        rule_sets:
          standard:
            working_hours: {mon-fri: "09:00-17:00"}
            level_limits: {high: {max_per_day: 1}}
            buffers:
              - {after: high, length: 15m, title: Grounding time}
        notices:
          quiet_outside_working_hours: false
        """)
    )
    return config
