"""Microsoft Graph event resources ↔ caldaemon's Event and Buffer: pure functions, no I/O.

References: https://learn.microsoft.com/graph/api/resources/event (properties),
https://learn.microsoft.com/graph/api/resources/datetimetimezone (Graph writes times as
``2026-12-01T09:00:00.0000000``: seven fractional digits and no offset, the zone named
beside it), https://learn.microsoft.com/graph/api/resources/extended-properties-overview
(single-value extended properties: hidden from Outlook's UI, kept when a user edits).
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

from caldaemon.model import Buffer, Event
from caldaemon.providers.base import BUFFER_DESCRIPTION, OWNER_CATEGORY, OWNER_KEY, block_dates

# caldaemon's owner marker on Outlook: a named string property in our own property set.
# The GUID is caldaemon's and must never change (events written by older versions would
# no longer be recognised as ours).
OWNER_PROPERTY_ID = f"String {{5f4374e0-3ac4-459d-9de4-255c680a69a2}} Name {OWNER_KEY}"
# Extended properties are only returned when expanded, and calendarView/delta refuses
# $expand (docs "event: delta"): they are read by GETs of single events.
OWNER_EXPAND = f"singleValueExtendedProperties($filter=id eq '{OWNER_PROPERTY_ID}')"
# transactionId values are derived from the buffer identity in this namespace (a UUID
# string, 36 characters: the GUID form the Graph docs use in their examples).
_TRANSACTION_NAMESPACE = uuid.UUID("d3c904dd-7049-4341-b1c9-1510db5b6ead")

_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_TAG = re.compile(r"<[^>]*>")
_BLOCK_END = re.compile(r"(?i)<\s*(br|/p|/div|/li|/tr|/h\d)\b[^>]*>")


class MappingError(ValueError):
    """A resource caldaemon cannot read (kept out of the listing with a warning)."""


def parse_datetime(value: Mapping[str, Any] | None) -> datetime:
    """A Graph ``dateTimeTimeZone`` → an aware datetime.

    The fraction may have any number of digits (Graph sends seven; Python takes six).
    ``timeZone`` is an IANA name or ``UTC`` (we ask for UTC with ``Prefer:
    outlook.timezone``); an explicit offset in the string wins over it."""
    if not isinstance(value, Mapping) or not isinstance(value.get("dateTime"), str):
        raise MappingError("start or end is missing")
    text = value["dateTime"].strip()
    match = _DATETIME.match(text)
    if match is None:
        raise MappingError(f"unreadable date-time {text!r}")
    day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    naive = datetime.combine(
        date.fromisoformat(day), time(int(hour), int(minute), int(second or 0), micro)
    )
    if offset:
        if offset == "Z":
            return naive.replace(tzinfo=UTC)
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return naive.replace(tzinfo=timezone(sign * delta))
    return naive.replace(tzinfo=_zone(str(value.get("timeZone") or "UTC")))


def _zone(name: str) -> timezone | ZoneInfo:
    """An IANA zone, or a Windows one (Graph names zones either way: "Eastern Standard
    Time" is what Outlook itself writes, dateTimeTimeZone resource)."""
    if name.strip().upper() in ("UTC", "Z", "GMT", "COORDINATED UNIVERSAL TIME"):
        return UTC
    key = win_tz.get(name.strip(), name.strip())
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"unknown time zone {name!r}") from None


