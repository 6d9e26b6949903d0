"""The caldav provider's writes on real Radicale and Xandikos servers beyond the contract:
preconditions, lost replies, and ownership (a marker binds only to the object caldaemon's
write of it made, DESIGN.md §5): a create never takes over an object that is not ours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caldaemon.errors import RemoteGone, WriteConflict
from caldaemon.model import Buffer, Create, Delete, Update
from caldaemon.providers.ics.mapping import PRODID, buffer_component, buffer_uid
from tests.providers.contract import MONDAY_10, WINDOW, UserEvent, buffer, by_id
from tests.providers.radicale_server import DavServer
from tests.providers.test_caldav_provider import requests_during
from tests.providers.test_contract_caldav import SERVERS, CaldavBackend, calendar_object

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module", params=sorted(SERVERS))
def dav_server(request: pytest.FixtureRequest) -> Iterator[DavServer]:
    with SERVERS[request.param]() as server:
        yield server


@pytest.fixture
def backend(dav_server: DavServer, tmp_path: Path) -> CaldavBackend:
    return CaldavBackend(dav_server, tmp_path)


# -- writing ---------------------------------------------------------------------------


def test_a_create_that_finds_its_own_buffer_adopts_it(backend: CaldavBackend) -> None:
    b = buffer()
    uid = buffer_uid(b.identity)
    # An earlier create reached the server but its reply was lost.
    earlier = backend.server.put(f"{backend.collection}{uid}.ics", our_object(b, b.identity))
    provider = backend.provider()
    provider.changes(WINDOW, None)
    results = []
    sent = requests_during(
        backend.server, lambda: results.extend(provider.apply([Create(b, b.identity)]))
    )
    [result] = results
    assert result.error is None and result.remote.id == uid
    assert result.remote.etag == earlier.etag
    assert [m for m, _ in sent] == ["PUT", "GET"]
    assert backend.count_with_title("Grounding time") == 1
    assert by_id(provider.changes(WINDOW, None))[uid].etag == earlier.etag


def test_a_create_over_a_users_object_with_our_uid_is_a_conflict(backend: CaldavBackend) -> None:
    b = buffer()
    uid = buffer_uid(b.identity)
    backend.server.put(
        f"{backend.collection}{uid}.ics",
        calendar_object(UserEvent(uid, MONDAY_10, MONDAY_10 + HOUR, "Mine")),
    )
    [result] = backend.provider().apply([Create(b, b.identity)])
    assert isinstance(result.error, WriteConflict)
    assert backend.count_with_title("Mine") == 1


def test_the_etag_is_fetched_when_the_put_reply_has_none(backend: CaldavBackend) -> None:
    provider = backend.provider()
    b = buffer()
    backend.server.drop_put_etag = True
    try:
        [created] = provider.apply([Create(b, b.identity)])
        moved = buffer(start=b.start + HOUR)
        [updated] = provider.apply([Update(moved, b.identity, created.remote)])
    finally:
        backend.server.drop_put_etag = False
    assert created.remote.etag and updated.remote.etag != created.remote.etag
    listed = by_id(provider.changes(WINDOW, None))[created.remote.id]
    assert listed.etag == updated.remote.etag
    assert backend.server.get(f"{backend.collection}{created.remote.id}.ics").etag == listed.etag


def test_a_repeated_update_whose_reply_was_lost_succeeds(backend: CaldavBackend) -> None:
    provider = backend.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    moved = buffer(start=b.start + HOUR)
    [first] = provider.apply([Update(moved, b.identity, created.remote)])
    [again] = provider.apply([Update(moved, b.identity, created.remote)])
    assert again.error is None and again.remote == first.remote


def test_a_delete_of_a_buffer_the_user_deleted_is_gone(backend: CaldavBackend) -> None:
    provider = backend.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    backend.server.delete(f"{backend.collection}{created.remote.id}.ics")
    [update] = provider.apply([Update(b, b.identity, created.remote)])
    [delete] = provider.apply([Delete(b.identity, created.remote)])
    assert isinstance(update.error, RemoteGone) and isinstance(delete.error, RemoteGone)


def test_writes_go_to_the_collection_and_back_with_preconditions(backend: CaldavBackend) -> None:
    provider = backend.provider()
    provider.changes(WINDOW, None)
    b = buffer()
    sent = requests_during(backend.server, lambda: provider.apply([Create(b, b.identity)]))
    assert sent == [("PUT", f"{backend.collection}{buffer_uid(b.identity)}.ics")]
    text = backend.server.get(sent[0][1]).body.decode()
    assert "X-CALDAEMON-BUFFER:" in text and f"PRODID:{PRODID}" in text
    assert "TRANSP:OPAQUE" in text and "CLASS:PRIVATE" in text
    assert "VALARM" not in text and "ATTENDEE" not in text


# -- ownership -------------------------------------------------------------------------


def test_a_users_copy_of_a_buffer_is_marked_but_not_owned(backend: CaldavBackend) -> None:
    provider = backend.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    uid = created.remote.id
    ours = backend.server.get(f"{backend.collection}{uid}.ics").body.decode()
    # The user duplicates it in their app: a new UID, the same marker.
    backend.server.put(f"{backend.collection}copy.ics", ours.replace(uid, "copy@user"))
    events = by_id(provider.changes(WINDOW, None))
    assert (events[uid].owner, events[uid].marked) == (b.identity, True)
    assert (events["copy@user"].owner, events["copy@user"].marked) == (None, True)
    # Deleting the buffer deletes ours only, never the copy.
    [deleted] = provider.apply([Delete(b.identity, created.remote)])
    assert deleted.error is None and backend.count_with_title("Grounding time") == 1


def our_object(b: Buffer, identity: str, **changes: str) -> str:
    component = buffer_component(b, identity, datetime(2026, 1, 1, tzinfo=UTC))
    for name, value in changes.items():
        component[name] = value
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\n"
        + component.to_ical().decode()
        + "END:VCALENDAR\r\n"
    )


def test_a_create_finding_its_buffer_under_another_name_adopts_it(
    backend: CaldavBackend,
) -> None:
    b = buffer()
    # Stored under a name the server or an app chose: Radicale answers the PUT with 409,
    # Xandikos with 412, both with no-uid-conflict and no href (RFC 4791 §5.3.2.1).
    elsewhere = backend.server.put(f"{backend.collection}renamed.ics", our_object(b, b.identity))
    provider = backend.provider()
    [created] = provider.apply([Create(b, b.identity)])
    assert created.error is None and created.remote.etag == elsewhere.etag
    moved = buffer(start=b.start + HOUR)
    [updated] = provider.apply([Update(moved, b.identity, created.remote)])
    assert updated.error is None
    assert backend.server.hrefs(backend.collection) == [f"{backend.collection}renamed.ics"]
    assert by_id(provider.changes(WINDOW, None))[created.remote.id].start == moved.start


def test_a_create_whose_uid_a_users_object_holds_elsewhere_is_a_conflict(
    backend: CaldavBackend,
) -> None:
    b = buffer()
    uid = buffer_uid(b.identity)
    backend.server.put(
        f"{backend.collection}mine.ics",
        calendar_object(UserEvent(uid, MONDAY_10, MONDAY_10 + HOUR, "Mine")),
    )
    [result] = backend.provider().apply([Create(b, b.identity)])
    assert isinstance(result.error, WriteConflict)
    assert backend.count_with_title("Mine") == 1


def test_a_create_over_our_cancelled_buffer_is_gone(backend: CaldavBackend) -> None:
    b = buffer()
    uid = buffer_uid(b.identity)
    backend.server.put(
        f"{backend.collection}{uid}.ics", our_object(b, b.identity, STATUS="CANCELLED")
    )
    [result] = backend.provider().apply([Create(b, b.identity)])
    assert isinstance(result.error, RemoteGone)  # the core writes the next generation


def test_a_create_over_a_marker_for_another_identity_is_a_conflict(
    backend: CaldavBackend,
) -> None:
    b = buffer()
    uid = buffer_uid(b.identity)
    backend.server.put(f"{backend.collection}{uid}.ics", our_object(b, "someone-else"))
    [result] = backend.provider().apply([Create(b, b.identity)])
    assert isinstance(result.error, WriteConflict)


def test_writes_answered_410_find_the_buffer_gone(backend: CaldavBackend) -> None:
    provider = backend.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    backend.server.fail_next(410)
    [update] = provider.apply([Update(b, b.identity, created.remote)])
    backend.server.fail_next(410)
    [delete] = provider.apply([Delete(b.identity, created.remote)])
    assert isinstance(update.error, RemoteGone) and isinstance(delete.error, RemoteGone)
