"""The Google Calendar fake, driven through the real google-api-python-client and google-auth."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import google_auth_httplib2
import httplib2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import Credentials as BaseCredentials
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from .google_calendar import Fault, GoogleCalendarServer
from .google_event import out_of_office

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"


class Clock:
    """The fake's clock, moved on by hand: nothing here waits for real time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer(clock=clock) as fake:
        yield fake


ServiceFactory = Callable[..., Resource]


@pytest.fixture
def connect(server: GoogleCalendarServer) -> Iterator[ServiceFactory]:
    """Builds Calendar services the way caldaemon does; closes their connections afterwards."""
    made: list[Resource] = []

    def factory(
        refresh_token: str | None = None, timeout: float = 5, creds: BaseCredentials | None = None
    ) -> Resource:
        if creds is None:
            creds = Credentials(  # type: ignore[no-untyped-call]
                token=None,
                refresh_token=refresh_token or server.issue_refresh_token(),
                token_uri=server.token_url,
                client_id="x",
                client_secret="y",
            )
        authed = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=timeout))
        made.append(
            build(
                "calendar",
                "v3",
                http=authed,
                static_discovery=True,
                client_options={"api_endpoint": server.url},
            )
        )
        return made[-1]

    yield factory
    for service in made:
        service.close()


@pytest.fixture
def service(connect: ServiceFactory) -> Resource:
    return connect()


def timed(summary: str, day: int, hour: int = 9, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": f"2024-03-{day:02d}T{hour:02d}:00:00Z"},
        "end": {"dateTime": f"2024-03-{day:02d}T{hour:02d}:30:00Z"},
        **extra,
    }


def reason(error: HttpError) -> str:
    return str(error.error_details[0]["reason"])


def refused_writes(
    server: GoogleCalendarServer, requests: Iterable[HttpRequest], batched: HttpRequest
) -> list[HttpError]:
    """Run each request expecting an HttpError, then ``batched`` as the one part of a
    batch; the errors in order (a batch part that succeeds adds none)."""
    refused: list[HttpError] = []
    for request in requests:
        with pytest.raises(HttpError) as caught:
            request.execute()
        refused.append(caught.value)
    parts: list[HttpError | None] = []
    batch = BatchHttpRequest(
        callback=lambda rid, resp, exc: parts.append(exc), batch_uri=server.batch_url
    )
    batch.add(batched)
    batch.execute()
    return refused + [e for e in parts if e is not None]


def test_full_sync_over_pages_then_incremental_sync(
    server: GoogleCalendarServer, service: Resource
) -> None:
    seeded = [server.put_event("primary", timed(f"appt {n}", n + 1)) for n in range(5)]
    events = service.events()
    request = events.list(calendarId="primary", maxResults=2, singleEvents=True)
    pages = []
    while request is not None:
        pages.append(request.execute())
        request = events.list_next(request, pages[-1])
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert all("nextPageToken" in page and "nextSyncToken" not in page for page in pages[:-1])
    assert "nextPageToken" not in pages[-1]
    assert [i["id"] for page in pages for i in page["items"]] == [e["id"] for e in seeded]

    server.put_event("primary", {**seeded[1], "summary": "moved"})
    server.delete_event("primary", seeded[3]["id"])
    changes = events.list(
        calendarId="primary", syncToken=pages[-1]["nextSyncToken"], singleEvents=True
    ).execute()
    updated, deleted = changes["items"]
    assert updated["summary"] == "moved" and updated["sequence"] == 1
    assert updated["etag"] != seeded[1]["etag"]
    assert deleted == {
        "kind": "calendar#event",
        "etag": deleted["etag"],
        "id": seeded[3]["id"],
        "status": "cancelled",
    }
    again = events.list(
        calendarId="primary", syncToken=changes["nextSyncToken"], singleEvents=True
    ).execute()
    assert again["items"] == []


def test_sync_token_combined_with_time_min_is_rejected(service: Resource) -> None:
    token = service.events().list(calendarId="primary").execute()["nextSyncToken"]
    with pytest.raises(HttpError) as caught:
        service.events().list(
            calendarId="primary", syncToken=token, timeMin="2024-01-01T00:00:00Z"
        ).execute()
    assert caught.value.resp.status == 400 and reason(caught.value) == "invalid"


