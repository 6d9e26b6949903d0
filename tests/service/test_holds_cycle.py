"""Protected time through the daemon (DESIGN.md §10): holds are owned and reconciled
exactly like buffers. A full day gets holds over its free working hours; they follow its
sessions, go when the day is no longer full, and a hold the user edits or deletes is
theirs. Days off get all-day holds, never over an event."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from caldaemon.model import Event
from caldaemon.providers.memory import MemoryStore
from tests.service.test_cycle_memory import MON_10, NOW, MemoryWorld
from tests.support import TZ

FULL_DAY = """\
working_hours: {mon-fri: "09:00-17:00"}
max_sessions_per_day: 2
protect: {full_days: true, title: Unavailable}
"""
MONDAY = MON_10.date()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(MONDAY + timedelta(days=day), time(hour, minute), TZ)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[MemoryWorld]:
    names = (f"practice-holds-{tmp_path.name}", f"buffers-holds-{tmp_path.name}")
    world = MemoryWorld(tmp_path, MemoryStore.named(names[0]), MemoryStore.named(names[1]), names)
    world.configure(rules=FULL_DAY)
    world.session("s1", at(0, 10))
    world.session("s2", at(0, 13))
    yield world
    for name in names:
        MemoryStore.forget(name)


def holds(world: MemoryWorld) -> list[tuple[datetime, datetime]]:
    return sorted((e.start, e.end) for e in world.placed() if e.title == "Unavailable")


def test_a_full_day_is_held_over_its_free_working_hours(world: MemoryWorld) -> None:
    world.cycle(NOW)
    # Sessions 10:00 and 13:00 with 15 minutes of grounding after each.
    assert holds(world) == [
        (at(0, 9), at(0, 10)),
        (at(0, 11, 5), at(0, 13)),
        (at(0, 14, 5), at(0, 17)),
    ]
    assert all(e.busy and e.owner for e in world.placed())
    version = world.buffers.version
    world.cycle(NOW + timedelta(minutes=2))
    assert world.buffers.version == version  # holds do not block themselves: no churn


def test_holds_follow_a_moved_session_and_go_when_the_day_is_no_longer_full(
    world: MemoryWorld,
) -> None:
    world.cycle(NOW)
    world.session("s2", at(0, 15))
    world.cycle(NOW + timedelta(minutes=2))
    assert holds(world) == [
        (at(0, 9), at(0, 10)),
        (at(0, 11, 5), at(0, 15)),
        (at(0, 16, 5), at(0, 17)),
    ]
    world.session("s2", at(0, 15), cancelled=True)
    report = world.cycle(NOW + timedelta(minutes=4))
    assert holds(world) == [] and report.deleted == 3 + 1  # the holds and s2's grounding


def test_a_hold_the_user_edits_or_deletes_is_theirs(world: MemoryWorld) -> None:
    world.cycle(NOW)
    morning, midday, afternoon = sorted(
        (e for e in world.placed() if e.title == "Unavailable"), key=lambda e: e.start
    )
    world.buffers.put(dataclasses.replace(midday, title="Admin, do not book"))
    world.buffers.remove(afternoon.id)
    world.cycle(NOW + timedelta(minutes=2))
    world.cycle(NOW + timedelta(minutes=4))
    assert holds(world) == [(morning.start, morning.end)]  # the deleted one not recreated
    edited = world.buffers.get(midday.id)
    assert edited is not None and edited.title == "Admin, do not book"
    world.session("s1", at(0, 10), cancelled=True)  # the day is no longer full
    world.cycle(NOW + timedelta(minutes=6))
    assert holds(world) == [] and world.buffers.get(midday.id) == edited


def test_days_off_get_all_day_holds_but_never_over_an_event(world: MemoryWorld) -> None:
    world.configure(
        rules=FULL_DAY.replace("full_days: true", "days_off: true") + "days_off: [sat, sun]\n"
    )
    saturday = at(5, 0)
    world.buffers.put(
        Event("buffers", "brunch", saturday + timedelta(hours=11), saturday + timedelta(hours=13))
    )
    world.cycle(NOW)
    all_day = sorted(e.start for e in world.placed() if e.all_day)
    # 14 days from Monday 30 Nov: two Sundays and one free Saturday; Sat 5 Dec has brunch.
    assert all_day == [at(6, 0), at(12, 0), at(13, 0)]
    assert world.buffers.get("brunch") is not None
    version = world.buffers.version
    world.cycle(NOW + timedelta(minutes=2))
    assert world.buffers.version == version  # an all-day hold is not a reason to drop one
