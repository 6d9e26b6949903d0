"""A buffers file that grows with history (issue 15): a read parses only the VEVENTs that
may lie in its window and returns what a parse of the whole file returns; a rewrite keeps
every past block's bytes; what caldaemon wrote itself is not scanned again, and a file
changed behind its back is."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest

from caldaemon.model import Buffer, Create, Delete, Event, Remote, Window
from caldaemon.providers.ics.document import Document
from caldaemon.providers.ics.mapping import buffer_component
from caldaemon.providers.ics.parse import parse_file
from caldaemon.providers.ics.reader import Reader
from tests.providers.ics_support import TORONTO, at, without_block, writer

NOW = at(TORONTO, 2027, 1, 4, 7)
WINDOW = Window(at(TORONTO, 2027, 1, 1), at(TORONTO, 2027, 2, 15))
CRLF = "\r\n"

TIMEZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:America/Toronto",
    "BEGIN:STANDARD",
    "DTSTART:19701101T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "END:STANDARD",
    "BEGIN:DAYLIGHT",
    "DTSTART:19700308T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "END:DAYLIGHT",
    "END:VTIMEZONE",
]


def users_event(uid: str, *lines: str) -> str:
    body = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *lines, "END:VEVENT"]
    return CRLF.join(body) + CRLF


# The user's own events among caldaemon's blocks: a weekly series that began a year ago
# (its RRULE reaches into the window), an instance of it moved into the window by a block
# that stands among the past ones, an event whose DTEND is folded mid-value (RFC 5545
# §3.1), one in the window whose DTSTART is folded, an all-day one in the past, and an
# event in the window written in the zone's local time.
USERS = [
    users_event(
        "supervision@me.example",
        "DTSTART;TZID=America/Toronto:20260105T160000",
        "DTEND;TZID=America/Toronto:20260105T170000",
        "RRULE:FREQ=WEEKLY;BYDAY=MO",
        "SUMMARY:Supervision",
    ),
    users_event(
        "supervision@me.example",
        "RECURRENCE-ID;TZID=America/Toronto:20270111T160000",
        "DTSTART;TZID=America/Toronto:20270112T090000",
        "DTEND;TZID=America/Toronto:20270112T100000",
        "SUMMARY:Supervision (moved)",
    ),
    users_event(
        "folded-past@me.example",
        "DTSTART:20260310T140000Z",
        "DTEND:202603\r\n 10T150000Z",
        "SUMMARY:Dentist",
    ),
    users_event(
        "folded-now@me.example",
        "DTSTART:2027\r\n 0120T140000Z",
        "DTEND:20270120T150000Z",
        "SUMMARY:Physio, with a description folded so that a line reads",
        "DESCRIPTION:first part and\r\n BEGIN:VEVENT as text",
    ),
    users_event(
        "holiday@me.example",
        "DTSTART;VALUE=DATE:20260701",
        "DTEND;VALUE=DATE:20260702",
        "SUMMARY:Canada Day",
    ),
    users_event(
        "lunch@me.example",
        "DTSTART;TZID=America/Toronto:20270105T120000",
        "DTEND;TZID=America/Toronto:20270105T130000",
        "SUMMARY:Lunch",
    ),
]


def block(day: date, hour: int) -> str:
    """caldaemon's buffer after a session that ended at ``hour`` on ``day``, as it writes
    them."""
    start = datetime(day.year, day.month, day.day, hour, tzinfo=TORONTO)
    buffer = Buffer(
        clinician="lee",
        calendar="buffers",
        start=start,
        end=start + timedelta(minutes=15),
        title="Grounding time",
        after=f"practice/s-{day.isoformat()}-{hour}@practice.example",
        rule="buffers[0]",
    )
    text = buffer_component(buffer, buffer.identity, start).to_ical().decode()
    return "".join(line + CRLF for line in text.splitlines())


def notes(start: datetime, session: str) -> Buffer:
    """A buffer to write in the window."""
    return Buffer(
        clinician="lee",
        calendar="buffers",
        start=start,
        end=start + timedelta(minutes=10),
        title="Notes",
        after=f"practice/{session}@practice.example",
        rule="buffers[1]",
    )


def a_year_of_blocks() -> bytes:
    """Two buffers a day from January 2026 to the end of the window, the user's events
    among them, and a VTIMEZONE before them all."""
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//caldaemon tests//EN", *TIMEZONE]
    text = CRLF.join(parts) + CRLF
    day = date(2026, 1, 5)
    users = iter(USERS)
    while day < date(2027, 2, 20):
        text += block(day, 10) + block(day, 15)
        if day.day == 1 or day == date(2027, 1, 4):
            text += next(users, "")
        day += timedelta(days=1)
    return (text + "END:VCALENDAR" + CRLF).encode()


@pytest.fixture
def year(tmp_path: Path) -> Path:
    path = tmp_path / "buffers.ics"
    path.write_bytes(a_year_of_blocks())
    return path


def whole(data: bytes, window: Window = WINDOW) -> list[Event]:
    """The events of ``window`` as a parse of the whole file gives them."""
    reader = Reader("buffers", "buffers.ics", TORONTO, frozenset({"lee@example.org"}))
    return sorted(reader.events(parse_file(data, "buffers", "x").calendars, window), key=key)


def key(event: Event) -> tuple[datetime, str]:
    return event.start, event.id


def read(path: Path, window: Window = WINDOW, provider: Any = None) -> list[Event]:
    listing = (provider or writer(path)).changes(window, None)
    assert not listing.warnings
    return sorted(listing.events, key=key)


@pytest.fixture
def parsed_sizes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of every text icalendar parses as a calendar (a spy on the library)."""
    sizes: list[int] = []
    real = icalendar.Calendar.from_ical

    def spy(data: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(icalendar.Calendar, "from_ical", spy)
    yield sizes


# -- reading only the window ----------------------------------------------------------


def test_a_window_read_of_a_year_of_blocks_returns_what_a_whole_parse_returns(
    year: Path, parsed_sizes: list[int]
) -> None:
    data = year.read_bytes()
    expected = whole(data)
    parsed_sizes.clear()
    assert read(year) == expected
    # Of some 800 blocks, icalendar parsed the window's and the series', not the year's.
    assert parsed_sizes and max(parsed_sizes) < len(data) / 4
    ids = {e.id for e in expected}
    assert {"lunch@me.example", "folded-now@me.example"} <= ids
    # The series that began a year ago reaches into the window from its first block,
    # and its instance moved into the window is read from the block that moved it.
    series = sorted(e.start for e in expected if e.series == "supervision@me.example")
    assert at(TORONTO, 2027, 1, 12, 9) in series
    assert at(TORONTO, 2027, 1, 11, 16) not in series and at(TORONTO, 2027, 1, 4, 16) in series
    owned = [e for e in expected if e.owner is not None]
    assert len(owned) == 2 * (WINDOW.end - WINDOW.start).days


def test_every_window_of_the_year_reads_as_the_whole_file_does(year: Path) -> None:
    """Windows that begin on a past block's edge, that hold the folded events, or the
    all-day one, whose local date is not its UTC date."""
    data = year.read_bytes()
    ics = writer(year)
    for start, days in [
        (at(TORONTO, 2026, 3, 10, 10), 1),
        (at(TORONTO, 2026, 3, 10, 11), 1),
        (at(TORONTO, 2026, 6, 30, 20), 2),
        (at(TORONTO, 2026, 7, 1, 23, 59), 1),
        (at(TORONTO, 2026, 1, 1), 40),
        (at(TORONTO, 2027, 1, 20, 9), 1),
    ]:
        window = Window(start, start + timedelta(days=days))
        assert read(year, window, ics) == whole(data, window), window


def test_a_cut_keeps_the_timezones_the_series_and_the_window_and_numbers_what_it_left_out(
    year: Path,
) -> None:
    data = year.read_bytes()
    document = Document(data)
    selection = document.within(WINDOW)
    kept = selection.data.decode()
    assert kept.count("BEGIN:VTIMEZONE") == 1 and "RRULE:FREQ=WEEKLY" in kept
    assert "RECURRENCE-ID" in kept and "2026031" not in kept
    total = data.count(b"BEGIN:VEVENT")
    assert len(selection.left_out) + kept.count("BEGIN:VEVENT") == total
    assert max(selection.left_out) <= total and len(selection.left_out) > total * 3 // 4
    # The block that text makes look like one is no block: the event it is folded into
    # is kept whole.
    assert "\r\n BEGIN:VEVENT as text" in kept


def test_a_broken_event_is_named_by_its_number_in_the_whole_file(year: Path) -> None:
    """What cannot be read is said in the terms of the whole file, though the read
    parsed only the window: the number of the event counts the blocks left out."""
    data = year.read_bytes()
    broken = users_event("broken@me.example", "DTSTART:20270110T140000Z", "DTEND:soon")
    at_end = data.rindex(b"END:VCALENDAR")
    year.write_bytes(data[:at_end] + broken.encode() + data[at_end:])
    number = data.count(b"\nBEGIN:VEVENT") + 1  # not the one folded into a DESCRIPTION
    listing = writer(year).changes(WINDOW, None)
    assert any(f"event {number}" in w for w in listing.warnings), listing.warnings
    assert "lunch@me.example" in {e.id for e in listing.events}


# -- writing -------------------------------------------------------------------------


def test_a_rewrite_keeps_every_past_block_byte_for_byte(year: Path) -> None:
    before = year.read_bytes()
    ics = writer(year)
    read(year, provider=ics)
    wanted = notes(at(TORONTO, 2027, 1, 6, 12), "new")
    [result] = ics.apply([Create(wanted, wanted.identity)])
    assert result.remote is not None
    assert without_block(year.read_bytes(), result.remote.id) == before


def test_rounds_written_from_the_kept_document_give_the_bytes_a_fresh_read_gives(
    year: Path, tmp_path: Path
) -> None:
    """One provider kept across rounds (it cuts the document it wrote) and a provider
    made anew each round (it scans the file) write the same bytes, round after round."""
    fresh_path = tmp_path / "fresh.ics"
    shutil.copy(year, fresh_path)
    kept = writer(year)
    for day in range(3):
        wanted = notes(at(TORONTO, 2027, 1, 6 + day, 12), f"n{day}")
        writes: list[Any] = [Create(wanted, wanted.identity)]
        listed = {e.id: e for e in kept.changes(WINDOW, None).events}
        assert {e.id: e for e in writer(fresh_path).changes(WINDOW, None).events} == listed
        if day:
            gone = next(e for e in listed.values() if e.owner and e.start.day == 5 + day)
            assert gone.owner is not None
            writes.append(Delete(gone.owner, Remote(gone.id, gone.etag)))
        kept_results = kept.apply(writes)
        fresh_results = writer(fresh_path).apply(writes)
        assert [r.error for r in kept_results] == [None] * len(writes)
        assert [r.remote for r in kept_results] == [r.remote for r in fresh_results]
        assert year.read_bytes() == fresh_path.read_bytes()


def test_after_our_own_write_the_file_is_not_parsed_whole_again(
    year: Path, parsed_sizes: list[int]
) -> None:
    ics = writer(year)
    read(year, provider=ics)
    wanted = notes(at(TORONTO, 2027, 1, 6, 12), "n")
    ics.apply([Create(wanted, wanted.identity)])
    parsed_sizes.clear()
    events = read(year, provider=ics)
    assert wanted.identity in {e.owner for e in events}
    assert parsed_sizes and max(parsed_sizes) < year.stat().st_size / 4
    assert events == whole(year.read_bytes())


# -- a file changed behind caldaemon's back -----------------------------------------


def test_a_file_the_users_app_changed_after_our_write_is_read_again(year: Path) -> None:
    """Even a change that keeps the size and the modification time (an app that writes
    in place and sets the time back): the change time tells it."""
    ics = writer(year)
    read(year, provider=ics)
    wanted = notes(at(TORONTO, 2027, 1, 6, 12), "n")
    ics.apply([Create(wanted, wanted.identity)])
    ours = year.stat()
    data = year.read_bytes()
    # The user renames lunch to a same-length title, in place, and the time is set back.
    changed = data.replace(b"SUMMARY:Lunch", b"SUMMARY:Lurch")
    with open(year, "r+b") as handle:
        handle.write(changed)
    os.utime(year, ns=(ours.st_atime_ns, ours.st_mtime_ns))
    assert (year.stat().st_size, year.stat().st_mtime_ns) == (ours.st_size, ours.st_mtime_ns)
    titles = {e.id: e.title for e in read(year, provider=ics)}
    assert titles["lunch@me.example"] == "Lurch"
    # The next write starts from what the user saved, and keeps it.
    later = notes(at(TORONTO, 2027, 1, 7, 12), "m")
    [result] = ics.apply([Create(later, later.identity)])
    assert result.remote is not None
    assert without_block(year.read_bytes(), result.remote.id) == changed


def test_a_file_replaced_by_the_users_app_is_read_again(year: Path, tmp_path: Path) -> None:
    ics = writer(year)
    first = read(year, provider=ics)
    assert "lunch@me.example" in {e.id for e in first}
    saved = tmp_path / "saved.ics"
    saved.write_bytes(without_block(year.read_bytes(), "lunch@me.example"))
    os.replace(saved, year)  # a save by rename, as most apps do
    second = read(year, provider=ics)
    assert "lunch@me.example" not in {e.id for e in second}
    assert len(second) == len(first) - 1


def test_a_buffer_ending_in_utc_at_the_windows_edge_is_read_as_a_whole_parse_reads_it(
    tmp_path: Path,
) -> None:
    """A file of blocks whose UTC dates differ from their local dates, read with windows
    that begin and end on every hour of a day."""
    path = tmp_path / "buffers.ics"
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//caldaemon tests//EN"]
    text = CRLF.join(parts) + CRLF
    for day in range(300):
        text += block(date(2026, 3, 1) + timedelta(days=day), 22)
    path.write_bytes((text + "END:VCALENDAR" + CRLF).encode())
    data = path.read_bytes()
    ics = writer(path)
    for hour in range(24):
        start = datetime(2026, 7, 1, hour, tzinfo=UTC)
        window = Window(start, start + timedelta(hours=1))
        assert read(path, window, ics) == whole(data, window)
