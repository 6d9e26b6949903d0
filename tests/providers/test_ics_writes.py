"""Writing caldaemon's buffers into a local .ics file: only its own VEVENTs, bound to
their UIDs, each write as if with If-Match, and every other byte of the file kept."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import icalendar
import pytest

from caldaemon.errors import RemoteGone, WriteConflict
from caldaemon.model import Buffer, Create, Delete, Remote, Update
from caldaemon.providers.ics.mapping import buffer_etag, buffer_uid
from tests.providers.ics_support import (
    TORONTO,
    WINDOW,
    at,
    before_end,
    block_of,
    buffer,
    buffers_file,
    listed,
    without_block,
    writer,
)


@pytest.fixture
def buffers(tmp_path: Path) -> Path:
    return buffers_file(tmp_path)


def test_create_adds_an_owned_buffer_and_leaves_the_rest_byte_identical(buffers: Path) -> None:
    original = buffers.read_bytes()
    wanted = buffer()
    remote = writer(buffers).create(wanted, wanted.identity)
    assert remote.id == buffer_uid(wanted.identity)
    data = buffers.read_bytes()
    assert f"X-CALDAEMON-BUFFER:{wanted.identity}".encode() in data
    assert without_block(data, remote.id) == original
    assert b"\r\n" not in data  # LF file stays LF
    assert buffers.stat().st_mode & 0o777 == 0o640  # permissions kept
    event = listed(buffers, remote.id)
    assert event.owner == wanted.identity and event.etag == remote.etag
    assert (event.start, event.end) == (wanted.start, wanted.end) and event.busy
    # The buffer carries nothing from the session, no alarm and no attendee; colleagues
    # who share the calendar see only that it is busy.
    assert b"VALARM" not in data and b"ATTENDEE" not in data
    assert b"CLASS:PRIVATE" in block_of(data, remote.id)


def test_an_all_day_hold_is_written_with_dates_and_read_back_as_whole_days(
    buffers: Path,
) -> None:
    day = at(TORONTO, 2026, 1, 16)
    hold = Buffer(
        clinician="lee",
        calendar="buffers",
        start=day,
        end=day + timedelta(days=1),
        title="Protected time",
        after="2026-01-16/day off",
        rule="protect[0]",
        all_day=True,
    )
    remote = writer(buffers).create(hold, hold.identity)
    block = block_of(buffers.read_bytes(), remote.id)
    assert b"DTSTART;VALUE=DATE:20260116" in block and b"DTEND;VALUE=DATE:20260117" in block
    event = listed(buffers, remote.id)
    assert event.all_day and event.busy and event.owner == hold.identity
    assert (event.start, event.end) == (hold.start, hold.end)


def test_create_is_idempotent(buffers: Path) -> None:
    wanted = buffer()
    first = writer(buffers).create(wanted, wanted.identity)
    data = buffers.read_bytes()
    again = writer(buffers).apply([Create(wanted, wanted.identity)] * 2)
    assert [r.remote for r in again] == [first, first]
    assert buffers.read_bytes() == data
    assert data.count(first.id.encode()) == 1


def test_update_and_delete_with_the_current_etag(buffers: Path) -> None:
    original = buffers.read_bytes()
    wanted = buffer()
    ics = writer(buffers)
    remote = ics.create(wanted, wanted.identity)
    moved = buffer(hour=16)
    updated = ics.update(remote, moved, wanted.identity)
    assert updated.id == remote.id and updated.etag != remote.etag
    assert without_block(buffers.read_bytes(), remote.id) == original
    event = listed(buffers, remote.id)
    assert event.start == moved.start and event.etag == updated.etag
    ics.delete(updated)
    assert buffers.read_bytes() == original


def test_stale_etags_conflict_and_change_nothing(buffers: Path) -> None:
    wanted = buffer()
    ics = writer(buffers)
    remote = ics.create(wanted, wanted.identity)
    data = buffers.read_bytes()
    stale = Remote(remote.id, "stale")
    results = ics.apply([Update(buffer(hour=16), wanted.identity, stale), Delete("", stale)])
    assert all(isinstance(r.error, WriteConflict) for r in results)
    assert buffers.read_bytes() == data


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"SUMMARY:Grounding time", b"SUMMARY:Walk with the dog"),
        (b"DTSTART:20260112T200000Z", b"DTSTART:20260112T201000Z"),
    ],
)
def test_a_user_edit_changes_the_etag(buffers: Path, old: bytes, new: bytes) -> None:
    wanted = buffer()
    ics = writer(buffers)
    remote = ics.create(wanted, wanted.identity)
    data = buffers.read_bytes()
    assert old in data
    buffers.write_bytes(data.replace(old, new))
    assert listed(buffers, remote.id).etag != remote.etag
    edited = buffers.read_bytes()
    result = ics.apply([Delete("", remote)])[0]
    assert isinstance(result.error, WriteConflict) and buffers.read_bytes() == edited


def test_deleting_a_missing_event_is_remote_gone(buffers: Path) -> None:
    result = writer(buffers).apply([Delete("", Remote("caldaemon-nope@caldaemon", "x"))])[0]
    assert isinstance(result.error, RemoteGone)


def test_an_event_without_the_owner_marker_is_never_touched(buffers: Path) -> None:
    wanted = buffer()
    uid = buffer_uid(wanted.identity)
    mine = (
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20251201T120000Z\n"
        "DTSTART:20260112T200000Z\nDTEND:20260112T201500Z\nSUMMARY:Mine\nEND:VEVENT\n"
    )
    data = buffers.read_bytes().replace(b"END:VCALENDAR", mine.encode() + b"END:VCALENDAR")
    buffers.write_bytes(data)
    etag = listed(buffers, uid).etag
    assert etag is None  # not a buffer of ours
    remote = Remote(uid, buffer_etag(icalendar.Event.from_ical(mine)))
    results = writer(buffers).apply(
        [
            Create(wanted, wanted.identity),
            Update(wanted, wanted.identity, remote),
            Delete("", remote),
        ]
    )
    assert all(isinstance(r.error, WriteConflict) for r in results)
    assert buffers.read_bytes() == data


def test_the_first_buffer_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "buffers.ics"
    wanted = buffer()
    remote = writer(path).create(wanted, wanted.identity)
    assert path.stat().st_mode & 0o777 == 0o600
    assert listed(path, remote.id).etag == remote.etag


# -- the marker binds to the UID (DESIGN.md §5) ------------------------------------------

COPY = "copy-1@app.example"


def with_copy(data: bytes, uid: str, new_uid: str = COPY) -> bytes:
    """``data`` with the block of ``uid`` duplicated as a calendar app duplicates an event:
    a new UID, every other property kept, the owner marker too."""
    old, new = f"UID:{uid}".encode(), f"UID:{new_uid}".encode()
    return before_end(data, block_of(data, uid).replace(old, new))


def test_a_users_copy_of_a_buffer_is_listed_as_marked_but_not_owned(buffers: Path) -> None:
    wanted = buffer()
    ics = writer(buffers)
    remote = ics.create(wanted, wanted.identity)
    buffers.write_bytes(with_copy(buffers.read_bytes(), remote.id))
    found = {e.id: e for e in ics.changes(WINDOW, None).events}
    ours, copy, lunch = found[remote.id], found[COPY], found["lunch@me.example"]
    assert (ours.owner, ours.marked, ours.etag) == (wanted.identity, True, remote.etag)
    assert (copy.owner, copy.marked, copy.etag) == (None, True, None)
    assert (copy.start, copy.end) == (ours.start, ours.end)
    assert (lunch.owner, lunch.marked) == (None, False)


def test_writes_aimed_at_a_users_copy_of_a_buffer_are_refused(buffers: Path) -> None:
    wanted = buffer()
    ics = writer(buffers)
    remote = ics.create(wanted, wanted.identity)
    data = with_copy(buffers.read_bytes(), remote.id)
    buffers.write_bytes(data)
    # Aimed at the copy by its id, with its current etag: still the user's event.
    at_copy = Remote(COPY, buffer_etag(icalendar.Event.from_ical(block_of(data, COPY))))
    results = ics.apply(
        [
            Update(buffer(16), wanted.identity, at_copy),
            Delete(wanted.identity, at_copy),
            Delete("", at_copy),
        ]
    )
    assert all(isinstance(r.error, WriteConflict) for r in results)
    assert buffers.read_bytes() == data
    # Its session is cancelled: caldaemon deletes its own buffer and the copy stays.
    [deleted] = ics.apply([Delete(wanted.identity, remote)])
    assert deleted.error is None
    after = buffers.read_bytes()
    assert block_of(after, COPY) == block_of(data, COPY)
    assert remote.id.encode() not in after


def test_a_copy_that_keeps_our_uid_makes_neither_block_ours(buffers: Path) -> None:
    """A text editor's copy and paste keeps the UID too: two blocks, no telling which one
    caldaemon wrote, so it writes to neither."""
    wanted = buffer()
    ics = writer(buffers)
    remote = ics.create(wanted, wanted.identity)
    data = buffers.read_bytes()
    data = before_end(data, block_of(data, remote.id))
    buffers.write_bytes(data)
    results = ics.apply(
        [
            Create(wanted, wanted.identity),
            Update(buffer(16), wanted.identity, remote),
            Delete(wanted.identity, remote),
        ]
    )
    assert all(isinstance(r.error, WriteConflict) for r in results)
    assert buffers.read_bytes() == data


def test_a_write_naming_another_identity_than_the_marker_is_refused(buffers: Path) -> None:
    first, second = buffer(15, "s1"), buffer(17, "s2")
    ics = writer(buffers)
    ics.create(first, first.identity)
    remote = ics.create(second, second.identity)
    data = buffers.read_bytes()
    results = ics.apply(
        [Update(buffer(16), first.identity, remote), Delete(first.identity, remote)]
    )
    assert all(isinstance(r.error, WriteConflict) for r in results)
    assert buffers.read_bytes() == data


def test_a_marker_on_a_recurring_event_binds_to_nothing(buffers: Path) -> None:
    """caldaemon never writes a series: one with our UID and marker is the user's."""
    identity = buffer().identity
    uid = buffer_uid(identity)
    series = (
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20251201T120000Z\n"
        "DTSTART:20260112T200000Z\nDTEND:20260112T201500Z\nRRULE:FREQ=WEEKLY;COUNT=3\n"
        f"SUMMARY:Grounding time\nX-CALDAEMON-BUFFER:{identity}\nEND:VEVENT\n"
    ).encode()
    data = before_end(buffers.read_bytes(), series)
    buffers.write_bytes(data)
    found = [e for e in writer(buffers).changes(WINDOW, None).events if e.series == uid]
    assert len(found) == 3 and all(e.marked and e.owner is None for e in found)
    etag = buffer_etag(icalendar.Event.from_ical(block_of(data, uid)))
    [delete] = writer(buffers).apply([Delete(identity, Remote(uid, etag))])
    assert isinstance(delete.error, WriteConflict) and buffers.read_bytes() == data


