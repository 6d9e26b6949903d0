"""The outlook provider against Microsoft Graph as it really behaves (RESEARCH.md, "Microsoft
Graph"; the fake's schedules in tests/fakes/graph_world.py, all on by default): delta that
refuses $expand, owner markers read by a separate look-up that may be throttled, changeKeys
that drift and a spurious 412, soft deletes that keep their transactionId, @removed for ids
never listed and out of order, deletions never reported, expiring and looping delta links.
Each test pins one defect the provider had (issue 10) and says which."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon.errors import RemoteGone, TransientError, WriteConflict
from caldaemon.model import Create, Delete, Remote, Update, written_identity
from caldaemon.providers.outlook.session import mailbox_slots
from caldaemon.retry import RetryPolicy
from tests.fakes.microsoft import DEFAULT_USER, Fault, MicrosoftServer, RecordedRequest
from tests.providers.contract import WINDOW, buffer
from tests.providers.outlook_support import Harness, buffers, seed, stored

ATTEMPTS = RetryPolicy().attempts
DELTA = "/calendarView/delta"


@pytest.fixture
def server() -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as fake:
        yield fake


@pytest.fixture
def harness(server: MicrosoftServer, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(server, tmp_path / "state")
    h.sign_in()
    yield h
    h.close()


def by_id(listing: Any) -> dict[str, Any]:
    return {e.id: e for e in listing.events}


def move(server: MicrosoftServer, event_id: str, day: str, hour: int = 9) -> None:
    """The user moves an event in Outlook to ``day`` (YYYY-MM-DD) at ``hour`` UTC."""
    server.put_event(
        DEFAULT_USER,
        None,
        {
            **stored(server, event_id),
            "start": {"dateTime": f"{day}T{hour:02d}:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{day}T{hour:02d}:50:00", "timeZone": "UTC"},
        },
    )


# -- reading: delta without $expand, owners by look-up ------------------------------------


def test_the_first_listing_sends_no_expand_select_or_filter_to_delta(harness: Harness) -> None:
    # Was: the first listing sent $expand on calendarView/delta, which Graph refuses (400
    # "Parsing OData Select and Expand failed"); the calendar could never be read.
    b = buffer()
    [created] = harness.provider().apply([Create(b, b.identity)])
    seed(harness.server, 2)
    harness.server.clear_requests()
    listing = harness.provider().changes(WINDOW, None)
    assert listing.full and len(listing.events) == 3
    assert by_id(listing)[created.remote.id].owner == b.identity
    [delta] = [r for r in harness.graph_requests("GET") if DELTA in r.path]
    assert not {"$expand", "$select", "$filter", "$orderby", "$search"} & set(delta.query)


def test_an_owner_look_up_throttled_past_its_retries_fails_the_listing(harness: Harness) -> None:
    # Was: a look-up answered 429 left the buffer with owner None in a listing presented
    # as complete: caldaemon's own buffer read as the user's event.
    b = buffer()
    [created] = harness.provider().apply([Create(b, b.identity)])
    throttled = Fault(
        status=429,
        retry_after=2,
        code="ApplicationThrottled",
        message="Application is over its MailboxConcurrency limit.",
        in_batch=True,
        times=None,
        match=lambda r: r.method == "GET",
    )
    harness.server.inject(throttled)
    with pytest.raises(TransientError, match="who owns an event"):
        harness.provider().changes(WINDOW, None)
    assert harness.sleeps == [2] * (ATTEMPTS - 1)

    harness.server.clear_faults()
    listing = harness.provider().changes(WINDOW, None)
    assert by_id(listing)[created.remote.id].owner == b.identity


def test_an_incremental_listing_whose_look_up_fails_keeps_its_token(harness: Harness) -> None:
    # The round is not half-applied: the same delta link is read again next cycle and the
    # new buffer then comes with its owner.
    first = harness.provider().changes(WINDOW, None)
    b = buffer()
    harness.provider().apply([Create(b, b.identity)])
    harness.server.inject(Fault(status=503, in_batch=True, times=None, match="GET /v1.0/me/events"))
    reader = harness.provider()  # knows nothing of the buffer: it must look it up
    with pytest.raises(TransientError):
        reader.changes(WINDOW, first.token)
    harness.server.clear_faults()
    [listed] = reader.changes(WINDOW, first.token).events
    assert listed.owner == b.identity and listed.marked


def test_a_batch_holds_as_many_mailbox_slots_as_graph_runs_items_at_once(
    harness: Harness,
) -> None:
    # Graph sends up to 4 items of a $batch to Outlook at once: counted as one request, a
    # batch beside 1-3 others exceeded the 4 per mailbox (429 MailboxConcurrency).
    provider = harness.provider()
    free_during: list[int] = []
    dispatch = harness.server._dispatch

    def watch(request: RecordedRequest) -> Any:
        if request.path == "/v1.0/$batch":
            free_during.append(mailbox_slots(provider.tokens.mailbox()).free)
        return dispatch(request)

    harness.server._dispatch = watch  # type: ignore[method-assign]
    wanted = buffers(7)
    provider.apply([Create(b, b.identity) for b in wanted[:6]])
    provider.apply([Create(wanted[6], wanted[6].identity)])
    assert free_during == [0, 3]
    assert mailbox_slots(provider.tokens.mailbox()).free == 4


# -- changeKeys that change on their own, a spurious 412 -----------------------------------


def test_a_change_key_that_drifts_without_an_edit_keeps_owner_and_content(
    harness: Harness,
) -> None:
    # Was: the owner came from $expand on delta (refused), and a changed etag alone read as
    # a user edit. Now the drifted event is listed with its owner and unchanged content.
    harness.server.rules.drift_every = None  # one drift, where this test puts it
    provider = harness.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    listing = provider.changes(WINDOW, None)
    harness.server.drift_change_key(DEFAULT_USER, created.remote.id)  # Graph, on its own
    harness.server.clear_requests()
    drifted = harness.provider().changes(WINDOW, listing.token)  # in another process too
    [event] = drifted.events
    assert event.etag != created.remote.etag
    assert (event.owner, event.marked) == (b.identity, True)
    assert (event.start, event.end, event.title, event.busy) == (b.start, b.end, b.title, True)
    assert harness.graph_requests(parts=True) == []  # the marker needed no second look

    moved = buffer(start=b.start + timedelta(hours=1))
    [stale] = provider.apply([Update(moved, b.identity, created.remote)])
    assert isinstance(stale.error, WriteConflict)  # the core compares content next cycle
    [updated] = provider.apply([Update(moved, b.identity, Remote(created.remote.id, event.etag))])
    assert updated.error is None


def test_a_spurious_412_is_a_write_conflict_and_the_same_write_then_goes_through(
    harness: Harness,
) -> None:
    harness.server.rules.spurious_412_every = 2
    provider = harness.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    moved = buffer(start=b.start + timedelta(hours=1))
    [first] = provider.apply([Update(moved, b.identity, created.remote)])  # conditional #1
    assert first.error is None
    back = buffer(start=b.start)
    [refused] = provider.apply([Update(back, b.identity, first.remote)])  # #2: spurious
    assert isinstance(refused.error, WriteConflict)
    listed = by_id(provider.changes(WINDOW, None))[created.remote.id]
    assert listed.etag == first.remote.etag and listed.start == moved.start  # nothing changed
    [again] = provider.apply([Update(back, b.identity, first.remote)])
    assert again.error is None


# -- soft deletes and transactionId ----------------------------------------------------------


def test_a_create_reusing_a_soft_deleted_transaction_id_is_remote_gone(harness: Harness) -> None:
    # Was: a deleted buffer's transactionId reused with another body answered 400
    # ErrorDuplicateTransactionId, reported as a calendar error on every cycle.
    harness.server.rules.existing_id_every = None  # Graph names no event
    provider = harness.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    provider.apply([Delete(b.identity, created.remote)])
    moved = buffer(start=b.start + timedelta(hours=2))
    [reused] = provider.apply([Create(moved, b.identity)])
    assert isinstance(reused.error, RemoteGone)
    next_life = written_identity(b.identity, 1)
    [revived] = provider.apply([Create(moved, next_life)])
    assert revived.error is None and revived.remote.id != created.remote.id
    listed = by_id(provider.changes(WINDOW, None))
    assert list(listed) == [revived.remote.id] and listed[revived.remote.id].owner == next_life


@pytest.mark.parametrize("named", [True, False])
def test_a_duplicate_of_a_live_event_adopts_it(harness: Harness, named: bool) -> None:
    # An earlier create whose answer was lost, sent again after the buffer moved: the
    # event it made is the answer, named by Graph or found by its marker; no second one.
    harness.server.rules.existing_id_every = 1 if named else None
    provider = harness.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    moved = buffer(start=b.start + timedelta(hours=2))
    [adopted] = provider.apply([Create(moved, b.identity)])
    assert adopted.error is None
    assert adopted.remote.id == created.remote.id and adopted.remote.etag == created.remote.etag
    assert len(harness.server.events(DEFAULT_USER)) == 1


def test_a_duplicate_naming_a_soft_deleted_event_is_remote_gone(harness: Harness) -> None:
    harness.server.rules.existing_id_every = 1
    provider = harness.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    provider.apply([Delete(b.identity, created.remote)])
    [reused] = provider.apply([Create(buffer(start=b.start + timedelta(hours=2)), b.identity)])
    assert isinstance(reused.error, RemoteGone)
    assert harness.server.events(DEFAULT_USER) == []


# -- @removed: never listed, out of the window, out of order -------------------------------


def test_removals_of_ids_never_listed_are_dropped(harness: Harness) -> None:
    # Was: every @removed went to the core, also for events changed outside the window and
    # for events created and deleted between two polls, which no listing ever showed.
    session, _ = seed(harness.server, 2)
    far = harness.server.put_event(
        DEFAULT_USER,
        None,
        {
            "subject": "Far away",
            "start": {"dateTime": "2027-03-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-01T10:00:00", "timeZone": "UTC"},
        },
    )
    provider = harness.provider()
    first = provider.changes(WINDOW, None)
    fleeting = seed(harness.server, 1, day=3)[0]
    harness.server.delete_event(DEFAULT_USER, fleeting["id"])
    move(harness.server, far["id"], "2027-03-02")
    harness.server.delete_event(DEFAULT_USER, session["id"])
    second = provider.changes(WINDOW, first.token)  # Graph sent three @removed
    assert not second.full and second.events == ()
    assert second.removed == (session["id"],)


def test_an_id_both_listed_and_removed_in_one_round_is_read_again(harness: Harness) -> None:
    # Was: the entry that came last won; Graph's order is not guaranteed, and a stale
    # @removed after the entry of an event the user moved out and back dropped it.
    kept, _ = seed(harness.server, 2)
    provider = harness.provider()
    first = provider.changes(WINDOW, None)
    move(harness.server, kept["id"], "2027-03-01")  # out of the window ...
    move(harness.server, kept["id"], "2026-12-04", 14)  # ... and back in, elsewhere
    harness.server.clear_requests()
    second = provider.changes(WINDOW, first.token)
    assert second.removed == ()
    [event] = second.events
    assert event.id == kept["id"] and event.start.isoformat() == "2026-12-04T14:00:00+00:00"
    [check] = harness.graph_requests(parts=True)
    assert check.method == "GET" and check.path.endswith(kept["id"])


# -- deletions never reported, expiring delta links ---------------------------------------


def test_a_deletion_delta_never_reports_is_repaired_by_the_weekly_full_listing(
    harness: Harness,
) -> None:
    # Was: only a refused delta link ever led to a full listing; an event whose deletion
    # Graph never reported stayed in caldaemon's copy (with its buffer) for good.
    harness.server.rules.unreported_delete_every = 1
    session, other = seed(harness.server, 2)
    provider = harness.provider()
    first = provider.changes(WINDOW, None)
    harness.server.delete_event(DEFAULT_USER, session["id"])
    harness.advance(timedelta(days=6))
    quiet = provider.changes(WINDOW, first.token)
    assert not quiet.full and quiet.removed == ()  # Graph said nothing
    harness.advance(timedelta(days=1))
    weekly = provider.changes(WINDOW, quiet.token)
    assert weekly.full and list(by_id(weekly)) == [other["id"]]
    after = provider.changes(WINDOW, weekly.token)
    assert not after.full  # and the next week starts from here


def test_a_delta_link_past_its_lifetime_answers_410_and_the_listing_is_full(
    harness: Harness,
) -> None:
    seed(harness.server, 1)
    provider = harness.provider()
    listing = provider.changes(WINDOW, None)
    for _ in range(harness.server.rules.delta_rounds or 0):
        listing = provider.changes(WINDOW, listing.token)
        assert not listing.full
    harness.server.clear_requests()
    renewed = provider.changes(WINDOW, listing.token)
    assert renewed.full and len(renewed.events) == 1
    assert [r.status for r in harness.graph_requests()] == [410, 200]


def test_resync_required_leads_to_a_full_listing(harness: Harness) -> None:
    seed(harness.server, 1)
    provider = harness.provider()
    first = provider.changes(WINDOW, None)
    harness.server.inject(Fault(status=400, code="resyncRequired", match="$deltatoken="))
    assert provider.changes(WINDOW, first.token).full


# -- paging: caps, loops, ignored page sizes, 503 mid-round -------------------------------


def test_a_round_of_expanded_series_runs_to_many_pages_and_a_503_mid_round_is_retried(
    harness: Harness,
) -> None:
    for hour in (10, 12, 16):  # daily series: 105 occurrences in the 5-week window
        harness.server.put_event(
            DEFAULT_USER,
            None,
            {
                "subject": "Clinic #heavy",
                "start": {"dateTime": f"2026-11-01T{hour}:00:00", "timeZone": "UTC"},
                "end": {"dateTime": f"2026-11-01T{hour}:50:00", "timeZone": "UTC"},
                "recurrence": {
                    "pattern": {"type": "daily", "interval": 1},
                    "range": {"type": "noEnd", "startDate": "2026-11-01"},
                },
            },
        )
    listing = harness.provider().changes(WINDOW, None)
    assert len(listing.events) == 105
    pages = [r for r in harness.graph_requests("GET") if DELTA in r.path]
    # Asked for 200 a page, Graph sends 10: 11 pages; every 3rd continuation fails once.
    statuses = [r.status for r in pages]
    assert statuses.count(200) == 11 and statuses.count(503) + statuses.count(504) == 4
    assert len(harness.sleeps) == 4


def test_a_looping_next_link_fails_the_listing_instead_of_looping(harness: Harness) -> None:
    # Was: nextLink was followed for as long as Graph sent one.
    seed(harness.server, 25)
    harness.server.looping_delta = True
    provider = harness.provider()
    provider.page_size = 10
    with pytest.raises(TransientError, match="same"):
        provider.changes(WINDOW, None)
    assert len([r for r in harness.graph_requests("GET") if DELTA in r.path]) <= 3


def test_a_looping_incremental_round_falls_back_to_a_full_listing(harness: Harness) -> None:
    provider = harness.provider()
    provider.page_size = 10
    first = provider.changes(WINDOW, None)
    seed(harness.server, 25)  # the next round runs to 3 pages
    harness.server.looping_delta = True
    with pytest.raises(TransientError):
        provider.changes(WINDOW, first.token)  # the full listing loops as well
    harness.server.looping_delta = False
    harness.server.clear_requests()
    listing = provider.changes(WINDOW, first.token)
    assert not listing.full and len(listing.events) == 25


def test_a_round_past_the_page_cap_fails_the_listing(harness: Harness) -> None:
    seed(harness.server, 25)
    provider = harness.provider()
    provider.page_size, provider.max_pages = 10, 2
    with pytest.raises(TransientError, match="past 2 pages"):
        provider.changes(WINDOW, None)


# -- writes after an outage ------------------------------------------------------------------


def test_after_an_outage_the_remaining_batches_are_not_sent(harness: Harness) -> None:
    # Was: the $batch that failed after its retries raised out of apply (no result for any
    # write), or with per-item failures every later batch waited out the same outage.
    harness.server.inject(Fault(status=503, times=None, match="POST /v1.0/$batch"))
    wanted = buffers(45)
    results = harness.provider().apply([Create(b, b.identity) for b in wanted])
    assert len(results) == 45
    assert all(isinstance(r.error, TransientError) for r in results)
    assert len(harness.graph_requests("POST")) == ATTEMPTS  # the first batch only
    assert harness.server.events(DEFAULT_USER) == []


def test_a_duplicate_of_an_ended_earlier_life_is_remote_gone(harness: Harness) -> None:
    # Last week's buffer holds the transactionId; its record was pruned and the session
    # moved into the future: the old event is history, not this create's lost answer.
    harness.server.rules.existing_id_every = None
    provider = harness.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    harness.now = (b.end + timedelta(days=7)).timestamp()
    later = buffer(start=b.start + timedelta(days=8))
    [again] = provider.apply([Create(later, b.identity)])
    assert isinstance(again.error, RemoteGone)
    assert [e["id"] for e in harness.server.events(DEFAULT_USER)] == [created.remote.id]