def format_datetime(moment: datetime) -> dict[str, str]:
    """An aware datetime → ``dateTimeTimeZone`` in UTC."""
    utc = moment.astimezone(UTC)
    return {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def zone_name(zone: tzinfo) -> str:
    """The name Graph takes for ``zone`` in a write: its Windows name (CLDR's mapping,
    which names every IANA zone's Windows zone: "America/Toronto" is "Eastern Standard
    Time"). Writes take "any of the time zones supported by Windows" but only a listed
    few IANA names (dateTimeTimeZone resource; others answer 400
    TimeZoneNotSupportedException, microsoft-graph-docs #4758)."""
    key = str(getattr(zone, "key", "") or zone.tzname(None) or "UTC")
    if key.upper() in ("UTC", "Z", "GMT", "ETC/UTC", "ETC/GMT"):
        return "UTC"
    return tz_win.get(key, key)


def block_times(buffer: Buffer, tz: tzinfo | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """``start`` and ``end`` of a block. Timed: in UTC. All-day: midnights of its local
    dates (:func:`block_dates`) in the clinician's zone ``tz`` (the buffer's own when not
    given), named in both, as Graph wants them: "If true, regardless of whether it's a
    single-day or multi-day event, start and end time must be set to midnight and be in
    the same time zone" (event resource, ``isAllDay``)."""
    if not buffer.all_day:
        return format_datetime(buffer.start), format_datetime(buffer.end)
    zone = tz or buffer.start.tzinfo or UTC
    name = zone_name(zone)
    first, last = block_dates(buffer, zone)
    return (
        {"dateTime": f"{first.isoformat()}T00:00:00", "timeZone": name},
        {"dateTime": f"{last.isoformat()}T00:00:00", "timeZone": name},
    )


def etag_of(resource: Mapping[str, Any]) -> str | None:
    """``@odata.etag`` (what If-Match takes), else one made from ``changeKey``."""
    etag = resource.get("@odata.etag")
    if isinstance(etag, str) and etag:
        return etag
    change_key = resource.get("changeKey")
    return f'W/"{change_key}"' if isinstance(change_key, str) and change_key else None


def owner_property(resource: Mapping[str, Any]) -> str | None:
    """The value of our extended property, if the resource came with it."""
    for prop in resource.get("singleValueExtendedProperties") or ():
        if isinstance(prop, Mapping) and str(prop.get("id", "")).strip().lower() == (
            OWNER_PROPERTY_ID.lower()
        ):
            value = prop.get("value")
            return str(value) if value else None
    return None


def has_owner_category(resource: Mapping[str, Any]) -> bool:
    wanted = OWNER_CATEGORY.lower()
    return any(str(c).strip().lower() == wanted for c in resource.get("categories") or ())


def needs_owner_lookup(resource: Mapping[str, Any]) -> bool:
    """Carries our category, but the response held no extended properties at all (delta
    never does): the property must be read separately."""
    return has_owner_category(resource) and "singleValueExtendedProperties" not in resource


def ownership(
    resource: Mapping[str, Any], marker: str | None, transaction: str | None
) -> tuple[str | None, bool]:
    """(owner, marked) of an event (DESIGN.md §5): marked when it carries both parts of
    our marker (the category alone is something a user can give any event); owned only
    when its transactionId is the one our create of that identity sent, so a copy the
    user makes (a new event, the same hidden property) is theirs."""
    marked = marker is not None and has_owner_category(resource)
    if marked and marker is not None and transaction == transaction_id(marker):
        return marker, True
    return None, marked


def body_text(resource: Mapping[str, Any]) -> str:
    """The body as plain text (we ask for text; HTML is reduced to its text)."""
    body = resource.get("body")
    if not isinstance(body, Mapping):
        return str(resource.get("bodyPreview") or "")
    content = str(body.get("content") or "")
    if str(body.get("contentType", "text")).lower() == "html":
        content = html.unescape(_TAG.sub("", _BLOCK_END.sub("\n", content)))
    return content.strip()


def event_from_graph(
    resource: Mapping[str, Any],
    calendar: str,
    tz: ZoneInfo,
    *,
    marker: str | None = None,
    transaction: str | None = None,
) -> Event:
    """One event of a calendarView (a single instance, an occurrence or an exception).

    ``marker`` and ``transaction`` are what a separate look-up read of the event, when the
    resource came without them (delta sends no extended properties).
    All-day events are dates (Graph sends midnight to midnight in the zone asked for):
    they become local midnights in the clinician's zone ``tz``."""
    event_id = resource.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MappingError("an event without an id")
    all_day = bool(resource.get("isAllDay"))
    start, end = parse_datetime(resource.get("start")), parse_datetime(resource.get("end"))
    if all_day:
        start = datetime.combine(start.date(), time(), tz)
        end = datetime.combine(max(end.date(), start.date() + timedelta(days=1)), time(), tz)
    owner, marked = ownership(
        resource,
        owner_property(resource) or marker,
        _text(resource.get("transactionId")) or transaction,
    )
    categories = tuple(str(c) for c in resource.get("categories") or () if str(c).strip())
    response = resource.get("responseStatus")
    status = str(response.get("response", "")) if isinstance(response, Mapping) else ""
    show_as = str(resource.get("showAs") or "busy").lower()
    return Event(
        calendar=calendar,
        id=event_id,
        start=start,
        end=end,
        all_day=all_day,
        title=str(resource.get("subject") or ""),
        description=body_text(resource),
        categories=categories,
        cancelled=bool(resource.get("isCancelled")),
        busy=show_as != "free",
        # showAs "oof": out of office ("Away" in Outlook; event resource, ``showAs``).
        out_of_office=show_as == "oof",
        declined=status.lower() == "declined",
        owner=owner,
        marked=marked,
        series=str(resource["seriesMasterId"]) if resource.get("seriesMasterId") else None,
        etag=etag_of(resource),
    )


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def transaction_id(identity: str) -> str:
    """Deterministic per written identity: Graph answers a repeated create carrying the
    same transactionId and body with the event already made (event resource,
    ``transactionId``). Each generation has its own: a deleted event keeps its
    transactionId (DELETE is soft), so a buffer that comes back needs a new one."""
    return str(uuid.uuid5(_TRANSACTION_NAMESPACE, identity))


def buffer_fields(buffer: Buffer, tz: tzinfo | None = None) -> dict[str, Any]:
    """What a buffer or hold looks like: busy, private (``sensitivity``: normal, personal,
    private or confidential, event resource), no reminder, nothing from the session. A
    hold on a day off is an all-day event (:func:`block_times`); an update sends every
    field, so a hold moved to another day, or from timed to all-day, is one PATCH."""
    start, end = block_times(buffer, tz)
    return {
        "subject": buffer.title,
        "body": {"contentType": "text", "content": BUFFER_DESCRIPTION},
        "start": start,
        "end": end,
        "isAllDay": buffer.all_day,
        "showAs": "busy",
        "sensitivity": "private",
        "isReminderOn": False,
        "categories": [OWNER_CATEGORY],
    }


def create_body(buffer: Buffer, identity: str, tz: tzinfo | None = None) -> dict[str, Any]:
    return {
        **buffer_fields(buffer, tz),
        "attendees": [],
        "transactionId": transaction_id(identity),
        "singleValueExtendedProperties": [{"id": OWNER_PROPERTY_ID, "value": identity}],
    }


def matches_buffer(
    resource: Mapping[str, Any], buffer: Buffer, identity: str, tz: tzinfo | None = None
) -> bool:
    """Does the event on the calendar already look exactly as ``buffer`` wants it (an
    update whose answer was lost and whose retry then met its own new etag)?

    An all-day event comes back as midnights of its dates, in whatever zone the request
    asked for (the dates are what counts, reported in learn.microsoft.com Q&A 978210)."""
    try:
        start, end = parse_datetime(resource.get("start")), parse_datetime(resource.get("end"))
    except MappingError:
        return False
    all_day = bool(resource.get("isAllDay"))
    if buffer.all_day:
        times_match = all_day and (start.date(), end.date()) == block_dates(buffer, tz)
    else:
        times_match = not all_day and (start, end) == (buffer.start, buffer.end)
    return (
        owner_property(resource) == identity
        and has_owner_category(resource)
        and times_match
        and resource.get("subject") == buffer.title
    )