def test_a_create_whose_uid_is_taken_by_a_cancelled_event_is_remote_gone(
    buffers: Path,
) -> None:
    wanted = buffer()
    ics = writer(buffers)
    ics.create(wanted, wanted.identity)
    data = buffers.read_bytes().replace(b"STATUS:CONFIRMED", b"STATUS:CANCELLED")
    buffers.write_bytes(data)
    [again] = ics.apply([Create(wanted, wanted.identity)])
    assert isinstance(again.error, RemoteGone) and buffers.read_bytes() == data


def test_a_create_meeting_an_ended_earlier_life_of_its_buffer_finds_it_gone(
    buffers: Path,
) -> None:
    # Last month's buffer is still in the file under the id (its record was pruned);
    # the session moved on. It is history: never adopted as the new buffer.
    ended = buffer()
    ended = dataclasses.replace(ended, start=ended.start - timedelta(days=30))
    ended = dataclasses.replace(ended, end=ended.start + timedelta(minutes=15))
    ics = writer(buffers)
    first = ics.create(ended, ended.identity)
    kept = block_of(buffers.read_bytes(), first.id)
    [again] = ics.apply([Create(buffer(), ended.identity)])
    assert isinstance(again.error, RemoteGone)
    assert block_of(buffers.read_bytes(), first.id) == kept  # left as it was


def test_a_create_meeting_a_live_earlier_write_of_its_buffer_adopts_it(buffers: Path) -> None:
    # A create whose answer was lost, sent again after the session moved: the same life.
    ics = writer(buffers)
    first = ics.create(buffer(), buffer().identity)
    [again] = ics.apply([Create(buffer(hour=16), buffer().identity)])
    assert again.error is None and again.remote == first
