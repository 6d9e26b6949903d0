"""The Google provider beyond the contract: sync tokens and pages, batches, the 409/412
reconciliations, retries (with an injected sleep: nothing here waits), authorization,
token files, and the resource mapping on hand-written resources."""

from __future__ import annotations

import base64
import json
import re
import socket
import stat
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from caldaemon import config as config_module
from caldaemon.cli.auth import authorize_google
from caldaemon.errors import (
    AuthorizationError,
    CalendarError,
    CalendarPaused,
    RemoteGone,
    TransientError,
    WriteConflict,
)
from caldaemon.model import Buffer, Create, Delete, Remote, Update, written_identity
from caldaemon.providers.base import BUFFER_DESCRIPTION, OWNER_KEY
from caldaemon.providers.google.auth import SCOPE_EVENTS, SCOPE_READONLY, save_token
from caldaemon.providers.google.listing import MAX_PAGES
from caldaemon.providers.google.mapping import (
    buffer_body,
    error_reasons,
    event_from_resource,
    event_id,
    read_token,
    same_buffer,
    write_token,
)
from tests.fakes.google_calendar import Fault, GoogleCalendarServer, RecordedRequest
from tests.providers.contract import MONDAY_10, SELF, TZ, WINDOW, UserEvent, buffer, by_id
from tests.providers.test_contract_google import GoogleBackend, when, write_client
from tests.support import StepClock

COMMAND = "caldaemon auth google --clinician lee --calendar work"
EVENTS = "/calendars/primary/events"


@pytest.fixture
def server() -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer(primary_email=SELF) as fake:
        yield fake


@pytest.fixture
def backend(server: GoogleCalendarServer, tmp_path: Path) -> Iterator[GoogleBackend]:
    backend = GoogleBackend(server, tmp_path)
    yield backend
    backend.close()


def session(backend: GoogleBackend, uid: str, day: int = 0, hour: int = 0) -> str:
    start = MONDAY_10 + timedelta(days=day, hours=hour)
    return backend.add(UserEvent(uid, start, start + timedelta(minutes=50)))


def lists(server: GoogleCalendarServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "GET" and r.path == EVENTS]


def batches(server: GoogleCalendarServer) -> list[list[RecordedRequest]]:
    """Each top-level batch request with the parts the fake saw in it."""
    found: list[list[RecordedRequest]] = []
    for request in server.requests:
        if request.batch_part:
            found[-1].append(request)
        elif request.path == "/batch/calendar/v3":
            found.append([])
    return found


