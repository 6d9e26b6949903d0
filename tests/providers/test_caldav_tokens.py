"""The caldav provider's sync-tokens on real Radicale and Xandikos servers: a stored token
the server refuses, in any form (one it never issued, one a restored server forgot, a
precondition error under any status), costs one full listing and never sticks the
calendar; a reply cut short (507, RFC 6578 §3.6) is never taken for the whole window."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from caldaemon.errors import TransientError
from caldaemon.model import Window
from caldaemon.providers.caldav.provider import CaldavProvider
from tests.providers.contract import MONDAY_10, WINDOW, UserEvent, by_id
from tests.providers.radicale_server import DavServer, Radicale, Reply, Rewrite
from tests.providers.test_caldav_provider import requests_during
from tests.providers.test_contract_caldav import SERVERS, CaldavBackend

HOUR = timedelta(hours=1)
VALID_SYNC_TOKEN = b'<?xml version="1.0"?><D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>'
# How each server refuses a token it does not know (their own sources: Radicale
# app/report.py, Xandikos sync.py).
REFUSES_WITH = {"radicale": 403, "xandikos": 412}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def dav_server(request: pytest.FixtureRequest) -> Iterator[DavServer]:
    with SERVERS[request.param]() as server:
        yield server


@pytest.fixture
def backend(dav_server: DavServer, tmp_path: Path) -> Iterator[CaldavBackend]:
    yield CaldavBackend(dav_server, tmp_path)
    errors, dav_server.rewrite_errors[:] = list(dav_server.rewrite_errors), []
    assert errors == [], "a reply rewrite failed: the server's own reply was served"


def with_sync(token: str | None, sync: str) -> str:
    data = json.loads(token or "")
    data["sync"] = sync
    return json.dumps(data)


def session(uid: str, hours: int = 0) -> UserEvent:
    return UserEvent(uid, MONDAY_10 + hours * HOUR, MONDAY_10 + (hours + 1) * HOUR)


def reports_answered(server: DavServer, since: int) -> list[int]:
    return [r.status for r in server.requests[since:] if r.method == "REPORT"]


def assert_polls_resume(backend: CaldavBackend, provider: CaldavProvider, token: Any) -> None:
    """The poll after a refusal is the usual one: one request, nothing new."""
    listings = []
    sent = requests_during(backend.server, lambda: listings.append(provider.changes(WINDOW, token)))
    assert sent == [("REPORT", backend.collection)]
    assert not listings[0].full and listings[0].events == ()


@pytest.mark.parametrize("forged", [False, True], ids=["foreign", "well-formed"])
def test_a_sync_token_the_server_never_issued_costs_one_full_listing(
    backend: CaldavBackend, forged: bool
) -> None:
    backend.add(session("s1"))
    provider = backend.provider()
    first = provider.changes(WINDOW, None).token
    # Foreign: another server's; well-formed: this server's form, never issued by it.
    issued = json.loads(first or "")["sync"]
    never = re.sub(r"[0-9a-f]{16,}", lambda m: "0" * len(m.group()), issued)
    token = with_sync(first, never if forged else "urn:x:1")
    backend.add(session("s2", 2))
    since = len(backend.server.requests)
    listing = provider.changes(WINDOW, token)
    assert reports_answered(backend.server, since)[0] == REFUSES_WITH[backend.server.name]
    assert listing.full and set(by_id(listing)) == {"s1", "s2"}
    assert_polls_resume(backend, provider, listing.token)


def test_a_token_a_restored_server_forgot_never_sticks_the_calendar(
    backend: CaldavBackend,
) -> None:
    backend.add(session("s1"))
    provider = backend.provider()
    token = provider.changes(WINDOW, None).token
    server = backend.server
    server.restore(backend.collection, server.objects(backend.collection))
    backend.add(session("s2", 2))  # booked after the restore
    since = len(server.requests)
    listing = provider.changes(WINDOW, token)
    assert reports_answered(server, since)[0] == REFUSES_WITH[server.name]
    assert listing.full and set(by_id(listing)) == {"s1", "s2"}
    assert_polls_resume(backend, provider, listing.token)
    backend.add(session("s3", 4))
    later = provider.changes(WINDOW, listing.token)
    assert later.full and set(by_id(later)) == {"s1", "s2", "s3"}


def test_a_token_radicale_forgot_with_its_cache_costs_one_full_listing(
    backend: CaldavBackend,
) -> None:
    server = backend.server
    if not isinstance(server, Radicale):
        pytest.skip("Xandikos keeps its tokens in the collection's git history")
    backend.add(session("s1"))
    provider = backend.provider()
    token = provider.changes(WINDOW, None).token
    backend.add(session("s2", 2))
    server.forget_sync_tokens()
    since = len(server.requests)
    listing = provider.changes(WINDOW, token)
    assert reports_answered(server, since)[0] == 403
    assert listing.full and set(by_id(listing)) == {"s1", "s2"}
    assert_polls_resume(backend, provider, listing.token)


def refusal(kind: str, collection: str) -> Rewrite:
    """A server's reply to a sync-collection refusing the token, as ``kind`` says."""
    if kind == "207 refused inside":  # the collection's own response refuses it
        body = (
            f'<D:multistatus xmlns:D="DAV:"><D:response><D:href>{collection}</D:href>'
            "<D:status>HTTP/1.1 403 Forbidden</D:status><D:error><D:valid-sync-token/>"
            "</D:error></D:response></D:multistatus>"
        ).encode()
        return lambda _: Reply(207, {"content-type": "application/xml"}, body)
    status, form = kind.split(" ", 1)
    body = VALID_SYNC_TOKEN if form == "valid-sync-token" else b""
    return lambda _: Reply(int(status), {"content-type": "application/xml"}, body)


