"""The ``ics`` provider against small calendars named after their case (tests/fixtures/ics),
a feed served by a local HTTP server, and a buffers file that caldaemon writes to."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from caldaemon.errors import CalendarError, TransientError
from caldaemon.model import Delete, Event, Remote, Window
from caldaemon.providers.ics import provider as ics_module
from caldaemon.providers.ics.zones import display_name_keys, resolve
from tests.providers.ics_support import (
    BERLIN,
    FIXTURES,
    TORONTO,
    WINDOW,
    FeedHandler,
    FeedServer,
    at,
    provider,
)


def events(name: str, tz: ZoneInfo = TORONTO) -> dict[str, Event]:
    listing = provider(FIXTURES / name, tz=tz).changes(WINDOW, None)
    assert listing.full and not listing.warnings
    return {e.id: e for e in listing.events}


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
    # The event's number in the file, and what is wrong, never its text or its UID.
    assert listing.warnings == (f"{path}: skipped event 2: an unreadable DTSTART",)


def test_a_file_that_is_not_a_calendar_is_refused_in_one_line() -> None:
    path = FIXTURES / "not_a_calendar.ics"
    with pytest.raises(CalendarError) as caught:
        provider(path).changes(WINDOW, None)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    assert not isinstance(caught.value, TransientError)


@pytest.mark.parametrize("before", ["", "bom", "bom and a whole calendar"])
def test_a_file_cut_short_is_refused(tmp_path: Path, before: str) -> None:
    """Also after a UTF-8 byte-order mark, which icalendar skips: a second calendar cut
    short must not read as a file with one calendar."""
    path = tmp_path / "cut.ics"
    whole = (FIXTURES / "broken_event_among_good_ones.ics").read_bytes()
    prefix = (b"\xef\xbb\xbf" if before else b"") + (whole if "whole" in before else b"")
    path.write_bytes(prefix + whole[: whole.index(b"END:VEVENT")])
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
    assert listing.events == ()
    assert listing.warnings[0].startswith(f"{path}: skipped event 1: its RRULE repeats too often")


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
        patch.setattr(ics_module, "parse_file", no_parse)
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


ETAGGED = (FIXTURES / "recurring_session_one_moved_one_cancelled.ics").read_bytes()


def etagged(handler: FeedHandler) -> None:
    """The fixture with an ETag, and 304 when the request names it."""
    if handler.headers.get("If-None-Match") == '"v1"':
        handler.reply(304, b"", {})
    else:
        handler.reply(200, ETAGGED, {"Content-Type": "text/calendar", "ETag": '"v1"'})


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    routes = {
        "/lee.ics": etagged,
        "/missing.ics": lambda h: h.reply(404, b""),
        "/busy.ics": lambda h: h.reply(503, b""),
    }
    with FeedServer(routes) as server:
        yield server


def test_a_feed_is_fetched_conditionally(feed: FeedServer) -> None:
    ics = provider(url=f"{feed.url}/lee.ics?key=secret")
    assert ics.read_only and "secret" not in ics.describe()
    first = ics.changes(WINDOW, None)
    assert first.full and len(first.events) == 4
    assert "If-None-Match" not in feed.seen[0][1]
    second = ics.changes(WINDOW, first.token)
    assert feed.seen[1][1].get("If-None-Match") == '"v1"'
    assert not second.full and second.events == () and second.removed == ()
    with pytest.raises(CalendarError, match="cannot be written"):
        ics.apply([Delete("x", Remote("x", "y"))])


def test_feed_errors(feed: FeedServer) -> None:
    with pytest.raises(CalendarError, match="404") as missing:
        provider(url=f"{feed.url}/missing.ics").changes(WINDOW, None)
    assert not isinstance(missing.value, TransientError)
    with pytest.raises(TransientError, match="503"):
        provider(url=f"{feed.url}/busy.ics").changes(WINDOW, None)


def test_a_refusal_names_the_line_not_its_text(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        b"SUMMARY Session with Jane Doe about the accident\r\nEND:VCALENDAR\r\n"
    )
    with pytest.raises(CalendarError) as caught:
        provider(path).changes(WINDOW, None)
    assert "line 3" in str(caught.value) and "Jane" not in str(caught.value)


# -- time zones named the way Windows shows them ---------------------------------------

SYDNEY = ZoneInfo("Australia/Sydney")


def test_windows_display_name_zones_are_their_iana_zones() -> None:
    """Exchange 2010 / OWA write the zone's display name into TZID, without a VTIMEZONE;
    read as the clinician's zone, the Sydney session would be 15 hours off."""
    found = events("windows_display_names.ics")
    expected = {
        "owa-eastern@practice.example": at(ZoneInfo("America/New_York"), 2026, 1, 12, 9),
        "owa-sydney@practice.example": at(SYDNEY, 2026, 1, 13, 9),
        "owa-london@practice.example": at(ZoneInfo("Europe/London"), 2026, 1, 14, 9),
        "owa-berlin@practice.example": at(BERLIN, 2026, 1, 15, 9),
    }
    for uid, start in expected.items():
        assert found[uid].start == start and found[uid].end - start == timedelta(minutes=50)
    # A series and its EXDATE in a display-name zone: 9:00 in Sydney, 9 March excluded.
    weekly = sorted(e.start for e in found.values() if e.series)
    assert weekly == [at(SYDNEY, 2026, 3, day, 9) for day in (2, 16, 23, 30)]


