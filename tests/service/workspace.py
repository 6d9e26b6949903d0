"""A clinician's world on disk for daemon tests: a config, a practice calendar written
as .ics, and a buffers calendar that caldaemon writes to."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from caldaemon.service.daemon import Daemon
from tests.support import TZ

CANARY = "Zebulon Quixote-Marchetti"


def stamp(moment: datetime) -> str:
    return moment.astimezone(TZ).strftime("%Y%m%dT%H%M%S")


@dataclass
class Session:
    uid: str
    start: datetime
    minutes: int = 50
    title: str = f"Session with {CANARY} #heavy"
    status: str | None = None


@dataclass
class Workspace:
    root: Path
    sessions: list[Session] = field(default_factory=list)
    max_deletes: int = 20
    notices: str = ""

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def practice(self) -> Path:
        return self.root / "practice.ics"

    @property
    def buffers(self) -> Path:
        return self.root / "buffers.ics"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def write_config(self) -> None:
        self.config.write_text(
            textwrap.dedent(f"""\
            timezone: America/Toronto
            daemon: {{state_dir: state, horizon: 14d, max_deletes_per_cycle: {self.max_deletes}}}
            clinicians:
              - id: lee
                name: Dr. Lee
                email: lee@example.org
                rules: standard
                calendars:
                  - {{id: practice, provider: ics, path: practice.ics}}
                  - {{id: buffers, provider: ics, path: buffers.ics}}
                buffers_to: buffers
            rule_sets:
              standard:
                working_hours: {{mon-fri: "09:00-17:00"}}
                level_limits: {{high: {{max_per_day: 1}}}}
                buffers:
                  - {{after: high, length: 15m, title: Grounding time}}
            notices:
              quiet_outside_working_hours: false
            """)
            + textwrap.indent(self.notices, "  ")
            + "\n"
        )

    def write_practice(self) -> None:
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//practice//EN"]
        for s in self.sessions:
            lines += [
                "BEGIN:VEVENT",
                f"UID:{s.uid}",
                "DTSTAMP:20260101T000000Z",
                f"DTSTART;TZID=America/Toronto:{stamp(s.start)}",
                f"DTEND;TZID=America/Toronto:{stamp(s.start + timedelta(minutes=s.minutes))}",
                f"SUMMARY:{s.title}",
                f"DESCRIPTION:Client {CANARY}, call 555-0199",
                f"LOCATION:{CANARY}'s office",
            ]
            if s.status:
                lines.append(f"STATUS:{s.status}")
            lines.append("END:VEVENT")
        lines.append("END:VCALENDAR")
        self.practice.write_text("\r\n".join(lines) + "\r\n")

    def daemon(self, now: datetime, **kwargs) -> Daemon:  # type: ignore[no-untyped-def]
        self.write_config()
        return Daemon(str(self.config), clock=lambda: now, **kwargs)

    def cycle(self, now: datetime, **kwargs):  # type: ignore[no-untyped-def]
        self.write_practice()
        service = self.daemon(now, **kwargs)
        try:
            [report] = service.once()
        finally:
            service.close()
        return report

    def buffer_blocks(self) -> list[str]:
        if not self.buffers.exists():
            return []
        text = self.buffers.read_text()
        return [block for block in text.split("BEGIN:VEVENT")[1:] if "X-CALDAEMON-BUFFER" in block]
