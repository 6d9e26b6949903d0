"""The ``ics`` provider against small calendars named after their case (tests/fixtures/ics),
a feed served by a local HTTP server, and a buffers file that caldaemon writes to."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import icalendar
import pytest

from caldaemon.errors import CalendarError, RemoteGone, TransientError, WriteConflict
from caldaemon.model import Buffer, Create, Delete, Event, Remote, Update, Window
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.ics import provider as ics_module
from caldaemon.providers.ics.mapping import buffer_etag, buffer_uid
from caldaemon.providers.ics.provider import IcsProvider
from caldaemon.providers.ics.settings import IcsCalendar

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ics"
TORONTO = ZoneInfo("America/Toronto")
BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Window(datetime(2026, 1, 1, tzinfo=TORONTO), datetime(2026, 4, 1, tzinfo=TORONTO))
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()


def provider(
    path: Path | None = None,
    *,
    url: str | None = None,
    buffers_to: str | None = None,
    tz: ZoneInfo = TORONTO,
    calendar: str = "cal",
) -> IcsProvider:
    config = IcsCalendar(
        provider="ics", id=calendar, path=path, url=url, timeout=timedelta(seconds=5)
    )
    context = ProviderContext(
        clinician="lee",
        tz=tz,
        state_dir=Path("/nonexistent"),
        self_addresses=frozenset({"lee@example.org"}),
        buffers_to=buffers_to,
        clock=lambda: NOW,
    )
    return IcsProvider(config, context)


def events(name: str, tz: ZoneInfo = TORONTO) -> dict[str, Event]:
    listing = provider(FIXTURES / name, tz=tz).changes(WINDOW, None)
    assert listing.full and not listing.warnings
    return {e.id: e for e in listing.events}


def at(tz: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=tz)  # type: ignore[misc]


# -- reading ---------------------------------------------------------------------------


def test_rrule_rdate_exdate() -> None:
    found = events("recurring_rrule_rdate_exdate.ics")
    starts = sorted(e.start for e in found.values())
    assert starts == [
        at(BERLIN, 2026, 1, 5, 10),
        at(BERLIN, 2026, 1, 12, 10),
        at(BERLIN, 2026, 1, 14, 15),  # RDATE
        at(UTC, 2026, 1, 23, 8),  # RDATE;VALUE=PERIOD
        at(BERLIN, 2026, 1, 26, 10),
        at(BERLIN, 2026, 2, 2, 10),
        at(BERLIN, 2026, 2, 9, 10),
    ]  # 19 Jan: EXDATE
    period = next(e for e in found.values() if e.start == at(UTC, 2026, 1, 23, 8))
    assert period.end == at(UTC, 2026, 1, 23, 10, 30)  # the PERIOD's own end
    assert {e.series for e in found.values()} == {"weekly-1@practice.example"}
    assert len(found) == 7  # every occurrence its own id


def test_recurring_session_one_moved_one_cancelled() -> None:
    found = events("recurring_session_one_moved_one_cancelled.ics")
    uid = "tuesday@practice.example"
    assert len(found) == 4 and {e.series for e in found.values()} == {uid}
    # The moved instance keeps the id of its slot (its RECURRENCE-ID, 13 Jan 14:00
    # Toronto) and has its new time, so its buffer moves with it.
    moved = found[f"{uid}@20260113T190000Z"]
    assert moved.start == at(TORONTO, 2026, 1, 15, 16) and not moved.cancelled
    assert found[f"{uid}@20260120T190000Z"].cancelled
    others = [e for e in found.values() if e is not moved and not e.cancelled]
    assert sorted(e.start for e in others) == [
        at(TORONTO, 2026, 1, 6, 14),
        at(TORONTO, 2026, 1, 27, 14),
    ]
    # Stable: reading again gives the same ids.
    assert set(events("recurring_session_one_moved_one_cancelled.ics")) == set(found)


@pytest.mark.parametrize(
    ("name", "uid", "expected"),
    [
        (
            "vtimezone_defined_zone.ics",
            "custom-zone@practice.example",
            datetime(2026, 1, 12, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
        (
            "iana_tzid.ics",
            "iana@practice.example",
            at(ZoneInfo("America/New_York"), 2026, 1, 12, 9),
        ),
        (
            "windows_timezone_name.ics",
            "windows-berlin@practice.example",
            at(BERLIN, 2026, 1, 12, 9),
        ),
        (
            "windows_timezone_name.ics",
            "windows-eastern@practice.example",
            at(ZoneInfo("America/New_York"), 2026, 1, 12, 11),
        ),
        ("floating_times.ics", "floating@practice.example", at(TORONTO, 2026, 1, 12, 9)),
    ],
)
def test_time_zones(name: str, uid: str, expected: datetime) -> None:
    event = events(name)[uid]
    assert event.start == expected and event.start.utcoffset() == expected.utcoffset()
    assert event.end - event.start == timedelta(minutes=50)


def test_floating_times_follow_the_clinician() -> None:
    assert events("floating_times.ics", BERLIN)["floating@practice.example"].start == at(
        BERLIN, 2026, 1, 12, 9
    )


def test_x_wr_timezone_keeps_local_time_across_dst() -> None:
    found = events("x_wr_timezone.ics")
    assert [e.start.astimezone(BERLIN).hour for e in found.values()] == [9, 9, 9, 9]


def test_all_day_events_start_at_local_midnight() -> None:
    found = events("all_day_day_off.ics")
    day_off, conference = found["day-off@me.example"], found["conference@me.example"]
    assert day_off.all_day and "#off" in day_off.title
    assert (day_off.start, day_off.end) == (at(TORONTO, 2026, 1, 16), at(TORONTO, 2026, 1, 17))
    assert (conference.start, conference.end) == (
        at(TORONTO, 2026, 1, 21),
        at(TORONTO, 2026, 1, 23),
    )
    assert not conference.busy


def test_declined_cancelled_and_free() -> None:
    found = events("declined_and_cancelled_and_free.ics")
    assert found["declined@hospital.example"].declined  # address matched case-insensitively
    assert found["cancelled@practice.example"].cancelled
    assert not found["free@me.example"].busy
    busy = found["busy@me.example"]
    assert busy.busy and not (busy.declined or busy.cancelled)


def test_a_broken_event_is_skipped_with_a_warning_and_the_others_load() -> None:
    path = FIXTURES / "broken_event_among_good_ones.ics"
    listing = provider(path).changes(WINDOW, None)
    assert sorted(e.id for e in listing.events) == [
        "good-1@practice.example",
        "good-2@practice.example",
    ]
    assert len(listing.warnings) == 1
    assert listing.warnings[0].startswith(f"{path}: skipped event broken-1@practice.example: ")


def test_a_file_that_is_not_a_calendar_is_refused_in_one_line() -> None:
    path = FIXTURES / "not_a_calendar.ics"
    with pytest.raises(CalendarError) as caught:
        provider(path).changes(WINDOW, None)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    assert not isinstance(caught.value, TransientError)


def test_a_file_cut_short_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.ics"
    data = (FIXTURES / "broken_event_among_good_ones.ics").read_bytes()
    path.write_bytes(data[: data.index(b"END:VEVENT")])
    with pytest.raises(CalendarError, match="incomplete"):
        provider(path).changes(WINDOW, None)


def test_a_rule_that_repeats_every_second_is_skipped_not_expanded(tmp_path: Path) -> None:
    path = tmp_path / "secondly.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\n"
        "UID:every-second\r\nDTSTART:19700101T000000Z\r\n"
        "RRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    listing = provider(path).changes(WINDOW, None)
    assert listing.events == () and "skipped event every-second: " in listing.warnings[0]


def test_a_missing_file_is_an_error_unless_it_receives_the_buffers(tmp_path: Path) -> None:
    path = tmp_path / "absent.ics"
    with pytest.raises(CalendarError, match="not found"):
        provider(path).changes(WINDOW, None)
    listing = provider(path, buffers_to="cal").changes(WINDOW, None)
    assert listing.full and listing.events == ()


# -- tokens ----------------------------------------------------------------------------


def test_an_unchanged_file_is_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cal.ics"
    shutil.copy(FIXTURES / "floating_times.ics", path)
    ics = provider(path)
    first = ics.changes(WINDOW, None)
    assert first.full and len(first.events) == 1 and first.token

    def no_parse(*args: Any) -> Any:
        raise AssertionError("parsed an unchanged file")

    with monkeypatch.context() as patch:
        patch.setattr(ics_module, "parse", no_parse)
        second = ics.changes(WINDOW, first.token)
    assert not second.full and second.events == () and second.removed == ()
    # A window the first listing did not cover needs the file expanded again.
    later = Window(WINDOW.start, WINDOW.end + timedelta(days=7))
    assert ics.changes(later, second.token).full
    # So does a changed file.
    shutil.copy(FIXTURES / "iana_tzid.ics", path)
    third = ics.changes(WINDOW, second.token)
    assert third.full and [e.id for e in third.events] == ["iana@practice.example"]
    # A token from elsewhere only costs a full listing.
    assert ics.changes(WINDOW, "not a token").full


# -- feeds -----------------------------------------------------------------------------


class _Feed(BaseHTTPRequestHandler):
    body = (FIXTURES / "recurring_session_one_moved_one_cancelled.ics").read_bytes()
    seen: ClassVar[list[dict[str, str]]] = []  # every request's headers, across handlers

    def do_GET(self) -> None:  # http.server's name for it
        self.seen.append(dict(self.headers))
        if self.path == "/missing.ics":
            self.send_error(404)
        elif self.path == "/busy.ics":
            self.send_error(503)
        elif self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    _Feed.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_feed_is_fetched_conditionally(feed: str) -> None:
    ics = provider(url=f"{feed}/lee.ics?key=secret")
    assert ics.read_only and "secret" not in ics.describe()
    first = ics.changes(WINDOW, None)
    assert first.full and len(first.events) == 4
    assert "If-None-Match" not in _Feed.seen[0]
    second = ics.changes(WINDOW, first.token)
    assert _Feed.seen[1].get("If-None-Match") == '"v1"'
    assert not second.full and second.events == () and second.removed == ()
    with pytest.raises(CalendarError, match="cannot be written"):
        ics.apply([Delete("x", Remote("x", "y"))])


def test_feed_errors(feed: str) -> None:
    with pytest.raises(CalendarError, match="404") as missing:
        provider(url=f"{feed}/missing.ics").changes(WINDOW, None)
    assert not isinstance(missing.value, TransientError)
    with pytest.raises(TransientError, match="503"):
        provider(url=f"{feed}/busy.ics").changes(WINDOW, None)


# -- writing the buffers file ----------------------------------------------------------


def buffer(hour: int = 15, session: str = "s1") -> Buffer:
    """A buffer after ``session``; its identity depends on the session, not the time."""
    start = at(TORONTO, 2026, 1, 12, hour)
    return Buffer(
        clinician="lee",
        calendar="buffers",
        start=start,
        end=start + timedelta(minutes=15),
        title="Grounding time",
        after=f"practice/{session}@practice.example",
        rule="buffers[0]",
    )


@pytest.fixture
def buffers(tmp_path: Path) -> Path:
    path = tmp_path / "buffers.ics"
    shutil.copy(FIXTURES / "buffers_lf.ics", path)
    path.chmod(0o640)
    return path


def writer(path: Path) -> IcsProvider:
    return provider(path, buffers_to="buffers", calendar="buffers")


def without_block(data: bytes, uid: str) -> bytes:
    """``data`` with the VEVENT whose UID is ``uid`` cut out."""
    lines = data.splitlines(keepends=True)
    at_uid = lines.index(f"UID:{uid}\n".encode())
    begin = max(i for i in range(at_uid) if lines[i].strip() == b"BEGIN:VEVENT")
    end = next(i for i in range(at_uid, len(lines)) if lines[i].strip() == b"END:VEVENT")
    return b"".join(lines[:begin] + lines[end + 1 :])


def listed(path: Path, uid: str) -> Event:
    found = {e.id: e for e in writer(path).changes(WINDOW, None).events}
    return found[uid]


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
    # The buffer carries nothing from the session, no alarm and no attendee.
    assert b"VALARM" not in data and b"ATTENDEE" not in data


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
    assert not Path(source).exists()

    def fail(source: str, target: Any) -> None:
        raise OSError(28, "No space left on device")

    data = buffers.read_bytes()
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(CalendarError, match="No space left"):
        writer(buffers).create(buffer(17, "s2"), buffer(17, "s2").identity)
    assert buffers.read_bytes() == data != original
    assert sorted(p.name for p in buffers.parent.iterdir()) == ["buffers.ics"]


def test_a_refusal_names_the_line_not_its_text(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        b"SUMMARY Session with Jane Doe about the accident\r\nEND:VCALENDAR\r\n"
    )
    with pytest.raises(CalendarError) as caught:
        provider(path).changes(WINDOW, None)
    assert "line 3" in str(caught.value) and "Jane" not in str(caught.value)