def test_an_unknown_zone_is_named_by_its_property_never_quoted(tmp_path: Path) -> None:
    path = tmp_path / "zones.ics"
    path.write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        b"BEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Europe/Berlin:20260112T090000\r\n"
        b"DTEND;TZID=Jane Doe's zone:20260112T100000\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:b\r\nDTSTART;TZID=Jane Doe's zone:20260113T090000\r\n"
        b"DTEND;TZID=Europe/Berlin:20260113T160000\r\nEND:VEVENT\r\n"
        b'BEGIN:VEVENT\r\nUID:c\r\nDTSTART;TZID="(UTC+05:30) Jane Doe":20260114T090000\r\n'
        b"DURATION:PT1H\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    listing = provider(path).changes(WINDOW, None)
    starts = {e.id: e for e in listing.events}
    # DTEND in an unknown zone is read in its DTSTART's zone, DTSTART as floating time.
    assert starts["a"].end == at(BERLIN, 2026, 1, 12, 10)
    assert starts["b"].start == at(TORONTO, 2026, 1, 13, 9)
    # An unknown name with a "(UTC+hh:mm)" prefix is read at that offset.
    assert starts["c"].start == datetime(2026, 1, 14, 3, 30, tzinfo=UTC)
    assert sorted(listing.warnings) == [
        f"{path}: the time zone of DTEND in event 1 is unknown; read in the zone of "
        "the event's DTSTART",
        f"{path}: the time zone of DTSTART in event 2 is unknown; read as America/Toronto time",
        f"{path}: the time zone of DTSTART in event 3 is unknown; read at the UTC offset "
        "its name states (daylight saving time may be off by an hour)",
    ]
    assert not any("Jane" in w for w in listing.warnings)


def test_every_display_name_leads_to_an_iana_zone() -> None:
    for name, key in display_name_keys().items():
        zone, guessed = resolve(f"(UTC+01:00) {name}")
        assert zone is not None and not guessed, (name, key)


# -- input oddities --------------------------------------------------------------------


def test_an_empty_file_is_read_as_empty_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "practice.ics"
    path.write_bytes(b"")
    listing = provider(path).changes(WINDOW, None)
    assert listing.events == () and listing.warnings == (
        f"{path}: the file is empty; read as a calendar without events",
    )
    # The buffers file caldaemon writes to is empty or absent until its first buffer.
    assert provider(path, buffers_to="cal").changes(WINDOW, None).warnings == ()


def test_an_event_that_ends_before_it_starts_is_skipped_not_turned_around(
    tmp_path: Path,
) -> None:
    path = tmp_path / "practice.ics"
    path.write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        b"BEGIN:VEVENT\r\nUID:good\r\nDTSTART:20260112T140000Z\r\nDTEND:20260112T145000Z\r\n"
        b"END:VEVENT\r\nBEGIN:VEVENT\r\nUID:backwards\r\nDTSTART:20260112T160000Z\r\n"
        b"DTEND:20260112T150000Z\r\nSUMMARY:Jane Doe\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    listing = provider(path).changes(WINDOW, None)
    assert [e.id for e in listing.events] == ["good"]
    assert listing.warnings == (f"{path}: skipped event 2: its DTEND lies before its DTSTART",)


def test_one_unreadable_component_is_skipped_not_the_whole_file(tmp_path: Path) -> None:
    """A Google-style export with a VFREEBUSY whose period ends before it starts."""
    path = tmp_path / "export.ics"
    path.write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar//EN\r\n"
        b"BEGIN:VFREEBUSY\r\nFREEBUSY:20260112T100000Z/20260112T090000Z\r\nEND:VFREEBUSY\r\n"
        b"BEGIN:VEVENT\r\nUID:s\r\nDTSTART:20260112T140000Z\r\nDTEND:20260112T145000Z\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    listing = provider(path).changes(WINDOW, None)
    assert [e.id for e in listing.events] == ["s"]
    assert listing.warnings == (
        f"{path}: skipped a VFREEBUSY (line 4): it cannot be read "
        "(a period that ends before it starts)",
    )


def test_a_feed_goes_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As urllib did: http_proxy (and https_proxy, through CONNECT) unless no_proxy."""
    with FeedServer({"http://feed.invalid/lee.ics": etagged}) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        listing = provider(url="http://feed.invalid/lee.ics").changes(WINDOW, None)
    assert len(listing.events) == 4 and proxy.seen[0][0] == "http://feed.invalid/lee.ics"


def test_outlook_out_of_office_in_an_export_is_read_as_away(tmp_path: Path) -> None:
    path = tmp_path / "outlook.ics"
    path.write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        b"BEGIN:VEVENT\r\nUID:away\r\nDTSTART;VALUE=DATE:20260114\r\n"
        b"DTEND;VALUE=DATE:20260115\r\nSUMMARY:Leave\r\n"
        b"X-MICROSOFT-CDO-BUSYSTATUS:OOF\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:busy\r\nDTSTART:20260112T140000Z\r\nDTEND:20260112T145000Z\r\n"
        b"X-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    found = {e.id: e for e in provider(path).changes(WINDOW, None).events}
    assert found["away"].out_of_office and found["away"].all_day
    assert not found["busy"].out_of_office
