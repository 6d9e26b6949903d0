"""Which commits wait for the disk (caldaemon.state.db, issue 15): a cycle's own
bookkeeping is committed without an fsync, and the connection waits for the disk again
for whatever comes next; a crash of caldaemon alone loses nothing it committed. On SQLite
and on PostgreSQL alike (``location``)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import UTC, datetime

import pytest

from caldaemon.state import State
from caldaemon.state.db import Location

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _waits_for_the_disk(state: State) -> bool:
    """The connection's level for the next commit: SQLite's synchronous FULL (2), or
    PostgreSQL's synchronous_commit on."""
    with state.read():
        if state.db.dialect == "sqlite":
            return int(state.db.execute("PRAGMA synchronous").fetchone()[0]) == 2
        return str(state.db.execute("SHOW synchronous_commit").fetchone()[0]) == "on"


def test_a_new_state_waits_for_the_disk(location: Location) -> None:
    assert _waits_for_the_disk(State(location))


def test_after_a_relaxed_transaction_the_next_one_waits_for_the_disk_again(
    location: Location,
) -> None:
    state = State(location)
    with state.transaction(durable=False) as tables:
        tables.problems.add("k", "m", NOW)
    assert _waits_for_the_disk(state)
    with state.read() as tables:
        assert tables.problems.keys() == ["k"]


def test_a_relaxed_transaction_that_fails_leaves_nothing_and_the_level_restored(
    location: Location,
) -> None:
    state = State(location)
    with pytest.raises(RuntimeError), state.transaction(durable=False) as tables:
        tables.problems.add("k", "m", NOW)
        raise RuntimeError("the cycle failed")
    assert _waits_for_the_disk(state)
    with state.read() as tables:
        assert tables.problems.keys() == []


def _commit_relaxed_then_die(location: Location) -> None:
    state = State(location)
    with state.transaction(durable=False) as tables:
        tables.problems.add("relaxed", "m", NOW)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_relaxed_commit_survives_caldaemon_being_killed(location: Location) -> None:
    # A child process commits without waiting for the disk and is killed at once, as
    # SIGKILL or an out-of-memory kill would: the operating system still has the write.
    child = multiprocessing.get_context("spawn").Process(
        target=_commit_relaxed_then_die, args=(location,)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    with State(location).read() as tables:
        assert tables.problems.keys() == ["relaxed"]
