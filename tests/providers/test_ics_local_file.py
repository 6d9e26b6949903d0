"""A local .ics file shared with the user's calendar app (DESIGN.md §5 "Local files"):
a save by the app while caldaemon writes is never lost, a byte-order mark, line ends,
folded lines and foreign components keep their bytes, a symlink stays a link, and a
crash leaves nothing behind for good."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from caldaemon.errors import CalendarError, TransientError
from caldaemon.model import Create
from tests.providers.ics_support import (
    BOM,
    OUR_TEMP,
    before_end,
    buffer,
    buffers_file,
    listed,
    without_block,
    writer,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def buffers(tmp_path: Path) -> Path:
    return buffers_file(tmp_path)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "buffers.ics")


# -- a save by the user's app while caldaemon writes --------------------------------------

PHYSIO = (
    b"BEGIN:VEVENT\nUID:physio@me.example\nDTSTAMP:20260101T000000Z\n"
    b"DTSTART:20260113T150000Z\nDTEND:20260113T160000Z\nSUMMARY:Physio\nEND:VEVENT\n"
)


def test_a_save_by_the_users_app_during_our_fsync_is_kept_and_our_write_waits(
    buffers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue measured 1-3 new events lost in 3 of 5 trials with fsync slowed by
    20-50 ms: the file was compared before the fsync, and the app saved during it. Here
    the app saves exactly while caldaemon syncs its temporary file."""
    real_fsync = os.fsync
    saved: list[bytes] = []

    def fsync_while_the_app_saves(fd: int) -> None:
        if not saved:
            saved.append(before_end(buffers.read_bytes(), PHYSIO))
            buffers.write_bytes(saved[0])  # the app writes its file anew, in place
        real_fsync(fd)

    ics = writer(buffers)
    wanted = buffer()
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync_while_the_app_saves)
        with pytest.raises(TransientError, match="changed while caldaemon was writing"):
            ics.apply([Create(wanted, wanted.identity)])
    assert saved and buffers.read_bytes() == saved[0]
    assert leftovers(buffers.parent) == []
    # The next cycle writes the buffer into the file as the app left it.
    [result] = ics.apply([Create(wanted, wanted.identity)])
    assert result.error is None and result.remote is not None
    assert without_block(buffers.read_bytes(), result.remote.id) == saved[0]
    assert listed(buffers, "physio@me.example").title == "Physio"


