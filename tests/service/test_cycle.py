"""Full daemon cycles against real .ics files: buffers placed, moved, removed, and the
user's edits and deletions respected."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from tests import state_view
from tests.service.workspace import Session, Workspace
from tests.support import TZ

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)


@pytest.fixture
def ws(tmp_path):
    return Workspace(
        tmp_path,
        sessions=[
            Session("s1@practice", MON_10),
            Session("s2@practice", MON_10 + timedelta(days=1)),
        ],
    )


def statuses(ws):
    """How many owned buffers have each status."""
    with state_view.tables(ws.state_dir) as tables:
        return tables.buffers.counts()


def test_first_cycle_places_marked_buffers_and_records_them(ws):
    report = ws.cycle(NOW)
    assert report.created == 2
    blocks = ws.buffer_blocks()
    assert len(blocks) == 2
    assert all("SUMMARY:Grounding time" in b and "TRANSP:OPAQUE" in b for b in blocks)
    assert all("VALARM" not in b and "ATTENDEE" not in b for b in blocks)
    assert "DTSTART:20261130T155000Z" in blocks[0]  # 10:50 in Toronto
    assert statuses(ws) == {"active": 2}


def test_a_second_cycle_without_changes_writes_nothing(ws):
    ws.cycle(NOW)
    before = ws.buffers.read_bytes(), ws.buffers.stat().st_mtime_ns
    report = ws.cycle(NOW + timedelta(minutes=2))
    assert (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert (ws.buffers.read_bytes(), ws.buffers.stat().st_mtime_ns) == before


def test_a_moved_session_moves_its_buffer(ws):
    ws.cycle(NOW)
    ws.sessions[0].start = MON_10 + timedelta(hours=3)
    report = ws.cycle(NOW + timedelta(minutes=2))
    assert report.updated == 1 and report.created == 0
    assert "DTSTART:20261130T185000Z" in ws.buffer_blocks()[0]
    assert len(ws.buffer_blocks()) == 2


def test_a_cancelled_session_loses_its_buffer(ws):
    ws.cycle(NOW)
    ws.sessions[1].status = "CANCELLED"
    report = ws.cycle(NOW + timedelta(minutes=2))
    assert report.deleted == 1
    assert len(ws.buffer_blocks()) == 1


def test_a_buffer_the_user_edited_is_never_touched_again(ws):
    ws.cycle(NOW)
    ws.buffers.write_text(
        ws.buffers.read_text().replace("SUMMARY:Grounding time", "SUMMARY:Grounding walk", 1)
    )
    edited = ws.buffer_blocks()[0]
    ws.sessions[0].start = MON_10 + timedelta(hours=3)  # would move it
    ws.cycle(NOW + timedelta(minutes=2))
    ws.sessions[0].status = "CANCELLED"  # would delete it
    ws.cycle(NOW + timedelta(minutes=4))
    assert edited in ws.buffer_blocks()
    assert statuses(ws) == {"active": 1, "user_edited": 1}


def test_a_buffer_the_user_deleted_is_not_recreated(ws):
    ws.cycle(NOW)
    text = ws.buffers.read_text()
    first = re.search(r"BEGIN:VEVENT.*?END:VEVENT\r?\n", text, re.S)
    ws.buffers.write_text(text.replace(first.group(0), ""))
    ws.cycle(NOW + timedelta(minutes=2))
    ws.cycle(NOW + timedelta(minutes=4))
    assert len(ws.buffer_blocks()) == 1
    assert statuses(ws) == {"active": 1, "user_deleted": 1}


def test_an_empty_read_deletes_nothing_until_it_is_confirmed(ws):
    ws.cycle(NOW)
    sessions, ws.sessions = ws.sessions, []
    report = ws.cycle(NOW + timedelta(minutes=2))
    assert report.deleted == 0 and len(ws.buffer_blocks()) == 2
    report = ws.cycle(NOW + timedelta(minutes=4))
    assert report.deleted == 2 and ws.buffer_blocks() == []
    ws.sessions = sessions


def test_deletes_are_capped_per_cycle(ws):
    ws.sessions = [Session(f"s{i}@practice", MON_10 + timedelta(days=i)) for i in range(5)]
    ws.cycle(NOW)
    ws.max_deletes = 2
    for s in ws.sessions:
        s.status = "CANCELLED"
    ws.sessions.append(Session("keep@practice", MON_10 + timedelta(days=7)))
    assert ws.cycle(NOW + timedelta(minutes=2)).deleted == 2
    assert ws.cycle(NOW + timedelta(minutes=4)).deleted == 2
    assert ws.cycle(NOW + timedelta(minutes=6)).deleted == 1
    assert len(ws.buffer_blocks()) == 1


def test_other_events_in_the_buffers_calendar_keep_their_exact_bytes(ws):
    mine = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//me//EN\nBEGIN:VEVENT\nUID:dentist@me\n"
        "DTSTAMP:20260101T000000Z\nDTSTART:20261204T190000Z\nDTEND:20261204T200000Z\n"
        "SUMMARY:Dentist\nX-SOMETHING;X-P=1:keep me\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    ws.buffers.write_text(mine)
    ws.cycle(NOW)
    ws.sessions[1].status = "CANCELLED"
    ws.cycle(NOW + timedelta(minutes=2))
    text = ws.buffers.read_text()
    assert text.startswith(mine.split("END:VCALENDAR")[0])
    assert "\r\n" not in text  # the file's own line endings are kept


def test_dry_run_writes_and_keeps_nothing(ws):
    report = ws.cycle(NOW, dry_run=True)
    assert report.created == 0
    assert not ws.buffers.exists()
    assert not (ws.state_dir / "state.sqlite3").exists()
    assert not (ws.state_dir / "notices").exists()


def test_nothing_before_now_is_written(ws):
    report = ws.cycle(MON_10 + timedelta(hours=2))  # Monday's session and buffer are past
    assert report.created == 1
    assert "DTSTART:20261201T155000Z" in ws.buffer_blocks()[0]


def test_a_buffers_file_with_a_byte_order_mark_has_its_buffers_moved_and_removed(ws):
    """A BOM before BEGIN:VCALENDAR once hid every block from caldaemon's own writes: its
    buffers could never be moved or removed (issue 10)."""
    ws.buffers.write_bytes(b"\xef\xbb\xbfBEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    ws.cycle(NOW)
    ws.sessions[0].start = MON_10 + timedelta(hours=3)
    assert ws.cycle(NOW + timedelta(minutes=2)).updated == 1
    ws.sessions[1].status = "CANCELLED"
    assert ws.cycle(NOW + timedelta(minutes=4)).deleted == 1
    [block] = ws.buffer_blocks()
    assert "DTSTART:20261130T185000Z" in block
    assert ws.buffers.read_bytes().startswith(b"\xef\xbb\xbfBEGIN:VCALENDAR\r\n")
    assert statuses(ws) == {"active": 1, "deleted": 1}


def test_a_users_copy_of_a_buffer_survives_when_its_session_is_cancelled(ws):
    """The user duplicates a buffer in their app (new UID, the marker kept): the copy is
    theirs. Cancelling the session removes caldaemon's buffer, never the copy (issue 10:
    whichever of the two was listed last was deleted)."""
    ws.cycle(NOW)
    text = ws.buffers.read_text()
    block = re.search(r"BEGIN:VEVENT.*?END:VEVENT\r?\n", text, re.S).group(0)
    copy = re.sub(r"(?m)^UID:.*$", "UID:my-copy@phone", block, count=1)
    ws.buffers.write_text(text.replace("END:VCALENDAR", copy + "END:VCALENDAR"))
    ws.cycle(NOW + timedelta(minutes=2))
    ws.sessions[0].status = "CANCELLED"
    ws.cycle(NOW + timedelta(minutes=4))
    assert copy in ws.buffers.read_text()  # byte for byte
    assert len(ws.buffer_blocks()) == 2  # the copy and the buffer of the other session


def test_a_symlinked_buffers_file_stays_a_link(ws):
    target = ws.root / "synced" / "buffers.ics"
    target.parent.mkdir()
    ws.buffers.symlink_to(target)
    ws.cycle(NOW)
    ws.sessions[1].status = "CANCELLED"
    ws.cycle(NOW + timedelta(minutes=2))
    assert ws.buffers.is_symlink() and len(ws.buffer_blocks()) == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["buffers.ics"]
