"""Full daemon cycles with the clinician's sessions and buffers on two CalDAV calendars of
a real server, Radicale and Xandikos alike (tests/providers/*_server.py). The server
object plays the clinician's calendar app: it PUTs and DELETEs objects over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest

from caldaemon.providers.base import OWNER_PROPERTY
from caldaemon.providers.ics.mapping import buffer_uid
from caldaemon.service.daemon import Daemon
from tests.providers.radicale_server import PASSWORD, USER, DavServer
from tests.providers.test_contract_caldav import SERVERS
from tests.support import TZ, StepClock

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)  # a Monday
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
MON_BUFFER, TUE_BUFFER = "2026-11-30T15:50:00+00:00", "2026-12-01T15:50:00+00:00"


class World:
    """Dr. Lee's practice and buffers calendars on one CalDAV server, and the daemon."""

    def __init__(self, server: DavServer, root: Path) -> None:
        self.server, self.root, self.clock = server, root, StepClock(NOW)
        self.practice = server.make_calendar("Practice")
        self.buffers_calendar = server.make_calendar("Buffers")
        (root / "caldav-password").write_text(PASSWORD + "\n")
        calendar = (
            "{{id: {id}, provider: caldav, url: '{url}', username: {user}, "
            "password_file: caldav-password, timeout: 5s}}"
        )
        practice = calendar.format(id="practice", url=server.base + self.practice, user=USER)
        buffers = calendar.format(id="buffers", url=server.base + self.buffers_calendar, user=USER)
        (root / "config.yaml").write_text(f"""\
timezone: America/Toronto
daemon: {{state_dir: state, horizon: 14d}}
clinicians:
  - id: lee
    name: Dr. Lee
    email: lee@example.org
    rules: standard
    calendars:
      - {practice}
      - {buffers}
    buffers_to: buffers
rule_sets:
  standard:
    working_hours: {{mon-fri: "09:00-17:00"}}
    buffers:
      - {{after: high, length: 15m, title: Grounding time}}
notices:
  quiet_outside_working_hours: false
""")
        self.daemon = Daemon(str(root / "config.yaml"), clock=self.clock)

    def session(self, uid: str, start: datetime, minutes: int = 50) -> None:
        end = start + timedelta(minutes=minutes)
        self.server.put(
            f"{self.practice}{uid}.ics",
            "\r\n".join(
                [
                    "BEGIN:VCALENDAR",
                    "VERSION:2.0",
                    "PRODID:-//user//app//EN",
                    "BEGIN:VEVENT",
                    f"UID:{uid}",
                    "DTSTAMP:20260101T000000Z",
                    f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                    f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                    "SUMMARY:Session with Zebulon Q. #heavy",
                    "END:VEVENT",
                    "END:VCALENDAR",
                    "",
                ]
            ),
        )

    def cancel(self, uid: str) -> None:
        self.server.delete(f"{self.practice}{uid}.ics")

    def cycle(self) -> Any:
        self.clock.advance()
        [report] = self.daemon.once()
        assert report.calendar_errors == [], report.calendar_errors
        return report

    def buffers(self) -> list[tuple[str, str, str]]:
        """(start in UTC, marker, UID) of each object on the buffers calendar that
        carries caldaemon's marker, by start."""
        found = []
        for ics in self.server.objects(self.buffers_calendar).values():
            for vevent in icalendar.Calendar.from_ical(ics).walk("VEVENT"):
                if OWNER_PROPERTY in vevent:
                    start = vevent.decoded("DTSTART").astimezone(UTC).isoformat()
                    found.append((start, str(vevent[OWNER_PROPERTY]), str(vevent["UID"])))
        return sorted(found)

    def starts(self) -> list[str]:
        return [start for start, _, _ in self.buffers()]


@pytest.fixture(scope="module", params=sorted(SERVERS))
def dav_server(request: pytest.FixtureRequest) -> Iterator[DavServer]:
    with SERVERS[request.param]() as server:
        yield server


