"""Where the fake Microsoft Graph is as unkind as the real one (DESIGN.md §8, "The world as
it is"): the behaviours clients are documented or reported to meet, each with its source
(../shared/RESEARCH.md, "Microsoft Graph"). All of them are on by default, each on a
deterministic schedule so that every test is reproducible; a test that pins one exact
exchange may switch one off (``None``), every other test meets them all.

Behaviours that are always on (no schedule), in the request handlers:

* ``calendarView/delta`` refuses ``$expand``, ``$select``, ``$filter``, ``$orderby`` and
  ``$search`` with 400 "Parsing OData Select and Expand failed" (docs "event: delta";
  msgraph-sdk-dotnet #2678, microsoft-graph-docs #2270), in graph_delta.py;
* ``DELETE`` is soft and the event keeps its ``transactionId``: a create reusing it with
  the same body answers the existing event, with another body 400
  ``ErrorDuplicateTransactionId`` (RESEARCH.md), in graph_events.py;
* a write naming an IANA zone Graph does not list answers 400
  ``TimeZoneNotSupportedException`` (Windows names are always taken), and an all-day
  event must run midnight to midnight in one zone (dateTimeTimeZone and event resource;
  microsoft-graph-docs #4758), in graph_time.py;
* ``@removed`` for ids never seen or changed outside the window (delta-query-overview,
  microsoft-graph-docs #11728, #5301) by :attr:`WorldRules.stale_removals`.

A looping delta chain (msgraph-sdk-dotnet #3070, #3082) is not on by default, since it
never ends: a test turns it on with ``MicrosoftServer.looping_delta``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .graph_common import graph_error_reply
from .http import Reply

__all__ = [
    "MAILBOX_CONCURRENCY_MESSAGE",
    "MailboxGate",
    "MailboxSlots",
    "WorldRules",
    "batch_targets",
    "canonical",
    "every",
    "mailbox_full",
]

# What Outlook answers a fifth concurrent request on one mailbox (reported verbatim by
# many clients; https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
MAILBOX_CONCURRENCY_MESSAGE = "Application is over its MailboxConcurrency limit."


def every(period: int | None, count: int) -> bool:
    """Whether the ``count``-th occurrence (1-based) falls on a schedule of ``period``."""
    return period is not None and period > 0 and count % period == 0


@dataclass
class WorldRules:
    """The schedules of the fake's unkind behaviours, per mailbox (None: off)."""

    # changeKey / @odata.etag change with no edit (microsoft-graph-docs-contrib #2856):
    # every n-th read request of a mailbox that returns events (GET, list, calendarView,
    # a delta page) renews the changeKey of the first of them right after the read, so
    # that reader's etag is stale at once.
    drift_every: int | None = 5
    # If-Match answered 412 ErrorIrresolvableConflict although it matched (reported in
    # analogdotnow/Analog PR #475): every n-th matching conditional write of a mailbox,
    # once (the same write sent again goes through).
    spurious_412_every: int | None = 8
    # Deletions that delta never reports ("some deletions are never reported",
    # microsoft-graph-docs #11728, #5301): every n-th deletion in a mailbox. A full listing
    # no longer shows the event; incremental rounds never mention it.
    unreported_delete_every: int | None = 5
    # ``Prefer: odata.maxpagesize`` ignored when recurring series expand, and rounds
    # running to many pages (msgraph-sdk-dotnet #3070, #3082): a delta round whose window
    # holds occurrences of a series pages out no more than this at a time.
    series_page_cap: int | None = 10
    # 503/504 in the middle of a round (msgraph-sdk-dotnet #3070, #3082, #1568): every
    # n-th continuation page request of a mailbox fails once (503 with Retry-After, then
    # 504 without, alternately).
    mid_round_failure_every: int | None = 3
    # Delta tokens expire with 410 SyncStateNotFound (microsoft-graph-docs #2350); their
    # lifetime "is not fixed" for Outlook: a chain of deltaLinks lasts this many rounds.
    delta_rounds: int | None = 8
    # ErrorDuplicateTransactionId carries ``@event.existingEventId`` only "sometimes":
    # every n-th such answer of a mailbox (counting from the first) has it.
    existing_id_every: int | None = 2
    # Outlook allows 4 concurrent requests per app and mailbox; Graph sends up to 4 items
    # of a $batch at once (https://learn.microsoft.com/graph/throttling-limits and
    # json-batching): more answer 429 ApplicationThrottled / MailboxConcurrency.
    mailbox_concurrency: int | None = 4
    # @removed for ids changed outside the window or never seen, sent after the entries
    # of the same round (docs "delta-query-overview"; microsoft-graph-docs #11728, #5301).
    stale_removals: bool = True


