"""The tables' contract, on SQLite and on PostgreSQL alike (``location`` runs each test on
both): what is written is read back the same, upserts replace, a failed transaction leaves
nothing, instants compare as time does."""

from __future__ import annotations

from datetime import timedelta

import pytest

from caldaemon.model import Buffer, BufferStatus, Event, Severity, Violation, Window
from caldaemon.state import SCHEMA_VERSION, State, StateError
from caldaemon.state.db import Location
from caldaemon.state.events import Cached
from tests.support import NOW, at

DAY = NOW.date()
WIDE = Window(NOW - timedelta(days=30), NOW + timedelta(days=30))


@pytest.fixture
def state(location: Location) -> State:
    return State(location)


def test_a_new_state_is_at_the_current_schema_and_opening_again_changes_nothing(
    location: Location,
) -> None:
    first = State(location)
    assert first.schema_version() == SCHEMA_VERSION
    assert set(first.dump()) >= {"calendars", "events", "buffers", "violations", "outbox"}
    first.close()
    again = State(location)
    assert again.schema_version() == SCHEMA_VERSION
    again.close()


def test_events_round_trip_and_a_second_store_replaces(state: State) -> None:
    event = Event(
        "work", "e1", at(DAY, "09:00"), at(DAY, "09:50"), categories=("heavy",), etag="x1"
    )
    marked = Event("work", "b1", at(DAY, "09:50"), at(DAY, "10:05"), owner="id1", marked=True)
    with state.transaction() as tables:
        tables.events.store("lee", [Cached(event, frozenset({"heavy"}), True, (0, 2), "session")])
        tables.events.store("lee", [Cached(marked)])
    with state.transaction() as tables:
        tables.events.store("lee", [Cached(event, frozenset({"heavy"}), False, None, "other")])
    with state.read() as tables:
        recorded = {r.event.id: r for r in tables.events.recorded("lee", WIDE)}
        ids = tables.events.ids("lee", "work", WIDE)
    assert ids == {"e1", "b1"}
    assert recorded["e1"].kind == "other" and recorded["e1"].event.title_matches is False
    assert recorded["e1"].event.start == event.start and recorded["e1"].event.etag == "x1"
    assert recorded["b1"].event.owner == "id1" and recorded["b1"].event.digest is not None


def test_instants_compare_as_time_with_and_without_fractions(state: State) -> None:
    # "…09:00:00+00:00" sorts before "…09:00:00.5+00:00" byte by byte, as in time; a
    # locale's collation could put them the other way round.
    whole = Event("work", "whole", at(DAY, "09:00"), at(DAY, "10:00"))
    later = at(DAY, "10:00") + timedelta(microseconds=500_000)
    fraction = Event("work", "fraction", at(DAY, "09:00"), later)
    with state.transaction() as tables:
        tables.events.store("lee", [Cached(whole), Cached(fraction)])
    with state.read() as tables:
        after_ten = Window(at(DAY, "10:00") + timedelta(microseconds=1), at(DAY, "11:00"))
        found = {e.id for e in tables.events.overlapping("lee", after_ten)}
    assert found == {"fraction"}


def test_a_listing_replaces_what_its_window_covers_and_prune_forgets_the_old(
    state: State,
) -> None:
    old = Event(
        "work", "old", at(DAY, "09:00") - timedelta(days=20), at(DAY, "10:00") - timedelta(days=20)
    )
    new = Event("work", "new", at(DAY, "09:00"), at(DAY, "10:00"))
    with state.transaction() as tables:
        tables.events.store("lee", [Cached(old), Cached(new)])
        tables.events.replace_listed("lee", "work", Window(NOW, NOW + timedelta(days=7)), NOW)
    with state.read() as tables:
        assert tables.events.ids("lee", "work", WIDE) == {"old"}
    with state.transaction() as tables:
        tables.events.prune_ended("lee", NOW - timedelta(days=10))
    with state.read() as tables:
        assert tables.events.ids("lee", "work", WIDE) == set()


