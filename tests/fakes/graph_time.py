"""Dates and times in the fake Microsoft Graph: zones, dateTimeTimeZone values, recurrence.

Recurrence patterns: https://learn.microsoft.com/graph/api/resources/patternedrecurrence
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from .graph_common import GraphError

__all__ = [
    "check_all_day",
    "check_recurrence",
    "check_write_zone",
    "dtz_to_aware",
    "format_instant",
    "format_local",
    "resolve_zone",
    "series_dates",
    "window_bound",
]

# Windows zone names Graph accepts alongside IANA ones: every zone Windows knows (CLDR's
# windowsZones, as tzlocal ships it), and a few spellings of UTC.
_WINDOWS_ZONES = {name.lower(): key for name, key in win_tz.items()} | {
    "utc": "UTC",
    "coordinated universal time": "UTC",
}
# The IANA names a write may use: "The timeZone property can be set to any of the time
# zones currently supported by Windows, as well as the other time zones supported by the
# calendar API" (the list below) and "Methods such as create or update might not support
# all dateTimeTimeZone time zones" (dateTimeTimeZone resource,
# https://learn.microsoft.com/graph/api/resources/datetimetimezone). A name outside both
# answers 400 TimeZoneNotSupportedException (microsoft-graph-docs #4758). Reads and the
# user's own events (seeding) take any IANA name.
_WRITABLE_IANA_LIST = """
    Etc/GMT+12 Etc/GMT+11 Pacific/Honolulu America/Anchorage America/Santa_Isabel
    America/Los_Angeles America/Phoenix America/Chihuahua America/Denver America/Guatemala
    America/Chicago America/Mexico_City America/Regina America/Bogota America/New_York
    America/Indiana/Indianapolis America/Caracas America/Asuncion America/Halifax
    America/Cuiaba America/La_Paz America/Santiago America/St_Johns America/Sao_Paulo
    America/Argentina/Buenos_Aires America/Cayenne America/Godthab America/Montevideo
    America/Bahia Etc/GMT+2 Atlantic/Azores Atlantic/Cape_Verde Africa/Casablanca Etc/GMT
    Europe/London Atlantic/Reykjavik Europe/Berlin Europe/Budapest Europe/Paris
    Europe/Warsaw Africa/Lagos Africa/Windhoek Europe/Bucharest Asia/Beirut Africa/Cairo
    Asia/Damascus Africa/Johannesburg Europe/Kyiv Europe/Kiev Europe/Istanbul
    Asia/Jerusalem Asia/Amman Asia/Baghdad Europe/Kaliningrad Asia/Riyadh Africa/Nairobi
    Asia/Tehran Asia/Dubai Asia/Baku Europe/Moscow Indian/Mauritius Asia/Tbilisi
    Asia/Yerevan Asia/Kabul Asia/Karachi Asia/Tashkent Asia/Kolkata Asia/Colombo
    Asia/Kathmandu Asia/Almaty Asia/Dhaka Asia/Yekaterinburg Asia/Yangon Asia/Rangoon
    Asia/Bangkok Asia/Novosibirsk Asia/Shanghai Asia/Krasnoyarsk Asia/Singapore
    Australia/Perth Asia/Taipei Asia/Ulaanbaatar Asia/Irkutsk Asia/Tokyo Asia/Seoul
    Australia/Adelaide Australia/Darwin Australia/Brisbane Australia/Sydney
    Pacific/Port_Moresby Australia/Hobart Asia/Yakutsk Pacific/Guadalcanal
    Asia/Vladivostok Pacific/Auckland Etc/GMT-12 Pacific/Fiji Asia/Magadan
    Pacific/Tongatapu Pacific/Apia Pacific/Kiritimati"""
_WRITABLE_IANA = frozenset(_WRITABLE_IANA_LIST.split())
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEXES = ("first", "second", "third", "fourth", "last")
_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def resolve_zone(name: str) -> tzinfo | None:
    """A tzinfo for a Windows or IANA zone name, or None if unknown."""
    key = _WINDOWS_ZONES.get(name.strip().lower(), name.strip())
    if key.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_datetime(value: str) -> tuple[datetime, tzinfo | None]:
    """Parse Graph's ``2026-11-30T14:00:00.0000000`` (7 fractional digits, no zone)."""
    # A "+" offset arrives as a space when a client forgot to percent-encode it.
    match = _DATETIME.match(value.strip().replace(" ", "+"))
    if match is None:
        raise ValueError(value)
    day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    parsed = datetime.combine(
        date.fromisoformat(day), time(int(hour or 0), int(minute or 0), int(second or 0), micro)
    )
    zone: tzinfo | None = None
    if offset == "Z":
        zone = UTC
    elif offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return parsed, zone