@pytest.fixture
def world(dav_server: DavServer, tmp_path: Path) -> Iterator[World]:
    world = World(dav_server, tmp_path)
    world.session("session0001", MON_10)
    world.session("session0002", MON_10 + timedelta(days=1))
    yield world
    world.daemon.close()


def test_buffers_are_placed_after_each_session_on_the_caldav_calendar(world: World) -> None:
    report = world.cycle()
    assert (report.calendars_ok, report.created) == (2, 2)
    placed = world.buffers()
    assert [start for start, _, _ in placed] == [MON_BUFFER, TUE_BUFFER]
    for _, marker, uid in placed:
        assert uid == buffer_uid(marker)  # the marker is bound to the object's UID
    report = world.cycle()
    assert (report.created, report.updated, report.deleted) == (0, 0, 0)


def test_a_moved_session_moves_its_buffer(world: World) -> None:
    world.cycle()
    world.session("session0001", MON_10 + timedelta(hours=3))
    report = world.cycle()
    assert (report.updated, report.created, report.deleted) == (1, 0, 0)
    assert world.starts() == ["2026-11-30T18:50:00+00:00", TUE_BUFFER]
    assert world.cycle().updated == 0


def test_a_cancelled_session_loses_its_buffer(world: World) -> None:
    world.cycle()
    world.cancel("session0002")
    report = world.cycle()
    assert (report.deleted, report.created, report.updated) == (1, 0, 0)
    assert world.starts() == [MON_BUFFER]


def test_a_users_copy_of_a_buffer_outlives_its_session(world: World) -> None:
    world.cycle()
    [(_, marker, uid)] = [b for b in world.buffers() if b[0] == TUE_BUFFER]
    [ours] = [h for h, ics in world.server.objects(world.buffers_calendar).items() if uid in ics]
    # The user duplicates the buffer in their app: a new UID, the same marker.
    copy = world.server.get(ours).body.decode().replace(uid, "copy-of-a-buffer@user")
    world.server.put(f"{world.buffers_calendar}copy-of-a-buffer.ics", copy)
    world.cancel("session0002")
    world.cycle()
    world.cycle()
    assert [(s, m, u) for s, m, u in world.buffers() if s == TUE_BUFFER] == [
        (TUE_BUFFER, marker, "copy-of-a-buffer@user")
    ]


@pytest.mark.parametrize("emptied", ["whole server", "buffers calendar"])
def test_a_server_emptied_for_two_polls_then_restored_gets_its_buffers_managed_again(
    world: World, emptied: str
) -> None:
    world.cycle()
    calendars = [world.buffers_calendar]
    if emptied == "whole server":
        calendars.append(world.practice)
    backups = {c: world.server.objects(c) for c in calendars}
    for backup in backups.values():
        for href in backup:
            world.server.delete(href)
    world.cycle()
    world.cycle()
    for backup in backups.values():  # the server's data restored from the backup
        for href, ics in backup.items():
            world.server.put(href, ics)
    world.cycle()
    assert world.starts() == [MON_BUFFER, TUE_BUFFER]
    world.session("session0001", MON_10 + timedelta(hours=3))
    world.cancel("session0002")
    report = world.cycle()
    assert (report.updated, report.deleted, report.created) == (1, 1, 0)
    assert world.starts() == ["2026-11-30T18:50:00+00:00"]


def test_a_restored_server_that_forgot_its_sync_tokens_is_read_again(world: World) -> None:
    world.cycle()
    # Restored from a backup: the same objects, none of the tokens issued before
    # (Xandikos answers the stored one with 412, Radicale with 403).
    world.server.restore(world.practice, world.server.objects(world.practice))
    world.session("session0003", MON_10 + timedelta(days=2))
    report = world.cycle()
    assert (report.calendars_ok, report.created) == (2, 1)
    assert world.starts() == [MON_BUFFER, TUE_BUFFER, "2026-12-02T15:50:00+00:00"]
    for _ in range(2):
        assert world.cycle().calendars_ok == 2
