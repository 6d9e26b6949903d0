"""What an Outlook calendar's listing keeps between cycles, and one delta round read page by
page with its guards.

The token caldaemon stores for the calendar is this module's JSON (:class:`SyncState`):
the ``@odata.deltaLink`` to continue from, when the last full listing was made, the ids
listed in the window (hashed: an ``@removed`` for an id never listed is noise, since Graph
also sends them for events changed outside the window or never seen, docs
"delta-query-overview"), and the owner markers already read for events carrying
caldaemon's category (a marker never changes under an id, so each is read once).

A round (:func:`read_round`) follows ``@odata.nextLink`` to the ``@odata.deltaLink`` with a
page cap, and gives up on a loop: the same link twice, or the same page twice (reported
chains that repeat one payload forever, msgraph-sdk-dotnet #3070, #3082).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from caldaemon.providers.base import token_fields

# What a stored marker look-up says of one event: (marker value, transactionId).
Marker = tuple[str | None, str | None]


def key_of(event_id: str) -> str:
    """A short stand-in for a Graph id (they run to 150 characters) in the token."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:16]


@dataclass
class SyncState:
    """The token of one Outlook calendar (JSON), see the module's docstring."""

    source: str
    calendar: str | None
    delta: str | None = None
    # When the last full listing was made, in seconds of the provider's clock.
    full_at: float | None = None
    known: set[str] = field(default_factory=set)
    markers: dict[str, Marker] = field(default_factory=dict)

    @classmethod
    def load(cls, token: str | None, source: str) -> SyncState | None:
        """The state in ``token`` if it was made for ``source`` and is whole; else None
        (the next listing is then a full one)."""
        data = token_fields(token)
        if data.get("source") != source or not isinstance(data.get("delta"), str):
            return None
        calendar = data.get("calendar")
        full_at = data.get("full_at")
        known = data.get("known")
        markers = data.get("markers")
        if not (
            (calendar is None or isinstance(calendar, str))
            and (full_at is None or isinstance(full_at, int | float))
            and isinstance(known, list)
            and isinstance(markers, dict)
        ):
            return None
        return cls(
            source=source,
            calendar=calendar,
            delta=data["delta"],
            full_at=float(full_at) if full_at is not None else None,
            known={str(k) for k in known},
            markers={
                str(k): (_text(v[0]), _text(v[1]))
                for k, v in markers.items()
                if isinstance(v, list) and len(v) == 2
            },
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "source": self.source,
                "calendar": self.calendar,
                "delta": self.delta,
                "full_at": self.full_at,
                "known": sorted(self.known),
                "markers": {k: list(v) for k, v in sorted(self.markers.items())},
            },
            separators=(",", ":"),
        )


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


@dataclass
class Round:
    """What one delta round said, by id: the last entry of each listed event, the ids
    sent as ``@removed``, and those sent both ways in the same round (the order of a
    round is not guaranteed: which came last proves nothing)."""

    entries: dict[str, dict[str, Any]]
    removed: set[str]
    conflicted: set[str]
    delta: str


class PagingError(Exception):
    """The round cannot be finished: too many pages, a loop, or no deltaLink."""


def read_round(
    fetch: Callable[[str, Mapping[str, str] | None], Mapping[str, Any]],
    url: str,
    params: Mapping[str, str] | None,
    *,
    max_pages: int,
) -> Round:
    """Page through one round; ``fetch(url, params)`` returns a page's body."""
    entries: dict[str, dict[str, Any]] = {}
    removed: set[str] = set()
    links: set[str] = set()
    pages: set[str] = set()
    for _ in range(max_pages):
        body = fetch(url, params)
        values = [v for v in body.get("value") or () if isinstance(v, Mapping)]
        if values:
            fingerprint = hashlib.sha256(
                json.dumps(values, sort_keys=True, default=str).encode()
            ).hexdigest()
            if fingerprint in pages:
                raise PagingError("Microsoft Graph sent the same page twice in one listing")
            pages.add(fingerprint)
        for item in values:
            event_id = str(item.get("id") or "")
            if not event_id:
                continue
            if "@removed" in item:
                removed.add(event_id)
            else:
                entries[event_id] = dict(item)
        next_link = body.get("@odata.nextLink")
        if isinstance(next_link, str) and next_link:
            if next_link in links:
                raise PagingError("Microsoft Graph sent the same nextLink twice in one listing")
            links.add(next_link)
            url, params = next_link, None
            continue
        delta = body.get("@odata.deltaLink")
        if not isinstance(delta, str) or not delta:
            raise PagingError("Microsoft Graph ended a listing without a delta link")
        conflicted = removed & set(entries)
        return Round(
            {i: e for i, e in entries.items() if i not in conflicted},
            removed - conflicted,
            conflicted,
            delta,
        )
    raise PagingError(f"Microsoft Graph's listing ran past {max_pages} pages")
