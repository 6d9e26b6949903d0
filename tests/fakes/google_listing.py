"""events.list of the fake Google Calendar API: filters, paging and incremental sync.

Reference: https://developers.google.com/calendar/api/v3/reference/events/list
Sync guide: https://developers.google.com/calendar/api/guides/sync
Every function expects the server lock to be held.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from .google_common import JSON, ApiError, flag, param
from .google_event import expand, parse_query_time, render, search_text, span
from .google_store import ETAG_BASE, Calendar, Listing, Store, SyncState

__all__ = ["list_events"]

# A listing without timeMax (an incremental sync can have none: timeMax is refused with a
# syncToken) expands an open-ended series this far, up to the fake's cap of instances
# per series: a touched open-ended weekly series comes back as about 700 instances
# reaching into 2040, and pages of instances out to 2099 (garrytan/gbrain PR #5015).
_OPEN_END = datetime(2100, 1, 1, tzinfo=UTC)

# events.list: these "cannot be specified together with nextSyncToken".
_SYNC_INCOMPATIBLE = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)


@dataclass(frozen=True)
class _Filters:
    time_min: datetime | None
    time_max: datetime | None
    updated_min: datetime | None
    terms: tuple[str, ...]
    ical_uid: str | None
    properties: tuple[tuple[str, str, str], ...]


def list_events(store: Store, calendar_id: str, params: dict[str, list[str]], cap: int) -> JSON:
    """events.list (https://developers.google.com/calendar/api/v3/reference/events/list).

    Honoured: timeMin, timeMax, singleEvents, maxResults (capped at ``cap``),
    pageToken, syncToken, showDeleted, orderBy, q (every word must occur in
    summary, description, location, organizer or attendees), iCalUID,
    private/sharedExtendedProperty (repeatable, all must match), updatedMin.
    timeZone is only echoed. Page tokens page through a snapshot taken when
    the listing started; its sync token covers changes made after that.
    """
    cal = store.calendar(calendar_id)
    single, show_deleted = flag(params, "singleEvents"), flag(params, "showDeleted")
    raw_size = param(params, "maxResults") or "250"
    if not raw_size.isdigit() or int(raw_size) < 1:
        raise ApiError(
            400,
            "invalid",
            f"Invalid value '{raw_size}'. Values must be within the range: [1, 2500]",
            location="maxResults",
        )
    page_size = min(int(raw_size), cap)
    sync_token = param(params, "syncToken")
    if sync_token is not None:
        clashing = [name for name in _SYNC_INCOMPATIBLE if name in params]
        if clashing:
            raise ApiError(
                400,
                "invalid",
                f"The parameter {clashing[0]} cannot be used together with syncToken.",
                location=clashing[0],
            )
    order_by = param(params, "orderBy")
    if order_by not in (None, "startTime", "updated"):
        raise ApiError(400, "invalid", f"Invalid value '{order_by}'.", location="orderBy")
    if order_by == "startTime" and not single:
        raise ApiError(
            400,
            "badRequest",
            "The requested ordering is not available for the particular query.",
        )
    times = {
        name: parse_query_time(value, name)
        for name in ("timeMin", "timeMax", "updatedMin")
        if (value := param(params, name))
    }
    if "timeMin" in times and "timeMax" in times and times["timeMax"] <= times["timeMin"]:
        raise ApiError(
            400,
            "timeRangeEmpty",
            "The specified time range is empty.",
            domain="calendar",
            location="timeMax",
        )
    page_token = param(params, "pageToken")
    if page_token is not None:
        entry = store.pages.get(page_token)
        if entry is None or entry[0].calendar is not cal:
            raise ApiError(400, "invalid", "Invalid page token value.", location="pageToken")
        body = _page(store, *entry, page_size)
        if store.looping_pages > 0:
            # Injected: the page just asked for names itself (or a new token for itself)
            # as the next page, so a client that trusts the chain never ends.
            store.looping_pages -= 1
            again = secrets.token_urlsafe(24) if store.looping_fresh_tokens else page_token
            store.pages[again] = entry
            body.pop("nextSyncToken", None)
            body["nextPageToken"] = again
        return body
    if sync_token is not None:
        items = _changes(store, cal, sync_token, single)
    else:
        properties: list[tuple[str, str, str]] = []
        for scope in ("private", "shared"):
            for pair in params.get(f"{scope}ExtendedProperty", []):
                key, sep, value = pair.partition("=")
                if not sep:
                    raise ApiError(
                        400,
                        "invalid",
                        f"Invalid extended property filter: '{pair}'.",
                        location=f"{scope}ExtendedProperty",
                    )
                properties.append((scope, key, value))
        terms = tuple((param(params, "q") or "").casefold().split())
        filters = _Filters(
            times.get("timeMin"),
            times.get("timeMax"),
            times.get("updatedMin"),
            terms,
            param(params, "iCalUID"),
            tuple(properties),
        )
        items = _full(store, cal, single, show_deleted, filters, order_by)
    time_zone = param(params, "timeZone") or cal.time_zone
    listing = Listing(cal, items, store.change, single, time_zone)
    return _page(store, listing, 0, page_size)


def _full(
    store: Store,
    cal: Calendar,
    single: bool,
    show_deleted: bool,
    flt: _Filters,
    order_by: str | None,
) -> list[JSON]:
    chosen: list[JSON] = []
    for event in cal.events.values():
        if single and store.is_exception(cal, event):
            continue  # listed through its recurring event's expansion
        expanded = single and bool(event.get("recurrence"))
        until = flt.time_max or _OPEN_END
        for item in store.instances(cal, event, until) if expanded else [event]:
            if _visible(store, cal, item, single, show_deleted, flt) and _accepts(
                cal, item, single, flt
            ):
                chosen.append(item)
    if order_by == "startTime":
        chosen.sort(key=lambda item: span(item, cal.time_zone)[0])
    elif order_by == "updated":
        chosen.sort(key=lambda item: str(item["updated"]))
    return [render(item) for item in chosen]


def _visible(
    store: Store, cal: Calendar, item: JSON, single: bool, show_deleted: bool, flt: _Filters
) -> bool:
    """showDeleted semantics from the events.list reference.

    Deleted events are hidden unless showDeleted, or updatedMin is given
    ("entries deleted since this time will always be included"); cancelled
    instances of a live recurring event are still included "if showDeleted
    and singleEvents are both False".
    """
    if item.get("status") != "cancelled" or show_deleted or flt.updated_min is not None:
        return True
    return (
        not single
        and store.is_exception(cal, item)
        and cal.events[item["recurringEventId"]].get("status") != "cancelled"
    )


def _accepts(cal: Calendar, item: JSON, single: bool, flt: _Filters) -> bool:
    if flt.ical_uid is not None and item.get("iCalUID") != flt.ical_uid:
        return False
    updated = datetime.fromisoformat(item["updated"])
    if flt.updated_min is not None and updated < flt.updated_min:
        return False
    extended = item.get("extendedProperties") or {}
    for scope, key, value in flt.properties:
        if (extended.get(scope) or {}).get(key) != value:
            return False
    if flt.terms and not all(term in search_text(item) for term in flt.terms):
        return False
    if flt.time_min is None and flt.time_max is None:
        return True
    # timeMin bounds an event's end and timeMax its start, both exclusive.
    recurring = not single and bool(item.get("recurrence"))
    occurrences = expand(item, cal.time_zone, flt.time_max) if recurring else [item]
    return any(
        (flt.time_min is None or end > flt.time_min)
        and (flt.time_max is None or begin < flt.time_max)
        for begin, end in (span(o, cal.time_zone) for o in occurrences)
    )


def _changes(store: Store, cal: Calendar, sync_token: str, single: bool) -> list[JSON]:
    """Incremental sync: everything changed since the token, without time bounds."""
    if sync_token not in store.sync_tokens:
        raise ApiError(400, "invalid", "Invalid sync token value.", location="syncToken")
    state = store.sync_tokens[sync_token]
    lifetime = store.sync_token_lifetime
    if state is not None and lifetime is not None and store.clock() - state.issued > lifetime:
        # "Sometimes sync tokens are invalidated by the server, for example due to token
        # expiration or changes in related ACLs ... 410 ... perform a full sync" (sync
        # guide, https://developers.google.com/calendar/api/guides/sync). How long a token
        # lives is not documented: GoogleCalendarServer.sync_token_lifetime.
        store.sync_tokens[sync_token] = state = None
    if state is None or state.calendar_id != cal.calendar_id:
        raise ApiError(
            410,
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
            domain="calendar",
            location="syncToken",
        )
    if state.single_events != single:
        raise ApiError(
            400,
            "invalid",
            "singleEvents must have the value used by the full sync that issued the sync token.",
            location="singleEvents",
        )
    items: list[JSON] = []
    seen: set[str] = set()
    for event_id, _ in sorted(cal.changed.items(), key=lambda pair: pair[1]):
        if cal.changed[event_id] <= state.change:
            continue
        event = cal.events[event_id]
        expanded = single and bool(event.get("recurrence"))
        for item in store.instances(cal, event, _OPEN_END) if expanded else [event]:
            if item["id"] not in seen:
                seen.add(item["id"])
                items.append(render(item))
    return items


def _page(store: Store, listing: Listing, offset: int, size: int) -> JSON:
    """One page; only the last page of a listing carries nextSyncToken."""
    cal = listing.calendar
    body: JSON = {
        "kind": "calendar#events",
        "etag": f'"{ETAG_BASE + listing.change}"',
        "summary": cal.email,
        "description": "",
        "updated": cal.updated or store.stamp(),
        "timeZone": listing.time_zone,
        "accessRole": cal.access_role,
        "defaultReminders": [],
        "items": listing.items[offset : offset + size],
    }
    token = secrets.token_urlsafe(24)
    if offset + size < len(listing.items):
        store.pages[token] = (listing, offset + size)
        body["nextPageToken"] = token
    else:
        state = SyncState(cal.calendar_id, listing.change, listing.single_events, store.clock())
        store.sync_tokens[token] = state
        body["nextSyncToken"] = token
    return body
