"""The provider contract against the outlook provider: the real msal and requests talking
to the local identity + Graph server (tests/fakes/microsoft.py) over TLS verified with the
server's own CA, given through the calendar's ``ca_file``. The account is signed in with
the real device-code flow; the backend acts as the user through the server's own API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon.providers.base import ProviderContext
from caldaemon.providers.outlook import auth as outlook_auth
from caldaemon.providers.outlook.provider import OutlookProvider
from caldaemon.providers.outlook.settings import OutlookCalendar
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
from tests.providers.contract import SELF, TZ, ProviderContract, UserEvent

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
