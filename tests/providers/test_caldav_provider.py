"""What the caldav provider does beyond the contract, on real Radicale and Xandikos
servers: one request for a poll that finds nothing new, full listings after changes,
recurring series, discovery by name, errors (login, server down, 5xx, 404, broken
objects). Sync-tokens are in test_caldav_tokens.py, writes in test_caldav_writes.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caldaemon.errors import AuthorizationError, CalendarError, TransientError
from tests.providers.contract import MONDAY_10, WINDOW, UserEvent, by_id
from tests.providers.radicale_server import PASSWORD, USER, DavServer, free_port
from tests.providers.test_contract_caldav import SERVERS, CaldavBackend, calendar_object

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module", params=sorted(SERVERS))
def dav_server(request: pytest.FixtureRequest) -> Iterator[DavServer]:
    with SERVERS[request.param]() as server:
        yield server


@pytest.fixture
def backend(dav_server: DavServer, tmp_path: Path) -> CaldavBackend:
    return CaldavBackend(dav_server, tmp_path)


def requests_during(server: DavServer, action: Callable[[], object]) -> list[tuple[str, str]]:
    """(method, path) of each request the server received while ``action`` ran."""
    before = len(server.requests)
    action()
    return [(r.method, r.path) for r in server.requests[before:]]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# -- change detection ------------------------------------------------------------------


def test_an_unchanged_poll_is_one_request(backend: CaldavBackend) -> None:
    backend.add(UserEvent("s1", MONDAY_10, MONDAY_10 + HOUR))
    provider = backend.provider()
    listings = []
    sent = requests_during(backend.server, lambda: listings.append(provider.changes(WINDOW, None)))
    assert sent == [("PROPFIND", backend.collection), ("REPORT", backend.collection)]
    [first] = listings
    assert first.full and set(by_id(first)) == {"s1"}
    listings = []
    sent = requests_during(
        backend.server, lambda: listings.append(provider.changes(WINDOW, first.token))
    )
    assert sent == [("REPORT", backend.collection)]
    [second] = listings
    assert not second.full and second.events == () and second.removed == ()
    # A restarted daemon (a new provider with the stored token) costs the same.
    fresh = backend.provider()
    sent = requests_during(backend.server, lambda: fresh.changes(WINDOW, second.token))
    assert sent == [("REPORT", backend.collection)]


def test_a_change_gives_a_full_listing_without_what_was_deleted(backend: CaldavBackend) -> None:
    backend.add(UserEvent("kept", MONDAY_10, MONDAY_10 + HOUR))
    backend.add(UserEvent("moved", MONDAY_10 + 2 * HOUR, MONDAY_10 + 3 * HOUR))
    backend.add(UserEvent("gone", MONDAY_10 + 4 * HOUR, MONDAY_10 + 5 * HOUR))
    provider = backend.provider()
    token = provider.changes(WINDOW, None).token
    backend.remove("gone")
    backend.change("moved", UserEvent("moved", MONDAY_10 + 6 * HOUR, MONDAY_10 + 7 * HOUR))
    tuesday = MONDAY_10 + timedelta(days=1)
    backend.add(UserEvent("new", tuesday, tuesday + HOUR))
    listings = []
    sent = requests_during(backend.server, lambda: listings.append(provider.changes(WINDOW, token)))
    assert sent == [("REPORT", backend.collection)] * 2  # sync-collection, calendar-query
    [listing] = listings
    assert listing.full
    events = by_id(listing)
    assert set(events) == {"kept", "moved", "new"}
    assert events["moved"].start == MONDAY_10 + 6 * HOUR
    assert not provider.changes(WINDOW, listing.token).full


def test_a_change_outside_the_window_only_costs_a_listing(backend: CaldavBackend) -> None:
    provider = backend.provider()
    token = provider.changes(WINDOW, None).token
    far = MONDAY_10 + timedelta(days=200)
    backend.add(UserEvent("far", far, far + HOUR))
    listing = provider.changes(WINDOW, token)
    assert listing.full and listing.events == ()


def test_an_expired_sync_token_gives_a_full_listing(backend: CaldavBackend) -> None:
    backend.add(UserEvent("s1", MONDAY_10, MONDAY_10 + HOUR))
    provider = backend.provider()
    token = json.loads(provider.changes(WINDOW, None).token or "")
    token["sync"] = "http://radicale.org/ns/sync/" + "0" * 64
    listing = provider.changes(WINDOW, json.dumps(token))
    assert listing.full and set(by_id(listing)) == {"s1"}


def test_without_a_sync_token_the_ctag_tells_an_unchanged_calendar(
    backend: CaldavBackend,
) -> None:
    backend.add(UserEvent("s1", MONDAY_10, MONDAY_10 + HOUR))
    provider = backend.provider()
    token = json.loads(provider.changes(WINDOW, None).token or "")
    assert token["ctag"]
    token["sync"] = None  # as from a server that has only getctag
    listings = []
    sent = requests_during(
        backend.server, lambda: listings.append(provider.changes(WINDOW, json.dumps(token)))
    )
    assert sent == [("PROPFIND", backend.collection)] and not listings[0].full
    backend.add(UserEvent("s2", MONDAY_10 + 2 * HOUR, MONDAY_10 + 3 * HOUR))
    assert set(by_id(provider.changes(WINDOW, json.dumps(token)))) == {"s1", "s2"}


def test_a_wider_window_or_another_calendar_config_reads_everything(
    backend: CaldavBackend,
) -> None:
    backend.add(UserEvent("s1", MONDAY_10, MONDAY_10 + HOUR))
    provider = backend.provider()
    token = provider.changes(WINDOW, None).token
    wider = type(WINDOW)(WINDOW.start, WINDOW.end + timedelta(days=30))
    assert provider.changes(wider, token).full
    other = backend.provider(calendar=backend.collection)
    assert other.changes(WINDOW, token).full


# -- reading ---------------------------------------------------------------------------


def test_a_recurring_series_with_a_moved_and_a_cancelled_instance(backend: CaldavBackend) -> None:
    first = MONDAY_10 - timedelta(days=7)
    moved_from, moved_to = first + timedelta(days=14), first + timedelta(days=15, hours=4)
    cancelled = first + timedelta(days=21)
    backend.server.put(
        f"{backend.collection}weekly.ics",
        "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//user//app//EN",
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
                "BEGIN:VEVENT",
                "UID:weekly",
                "DTSTAMP:20260101T000000Z",
                f"DTSTART;TZID=America/Toronto:{first:%Y%m%dT%H%M%S}",
                f"DTEND;TZID=America/Toronto:{first + HOUR:%Y%m%dT%H%M%S}",
                "RRULE:FREQ=WEEKLY;COUNT=6",
                f"EXDATE;TZID=America/Toronto:{cancelled:%Y%m%dT%H%M%S}",
                "SUMMARY:Session #heavy",
                "END:VEVENT",
                "BEGIN:VEVENT",
                "UID:weekly",
                "DTSTAMP:20260101T000000Z",
                f"RECURRENCE-ID;TZID=America/Toronto:{moved_from:%Y%m%dT%H%M%S}",
                f"DTSTART;TZID=America/Toronto:{moved_to:%Y%m%dT%H%M%S}",
                f"DTEND;TZID=America/Toronto:{moved_to + HOUR:%Y%m%dT%H%M%S}",
                "SUMMARY:Session #heavy",
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        ),
    )
    events = by_id(backend.provider().changes(WINDOW, None))
    starts = sorted(e.start for e in events.values())
    assert starts == [first, first + timedelta(days=7), moved_to, first + timedelta(days=28)]
    moved = events[f"weekly@{stamp(moved_from)}"]
    assert moved.start == moved_to and moved.series == "weekly"
    assert f"weekly@{stamp(cancelled)}" not in events


def test_a_broken_object_is_skipped_with_a_warning_that_quotes_nothing_of_it(
    backend: CaldavBackend,
) -> None:
    backend.add(UserEvent("good-1", MONDAY_10, MONDAY_10 + HOUR))
    backend.add(UserEvent("good-2", MONDAY_10 + 2 * HOUR, MONDAY_10 + 3 * HOUR))
    # Radicale accepts it; caldaemon reads only the Gregorian calendar (RFC 5545 §3.7.1).
    broken = calendar_object(UserEvent("odd-one", MONDAY_10, MONDAY_10 + HOUR)).replace(
        "VERSION:2.0", "VERSION:2.0\r\nCALSCALE:ISLAMIC"
    )
    backend.server.put(f"{backend.collection}odd.ics", broken)
    listing = backend.provider().changes(WINDOW, None)
    assert set(by_id(listing)) == {"good-1", "good-2"}
    [warning] = listing.warnings
    # Its path and UID are often made from the appointment's text (DESIGN.md §7).
    assert "odd.ics" not in warning and "odd-one" not in warning
    assert "skipped object" in warning and "CALSCALE" in warning


def test_the_calendar_is_found_by_display_name_or_is_the_first(backend: CaldavBackend) -> None:
    home = backend.server.make_calendar("Home Calendar")
    backend.server.put(
        f"{home}h1.ics", calendar_object(UserEvent("h1", MONDAY_10, MONDAY_10 + HOUR))
    )
    server_root = backend.server.base + "/"
    named = backend.provider(url=server_root, calendar="home calendar")
    assert set(by_id(named.changes(WINDOW, None))) == {"h1"}
    assert "'home calendar'" in named.describe()
    first = backend.provider(url=server_root)
    assert first.changes(WINDOW, None).full
    missing = backend.provider(url=server_root, calendar="Nope")
    with pytest.raises(CalendarError, match=r"no calendar named 'Nope'.*'Home Calendar'"):
        missing.changes(WINDOW, None)


def test_a_calendar_found_by_name_is_found_again_when_it_moves(backend: CaldavBackend) -> None:
    old = backend.server.make_calendar("Moving")
    provider = backend.provider(url=backend.server.base + "/", calendar="Moving")
    token = provider.changes(WINDOW, None).token
    backend.server.delete(old)
    new = backend.server.make_calendar("Moving")
    backend.server.put(
        f"{new}m1.ics", calendar_object(UserEvent("m1", MONDAY_10, MONDAY_10 + HOUR))
    )
    listing = provider.changes(WINDOW, token)
    assert listing.full and set(by_id(listing)) == {"m1"}
    assert json.loads(listing.token or "")["collection"].endswith(new)


def test_a_calendar_that_does_not_exist(backend: CaldavBackend) -> None:
    provider = backend.provider(url=backend.server.base + f"/{USER}/no-such-calendar/")
    with pytest.raises(CalendarError, match="404") as raised:
        provider.changes(WINDOW, None)
    assert not isinstance(raised.value, TransientError)


# -- errors ----------------------------------------------------------------------------


def test_a_wrong_password_is_an_authorization_error(backend: CaldavBackend) -> None:
    backend.password_file.write_text("not the password\n")
    with pytest.raises(AuthorizationError) as raised:
        backend.provider().changes(WINDOW, None)
    message = str(raised.value)
    assert "username" in message and "password_file" in message and "'lee'" in message
    assert "not the password" not in message and PASSWORD not in message
    assert raised.value.command == "caldaemon check --clinician lee"
    # Fixed in the file: the next poll of the same provider reads it again.
    backend.password_file.write_text(PASSWORD)


def test_a_password_fixed_in_its_file_is_read_again(backend: CaldavBackend) -> None:
    backend.password_file.write_text("wrong")
    provider = backend.provider()
    with pytest.raises(AuthorizationError):
        provider.changes(WINDOW, None)
    backend.password_file.write_text(PASSWORD)
    assert provider.changes(WINDOW, None).full


def test_an_unreadable_password_file_is_a_calendar_error(backend: CaldavBackend) -> None:
    provider = backend.provider(password_file=backend.tmp_path / "missing")
    with pytest.raises(CalendarError, match="cannot read the CalDAV password"):
        provider.changes(WINDOW, None)


def test_a_server_that_is_down_is_transient(backend: CaldavBackend) -> None:
    slept: list[float] = []
    provider = backend.provider(url=f"http://127.0.0.1:{free_port()}/{USER}/work/")
    provider.context = type(provider.context)(
        **{**provider.context.__dict__, "sleep": slept.append}
    )
    with pytest.raises(TransientError, match="cannot reach the server"):
        provider.changes(WINDOW, None)
    assert len(slept) == 4  # five attempts, no real waiting


def test_server_errors_are_retried_then_transient(backend: CaldavBackend) -> None:
    backend.add(UserEvent("s1", MONDAY_10, MONDAY_10 + HOUR))
    slept: list[float] = []
    provider = backend.provider()
    provider.context = type(provider.context)(
        **{**provider.context.__dict__, "sleep": slept.append}
    )
    backend.server.fail_next(503, headers={"Retry-After": "7"})
    assert set(by_id(provider.changes(WINDOW, None))) == {"s1"}
    assert slept == [7.0]
    backend.server.fail_next(500, times=5)
    with pytest.raises(TransientError, match="500"):
        provider.changes(WINDOW, None)