def test_expired_sync_token_requires_full_sync(
    server: GoogleCalendarServer, service: Resource
) -> None:
    token = service.events().list(calendarId="primary").execute()["nextSyncToken"]
    server.expire_sync_tokens()
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert caught.value.resp.status == 410 and reason(caught.value) == "fullSyncRequired"
    assert caught.value.reason == "Sync token is no longer valid, a full sync is required."


def test_insert_with_client_id_then_duplicate(
    server: GoogleCalendarServer, service: Resource
) -> None:
    body = timed(
        "buffer", 4, extendedProperties={"private": {"caldaemon": "buffer"}}, transparency="opaque"
    )
    created = (
        service.events()
        .insert(calendarId="primary", body={"id": "buffer00001", **body}, sendUpdates="none")
        .execute()
    )
    assert created["id"] == "buffer00001" and created["status"] == "confirmed"
    assert created["extendedProperties"] == {"private": {"caldaemon": "buffer"}}
    assert created["organizer"] == {"email": "clinician@example.com", "self": True}
    assert server.requests[-1].param("sendUpdates") == "none"
    server.delete_event("primary", "buffer00001")
    with pytest.raises(HttpError) as caught:
        service.events().insert(calendarId="primary", body={"id": "buffer00001", **body}).execute()
    assert caught.value.resp.status == 409 and reason(caught.value) == "duplicate"
    with pytest.raises(HttpError) as caught:
        service.events().insert(calendarId="primary", body={"id": "Not_Base32", **body}).execute()
    assert caught.value.resp.status == 400 and caught.value.reason == "Invalid resource id value."


def test_if_match_preconditions(server: GoogleCalendarServer, service: Resource) -> None:
    event = server.put_event("primary", timed("appt", 5))
    first = service.events().update(
        calendarId="primary", eventId=event["id"], body=timed("first", 5)
    )
    first.headers["If-Match"] = event["etag"]
    fresh = first.execute()
    stale = service.events().update(
        calendarId="primary", eventId=event["id"], body=timed("second", 5)
    )
    stale.headers["If-Match"] = event["etag"]
    with pytest.raises(HttpError) as caught:
        stale.execute()
    assert caught.value.resp.status == 412 and reason(caught.value) == "conditionNotMet"
    cached = service.events().get(calendarId="primary", eventId=event["id"])
    cached.headers["If-None-Match"] = fresh["etag"]
    with pytest.raises(HttpError) as not_modified:
        cached.execute()
    assert not_modified.value.resp.status == 304
    patched = (
        service.events()
        .patch(calendarId="primary", eventId=event["id"], body={"colorId": "5"})
        .execute()
    )
    assert patched["summary"] == "first" and patched["colorId"] == "5"
    service.events().delete(calendarId="primary", eventId=event["id"]).execute()
    with pytest.raises(HttpError) as gone:
        service.events().delete(calendarId="primary", eventId=event["id"]).execute()
    assert gone.value.resp.status == 410 and reason(gone.value) == "deleted"


def test_batch_insert_with_one_conflicting_part(
    server: GoogleCalendarServer, service: Resource
) -> None:
    server.put_event("primary", {"id": "taken0001", **timed("existing", 6)})
    results: dict[str, tuple[Any, HttpError | None]] = {}
    # new_batch_http_request() ignores api_endpoint, so the batch URI is passed explicitly.
    batch = BatchHttpRequest(
        callback=lambda rid, resp, exc: results.update({rid: (resp, exc)}),
        batch_uri=server.batch_url,
    )
    for n, event_id in enumerate(["fresh0001", "taken0001", "fresh0002"]):
        body = {"id": event_id, **timed("batched", 7, 9 + n)}
        batch.add(service.events().insert(calendarId="primary", body=body))
    batch.execute()
    assert results["1"][0]["id"] == "fresh0001" and results["3"][0]["id"] == "fresh0002"
    conflict = results["2"][1]
    assert conflict is not None and conflict.resp.status == 409 and reason(conflict) == "duplicate"
    parts = [r for r in server.requests if r.batch_part]
    assert [(r.method, r.status) for r in parts] == [("POST", 200), ("POST", 409), ("POST", 200)]


