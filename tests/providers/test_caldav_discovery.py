"""Finding a CalDAV calendar by display name, on real Radicale and Xandikos servers:
through /.well-known/caldav from a bare host (RFC 6764), from a principal's URL, a name
no calendar has, a name two calendars have, a task list of the same name, redirects that
never end or leave https, and replies over the bound; and a server that asks for Digest
only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from caldaemon.errors import CalendarError, TransientError
from caldaemon.providers.caldav.discovery import MAX_DISCOVERY_BYTES
from caldaemon.providers.caldav.http import MAX_REDIRECTS
from tests.providers.contract import MONDAY_10, WINDOW, UserEvent, by_id
from tests.providers.radicale_server import USER, DavServer, Reply, free_port, radicale_server
from tests.providers.test_caldav_provider import requests_during
from tests.providers.test_contract_caldav import SERVERS, CaldavBackend, calendar_object
from tests.providers.xandikos_server import xandikos_server

HOUR = timedelta(hours=1)
WELL_KNOWN = "/.well-known/caldav"


@pytest.fixture(scope="module", params=sorted(SERVERS))
def dav_server(request: pytest.FixtureRequest) -> Iterator[DavServer]:
    with SERVERS[request.param]() as server:
        yield server


@pytest.fixture
def backend(dav_server: DavServer, tmp_path: Path) -> CaldavBackend:
    return CaldavBackend(dav_server, tmp_path)


def unique(name: str) -> str:
    """A display name no other test on the module's server uses."""
    return f"{name} {uuid.uuid4().hex[:8]}"


def calendar_with_event(server: DavServer, name: str, uid: str, components: str = "") -> str:
    path = server.make_calendar(name, components=components)
    server.put(f"{path}{uid}.ics", calendar_object(UserEvent(uid, MONDAY_10, MONDAY_10 + HOUR)))
    return path


def test_a_calendar_named_on_a_bare_host_is_found_through_the_well_known_url(
    backend: CaldavBackend,
) -> None:
    name = unique("Practice")
    path = calendar_with_event(backend.server, name, "p1")
    provider = backend.provider(url=backend.server.base, calendar=name.upper())
    before = len(backend.server.requests)
    listing = provider.changes(WINDOW, None)
    first = backend.server.requests[before]
    assert (first.method, first.path) == ("PROPFIND", WELL_KNOWN)
    assert first.status in (301, 302, 307, 308)
    assert set(by_id(listing)) == {"p1"}
    assert json.loads(listing.token or "")["collection"].endswith(path)
    # Found once: the next poll asks the calendar only.
    sent = requests_during(backend.server, lambda: provider.changes(WINDOW, listing.token))
    assert sent == [("REPORT", path)]


def test_a_calendar_named_on_a_principal_url_is_found_without_the_well_known_url(
    backend: CaldavBackend,
) -> None:
    name = unique("Practice")
    path = calendar_with_event(backend.server, name, "p2")
    provider = backend.provider(url=f"{backend.server.base}/{USER}/", calendar=name)
    listings = []
    sent = requests_during(backend.server, lambda: listings.append(provider.changes(WINDOW, None)))
    assert set(by_id(listings[0])) == {"p2"}
    assert all(WELL_KNOWN not in p for _, p in sent)
    assert sent[-1] == ("REPORT", path)


def test_a_server_without_the_well_known_url_is_asked_at_the_configured_url(
    backend: CaldavBackend,
) -> None:
    name = unique("Practice")
    calendar_with_event(backend.server, name, "p3")
    backend.server.rewrite_next("PROPFIND", lambda reply: Reply(404, {}, b"Not Found"))
    provider = backend.provider(url=backend.server.base + "/", calendar=name)
    sent = requests_during(backend.server, lambda: provider.changes(WINDOW, None))
    assert sent[:2] == [("PROPFIND", WELL_KNOWN), ("PROPFIND", "/")]
    assert set(by_id(provider.changes(WINDOW, None))) == {"p3"}


def test_a_name_no_calendar_has_is_an_error_that_lists_the_names_found(
    backend: CaldavBackend,
) -> None:
    provider = backend.provider(url=backend.server.base + "/", calendar="Nowhere")
    with pytest.raises(CalendarError, match=r"no calendar named 'Nowhere' \(found: .*'Work'"):
        provider.changes(WINDOW, None)


