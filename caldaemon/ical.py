"""iCalendar (RFC 5545) in and out: parse a file, expand recurrences into occurrences,
normalize them to :class:`Event`. caldaemon's own buffer VEVENTs are built in
:mod:`caldaemon.ical_buffers` (re-exported here).

Recurrence (RRULE, RDATE with dates or PERIODs, EXDATE, moved and cancelled instances,
RANGE=THISANDFUTURE) is expanded by recurring-ical-events, series by series, so one
series that cannot be read is skipped with a warning naming its UID while the rest of the
file still counts. VTIMEZONE, IANA, Windows and "globally unique" zone names are resolved
by icalendar; X-WR-TIMEZONE by x-wr-timezone.

Occurrences are read straight from recurring-ical-events' Occurrence objects instead of
the VEVENT copies its ``between()`` returns: a copy per occurrence is the costliest step
after parsing, and the text of a recurring event is the same for all its occurrences, so
it is read once per VEVENT.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone
from icalendar.timezone import tzp

from .errors import CalendarError
from .ical_buffers import PRODID, buffer_component, buffer_etag, buffer_uid
from .model import Event
from .providers.base import OWNER_PROPERTY, Window

__all__ = ["MAX_RULE_STEPS", "PRODID", "Reader", "buffer_component", "buffer_etag",
           "buffer_uid", "parse"]

# icalendar reads TZIDs like /freeassociation.sourceforge.net/Europe/Berlin (RFC 5545
# §3.2.19 "globally unique") as their IANA suffix and warns that it guessed. The guess is
# right for every exporter that writes them (libical, Evolution, Lightning); the warning
# would only reach the clinician as noise on stderr.
warnings.filterwarnings("ignore", category=icalendar.GloballyUniqueTZIDGuessed)

# A series whose rule would make dateutil step through more candidate times than this is
# not an appointment (RRULE:FREQ=SECONDLY from 1970, fuzzed files): skipped, never a hang.
# dateutil steps from DTSTART, not from the window, so the span counts from DTSTART.
MAX_RULE_STEPS = 500_000
_STEP = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 604800,
         "MONTHLY": 2629746, "YEARLY": 31556952}
_FINER = (("BYHOUR", 3600), ("BYMINUTE", 60), ("BYSECOND", 1))
_TIMING = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "RDATE", "EXDATE")
_LF = b"\n"
_BEGIN_VCALENDAR = re.compile(rb"(?im)^begin[ \t]*:[ \t]*vcalendar[ \t]*\r?$")


def parse(data: bytes, calendar: str, source: str) -> list[icalendar.Component]:
    """The top-level components of ``data`` that may hold events (normally its
    VCALENDARs); CalendarError with a one-line reason when the file as a whole is
    unusable. A blank file is an empty calendar (a buffers file not yet written)."""
    if not data.strip():
        return []
    try:
        found = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError, …
        raise CalendarError(calendar, source,
                            f"not a readable iCalendar file ({_why(exc, data)})") from None
    calendars = [c for c in found if c.name == "VCALENDAR"]
    # icalendar silently drops a component that is never closed: a file cut short (a
    # download or a save that stopped half-way) would read as a calendar with fewer
    # events, and buffers of the missing sessions would be removed.
    if len(_BEGIN_VCALENDAR.findall(data)) > len(calendars):
        raise CalendarError(calendar, source, "the file is incomplete: a BEGIN:VCALENDAR "
                            "(or a component inside it) has no matching END")
    if calendars:
        return [c for c in found if c.name == "VCALENDAR" or c.walk("VEVENT")]
    if any(c.walk("VEVENT") for c in found):
        return list(found)  # bare VEVENTs without a VCALENDAR around them: read them
    if not found:
        raise CalendarError(calendar, source, "not an iCalendar file (no VCALENDAR in it)")
    names = ", ".join(sorted({str(c.name) for c in found}))
    raise CalendarError(calendar, source, f"not a calendar: the file holds only {names} "
                        "and no VCALENDAR (RFC 5545 §3.4)")


def _why(exc: BaseException, data: bytes | None = None) -> str:
    """One line saying what is wrong, for a message that a person reads. icalendar
    quotes the content line it could not parse; that line may be a client's name
    (DESIGN.md §7), so a long quote becomes its line number in ``data``."""
    if type(exc) is KeyError and exc.args and isinstance(exc.args[0], str):
        return f"it has no {exc.args[0]}"
    text = (str(exc).strip().splitlines() or [""])[0]

    def where(match: re.Match[str]) -> str:
        at = data.find(match.group(2).encode()) if data is not None else -1
        if data is None or at < 0:
            return "…"
        return f"line {data.count(_LF, 0, at) + 1}"

    return re.sub(r"""(['"])(.{24,}?)\1""", where, text)[:160] or type(exc).__name__


class _Adapter(recurring_ical_events.EventAdapter):
    """recurring-ical-events' view of a VEVENT that also hands back the VEVENT."""

    @property
    def vevent(self) -> icalendar.Component:
        return self._component


class _Occurrence(recurring_ical_events.Occurrence):
    """An occurrence that knows its VEVENT and whether a rule generated it (it then has
    no RECURRENCE-ID of its own)."""

    def __init__(self, adapter: Any, start: Any = None, end: Any = None,
                 sequence: int = -1) -> None:
        super().__init__(adapter, start, end, sequence)
        self.generated = start is not None

    @property
    def adapter(self) -> _Adapter:
        adapter: _Adapter = self._adapter
        return adapter


class _Series(recurring_ical_events.Series):
    def occurrence(self, adapter: Any, start: Any = None, end: Any = None) -> _Occurrence:
        return _Occurrence(adapter, start, end)


def _diagnose(adapters: list[_Adapter], exc: BaseException) -> str:
    """Why a series could not be read, in the terms of the file where we can tell."""
    try:
        for vevent in (adapter.vevent for adapter in adapters):
            for name in _TIMING:
                found = vevent.get(name)
                if isinstance(found, list) and name in _TIMING[:4]:
                    return f"it has more than one {name} (RFC 5545 §3.6.1 allows one)"
                for value in found if isinstance(found, list) else [found]:
                    if isinstance(value, icalendar.vBroken):
                        return f"its {name} {str(value)[:40]!r} cannot be read"
                    if any(isinstance(v.dt, time) for v in getattr(value, "dts", [])):
                        return f"its {name} holds a time of day without a date"
    except Exception:
        pass  # the reason is only less precise
    if isinstance(exc, recurring_ical_events.BadRuleStringFormat):
        return f"its RRULE {str(exc.rule)[:60]!r} cannot be read (RFC 5545 §3.3.10)"
    return _why(exc)


class _Text:
    """What an event says, read once per VEVENT (all its occurrences share it)."""

    __slots__ = ("busy", "cancelled", "categories", "color", "declined", "description",
                 "etag", "owner", "title")

    def __init__(self, vevent: icalendar.Component, cancelled: bool, declined: bool) -> None:
        self.title = str(vevent.get("SUMMARY", ""))
        self.description = str(vevent.get("DESCRIPTION", ""))
        self.categories = _categories(vevent)
        self.color = str(vevent["COLOR"]).lower() if "COLOR" in vevent else None
        # RFC 5545 §3.8.1.11 STATUS, §3.8.2.7 TRANSP (default OPAQUE: busy).
        self.cancelled = cancelled or str(vevent.get("STATUS", "")).upper() == "CANCELLED"
        self.busy = str(vevent.get("TRANSP", "OPAQUE")).upper() != "TRANSPARENT"
        self.declined = declined
        owner = vevent.get(OWNER_PROPERTY)
        self.owner = str(owner) if owner is not None else None
        self.etag = buffer_etag(vevent) if owner is not None else None


class Reader:
    """Turns calendars into the events of one caldaemon calendar; ``warnings`` collects
    what it skipped, each naming the file and the event's UID."""

    def __init__(self, calendar: str, source: str, tz: ZoneInfo,
                 self_addresses: frozenset[str] = frozenset()) -> None:
        self.calendar = calendar
        self.source = source
        self.tz = tz
        self.self_addresses = frozenset(a.lower() for a in self_addresses)
        self._warnings: dict[str, None] = {}
        self._anonymous: dict[str, int] = {}

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    def note(self, text: str) -> None:
        self._warnings.setdefault(f"{self.source}: {text}", None)

    def warn(self, uid: object, reason: str) -> None:
        shown = " ".join(str(uid or "").split())[:120]
        shown = "(no UID)" if not shown or shown.startswith("no-uid-") else shown
        self.note(f"skipped event {shown}: {reason}")

    def events(self, calendars: Iterable[icalendar.Component], window: Window) -> list[Event]:
        found: list[Event] = []
        for top in calendars:
            if top.name != "VCALENDAR":
                self.note(f"{top.name} outside a VCALENDAR (RFC 5545 §3.4); read anyway")
            scale = str(top.get("CALSCALE", "GREGORIAN")).upper()
            if scale != "GREGORIAN":
                raise CalendarError(self.calendar, self.source, f"CALSCALE:{scale} is not "
                                    "supported, only GREGORIAN (RFC 5545 §3.7.1)")
            # iTIP (RFC 5546 §3.2.5): every event of a METHOD:CANCEL object is cancelled.
            cancelled = str(top.get("METHOD", "")).upper() == "CANCEL"
            for uid, adapters in self._groups(top).items():
                found.extend(self._series(uid, adapters, window, cancelled))
        return found

    def _groups(self, top: icalendar.Component) -> dict[str, list[_Adapter]]:
        """The VEVENTs of one calendar by UID (a series: RFC 5545 §3.8.4.4 RECURRENCE-ID
        ties a moved or cancelled instance to its series by UID)."""
        walker = self._x_wr_walker(top)
        groups: dict[str, list[_Adapter]] = {}
        for vevent in top.walk("VEVENT"):
            uid = vevent.get("UID")
            key = str(uid) if uid is not None else self._anonymous_id(vevent)
            if walker is not None:
                try:
                    vevent = walker.walk_event(vevent)
                except Exception as exc:
                    self.warn(uid, _why(exc))
                    continue
            groups.setdefault(key, []).append(_Adapter(vevent))
        return groups

    def _x_wr_walker(self, top: icalendar.Component) -> x_wr_timezone.CalendarWalker | None:
        """X-WR-TIMEZONE (Google, Apple exports): UTC and floating times mean local
        times in that zone. Applied event by event so one broken event stays alone."""
        name = top.get(x_wr_timezone.X_WR_TIMEZONE)
        if name is None:
            return None
        zone = tzp.timezone(str(name))
        if zone is None:
            self.note(f"unknown X-WR-TIMEZONE {str(name)!r}; times are read as written")
            return None
        return x_wr_timezone.UTCChangingWalker(zone)

    def _series(self, uid: str, adapters: list[_Adapter], window: Window,
                cancelled: bool) -> list[Event]:
        try:
            series = _Series(adapters)
            recurring = any(a.is_modification() or a.has_recurrence_rules()
                            for a in series.components)
            too_many = self._too_many(series, window) if recurring else None
        except Exception as exc:
            self.warn(uid, _diagnose(adapters, exc))
            return []
        if too_many:
            self.warn(uid, too_many)
            return []
        events: list[Event] = []
        texts: dict[int, _Text] = {}
        try:
            for occurrence in series.between(window.start, window.end):
                event = self._event(uid, occurrence, recurring, texts, cancelled)
                if window.overlaps(event.start, event.end):
                    events.append(event)
        except Exception as exc:
            self.warn(uid, _diagnose(adapters, exc))
            return []
        return events

    def _event(self, uid: str, occurrence: _Occurrence, recurring: bool,
               texts: dict[int, _Text], cancelled: bool) -> Event:
        adapter = occurrence.adapter
        text = texts.get(id(adapter))
        if text is None:
            text = texts[id(adapter)] = _Text(adapter.vevent, cancelled,
                                              self._declined(adapter.vevent))
            self._check_zones(adapter.vevent)
        start_value = occurrence.start
        start = self._moment(start_value)
        end = max(self._moment(occurrence.end), start)
        event_id = uid
        if recurring:
            # Each occurrence is named by its RECURRENCE-ID (RFC 5545 §3.8.4.4): the
            # original start, which a moved instance keeps, so its id (and its buffer's
            # identity) stays the same when it moves.
            rid = (start_value - adapter.move_recurrences_by if occurrence.generated
                   else adapter.vevent["RECURRENCE-ID"].dt
                   if adapter.is_modification() else start_value)
            event_id = f"{uid}@{self._stamp(rid)}"
        return Event(
            calendar=self.calendar, id=event_id, start=start, end=end,
            all_day=not isinstance(start_value, datetime), title=text.title,
            description=text.description, categories=text.categories, color=text.color,
            cancelled=text.cancelled, busy=text.busy, declined=text.declined,
            owner=text.owner, series=uid if recurring else None, etag=text.etag)

    def _moment(self, value: date | datetime) -> datetime:
        if isinstance(value, datetime):
            # Floating times (RFC 5545 §3.3.5 form #1) are the clinician's local time.
            return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
        # A DATE (all-day, §3.3.4) starts at the clinician's local midnight.
        return datetime.combine(value, time(), self.tz)

    def _stamp(self, value: date | datetime) -> str:
        if isinstance(value, datetime):
            return self._moment(value).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return value.strftime("%Y%m%d")

    def _too_many(self, series: _Series, window: Window) -> str | None:
        """Why expanding this series' rules could take minutes, or None (see
        MAX_RULE_STEPS)."""
        for adapter in series.components:
            rules = adapter.vevent.get("RRULE")
            if rules is None:
                continue
            begin = self._moment(adapter.start)
            reach = window.end + abs(adapter.end - adapter.start)
            for rule in rules if isinstance(rules, list) else [rules]:
                step = _STEP.get(str(rule.get("FREQ", ["DAILY"])[0]).upper(), 86400)
                step *= max(1, int(rule.get("INTERVAL", [1])[0] or 1))
                until = [self._moment(u) for u in rule.get("UNTIL", [])]
                stop = min([reach, *until])
                steps = max(0.0, (stop - begin).total_seconds()) / step
                for name, unit in _FINER:
                    if name in rule and step > unit:
                        steps *= len(rule[name])
                if "COUNT" in rule:
                    steps = min(steps, int(rule["COUNT"][0]))
                if steps > MAX_RULE_STEPS:
                    return (f"its rule {rule.to_ical().decode()[:80]} repeats too often "
                            f"to be an appointment (about {steps:.0f} times)")
        return None

    def _check_zones(self, vevent: icalendar.Component) -> None:
        """A TZID that names no VTIMEZONE and no known zone (RFC 5545 §3.2.19 requires
        one) leaves a floating time: say that it is read as the clinician's time."""
        for name in ("DTSTART", "DTEND"):
            prop = vevent.get(name)
            tzid = getattr(prop, "params", {}).get("TZID")
            value = getattr(prop, "dt", None)
            if tzid and isinstance(value, datetime) and value.tzinfo is None:
                self.note(f"unknown time zone {str(tzid)!r}: its times are read as "
                          f"{self.tz.key} time")

    def _declined(self, vevent: icalendar.Component) -> bool:
        if not self.self_addresses:
            return False
        attendees = vevent.get("ATTENDEE", [])
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            address = str(attendee).lower().removeprefix("mailto:")
            partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper()
            if address in self.self_addresses and partstat == "DECLINED":
                return True
        return False

    def _anonymous_id(self, vevent: icalendar.Component) -> str:
        """Events without a UID (RFC 5545 §3.8.4.7 requires one, some exporters omit it):
        an id from their content, numbered when two are alike."""
        try:
            raw = vevent.to_ical()
        except Exception:
            raw = repr(sorted(vevent.keys())).encode()
        base = "no-uid-" + hashlib.sha256(raw).hexdigest()[:16]
        count = self._anonymous[base] = self._anonymous.get(base, 0) + 1
        return base if count == 1 else f"{base}-{count}"


def _categories(vevent: icalendar.Component) -> tuple[str, ...]:
    found: list[str] = []
    values = vevent.get("CATEGORIES", [])
    for value in values if isinstance(values, list) else [values]:
        cats = getattr(value, "cats", None)
        found.extend(str(c) for c in (cats if cats is not None else str(value).split(",")))
    return tuple(c.strip() for c in found if str(c).strip())
