"""Both fakes refuse writes to a calendar the account may only read, as the real services
do, driven through the real clients: Google (google-api-python-client) answers 403
requiredAccessLevel for a reader or freeBusyReader, single requests and batch parts
alike; Graph (requests) answers 403 ErrorAccessDenied for a calendar with canEdit false.
Reads still work, and the calendar keeps its contents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from .google_calendar import GoogleCalendarServer
from .microsoft import DEFAULT_USER, MicrosoftServer
from .test_google_calendar_fake import Clock, ServiceFactory, connect, refused_writes, timed
from .test_microsoft_fake import event_body

__all__ = ["connect"]  # the fixture that builds Calendar services on ``server``


@pytest.fixture
def server() -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer(clock=Clock()) as fake:
        yield fake


def google_error(error: HttpError) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.content)["error"]
    return body


@pytest.mark.parametrize("role", ["reader", "freeBusyReader"])
def test_google_refuses_every_write_to_a_calendar_it_may_only_read(
    server: GoogleCalendarServer, connect: ServiceFactory, role: str
) -> None:
    server.put_event("primary", {"id": "kept00001", **timed("kept", 12)})
    server.share("primary", role)
    events = connect().events()
    before = server.events("primary")
    refused = refused_writes(
        server,
        (
            events.insert(calendarId="primary", body=timed("new", 12)),
            events.insert(calendarId="primary", body={"id": "kept00001", **timed("again", 12)}),
            events.update(calendarId="primary", eventId="kept00001", body=timed("x", 12)),
            events.patch(calendarId="primary", eventId="kept00001", body={"colorId": "2"}),
            events.delete(calendarId="primary", eventId="kept00001"),
            events.delete(calendarId="primary", eventId="missing001"),
        ),
        batched=events.insert(calendarId="primary", body=timed("batched", 13)),
    )
    assert len(refused) == 7
    for error in refused:
        assert error.resp.status == 403
        body = google_error(error)
        assert body["errors"] == [
            {
                "domain": "calendar",
                "reason": "requiredAccessLevel",
                "message": "You need to have writer access to this calendar.",
            }
        ]
        assert (body["code"], body["message"]) == (
            403,
            "You need to have writer access to this calendar.",
        )
    assert server.events("primary") == before
    listed = events.list(calendarId="primary").execute()
    assert listed["accessRole"] == role and [e["id"] for e in listed["items"]] == ["kept00001"]


def test_google_lets_a_writer_write(server: GoogleCalendarServer, connect: ServiceFactory) -> None:
    server.share("primary", "writer")
    created = connect().events().insert(calendarId="primary", body=timed("new", 12)).execute()
    assert [e["id"] for e in server.events("primary")] == [created["id"]]


@pytest.fixture
def microsoft(monkeypatch: pytest.MonkeyPatch) -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
        yield fake


def test_graph_refuses_every_write_to_a_calendar_shared_to_view(
    microsoft: MicrosoftServer,
) -> None:
    shared = microsoft.add_calendar(DEFAULT_USER, "Shared", can_edit=False)
    kept = microsoft.put_event(
        DEFAULT_USER, shared, event_body("kept", "2026-12-01T10:00:00", "2026-12-01T10:50:00")
    )
    base = f"{microsoft.graph_url}/me"
    new = event_body("new", "2026-12-01T12:00:00", "2026-12-01T12:50:00")
    with requests.Session() as http:
        http.verify = microsoft.ca_path
        http.headers["Authorization"] = f"Bearer {microsoft.mint_access_token()}"
        answers = [
            http.post(f"{base}/calendars/{shared}/events", json=new),
            http.patch(f"{base}/calendars/{shared}/events/{kept['id']}", json={"subject": "x"}),
            http.patch(f"{base}/events/{kept['id']}", json={"subject": "x"}),
            http.delete(f"{base}/events/{kept['id']}"),
        ]
        batch = http.post(
            f"{microsoft.graph_url}/$batch",
            json={
                "requests": [
                    {
                        "id": "1",
                        "method": "POST",
                        "url": f"/me/calendars/{shared}/events",
                        "body": new,
                        "headers": {"Content-Type": "application/json"},
                    }
                ]
            },
        )
        listed = http.get(f"{base}/calendars/{shared}/events")
        mine = http.post(f"{base}/events", json=new)  # the default calendar: their own
    for answer in answers:
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "ErrorAccessDenied"
        assert answer.json()["error"]["message"] == (
            "Access is denied. Check credentials and try again."
        )
    [part] = batch.json()["responses"]
    assert part["status"] == 403 and part["body"]["error"]["code"] == "ErrorAccessDenied"
    assert listed.status_code == 200
    assert [e["subject"] for e in listed.json()["value"]] == ["kept"]
    assert mine.status_code == 201
