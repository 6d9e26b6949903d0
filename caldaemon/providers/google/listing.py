"""Reading one Google calendar: events.list page after page, kept bounded in memory and
in requests whatever the server sends.

Full listings ask for the window (``timeMin``/``timeMax``). Incremental ones cannot
("Synchronize resources efficiently", https://developers.google.com/calendar/api/guides/sync:
the window parameters are refused with a ``syncToken``), so a touched open-ended series
comes back with every instance to its end: about 700 for one weekly series, pages of them
out to 2099 (garrytan/gbrain PR #5015). Each page is therefore reduced to what the
window needs as soon as it arrives, the number of pages is capped, and a page chain that
repeats itself is refused instead of followed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from caldaemon.errors import TransientError
from caldaemon.model import Event, Window
from caldaemon.providers.google.mapping import event_from_resource, original_start

# events.list: "maxResults ... The page size can never be larger than 2500 events".
PAGE_SIZE = 2500
# At most this many pages per listing. At the 2,500 events per page asked for, that is
# 250,000 events, far beyond a clinician's calendar over the longest horizon (366 days of
# a few dozen events) plus a few exploded series (up to about a thousand instances each);
# even at Google's default page of 250 it is 25,000 events. A chain longer than this is
# a server that does not stop, and the cap keeps a cycle to 100 requests for it.
MAX_PAGES = 100
# Warnings about unreadable events kept per listing (the rest are counted).
MAX_WARNINGS = 20


class PagingRunaway(TransientError):
    """The page chain repeated a token or a page, or ran past :data:`MAX_PAGES`: this
    listing is abandoned (the calendar counts as not read), never followed for ever."""


@dataclass
class Collected:
    """What the pages of one listing amount to, gathered page by page.

    Kept: every event but one kind, and for an incremental listing the ids of deleted
    events. Events outside the window stay in (the core drops them, and with them what
    it cached from when they were inside): they are few. Dropped at once: recurring
    instances outside the window that still sit at their series' own slot. Those were
    never inside the window, so nothing cached can be stale; they are all of an exploded
    series but the few weeks the window covers.
    """

    window: Window
    incremental: bool
    calendar: str
    tz: ZoneInfo
    self_addresses: frozenset[str]
    describe: Callable[[], str]
    events: list[Event] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreadable: int = 0

    def take(self, items: list[Mapping[str, Any]]) -> None:
        for item in items:
            if item.get("status") == "cancelled":
                # Deleted events come back as stubs: status "cancelled", an id, little else.
                if self.incremental:
                    self.removed.append(str(item.get("id")))
                continue
            try:
                event = event_from_resource(
                    item, calendar=self.calendar, tz=self.tz, self_addresses=self.self_addresses
                )
            except (KeyError, TypeError, ValueError):
                self._unreadable(item)
                continue
            if self.window.overlaps(event.start, event.end) or (
                original_start(item, self.tz) != event.start
            ):
                self.events.append(event)

    def _unreadable(self, item: Mapping[str, Any]) -> None:
        self.unreadable += 1
        if self.unreadable <= MAX_WARNINGS:
            self.warnings.append(
                f"{self.describe()}: skipped event {item.get('id')}, whose times cannot be read"
            )

    def all_warnings(self) -> tuple[str, ...]:
        more = self.unreadable - MAX_WARNINGS
        if more > 0:
            return (*self.warnings, f"{self.describe()}: skipped {more} more such events")
        return tuple(self.warnings)


def read_pages(
    fetch: Callable[[str | None], dict[str, Any]],
    take: Callable[[list[Mapping[str, Any]]], None],
    *,
    calendar: str,
    source: str,
) -> str | None:
    """Follow the page chain: ``fetch(page_token)`` gets one page, ``take(items)`` keeps
    what it needs of it. Returns the last page's ``nextSyncToken``.

    Raises :class:`PagingRunaway` when a ``nextPageToken`` comes back that was already
    followed, the same non-empty page comes twice, or :data:`MAX_PAGES` are not enough.
    """
    tokens: set[str] = set()
    pages: set[str] = set()
    page_token: str | None = None
    for _ in range(MAX_PAGES):
        page = fetch(page_token)
        items: list[Mapping[str, Any]] = list(page.get("items") or ())
        if items:
            # An empty page can be legitimate ("the number of events in the resulting
            # page may be less than this value, or none at all"); the same events twice
            # cannot.
            seen = _fingerprint(items)
            if seen in pages:
                raise PagingRunaway(calendar, source, "Google Calendar sent the same page twice")
            pages.add(seen)
        take(items)
        next_token = page.get("nextPageToken")
        if not next_token:
            sync = page.get("nextSyncToken")
            return str(sync) if sync else None
        if next_token in tokens:
            raise PagingRunaway(
                calendar, source, "Google Calendar's pages lead back to a page already read"
            )
        tokens.add(next_token)
        page_token = str(next_token)
    raise PagingRunaway(calendar, source, f"Google Calendar's listing ran past {MAX_PAGES} pages")


def _fingerprint(items: list[Mapping[str, Any]]) -> str:
    """What identifies a page: its events' ids, versions and statuses, in order."""
    raw = json.dumps([(i.get("id"), i.get("etag"), i.get("status")) for i in items])
    return hashlib.sha256(raw.encode()).hexdigest()