def test_a_file_replaced_by_a_save_with_the_same_bytes_also_waits(
    buffers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apps save by renaming a new file over the old one; the inode tells it even when
    the bytes are the same (a later save in the same instant would not be told apart
    by bytes alone)."""
    real_fsync = os.fsync
    saved: list[bool] = []

    def fsync_while_the_app_saves(fd: int) -> None:
        if not saved:
            saved.append(True)
            fresh = buffers.with_name("app-save.tmp")
            fresh.write_bytes(buffers.read_bytes())
            os.rename(fresh, buffers)
        real_fsync(fd)

    original = buffers.read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync_while_the_app_saves)
        with pytest.raises(TransientError):
            writer(buffers).create(buffer(), buffer().identity)
    assert buffers.read_bytes() == original and leftovers(buffers.parent) == []


def test_the_write_is_atomic(buffers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = buffers.read_bytes()
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(source: str, target: Any) -> None:
        replaced.append((str(source), str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    wanted = buffer()
    writer(buffers).create(wanted, wanted.identity)
    [(source, target)] = replaced
    assert target == str(buffers) and Path(source).parent == buffers.parent
    assert OUR_TEMP.fullmatch(Path(source).name)
    assert not Path(source).exists()

    def fail(source: str, target: Any) -> None:
        raise OSError(28, "No space left on device")

    data = buffers.read_bytes()
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(CalendarError, match="No space left"):
        writer(buffers).create(buffer(17, "s2"), buffer(17, "s2").identity)
    assert buffers.read_bytes() == data != original
    assert sorted(p.name for p in buffers.parent.iterdir()) == ["buffers.ics"]


# -- every byte that is not caldaemon's ----------------------------------------------------


def test_a_byte_order_mark_is_kept_and_buffers_are_still_moved_and_removed(
    buffers: Path,
) -> None:
    original = BOM + buffers.read_bytes()
    buffers.write_bytes(original)
    ics = writer(buffers)
    wanted = buffer()
    remote = ics.create(wanted, wanted.identity)
    data = buffers.read_bytes()
    assert data.startswith(BOM + b"BEGIN:VCALENDAR") and data.count(BOM) == 1
    assert without_block(data, remote.id) == original
    assert listed(buffers, remote.id).owner == wanted.identity
    moved = buffer(16)
    updated = ics.update(remote, moved, wanted.identity)
    assert listed(buffers, remote.id).start == moved.start
    assert without_block(buffers.read_bytes(), remote.id) == original
    ics.delete(updated)
    assert buffers.read_bytes() == original


def test_a_file_holding_only_a_byte_order_mark_gets_a_calendar_after_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "buffers.ics"
    path.write_bytes(BOM)
    wanted = buffer()
    remote = writer(path).create(wanted, wanted.identity)
    assert path.read_bytes().startswith(BOM + b"BEGIN:VCALENDAR\r\n")
    assert listed(path, remote.id).owner == wanted.identity


# A CRLF file as calendar apps write it: folded lines, an alarm and the app's own
# properties inside a user's event, every kind of foreign component, a second calendar,
# and characters that str.splitlines() takes for line ends (U+2028, NEL) in a value.
FOREIGN = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Some App//EN",
        "X-WR-CALNAME:Lee",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "UID:dentist@me.example",
        "DTSTAMP:20260101T000000Z",
        "DTSTART;TZID=Europe/Berlin:20260114T150000",
        "DTEND;TZID=Europe/Berlin:20260114T160000",
        "SUMMARY:Dentist\\, with a title long enough that the app folded it over two l",
        " ines of the file",
        "DESCRIPTION:Notes\u2028END:VEVENT\u0085BEGIN:VEVENT",
        "X-APP-THING;X-P=1:keep me",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT15M",
        "DESCRIPTION:Reminder",
        "END:VALARM",
        "END:VEVENT",
        "BEGIN:VTODO",
        "UID:todo@me.example",
        "DTSTAMP:20260101T000000Z",
        "SUMMARY:Write notes",
        "END:VTODO",
        "BEGIN:VJOURNAL",
        "UID:journal@me.example",
        "DTSTAMP:20260101T000000Z",
        "DESCRIPTION:A day",
        "END:VJOURNAL",
        "BEGIN:VFREEBUSY",
        "UID:fb@me.example",
        "DTSTAMP:20260101T000000Z",
        "FREEBUSY:20260115T090000Z/20260115T100000Z",
        "END:VFREEBUSY",
        "BEGIN:X-APP-COMPONENT",
        "X-DATA:1",
        "END:X-APP-COMPONENT",
        "END:VCALENDAR",
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Another App//EN",
        "BEGIN:VEVENT",
        "UID:second@me.example",
        "DTSTAMP:20260101T000000Z",
        "DTSTART:20260116T150000Z",
        "DTEND:20260116T160000Z",
        "SUMMARY:In the second calendar",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
).encode()


@pytest.mark.parametrize("bom", [b"", BOM], ids=["plain", "bom"])
def test_crlf_folded_lines_and_foreign_components_keep_their_bytes(
    tmp_path: Path, bom: bytes
) -> None:
    path = tmp_path / "buffers.ics"
    original = bom + FOREIGN
    path.write_bytes(original)
    ics = writer(path)
    first, second = buffer(15, "s1"), buffer(17, "s2")
    one, two = ics.create(first, first.identity), ics.create(second, second.identity)
    data = path.read_bytes()
    assert without_block(without_block(data, one.id), two.id) == original
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF file stays CRLF
    one = ics.update(one, buffer(16, "s1"), first.identity)
    assert listed(path, one.id).start == buffer(16).start
    assert without_block(without_block(path.read_bytes(), one.id), two.id) == original
    ics.delete(one)
    ics.delete(two)
    assert path.read_bytes() == original


def test_a_file_without_a_final_line_end_keeps_it_that_way(buffers: Path) -> None:
    original = buffers.read_bytes().rstrip(b"\n")
    buffers.write_bytes(original)
    ics = writer(buffers)
    remote = ics.create(buffer(), buffer().identity)
    assert buffers.read_bytes().endswith(b"\nEND:VCALENDAR")
    ics.delete(remote)
    assert buffers.read_bytes() == original


# -- symlinks and temporary files ---------------------------------------------------------


def test_a_symlinked_calendar_is_written_through_to_its_target(
    tmp_path: Path, buffers: Path
) -> None:
    original = buffers.read_bytes()
    target = tmp_path / "synced" / "calendar.ics"
    target.parent.mkdir()
    buffers.rename(target)
    link = tmp_path / "links" / "buffers.ics"
    link.parent.mkdir()
    relative = os.path.relpath(target, link.parent)
    link.symlink_to(relative)
    ics = writer(link)
    wanted = buffer()
    remote = ics.create(wanted, wanted.identity)
    assert link.is_symlink() and os.readlink(link) == relative
    assert without_block(target.read_bytes(), remote.id) == original
    assert target.stat().st_mode & 0o777 == 0o640
    assert listed(link, remote.id).owner == wanted.identity
    ics.delete(remote)
    assert link.is_symlink() and target.read_bytes() == original
    assert os.listdir(link.parent) == ["buffers.ics"]
    assert os.listdir(target.parent) == ["calendar.ics"]


def test_a_link_to_a_file_not_yet_there_gets_its_target_created(tmp_path: Path) -> None:
    target = tmp_path / "synced" / "calendar.ics"
    target.parent.mkdir()
    link = tmp_path / "buffers.ics"
    link.symlink_to(target)
    remote = writer(link).create(buffer(), buffer().identity)
    assert link.is_symlink() and remote.id.encode() in target.read_bytes()


def test_our_stale_temp_files_are_removed_at_the_first_write_and_nothing_else(
    tmp_path: Path, buffers: Path
) -> None:
    folder = buffers.parent
    ours = [".buffers.ics.caldaemon-ab3d_x9z.tmp", ".buffers.ics.caldaemon-00000000.tmp"]
    others = [
        ".buffers.ics.caldaemon-short.tmp",  # not a name mkstemp makes
        ".buffers.ics.caldaemon-ab3d_x9z.tmp.keep",
        ".buffers.ics.caldaemon-AB3D_X9Z.tmp",
        ".other.ics.caldaemon-ab3d_x9z.tmp",  # another calendar's
        "buffers.ics.caldaemon-ab3d_x9z.tmp",
        ".buffers.ics.swp",  # the user's editor
        ".buffers.ics.ab3d_x9z",  # what older caldaemons named theirs: may be anyone's
    ]
    for name in ours + others:
        (folder / name).write_bytes(b"half a calendar")
    (folder / ".buffers.ics.caldaemon-folder12.tmp").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.ics").write_bytes(b"keep")
    (folder / ".buffers.ics.caldaemon-symlink1.tmp").symlink_to(elsewhere / "keep.ics")
    writer(buffers).create(buffer(), buffer().identity)
    assert leftovers(folder) == sorted(
        [*others, ".buffers.ics.caldaemon-folder12.tmp", ".buffers.ics.caldaemon-symlink1.tmp"]
        + ["elsewhere"]
    )
    assert (elsewhere / "keep.ics").read_bytes() == b"keep"


# Run in a process of its own, which dies while the disk syncs: a crash.
CRASH = """
import os, sys
from pathlib import Path
from tests.providers.ics_support import buffer, writer
os.fsync = lambda fd: os._exit(9)
writer(Path(sys.argv[1])).create(buffer(), buffer().identity)
"""


def test_a_crash_mid_write_leaves_the_file_whole_and_its_temp_is_removed_next_time(
    buffers: Path,
) -> None:
    original = buffers.read_bytes()
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH, str(buffers)], cwd=ROOT, capture_output=True, check=False
    )
    assert crashed.returncode == 9, crashed.stderr.decode()
    assert buffers.read_bytes() == original
    [temp] = leftovers(buffers.parent)
    assert OUR_TEMP.fullmatch(temp)
    remote = writer(buffers).create(buffer(), buffer().identity)
    assert leftovers(buffers.parent) == []
    assert without_block(buffers.read_bytes(), remote.id) == original
