"""One event resource of the fake Google Calendar API: times, recurrence, validation, rendering.

Events resource: https://developers.google.com/calendar/api/v3/reference/events
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule  # type: ignore[import-untyped, unused-ignore]

from .google_common import JSON, ApiError

__all__ = [
    "expand",
    "instance_until",
    "merge",
    "moment",
    "out_of_office",
    "parse_query_time",
    "render",
    "search_text",
    "span",
    "validate_event",
    "validate_event_type",
]

_MAX_INSTANCES = 1000


# --- time and recurrence --------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_query_time(value: str, name: str) -> datetime:
    """events.list timeMin/timeMax/updatedMin: "RFC3339 timestamp with mandatory time zone
    offset"."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(400, "badRequest", "Bad Request", location=name)
    return parsed.astimezone(UTC)


def moment(when: JSON, cal_tz: str) -> datetime:
    """Instant of an EventDateTime; all-day dates start at midnight in the calendar's zone."""
    if "date" in when:
        day = date.fromisoformat(when["date"])
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(cal_tz)).astimezone(UTC)
    instant = datetime.fromisoformat(when["dateTime"])
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=ZoneInfo(when.get("timeZone") or cal_tz))
    return instant.astimezone(UTC)


def span(event: JSON, cal_tz: str) -> tuple[datetime, datetime]:
    return moment(event["start"], cal_tz), moment(event["end"], cal_tz)


_UNTIL = re.compile(r"UNTIL=(\d{8})(?:T(\d{6})(Z?))?", re.IGNORECASE)


def _floating_rule(rule: str, tz: ZoneInfo) -> str:
    """Rewrite UNTIL as floating local time: dateutil refuses UTC UNTIL with a floating DTSTART."""

    def fix(found: re.Match[str]) -> str:
        day, clock, utc = found.groups()
        if clock is None:
            return f"UNTIL={day}T235959"
        if not utc:
            return found.group(0)
        local = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=UTC).astimezone(tz)
        return f"UNTIL={local:%Y%m%dT%H%M%S}"

    return _UNTIL.sub(fix, rule)


def _floating_stamp(stamp: str, params: list[str], tz: ZoneInfo, first: datetime) -> datetime:
    """An EXDATE/RDATE value as floating local time in the series' zone."""
    stamp = stamp.strip()
    if len(stamp) == 8:
        return datetime.combine(datetime.strptime(stamp, "%Y%m%d").date(), first.time())
    local = datetime.strptime(stamp.rstrip("Zz"), "%Y%m%dT%H%M%S")
    if stamp[-1] in "Zz":
        return local.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    tzid = next((p.split("=", 1)[1] for p in params if p.upper().startswith("TZID=")), None)
    if tzid is None:
        return local
    return local.replace(tzinfo=ZoneInfo(tzid)).astimezone(tz).replace(tzinfo=None)


