"""The provider contract against the outlook provider: the real msal and requests talking
to the local identity + Graph server (tests/fakes/microsoft.py) over TLS verified with the
server's own CA, given through the calendar's ``ca_file``. The account is signed in with
the real device-code flow; the backend acts as the user through the server's own API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon.errors import RemoteGone
from caldaemon.model import Create, Delete, Update, Write, content_digest
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.outlook import auth as outlook_auth
from caldaemon.providers.outlook.provider import OutlookProvider
from caldaemon.providers.outlook.settings import OutlookCalendar
from tests.fakes.graph_users import out_of_office
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
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
    day_off,
    hold,
    working_day_of_holds,
)

CLIENT_ID = "caldaemon-desktop"


def outlook_config(server: MicrosoftServer, **overrides: Any) -> OutlookCalendar:
    values: dict[str, Any] = {
        "provider": "outlook",
        "id": "work",
        "tenant": server.tenant,
        "client_id": CLIENT_ID,
        "authority": server.authority,
        "graph_endpoint": server.graph_url,
        "ca_file": Path(server.ca_path),
        "timeout": timedelta(seconds=10),
    }
    return OutlookCalendar(**(values | overrides))


def sign_in(
    server: MicrosoftServer,
    config: OutlookCalendar,
    state_dir: Path,
    user: str | None = None,
    scopes: list[str] | None = None,
) -> Path:
    """The real device-code flow; the user approves the code as soon as it is shown."""
    shown: list[str] = []

    def echo(message: str) -> None:
        shown.append(message)
        server.approve_device_code(user)

    path = outlook_auth.sign_in(config, "lee", state_dir, echo=echo, scopes=scopes)
    assert shown and "enter the code" in shown[0]
    return path


def graph_resource(event: UserEvent) -> dict[str, Any]:
    def when(moment: Any) -> dict[str, str]:
        return {
            "dateTime": moment.astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "America/Toronto",
        }

    resource: dict[str, Any] = {
        "subject": event.title,
        "start": when(event.start),
        "end": when(event.end),
        "isAllDay": event.all_day,
        "showAs": "free" if event.transparent else "busy",
        "isCancelled": event.cancelled,
        "categories": list(event.categories),
    }
    if event.declined:
        resource["responseStatus"] = {"response": "declined", "time": "2026-11-01T00:00:00Z"}
    return resource


class GraphBackend:
    read_only = False

    def __init__(self, server: MicrosoftServer, state_dir: Path) -> None:
        self.server = server
        self.state_dir = state_dir
        self.config = outlook_config(server)
        self.sleeps: list[float] = []
        self.providers: list[OutlookProvider] = []
        sign_in(server, self.config, state_dir)

    def provider(self) -> OutlookProvider:
        context = ProviderContext(
            "lee",
            TZ,
            self.state_dir,
            frozenset({SELF}),
            buffers_to="work",
            sleep=self.sleeps.append,
        )
        provider = OutlookProvider(self.config, context)
        self.providers.append(provider)
        return provider

    def add(self, event: UserEvent) -> str:
        return str(self.server.put_event(DEFAULT_USER, None, graph_resource(event))["id"])

    def change(self, event_id: str, event: UserEvent) -> None:
        self.server.put_event(DEFAULT_USER, None, {**graph_resource(event), "id": event_id})

    def remove(self, event_id: str) -> None:
        self.server.delete_event(DEFAULT_USER, event_id)

    def edit_title(self, event_id: str, title: str) -> None:
        [current] = [e for e in self.server.events(DEFAULT_USER) if e["id"] == event_id]
        self.server.put_event(DEFAULT_USER, None, {**current, "subject": title})

    def count_with_title(self, title: str) -> int:
        return sum(e["subject"] == title for e in self.server.events(DEFAULT_USER))


@pytest.fixture(scope="module")
def microsoft() -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as server:
        yield server


class TestOutlook(ProviderContract):
    @pytest.fixture
    def backend(self, microsoft: MicrosoftServer, tmp_path: Path) -> Iterator[GraphBackend]:
        microsoft.reset_mailbox(DEFAULT_USER)
        backend = GraphBackend(microsoft, tmp_path / "state")
        yield backend
        for provider in backend.providers:
            provider.close()
        assert backend.sleeps == []  # nothing was throttled or retried

    def test_the_description_names_the_calendar_not_a_secret(self, backend: GraphBackend) -> None:
        description = backend.provider().describe()
        assert description == "Outlook calendar 'primary' of the signed-in account"

    # -- holds: private, all-day, out of office (DESIGN.md §10) -------------------------

    def test_every_block_is_written_private_and_busy(self, backend: GraphBackend) -> None:
        blocks = [buffer(), day_off()]
        results = backend.provider().apply([Create(b, b.identity) for b in blocks])
        stored = {e["id"]: e for e in backend.server.events(DEFAULT_USER)}
        for result in results:
            assert result.remote is not None
            event = stored[result.remote.id]
            assert (event["sensitivity"], event["showAs"]) == ("private", "busy")

    def test_an_all_day_hold_is_an_all_day_event_listed_at_local_midnights(
        self, backend: GraphBackend
    ) -> None:
        hold_ = day_off()
        provider = backend.provider()
        [created] = provider.apply([Create(hold_, hold_.identity)])
        assert created.error is None and created.remote is not None
        [stored] = backend.server.events(DEFAULT_USER)
        assert stored["isAllDay"] and stored["originalStartTimeZone"] == "Eastern Standard Time"
        # Rendered in UTC as asked, an all-day event keeps its midnights (its dates).
        assert stored["start"]["dateTime"] == "2026-12-05T00:00:00.0000000"
        assert stored["end"]["dateTime"] == "2026-12-06T00:00:00.0000000"
        listed = by_id(provider.changes(WINDOW, None))[created.remote.id]
        assert listed.all_day and listed.busy and listed.title == "Day off"
        assert (listed.start, listed.end) == (SATURDAY, SATURDAY + timedelta(days=1))
        assert listed.owner == hold_.identity
        # What the core compares to tell a user's edit: the same as what it wrote.
        assert listed.content == content_digest(hold_.start, hold_.end, "Day off")

    def test_an_all_day_hold_moves_turns_timed_and_goes_idempotently(
        self, backend: GraphBackend
    ) -> None:
        provider = backend.provider()
        hold_ = day_off()
        [created] = provider.apply([Create(hold_, hold_.identity)])
        [again] = provider.apply([Create(hold_, hold_.identity)])
        assert created.remote is not None and again.remote is not None
        assert again.remote.id == created.remote.id
        sunday = day_off(SATURDAY + timedelta(days=1))
        [moved] = provider.apply([Update(sunday, hold_.identity, again.remote)])
        assert moved.remote is not None
        timed = hold(FRIDAY + timedelta(hours=9), FRIDAY + timedelta(hours=17))
        [turned] = provider.apply([Update(timed, hold_.identity, moved.remote)])
        assert turned.remote is not None
        [stored] = backend.server.events(DEFAULT_USER)
        assert not stored["isAllDay"] and stored["start"]["dateTime"].startswith("2026-12-04T14")
        [back] = provider.apply([Update(sunday, hold_.identity, turned.remote)])
        assert back.remote is not None
        listed = by_id(provider.changes(WINDOW, None))[created.remote.id]
        assert listed.all_day and listed.start == sunday.start and listed.owner == hold_.identity
        [deleted] = provider.apply([Delete(hold_.identity, back.remote)])
        [twice] = provider.apply([Delete(hold_.identity, back.remote)])
        assert deleted.error is None and isinstance(twice.error, RemoteGone)
        assert backend.server.events(DEFAULT_USER) == []

    def test_a_users_out_of_office_is_read_as_out_of_office_and_busy(
        self, backend: GraphBackend
    ) -> None:
        server = backend.server
        days = server.put_event(
            DEFAULT_USER, None, out_of_office(date(2026, 12, 5), date(2026, 12, 6))
        )
        afternoon = server.put_event(
            DEFAULT_USER,
            None,
            {
                "subject": "Dentist",
                "start": {"dateTime": "2026-12-04T13:00:00", "timeZone": "Eastern Standard Time"},
                "end": {"dateTime": "2026-12-04T17:00:00", "timeZone": "Eastern Standard Time"},
                "showAs": "oof",
            },
        )
        session = backend.add(
            UserEvent("s1", FRIDAY + timedelta(hours=9), FRIDAY + timedelta(hours=10))
        )
        events = by_id(backend.provider().changes(WINDOW, None))
        away = events[days["id"]]
        assert away.out_of_office and away.busy and away.all_day
        assert (away.start, away.end) == (SATURDAY, SATURDAY + timedelta(days=2))
        assert events[afternoon["id"]].out_of_office and not events[afternoon["id"]].all_day
        assert events[afternoon["id"]].start == FRIDAY + timedelta(hours=13)
        assert not events[session].out_of_office

    def test_a_working_day_of_holds_is_one_batch_request(self, backend: GraphBackend) -> None:
        server = backend.server
        provider = backend.provider()
        token = provider.changes(WINDOW, None).token  # signed in: the access token is at hand
        holds = working_day_of_holds()
        server.clear_requests()
        created = provider.apply([Create(h, h.identity) for h in holds])
        assert [r.error for r in created] == [None] * 4
        assert [(r.method, r.path, r.batch_part) for r in server.requests] == [
            ("POST", "/v1.0/$batch", False),
            *[("POST", "/v1.0/me/calendar/events", True)] * 4,
        ]
        # Reading them back costs one request: the incremental listing, no look-ups.
        server.clear_requests()
        assert len(provider.changes(WINDOW, token).events) == 4
        assert [(r.method, r.batch_part) for r in server.requests] == [("GET", False)]
        # The next cycle: the day is no longer full, Saturday's hold moves to Sunday.
        remotes = [r.remote for r in created if r.remote is not None]
        writes: list[Write] = [
            Delete(h.identity, r) for h, r in zip(holds[:3], remotes[:3], strict=True)
        ]
        writes.append(Update(day_off(SATURDAY + timedelta(days=1)), holds[3].identity, remotes[3]))
        server.clear_requests()
        assert [r.error for r in provider.apply(writes)] == [None] * 4
        assert [(r.method, r.batch_part) for r in server.requests] == [
            ("POST", False),
            *[("DELETE", True)] * 3,
            ("PATCH", True),
        ]
