"""Reconciliation as a pure function: what is created, moved, deleted, adopted or left
alone, and the safety rules around it (DESIGN.md §5)."""

from __future__ import annotations

from datetime import datetime, timedelta

from caldaemon.core.reconcile import Mark, plan
from caldaemon.model import Buffer, BufferStatus, Create, Delete, Event, OwnedBuffer, Update
from tests.support import NOW, TZ

T = datetime(2026, 11, 30, 10, 50, tzinfo=TZ)


def buffer(after: str = "work/s1", start: datetime = T, minutes: int = 15) -> Buffer:
    return Buffer(
        "lee", "work", start, start + timedelta(minutes=minutes), "Grounding time", after, "high"
    )


def record(
    b: Buffer, *, status: str = BufferStatus.ACTIVE, etag: str = "e1", pending=None
) -> OwnedBuffer:
    return OwnedBuffer(
        "lee",
        b.identity,
        "work",
        f"r-{b.identity[:6]}",
        etag,
        b.start,
        b.end,
        b.title,
        b.after,
        status,
        pending,
    )


def remote(b: Buffer, *, etag: str = "e1", start: datetime | None = None) -> Event:
    start = start or b.start
    return Event(
        "work", f"r-{b.identity[:6]}", start, start + (b.end - b.start), owner=b.identity, etag=etag
    )


def run(desired, owned=(), listed=(), *, trusted=True, max_deletes=20, now=NOW):
    return plan(
        desired,
        {o.identity: o for o in owned},
        {e.owner: e for e in listed},
        now,
        listing_trusted=trusted,
        max_deletes=max_deletes,
    )


def test_a_wanted_buffer_we_do_not_have_is_created():
    b = buffer()
    assert run([b]).writes == [Create(b, b.identity)]


def test_nothing_to_do_when_calendar_and_state_agree():
    b = buffer()
    assert run([b], [record(b)], [remote(b)]).empty


def test_moved_session_moves_its_buffer_with_the_etag_we_hold():
    old, new = buffer(), buffer(start=T + timedelta(hours=2))
    [write] = run([new], [record(old)], [remote(old)]).writes
    assert isinstance(write, Update) and write.remote.etag == "e1" and write.buffer == new


def test_cancelled_session_deletes_its_buffer():
    b = buffer()
    [write] = run([], [record(b)], [remote(b)]).writes
    assert isinstance(write, Delete) and write.remote.etag == "e1"


def test_a_buffer_the_user_edited_is_left_alone_from_then_on():
    b, moved = buffer(), buffer(start=T + timedelta(hours=1))
    result = run([moved], [record(b)], [remote(b, etag="user-changed")])
    assert result.writes == [] and result.marks == [Mark(b.identity, BufferStatus.USER_EDITED)]
    assert run([moved], [record(b, status=BufferStatus.USER_EDITED)], [remote(b, etag="x")]).empty
    assert run([], [record(b, status=BufferStatus.USER_EDITED)], [remote(b, etag="x")]).empty


def test_a_buffer_the_user_deleted_is_not_recreated():
    b = buffer()
    result = run([b], [record(b)], [])
    assert result.writes == [] and result.marks == [Mark(b.identity, BufferStatus.USER_DELETED)]
    assert run([b], [record(b, status=BufferStatus.USER_DELETED)], []).empty


def test_an_untrusted_listing_deletes_nothing_and_concludes_nothing():
    kept, gone = buffer(), buffer(after="work/s2", start=T + timedelta(hours=3))
    result = run([], [record(kept), record(gone)], [remote(kept)], trusted=False)
    assert result.empty


def test_deletes_are_capped_per_cycle_and_the_rest_held():
    buffers = [buffer(after=f"work/s{i}", start=T + timedelta(hours=i)) for i in range(5)]
    result = run([], [record(b) for b in buffers], [remote(b) for b in buffers], max_deletes=2)
    assert [w.identity for w in result.writes] == [buffers[0].identity, buffers[1].identity]
    assert result.held_deletes == 3


def test_nothing_that_started_before_now_is_touched():
    past = buffer(start=NOW - timedelta(hours=1))
    assert run([], [record(past)], [remote(past)]).empty
    assert run([past]).empty
    moved_into_the_past = buffer(start=NOW - timedelta(minutes=5))
    future = buffer(start=NOW + timedelta(hours=1))
    [write] = run([moved_into_the_past], [record(future)], [remote(future)]).writes
    assert isinstance(write, Delete)


def test_a_write_whose_commit_was_lost_is_adopted_not_duplicated():
    b = buffer()
    [adopt] = run([b], [], [remote(b, etag="e9")]).adopt
    assert adopt.remote.etag == "e9"
    result = run([b], [record(b, status=BufferStatus.CREATING, etag=None)], [remote(b, etag="e9")])
    assert result.writes == [] and len(result.adopt) == 1


def test_a_buffer_we_deleted_comes_back_with_its_session():
    b = buffer()
    assert run([b], [record(b, status=BufferStatus.DELETED)], []).writes == [
        Create(b, b.identity, revive=True)
    ]
    assert run([], [record(b, status=BufferStatus.DELETED)], []).empty


def test_a_create_that_never_landed_is_forgotten_when_no_longer_wanted():
    b = buffer()
    assert run([], [record(b, status=BufferStatus.CREATING, etag=None)], []).forget == [b.identity]


def test_a_create_that_never_landed_is_sent_again():
    b = buffer()
    assert run([b], [record(b, status=BufferStatus.CREATING, etag=None)], []).writes == [
        Create(b, b.identity)
    ]


def test_our_own_update_whose_commit_was_lost_is_not_taken_for_a_user_edit():
    old, new = buffer(), buffer(start=T + timedelta(hours=2))
    owned = record(old, pending=(new.start, new.end))
    result = run([new], [owned], [remote(old, etag="e2", start=new.start)])
    assert result.marks == [] and len(result.adopt) == 1 and result.adopt[0].remote.etag == "e2"


def test_a_delete_whose_commit_was_lost_is_recorded_as_done():
    b = buffer()
    assert run([], [record(b, status=BufferStatus.DELETING)], []).marks == [
        Mark(b.identity, BufferStatus.DELETED)
    ]
    [write] = run([], [record(b, status=BufferStatus.DELETING)], [remote(b)]).writes
    assert isinstance(write, Delete)
