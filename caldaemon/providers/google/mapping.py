"""Google Calendar event resources ↔ caldaemon's model, as pure functions.

Events resource: https://developers.google.com/calendar/api/v3/reference/events
Colour palette (``colors.get``, the names Google Calendar's UI shows):
https://developers.google.com/calendar/api/v3/reference/colors
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from caldaemon.model import Buffer, Event, parse_written_identity, written_identity
from caldaemon.providers.base import BUFFER_DESCRIPTION, OWNER_KEY, block_dates

# Event colours by colorId, named as in Google Calendar's UI; classification.colors
# in the config names them this way (DESIGN.md §3).
PALETTE: Mapping[str, str] = {
    "1": "lavender",
    "2": "sage",
    "3": "grape",
    "4": "flamingo",
    "5": "banana",
    "6": "tangerine",
    "7": "peacock",
    "8": "graphite",
    "9": "blueberry",
    "10": "basil",
    "11": "tomato",
}

# Events resource, ``id``: "characters allowed in the ID are those used in base32hex
# encoding, i.e. lowercase letters a-v and digits 0-9 ... between 5 and 1024 characters".
_BASE32HEX_ID = re.compile(r"[a-v0-9]{5,1024}")
_IDENTITY = re.compile(r"[0-9a-f]{40}")
_ID_PREFIX = "cd"
# Between the identity and the generation: a base32hex letter that is no hex digit.
_GENERATION = "g"


def event_id(written: str) -> str:
    """The event id of a buffer's written identity (``model.written_identity``): fixed by
    it, so a repeated insert of the same buffer is refused with 409 instead of making a
    second event (DESIGN.md §5). Each generation has its own id, the first keeps the id
    caldaemon always gave it: ``cd<identity>``, then ``cd<identity>g<n>``."""
    identity, generation = parse_written_identity(written)
    if not _IDENTITY.fullmatch(identity) or written_identity(identity, generation) != written:
        raise ValueError(
            f"a buffer identity is 40 lowercase hex digits, then -g<n> from its second "
            f"life on; not {written!r}"
        )
    result = _ID_PREFIX + identity + (f"{_GENERATION}{generation}" if generation else "")
    # Hex digits, "g" and decimal digits are all base32hex, so this holds by construction.
    assert _BASE32HEX_ID.fullmatch(result)
    return result


def rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC, as events.list's timeMin/timeMax want it."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def buffer_body(buffer: Buffer, identity: str, tz: tzinfo | None = None) -> dict[str, Any]:
    """The event resource of a buffer or hold: busy (``transparency: opaque``) and private
    (``visibility: private``: "only event attendees may view event details", Events
    resource), no reminders, no attendees, marked ours in ``extendedProperties.private``
    (visible only to this calendar's copy of the event).

    An all-day block is an all-day event: ``start.date``/``end.date`` ("The date, in the
    format yyyy-mm-dd, if this is an all-day event", EventDateTime), the end exclusive,
    dated where the clinician is (``tz``; the buffer's own zone when not given)."""
    start, end = _block_times(buffer, tz)
    return {
        "id": event_id(identity),
        "summary": buffer.title,
        "description": BUFFER_DESCRIPTION,
        "start": start,
        "end": end,
        "transparency": "opaque",
        "visibility": "private",
        "reminders": {"useDefault": False, "overrides": []},
        "extendedProperties": {"private": {OWNER_KEY: identity}},
    }


def _block_times(buffer: Buffer, tz: tzinfo | None) -> tuple[dict[str, str], dict[str, str]]:
    if buffer.all_day:
        first, last = block_dates(buffer, tz)
        return {"date": first.isoformat()}, {"date": last.isoformat()}
    return {"dateTime": rfc3339(buffer.start)}, {"dateTime": rfc3339(buffer.end)}


def marker_of(resource: Mapping[str, Any]) -> str | None:
    """The value of caldaemon's marker in ``extendedProperties.private``, bound or not."""
    private = (resource.get("extendedProperties") or {}).get("private") or {}
    value = private.get(OWNER_KEY) if isinstance(private, Mapping) else None
    return value if isinstance(value, str) else None


def owner_of(resource: Mapping[str, Any]) -> str | None:
    """The written identity an event carries if it is caldaemon's own. The marker alone is
    not enough: Google's "Duplicate" (and a copy to another calendar) keeps extended
    properties, so the id must be the one caldaemon gives that identity too."""
    marker = marker_of(resource)
    if marker is None:
        return None
    try:
        bound = resource.get("id") == event_id(marker)
    except ValueError:  # not a value caldaemon writes
        return None
    return marker if bound else None


def ended(resource: Mapping[str, Any], now: datetime) -> bool:
    """Whether an event ended before ``now`` (a date counts from its midnight in UTC)."""
    try:
        finish, _ = _moment(resource["end"], UTC)
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return finish <= now


def same_buffer(
    resource: Mapping[str, Any], buffer: Buffer, identity: str, tz: tzinfo | None = None
) -> bool:
    """Whether an event on the calendar is exactly the buffer we meant to write (used to
    tell our own retried update, which already landed, from a user's edit)."""
    if resource.get("status") == "cancelled" or owner_of(resource) != identity:
        return False
    start, end = _block_times(buffer, tz)
    try:
        if buffer.all_day:
            times_match = (resource["start"].get("date"), resource["end"].get("date")) == (
                start["date"],
                end["date"],
            )
        else:
            begin, all_day = _moment(resource["start"], UTC)
            finish, _ = _moment(resource["end"], UTC)
            times_match = not all_day and (begin, finish) == (buffer.start, buffer.end)
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return times_match and (
        resource.get("summary", "") == buffer.title
        and resource.get("description", "") == BUFFER_DESCRIPTION
        and resource.get("transparency", "opaque") == "opaque"
    )


def _moment(when: Mapping[str, Any], tz: ZoneInfo | timezone) -> tuple[datetime, bool]:
    """An EventDateTime as an aware datetime, and whether it is a date (all-day).

    All-day: ``date`` "yyyy-mm-dd", the start of that day where the clinician is; the end
    date is exclusive. Timed: ``dateTime`` is RFC 3339 with an offset ("A time zone offset
    is required unless a time zone is explicitly specified in timeZone").
    """
    if when.get("date"):
        day = date.fromisoformat(when["date"])
        return datetime(day.year, day.month, day.day, tzinfo=tz), True
    moment = datetime.fromisoformat(when["dateTime"])
    if moment.tzinfo is None:
        zone = when.get("timeZone")
        moment = moment.replace(tzinfo=ZoneInfo(zone) if zone else tz)
    return moment, False


def _declined(resource: Mapping[str, Any], self_addresses: frozenset[str]) -> bool:
    """The clinician's own answer: the attendee entry marked ``self`` (the calendar's
    owner) or carrying one of their addresses."""
    mine = {address.lower() for address in self_addresses}
    for attendee in resource.get("attendees") or ():
        if attendee.get("self") or str(attendee.get("email", "")).lower() in mine:
            return bool(attendee.get("responseStatus") == "declined")
    return False


def event_from_resource(
    resource: Mapping[str, Any],
    *,
    calendar: str,
    tz: ZoneInfo,
    self_addresses: frozenset[str] = frozenset(),
) -> Event:
    """One event resource (``singleEvents=true``: no recurring masters) as an Event.

    Raises KeyError/ValueError/TypeError for a resource without readable times (a
    cancelled stub has none: callers treat those as removals).
    """
    start, all_day = _moment(resource["start"], tz)
    end, _ = _moment(resource["end"], tz)
    return Event(
        calendar=calendar,
        id=str(resource["id"]),
        start=start,
        end=end,
        all_day=all_day,
        title=str(resource.get("summary") or ""),
        description=str(resource.get("description") or ""),
        color=PALETTE.get(str(resource.get("colorId") or "")),
        cancelled=resource.get("status") == "cancelled",
        # "transparency": "opaque" (default, blocks time) or "transparent" (free).
        busy=resource.get("transparency", "opaque") != "transparent",
        declined=_declined(resource, self_addresses),
        # eventType "outOfOffice": "An out-of-office event" (Events resource). Google
        # keeps an all-day one as a timed span from midnight to midnight (the API refuses
        # a date-based one, reported in macro-inc/macro PR #6474), so it is read as timed.
        out_of_office=resource.get("eventType") == "outOfOffice",
        owner=owner_of(resource),
        marked=marker_of(resource) is not None,
        series=resource.get("recurringEventId"),
        etag=resource.get("etag"),
    )


def original_start(resource: Mapping[str, Any], tz: ZoneInfo) -> datetime | None:
    """An instance's slot in its series (``originalStartTime``); None for other events."""
    when = resource.get("originalStartTime")
    if not resource.get("recurringEventId") or not isinstance(when, Mapping):
        return None
    try:
        return _moment(when, tz)[0]
    except (KeyError, TypeError, ValueError):
        return None


def error_reasons(content: bytes | str | None) -> set[str]:
    """``errors[].reason`` and ``details[].reason`` of Google's error JSON ("Handle API
    errors": ``{"error": {"errors": [{"domain", "reason", "message"}], "code", ...}}``)."""
    try:
        body = json.loads(content or b"{}").get("error") or {}
    except (ValueError, AttributeError):
        return set()
    if not isinstance(body, dict):
        return set()
    entries = [*(body.get("errors") or ()), *(body.get("details") or ())]
    return {str(e["reason"]) for e in entries if isinstance(e, dict) and e.get("reason")}


def write_token(calendar: str, sync: str | None) -> str | None:
    """Listing.token: the sync token, with the calendar it belongs to."""
    return json.dumps({"calendar": calendar, "sync": sync}) if sync else None


def read_token(token: str | None, calendar: str) -> str | None:
    """The sync token, if ``token`` is ours and for this calendar (a changed ``calendar``
    in the config, or a token from elsewhere, starts again with a full listing)."""
    try:
        data = json.loads(token) if token else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("calendar") != calendar:
        return None
    sync = data.get("sync")
    return sync if isinstance(sync, str) and sync else None
