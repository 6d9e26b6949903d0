"""The fake Graph is as unkind as the real one, by default (tests/fakes/graph_world.py, each
behaviour with its source there): raw HTTP against the fake, one behaviour per test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from .microsoft import DEFAULT_USER, MicrosoftServer, RecordedRequest
from .test_microsoft_fake import WINDOW, collect_delta, event_body

DELTA = "/me/calendarView/delta"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
        monkeypatch.setenv("CURL_CA_BUNDLE", fake.ca_path)
        yield fake


@pytest.fixture
def http(server: MicrosoftServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.verify = server.ca_path
        session.headers["Authorization"] = f"Bearer {server.mint_access_token()}"
        yield session


def seed(server: MicrosoftServer, day: int, hour: int = 9) -> dict[str, Any]:
    when = f"2026-12-{day:02d}T{hour:02d}"
    return server.put_event(
        DEFAULT_USER, None, event_body("Session", f"{when}:00:00", f"{when}:50:00")
    )


def seed_many(server: MicrosoftServer, count: int) -> None:
    for n in range(count):
        seed(server, 1 + n // 12, 8 + n % 12)  # inside WINDOW: 1-6 Dec


def entries(pages: list[list[dict[str, Any]]]) -> list[tuple[str, bool]]:
    return [(e["id"], "@removed" in e) for page in pages for e in page]


# -- delta ------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["$expand", "$select", "$filter", "$orderby", "$search"])
def test_delta_refuses_query_options_it_does_not_support(
    server: MicrosoftServer, http: requests.Session, option: str
) -> None:
    value = {"$expand": "singleValueExtendedProperties", "$select": "subject"}.get(option, "x")
    refused = http.get(f"{server.graph_url}{DELTA}", params={**WINDOW, option: value})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("Parsing OData Select and Expand failed")


def daily_series(server: MicrosoftServer, hour: int) -> dict[str, Any]:
    when = f"2026-11-30T{hour:02d}"
    return server.put_event(
        DEFAULT_USER,
        None,
        {
            **event_body("Clinic", f"{when}:00:00", f"{when}:30:00"),
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "noEnd", "startDate": "2026-11-30"},
            },
        },
    )


def test_maxpagesize_is_ignored_when_series_expand(
    server: MicrosoftServer, http: requests.Session
) -> None:
    server.rules.mid_round_failure_every = None
    seed_many(server, 25)
    prefer = {"Prefer": "odata.maxpagesize=200"}
    url = f"{server.graph_url}{DELTA}"
    honoured = http.get(url, params=WINDOW, headers=prefer)
    assert honoured.headers["Preference-Applied"] == "odata.maxpagesize=200"
    assert len(honoured.json()["value"]) == 25 and "@odata.deltaLink" in honoured.json()
    for hour in (6, 7, 8):
        daily_series(server, hour)  # 3 x 7 occurrences in the week
    first = http.get(url, params=WINDOW, headers=prefer)
    assert "Preference-Applied" not in first.headers  # not honoured, and not said to be
    pages, _ = collect_delta(http, url, params=WINDOW, headers=prefer)
    assert [len(p) for p in pages] == [10, 10, 10, 10, 6]


def test_every_third_continuation_fails_once_with_503_then_504(
    server: MicrosoftServer, http: requests.Session
) -> None:
    seed_many(server, 65)  # 7 pages of 10: 6 continuations, and the retries of 2
    prefer = {"Prefer": "odata.maxpagesize=10"}
    first = http.get(f"{server.graph_url}{DELTA}", params=WINDOW, headers=prefer)
    link, statuses, listed = first.json()["@odata.nextLink"], [], 10
    while link:
        answer = http.get(link, headers=prefer)
        statuses.append(answer.status_code)
        if answer.ok:  # a failed page is sent again under the same link
            listed += len(answer.json()["value"])
            link = answer.json().get("@odata.nextLink")
    assert statuses == [200, 200, 503, 200, 200, 504, 200, 200]
    assert listed == 65
    [unavailable] = [r for r in server.requests if r.status == 503]
    assert unavailable.query_string.startswith("$skiptoken=")


def test_a_delta_chain_expires_with_410_after_its_rounds(
    server: MicrosoftServer, http: requests.Session
) -> None:
    seed(server, 1)
    _, link = collect_delta(http, f"{server.graph_url}{DELTA}", params=WINDOW)
    for _ in range(server.rules.delta_rounds or 0):
        _, link = collect_delta(http, link)
    gone = http.get(link)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "syncStateNotFound"


def test_removed_comes_for_ids_never_seen_and_changed_outside_the_window_after_entries(
    server: MicrosoftServer, http: requests.Session
) -> None:
    listed = seed(server, 1)
    far = server.put_event(
        DEFAULT_USER, None, event_body("Far", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    )
    _, link = collect_delta(http, f"{server.graph_url}{DELTA}", params=WINDOW)
    fleeting = seed(server, 2)
    server.delete_event(DEFAULT_USER, fleeting["id"])  # created and deleted between rounds
    server.put_event(DEFAULT_USER, None, {**far, "subject": "Far, renamed"})
    server.put_event(
        DEFAULT_USER,
        None,
        {**listed, **event_body("Out", "2027-01-05T09:00:00", "2027-01-05T10:00:00")},
    )
    server.put_event(
        DEFAULT_USER,
        None,
        {**listed, **event_body("Back", "2026-12-03T09:00:00", "2026-12-03T10:00:00")},
    )
    pages, _ = collect_delta(http, link)
    # The event moved out and back in: its entry, then a stale @removed (order is not
    # guaranteed); the other two were never listed.
    assert entries(pages) == [
        (listed["id"], False),
        (fleeting["id"], True),
        (far["id"], True),
        (listed["id"], True),
    ]


def test_every_fifth_deletion_is_never_reported(
    server: MicrosoftServer, http: requests.Session
) -> None:
    events = [seed(server, day) for day in range(1, 6)]
    _, link = collect_delta(http, f"{server.graph_url}{DELTA}", params=WINDOW)
    for event in events:
        server.delete_event(DEFAULT_USER, event["id"])
    pages, link = collect_delta(http, link)
    assert entries(pages) == [(e["id"], True) for e in events[:4]]
    assert collect_delta(http, link)[0] == [[]]  # not later either
    full, _ = collect_delta(http, f"{server.graph_url}{DELTA}", params=WINDOW)
    assert full == [[]]  # a full listing no longer has it


def test_a_looping_chain_repeats_its_page_and_link(
    server: MicrosoftServer, http: requests.Session
) -> None:
    server.rules.mid_round_failure_every = None
    seed_many(server, 25)
    prefer = {"Prefer": "odata.maxpagesize=10"}
    first = http.get(f"{server.graph_url}{DELTA}", params=WINDOW, headers=prefer)
    link = first.json()["@odata.nextLink"]
    server.looping_delta = True
    first, second = http.get(link).json(), http.get(link).json()
    assert first == second and first["@odata.nextLink"] == link


# -- changeKeys, If-Match -------------------------------------------------------------------


def test_every_fifth_read_renews_the_change_key_of_what_it_read_without_an_edit(
    server: MicrosoftServer, http: requests.Session
) -> None:
    event = seed(server, 1)
    url = f"{server.graph_url}/me/events/{event['id']}"
    reads = [http.get(url).json() for _ in range(6)]
    etags = [r["@odata.etag"] for r in reads]
    assert etags[:5] == [event["@odata.etag"]] * 5 and etags[5] != etags[4]
    assert reads[5]["lastModifiedDateTime"] == event["lastModifiedDateTime"]
    assert reads[5]["subject"] == event["subject"]
    _, link = collect_delta(http, f"{server.graph_url}{DELTA}", params=WINDOW)  # read 7
    http.get(url)  # read 8
    pages, _ = collect_delta(http, link)  # an empty page is no read
    assert entries(pages) == []  # no drift since the round: nothing to report
    http.get(url)  # read 9
    http.get(url)  # read 10: drifts it
    http.get(url)
    assert entries(collect_delta(http, link)[0]) == [(event["id"], False)]


def test_every_eighth_matching_if_match_answers_a_spurious_412_once(
    server: MicrosoftServer, http: requests.Session
) -> None:
    server.rules.drift_every = None
    created = http.post(
        f"{server.graph_url}/me/events",
        json=event_body("Buffer", "2026-12-01T08:45:00", "2026-12-01T09:00:00"),
    ).json()
    url = f"{server.graph_url}/me/events/{created['id']}"
    etag, statuses = created["@odata.etag"], []
    for n in range(9):
        answer = http.patch(
            url, json={"showAs": "free" if n % 2 else "busy"}, headers={"If-Match": etag}
        )
        statuses.append(answer.status_code)
        if answer.ok:
            etag = answer.json()["@odata.etag"]
    assert statuses == [200] * 7 + [412, 200]
    assert server.requests[-2].status == 412


# -- soft deletes and transactionId ---------------------------------------------------------


def test_a_deleted_event_keeps_its_transaction_id(
    server: MicrosoftServer, http: requests.Session
) -> None:
    body = event_body("Buffer", "2026-12-01T08:45:00", "2026-12-01T09:00:00", transactionId="t1")
    created = http.post(f"{server.graph_url}/me/events", json=body).json()
    url = f"{server.graph_url}/me/events/{created['id']}"
    assert http.delete(url).status_code == 204
    assert http.get(url).status_code == 404 and server.events(DEFAULT_USER) == []

    same = http.post(f"{server.graph_url}/me/events", json=body)
    assert same.status_code == 201 and same.json()["id"] == created["id"]  # the deleted one
    assert server.events(DEFAULT_USER) == []

    other = {**body, "subject": "Moved"}
    named = http.post(f"{server.graph_url}/me/events", json=other)
    unnamed = http.post(f"{server.graph_url}/me/events", json=other)
    for refused in (named, unnamed):
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    assert named.json()["error"]["@event.existingEventId"] == created["id"]
    assert "@event.existingEventId" not in unnamed.json()["error"]

    server.put_event(DEFAULT_USER, None, {**created, "subject": "Restored"})
    assert http.get(url).json()["subject"] == "Restored"


# -- MailboxConcurrency ---------------------------------------------------------------------


class Holding:
    """Keeps requests to /me/calendar in the fake until released."""

    def __init__(self, server: MicrosoftServer) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        dispatch = server._dispatch

        def hold(request: RecordedRequest) -> Any:
            if request.path == "/v1.0/me/calendar":
                self.entered.release()
                self.release.wait(timeout=30)
            return dispatch(request)

        server._dispatch = hold  # type: ignore[method-assign]

    def wait_for(self, count: int) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=30)


def test_a_fifth_request_in_flight_on_a_mailbox_is_throttled(
    server: MicrosoftServer, http: requests.Session
) -> None:
    holding = Holding(server)
    url = f"{server.graph_url}/me/calendar"
    with ThreadPoolExecutor(4) as pool:
        held = [pool.submit(http.get, url) for _ in range(4)]
        holding.wait_for(4)
        fifth = http.get(f"{server.graph_url}/me/calendars")
        holding.release.set()
        assert [f.result().status_code for f in held] == [200] * 4
    assert fifth.status_code == 429
    assert fifth.json()["error"] == {
        **fifth.json()["error"],
        "code": "ApplicationThrottled",
        "message": "Application is over its MailboxConcurrency limit.",
    }
    assert http.get(f"{server.graph_url}/me/calendars").status_code == 200


def test_a_batch_beside_another_request_meets_a_full_mailbox(
    server: MicrosoftServer, http: requests.Session
) -> None:
    holding = Holding(server)
    batch = {
        "requests": [{"id": str(n), "method": "GET", "url": "/me/calendars"} for n in range(5)]
    }
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(http.get, f"{server.graph_url}/me/calendar")
        holding.wait_for(1)
        answer = http.post(f"{server.graph_url}/$batch", json=batch).json()
        holding.release.set()
        assert held.result().status_code == 200
    statuses = {r["id"]: r["status"] for r in answer["responses"]}
    # Up to 4 items run at once; one slot is taken, so the 4th of each wave finds it full.
    assert statuses == {"0": 200, "1": 200, "2": 200, "3": 429, "4": 200}