def test_batch_rate_limited_part_and_oversized_batch(
    server: GoogleCalendarServer, service: Resource
) -> None:
    server.inject(
        Fault(
            status=429, retry_after=7, batch_part=True, match=lambda r: r.json()["summary"] == "b1"
        )
    )
    errors: list[HttpError | None] = []
    batch = BatchHttpRequest(
        callback=lambda rid, resp, exc: errors.append(exc), batch_uri=server.batch_url
    )
    for n in range(3):
        batch.add(service.events().insert(calendarId="primary", body=timed(f"b{n}", 8, 9 + n)))
    batch.execute()
    assert errors[0] is None and errors[2] is None
    limited = errors[1]
    assert limited is not None and limited.resp.status == 429
    assert reason(limited) == "rateLimitExceeded" and limited.resp["retry-after"] == "7"

    oversized = BatchHttpRequest(batch_uri=server.batch_url)
    for n in range(51):
        oversized.add(service.events().insert(calendarId="primary", body=timed(f"x{n}", 9)))
    with pytest.raises(HttpError) as caught:
        oversized.execute()
    assert caught.value.resp.status == 400
    assert len(server.events("primary")) == 2


def test_revoked_refresh_token(server: GoogleCalendarServer, connect: ServiceFactory) -> None:
    token = server.issue_refresh_token()
    server.revoke_refresh_token(token)
    with pytest.raises(RefreshError, match="invalid_grant"):
        connect(refresh_token=token).events().list(calendarId="primary").execute()


def test_expired_access_token_is_refreshed_transparently(
    server: GoogleCalendarServer, service: Resource
) -> None:
    service.events().list(calendarId="primary").execute()
    server.expire_access_tokens()
    server.clear_requests()
    service.events().list(calendarId="primary").execute()
    assert [(r.path, r.status) for r in server.requests] == [
        ("/calendars/primary/events", 401),
        ("/token", 200),
        ("/calendars/primary/events", 200),
    ]


def test_service_account_and_authorization_code_grants(
    server: GoogleCalendarServer, connect: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    robot = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        {
            "type": "service_account",
            "client_email": "robot@example.iam.gserviceaccount.com",
            "private_key": pem,
            "private_key_id": "k1",
            "token_uri": server.token_url,
        },
        scopes=[CALENDAR_SCOPE],
    )
    connect(creds=robot).events().list(calendarId="primary").execute()

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake speaks plain HTTP
    client = {
        "installed": {
            "client_id": "cid",
            "client_secret": "secret",
            "auth_uri": server.url + "auth",
            "token_uri": server.token_url,
        }
    }
    flow = Flow.from_client_config(client, scopes=[CALENDAR_SCOPE], redirect_uri="http://localhost")
    flow.fetch_token(code="code-from-consent-screen")
    flow.oauth2session.close()
    assert flow.credentials.refresh_token
    connect(creds=flow.credentials).events().list(calendarId="primary").execute()


def test_injected_429_and_reset_reach_the_client(
    server: GoogleCalendarServer, service: Resource
) -> None:
    service.events().list(calendarId="primary").execute()
    server.inject(Fault(status=429, retry_after=3, path_contains="/events"))
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary").execute()
    assert caught.value.resp.status == 429 and caught.value.resp["retry-after"] == "3"
    assert caught.value.error_details[0]["domain"] == "usageLimits"

    server.inject(Fault(kind="reset", method="GET"))
    with pytest.raises(ConnectionError):
        service.events().list(calendarId="primary").execute()
    assert server.requests[-1].status is None
    assert service.events().list(calendarId="primary").execute()["kind"] == "calendar#events"


def test_truncated_response_and_hang(server: GoogleCalendarServer, connect: ServiceFactory) -> None:
    service = connect(timeout=0.2)
    service.events().list(calendarId="primary").execute()
    server.inject(Fault(kind="truncate", method="POST"))
    with pytest.raises(http.client.IncompleteRead):
        service.events().insert(calendarId="primary", body=timed("lost reply", 10)).execute()
    assert [e["summary"] for e in server.events("primary")] == ["lost reply"]

    server.inject(Fault(kind="hang", delay=2.0))
    with pytest.raises(TimeoutError):
        service.events().list(calendarId="primary").execute()