class MailboxSlots:
    """Requests in flight per mailbox, for the MailboxConcurrency limit."""

    def __init__(self, rules: WorldRules) -> None:
        self.rules = rules
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()

    @contextmanager
    def request(self, mailbox: str | None) -> Iterator[bool]:
        """Hold a slot for one request; yields False when the mailbox is already full."""
        limit = self.rules.mailbox_concurrency
        if mailbox is None or limit is None:
            yield True
            return
        with self._lock:
            admitted = self._in_flight[mailbox] < limit
            if admitted:
                self._in_flight[mailbox] += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self._in_flight[mailbox] -= 1

    @contextmanager
    def batch(self, items: Sequence[tuple[str, str | None]]) -> Iterator[frozenset[str]]:
        """Hold the slots a $batch takes (up to 4 items of one mailbox run at once); yields
        the ids of the items that find their mailbox full and are answered 429."""
        limit = self.rules.mailbox_concurrency
        if limit is None:
            yield frozenset()
            return
        by_mailbox: dict[str, list[str]] = {}
        for item_id, mailbox in items:
            if mailbox is not None:
                by_mailbox.setdefault(mailbox, []).append(item_id)
        held: dict[str, int] = {}
        refused: set[str] = set()
        with self._lock:
            for mailbox, ids in by_mailbox.items():
                free = max(0, limit - self._in_flight[mailbox])
                # Graph fans the items out in waves of 4: in each wave, those beyond the
                # free slots meet a full mailbox.
                refused.update(i for n, i in enumerate(ids) if n % 4 >= free)
                held[mailbox] = min(4, len(ids), free)
                self._in_flight[mailbox] += held[mailbox]
        try:
            yield frozenset(refused)
        finally:
            with self._lock:
                for mailbox, count in held.items():
                    self._in_flight[mailbox] -= count


def canonical(body: Mapping[str, object]) -> str:
    """A create's body as compared for a repeated transactionId ("the same body")."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def mailbox_full(headers: Mapping[str, str]) -> Reply:
    """Outlook's answer to a request beyond the mailbox's concurrency limit."""
    return graph_error_reply(
        429, "ApplicationThrottled", MAILBOX_CONCURRENCY_MESSAGE, headers, (("Retry-After", "1"),)
    )


def batch_targets(payload: Any) -> list[tuple[str, str]]:
    """(item id, path under /v1.0) of each request in a $batch body."""
    items = payload.get("requests") if isinstance(payload, dict) else None
    return [
        (str(item.get("id")), "/" + item["url"].lstrip("/").partition("?")[0])
        for item in (items if isinstance(items, list) else ())
        if isinstance(item, dict) and isinstance(item.get("url"), str)
    ]


class MailboxGate:
    """Requests to Graph pass here: each holds its slots of a mailbox while it is worked
    on; one beyond the limit is answered 429, and so are the items of a $batch that find
    their mailbox full (:meth:`refused`, asked by the batch hook of the same thread)."""

    def __init__(
        self, rules: WorldRules, mailbox_of: Callable[[str, Mapping[str, str]], str | None]
    ) -> None:
        self.slots = MailboxSlots(rules)
        self.mailbox_of = mailbox_of
        self._batch = threading.local()

    def admit(
        self, path: str, headers: Mapping[str, str], body: Any, work: Callable[[], Reply]
    ) -> Reply:
        if not path.startswith("/v1.0/"):
            return work()
        path = path[len("/v1.0") :]
        if path.strip("/").lower() == "$batch":
            items = [(i, self.mailbox_of(p, headers)) for i, p in batch_targets(body)]
            with self.slots.batch(items) as refused:
                self._batch.refused = refused
                try:
                    return work()
                finally:
                    self._batch.refused = frozenset()
        with self.slots.request(self.mailbox_of(path, headers)) as admitted:
            return work() if admitted else mailbox_full(headers)

    def refused(self, item_id: str) -> bool:
        return item_id in getattr(self._batch, "refused", frozenset())
