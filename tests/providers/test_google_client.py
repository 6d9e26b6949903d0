"""The Calendar API client the google provider builds its requests from (issue 15): the
discovery document caldaemon ships, one events collection per process shared by every
calendar and thread, and each request still sent with its own calendar's credentials."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import googleapiclient.discovery
import googleapiclient.discovery_cache
import pytest

from caldaemon.model import Create
from caldaemon.providers.google import http as google_http
from caldaemon.providers.google.provider import GoogleProvider
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.providers.contract import MONDAY_10, SELF, WINDOW, UserEvent, buffer
from tests.providers.test_contract_google import GoogleBackend

OTHER = "other@example.com"


@pytest.fixture
def server() -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer(primary_email=SELF) as fake:
        fake.add_calendar(OTHER)
        yield fake


@pytest.fixture
def fresh_client() -> Iterator[None]:
    """The process's parsed document and events collections forgotten, before and after."""
    google_http.calendar_discovery.cache_clear()
    google_http.EVENTS.clear()
    yield
    google_http.calendar_discovery.cache_clear()
    google_http.EVENTS.clear()


def test_the_shipped_discovery_document_is_calendar_v3_at_the_recorded_revision() -> None:
    document = google_http.calendar_discovery()
    assert (document["id"], document["name"], document["version"]) == (
        "calendar:v3",
        "calendar",
        "v3",
    )
    # The revision the comment beside DISCOVERY_DOCUMENT records.
    assert document["revision"] == "20261030"
    assert document["rootUrl"] == "https://www.googleapis.com/"
    methods = document["resources"]["events"]["methods"]
    assert {"list", "get", "insert", "update", "delete"} <= set(methods)
    assert "syncToken" in methods["list"]["parameters"]


def test_providers_build_no_client_from_the_librarys_bundle_or_the_network(
    server: GoogleCalendarServer,
    tmp_path: Path,
    fresh_client: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the library's discovery bundle or fetch was used")

    monkeypatch.setattr(googleapiclient.discovery_cache, "get_static_doc", refused)
    monkeypatch.setattr(googleapiclient.discovery, "build", refused)
    backend = GoogleBackend(server, tmp_path)
    backend.add(UserEvent("s1", MONDAY_10, MONDAY_10.replace(minute=50)))
    listing = backend.provider().changes(WINDOW, None)
    backend.close()
    assert len(listing.events) == 1
    assert not [r for r in server.requests if "discovery" in r.path or "$discovery" in r.path]


def test_every_calendar_and_thread_shares_one_events_collection_built_once(
    server: GoogleCalendarServer,
    tmp_path: Path,
    fresh_client: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[str] = []
    build = googleapiclient.discovery.build_from_document

    def counted(*args: Any, **kwargs: Any) -> Any:
        builds.append("build")
        return build(*args, **kwargs)

    monkeypatch.setattr(google_http, "build_from_document", counted)
    providers = [
        _backend(server, tmp_path / f"c{n}", OTHER if n % 2 else "primary").provider()
        for n in range(6)
    ]
    seen: list[object] = []

    def poll(provider: GoogleProvider) -> None:
        listing = provider.changes(WINDOW, None)
        provider.changes(WINDOW, listing.token)
        seen.append(provider.client.events())

    threads = [threading.Thread(target=poll, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for provider in providers:
        provider.close()
    assert len(seen) == len(providers)
    assert all(collection is seen[0] for collection in seen)
    assert builds == ["build"]


def _backend(server: GoogleCalendarServer, root: Path, calendar: str = "primary") -> GoogleBackend:
    root.mkdir()
    return GoogleBackend(server, root, calendar=calendar)


def _token_of(provider: GoogleProvider) -> str:
    credentials, _ = provider.auth.credentials()
    return str(credentials.token)


def test_each_request_goes_with_its_own_calendars_credentials(
    server: GoogleCalendarServer, tmp_path: Path, fresh_client: None
) -> None:
    # Two accounts (two refresh tokens) on one server, their requests built from the one
    # shared collection, reading and writing from several threads at once.
    mine = _backend(server, tmp_path / "mine").provider()
    theirs = _backend(server, tmp_path / "theirs", OTHER).provider()

    # Each account's token is fetched first, so that the threads below share it rather
    # than each refreshing its own.
    syncs = {
        calendar: provider.changes(WINDOW, None).token
        for calendar, provider in (("primary", mine), (OTHER, theirs))
    }
    failures: list[BaseException] = []

    def work(provider: GoogleProvider, hour: int) -> None:
        try:
            provider.changes(WINDOW, syncs[provider.config.calendar])
            start = MONDAY_10.replace(hour=hour)
            [result] = provider.apply([Create(buffer(start=start), f"{hour:040x}")])
            assert result.error is None
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=work, args=(provider, 9 + n))
        for n, provider in enumerate([mine, theirs, mine, theirs])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    access = {"primary": _token_of(mine), OTHER: _token_of(theirs)}
    mine.close()
    theirs.close()
    assert access["primary"] != access[OTHER]
    sent = [r for r in server.requests if r.path.startswith("/calendars/")]
    assert len([r for r in sent if r.batch_part]) == 4
    for request in sent:
        calendar = request.path.split("/")[2].replace("%40", "@")
        assert request.headers["authorization"] == f"Bearer {access[calendar]}", request.path
    assert {r.path.split("/")[2].replace("%40", "@") for r in sent} == set(access)


def test_a_request_sent_without_its_calendars_credentials_fails_rather_than_going_out(
    fresh_client: None,
) -> None:
    request = google_http.EVENTS.get(None).list(calendarId="primary")
    with pytest.raises(RuntimeError, match="without its calendar's credentials"):
        request.execute()
