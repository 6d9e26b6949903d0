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

from caldaemon.errors import RemoteGone
from caldaemon.model import Create, Delete, Update, Write, content_digest
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.google.auth import SCOPE_EVENTS
from caldaemon.providers.google.provider import GoogleProvider
from caldaemon.providers.google.settings import GoogleCalendar
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.google_event import out_of_office
from tests.providers.contract import (
    FRIDAY,
    SATURDAY,
    SELF,
    TZ,
    WINDOW,
    ProviderContract,
    UserEvent,
    buffer,
    by_id,
    hold,
    working_day_of_holds,
)


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

    # -- holds: private, all-day, out of office (DESIGN.md §10) -------------------------

    def test_every_block_is_written_private_and_busy(
        self, backend: GoogleBackend, server: GoogleCalendarServer
    ) -> None:
        blocks = [buffer(), hold(SATURDAY, SATURDAY + timedelta(days=1), all_day=True)]
        results = backend.provider().apply([Create(b, b.identity) for b in blocks])
        for result in results:
            assert result.remote is not None
            stored = server.get_event("primary", result.remote.id)
            assert stored is not None
            assert (stored["visibility"], stored["transparency"]) == ("private", "opaque")

    def test_an_all_day_hold_is_an_all_day_event_listed_at_local_midnights(
        self, backend: GoogleBackend, server: GoogleCalendarServer
    ) -> None:
        server.add_calendar(SELF, time_zone="America/Toronto")  # the primary's zone
        day_off = hold(SATURDAY, SATURDAY + timedelta(days=1), all_day=True)
        provider = backend.provider()
        [created] = provider.apply([Create(day_off, day_off.identity)])
        assert created.error is None and created.remote is not None
        stored = server.get_event("primary", created.remote.id)
        assert stored is not None
        assert (stored["start"], stored["end"]) == ({"date": "2026-12-05"}, {"date": "2026-12-06"})
        listed = by_id(provider.changes(WINDOW, None))[created.remote.id]
        assert listed.all_day and listed.busy and listed.title == "Day off"
        assert (listed.start, listed.end) == (SATURDAY, SATURDAY + timedelta(days=1))
        assert listed.owner == day_off.identity and listed.etag == created.remote.etag
        # What the core compares to tell a user's edit: the same as what it wrote.
        assert listed.content == content_digest(day_off.start, day_off.end, "Day off")

    def test_an_all_day_hold_moves_turns_timed_and_goes_idempotently(
        self, backend: GoogleBackend, server: GoogleCalendarServer
    ) -> None:
        provider = backend.provider()
        day_off = hold(SATURDAY, SATURDAY + timedelta(days=1), all_day=True)
        [created] = provider.apply([Create(day_off, day_off.identity)])
        [again] = provider.apply([Create(day_off, day_off.identity)])
        assert created.remote is not None and again.remote == created.remote
        sunday = SATURDAY + timedelta(days=1)
        moved = hold(sunday, sunday + timedelta(days=1), all_day=True)
        [on_sunday] = provider.apply([Update(moved, day_off.identity, created.remote)])
        assert on_sunday.remote is not None
        assert server.get_event("primary", created.remote.id)["start"] == {"date": "2026-12-06"}
        timed = hold(FRIDAY + timedelta(hours=9), FRIDAY + timedelta(hours=17))
        [turned] = provider.apply([Update(timed, day_off.identity, on_sunday.remote)])
        assert turned.remote is not None
        listed = by_id(provider.changes(WINDOW, None))[created.remote.id]
        assert not listed.all_day and (listed.start, listed.end) == (timed.start, timed.end)
        [back] = provider.apply([Update(moved, day_off.identity, turned.remote)])
        assert back.remote is not None
        listed = by_id(provider.changes(WINDOW, None))[created.remote.id]
        assert listed.all_day and listed.start == sunday and listed.owner == day_off.identity
        [deleted] = provider.apply([Delete(day_off.identity, back.remote)])
        [twice] = provider.apply([Delete(day_off.identity, back.remote)])
        assert deleted.error is None and isinstance(twice.error, RemoteGone)
        assert created.remote.id not in by_id(provider.changes(WINDOW, None))

    def test_a_users_out_of_office_is_read_as_out_of_office_and_busy(
        self, backend: GoogleBackend, server: GoogleCalendarServer
    ) -> None:
        server.add_calendar(SELF, time_zone="America/Toronto")
        # Two whole days ("All day" ticked: Google keeps them timed) and one afternoon.
        days = server.put_event(
            "primary", out_of_office(SATURDAY, SATURDAY + timedelta(days=2), "America/Toronto")
        )
        afternoon = server.put_event(
            "primary",
            out_of_office(FRIDAY + timedelta(hours=13), FRIDAY + timedelta(hours=17), "UTC"),
        )
        session = backend.add(
            UserEvent("s1", FRIDAY + timedelta(hours=9), FRIDAY + timedelta(hours=10))
        )
        events = by_id(backend.provider().changes(WINDOW, None))
        away = events[days["id"]]
        assert away.out_of_office and away.busy and not away.all_day
        assert (away.start, away.end) == (SATURDAY, SATURDAY + timedelta(days=2))
        assert events[afternoon["id"]].out_of_office
        assert events[afternoon["id"]].start == FRIDAY + timedelta(hours=13)
        assert not events[session].out_of_office

    def test_a_working_day_of_holds_is_one_batch_request(
        self, backend: GoogleBackend, server: GoogleCalendarServer
    ) -> None:
        provider = backend.provider()
        token = provider.changes(WINDOW, None).token  # signed in: the access token is at hand
        holds = working_day_of_holds()
        server.clear_requests()
        created = provider.apply([Create(h, h.identity) for h in holds])
        assert [r.error for r in created] == [None] * 4
        assert [(r.method, r.path, r.batch_part) for r in server.requests] == [
            ("POST", "/batch/calendar/v3", False),
            *[("POST", "/calendars/primary/events", True)] * 4,
        ]
        # Reading them back costs one request: the incremental listing, no look-ups.
        server.clear_requests()
        assert len(provider.changes(WINDOW, token).events) == 4
        assert [(r.method, r.batch_part) for r in server.requests] == [("GET", False)]
        # The next cycle: the day is no longer full, Saturday's hold moves to Sunday.
        sunday = SATURDAY + timedelta(days=1)
        remotes = [r.remote for r in created if r.remote is not None]
        moved = hold(sunday, sunday + timedelta(days=1), all_day=True)
        writes: list[Write] = [
            Delete(h.identity, r) for h, r in zip(holds[:3], remotes[:3], strict=True)
        ]
        writes.append(Update(moved, holds[3].identity, remotes[3]))
        server.clear_requests()
        assert [r.error for r in provider.apply(writes)] == [None] * 4
        assert [(r.method, r.batch_part) for r in server.requests] == [
            ("POST", False),
            *[("DELETE", True)] * 3,
            ("PUT", True),
        ]
