"""Full daemon cycles with the clinician's Google calendar (also their buffers_to) on the
local fake of Calendar API v3, next to an .ics calendar of the same clinician."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon.errors import AuthorizationError, CalendarPaused
from caldaemon.model import Window, written_identity
from caldaemon.providers.base import OWNER_KEY
from caldaemon.providers.google.mapping import event_id
from caldaemon.service.daemon import Daemon
from tests import state_view
from tests.fakes.google_calendar import Fault, GoogleCalendarServer
from tests.providers.test_contract_google import write_client, write_token
from tests.support import TZ, StepClock

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)  # a Monday
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
EMAIL = "lee@example.org"
COMMAND = "caldaemon auth google --clinician lee --calendar work"


class World:
    """Dr. Lee's Google calendar on the fake server, a personal .ics, and the daemon. The
    fake runs on the daemon's clock: sync tokens age as the daemon's time goes by."""

    def __init__(self, server: GoogleCalendarServer, root: Path, clock: StepClock) -> None:
        self.server, self.root, self.clock = server, root, clock
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
            key=lambda e: e["start"].get("dateTime") or e["start"]["date"],
        )

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def delivered(self) -> list[str]:
        """The notices delivered so far, as text (the Maildir fallback of the state folder)."""
        box = mailbox.Maildir(self.state_dir / "notices", factory=None, create=False)
        texts = []
        for message in box:
            parts = message.walk() if message.is_multipart() else [message]
            texts.append(
                "".join(
                    str(part.get_payload(decode=True).decode())
                    for part in parts
                    if part.get_content_type() == "text/plain"
                )
            )
        return texts


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = StepClock(NOW)
    with GoogleCalendarServer(primary_email=EMAIL, clock=clock) as server:
        world = World(server, tmp_path, clock)
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
        notices = tables.outbox.all()
        calendars = [
            (c.calendar, c.last_success == world.clock(), c.paused is not None)
            for c in tables.calendars.all()
        ]
        problems = tables.problems.keys()
    assert [n.recipient for n in notices] == [EMAIL]
    # Delivered into the state folder's Maildir (no email configured); the outbox keeps
    # no text once a notice is delivered.
    [delivered] = world.delivered()
    assert COMMAND in delivered and world.refresh_token not in delivered
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


# -- Google as it is (RESEARCH.md, "Google Calendar API v3") -------------------------------


def test_a_restored_session_gets_its_buffer_back_under_a_new_id(world: World) -> None:
    """Google keeps a deleted event's id (insert → 409) and refuses to update it back to
    life (403): the buffer comes back as its next generation, a new event."""
    world.cycle()
    [monday, _] = world.buffers()
    identity = monday["extendedProperties"]["private"][OWNER_KEY]
    session = world.server.get_event("primary", "session0001")
    assert session is not None
    world.server.delete_event("primary", "session0001")  # cancelled ...
    assert world.cycle().deleted == 1
    world.server.put_event("primary", {**session, "status": "confirmed"})  # ... and restored
    report = world.cycle()
    assert (report.created, report.calendar_errors) == (1, [])
    [back, _] = world.buffers()
    second = written_identity(identity, 1)
    assert back["id"] == event_id(second) != monday["id"]
    assert back["extendedProperties"]["private"][OWNER_KEY] == second
    old = world.server.get_event("primary", monday["id"])
    assert old is not None and old["status"] == "cancelled"
    assert not [
        r for r in world.server.requests if r.method in ("PUT", "PATCH") and r.status == 403
    ]
    assert world.cycle().created == 0


def test_a_copy_the_user_made_of_a_buffer_is_never_touched(world: World) -> None:
    world.cycle()
    [monday, _] = world.buffers()
    copy = world.server.put_event("primary", {**monday, "id": "usercopy0001"})
    assert world.cycle().deleted == 0
    world.server.delete_event("primary", "session0001")
    assert world.cycle().deleted == 1
    stored = world.server.get_event("primary", copy["id"])
    assert stored is not None and stored["status"] == "confirmed" and stored["etag"] == copy["etag"]
    original = world.server.get_event("primary", monday["id"])
    assert original is not None and original["status"] == "cancelled"


def test_an_expired_sync_token_reads_the_window_again_and_changes_nothing(world: World) -> None:
    world.cycle()
    before = world.buffers()
    world.clock.advance(minutes=25 * 60)  # past the fake's sync-token lifetime
    world.server.clear_requests()
    report = world.cycle()
    assert report.calendar_errors == [] and (report.created, report.updated, report.deleted) == (
        0,
        0,
        0,
    )
    assert [(r.param("syncToken") is not None, r.status) for r in world.server.requests] == [
        (True, 410),
        (False, 200),
    ]
    assert world.buffers() == before
    with state_view.tables(world.state_dir) as tables:
        assert tables.buffers.counts() == {"active": 2}


def test_a_touched_open_ended_series_leaves_buffers_and_cache_within_the_horizon(
    world: World,
) -> None:
    weekly = world.server.put_event(
        "primary",
        {
            "id": "weekly0001",
            "summary": "Group session #heavy",
            "start": {"dateTime": "2026-12-02T10:00:00", "timeZone": "America/Toronto"},
            "end": {"dateTime": "2026-12-02T10:50:00", "timeZone": "America/Toronto"},
            "recurrence": ["RRULE:FREQ=WEEKLY"],
        },
    )
    assert world.cycle().created == 4  # two sessions, two weeks of the series
    world.server.put_event("primary", {**weekly, "summary": "Group therapy #heavy"})
    world.server.clear_requests()
    report = world.cycle()
    assert report.calendar_errors == [] and (report.created, report.deleted) == (0, 0)
    assert len(world.buffers()) == 4
    with state_view.opened(world.state_dir) as state, state.read() as tables:
        cached = tables.events.overlapping("lee", Window(NOW, datetime(2100, 1, 1, tzinfo=TZ)))
    # The listed window is the horizon (14 days) and a week's slack: not decades of instances.
    assert max(e.start for e in cached) < NOW + timedelta(days=28)


def test_exceeded_usage_limits_on_writes_pause_the_calendar_with_one_notice(
    world: World,
) -> None:
    """Google keeps the calendar read-only for hours: the writes are not retried, within
    the cycle or in the next ones, until the pause is over."""
    world.server.exceed_usage_limits("primary")
    report = world.cycle()
    assert report.created == 0 and world.buffers() == []
    world.cycle()
    batches = [r for r in world.server.requests if r.path == "/batch/calendar/v3"]
    assert len(batches) == 1
    with state_view.tables(world.state_dir) as tables:
        assert tables.problems.keys() == ["calendar:lee/work:paused"]
        assert len(tables.outbox.all()) == 1


def test_a_read_refused_for_usage_limits_pauses_the_calendar_with_one_notice(
    world: World,
) -> None:
    world.server.inject(Fault(status=403, reason="quotaExceeded", path_contains="/events"))
    report = world.cycle()
    [error] = report.calendar_errors
    assert isinstance(error, CalendarPaused) and "quotaExceeded" in str(error)
    world.server.clear_requests()
    world.cycle()
    assert world.server.requests == []  # paused: not asked again for now
    with state_view.tables(world.state_dir) as tables:
        assert tables.problems.keys() == ["calendar:lee/work:paused"]
        assert len(tables.outbox.all()) == 1


def protect_full_days_and_days_off(world: World) -> None:
    config = world.root / "config.yaml"
    config.write_text(
        config.read_text().replace(
            "    buffers:\n",
            "    max_sessions_per_day: 2\n    days_off: [sat, sun]\n"
            "    protect: {full_days: true, days_off: true, title: Unavailable}\n    buffers:\n",
        )
    )
    world.daemon.close()
    world.daemon = Daemon(str(config), clock=world.clock)


def test_holds_on_google_are_private_busy_owned_and_go_with_their_reason(world: World) -> None:
    protect_full_days_and_days_off(world)
    world.session("session0003", MON_10 + timedelta(hours=3))  # Monday is now full
    world.server.clear_requests()
    world.cycle()
    writes = [r for r in world.server.requests if r.method != "GET"]
    holds = [b for b in world.buffers() if b["summary"] == "Unavailable"]
    timed = [h for h in holds if "dateTime" in h["start"]]
    all_day = sorted(h["start"]["date"] for h in holds if "date" in h["start"])
    # Monday 09:00–10:00, 11:05–13:00, 14:05–17:00; the two weekends within the horizon.
    assert [h["start"]["dateTime"] for h in timed] == [
        "2026-11-30T14:00:00Z",
        "2026-11-30T16:05:00Z",
        "2026-11-30T19:05:00Z",
    ]
    assert all_day == ["2026-12-05", "2026-12-06", "2026-12-12", "2026-12-13"]
    for hold in holds:
        assert hold["visibility"] == "private" and hold["transparency"] == "opaque"
        assert OWNER_KEY in hold["extendedProperties"]["private"]
    # The cycle's 7 holds and 3 buffers went as the 10 calls of one batch request (the
    # fake lists a batch's parts after the batch itself).
    assert [(r.method, r.path) for r in writes if r.path != "/token"] == [
        ("POST", "/batch/calendar/v3")
    ] + [("POST", "/calendars/primary/events")] * 10
    world.server.delete_event("primary", "session0003")
    report = world.cycle()
    assert report.deleted == 3 + 1  # Monday's holds, and the grounding after 13:00
    assert [h["start"]["date"] for h in world.buffers() if "date" in h["start"]] == all_day
