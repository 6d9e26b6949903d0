"""The provider contract against the caldav provider on real Radicale and Xandikos servers
(one server of each per module, a fresh calendar collection per test). The backend acts
as the user's calendar app: it PUTs and DELETEs objects over plain HTTP, never through
the provider."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from caldaemon.providers.base import ProviderContext
from caldaemon.providers.caldav.provider import CaldavProvider
from caldaemon.providers.caldav.settings import CaldavCalendar
from tests.providers.contract import SELF, TZ, ProviderContract, UserEvent
from tests.providers.radicale_server import PASSWORD, USER, DavServer, radicale_server
from tests.providers.test_contract_ics import vevent
from tests.providers.xandikos_server import xandikos_server

SERVERS = {"radicale": radicale_server, "xandikos": xandikos_server}


def calendar_object(event: UserEvent) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//user//app//EN\r\n"
        + vevent(event)
        + "END:VCALENDAR\r\n"
    )


class CaldavBackend:
    read_only = False

    def __init__(self, server: DavServer, tmp_path: Path) -> None:
        self.server = server
        self.collection = server.make_calendar("Work")
        self.tmp_path = tmp_path
        self.password_file = tmp_path / "caldav-password"
        self.password_file.write_text(PASSWORD + "\n")

    def config(self, **changes: object) -> CaldavCalendar:
        values: dict[str, object] = {
            "provider": "caldav",
            "id": "work",
            "url": self.server.base + self.collection,
            "username": USER,
            "password_file": self.password_file,
            "timeout": timedelta(seconds=5),
        }
        values.update(changes)
        return CaldavCalendar(**values)  # type: ignore[arg-type]

    def provider(self, **changes: object) -> CaldavProvider:
        context = ProviderContext(
            "lee",
            TZ,
            self.tmp_path,
            frozenset({SELF}),
            buffers_to="work",
            sleep=lambda seconds: None,
        )
        return CaldavProvider(self.config(**changes), context)

    def href(self, uid: str) -> str:
        return f"{self.collection}{uid}.ics"

    def add(self, event: UserEvent) -> str:
        self.server.put(self.href(event.uid), calendar_object(event))
        return event.uid

    def change(self, event_id: str, event: UserEvent) -> None:
        self.add(event)

    def remove(self, event_id: str) -> None:
        self.server.delete(self.href(event_id))

    def _find(self, uid: str) -> str:
        for href in self.server.hrefs(self.collection):
            if uid in self.server.get(href).body.decode():
                return href
        raise AssertionError(f"no object with UID {uid}")

    def edit_title(self, event_id: str, title: str) -> None:
        href = self._find(event_id)
        text = self.server.get(href).body.decode()
        self.server.put(href, text.replace("SUMMARY:Grounding time", f"SUMMARY:{title}", 1))

    def count_with_title(self, title: str) -> int:
        return sum(
            self.server.get(href).body.decode().count(f"SUMMARY:{title}\r\n")
            for href in self.server.hrefs(self.collection)
        )


@pytest.fixture(scope="module", params=sorted(SERVERS))
def dav_server(request: pytest.FixtureRequest) -> Iterator[DavServer]:
    with SERVERS[request.param]() as server:
        yield server


@pytest.fixture
def backend(dav_server: DavServer, tmp_path: Path) -> CaldavBackend:
    return CaldavBackend(dav_server, tmp_path)


class TestCaldav(ProviderContract):
    def test_the_password_is_not_shown(self, backend: CaldavBackend) -> None:
        provider = backend.provider(
            url=backend.server.base.replace("://", f"://{USER}:{PASSWORD.replace(' ', '%20')}@")
            + backend.collection
        )
        assert PASSWORD.split()[0] not in provider.describe()
        assert provider.describe().endswith(backend.collection)