def format_local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond:06d}0"


def format_instant(moment: datetime) -> str:
    return format_local(moment.astimezone(UTC)) + "Z"


def dtz_to_aware(value: Any, field_name: str) -> datetime:
    if not isinstance(value, Mapping) or not isinstance(value.get("dateTime"), str):
        raise GraphError(
            400, "ErrorInvalidRequest", f"'{field_name}' must be a dateTimeTimeZone object."
        )
    zone_name = value.get("timeZone") or "UTC"
    zone = resolve_zone(zone_name)
    if zone is None:
        raise _unsupported_zone(zone_name)
    try:
        local, offset = _parse_datetime(value["dateTime"])
    except ValueError as exc:
        raise GraphError(
            400, "ErrorInvalidRequest", f"Cannot convert '{value['dateTime']}' to a date/time."
        ) from exc
    if offset is not None:
        return local.replace(tzinfo=offset).astimezone(zone)
    return local.replace(tzinfo=zone)


def check_write_zone(value: Any) -> None:
    """A ``dateTimeTimeZone`` written through the API names a zone writes support (see
    ``_WRITABLE_IANA``); the value's other checks are :func:`dtz_to_aware`'s."""
    if not isinstance(value, Mapping):
        return
    name = str(value.get("timeZone") or "UTC").strip()
    if name.lower() in _WINDOWS_ZONES or name in _WRITABLE_IANA:
        return
    raise _unsupported_zone(name)


def _unsupported_zone(name: str) -> GraphError:
    return GraphError(
        400,
        "TimeZoneNotSupportedException",
        f"A valid TimeZone value must be specified. The following TimeZone value is "
        f"not supported: '{name}'.",
    )


def check_all_day(
    start_value: Mapping[str, Any], end_value: Mapping[str, Any], start: datetime, end: datetime
) -> None:
    """An all-day event's times (``start``/``end`` as :func:`dtz_to_aware` read them).
    ``isAllDay``: "If true, regardless of whether it's a single-day or multi-day event,
    start and end time must be set to midnight and be in the same time zone" (event
    resource, https://learn.microsoft.com/graph/api/resources/event); "all-day events
    start at midnight on a specific day, and end 24 hours (or a multiple of 24 hours)
    later" (Exchange, "Create all-day events by using EWS"). The messages are the fake's."""
    if any((t.hour, t.minute, t.second, t.microsecond) != (0, 0, 0, 0) for t in (start, end)):
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "For an all-day event, the start and end times must be set to midnight.",
        )
    zones = {str(v.get("timeZone") or "UTC").strip().lower() for v in (start_value, end_value)}
    if len(zones) > 1:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "For an all-day event, the start and end must be in the same time zone.",
        )
    if end <= start:
        raise GraphError(400, "ErrorInvalidRequest", "An all-day event lasts one day or more.")


def window_bound(query: Mapping[str, str], name: str) -> tuple[datetime, str]:
    raw = query.get(name.lower())
    if not raw:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        local, offset = _parse_datetime(raw)
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidParameter", f"Invalid {name}: '{raw}'.") from exc
    # Values without an offset are UTC; Prefer: outlook.timezone does not apply
    # to them (https://learn.microsoft.com/graph/api/user-list-calendarview).
    return local.replace(tzinfo=offset or UTC), raw


# -- recurrence ---------------------------------------------------------------------


