"""A clinician whose calendars come back unchanged keeps the verdicts of their last full
cycle (issue 15: an unchanged poll costs one request and little CPU). Told apart from a
full cycle by what it leaves in state: a full cycle records every violation it finds
again (its ``last_seen`` moves), a settled one records nothing but the listing's token.
Against the local fake of Calendar API v3, on the daemon's injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from caldaemon.service.cycle import REASSESS_EVERY, Cycle, CycleReport
from caldaemon.service.daemon import Daemon
from caldaemon.state.dialect import SqliteConnection
from tests import state_view
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.providers.test_contract_google import write_client, write_token
from tests.support import TZ, StepClock

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)  # a Monday
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
# After working hours (09:00-17:00): one violation that stays open.
MON_18 = datetime(2026, 11, 30, 18, 0, tzinfo=TZ)


class World:
    """Dr. Lee's one Google calendar (also buffers_to) and the daemon."""

    def __init__(self, server: GoogleCalendarServer, root: Path, clock: StepClock) -> None:
        self.server, self.root, self.clock = server, root, clock
        write_client(root / "google-client.json", server)
        tokens = root / "state" / "tokens"
        tokens.mkdir(parents=True, mode=0o700)
        write_token(tokens / "lee-work.google.json", server, server.issue_refresh_token())
        (root / "config.yaml").write_text(f"""\
timezone: America/Toronto
daemon: {{state_dir: state, horizon: 14d, poll_interval: 1m}}
clinicians:
  - id: lee
    email: lee@example.org
    rules: standard
    calendars:
      - {{id: work, provider: google, credentials: google-client.json,
          api_endpoint: "{server.url}", timeout: 5s}}
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

    def session(self, uid: str, start: datetime) -> None:
        self.server.put_event(
            "primary",
            {
                "id": uid,
                "summary": "Session #heavy",
                "start": {"dateTime": start.isoformat(), "timeZone": "America/Toronto"},
                "end": {
                    "dateTime": (start + timedelta(minutes=50)).isoformat(),
                    "timeZone": "America/Toronto",
                },
            },
        )

    def cycle(self, minutes: float = 1) -> CycleReport:
        self.clock.now += timedelta(minutes=minutes)
        [report] = self.daemon.once()
        return report

    def last_seen(self) -> set[datetime]:
        """When the open violations were last recorded as found."""
        with state_view.tables(self.root / "state") as tables:
            return {r.last_seen for r in tables.violations.open("lee").values()}

    def buffer_starts(self) -> list[str]:
        return sorted(
            e["start"]["dateTime"]
            for e in self.server.events("primary")
            if e["summary"] == "Grounding time"
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = StepClock(NOW)
    with GoogleCalendarServer(primary_email="lee@example.org", clock=clock) as server:
        world = World(server, tmp_path, clock)
        world.session("session0001", MON_10)
        world.session("session0002", MON_18)
        yield world
        world.daemon.close()


def _settle(world: World) -> datetime:
    """The first cycle places the buffers, the second reads them back and leaves nothing
    to do; returns when that one ran."""
    assert world.cycle().created == 2
    report = world.cycle()
    assert (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert world.last_seen() == {world.clock.now}
    return world.clock.now


def test_an_unchanged_poll_keeps_the_verdicts_without_recording_them_again(
    world: World,
) -> None:
    settled = _settle(world)
    world.server.clear_requests()
    report = world.cycle()
    assert report.ok and report.violations == 1
    assert world.last_seen() == {settled}
    assert [(r.method, r.path) for r in world.server.requests] == [
        ("GET", "/calendars/primary/events")
    ]


def test_verdicts_are_made_again_after_the_reassessment_interval(world: World) -> None:
    settled = _settle(world)
    minutes = REASSESS_EVERY / timedelta(minutes=1)
    world.cycle(minutes - 1)
    assert world.last_seen() == {settled}
    world.cycle(1)
    assert world.last_seen() == {settled + REASSESS_EVERY}


def test_a_change_after_settling_is_acted_on_in_the_next_poll(world: World) -> None:
    _settle(world)
    world.cycle()
    world.session("session0001", MON_10 + timedelta(hours=2))
    report = world.cycle()
    assert report.updated == 1
    assert world.buffer_starts()[0] == "2026-11-30T17:50:00Z"
    assert world.last_seen() == {world.clock.now}


def test_an_acknowledged_violation_is_judged_again_at_once(world: World) -> None:
    _settle(world)
    with state_view.tables(world.root / "state") as tables:
        [fingerprint] = tables.violations.open("lee")
    state = world.daemon.state
    with state.transaction() as tables:
        tables.acks.add("lee", fingerprint, None, world.clock.now)
    world.cycle()
    with state_view.tables(world.root / "state") as tables:
        [record] = tables.violations.open("lee").values()
    assert record.violation.accepted and record.last_seen == world.clock.now


def test_a_poll_from_a_token_someone_else_stored_is_judged_again(world: World) -> None:
    """Another instance on the same state (PostgreSQL, leases) may have read the calendar
    in between: the cache is then not what this process last judged."""
    _settle(world)
    daemon = world.daemon
    other = Cycle(daemon.settings, daemon.state, daemon.providers, clock=world.clock)
    world.session("session0001", MON_10 + timedelta(hours=2))
    world.clock.now += timedelta(minutes=1)
    assert other.run(daemon.settings.clinician("lee")).updated == 1
    world.server.clear_requests()
    report = world.cycle()
    assert world.last_seen() == {world.clock.now}
    assert report.ok and report.violations == 1


def _commits(world: World, cycle_minutes: float = 1) -> list[str]:
    """The safety level of each commit of one cycle ("FULL": it waited for the disk),
    from the statements SQLite ran."""
    connection = world.daemon.state.db
    assert isinstance(connection, SqliteConnection)
    statements: list[str] = []
    connection.db.set_trace_callback(statements.append)
    try:
        world.cycle(cycle_minutes)
    finally:
        connection.db.set_trace_callback(None)
    level, levels = "FULL", []
    for statement in statements:
        if statement.startswith("PRAGMA synchronous="):
            level = statement.partition("=")[2]
        elif statement == "COMMIT":
            levels.append(level)
    return levels


def test_an_unchanged_poll_commits_without_waiting_for_the_disk(world: World) -> None:
    _settle(world)
    levels = _commits(world)
    assert levels and set(levels) == {"NORMAL"}


def test_a_buffer_write_is_recorded_before_and_after_with_the_disk(world: World) -> None:
    _settle(world)
    world.session("session0001", MON_10 + timedelta(hours=2))
    levels = _commits(world)
    # The intent before the calendar write and its result after it wait for the disk
    # (crash safety, core/reconcile.py); the listing, verdicts and pruning do not.
    assert levels.count("FULL") == 2 and "NORMAL" in levels