def test_buffers_from_intent_to_settled_deleted_and_pruned(state: State) -> None:
    buffer = Buffer("lee", "work", at(DAY, "09:50"), at(DAY, "10:05"), "Grounding", "s1", "b")
    with state.transaction() as tables:
        tables.buffers.intend_create("lee", "work", "id1", buffer, generation=0, now=NOW)
    with state.read() as tables:
        assert tables.buffers.owned("lee")["id1"].status is BufferStatus.CREATING
    with state.transaction() as tables:
        tables.buffers.save(
            "lee", "work", "id1", buffer, remote_id="r1", etag="e", generation=0, now=NOW
        )
        tables.buffers.intend_update("lee", "id1", buffer)
    with state.read() as tables:
        owned = tables.buffers.owned("lee", "work")["id1"]
        assert (owned.remote_id, owned.etag, owned.status) == ("r1", "e", BufferStatus.ACTIVE)
        assert owned.pending == (buffer.start, buffer.end) and owned.end == buffer.end
    with state.transaction() as tables:
        # A save replaces the record whole: the intent of the update is gone with it.
        tables.buffers.save(
            "lee", "work", "id1", buffer, remote_id="r2", etag=None, generation=1, now=NOW
        )
        tables.buffers.deleted("lee", "id1", NOW)
    with state.read() as tables:
        [record] = tables.buffers.all()
        assert (record.remote_id, record.generation, record.pending) == ("r2", 1, None)
        assert tables.buffers.counts() == {"deleted": 1}
    with state.transaction() as tables:
        tables.buffers.prune_ended("lee", at(DAY, "12:00"))
    with state.read() as tables:
        assert tables.buffers.all() == []


def test_a_violation_seen_again_is_one_row_and_resolves_and_is_pruned(state: State) -> None:
    violation = Violation(
        "lee",
        "breaks",
        Severity.ERROR,
        DAY,
        at(DAY, "09:00"),
        at(DAY, "13:00"),
        "4 in a row",
        events=("s1", "s2"),
        subject="s4",
    )
    with state.transaction() as tables:
        tables.violations.seen(violation, NOW)
        tables.violations.seen(violation, NOW + timedelta(minutes=2))
        tables.violations.notified("lee", NOW, told=[violation.fingerprint])
    with state.read() as tables:
        [record] = tables.violations.all_open()
        assert record.first_seen == NOW and record.last_seen == NOW + timedelta(minutes=2)
        assert record.violation.events == ("s1", "s2") and tables.violations.count_open() == 1
    with state.transaction() as tables:
        tables.violations.resolve("lee", [violation.fingerprint], NOW + timedelta(hours=1))
    with state.read() as tables:
        unannounced = tables.violations.resolved_unannounced("lee", NOW, DAY)
        assert [r.fingerprint for r in unannounced] == [violation.fingerprint]
        assert tables.violations.open("lee") == {}
    with state.transaction() as tables:
        tables.violations.prune_resolved("lee", NOW + timedelta(days=1))
    with state.read() as tables:
        assert tables.violations.resolved_unannounced("lee", NOW, DAY) == []


def test_the_outbox_queues_once_and_keeps_no_text_once_sent(state: State) -> None:
    picture = bytes(range(256))  # any byte, a zero too
    with state.transaction() as tables:
        for _ in range(2):
            tables.outbox.queue(
                message_id="<m1@x>",
                clinician="lee",
                recipient="a@example.org",
                subject="S",
                text="100% kept",
                html="<p>",
                now=NOW,
                not_before=NOW,
                image=picture,
            )
    with state.read() as tables:
        [due] = tables.outbox.due(NOW)
        assert (due.text, due.image, due.attempts) == ("100% kept", picture, 0)
    with state.transaction() as tables:
        tables.outbox.attempt_failed(
            "<m1@x>", attempts=1, error="refused", status="held", retry_at=NOW
        )
        assert tables.outbox.release_held(NOW) == 1
        tables.outbox.sent("<m1@x>", NOW)
        tables.digests.sent("lee", NOW)
        tables.digests.sent("lee", NOW + timedelta(days=1))
    with state.read() as tables:
        [sent] = tables.outbox.all()
        assert (sent.status, sent.text, sent.image) == ("sent", "", None)
        assert tables.digests.last_sent("lee") == NOW + timedelta(days=1)
    with state.transaction() as tables:
        tables.outbox.prune_delivered(NOW + timedelta(days=1))
    with state.read() as tables:
        assert tables.outbox.counts() == {}


