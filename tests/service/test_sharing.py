"""Two daemons in one process on one PostgreSQL state, on one injected clock (no waiting):
each runs cycles only for the clinicians it leases; when one stops renewing, the other
takes every clinician once the leases have run out, not before; a clean exit hands them
over at once; ``caldaemon status`` shows who holds whom."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from caldaemon.cli.status import render
from caldaemon.errors import LeaseLost
from caldaemon.service.daemon import Daemon
from caldaemon.service.sharing import LEASE_POLLS
from tests.service.shared_world import (
    CLINICIANS,
    POLL,
    START,
    practice,
    sessions,
    write_world,
)
from tests.state.postgres import Postgres, start_postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    yield server
    server.stop()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def cycled(daemon: Daemon) -> set[str]:
    """The clinicians a round of this daemon ran a cycle for."""
    return {c for c in CLINICIANS if daemon.run_clinician(c) is not None}


def test_each_daemon_runs_only_its_clinicians_and_one_takes_over_after_the_ttl(
    tmp_path: Path, postgres: Postgres
) -> None:
    config = write_world(tmp_path, postgres.location(postgres.create_database()))
    clock = Clock(START)
    first, second = (Daemon(str(config), clock=clock) for _ in range(2))
    try:
        first.heartbeat()
        second.heartbeat()
        first.heartbeat()  # gives back what is over its share now that second is live
        second.heartbeat()
        mine, theirs = cycled(first), cycled(second)
        assert len(mine) == len(theirs) == 3 and mine.isdisjoint(theirs)
        assert second.once() and cycled(second) == theirs  # once: its own share too

        # first stops renewing (it hangs, or its machine is gone).
        ttl = timedelta(seconds=POLL * LEASE_POLLS)
        clock.now += ttl - timedelta(seconds=1)
        second.heartbeat()
        assert cycled(second) == theirs  # first's leases still run
        assert cycled(first) == set()  # too little of its lease left to start a cycle
        clock.now += timedelta(seconds=2)
        second.heartbeat()
        assert cycled(second) == set(CLINICIANS)
    finally:
        first.close()
        second.close()


def test_a_clean_exit_hands_the_clinicians_over_at_once(tmp_path: Path, postgres: Postgres) -> None:
    config = write_world(tmp_path, postgres.location(postgres.create_database()))
    clock = Clock(START)
    leaving, staying = Daemon(str(config), clock=clock), Daemon(str(config), clock=clock)
    try:
        for daemon in (leaving, staying, leaving, staying):
            daemon.heartbeat()
        assert len(cycled(staying)) == 3
        shown = json.loads(render(staying.settings, as_json=True))["leases"]
        assert Counter(shown.values()) == {
            leaving.sharing.holder if leaving.sharing else "": 3,
            staying.sharing.holder if staying.sharing else "": 3,
        }
        assert "instances:" in render(staying.settings, as_json=False)
    finally:
        leaving.close()
    clock.now += timedelta(seconds=1)
    staying.heartbeat()
    assert cycled(staying) == set(CLINICIANS)
    staying.close()


def test_an_instance_paused_past_its_lease_writes_nothing_when_its_cycle_resumes(
    tmp_path: Path, postgres: Postgres
) -> None:
    config = write_world(tmp_path, postgres.location(postgres.create_database()))
    clock = Clock(START)
    paused, other = Daemon(str(config), clock=clock), Daemon(str(config), clock=clock)
    try:
        for daemon in (paused, other, paused, other):
            daemon.heartbeat()
        [clinician, *_] = sorted(cycled(paused))
        cycled(other)
        # A new session needs a buffer; meanwhile the first instance is paused (SIGSTOP,
        # a suspended VM) with a cycle under way, past its lease, and the other takes over.
        folder = tmp_path / clinician
        (folder / "practice.ics").write_text(practice(sessions([2, 3])))
        before = (folder / "buffers.ics").read_text()
        clock.now += timedelta(seconds=POLL * LEASE_POLLS + 1)
        other.heartbeat()
        # The paused cycle resumes: its reading is done, its writes are fenced off.
        with pytest.raises(LeaseLost):
            paused.cycle.run(paused.settings.clinician(clinician))
        assert (folder / "buffers.ics").read_text() == before
        report = other.run_clinician(clinician)
        assert report is not None and report.created == 1
        assert (folder / "buffers.ics").read_text().count("BEGIN:VEVENT") == before.count(
            "BEGIN:VEVENT"
        ) + 1
    finally:
        paused.close()
        other.close()


def test_leases_are_renewed_once_a_poll_not_on_every_heartbeat(
    tmp_path: Path, postgres: Postgres
) -> None:
    config = write_world(tmp_path, postgres.location(postgres.create_database()))
    clock = Clock(START)
    daemon = Daemon(str(config), clock=clock)

    def expiries() -> set[str]:
        with daemon.state.read():
            return {str(row[0]) for row in daemon.state.db.execute("SELECT expires FROM leases")}

    try:
        daemon.heartbeat()
        first = expiries()
        assert len(first) == 1
        for _ in range(POLL // 5 - 1):  # the service's 5 s ticks within one poll
            clock.now += timedelta(seconds=5)
            daemon.heartbeat()
            assert expiries() == first
        clock.now += timedelta(seconds=5)
        daemon.heartbeat()
        [renewed] = expiries()
        assert renewed > next(iter(first))
        assert cycled(daemon) == set(CLINICIANS)
    finally:
        daemon.close()
