"""The provider contract against the Google provider: the real google-api-python-client
and google-auth, talking to the local fake of Calendar API v3 and Google's token
endpoint, with an OAuth "Desktop app" client file and a stored refresh token.

:class:`GoogleBackend` is the test world other Google tests reuse: the user's side of
the calendar is played through the fake's seeding API (as in Google's own UI), never
through the provider."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon.providers.base import ProviderContext
from caldaemon.providers.google.auth import SCOPE_EVENTS
from caldaemon.providers.google.provider import GoogleProvider
from caldaemon.providers.google.settings import GoogleCalendar
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.providers.contract import SELF, TZ, WINDOW, ProviderContract, UserEvent


class Sleeps(list[float]):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def write_client(path: Path, server: GoogleCalendarServer) -> Path:
    path.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": "caldaemon-test.apps.googleusercontent.com",
                    "client_secret": "s3cret",
                    "auth_uri": server.url + "auth",
                    "token_uri": server.token_url,
                    "redirect_uris": ["http://localhost"],
                }
            }
        )
    )
    return path


def write_token(
    path: Path, server: GoogleCalendarServer, refresh_token: str, scopes: list[str] | None = None
) -> Path:
    path.write_text(
        json.dumps(
            {
                "refresh_token": refresh_token,
                "token_uri": server.token_url,
                "client_id": "caldaemon-test.apps.googleusercontent.com",
                "client_secret": "s3cret",
                "scopes": scopes or [SCOPE_EVENTS],
            }
        )
    )
    path.chmod(0o600)
    return path


def when(moment: datetime, all_day: bool = False) -> dict[str, str]:
    if all_day:
        return {"date": moment.date().isoformat()}
    return {"dateTime": moment.isoformat(), "timeZone": str(moment.tzinfo)}


class GoogleBackend:
    """A Google account's primary calendar on the fake server."""

    read_only = False

    def __init__(
        self,
        server: GoogleCalendarServer,
        root: Path,
        *,
        buffers_to: str | None = "work",
        calendar: str = "primary",
    ) -> None:
        self.server, self.root, self.calendar = server, root, calendar
        self.sleeps = Sleeps()
        self.refresh_token = server.issue_refresh_token()
        self.client = write_client(root / "google-client.json", server)
        self.token = write_token(root / "lee-work.google.json", server, self.refresh_token)
        self.buffers_to = buffers_to
        self.opened: list[GoogleProvider] = []

    def config(self, **changes: Any) -> GoogleCalendar:
        values: dict[str, Any] = {
            "provider": "google",
            "id": "work",
            "calendar": self.calendar,
            "credentials": self.client,
            "token": self.token,
            "api_endpoint": self.server.url,
            "timeout": timedelta(seconds=5),
        }
        return GoogleCalendar(**(values | changes))

    def provider(self, clock: Callable[[], float] | None = None, **changes: Any) -> GoogleProvider:
        context = ProviderContext(
            "lee",
            TZ,
            self.root,
            frozenset({SELF}),
            buffers_to=self.buffers_to,
            sleep=self.sleeps,
            **({"clock": clock} if clock else {}),
        )
        provider = GoogleProvider(self.config(**changes), context)
        self.opened.append(provider)
        return provider

    def close(self) -> None:
        for provider in self.opened:
            provider.close()

    # -- the user, in Google Calendar's UI ---------------------------------------------

    def resource(self, event: UserEvent) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "summary": event.title,
            "start": when(event.start, event.all_day),
            "end": when(event.end, event.all_day),
        }
        if event.transparent:
            resource["transparency"] = "transparent"
        if event.cancelled:
            resource["status"] = "cancelled"
        if event.declined:
            # An invitation from a colleague, declined: the fake marks the calendar
            # owner's own entry ``self``, as Google does.
            resource["organizer"] = {"email": "colleague@example.org"}
            resource["attendees"] = [
                {"email": "colleague@example.org", "responseStatus": "accepted"},
                {"email": self.server_email(), "responseStatus": "declined"},
            ]
        return resource

    def server_email(self) -> str:
        return SELF

    @staticmethod
    def event_id(uid: str) -> str:
        """Google ids are base32hex: the user's uid, encoded so."""
        return base64.b32hexencode(uid.encode()).decode().lower().rstrip("=").ljust(5, "0")

    def add(self, event: UserEvent) -> str:
        stored = self.server.put_event(
            self.calendar, {"id": self.event_id(event.uid), **self.resource(event)}
        )
        return str(stored["id"])

    def change(self, event_id: str, event: UserEvent) -> None:
        self.server.put_event(self.calendar, {"id": event_id, **self.resource(event)})

    def remove(self, event_id: str) -> None:
        self.server.delete_event(self.calendar, event_id)

    def edit_title(self, event_id: str, title: str) -> None:
        current = self.server.get_event(self.calendar, event_id)
        assert current is not None
        self.server.put_event(self.calendar, {**current, "summary": title})

    def count_with_title(self, title: str) -> int:
        return sum(1 for e in self.server.events(self.calendar) if e.get("summary") == title)


@pytest.fixture
def server() -> Iterator[GoogleCalendarServer]:
    # The calendar's owner is the clinician: their attendee entries are marked "self".
    with GoogleCalendarServer(primary_email=SELF) as fake:
        yield fake


class TestGoogle(ProviderContract):
    @pytest.fixture
    def backend(self, server: GoogleCalendarServer, tmp_path: Path) -> Iterator[GoogleBackend]:
        backend = GoogleBackend(server, tmp_path)
        yield backend
        backend.close()

    def test_nothing_waited_and_every_request_succeeded(
        self, backend: GoogleBackend, server: GoogleCalendarServer
    ) -> None:
        backend.provider().changes(WINDOW, None)
        assert backend.sleeps == []
        assert [(r.method, r.path, r.status) for r in server.requests] == [
            ("POST", "/token", 200),
            ("GET", "/calendars/primary/events", 200),
        ]