def expand(
    master: JSON, cal_tz: str, until: datetime | None, limit: int = _MAX_INSTANCES
) -> list[JSON]:
    """Generated instances of a recurring event starting before ``until``.

    Expansion runs in the event's own time zone so wall-clock times survive DST.
    Instance ids follow Google: ``{id}_{YYYYMMDDTHHMMSSZ}`` (UTC start) for timed
    events and ``{id}_{YYYYMMDD}`` for all-day events.
    """
    start, end = master["start"], master["end"]
    all_day = "date" in start
    tz = ZoneInfo(cal_tz if all_day else start.get("timeZone") or cal_tz)
    if all_day:
        first = datetime.fromisoformat(start["date"])
        length = date.fromisoformat(end["date"]) - date.fromisoformat(start["date"])
    else:
        begin, finish = span(master, cal_tz)
        first, length = begin.astimezone(tz).replace(tzinfo=None), finish - begin
    rules = rrule.rruleset()
    for line in master.get("recurrence") or []:
        head, _, value = line.partition(":")
        name, *params = head.strip().split(";")
        if name.upper() == "RRULE":
            rules.rrule(rrule.rrulestr(_floating_rule(value, tz), dtstart=first))
        elif name.upper() in ("EXDATE", "RDATE"):
            add = rules.exdate if name.upper() == "EXDATE" else rules.rdate
            for stamp in value.split(","):
                add(_floating_stamp(stamp, params, tz, first))
        else:
            raise ValueError(f"unsupported recurrence line {line!r}")
    instances: list[JSON] = []
    for local in rules:
        if len(instances) >= limit or (until is not None and local.replace(tzinfo=tz) >= until):
            break
        instance = {key: value for key, value in master.items() if key != "recurrence"}
        if all_day:
            suffix = f"{local:%Y%m%d}"
            instance["start"] = {"date": local.date().isoformat()}
            instance["end"] = {"date": (local.date() + length).isoformat()}
        else:
            begin = local.replace(tzinfo=tz)
            suffix = f"{begin.astimezone(UTC):%Y%m%dT%H%M%SZ}"
            end_tz = end.get("timeZone") or tz.key
            finish = (begin + length).astimezone(ZoneInfo(end_tz))
            instance["start"] = {
                "dateTime": _rfc3339(begin),
                "timeZone": start.get("timeZone") or tz.key,
            }
            instance["end"] = {"dateTime": _rfc3339(finish), "timeZone": end_tz}
        instance |= {
            "id": f"{master['id']}_{suffix}",
            "recurringEventId": master["id"],
            "originalStartTime": dict(instance["start"]),
        }
        instances.append(instance)
    return instances


def instance_until(suffix: str, cal_tz: str) -> datetime | None:
    """Expansion bound that is just past the instance named by an id suffix."""
    try:
        if len(suffix) == 16:
            start = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return start + timedelta(seconds=1)
        if len(suffix) == 8:
            day = datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=ZoneInfo(cal_tz))
            return day + timedelta(days=1)
    except ValueError:
        return None
    return None


# --- the resource ---------------------------------------------------------------


def validate_event(event: JSON, cal_tz: str) -> None:
    """Reject resources Google rejects; messages follow Google's where known."""
    all_day: list[bool] = []
    for key in ("start", "end"):
        when = event.get(key)
        if not isinstance(when, dict) or ("date" in when) == ("dateTime" in when):
            raise ApiError(400, "required", f"Missing {key} time.")
        try:
            if "date" in when:
                date.fromisoformat(when["date"])
            elif datetime.fromisoformat(when["dateTime"]).tzinfo is None and not when.get(
                "timeZone"
            ):
                raise ApiError(400, "required", f"Missing time zone definition for {key} time.")
            if when.get("timeZone"):
                ZoneInfo(when["timeZone"])
        except (TypeError, ValueError, KeyError, ZoneInfoNotFoundError) as exc:
            raise ApiError(400, "invalid", f"Invalid {key} time.") from exc
        all_day.append("date" in when)
    if all_day[0] != all_day[1]:
        raise ApiError(400, "invalid", "Start and end must both be dates or both be date-times.")
    begin, finish = span(event, cal_tz)
    if finish < begin or (all_day[0] and finish == begin):
        raise ApiError(
            400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar"
        )
    recurrence = event.get("recurrence")
    if recurrence is not None:
        if not isinstance(recurrence, list) or not all(isinstance(r, str) for r in recurrence):
            raise ApiError(400, "invalid", "Invalid recurrence rule.")
        if not all_day[0] and not event["start"].get("timeZone"):
            raise ApiError(400, "required", "Missing time zone definition for start time.")
        try:
            expand(event, cal_tz, None, limit=1)
        except (TypeError, ValueError, KeyError) as exc:
            raise ApiError(400, "invalid", "Invalid recurrence rule.") from exc
    attendees = event.get("attendees", [])
    if not isinstance(attendees, list) or not all(
        isinstance(attendee, dict) and attendee.get("email") for attendee in attendees
    ):
        raise ApiError(400, "required", "Missing attendee email.")
    # The enums of the Events resource: "transparency" opaque | transparent, "visibility"
    # default | public | private | confidential. (The messages are the fake's own.)
    for key, allowed in (("transparency", _TRANSPARENCY), ("visibility", _VISIBILITY)):
        if key in event and event[key] not in allowed:
            raise ApiError(400, "invalid", f"Invalid {key} value: '{event[key]}'.", location=key)


