"""Reconciliation as a pure function (DESIGN.md §5): every cell of the lifecycle table in
``caldaemon/core/reconcile.py``, then the safety rules around it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from caldaemon.core.reconcile import Adopt, Evidence, Mark, Plan, plan
from caldaemon.model import (
    Buffer,
    BufferStatus,
    Create,
    Delete,
    Event,
    OwnedBuffer,
    Remote,
    Update,
    Window,
    written_identity,
)
from tests.support import NOW, TZ

S = BufferStatus
T = datetime(2026, 11, 30, 10, 50, tzinfo=TZ)
WINDOW = Window(NOW - timedelta(days=7), NOW + timedelta(days=35))
VIEW_END = NOW + timedelta(days=28)
TRUSTED = Evidence(WINDOW, trusted=True)
UNTRUSTED = Evidence(WINDOW, trusted=False)


def buffer(after: str = "work/s1", start: datetime = T, minutes: int = 15) -> Buffer:
    return Buffer(
        "lee", "work", start, start + timedelta(minutes=minutes), "Grounding time", after, "high"
    )


def record(
    b: Buffer,
    status: BufferStatus = S.ACTIVE,
    *,
    etag: str | None = "e1",
    pending: tuple[datetime, datetime] | None = None,
    generation: int = 0,
    remote_id: str | None = None,
) -> OwnedBuffer:
    rid = remote_id if remote_id is not None else f"r-{b.identity[:6]}-{generation}"
    return OwnedBuffer(
        "lee",
        b.identity,
        "work",
        rid,
        etag,
        b.start,
        b.end,
        b.title,
        b.after,
        status,
        pending,
        generation,
    )


def event(
    b: Buffer,
    *,
    etag: str = "e1",
    start: datetime | None = None,
    title: str | None = None,
    generation: int = 0,
    event_id: str | None = None,
) -> Event:
    start = start or b.start
    return Event(
        "work",
        event_id or f"r-{b.identity[:6]}-{generation}",
        start,
        start + (b.end - b.start),
        title=b.title if title is None else title,
        owner=written_identity(b.identity, generation),
        marked=True,
        etag=etag,
    )


def run(
    desired: list[Buffer],
    owned: list[OwnedBuffer] = (),  # type: ignore[assignment]
    listed: list[Event] = (),  # type: ignore[assignment]
    *,
    evidence: Evidence = TRUSTED,
    max_deletes: int = 20,
    now: datetime = NOW,
) -> Plan:
    return plan(
        desired,
        {o.identity: o for o in owned},
        listed,
        now,
        view_end=VIEW_END,
        evidence=evidence,
        max_deletes=max_deletes,
    )


def outcome(result: Plan) -> str:
    """The plan in one word, as the table in core/reconcile.py writes it."""
    found: list[str] = []
    for write in result.writes:
        if isinstance(write, Create):
            found.append("create" if write.identity.endswith("-g1") is False else "create next")
        else:
            found.append("update" if isinstance(write, Update) else "delete")
    found += [f"adopt {a.status}" for a in result.adopt]
    found += [f"mark {m.status}" for m in result.marks]
    found += ["forget" for _ in result.forget]
    assert len(found) <= 1, found
    return found[0] if found else "nothing"


B = buffer()
MOVED = buffer(start=T + timedelta(hours=2))
SAME = event(B)
EDITED = event(B, title="Grounding walk")

# record status, what the calendar shows, wanted?, expected — one row per cell of the table.
CELLS = [
    (None, SAME, True, "adopt active"),
    (None, EDITED, True, "adopt user_edited"),
    (None, "gone", True, "create"),
    (None, "unknown", True, "create"),
    (None, SAME, False, "nothing"),
    (None, "gone", False, "nothing"),
    (S.CREATING, SAME, True, "adopt active"),
    (S.CREATING, SAME, False, "delete"),
    (S.CREATING, EDITED, True, "adopt user_edited"),
    (S.CREATING, EDITED, False, "adopt user_edited"),
    (S.CREATING, "gone", True, "create"),
    (S.CREATING, "gone", False, "forget"),
    (S.CREATING, "unknown", True, "nothing"),
    (S.CREATING, "unknown", False, "nothing"),
    (S.ACTIVE, SAME, True, "nothing"),
    (S.ACTIVE, SAME, False, "delete"),
    (S.ACTIVE, EDITED, True, "adopt user_edited"),
    (S.ACTIVE, EDITED, False, "adopt user_edited"),
    (S.ACTIVE, "gone", True, "mark user_deleted"),
    (S.ACTIVE, "gone", False, "mark user_deleted"),
    (S.ACTIVE, "unknown", True, "nothing"),
    (S.ACTIVE, "unknown", False, "nothing"),
    (S.DELETING, SAME, True, "adopt active"),
    (S.DELETING, SAME, False, "delete"),
    (S.DELETING, EDITED, True, "adopt user_edited"),
    (S.DELETING, EDITED, False, "adopt user_edited"),
    (S.DELETING, "gone", True, "create next"),
    (S.DELETING, "gone", False, "mark deleted"),
    (S.DELETING, "unknown", True, "nothing"),
    (S.DELETING, "unknown", False, "nothing"),
    (S.DELETED, SAME, True, "adopt active"),
    (S.DELETED, SAME, False, "adopt active"),
    (S.DELETED, EDITED, True, "adopt user_edited"),
    (S.DELETED, EDITED, False, "adopt user_edited"),
    (S.DELETED, "gone", True, "create next"),
    (S.DELETED, "unknown", True, "create next"),
    (S.DELETED, "gone", False, "nothing"),
    (S.USER_EDITED, SAME, True, "adopt active"),
    (S.USER_EDITED, SAME, False, "adopt active"),
    (S.USER_EDITED, EDITED, True, "nothing"),
    (S.USER_EDITED, EDITED, False, "nothing"),
    (S.USER_EDITED, "gone", True, "mark user_deleted"),
    (S.USER_EDITED, "unknown", True, "nothing"),
    (S.USER_DELETED, SAME, True, "adopt active"),
    (S.USER_DELETED, SAME, False, "adopt active"),
    (S.USER_DELETED, EDITED, True, "adopt user_edited"),
    (S.USER_DELETED, "gone", True, "nothing"),
    (S.USER_DELETED, "unknown", False, "nothing"),
]


@pytest.mark.parametrize(
    ("status", "shown", "wanted", "expected"),
    CELLS,
    ids=[f"{s or 'none'}-{e if isinstance(e, str) else e.title}-{w}" for s, e, w, _ in CELLS],
)
def test_every_cell_of_the_lifecycle_table(
    status: BufferStatus | None, shown: Event | str, wanted: bool, expected: str
) -> None:
    owned = [record(B, status)] if status is not None else []
    if status is S.CREATING:
        owned = [record(B, status, etag=None, remote_id="")]
    listed = [shown] if isinstance(shown, Event) else []
    evidence = UNTRUSTED if shown == "unknown" else TRUSTED
    assert outcome(run([B] if wanted else [], owned, listed, evidence=evidence)) == expected


def test_a_moved_session_moves_its_buffer_with_the_etag_the_calendar_shows_now() -> None:
    # The service changed the etag on its own (Graph changeKeys do): not an edit.
    [write] = run([MOVED], [record(B)], [event(B, etag="drifted")]).writes
    assert isinstance(write, Update) and write.buffer == MOVED
    assert write.remote.etag == "drifted" and write.identity == B.identity


def test_an_etag_that_changed_alone_is_no_user_edit() -> None:
    assert run([B], [record(B)], [event(B, etag="e9")]).empty


def test_a_copy_the_user_made_is_never_written_to_nor_counted_as_ours() -> None:
    copy = dataclasses.replace(SAME, id="users-copy", owner=None)
    result = run([], [record(B)], [copy])
    assert result.writes == [] and result.marks == [Mark(B.identity, S.USER_DELETED)]


def test_an_event_with_our_marker_under_another_id_than_recorded_is_not_ours() -> None:
    stranger = event(B, event_id="someone-else")
    assert run([], [record(B)], [stranger], evidence=UNTRUSTED).writes == []


def test_absence_outside_the_listed_window_proves_nothing() -> None:
    # A shorter horizon or a clock step: the record's slot is not in what was listed.
    late = buffer(start=NOW + timedelta(days=20))
    narrow = Evidence(Window(NOW - timedelta(days=7), NOW + timedelta(days=14)), trusted=True)
    assert run([late], [record(late)], [], evidence=narrow).empty
    assert run([], [record(late)], [], evidence=narrow).empty


def test_buffers_beyond_the_horizon_are_out_of_view_and_never_deleted() -> None:
    far = buffer(start=VIEW_END + timedelta(days=1))
    assert run([], [record(far)], [event(far)]).empty


def test_nothing_that_started_before_now_is_touched() -> None:
    past = buffer(start=NOW - timedelta(hours=1))
    assert run([], [record(past)], [event(past)]).empty
    assert run([past], [], []).empty
    moved_from_past = buffer(start=NOW + timedelta(hours=2))
    result = run([moved_from_past], [record(past)], [event(past)])
    assert not any(isinstance(w, Update) for w in result.writes)


def test_a_buffer_caldaemon_deleted_comes_back_as_the_next_generation() -> None:
    [write] = run([B], [record(B, S.DELETED, generation=2)], []).writes
    assert write == Create(B, f"{B.identity}-g3")
    assert run([B], [record(B, S.DELETED, generation=2)], []).generations == {B.identity: 3}


def test_with_no_record_the_latest_generation_on_the_calendar_is_adopted() -> None:
    old, new = event(B, generation=1), event(B, generation=2)
    [adopt] = run([B], [], [old, new]).adopt
    assert adopt == Adopt(B.identity, 2, S.ACTIVE, dataclasses.replace(adopt.remote), B)
    assert adopt.remote.id == new.id


def test_our_own_update_that_landed_before_a_crash_is_adopted_not_taken_for_an_edit() -> None:
    pending = (MOVED.start, MOVED.end)
    [adopt] = run([MOVED], [record(B, pending=pending)], [event(MOVED)]).adopt
    assert adopt.status is S.ACTIVE and adopt.buffer == MOVED


def test_deletes_are_capped_per_cycle_earliest_first() -> None:
    buffers = [buffer(after=f"work/s{i}", start=T + timedelta(days=i)) for i in range(5)]
    result = run([], [record(b) for b in buffers], [event(b) for b in buffers], max_deletes=2)
    assert [w.identity for w in result.writes] == [b.identity for b in buffers[:2]]
    assert all(isinstance(w, Delete) for w in result.writes) and result.held_deletes == 3


def test_an_untrusted_listing_deletes_nothing_of_ours_and_concludes_nothing() -> None:
    assert run([], [record(B)], [SAME], evidence=UNTRUSTED).empty
    assert run([], [record(B)], [], evidence=UNTRUSTED).empty


def test_a_buffer_in_the_repeated_dst_hour_is_not_rewritten_every_cycle() -> None:
    # 2026-11-01 01:20 happens twice in Toronto; the buffer after a session ending in the
    # second 01:20 (fold=1) starts then. State stores UTC; the rules work in local time.
    start = datetime(2026, 11, 1, 1, 20, fold=1, tzinfo=TZ)
    wanted = Buffer("lee", "work", start, start + timedelta(minutes=15), "Notes", "work/n", "low")
    stored = dataclasses.replace(
        record(wanted), start=start.astimezone(UTC), end=wanted.end.astimezone(UTC)
    )
    earlier = datetime(2026, 10, 31, 20, 0, tzinfo=TZ)
    result = plan(
        [wanted],
        {wanted.identity: stored},
        [event(wanted)],
        earlier,
        view_end=earlier + timedelta(days=28),
        evidence=TRUSTED,
        max_deletes=20,
    )
    assert result.empty


def test_a_buffer_wanted_again_after_its_record_went_past_is_a_new_generation() -> None:
    # The session ran last Monday; it moves to next Monday. The old buffer is history.
    past = buffer(start=NOW - timedelta(days=7))
    ahead = buffer(start=NOW + timedelta(days=7))
    result = run([ahead], [record(past)], [event(past)])
    assert result.writes == [Create(ahead, written_identity(B.identity, 1))]
    assert result.generations == {B.identity: 1}


def test_a_restored_old_generation_unchanged_is_deleted_and_the_record_kept() -> None:
    live, restored = event(B, generation=1), event(B, generation=0, etag="e0")
    result = run([B], [record(B, generation=1)], [live, restored])
    assert [w for w in result.writes if isinstance(w, Delete)] == [
        Delete(written_identity(B.identity, 0), Remote(restored.id, "e0"))
    ]
    assert result.duplicates == {written_identity(B.identity, 0)}
    assert not (result.adopt or result.marks)


def test_another_generation_the_user_changed_or_an_untrusted_listing_is_left_alone() -> None:
    changed = event(B, generation=1, title="Walk by the river")
    assert run([B], [record(B)], [event(B), changed]).writes == []
    duplicate = event(B, generation=1)
    assert run([B], [record(B)], [event(B), duplicate], evidence=UNTRUSTED).writes == []


def test_an_event_an_unanswered_update_moved_into_the_past_is_never_deleted() -> None:
    # The update moved the buffer to 07:50 (before now); its answer was lost.
    earlier = buffer(start=NOW - timedelta(minutes=10))
    owned = record(B, pending=(earlier.start, earlier.end))
    result = run([], [owned], [event(B, start=earlier.start)])
    assert result.writes == []
    [adopt] = result.adopt
    assert adopt.buffer is not None and adopt.buffer.start == earlier.start


def test_with_no_record_an_ended_buffer_is_history_and_the_next_generation_is_made() -> None:
    # The record of last week's buffer was pruned; the session moves to next week.
    past = buffer(start=NOW - timedelta(days=7))
    ahead = buffer(start=NOW + timedelta(days=7))
    result = run([ahead], [], [event(past, start=past.start)])
    assert result.writes == [Create(ahead, written_identity(B.identity, 1))]
    assert result.adopt == []


def test_a_create_sent_again_repeats_what_the_first_sent_when_the_session_moved() -> None:
    # The first create's answer was lost and a listing missed it; the session has moved
    # since. "Already there" or landed now, the calendar then holds what the record says.
    owned = record(B, S.CREATING, etag=None, remote_id="")
    result = run([MOVED], [owned], [])
    assert result.writes == [
        Create(dataclasses.replace(MOVED, start=B.start, end=B.end), B.identity)
    ]
    assert result.generations == {B.identity: 0}
    # Settled, the next cycle moves it where the session wants it.
    [move] = run([MOVED], [record(B)], [SAME]).writes
    assert isinstance(move, Update) and move.buffer == MOVED


def test_a_create_sent_again_whose_first_slot_has_begun_is_the_next_generation() -> None:
    running = buffer(start=NOW - timedelta(minutes=5))
    result = run([MOVED], [record(running, S.CREATING, etag=None, remote_id="")], [])
    assert result.writes == [Create(MOVED, written_identity(B.identity, 1))]
    assert result.generations == {B.identity: 1}


def test_a_create_sent_again_whose_first_slot_left_the_view_is_the_next_generation() -> None:
    beyond = buffer(start=VIEW_END + timedelta(hours=1))
    wide = Evidence(Window(NOW - timedelta(days=7), VIEW_END + timedelta(days=7)), trusted=True)
    owned = record(beyond, S.CREATING, etag=None, remote_id="")
    result = run([MOVED], [owned], [], evidence=wide)
    assert result.writes == [Create(MOVED, written_identity(B.identity, 1))]


def test_with_no_record_a_running_buffer_is_history_and_the_next_generation_is_made() -> None:
    # The state was lost while the buffer ran; its session moved to tomorrow.
    running = buffer(start=NOW - timedelta(minutes=1))
    tomorrow = buffer(start=NOW + timedelta(days=1))
    result = run([tomorrow], [], [event(running)])
    assert result.writes == [Create(tomorrow, written_identity(B.identity, 1))]
    assert result.adopt == []


def test_a_running_buffer_whose_session_moved_away_is_history_and_the_next_is_made() -> None:
    running = buffer(start=NOW - timedelta(minutes=1))
    tomorrow = buffer(start=NOW + timedelta(days=1))
    result = run([tomorrow], [record(running)], [event(running)])
    assert result.writes == [Create(tomorrow, written_identity(B.identity, 1))]
    # Edited by the user, it stays theirs: nothing is made beside it.
    edited = event(running, title="Grounding walk")
    assert run([tomorrow], [record(running)], [edited]).writes == []
