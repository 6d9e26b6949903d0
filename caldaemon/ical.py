"""iCalendar (RFC 5545) in and out: parse a file, expand recurrences into occurrences,
normalize them to :class:`Event`; build caldaemon's own buffer VEVENTs.

Recurrence (RRULE, RDATE, EXDATE, moved and cancelled instances, RANGE=THISANDFUTURE) and
X-WR-TIMEZONE are expanded by recurring-ical-events; VTIMEZONE, IANA and Windows zone
names are resolved by icalendar. One series that cannot be expanded is skipped with a
warning naming its UID; the rest of the file still counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from .errors import CalendarError
from .model import Buffer, Event
from .providers.base import BUFFER_DESCRIPTION, OWNER_PROPERTY, Window

PRODID = "-//caldaemon//caldaemon//EN"


def parse(data: bytes, calendar: str, source: str) -> list[icalendar.Calendar]:
    """Every VCALENDAR in ``data``; CalendarError when the file is not iCalendar at all."""
    if not data.strip():
        return []
    try:
        found = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError, …
        raise CalendarError(calendar, source, f"not a readable iCalendar file ({_why(exc)})")
    calendars = [c for c in found if isinstance(c, icalendar.Calendar)]
    if not calendars:
        raise CalendarError(calendar, source, "not an iCalendar file (no VCALENDAR in it)")
    return calendars


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:160] if text else type(exc).__name__) or type(exc).__name__


class Reader:
    """Turns calendars into the events of one caldaemon calendar."""

    def __init__(self, calendar: str, source: str, tz: ZoneInfo,
                 self_addresses: frozenset[str] = frozenset()) -> None:
        self.calendar = calendar
        self.source = source
        self.tz = tz
        self.self_addresses = frozenset(a.lower() for a in self_addresses)
        self.warnings: list[str] = []

    def warn(self, uid: object, reason: str) -> None:
        self.warnings.append(f"{self.source}: skipped event {uid or '(no UID)'}: {reason}")

    def events(self, calendars: Iterable[icalendar.Calendar], window: Window) -> list[Event]:
        found: list[Event] = []
        for cal in calendars:
            found.extend(self._expand(cal, window))
        return found

    def _expand(self, cal: icalendar.Calendar, window: Window) -> list[Event]:
        try:
            query = recurring_ical_events.of(cal, keep_recurrence_attributes=True)
        except Exception:
            return self._expand_by_uid(cal, window)
        events: list[Event] = []
        for series in query.series:
            events.extend(self._series(series, window))
        return events

    def _expand_by_uid(self, cal: icalendar.Calendar, window: Window) -> list[Event]:
        """The file as a whole did not expand: try each UID alone and name the bad ones."""
        groups: dict[str, list[Any]] = {}
        zones = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
        for component in cal.subcomponents:
            if component.name == "VEVENT":
                groups.setdefault(str(component.get("UID", "")), []).append(component)
        events: list[Event] = []
        for uid, components in groups.items():
            single = icalendar.Calendar()
            for key, value in cal.items():
                single[key] = value
            for component in (*zones, *components):
                single.add_component(component)
            try:
                query = recurring_ical_events.of(single, keep_recurrence_attributes=True)
            except Exception as exc:
                self.warn(uid, _why(exc))
                continue
            for series in query.series:
                events.extend(self._series(series, window))
        return events

    def _series(self, series: Any, window: Window) -> list[Event]:
        recurring = len(series.components) > 1
        try:
            occurrences = list(series.between(window.start, window.end))
        except Exception as exc:
            self.warn(series.uid, _why(exc))
            return []
        events = []
        for occurrence in occurrences:
            try:
                component = occurrence.as_component(True)
                event = self.event(component, recurring or any(
                    key in component for key in ("RRULE", "RDATE")))
            except Exception as exc:
                self.warn(series.uid, _why(exc))
                continue
            if window.overlaps(event.start, event.end):
                events.append(event)
        return events

    def _moment(self, value: date | datetime) -> datetime:
        if isinstance(value, datetime):
            # Floating times (RFC 5545 §3.3.5 form #1) are the clinician's local time.
            return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
        return datetime.combine(value, time(), self.tz)

    def event(self, component: Any, recurring: bool) -> Event:
        """One occurrence (a VEVENT copy made by recurring-ical-events) as an Event."""
        uid = str(component.get("UID") or "")
        start_value = component.decoded("DTSTART")
        all_day = not isinstance(start_value, datetime)
        start = self._moment(start_value)
        end = start
        if "DTEND" in component:
            end = self._moment(component.decoded("DTEND"))
        elif all_day:
            end = start + timedelta(days=1)
        if end < start:
            end = start
        event_id = uid or _anonymous_id(component)
        series = None
        if recurring:
            series = event_id
            rid = component.get("RECURRENCE-ID")
            event_id = f"{event_id}@{_stamp(rid.dt if rid is not None else start_value)}"
        owner = component.get(OWNER_PROPERTY)
        return Event(
            calendar=self.calendar,
            id=event_id,
            start=start,
            end=end,
            all_day=all_day,
            title=str(component.get("SUMMARY", "")),
            description=str(component.get("DESCRIPTION", "")),
            categories=_categories(component),
            color=str(component["COLOR"]).lower() if "COLOR" in component else None,
            cancelled=str(component.get("STATUS", "")).upper() == "CANCELLED",
            busy=str(component.get("TRANSP", "OPAQUE")).upper() != "TRANSPARENT",
            declined=self._declined(component),
            owner=str(owner) if owner is not None else None,
            series=series,
            etag=buffer_etag(component) if owner is not None else None,
        )

    def _declined(self, component: Any) -> bool:
        if not self.self_addresses:
            return False
        attendees = component.get("ATTENDEE", [])
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            address = str(attendee).lower().removeprefix("mailto:")
            partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper()
            if address in self.self_addresses and partstat == "DECLINED":
                return True
        return False


def _categories(component: Any) -> tuple[str, ...]:
    found: list[str] = []
    values = component.get("CATEGORIES", [])
    for value in values if isinstance(values, list) else [values]:
        cats = getattr(value, "cats", None)
        found.extend(str(c) for c in (cats if cats is not None else str(value).split(",")))
    return tuple(c.strip() for c in found if str(c).strip())


def _stamp(value: date | datetime) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        return value.strftime("%Y%m%dT%H%M%S")
    return value.strftime("%Y%m%d")


def _anonymous_id(component: Any) -> str:
    """Events without a UID (RFC 5545 makes it required, some exporters omit it)."""
    raw = f"{component.get('DTSTART').to_ical()!r}{component.get('SUMMARY', '')}"
    return "no-uid-" + hashlib.sha256(raw.encode()).hexdigest()[:16]


def buffer_etag(component: Any) -> str:
    """What identifies a buffer's content: changes when the user edits time or text."""
    parts = [component.get(name) for name in ("DTSTART", "DTEND", "SUMMARY", "DESCRIPTION",
                                               "TRANSP", "STATUS", "LOCATION", "CATEGORIES")]
    raw = "\n".join(p.to_ical().decode() if hasattr(p, "to_ical") else str(p or "") for p in parts)
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def buffer_uid(identity: str) -> str:
    return f"caldaemon-{identity}@caldaemon"


def buffer_component(buffer: Buffer, identity: str, stamp: datetime) -> icalendar.Event:
    """A buffer VEVENT: busy, no alarm, no attendee, nothing from the session."""
    vevent = icalendar.Event()
    vevent.add("UID", buffer_uid(identity))
    vevent.add("DTSTAMP", stamp.astimezone(timezone.utc))
    vevent.add("DTSTART", buffer.start.astimezone(timezone.utc))
    vevent.add("DTEND", buffer.end.astimezone(timezone.utc))
    vevent.add("SUMMARY", buffer.title)
    vevent.add("DESCRIPTION", BUFFER_DESCRIPTION)
    vevent.add("TRANSP", "OPAQUE")
    vevent.add("STATUS", "CONFIRMED")
    vevent.add(OWNER_PROPERTY, identity)
    return vevent