REFUSALS = [
    "403 valid-sync-token",
    "409 valid-sync-token",
    "412 valid-sync-token",
    "412 bare",
    "400 bare",
    "207 refused inside",
]


@pytest.mark.parametrize("kind", REFUSALS)
def test_a_token_refused_in_any_form_costs_one_full_listing(
    backend: CaldavBackend, kind: str
) -> None:
    backend.add(session("s1"))
    provider = backend.provider()
    token = provider.changes(WINDOW, None).token
    backend.add(session("s2", 2))
    backend.server.rewrite_next("REPORT", refusal(kind, backend.collection))
    since = len(backend.server.requests)
    listing = provider.changes(WINDOW, token)
    assert reports_answered(backend.server, since)[0] == int(kind.split()[0])
    assert listing.full and set(by_id(listing)) == {"s1", "s2"}
    assert_polls_resume(backend, provider, listing.token)


def cut_short(collection: str, keep: int, token: str | None = None) -> Any:
    """A multistatus cut short as RFC 6578 §3.6 shows it: ``keep`` members, then a 507
    response for the collection itself; its sync-token (when given) names the point
    reached, not the collection's current state."""

    def rewrite(reply: Reply) -> Reply:
        root = ElementTree.fromstring(reply.body)
        for extra in root.findall("{DAV:}response")[keep:]:
            root.remove(extra)
        response = ElementTree.SubElement(root, "{DAV:}response")
        ElementTree.SubElement(response, "{DAV:}href").text = collection
        status = ElementTree.SubElement(response, "{DAV:}status")
        status.text = "HTTP/1.1 507 Insufficient Storage"
        error = ElementTree.SubElement(response, "{DAV:}error")
        ElementTree.SubElement(error, "{DAV:}number-of-matches-within-limits")
        if token is not None:
            found = root.find("{DAV:}sync-token")
            assert found is not None
            found.text = token
        return Reply(207, {"content-type": "application/xml"}, ElementTree.tostring(root))

    return rewrite


def test_a_sync_reply_cut_short_costs_a_listing_under_the_current_token(
    backend: CaldavBackend,
) -> None:
    backend.add(session("s1"))
    provider = backend.provider()
    first = provider.changes(WINDOW, None)
    backend.add(session("s2", 2))
    backend.add(session("s3", 4))
    reached = json.loads(first.token or "")["sync"]
    backend.server.rewrite_next("REPORT", cut_short(backend.collection, 1, reached))
    listings = []
    sent = requests_during(
        backend.server, lambda: listings.append(provider.changes(WINDOW, first.token))
    )
    # The token of a reply cut short names part of the changes: the current one is read.
    assert [m for m, _ in sent] == ["REPORT", "PROPFIND", "REPORT"]
    assert listings[0].full and set(by_id(listings[0])) == {"s1", "s2", "s3"}
    assert_polls_resume(backend, provider, listings[0].token)


def test_a_listing_cut_short_is_transient_and_never_taken_for_the_window(
    backend: CaldavBackend,
) -> None:
    for n in range(3):
        backend.add(session(f"s{n}", 2 * n))
    provider = backend.provider()
    backend.server.rewrite_next("REPORT", cut_short(backend.collection, 1))
    with pytest.raises(TransientError, match="cut the listing short"):
        provider.changes(WINDOW, None)
    assert set(by_id(provider.changes(WINDOW, None))) == {"s0", "s1", "s2"}


def test_a_change_after_a_refusal_is_seen_by_the_next_poll(backend: CaldavBackend) -> None:
    backend.add(session("s1"))
    provider = backend.provider()
    token = provider.changes(WINDOW, None).token
    backend.server.rewrite_next("REPORT", refusal("412 valid-sync-token", backend.collection))
    listing = provider.changes(WINDOW, token)
    wider = Window(WINDOW.start, WINDOW.end + timedelta(days=1))
    backend.add(session("s2", 2))
    assert set(by_id(provider.changes(wider, listing.token))) == {"s1", "s2"}
    backend.add(session("s3", 4))
    assert set(by_id(provider.changes(WINDOW, listing.token))) == {"s1", "s2", "s3"}
