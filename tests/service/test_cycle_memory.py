"""Daemon cycles against the memory provider: a session calendar and a buffers calendar
held in the process, changed by their "user" through the store. The reconciliation
promises of DESIGN.md §5 without any file or network in the way."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path

import pytest

from caldaemon.errors import CalendarPaused
from caldaemon.model import Event
from caldaemon.providers.memory import MemoryStore
from caldaemon.service.cycle import CycleReport
from caldaemon.service.daemon import Daemon
from tests import state_view
from tests.support import TZ

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
_worlds = count()


@dataclasses.dataclass
class MemoryWorld:
    root: Path
    practice: MemoryStore
    buffers: MemoryStore
    names: tuple[str, str]

    def session(self, uid: str, start: datetime, **changes: object) -> None:
        event = Event(
            calendar="practice",
            id=uid,
            start=start,
            end=start + timedelta(minutes=50),
            title="Session #heavy",
        )
        self.practice.put(dataclasses.replace(event, **changes))  # type: ignore[arg-type]

    def configure(self, horizon: str = "14d", rules: str = "") -> None:
        """The config; ``rules``: more keys of the rule set, one per line."""
        extra = textwrap.indent(textwrap.dedent(rules), " " * 16)
        (self.root / "config.yaml").write_text(
            textwrap.dedent(f"""\
            timezone: America/Toronto
            daemon: {{state_dir: state, horizon: {horizon}}}
            clinicians:
              - id: lee
                rules: standard
                calendars:
                  - {{id: practice, provider: memory, store: {self.names[0]}}}
                  - {{id: buffers, provider: memory, store: {self.names[1]}}}
                buffers_to: buffers
            rule_sets:
              standard:
                buffers:
                  - {{after: high, length: 15m, title: Grounding time}}
{extra}
            notices:
              quiet_outside_working_hours: false
            """)
        )

    def cycle(self, now: datetime) -> CycleReport:
        service = Daemon(str(self.root / "config.yaml"), clock=lambda: now)
        try:
            [report] = service.once()
        finally:
            service.close()
        return report

    def placed(self) -> list[Event]:
        return [e for e in self.buffers.all() if e.owner]

    def statuses(self) -> dict[str, int]:
        with state_view.tables(self.root / "state") as tables:
            return tables.buffers.counts()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[MemoryWorld]:
    n = next(_worlds)
    names = (f"practice-{n}", f"buffers-{n}")
    world = MemoryWorld(tmp_path, MemoryStore.named(names[0]), MemoryStore.named(names[1]), names)
    world.configure()
    world.session("s1", MON_10)
    world.session("s2", MON_10 + timedelta(days=1))
    yield world
    for name in names:
        MemoryStore.forget(name)


def test_buffers_are_placed_after_heavy_sessions_and_recorded(world: MemoryWorld) -> None:
    report = world.cycle(NOW)
    assert (report.created, report.updated, report.deleted) == (2, 0, 0)
    placed = world.placed()
    assert [(b.start, b.title) for b in placed] == [
        (MON_10 + timedelta(minutes=50), "Grounding time"),
        (MON_10 + timedelta(days=1, minutes=50), "Grounding time"),
    ]
    assert world.statuses() == {"active": 2}


def test_an_unchanged_calendar_writes_nothing(world: MemoryWorld) -> None:
    world.cycle(NOW)
    version = world.buffers.version
    report = world.cycle(NOW + timedelta(minutes=2))
    assert (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert world.buffers.version == version


def test_a_moved_session_moves_its_buffer(world: MemoryWorld) -> None:
    world.cycle(NOW)
    world.session("s1", MON_10 + timedelta(hours=3))
    report = world.cycle(NOW + timedelta(minutes=2))
    assert (report.created, report.updated) == (0, 1)
    assert world.placed()[0].start == MON_10 + timedelta(hours=3, minutes=50)


def test_a_cancelled_session_loses_its_buffer_and_it_returns_with_the_session(
    world: MemoryWorld,
) -> None:
    world.cycle(NOW)
    world.session("s2", MON_10 + timedelta(days=1), cancelled=True)
    assert world.cycle(NOW + timedelta(minutes=2)).deleted == 1
    assert len(world.placed()) == 1
    assert world.statuses() == {"active": 1, "deleted": 1}
    world.session("s2", MON_10 + timedelta(days=1))
    assert world.cycle(NOW + timedelta(minutes=4)).created == 1
    assert world.statuses() == {"active": 2}


def test_a_buffer_the_user_edited_is_left_alone(world: MemoryWorld) -> None:
    world.cycle(NOW)
    first = world.placed()[0]
    world.buffers.put(dataclasses.replace(first, title="Grounding walk"))
    world.session("s1", MON_10 + timedelta(hours=3))  # would move it
    world.cycle(NOW + timedelta(minutes=2))
    edited = world.buffers.get(first.id)
    assert edited is not None and (edited.title, edited.start) == ("Grounding walk", first.start)
    assert world.statuses() == {"active": 1, "user_edited": 1}


def test_a_buffer_the_user_deleted_is_not_recreated(world: MemoryWorld) -> None:
    world.cycle(NOW)
    world.buffers.remove(world.placed()[0].id)
    world.cycle(NOW + timedelta(minutes=2))
    world.cycle(NOW + timedelta(minutes=4))
    assert len(world.placed()) == 1
    assert world.statuses() == {"active": 1, "user_deleted": 1}


def test_the_users_own_events_on_the_buffers_calendar_are_never_touched(
    world: MemoryWorld,
) -> None:
    dentist = Event(
        calendar="buffers",
        id="dentist",
        start=MON_10 + timedelta(days=3),
        end=MON_10 + timedelta(days=3, hours=1),
        title="Dentist",
    )
    stored = world.buffers.put(dentist)
    world.cycle(NOW)
    world.session("s1", MON_10, cancelled=True)
    world.session("s2", MON_10 + timedelta(days=1), cancelled=True)
    world.cycle(NOW + timedelta(minutes=2))
    assert world.placed() == []
    assert world.buffers.get("dentist") == stored


def test_a_calendar_the_service_refuses_for_hours_is_paused_with_one_notice(
    world: MemoryWorld,
) -> None:
    world.cycle(NOW)
    world.practice.refusal = CalendarPaused(
        "practice", "memory calendar", "usage limits exceeded (quotaExceeded)"
    )
    reads = world.practice.reads
    for minute in range(2, 40, 2):
        report = world.cycle(NOW + timedelta(minutes=minute))
        assert [e.calendar for e in report.calendar_errors] == ["practice"]
    assert world.practice.reads == reads + 1  # asked once, then paused for the hour
    with state_view.tables(world.root / "state") as tables:
        notices = [n for n in tables.outbox.all() if "refused by its service" in n.subject]
        assert len(notices) == 1
        assert tables.calendars.get("lee", "practice").paused  # type: ignore[union-attr]
    world.practice.refusal = None
    report = world.cycle(NOW + timedelta(minutes=70))
    assert report.calendar_errors == [] and world.practice.reads == reads + 2


def test_after_the_state_is_lost_an_edited_buffer_stays_and_an_intact_one_is_adopted(
    world: MemoryWorld,
) -> None:
    world.cycle(NOW)
    first, second = world.placed()
    world.buffers.put(dataclasses.replace(first, title="Grounding walk"))
    (world.root / "state" / "state.sqlite3").unlink()
    world.session("s1", MON_10 + timedelta(hours=3))  # its buffer would move
    report = world.cycle(NOW + timedelta(minutes=2))
    edited = world.buffers.get(first.id)
    assert edited is not None and (edited.title, edited.start) == ("Grounding walk", first.start)
    assert report.created == 0  # adopted or left alone, never duplicated
    world.session("s2", MON_10 + timedelta(days=1, hours=3))  # the adopted one follows
    world.cycle(NOW + timedelta(minutes=4))
    moved = world.buffers.get(second.id)
    assert moved is not None and moved.start == MON_10 + timedelta(days=1, hours=3, minutes=50)
    assert len(world.placed()) == 2
    assert world.statuses() == {"active": 1, "user_edited": 1}


def test_a_shorter_horizon_leaves_the_buffers_beyond_it_managed_not_abandoned(
    world: MemoryWorld,
) -> None:
    world.configure("28d")
    world.session("late", MON_10 + timedelta(days=20))
    assert world.cycle(NOW).created == 3
    world.configure("7d")
    report = world.cycle(NOW + timedelta(minutes=2))
    assert (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert len(world.placed()) == 3 and world.statuses() == {"active": 3}
    world.configure("28d")
    world.session("late", MON_10 + timedelta(days=20, hours=2))
    assert world.cycle(NOW + timedelta(minutes=4)).updated == 1


def test_a_clock_stepped_back_abandons_nothing(world: MemoryWorld) -> None:
    world.cycle(NOW)
    world.cycle(NOW - timedelta(days=3))
    world.cycle(NOW + timedelta(minutes=2))
    assert world.statuses() == {"active": 2} and len(world.placed()) == 2


def test_a_copy_of_a_buffer_the_user_made_survives_its_session_being_cancelled(
    world: MemoryWorld,
) -> None:
    world.cycle(NOW)
    original = world.placed()[0]
    copy = world.buffers.put(dataclasses.replace(original, id="my-copy"))
    world.session("s1", MON_10, cancelled=True)
    assert world.cycle(NOW + timedelta(minutes=2)).deleted == 1
    assert world.buffers.get("my-copy") == copy
    assert world.buffers.get(original.id) is None


def test_a_buffer_that_comes_back_after_caldaemon_deleted_it_gets_a_new_id(
    world: MemoryWorld,
) -> None:
    world.cycle(NOW)
    first = world.placed()[0]
    world.session("s1", MON_10, cancelled=True)
    world.cycle(NOW + timedelta(minutes=2))
    world.session("s1", MON_10)
    assert world.cycle(NOW + timedelta(minutes=4)).created == 1
    again = [b for b in world.placed() if b.start == first.start]
    assert len(again) == 1 and again[0].id != first.id and again[0].owner.endswith("-g1")


def test_a_session_ending_in_the_repeated_dst_hour_gets_its_buffer_written_once(
    world: MemoryWorld,
) -> None:
    start = datetime(2026, 11, 1, 0, 30, tzinfo=TZ)
    world.practice.put(
        Event(
            calendar="practice",
            id="night",
            start=start,
            end=datetime(2026, 11, 1, 1, 20, fold=1, tzinfo=TZ),
            title="Session #heavy",
        )
    )
    evening = datetime(2026, 10, 31, 20, 0, tzinfo=TZ)
    assert world.cycle(evening).created == 1  # the others are beyond the 14-day horizon
    for minute in (2, 4, 6):
        report = world.cycle(evening + timedelta(minutes=minute))
        assert (report.created, report.updated, report.deleted) == (0, 0, 0)