def buffers(count: int) -> list[Buffer]:
    return [
        buffer(start=MONDAY_10 + timedelta(days=n // 8, minutes=60 * (n % 8)), after=f"work/s{n}")
        for n in range(count)
    ]


# -- reading ---------------------------------------------------------------------------


def test_a_full_listing_follows_every_page_and_keeps_the_last_sync_token(tmp_path: Path) -> None:
    with GoogleCalendarServer(page_size_cap=2, primary_email=SELF) as server:
        backend = GoogleBackend(server, tmp_path)
        ids = {session(backend, f"s{n}", day=n) for n in range(5)}
        listing = backend.provider().changes(WINDOW, None)
        backend.close()
    assert listing.full and {e.id for e in listing.events} == ids
    pages = lists(server)
    assert len(pages) == 3
    assert [p.param("pageToken") is not None for p in pages] == [False, True, True]
    first = pages[0]
    assert first.param("singleEvents") == "true" and first.param("maxResults") == "2500"
    assert first.param("timeMin") == "2026-11-23T05:00:00Z"
    assert first.param("timeMax") == "2026-12-28T05:00:00Z"
    assert first.param("showDeleted") is None
    assert json.loads(listing.token or "")["sync"]


def test_an_incremental_listing_sends_the_full_parameters_minus_the_window(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    kept = session(backend, "s1")
    provider = backend.provider()
    first = provider.changes(WINDOW, None)
    moved = MONDAY_10 + timedelta(hours=2)
    backend.change(kept, UserEvent("s1", moved, moved + timedelta(minutes=50)))
    second = provider.changes(WINDOW, first.token)
    assert not second.full and [e.start for e in second.events] == [moved]
    full, incremental = lists(server)
    sync = json.loads(first.token or "")["sync"]
    assert incremental.query == {
        k: v for k, v in full.query.items() if k not in ("timeMin", "timeMax")
    } | {"syncToken": [sync]}
    assert second.token != first.token


def test_a_deleted_event_comes_back_as_removed(backend: GoogleBackend) -> None:
    gone = session(backend, "s1")
    provider = backend.provider()
    first = provider.changes(WINDOW, None)
    backend.remove(gone)
    second = provider.changes(WINDOW, first.token)
    assert second.removed == (gone,) and second.events == ()


def test_an_expired_sync_token_gives_a_full_listing_never_deletions(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    ids = {session(backend, "s1"), session(backend, "s2", day=1)}
    provider = backend.provider()
    first = provider.changes(WINDOW, None)
    server.expire_sync_tokens()
    server.clear_requests()
    second = provider.changes(WINDOW, first.token)
    assert second.full and second.removed == () and {e.id for e in second.events} == ids
    assert [r.status for r in lists(server)] == [410, 200]
    assert lists(server)[1].param("timeMin") is not None
    assert not provider.changes(WINDOW, second.token).full


def test_a_token_for_another_calendar_starts_with_a_full_listing(backend: GoogleBackend) -> None:
    session(backend, "s1")
    token = write_token("someone@example.org", "abc")
    assert backend.provider().changes(WINDOW, token).full


def test_a_recurring_series_is_listed_as_instances_of_its_series(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    server.put_event(
        "primary",
        {
            "id": "weekly0001",
            "summary": "Team #team",
            "start": {"dateTime": "2026-11-30T09:00:00", "timeZone": "America/Toronto"},
            "end": {"dateTime": "2026-11-30T10:00:00", "timeZone": "America/Toronto"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        },
    )
    events = backend.provider().changes(WINDOW, None).events
    assert [(e.series, e.start.astimezone(TZ).hour) for e in events] == [("weekly0001", 9)] * 3


# -- writing ---------------------------------------------------------------------------


def test_sixty_writes_go_in_two_batches_to_the_explicit_batch_uri(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    wanted = buffers(60)
    results = backend.provider().apply([Create(b, b.identity) for b in wanted])
    assert [r.error for r in results] == [None] * 60
    assert [r.remote.id for r in results if r.remote] == [event_id(b.identity) for b in wanted]
    assert [len(parts) for parts in batches(server)] == [50, 10]
    assert len(server.events("primary")) == 60
    part = batches(server)[0][0]
    assert (part.method, part.path, part.param("sendUpdates")) == ("POST", EVENTS, "none")
    stored = server.get_event("primary", event_id(wanted[0].identity))
    assert stored is not None
    assert stored["extendedProperties"] == {"private": {OWNER_KEY: wanted[0].identity}}
    assert stored["reminders"] == {"useDefault": False, "overrides": []}
    assert stored["transparency"] == "opaque" and "attendees" not in stored
    assert stored["description"] == BUFFER_DESCRIPTION
    assert stored["start"] == {"dateTime": "2026-11-30T15:00:00Z"}  # 10:00 in Toronto


def test_update_and_delete_send_the_etag_as_if_match(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    provider = backend.provider()
    first, second = buffers(2)
    [a, b] = provider.apply([Create(first, first.identity), Create(second, second.identity)])
    assert a.remote and b.remote
    moved = buffer(start=first.start + timedelta(hours=1), after=first.after)
    server.clear_requests()
    [updated, deleted] = provider.apply(
        [Update(moved, first.identity, a.remote), Delete(second.identity, b.remote)]
    )
    assert updated.error is None and deleted.error is None
    [parts] = batches(server)
    assert [(p.method, p.headers.get("if-match")) for p in parts] == [
        ("PUT", a.remote.etag),
        ("DELETE", b.remote.etag),
    ]


def test_a_create_whose_reply_was_lost_is_adopted(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    b = buffer()
    # The batch is carried out, then the reply is cut short: the retry meets a 409.
    server.inject(Fault(kind="truncate", path_contains="/batch"))
    [result] = backend.provider().apply([Create(b, b.identity)])
    stored = server.get_event("primary", event_id(b.identity))
    assert result.error is None and stored is not None
    assert result.remote is not None and result.remote.etag == stored["etag"]
    assert len(backend.sleeps) == 1 and backend.count_with_title("Grounding time") == 1
    # A crash between the write and its commit: a new process creates it again.
    [again] = backend.provider().apply([Create(b, b.identity)])
    assert again.remote == result.remote


def test_recreating_a_buffer_the_user_deleted_finds_it_gone(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    b = buffer()
    provider = backend.provider()
    [created] = provider.apply([Create(b, b.identity)])
    assert created.remote is not None
    backend.remove(created.remote.id)
    [again] = provider.apply([Create(b, b.identity)])
    assert isinstance(again.error, RemoteGone)
    [moved] = provider.apply([Update(b, b.identity, created.remote)])
    assert isinstance(moved.error, RemoteGone)
    assert server.events("primary") == []


def test_our_id_without_our_marker_is_a_conflict(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    b = buffer()
    server.put_event(
        "primary",
        {
            "id": event_id(b.identity),
            "summary": "Mine",
            "start": {"dateTime": "2026-11-30T16:00:00Z"},
            "end": {"dateTime": "2026-11-30T17:00:00Z"},
        },
    )
    [result] = backend.provider().apply([Create(b, b.identity)])
    assert isinstance(result.error, WriteConflict)


def test_an_update_the_user_edited_meanwhile_is_a_conflict(backend: GoogleBackend) -> None:
    b = buffer()
    provider = backend.provider()
    [created] = provider.apply([Create(b, b.identity)])
    assert created.remote is not None
    backend.edit_title(created.remote.id, "Walk")
    [result] = provider.apply(
        [Update(buffer(start=b.start + timedelta(hours=1)), b.identity, created.remote)]
    )
    assert isinstance(result.error, WriteConflict)
    assert backend.count_with_title("Walk") == 1


def test_an_update_whose_reply_was_lost_is_not_taken_for_a_user_edit(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    b = buffer()
    provider = backend.provider()
    [created] = provider.apply([Create(b, b.identity)])
    assert created.remote is not None
    moved = buffer(start=b.start + timedelta(hours=1))
    server.inject(Fault(kind="truncate", path_contains="/batch"))
    [result] = provider.apply([Update(moved, b.identity, created.remote)])
    stored = server.get_event("primary", created.remote.id)
    assert result.error is None and stored is not None
    assert result.remote is not None and result.remote.etag == stored["etag"]
    assert stored["start"] == {"dateTime": "2026-11-30T16:50:00Z"}


def test_a_hold_turned_all_day_whose_reply_was_lost_is_not_taken_for_a_user_edit(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    b = buffer()
    provider = backend.provider()
    [created] = provider.apply([Create(b, b.identity)])
    assert created.remote is not None
    day = datetime(2026, 12, 5, tzinfo=TZ)
    off = Buffer("lee", "work", day, day + timedelta(days=1), "Day off", b.after, b.rule, True)
    server.inject(Fault(kind="truncate", path_contains="/batch"))
    [result] = provider.apply([Update(off, b.identity, created.remote)])
    stored = server.get_event("primary", created.remote.id)
    assert result.error is None and stored is not None
    assert result.remote is not None and result.remote.etag == stored["etag"]
    assert (stored["start"], stored["end"]) == ({"date": "2026-12-05"}, {"date": "2026-12-06"})


def test_a_refused_token_inside_a_batch_is_refreshed_and_the_parts_sent_again(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    provider = backend.provider()
    provider.changes(WINDOW, None)
    server.expire_access_tokens()
    server.clear_requests()
    b = buffer()
    [result] = provider.apply([Create(b, b.identity)])
    assert result.error is None
    assert [(r.path, r.status) for r in server.requests if not r.batch_part].count(
        ("/token", 200)
    ) == 1


def test_a_read_only_calendar_refuses_writes_before_any_request(
    server: GoogleCalendarServer, tmp_path: Path
) -> None:
    backend = GoogleBackend(server, tmp_path, buffers_to="elsewhere")
    provider = backend.provider()
    assert provider.read_only
    with pytest.raises(CalendarError, match="buffers_to"):
        provider.apply([Create(buffer(), buffer().identity)])
    assert server.requests == []


# -- retries ---------------------------------------------------------------------------


def test_429_waits_as_long_as_retry_after_says(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    session(backend, "s1")
    server.inject(Fault(status=429, retry_after=7, path_contains=EVENTS))
    assert len(backend.provider().changes(WINDOW, None).events) == 1
    assert backend.sleeps == [7.0]
    assert [r.status for r in lists(server)] == [429, 200]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=403, reason="userRateLimitExceeded", path_contains=EVENTS),
        Fault(status=403, reason="rateLimitExceeded", path_contains=EVENTS),
        Fault(status=503, path_contains=EVENTS),
        Fault(status=500, path_contains=EVENTS),
        Fault(kind="reset", path_contains=EVENTS),
        Fault(kind="truncate", path_contains=EVENTS),
    ],
    ids=["403-user-rate", "403-rate", "503", "500", "reset", "truncated"],
)
def test_transient_failures_are_retried_after_a_backoff(
    backend: GoogleBackend, server: GoogleCalendarServer, fault: Fault
) -> None:
    session(backend, "s1")
    server.inject(fault)
    assert len(backend.provider().changes(WINDOW, None).events) == 1
    [wait] = backend.sleeps
    assert 0 <= wait <= 1.0  # the first backoff: full jitter under base * 2**0
    assert len(lists(server)) == 2


def test_a_timeout_is_retried(backend: GoogleBackend, server: GoogleCalendarServer) -> None:
    server.inject(Fault(kind="hang", delay=2.0, path_contains=EVENTS))
    provider = backend.provider(timeout=timedelta(milliseconds=200))
    assert provider.changes(WINDOW, None).full
    assert len(backend.sleeps) == 1


def test_retries_are_bounded_and_end_in_a_transient_error(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    server.inject(Fault(status=503, path_contains=EVENTS, times=100))
    with pytest.raises(TransientError, match="503"):
        backend.provider().changes(WINDOW, None)
    assert len(lists(server)) == 5
    assert len(backend.sleeps) == 4
    assert all(0 <= wait <= 2**n for n, wait in enumerate(backend.sleeps))


def test_a_retry_after_beyond_the_cap_gives_up_this_cycle(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    server.inject(Fault(status=429, retry_after=3600, path_contains=EVENTS))
    with pytest.raises(TransientError):
        backend.provider().changes(WINDOW, None)
    assert backend.sleeps == [] and len(lists(server)) == 1


@pytest.mark.parametrize(
    "status,reason", [(400, "badRequest"), (403, "forbidden"), (404, "notFound")]
)
def test_other_client_errors_are_not_retried(
    backend: GoogleBackend, server: GoogleCalendarServer, status: int, reason: str
) -> None:
    server.inject(Fault(status=status, reason=reason, path_contains=EVENTS))
    with pytest.raises(CalendarError) as caught:
        backend.provider().changes(WINDOW, None)
    assert not isinstance(caught.value, TransientError)
    assert backend.sleeps == [] and len(lists(server)) == 1


def test_only_the_rate_limited_part_of_a_batch_is_sent_again(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    wanted = buffers(3)
    limited = event_id(wanted[1].identity)
    server.inject(
        Fault(
            status=429,
            retry_after=3,
            batch_part=True,
            match=lambda r: r.method == "POST" and r.json()["id"] == limited,
        )
    )
    results = backend.provider().apply([Create(b, b.identity) for b in wanted])
    assert [r.error for r in results] == [None] * 3
    assert backend.sleeps == [3.0]
    assert [[p.json()["id"] for p in parts] for parts in batches(server)][1] == [limited]


def test_a_part_that_keeps_failing_gets_a_transient_error_of_its_own(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    wanted = buffers(2)
    failing = event_id(wanted[0].identity)
    server.inject(
        Fault(
            status=503,
            batch_part=True,
            times=100,
            match=lambda r: r.method == "POST" and r.json()["id"] == failing,
        )
    )
    first, second = backend.provider().apply([Create(b, b.identity) for b in wanted])
    assert isinstance(first.error, TransientError) and second.error is None
    assert [len(parts) for parts in batches(server)] == [2, 1, 1, 1, 1]


def test_a_400_on_a_write_is_not_retried(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    server.inject(Fault(status=400, reason="invalid", batch_part=True))
    [result] = backend.provider().apply([Create(buffer(), buffer().identity)])
    assert isinstance(result.error, CalendarError)
    assert not isinstance(result.error, TransientError)
    assert backend.sleeps == [] and len(batches(server)) == 1


# -- the service as it is (RESEARCH.md, "Google Calendar API v3") --------------------------


def weekly_series(server: GoogleCalendarServer, summary: str = "Team #team") -> dict[str, Any]:
    """An open-ended weekly meeting starting inside the window."""
    return server.put_event(
        "primary",
        {
            "id": "weekly0002",
            "summary": summary,
            "start": {"dateTime": "2026-11-30T13:00:00", "timeZone": "America/Toronto"},
            "end": {"dateTime": "2026-11-30T14:00:00", "timeZone": "America/Toronto"},
            "recurrence": ["RRULE:FREQ=WEEKLY"],
        },
    )


def test_a_buffer_back_after_our_delete_is_a_new_generation_never_an_update_of_the_old(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    """Its session was cancelled, then restored: caldaemon deleted the buffer, and the
    old code brought it back by updating the cancelled event, which Google refuses (403,
    google-api-ruby-client #1811)."""
    b = buffer()
    provider = backend.provider()
    [created] = provider.apply([Create(b, b.identity)])
    assert created.remote is not None
    [deleted] = provider.apply([Delete(b.identity, created.remote)])
    assert deleted.error is None
    [same_id] = provider.apply([Create(b, b.identity)])
    assert isinstance(same_id.error, RemoteGone)  # the core then writes the next generation
    second = written_identity(b.identity, 1)
    [revived] = provider.apply([Create(b, second)])
    assert revived.error is None and revived.remote is not None
    assert revived.remote.id == event_id(second) != created.remote.id
    listed = by_id(provider.changes(WINDOW, None))
    assert list(listed) == [revived.remote.id]
    assert listed[revived.remote.id].owner == second and listed[revived.remote.id].marked
    old = server.get_event("primary", created.remote.id)
    assert old is not None and old["status"] == "cancelled"
    assert not any(r.method in ("PUT", "PATCH") for r in server.requests)


def test_an_update_of_a_deleted_event_finds_it_gone_rather_than_refused(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    b = buffer()
    provider = backend.provider()
    [created] = provider.apply([Create(b, b.identity)])
    assert created.remote is not None
    backend.remove(created.remote.id)
    stub = server.get_event("primary", created.remote.id)
    assert stub is not None
    # Even with the deleted event's own etag, Google answers 403, not 412.
    current = Remote(created.remote.id, stub["etag"])
    moved = buffer(start=b.start + timedelta(hours=1))
    [result] = provider.apply([Update(moved, b.identity, current)])
    assert isinstance(result.error, RemoteGone)
    assert [p.status for p in batches(server)[-2]] == [403]


def test_a_users_copy_of_a_buffer_is_marked_but_not_caldaemons(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    """Google's "Duplicate" keeps extendedProperties: the copy carries our marker under
    another id. It is the user's event; caldaemon's own buffer stays caldaemon's."""
    b = buffer()
    provider = backend.provider()
    [created] = provider.apply([Create(b, b.identity)])
    assert created.remote is not None
    original = server.get_event("primary", created.remote.id)
    assert original is not None
    copy = server.put_event("primary", {**original, "id": "usercopy0001"})
    listed = by_id(provider.changes(WINDOW, None))
    assert (listed[copy["id"]].owner, listed[copy["id"]].marked) == (None, True)
    assert (listed[created.remote.id].owner, listed[created.remote.id].marked) == (
        b.identity,
        True,
    )
    [deleted] = provider.apply([Delete(b.identity, created.remote)])
    assert deleted.error is None
    assert [e["id"] for e in server.events("primary")] == [copy["id"]]


def test_a_marker_of_another_generation_on_our_id_is_not_bound() -> None:
    identity = "0123456789abcdef0123456789abcdef01234567"
    second = written_identity(identity, 1)
    assert event_id(second) == event_id(identity) + "g1"
    ours = mapped(timed(id=event_id(second), extendedProperties={"private": {OWNER_KEY: second}}))
    assert (ours.owner, ours.marked) == (second, True)
    stale = mapped(
        timed(id=event_id(identity), extendedProperties={"private": {OWNER_KEY: second}})
    )
    assert (stale.owner, stale.marked) == (None, True)
    for odd in (f"{identity}-g0", f"{identity}-g01", "not ours"):
        assert mapped(timed(extendedProperties={"private": {OWNER_KEY: odd}})).owner is None
    assert mapped(timed()).marked is False


def test_an_incremental_listing_of_an_exploded_series_keeps_only_the_window(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    """A touched open-ended weekly series comes back with every instance for decades
    (garrytan/gbrain PR #5015): the listing keeps the few the window covers."""
    series = weekly_series(server)
    provider = backend.provider()
    first = provider.changes(WINDOW, None)
    assert len(first.events) == 4
    server.put_event("primary", {**series, "summary": "Team meeting #team"})
    server.clear_requests()
    second = provider.changes(WINDOW, first.token)
    assert not second.full and second.removed == ()
    assert [e.title for e in second.events] == ["Team meeting #team"] * 4
    [request] = lists(server)
    assert request.param("syncToken") is not None


def test_an_exploded_series_past_the_page_cap_is_read_again_as_the_window(
    tmp_path: Path,
) -> None:
    with GoogleCalendarServer(page_size_cap=5, primary_email=SELF) as server:
        backend = GoogleBackend(server, tmp_path)
        series = weekly_series(server)
        provider = backend.provider()
        first = provider.changes(WINDOW, None)
        server.put_event("primary", {**series, "summary": "Team meeting #team"})
        server.clear_requests()
        second = provider.changes(WINDOW, first.token)
        backend.close()
    assert second.full and [e.title for e in second.events] == ["Team meeting #team"] * 4
    incremental = [r for r in lists(server) if r.param("timeMin") is None]
    assert len(incremental) == MAX_PAGES
    assert len(lists(server)) == MAX_PAGES + 1  # then the window, in one page


def test_an_event_moved_out_of_the_window_is_still_listed_so_its_cached_copy_goes(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    """Only instances still at their series' slot outside the window are dropped: a moved
    instance, like any other event, is listed (and dropped from the cache by the core)."""
    kept = session(backend, "s1")
    weekly_series(server)
    provider = backend.provider()
    first = provider.changes(WINDOW, None)
    [instance, *_] = [e.id for e in first.events if e.series]
    far = MONDAY_10 + timedelta(days=90)
    backend.change(kept, UserEvent("s1", far, far + timedelta(minutes=50)))
    moved = server.get_event("primary", instance)
    assert moved is not None
    server.put_event(
        "primary", {**moved, "start": when(far), "end": when(far + timedelta(hours=1))}
    )
    second = provider.changes(WINDOW, first.token)
    assert sorted(e.id for e in second.events) == sorted([kept, instance])
    assert all(e.start == far for e in second.events) and second.removed == ()


@pytest.mark.parametrize("fresh_tokens", [False, True], ids=["same-token", "same-page"])
def test_a_looping_page_chain_is_abandoned_not_followed(tmp_path: Path, fresh_tokens: bool) -> None:
    with GoogleCalendarServer(page_size_cap=1, primary_email=SELF) as server:
        backend = GoogleBackend(server, tmp_path)
        for n in range(3):
            session(backend, f"s{n}", day=n)
        server.loop_paging(10_000, fresh_tokens=fresh_tokens)
        with pytest.raises(TransientError, match="page"):
            backend.provider().changes(WINDOW, None)
        backend.close()
    assert len(lists(server)) <= 4
    assert backend.sleeps == []


def test_a_looping_incremental_listing_falls_back_to_the_window(tmp_path: Path) -> None:
    with GoogleCalendarServer(page_size_cap=1, primary_email=SELF) as server:
        backend = GoogleBackend(server, tmp_path)
        ids = {session(backend, f"s{n}", day=n) for n in range(3)}
        provider = backend.provider()
        first = provider.changes(WINDOW, None)
        for n in range(3):
            session(backend, f"t{n}", day=n, hour=2)
        server.loop_paging(1)
        second = provider.changes(WINDOW, first.token)
        backend.close()
    assert second.full and len(second.events) == 6 and ids <= {e.id for e in second.events}


@pytest.mark.parametrize("status", [403, 429])
def test_exceeded_usage_limits_on_a_read_pause_the_calendar_without_retrying(
    backend: GoogleBackend, server: GoogleCalendarServer, status: int
) -> None:
    server.inject(Fault(status=status, reason="quotaExceeded", path_contains=EVENTS, times=5))
    with pytest.raises(CalendarPaused, match="usage limits"):
        backend.provider().changes(WINDOW, None)
    assert backend.sleeps == [] and len(lists(server)) == 1


def test_exceeded_usage_limits_on_writes_pause_them_and_send_no_more(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    server.exceed_usage_limits("primary")
    results = backend.provider().apply([Create(b, b.identity) for b in buffers(60)])
    assert all(isinstance(r.error, CalendarPaused) for r in results)
    assert [len(parts) for parts in batches(server)] == [50]  # the second batch waits
    assert backend.sleeps == [] and server.events("primary") == []


def test_an_outage_mid_write_leaves_the_other_batches_unsent(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    server.inject(Fault(status=503, path_contains="/batch", times=100))
    results = backend.provider().apply([Create(b, b.identity) for b in buffers(60)])
    assert all(isinstance(r.error, TransientError) for r in results)
    assert len(batches(server)) == 5  # one batch's attempts; the second is never sent


def test_a_sync_token_past_its_lifetime_gives_a_full_listing(
    tmp_path: Path,
) -> None:
    clock = StepClock(datetime(2026, 11, 30, 8, tzinfo=TZ))
    with GoogleCalendarServer(primary_email=SELF, clock=clock) as server:
        backend = GoogleBackend(server, tmp_path)
        ids = {session(backend, "s1")}
        provider = backend.provider()
        first = provider.changes(WINDOW, None)
        clock.advance(minutes=25 * 60)
        second = provider.changes(WINDOW, first.token)
        backend.close()
    assert second.full and {e.id for e in second.events} == ids
    assert [r.status for r in lists(server)] == [200, 410, 200]


# -- authorization ---------------------------------------------------------------------


def test_a_revoked_refresh_token_asks_for_the_sign_in_command(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    server.revoke_refresh_token(backend.refresh_token)
    provider = backend.provider()
    with pytest.raises(AuthorizationError) as caught:
        provider.changes(WINDOW, None)
    error = caught.value
    assert error.command == COMMAND and COMMAND in str(error)
    assert "expired or was revoked" in str(error)
    assert backend.refresh_token not in str(error) and "s3cret" not in str(error)
    # The person signs in again: the same provider object reads the new token.
    backend.refresh_token = server.issue_refresh_token()
    backend.token.write_text(
        json.dumps(
            {**json.loads(backend.token.read_text()), "refresh_token": backend.refresh_token}
        )
    )
    assert provider.changes(WINDOW, None).full


def test_an_access_token_revoked_with_its_refresh_token_is_an_authorization_error(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    provider = backend.provider()
    provider.changes(WINDOW, None)
    server.revoke_refresh_token(backend.refresh_token)
    with pytest.raises(AuthorizationError, match=re.escape(COMMAND)):
        provider.changes(WINDOW, None)


def test_missing_token_and_credentials_files(
    backend: GoogleBackend, server: GoogleCalendarServer, tmp_path: Path
) -> None:
    no_token = backend.provider(token=tmp_path / "absent.json")
    with pytest.raises(AuthorizationError, match="not been signed in") as caught:
        no_token.changes(WINDOW, None)
    assert caught.value.command == COMMAND
    with pytest.raises(AuthorizationError, match="cannot read the Google credentials"):
        backend.provider(credentials=tmp_path / "absent-client.json").changes(WINDOW, None)
    web = tmp_path / "web.json"
    web.write_text(json.dumps({"web": {"client_id": "x", "client_secret": "y"}}))
    with pytest.raises(CalendarError, match="Desktop app") as broken:
        backend.provider(credentials=web).changes(WINDOW, None)
    assert not isinstance(broken.value, AuthorizationError)
    assert server.requests == []


def test_a_read_only_token_on_the_buffers_calendar_asks_to_sign_in_again(
    backend: GoogleBackend,
) -> None:
    backend.token.write_text(
        json.dumps({**json.loads(backend.token.read_text()), "scopes": [SCOPE_READONLY]})
    )
    with pytest.raises(AuthorizationError, match="read-only"):
        backend.provider().changes(WINDOW, None)


def test_opening_the_provider_does_no_io_and_describes_it_without_secrets(
    server: GoogleCalendarServer, tmp_path: Path
) -> None:
    backend = GoogleBackend(server, tmp_path)
    provider = backend.provider(credentials=tmp_path / "nope.json", token=tmp_path / "nope2.json")
    assert provider.describe() == "Google Calendar 'primary' (token …/nope2.json)"
    default = backend.provider(token=None)
    assert default.describe() == "Google Calendar 'primary' (token …/lee-work.google.json)"
    assert server.requests == []


def test_a_refreshed_token_is_saved_0600_and_spares_the_next_process_a_refresh(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    backend.provider().changes(WINDOW, None)
    saved = json.loads(backend.token.read_text())
    assert saved["token"].startswith("ya29.") and saved["expiry"]
    assert saved["refresh_token"] == backend.refresh_token
    assert stat.S_IMODE(backend.token.stat().st_mode) == 0o600
    server.clear_requests()
    backend.provider().changes(WINDOW, None)
    assert [r.path for r in server.requests] == [EVENTS]


def test_save_token_makes_private_directories_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tokens" / "lee-work.google.json"
    save_token(path, '{"refresh_token": "a"}')
    save_token(path, '{"refresh_token": "b"}')
    assert json.loads(path.read_text()) == {"refresh_token": "b"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def service_account_file(path: Path, server: GoogleCalendarServer) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "caldaemon@practice.iam.gserviceaccount.com",
                "private_key": pem,
                "private_key_id": "k1",
                "client_id": "1",
                "token_uri": server.token_url,
            }
        )
    )
    return path


def jwt_claims(request: RecordedRequest) -> dict[str, Any]:
    form = urllib.parse.parse_qs(request.body.decode())
    payload = form["assertion"][0].split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_a_service_account_acts_for_the_clinician_with_read_only_scope(
    server: GoogleCalendarServer, tmp_path: Path
) -> None:
    session_id = GoogleBackend(server, tmp_path).add(
        UserEvent("s1", MONDAY_10, MONDAY_10 + timedelta(hours=1))
    )
    backend = GoogleBackend(server, tmp_path, buffers_to="other")
    robot = service_account_file(tmp_path / "sa.json", server)
    provider = backend.provider(credentials=robot, subject=SELF, token=None)
    assert [e.id for e in provider.changes(WINDOW, None).events] == [session_id]
    assert provider.describe() == f"Google Calendar 'primary' (service account acting as {SELF})"
    [grant] = [r for r in server.requests if r.path == "/token"]
    claims = jwt_claims(grant)
    assert claims["sub"] == SELF and claims["scope"] == SCOPE_READONLY
    assert not (tmp_path / "tokens").exists()
    with pytest.raises(CalendarError, match="subject"):
        backend.provider(credentials=robot, subject=None, token=None).changes(WINDOW, None)


def test_a_writing_service_account_asks_for_calendar_events(
    server: GoogleCalendarServer, tmp_path: Path
) -> None:
    backend = GoogleBackend(server, tmp_path)
    robot = service_account_file(tmp_path / "sa.json", server)
    provider = backend.provider(credentials=robot, subject=SELF, token=None)
    [result] = provider.apply([Create(buffer(), buffer().identity)])
    assert result.error is None
    [grant] = [r for r in server.requests if r.path == "/token"]
    assert jwt_claims(grant)["scope"] == SCOPE_EVENTS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_authorize_runs_the_installed_app_flow_and_stores_the_token(
    server: GoogleCalendarServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake token endpoint is http
    monkeypatch.delenv("OAUTHLIB_RELAX_TOKEN_SCOPE", raising=False)
    write_client(tmp_path / "client.json", server)
    (tmp_path / "config.yaml").write_text(f"""\
timezone: America/Toronto
daemon: {{state_dir: state}}
clinicians:
  - id: lee
    rules: standard
    calendars:
      - {{id: work, provider: google, credentials: client.json, api_endpoint: "{server.url}"}}
    buffers_to: work
rule_sets:
  standard: {{}}
""")
    settings = config_module.load(tmp_path / "config.yaml")
    clinician = settings.clinician("lee")
    port, shown = free_port(), []

    def echo(text: str) -> None:
        shown.append(text)
        url = re.search(r"https?://\S+", text)
        assert url is not None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url.group(0)).query)
        back = f"{query['redirect_uri'][0]}?" + urllib.parse.urlencode(
            {"state": query["state"][0], "code": "4/consent-code", "scope": SCOPE_EVENTS}
        )
        threading.Thread(
            target=lambda: urllib.request.urlopen(back, timeout=5).read(), daemon=True
        ).start()

    path = authorize_google(settings, clinician, clinician.calendar("work"), port=port, echo=echo)
    assert path == tmp_path / "state" / "tokens" / "lee-work.google.json"
    [prompt] = shown
    assert f"ssh -L {port}:localhost:{port}" in prompt
    assert "scope=" + urllib.parse.quote(SCOPE_EVENTS, safe="") in prompt
    assert "access_type=offline" in prompt and "prompt=consent" in prompt
    token = json.loads(path.read_text())
    assert token["refresh_token"].startswith("1//fake-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    backend = GoogleBackend(server, tmp_path)
    assert backend.provider(token=path).changes(WINDOW, None).full


def test_each_thread_has_its_own_http_shared_by_every_calendar(backend: GoogleBackend) -> None:
    """httplib2 is not thread-safe: one pool per thread, not one per calendar and thread
    (a thousand calendars on 32 worker threads must not hold 32,000 connections)."""
    from caldaemon.providers.google.http import thread_http

    first, second = backend.provider(), backend.provider()
    first.changes(WINDOW, None)
    second.changes(WINDOW, None)
    here = thread_http(5.0)
    seen: list[Any] = []

    def work() -> None:
        first.changes(WINDOW, None)
        seen.append(thread_http(5.0))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen[0] is not here and seen[0].timeout == here.timeout == 5.0
    assert first.client.http().http is second.client.http().http is here


def test_the_sign_in_command_refuses_a_service_account(
    server: GoogleCalendarServer, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from caldaemon.cli import main

    service_account_file(tmp_path / "sa.json", server)
    (tmp_path / "config.yaml").write_text("""\
clinicians:
  - id: lee
    rules: standard
    calendars:
      - {id: work, provider: google, credentials: sa.json, subject: lee@example.org}
rule_sets:
  standard: {}
""")
    result = CliRunner().invoke(
        main, ["auth", "google", "--config", str(tmp_path / "config.yaml"), "--clinician", "lee"]
    )
    assert result.exit_code == 2
    assert "service-account key" in result.output and "Traceback" not in result.output


# -- the mapping -----------------------------------------------------------------------


def timed(**extra: Any) -> dict[str, Any]:
    return {
        "id": "abc12345",
        "etag": '"1"',
        "summary": "Session #heavy",
        "start": {"dateTime": "2026-11-30T10:00:00-05:00"},
        "end": {"dateTime": "2026-11-30T15:50:00Z"},
        **extra,
    }


def mapped(resource: dict[str, Any], addresses: frozenset[str] = frozenset()) -> Any:
    return event_from_resource(resource, calendar="work", tz=TZ, self_addresses=addresses)


def test_mapping_times_title_and_etag() -> None:
    event = mapped(timed(description="notes"))
    assert event.start == datetime(2026, 11, 30, 10, tzinfo=TZ)
    assert event.end == datetime(2026, 11, 30, 15, 50, tzinfo=UTC)
    assert (event.title, event.description, event.etag) == ("Session #heavy", "notes", '"1"')
    assert (event.all_day, event.busy, event.declined, event.cancelled) == (
        False,
        True,
        False,
        False,
    )
    assert (event.color, event.owner, event.series, event.categories) == (None, None, None, ())
    local = mapped(timed(start={"dateTime": "2026-11-30T10:00:00", "timeZone": "Europe/Berlin"}))
    assert local.start == datetime(2026, 11, 30, 10, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    "color_id,name",
    [
        ("1", "lavender"),
        ("2", "sage"),
        ("3", "grape"),
        ("4", "flamingo"),
        ("5", "banana"),
        ("6", "tangerine"),
        ("7", "peacock"),
        ("8", "graphite"),
        ("9", "blueberry"),
        ("10", "basil"),
        ("11", "tomato"),
        ("99", None),
    ],
)
def test_mapping_colours_by_palette_name(color_id: str, name: str | None) -> None:
    assert mapped(timed(colorId=color_id)).color == name


def test_mapping_transparency_and_status() -> None:
    assert not mapped(timed(transparency="transparent")).busy
    assert mapped(timed(transparency="opaque")).busy
    assert mapped(timed(status="cancelled")).cancelled


def test_mapping_the_clinicians_own_answer() -> None:
    others = [{"email": "client@example.org", "responseStatus": "declined"}]
    assert not mapped(timed(attendees=others)).declined
    mine = [*others, {"email": "x@example.org", "self": True, "responseStatus": "declined"}]
    assert mapped(timed(attendees=mine)).declined
    by_address = [{"email": "Lee@Example.org", "responseStatus": "declined"}]
    assert mapped(timed(attendees=by_address), frozenset({"lee@example.org"})).declined
    accepted = [{"email": "x@example.org", "self": True, "responseStatus": "accepted"}]
    assert not mapped(timed(attendees=accepted)).declined


def test_mapping_all_day_dates_at_local_midnight_end_exclusive() -> None:
    # Toronto leaves daylight saving time on 1 Nov 2026: that day has 25 hours.
    event = mapped(timed(start={"date": "2026-11-01"}, end={"date": "2026-11-02"}))
    assert event.all_day
    assert event.start == datetime(2026, 11, 1, tzinfo=TZ)
    assert event.end == datetime(2026, 11, 2, tzinfo=TZ)
    assert event.end - event.start == timedelta(days=1)
    assert (event.end.timestamp() - event.start.timestamp()) == 25 * 3600


def test_mapping_series_and_owner_marker() -> None:
    identity = "0123456789abcdef0123456789abcdef01234567"
    marker = {"private": {OWNER_KEY: identity}}
    ours = mapped(timed(id=event_id(identity), extendedProperties=marker))
    assert ours.owner == identity
    # A copy made with Google's "Duplicate" keeps the marker but not our id.
    assert mapped(timed(extendedProperties=marker)).owner is None
    assert mapped(timed(recurringEventId="weekly01")).series == "weekly01"
    with pytest.raises(KeyError):
        mapped({"id": "abc12345", "status": "cancelled"})


def test_buffer_ids_and_bodies() -> None:
    b = buffer()
    assert re.fullmatch(r"[a-v0-9]{42}", event_id(b.identity))
    with pytest.raises(ValueError):
        event_id("NOT-HEX")
    body = buffer_body(b, b.identity)
    assert body["start"] == {"dateTime": "2026-11-30T15:50:00Z"}
    assert body["end"] == {"dateTime": "2026-11-30T16:05:00Z"}
    assert (body["visibility"], body["transparency"]) == ("private", "opaque")
    assert same_buffer({**body, "etag": '"2"'}, b, b.identity)
    assert not same_buffer({**body, "summary": "Walk"}, b, b.identity)
    assert not same_buffer({**body, "status": "cancelled"}, b, b.identity)


def test_an_all_day_block_is_dated_where_the_clinician_is() -> None:
    # Tokyo's Saturday starts on Friday in UTC: the dates must be Tokyo's.
    tokyo = ZoneInfo("Asia/Tokyo")
    day = datetime(2026, 12, 5, tzinfo=tokyo)
    end = day + timedelta(days=2)
    b = Buffer("lee", "work", day, end, "Days off", "off/2026-12-05", "protect", all_day=True)
    body = buffer_body(b, b.identity, tokyo)
    assert (body["start"], body["end"]) == ({"date": "2026-12-05"}, {"date": "2026-12-07"})
    assert (body["visibility"], body["transparency"]) == ("private", "opaque")
    assert buffer_body(b, b.identity)["start"] == {"date": "2026-12-05"}  # the buffer's zone
    assert same_buffer({**body, "etag": '"2"'}, b, b.identity, tokyo)
    assert not same_buffer({**body, "end": {"date": "2026-12-06"}}, b, b.identity, tokyo)
    as_timed = {
        **body,
        "start": {"dateTime": "2026-12-04T15:00:00Z"},
        "end": {"dateTime": "2026-12-06T15:00:00Z"},
    }
    assert not same_buffer(as_timed, b, b.identity, tokyo)
    timed_block = Buffer("lee", "work", day, end, "Days off", "off/2026-12-05", "protect")
    assert not same_buffer(body, timed_block, b.identity, tokyo)
    listed = event_from_resource(body, calendar="work", tz=tokyo)
    assert listed.all_day and (listed.start, listed.end) == (day, end)


def test_mapping_out_of_office_by_event_type() -> None:
    away = mapped(timed(eventType="outOfOffice", outOfOfficeProperties={}))
    assert away.out_of_office and away.busy and not away.all_day
    assert not mapped(timed(eventType="default")).out_of_office
    assert not mapped(timed(eventType="focusTime")).out_of_office
    assert not mapped(timed()).out_of_office


def test_sync_tokens_and_error_reasons() -> None:
    token = write_token("primary", "sync-1")
    assert read_token(token, "primary") == "sync-1"
    assert read_token(token, "other@example.org") is None
    assert read_token("not json", "primary") is None and read_token(None, "primary") is None
    assert write_token("primary", None) is None
    body = {
        "error": {
            "code": 403,
            "errors": [{"reason": "userRateLimitExceeded"}],
            "details": [{"reason": "RATE_LIMIT_EXCEEDED"}],
        }
    }
    assert error_reasons(json.dumps(body).encode()) == {
        "userRateLimitExceeded",
        "RATE_LIMIT_EXCEEDED",
    }
    assert error_reasons(b"<html>") == set()


def test_a_new_sign_in_is_not_overwritten_by_the_running_daemon(
    backend: GoogleBackend, server: GoogleCalendarServer
) -> None:
    provider = backend.provider()
    provider.changes(WINDOW, None)
    fresh = server.issue_refresh_token()
    backend.token.write_text(
        json.dumps({**json.loads(backend.token.read_text()), "refresh_token": fresh, "token": None})
    )
    server.expire_access_tokens()  # the running provider refreshes with its old token
    provider.changes(WINDOW, None)
    assert json.loads(backend.token.read_text())["refresh_token"] == fresh
    server.revoke_refresh_token(backend.refresh_token)
    server.expire_access_tokens()
    assert provider.changes(WINDOW, None).full  # it switched to the new sign-in