def test_weekly_recurrence_expands_with_cancelled_instance(
    server: GoogleCalendarServer, service: Resource
) -> None:
    master = server.put_event(
        "primary",
        {
            "id": "weekly0001",
            "summary": "clinic",
            "start": {"dateTime": "2024-03-04T09:00:00", "timeZone": "Europe/London"},
            "end": {"dateTime": "2024-03-04T10:00:00", "timeZone": "Europe/London"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=5"],
        },
    )
    events = service.events()
    events.delete(calendarId="primary", eventId="weekly0001_20240311T090000Z").execute()
    listed = events.list(
        calendarId="primary",
        singleEvents=True,
        orderBy="startTime",
        timeMin="2024-03-01T00:00:00Z",
        timeMax="2024-04-30T00:00:00Z",
    ).execute()
    # The UK moves to BST on 2024-03-31: 09:00 London is then 08:00Z.
    assert [i["id"] for i in listed["items"]] == [
        "weekly0001_20240304T090000Z",
        "weekly0001_20240318T090000Z",
        "weekly0001_20240325T090000Z",
        "weekly0001_20240401T080000Z",
    ]
    first = listed["items"][0]
    assert first["recurringEventId"] == master["id"] and "recurrence" not in first
    assert first["originalStartTime"] == {
        "dateTime": "2024-03-04T09:00:00Z",
        "timeZone": "Europe/London",
    }
    # singleEvents=false: the series itself plus its cancelled exception.
    raw = events.list(calendarId="primary").execute()["items"]
    assert [(i["id"], i["status"]) for i in raw] == [
        ("weekly0001", "confirmed"),
        ("weekly0001_20240311T090000Z", "cancelled"),
    ]
    narrow = events.list(
        calendarId="primary",
        singleEvents=True,
        timeMin="2024-03-18T09:30:00Z",
        timeMax="2024-03-18T09:45:00Z",
    ).execute()
    assert [i["id"] for i in narrow["items"]] == ["weekly0001_20240318T090000Z"]


def test_all_day_series_with_until_exdate_and_incremental_expansion(
    server: GoogleCalendarServer, service: Resource
) -> None:
    server.add_calendar("dr.lee@clinic.example", time_zone="Europe/London")
    events = service.events()
    events.insert(
        calendarId="dr.lee@clinic.example",
        body={
            "id": "leave0001",
            "summary": "leave",
            "start": {"date": "2024-03-29"},
            "end": {"date": "2024-03-30"},
            "recurrence": [
                "RRULE:FREQ=DAILY;INTERVAL=1;UNTIL=20240402",
                "EXDATE;VALUE=DATE:20240331",
            ],
        },
    ).execute()
    full = events.list(calendarId="dr.lee@clinic.example", singleEvents=True).execute()
    assert [i["id"] for i in full["items"]] == [
        "leave0001_20240329",
        "leave0001_20240330",
        "leave0001_20240401",
        "leave0001_20240402",
    ]
    server.delete_event("dr.lee@clinic.example", "leave0001")
    changes = events.list(
        calendarId="dr.lee@clinic.example", singleEvents=True, syncToken=full["nextSyncToken"]
    ).execute()["items"]
    assert [(i["id"], i["status"], i["originalStartTime"]) for i in changes[:1]] == [
        ("leave0001_20240329", "cancelled", {"date": "2024-03-29"})
    ]
    assert len(changes) == 4


def test_requests_without_valid_access_token_get_401(server: GoogleCalendarServer) -> None:
    with (
        build(
            "calendar",
            "v3",
            http=httplib2.Http(timeout=5),
            static_discovery=True,
            client_options={"api_endpoint": server.url},
        ) as plain,
        pytest.raises(HttpError) as caught,
    ):
        plain.events().list(calendarId="primary").execute()
    body = json.loads(caught.value.content)
    assert body["error"]["code"] == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    assert caught.value.resp["content-type"] == "application/json; charset=UTF-8"


# -- the world as it is (DESIGN.md §8): what the real service is documented or reported to do


def test_a_deleted_events_id_cannot_be_inserted_again_nor_updated_back(
    server: GoogleCalendarServer, service: Resource
) -> None:
    events = service.events()
    body = {"id": "buffer00002", **timed("buffer", 11)}
    created = events.insert(calendarId="primary", body=body).execute()
    events.delete(calendarId="primary", eventId="buffer00002").execute()
    with pytest.raises(HttpError) as inserted:
        events.insert(calendarId="primary", body=body).execute()
    assert inserted.value.resp.status == 409 and reason(inserted.value) == "duplicate"
    stub = events.get(calendarId="primary", eventId="buffer00002").execute()
    assert stub["status"] == "cancelled" and stub["etag"] != created["etag"]
    revive = events.update(
        calendarId="primary", eventId="buffer00002", body={**body, "status": "confirmed"}
    )
    revive.headers["If-Match"] = stub["etag"]
    with pytest.raises(HttpError) as updated:
        revive.execute()
    assert updated.value.resp.status == 403 and reason(updated.value) == "forbidden"
    with pytest.raises(HttpError) as patched:
        events.patch(
            calendarId="primary", eventId="buffer00002", body={"status": "confirmed"}
        ).execute()
    assert patched.value.resp.status == 403
    with pytest.raises(HttpError) as deleted:
        events.delete(calendarId="primary", eventId="buffer00002").execute()
    assert deleted.value.resp.status == 410 and reason(deleted.value) == "deleted"
    # The user can still restore it from the trash in Google Calendar's UI.
    server.put_event("primary", {**body, "status": "confirmed"})
    restored = events.get(calendarId="primary", eventId="buffer00002").execute()
    assert restored["status"] == "confirmed"


def test_sync_tokens_expire_after_their_lifetime_on_the_fakes_clock(
    server: GoogleCalendarServer, service: Resource, clock: Clock
) -> None:
    assert server.sync_token_lifetime == timedelta(days=1)  # on by default
    events = service.events()
    token = events.list(calendarId="primary").execute()["nextSyncToken"]
    clock.now += timedelta(hours=23)
    token = events.list(calendarId="primary", syncToken=token).execute()["nextSyncToken"]
    clock.now += timedelta(days=1, seconds=1)
    with pytest.raises(HttpError) as caught:
        events.list(calendarId="primary", syncToken=token).execute()
    assert caught.value.resp.status == 410 and reason(caught.value) == "fullSyncRequired"


def test_an_incremental_sync_of_a_touched_open_ended_series_returns_decades_of_instances(
    server: GoogleCalendarServer, service: Resource
) -> None:
    weekly = {
        "id": "weekly0002",
        "summary": "Team",
        "start": {"dateTime": "2026-11-30T09:00:00", "timeZone": "America/Toronto"},
        "end": {"dateTime": "2026-11-30T10:00:00", "timeZone": "America/Toronto"},
        "recurrence": ["RRULE:FREQ=WEEKLY"],
    }
    server.put_event("primary", weekly)
    events = service.events()
    full = events.list(
        calendarId="primary",
        singleEvents=True,
        maxResults=2500,
        timeMin="2026-11-23T00:00:00Z",
        timeMax="2026-12-28T00:00:00Z",
    ).execute()
    assert len(full["items"]) == 4
    server.put_event("primary", {**weekly, "summary": "Team meeting"})  # the user retitles it
    changes = events.list(
        calendarId="primary", singleEvents=True, maxResults=2500, syncToken=full["nextSyncToken"]
    ).execute()["items"]
    assert len(changes) >= 700
    assert changes[-1]["start"]["dateTime"] >= "2040"
    assert all(i["recurringEventId"] == "weekly0002" for i in changes)


def test_exceeded_usage_limits_make_the_calendar_read_only_for_a_while(
    server: GoogleCalendarServer, service: Resource, clock: Clock
) -> None:
    server.put_event("primary", {"id": "kept00001", **timed("kept", 12)})
    events = service.events()
    server.exceed_usage_limits("primary", timedelta(hours=3))
    refused = refused_writes(
        server,
        (
            events.insert(calendarId="primary", body=timed("new", 12)),
            events.update(calendarId="primary", eventId="kept00001", body=timed("x", 12)),
            events.patch(calendarId="primary", eventId="kept00001", body={"colorId": "2"}),
            events.delete(calendarId="primary", eventId="kept00001"),
        ),
        batched=events.insert(calendarId="primary", body=timed("batched", 13)),
    )
    assert len(refused) == 5
    for error in refused:
        assert error.resp.status == 403 and reason(error) == "quotaExceeded"
        assert error.error_details[0]["domain"] == "usageLimits"
        assert error.reason == "Calendar usage limits exceeded."
    # Reading still works; writing again once the spell is over.
    assert [i["summary"] for i in events.list(calendarId="primary").execute()["items"]] == ["kept"]
    clock.now += timedelta(hours=3)
    events.delete(calendarId="primary", eventId="kept00001").execute()
    assert server.events("primary") == []


def test_an_injected_paging_loop_names_the_same_page_again(
    server: GoogleCalendarServer, service: Resource
) -> None:
    for n in range(3):
        server.put_event("primary", timed(f"appt {n}", n + 1))
    events = service.events()
    first = events.list(calendarId="primary", maxResults=1).execute()
    server.loop_paging(1)
    page = events.list(
        calendarId="primary", maxResults=1, pageToken=first["nextPageToken"]
    ).execute()
    assert page["nextPageToken"] == first["nextPageToken"] and "nextSyncToken" not in page
    server.loop_paging(1, fresh_tokens=True)
    again = events.list(
        calendarId="primary", maxResults=1, pageToken=first["nextPageToken"]
    ).execute()
    assert again["nextPageToken"] != first["nextPageToken"] and again["items"] == page["items"]
    after = events.list(
        calendarId="primary", maxResults=1, pageToken=again["nextPageToken"]
    ).execute()
    assert after["items"] == page["items"]  # the loop is over: the chain goes on from here
    assert "nextPageToken" in after


def test_visibility_and_all_day_dates_are_kept_and_bad_values_refused(
    service: Resource,
) -> None:
    events = service.events()
    private = events.insert(
        calendarId="primary",
        body={
            "summary": "Day off",
            "start": {"date": "2024-03-09"},
            "end": {"date": "2024-03-10"},
            "visibility": "private",
            "transparency": "opaque",
        },
    ).execute()
    fetched = events.get(calendarId="primary", eventId=private["id"]).execute()
    assert fetched["visibility"] == "private" and fetched["start"] == {"date": "2024-03-09"}
    # Moved to the next day and made timed by one update: Google takes either form.
    moved = events.update(
        calendarId="primary", eventId=private["id"], body=timed("Held", 11, visibility="private")
    ).execute()
    assert "date" not in moved["start"] and moved["visibility"] == "private"
    for bad in ({"visibility": "secret"}, {"transparency": "busy"}):
        with pytest.raises(HttpError) as refused:
            events.insert(calendarId="primary", body=timed("Held", 12, **bad)).execute()
        assert refused.value.resp.status == 400
    with pytest.raises(HttpError) as empty:
        events.insert(
            calendarId="primary",
            body={"summary": "x", "start": {"date": "2024-03-09"}, "end": {"date": "2024-03-09"}},
        ).execute()
    assert reason(empty.value) == "timeRangeEmpty"


def test_out_of_office_is_timed_on_primary_calendars_and_keeps_its_type(
    server: GoogleCalendarServer, service: Resource
) -> None:
    start = datetime(2024, 3, 9, tzinfo=UTC)
    away = out_of_office(start, start + timedelta(days=2), "UTC")
    events = service.events()
    created = events.insert(calendarId="primary", body=away).execute()
    assert created["eventType"] == "outOfOffice"
    assert created["outOfOfficeProperties"]["autoDeclineMode"] == (
        "declineAllConflictingInvitations"
    )
    listed = events.list(calendarId="primary", singleEvents=True).execute()["items"]
    assert [e["eventType"] for e in listed] == ["outOfOffice"]
    # A date-based (all-day) one is refused; Google's UI writes whole days as timed spans.
    dated = {**away, "start": {"date": "2024-03-09"}, "end": {"date": "2024-03-11"}}
    server.add_calendar("team@example.com")
    refusals = [
        lambda: events.insert(calendarId="primary", body=dated),
        lambda: events.insert(calendarId="team@example.com", body=away),
        lambda: events.update(
            calendarId="primary",
            eventId=created["id"],
            body={**created, "eventType": "default"},
        ),
        lambda: events.insert(calendarId="primary", body=timed("Mail", 9, eventType="fromGmail")),
    ]
    for refused in refusals:
        with pytest.raises(HttpError) as error:
            refused().execute()
        assert error.value.resp.status == 400
    # An update that leaves the type out keeps it.
    kept = events.update(
        calendarId="primary",
        eventId=created["id"],
        body={k: v for k, v in created.items() if k != "eventType"},
    ).execute()
    assert kept["eventType"] == "outOfOffice"