def test_problems_clear_by_a_literal_prefix(state: State) -> None:
    with state.transaction() as tables:
        for key in ("calendar:lee/w_1", "calendar:lee/wX1", "auth:lee"):
            tables.problems.add(key, "m", NOW)
        tables.problems.add("auth:lee", "again", NOW)  # known: one row
        tables.problems.clear("calendar:lee/w_")
    with state.read() as tables:
        assert tables.problems.keys() == ["auth:lee", "calendar:lee/wX1"]


def test_marks_and_acks_are_replaced_not_repeated(state: State) -> None:
    with state.transaction() as tables:
        tables.marks.set("lee", "work/e1", "low", NOW)
        tables.marks.set("lee", "work/e1", "high", NOW)
        tables.acks.add("lee", "f1", DAY, NOW)
        tables.acks.add("lee", "f1", None, NOW)
        tables.acks.add("lee", "f2", DAY - timedelta(days=1), NOW)
        tables.acks.prune("lee", DAY)
    with state.read() as tables:
        assert tables.marks.of("lee") == {"work/e1": "high"}
        assert tables.acks.active("lee", DAY + timedelta(days=400)) == {"f1"}
    with state.transaction() as tables:
        assert tables.marks.clear("lee", "work/e1") and not tables.marks.clear("lee", "work/e1")


def test_calendars_record_reads_and_failures(state: State) -> None:
    with state.transaction() as tables:
        tables.calendars.record_failure("lee", "work", error="timed out", paused=None, now=NOW)
        tables.calendars.record_failure(
            "lee", "work", error="again", paused="sign in", now=NOW + timedelta(hours=1)
        )
        tables.calendars.record_empty_read("lee", "work")
    with state.read() as tables:
        row = tables.calendars.get("lee", "work")
        assert row is not None and (row.failing_since, row.paused, row.empty_reads) == (
            NOW,
            "sign in",
            1,
        )
    with state.transaction() as tables:
        tables.calendars.record_success(
            "lee", "work", token="t", window=WIDE, vocabulary="v", now=NOW
        )
    with state.read() as tables:
        [row] = tables.calendars.all()
        assert (row.token, row.window, row.failing_since, row.history_from) == (
            "t",
            WIDE,
            None,
            WIDE.start,
        )


def test_a_failed_transaction_leaves_nothing(state: State) -> None:
    with pytest.raises(RuntimeError), state.transaction() as tables:
        tables.problems.add("k", "m", NOW)
        raise RuntimeError("the cycle failed")
    with state.read() as tables:
        assert tables.problems.keys() == []
    with state.transaction() as tables:  # the state goes on working
        tables.problems.add("k", "m", NOW)
    with state.read() as tables:
        assert tables.problems.keys() == ["k"]


def test_a_dry_run_works_on_a_copy_and_keeps_nothing(location: Location) -> None:
    with State(location).transaction() as tables:
        tables.problems.add("before", "m", NOW)
    copy = State(location, memory_copy=True)
    with copy.transaction() as tables:
        assert tables.problems.keys() == ["before"]
        tables.problems.add("during", "m", NOW)
    with State(location, read_only=True).read() as tables:
        assert tables.problems.keys() == ["before"]


def test_a_reader_cannot_write(location: Location) -> None:
    State(location).close()
    reader = State(location, read_only=True)
    with pytest.raises(StateError, match="cannot be written"), reader.transaction() as tables:
        tables.problems.add("k", "m", NOW)