def test_a_name_two_calendars_have_is_an_error_that_names_both(backend: CaldavBackend) -> None:
    name = unique("Team")
    first = backend.server.make_calendar(name)
    second = backend.server.make_calendar(name.upper())  # names match without case
    provider = backend.provider(url=backend.server.base + "/", calendar=name)
    with pytest.raises(CalendarError, match=f"2 calendars are named '{name}'") as raised:
        provider.changes(WINDOW, None)
    assert first in str(raised.value) and second in str(raised.value)
    assert "'calendar'" in str(raised.value)
    assert not isinstance(raised.value, TransientError)


def test_a_task_list_of_the_same_name_is_not_a_second_calendar(backend: CaldavBackend) -> None:
    name = unique("Practice")
    backend.server.make_calendar(name, components="VTODO")
    events = calendar_with_event(backend.server, name, "p4", components="VEVENT")
    provider = backend.provider(url=backend.server.base + "/", calendar=name)
    listing = provider.changes(WINDOW, None)
    assert set(by_id(listing)) == {"p4"}
    assert json.loads(listing.token or "")["collection"].endswith(events)


def test_redirects_that_never_end_stop_after_the_bound(backend: CaldavBackend) -> None:
    def loop(reply: Reply) -> Reply:
        return Reply(301, {"location": WELL_KNOWN}, b"")

    for _ in range(MAX_REDIRECTS + 1):
        backend.server.rewrite_next("PROPFIND", loop)
    provider = backend.provider(url=backend.server.base, calendar="Work")
    before = len(backend.server.requests)
    with pytest.raises(CalendarError, match=f"more than {MAX_REDIRECTS} redirects"):
        provider.changes(WINDOW, None)
    sent = [(r.method, r.path) for r in backend.server.requests[before:]]
    assert sent == [("PROPFIND", WELL_KNOWN)] * (MAX_REDIRECTS + 1)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "to-the-end"])
def test_a_discovery_reply_over_the_bound_is_refused_unread(
    backend: CaldavBackend, declared: bool
) -> None:
    def padded(reply: Reply) -> Reply:
        # Still a well-formed multistatus: only the bound can refuse it.
        body = reply.body + b" " * (MAX_DISCOVERY_BYTES + 1 - len(reply.body))
        return Reply(
            reply.status, {**reply.headers, **({} if declared else {"content-length": ""})}, body
        )

    name = unique("Practice")
    calendar_with_event(backend.server, name, "p5")
    backend.server.rewrite_next("PROPFIND", padded)
    provider = backend.provider(url=f"{backend.server.base}/{USER}/", calendar=name)
    with pytest.raises(CalendarError, match="larger than 4 MiB; refused unread") as raised:
        provider.changes(WINDOW, None)
    assert not isinstance(raised.value, TransientError)
    assert backend.server.rewrite_errors == []
    # The same requests, not padded, find the calendar.
    assert set(by_id(provider.changes(WINDOW, None))) == {"p5"}


def test_a_server_that_asks_for_digest_only_gets_digest(tmp_path: Path) -> None:
    with xandikos_server(digest=True) as server:
        backend = CaldavBackend(server, tmp_path)
        backend.add(UserEvent("d1", MONDAY_10, MONDAY_10 + HOUR))
        provider = backend.provider(url=server.base, calendar="work")
        before = len(server.requests)
        listing = provider.changes(WINDOW, None)
        assert set(by_id(listing)) == {"d1"}
        # Basic refused once, Digest's own challenge once; then Digest on every request.
        assert [r.status for r in server.requests[before:]].count(401) == 2
        before = len(server.requests)
        assert not provider.changes(WINDOW, listing.token).full
        assert [r.status for r in server.requests[before:]] == [207]


def test_a_redirect_from_https_to_http_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with radicale_server(tls=ca) as server:
        backend = CaldavBackend(server, tmp_path)
        # Nothing listens there: a client that followed would fail to connect instead.
        plain = f"http://127.0.0.1:{free_port()}/"
        server.rewrite_next("PROPFIND", lambda reply: Reply(301, {"location": plain}, b""))
        provider = backend.provider(url=server.base, calendar="Work")
        with pytest.raises(CalendarError, match="which is not https; refused") as raised:
            provider.changes(WINDOW, None)
        assert not isinstance(raised.value, TransientError)
        # Over https throughout, the same calendar is found.
        assert provider.changes(WINDOW, None).full
