"""Leases (issue 15): instances sharing one state each hold a fair share of the clinicians,
never one clinician twice; a holder that stops renewing loses its clinicians once its
leases run out; a notice is claimed by one instance at a time. The clock is passed in:
instants, not waiting."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from caldaemon.state import State
from caldaemon.state.db import Location
from tests.state.postgres import Postgres
from tests.support import NOW

CLINICIANS = [f"c{n}" for n in range(7)]
TTL = timedelta(seconds=30)


def beat(state: State, holder: str, seconds: float, busy: tuple[str, ...] = ()) -> set[str]:
    now = NOW + timedelta(seconds=seconds)
    with state.transaction() as tables:
        tables.leases.seed(CLINICIANS, now)
        return tables.leases.heartbeat(holder, CLINICIANS, now=now, until=now + TTL, busy=busy)


def test_one_instance_holds_every_clinician(location: Location) -> None:
    assert beat(State(location), "a", 0) == set(CLINICIANS)


def test_instances_take_fair_shares_and_never_one_clinician_twice(location: Location) -> None:
    states = {name: State(location) for name in "abc"}
    held: dict[str, set[str]] = {}
    for second in range(0, 20, 5):  # a few heartbeats: joining ones get shares given back
        for name, state in states.items():
            held[name] = beat(state, name, second)
    assert sorted(len(h) for h in held.values()) == [2, 2, 3]
    assert set().union(*held.values()) == set(CLINICIANS)
    assert sum(len(h) for h in held.values()) == len(CLINICIANS)
    with states["a"].read() as tables:
        owners = tables.leases.holders()
    assert {c: n for n, h in held.items() for c in h} == owners


def test_a_running_cycle_is_never_given_back(location: Location) -> None:
    first, second = State(location), State(location)
    everything = beat(first, "a", 0)
    beat(second, "b", 1)  # joins: a's surplus is given back on a's next heartbeat
    kept = beat(first, "a", 2, busy=tuple(everything))
    assert kept == everything  # all of them busy: none given back
    assert len(beat(first, "a", 3)) == 3  # idle again: down to a share, b has none
    assert len(beat(second, "b", 4)) == 4


def test_a_holder_that_stops_renewing_loses_its_clinicians_when_its_leases_run_out(
    location: Location,
) -> None:
    dead, alive = State(location), State(location)
    lost = beat(dead, "dead", 0)
    beat(alive, "alive", 1)
    lost = beat(dead, "dead", 2)  # its last heartbeat
    assert lost and beat(alive, "alive", 25).isdisjoint(lost)  # not yet: leases run
    assert beat(alive, "alive", 33) == set(CLINICIANS)  # run out at 32: all taken over


def test_a_lease_is_confirmed_to_its_holder_only_until_it_runs_out(location: Location) -> None:
    state = State(location)
    beat(state, "a", 0)
    with state.transaction() as tables:
        assert tables.leases.confirm("c0", "a", NOW + TTL - timedelta(seconds=1))
        assert not tables.leases.confirm("c0", "a", NOW + TTL)
        assert not tables.leases.confirm("c0", "b", NOW)
        assert not tables.leases.confirm("unknown", "a", NOW)


def test_a_clean_exit_gives_every_lease_back_at_once(location: Location) -> None:
    leaving, staying = State(location), State(location)
    beat(leaving, "leaving", 0)
    beat(staying, "staying", 1)
    with leaving.transaction() as tables:
        tables.leases.leave("leaving", NOW + timedelta(seconds=2))
    assert beat(staying, "staying", 3) == set(CLINICIANS)


def test_instances_heartbeating_at_once_never_share_a_clinician(location: Location) -> None:
    names = [f"h{n}" for n in range(5)]
    states = [State(location) for _ in names]
    for second in range(3):

        def heartbeat(pair: tuple[str, State], at: int = second) -> set[str]:
            return beat(pair[1], pair[0], at)

        with ThreadPoolExecutor(len(names)) as pool:
            held = list(pool.map(heartbeat, zip(names, states, strict=True)))
        taken = [c for h in held for c in h]
        assert len(taken) == len(set(taken)), held


def test_each_due_notice_is_claimed_by_one_instance(postgres: Postgres) -> None:
    location = postgres.location(postgres.create_database())
    writer = State(location)
    with writer.transaction() as tables:
        for n in range(30):
            tables.outbox.queue(
                message_id=f"<m{n}@x>",
                clinician="c0",
                recipient="c0@example.org",
                subject="s",
                text="t",
                html="h",
                now=NOW,
                not_before=NOW,
            )
    sharing = []
    for name in ("a", "b", "c"):
        state = State(location)
        state.share_as(name)
        sharing.append(state)

    def claim(state: State) -> list[str]:
        with state.read() as tables:
            return [n.message_id for n in tables.outbox.due(NOW)]

    with ThreadPoolExecutor(3) as pool:
        claimed = list(pool.map(claim, sharing))
    every = [m for c in claimed for m in c]
    assert sorted(every) == sorted(f"<m{n}@x>" for n in range(30))  # each once
    assert claim(sharing[0]) == []  # claimed by someone: not due again for now
    with sharing[0].read() as tables:
        later = [n.message_id for n in tables.outbox.due(NOW + timedelta(minutes=11))]
    assert sorted(later) == sorted(every)  # a claim that ran out: delivered by another
