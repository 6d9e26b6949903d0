"""Full daemon cycles with the clinician's Google calendar (also their buffers_to) on the
local fake of Calendar API v3, next to an .ics calendar of the same clinician."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon.errors import AuthorizationError
from caldaemon.providers.base import OWNER_KEY
from caldaemon.providers.google.mapping import event_id
from caldaemon.service.daemon import Daemon
from tests import state_view
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.providers.test_contract_google import write_client, write_token
from tests.support import TZ, StepClock

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)  # a Monday
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
EMAIL = "lee@example.org"
COMMAND = "caldaemon auth google --clinician lee --calendar work"


class World:
    """Dr. Lee's Google calendar on the fake server, a personal .ics, and the daemon."""

    def __init__(self, server: GoogleCalendarServer, root: Path) -> None:
        self.server, self.root, self.clock = server, root, StepClock(NOW)
        self.refresh_token = server.issue_refresh_token()
        write_client(root / "google-client.json", server)
        tokens = root / "state" / "tokens"
        tokens.mkdir(parents=True, mode=0o700)
        # Where `caldaemon auth google` keeps it by default.
        write_token(tokens / "lee-work.google.json", server, self.refresh_token)
        (root / "personal.ics").write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//me//EN\r\nBEGIN:VEVENT\r\n"
            "UID:dentist@me\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20261202T190000Z\r\n"
            "DTEND:20261202T200000Z\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        (root / "config.yaml").write_text(f"""\
timezone: America/Toronto
daemon: {{state_dir: state, horizon: 14d}}
clinicians:
  - id: lee
    name: Dr. Lee
    email: {EMAIL}
    rules: standard
    calendars:
      - {{id: work, provider: google, credentials: google-client.json,
          api_endpoint: "{server.url}", timeout: 5s}}
      - {{id: personal, provider: ics, path: personal.ics, use: busy}}
    buffers_to: work
rule_sets:
  standard:
    working_hours: {{mon-fri: "09:00-17:00"}}
    buffers:
      - {{after: high, length: 15m, title: Grounding time}}
notices:
  quiet_outside_working_hours: false