def check_recurrence(recurrence: Any) -> None:
    pattern = recurrence.get("pattern") if isinstance(recurrence, dict) else None
    range_ = recurrence.get("range") if isinstance(recurrence, dict) else None
    if not isinstance(pattern, dict) or not isinstance(range_, dict):
        raise _bad_recurrence("recurrence needs a pattern and a range.")
    kinds = (
        "daily",
        "weekly",
        "absoluteMonthly",
        "relativeMonthly",
        "absoluteYearly",
        "relativeYearly",
    )
    if pattern.get("type") not in kinds:
        raise _bad_recurrence(f"Unsupported pattern {pattern.get('type')!r}.")
    if range_.get("type") not in ("endDate", "noEnd", "numbered"):
        raise _bad_recurrence(f"Unsupported range {range_.get('type')!r}.")
    try:
        date.fromisoformat(range_["startDate"])
        if range_["type"] == "endDate":
            date.fromisoformat(range_["endDate"])
        if range_["type"] == "numbered" and int(range_["numberOfOccurrences"]) < 1:
            raise ValueError("numberOfOccurrences")
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad_recurrence(f"Invalid recurrence range: {exc}.") from exc
    needs_days = pattern["type"] in ("weekly", "relativeMonthly", "relativeYearly")
    if needs_days and not pattern.get("daysOfWeek"):
        raise _bad_recurrence("daysOfWeek is required for this pattern.")


def _bad_recurrence(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRecurrence", message)


def series_dates(recurrence: Mapping[str, Any], until: date) -> Iterator[date]:
    """Original dates of a series' occurrences, up to ``until`` inclusive."""
    pattern, range_ = recurrence["pattern"], recurrence["range"]
    first = date.fromisoformat(range_["startDate"])
    last = date.fromisoformat(range_["endDate"]) if range_["type"] == "endDate" else None
    remaining = int(range_["numberOfOccurrences"]) if range_["type"] == "numbered" else None
    for candidate in _pattern_dates(pattern, first):
        if candidate > until or (last is not None and candidate > last):
            return
        if remaining is not None:
            if remaining == 0:
                return
            remaining -= 1
        yield candidate


def _pattern_dates(pattern: Mapping[str, Any], first: date) -> Iterator[date]:
    """Dates matching a Graph recurrencePattern on or after ``first`` (unbounded)."""
    interval = max(int(pattern.get("interval") or 1), 1)
    kind = pattern["type"]
    weekdays = sorted(_WEEKDAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or [])
    if kind == "daily":
        current = first
        while True:
            yield current
            current += timedelta(days=interval)
    elif kind == "weekly":
        week_start_day = _WEEKDAYS.index(str(pattern.get("firstDayOfWeek") or "sunday").lower())
        week = first - timedelta(days=(first.weekday() - week_start_day) % 7)
        offsets = sorted((d - week_start_day) % 7 for d in weekdays)
        while True:
            for offset in offsets:
                candidate = week + timedelta(days=offset)
                if candidate >= first:
                    yield candidate
            week += timedelta(weeks=interval)
    else:
        yearly = kind.endswith("Yearly")
        step = 12 * interval if yearly else interval
        year, month = first.year, (int(pattern["month"]) if yearly else first.month)
        if yearly and date(year, month, 1) < date(first.year, first.month, 1):
            year += 1
        for _ in range(5000):
            in_month = _month_date(pattern, year, month, weekdays)
            if in_month is not None and in_month >= first:
                yield in_month
            month += step
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


def _month_date(
    pattern: Mapping[str, Any], year: int, month: int, weekdays: list[int]
) -> date | None:
    if pattern["type"].startswith("absolute"):
        try:
            return date(year, month, int(pattern["dayOfMonth"]))
        except ValueError:
            return None  # e.g. the 31st in a 30-day month: Outlook skips it
    days = [
        date(year, month, d)
        for d in range(1, 32)
        if _valid_day(year, month, d) and date(year, month, d).weekday() in weekdays
    ]
    index = str(pattern.get("index") or "first").lower()
    position = _INDEXES.index(index)
    if index == "last":
        return days[-1] if days else None
    return days[position] if position < len(days) else None


def _valid_day(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True