_TRANSPARENCY = ("opaque", "transparent")
_VISIBILITY = ("default", "public", "private", "confidential")
# Events resource, ``eventType``: "Specific type of the event. This cannot be modified
# after the event is created." ("fromGmail" ... "This type of event cannot be created").
_EVENT_TYPES = ("birthday", "default", "focusTime", "fromGmail", "outOfOffice", "workingLocation")


def validate_event_type(event: JSON, existing: JSON | None, *, primary: bool) -> None:
    """The rules of ``eventType`` on a write (``event`` already carries the type it will
    have). Messages are the fake's own; the rules are documented or reported:

    * the type cannot change once the event exists (Events resource);
    * "fromGmail" events cannot be created (Events resource);
    * out of office events exist "only on primary calendars" ("Manage focus time, out of
      office, and working location events" guide), and are timed: the API answers 400
      to a date-based (all-day) one, and Google Calendar's own UI keeps an all-day out
      of office as a timed span from midnight to midnight (macro-inc/macro PR #6474;
      phw198/OutlookGoogleCalendarSync #2366).
    """
    kind = event.get("eventType")
    if kind not in _EVENT_TYPES:
        raise ApiError(400, "invalid", f"Invalid event type: '{kind}'.", location="eventType")
    if existing is not None:
        if existing.get("eventType", "default") != kind:
            raise ApiError(400, "invalid", "The event type cannot be changed.")
        return
    if kind == "fromGmail":
        raise ApiError(400, "invalid", "Events of type fromGmail cannot be created.")
    if kind == "outOfOffice":
        if not primary:
            raise ApiError(
                400, "invalid", "Out of office events can only be created on primary calendars."
            )
        if "date" in event["start"] or "date" in event["end"]:
            raise ApiError(400, "invalid", "An out of office event cannot be an all-day event.")


def out_of_office(
    start: datetime,
    end: datetime,
    time_zone: str,
    *,
    summary: str = "Out of office",
    decline_message: str = "I am out of the office and will reply when I am back.",
) -> JSON:
    """An out of office event as Google Calendar's UI makes it (the user picks "Out of
    office" in the event dialog): ``eventType`` "outOfOffice" with its
    ``outOfOfficeProperties`` (autoDeclineMode, declineMessage: Events resource), busy,
    and timed even when the user ticked "All day" (whole days run from midnight to
    midnight in the calendar's zone; see :func:`validate_event_type`)."""
    zone = ZoneInfo(time_zone)
    return {
        "summary": summary,
        "start": {"dateTime": _rfc3339(start.astimezone(zone)), "timeZone": time_zone},
        "end": {"dateTime": _rfc3339(end.astimezone(zone)), "timeZone": time_zone},
        "eventType": "outOfOffice",
        "transparency": "opaque",
        "outOfOfficeProperties": {
            "autoDeclineMode": "declineAllConflictingInvitations",
            "declineMessage": decline_message,
        },
    }


def merge(target: JSON, patch: JSON) -> JSON:
    """Patch semantics: objects merge, arrays and scalars replace, null clears.

    https://developers.google.com/calendar/api/guides/performance#patch
    """
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _stub(event: JSON) -> JSON:
    """Deleted events carry only id (and, for instances, recurringEventId/originalStartTime)."""
    stub = {
        "kind": "calendar#event",
        "etag": event["etag"],
        "id": event["id"],
        "status": "cancelled",
    }
    for key in ("recurringEventId", "originalStartTime"):
        if key in event:
            stub[key] = copy.deepcopy(event[key])
    return stub


def render(event: JSON) -> JSON:
    return _stub(event) if event.get("status") == "cancelled" else copy.deepcopy(event)


def search_text(event: JSON) -> str:
    people = [event.get("organizer") or {}, *(event.get("attendees") or [])]
    words = [event.get(k, "") for k in ("summary", "description", "location")]
    words += [str(p.get(k, "")) for p in people for k in ("email", "displayName")]
    return " ".join(str(w) for w in words).casefold()