""")
        self.daemon = Daemon(str(root / "config.yaml"), clock=self.clock)

    def session(self, uid: str, start: datetime, minutes: int = 50) -> str:
        end = start + timedelta(minutes=minutes)
        stored = self.server.put_event(
            "primary",
            {
                "id": uid,
                "summary": "Session with Zebulon Q. #heavy",
                "description": "Client Zebulon Quixote-Marchetti, call 555-0199",
                "start": {"dateTime": start.isoformat(), "timeZone": "America/Toronto"},
                "end": {"dateTime": end.isoformat(), "timeZone": "America/Toronto"},
            },
        )
        return str(stored["id"])

    def cycle(self) -> Any:
        self.clock.advance()
        [report] = self.daemon.once()
        return report

    def buffers(self) -> list[dict[str, Any]]:
        return sorted(
            (
                e
                for e in self.server.events("primary")
                if OWNER_KEY in (e.get("extendedProperties") or {}).get("private", {})
            ),
            key=lambda e: e["start"]["dateTime"],
        )

    @property
    def state_dir(self) -> Path:
        return self.root / "state"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with GoogleCalendarServer(primary_email=EMAIL) as server:
        world = World(server, tmp_path)
        world.session("session0001", MON_10)
        world.session("session0002", MON_10 + timedelta(days=1))
        yield world
        world.daemon.close()


def test_buffers_appear_on_google_with_the_owner_marker(world: World) -> None:
    report = world.cycle()
    assert (report.calendars_ok, report.created, report.calendar_errors) == (2, 2, [])
    placed = world.buffers()
    assert [b["start"]["dateTime"] for b in placed] == [
        "2026-11-30T15:50:00Z",
        "2026-12-01T15:50:00Z",
    ]
    for b in placed:
        identity = b["extendedProperties"]["private"][OWNER_KEY]
        assert b["id"] == event_id(identity) and b["summary"] == "Grounding time"
        assert b["transparency"] == "opaque" and "attendees" not in b
        assert b["reminders"] == {"useDefault": False, "overrides": []}
    with state_view.tables(world.state_dir) as tables:
        assert tables.buffers.counts() == {"active": 2}
    # Nothing from the events' text is kept in state.
    dump = state_view.dump_text(world.state_dir)
    assert "Zebulon" not in dump and "555-0199" not in dump


def test_a_poll_without_changes_makes_exactly_one_request(world: World) -> None:
    world.cycle()
    world.server.clear_requests()
    report = world.cycle()  # lists our own two buffers as changes, writes nothing
    assert (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert [(r.method, r.path) for r in world.server.requests] == [
        ("GET", "/calendars/primary/events")
    ]
    world.server.clear_requests()
    world.cycle()
    [request] = world.server.requests
    assert request.param("syncToken") and request.status == 200
    # A restarted daemon reads the refreshed access token from the token file.
    world.daemon.close()
    world.daemon = Daemon(str(world.root / "config.yaml"), clock=world.clock)
    world.server.clear_requests()
    world.cycle()
    assert len(world.server.requests) == 1


def test_a_session_moved_on_google_moves_its_buffer(world: World) -> None:
    world.cycle()
    world.session("session0001", MON_10 + timedelta(hours=3))
    report = world.cycle()
    assert (report.updated, report.created, report.deleted) == (1, 0, 0)
    assert [b["start"]["dateTime"] for b in world.buffers()] == [
        "2026-11-30T18:50:00Z",
        "2026-12-01T15:50:00Z",
    ]
    assert world.cycle().updated == 0


def test_a_buffer_the_user_deleted_is_not_recreated(world: World) -> None:
    world.cycle()
    tuesday = world.buffers()[1]
    world.server.delete_event("primary", tuesday["id"])
    assert world.cycle().created == 0
    assert world.cycle().created == 0
    assert len(world.buffers()) == 1
    stub = world.server.get_event("primary", tuesday["id"])
    assert stub is not None and stub["status"] == "cancelled"
    with state_view.tables(world.state_dir) as tables:
        statuses = [b.status for b in tables.buffers.all() if b.status != "active"]
    assert statuses == ["user_deleted"]


def test_an_expired_authorization_pauses_only_that_calendar_with_one_notice(world: World) -> None:
    world.cycle()
    world.server.revoke_refresh_token(world.refresh_token)
    report = world.cycle()
    [error] = report.calendar_errors
    assert isinstance(error, AuthorizationError) and error.command == COMMAND
    assert report.calendars_ok == 1  # the .ics calendar was still read
    world.server.clear_requests()
    report = world.cycle()
    assert report.calendars_ok == 1 and len(report.calendar_errors) == 1
    assert world.server.requests == []  # paused: Google is not asked again for now
    with state_view.tables(world.state_dir) as tables:
        notices = [n for n in tables.outbox.all() if "auth google" in n.text]
        calendars = [
            (c.calendar, c.last_success == world.clock(), c.paused is not None)
            for c in tables.calendars.all()
        ]
        problems = tables.problems.keys()
    assert len(notices) == 1
    assert notices[0].recipient == EMAIL and COMMAND in notices[0].text
    assert world.refresh_token not in notices[0].text
    assert calendars == [("personal", True, False), ("work", False, True)]
    assert len(problems) == 1


def test_a_paused_calendar_is_not_also_reported_as_unreachable(world: World) -> None:
    world.cycle()
    world.server.revoke_refresh_token(world.refresh_token)
    for _ in range(40):  # 80 minutes of 2-minute polls: past the hour "unreachable" waits
        world.cycle()
    with state_view.tables(world.state_dir) as tables:
        assert len(tables.outbox.all()) == 1
        assert tables.problems.keys() == ["calendar:lee/work:auth"]
