"""iCalendar (RFC 5545) in and out: parse a file, expand recurrences into occurrences,
normalize them to :class:`Event`. caldaemon's own buffer VEVENTs are built in
:mod:`.mapping`.

Recurrence (RRULE, RDATE with dates or PERIODs, EXDATE, moved and cancelled instances,
RANGE=THISANDFUTURE) is expanded by recurring-ical-events, series by series, so one
series that cannot be read is skipped with a warning naming the event's number (never
its text or UID) while the rest of the file still counts. VTIMEZONE, IANA, Windows and
"globally unique" zone names are resolved by icalendar, Windows display names (as
Exchange 2010 writes them) by :mod:`.zones`; X-WR-TIMEZONE by x-wr-timezone.

Occurrences are read straight from recurring-ical-events' Occurrence objects instead of
the VEVENT copies its ``between()`` returns: a copy per occurrence is the costliest step
after parsing, and the text of a recurring event is the same for all its occurrences, so
it is read once per VEVENT.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import icalendar
import x_wr_timezone
from icalendar.timezone import tzp

from caldaemon.errors import CalendarError
from caldaemon.model import Event, Window
from caldaemon.providers.ics.lean import Plain, plain_event
from caldaemon.providers.ics.mapping import buffer_uid
from caldaemon.providers.ics.series import (
    Adapter,
    Occurrence,
    Series,
    diagnose,
    rule_steps,
    too_many,
)
from caldaemon.providers.ics.text import EventText, declined
from caldaemon.providers.ics.zones import fix_zones

# A file can make a warning per event; past this many, the rest are counted, not listed.
MAX_WARNINGS = 50
# Bounds on what one file may cost (DESIGN.md §5: bounded time and memory). A series
# with more occurrences in the window than a year of hourly sessions is not an
# appointment; a calendar with more events in the window than this is not a clinician's;
# and all rules of a file together step through at most this many candidate times
# (each series alone: series.MAX_RULE_STEPS).
MAX_SERIES_EVENTS = 10_000
MAX_EVENTS = 100_000
MAX_FILE_STEPS = 5_000_000

# icalendar reads TZIDs like /freeassociation.sourceforge.net/Europe/Berlin (RFC 5545
# §3.2.19 "globally unique") as their IANA suffix and warns that it guessed. The guess is
# right for every exporter that writes them (libical, Evolution, Lightning); the warning
# would only reach the clinician as noise on stderr.
warnings.filterwarnings("ignore", category=icalendar.GloballyUniqueTZIDGuessed)


class Reader:
    """Turns calendars into the events of one caldaemon calendar; ``warnings`` collects
    what it skipped or guessed, each naming the file and the event's number (the n-th
    VEVENT of the file), never its text (DESIGN.md §7)."""

    def __init__(
        self, calendar: str, source: str, tz: ZoneInfo, self_addresses: frozenset[str] = frozenset()
    ) -> None:
        self.calendar = calendar
        self.source = source
        self.tz = tz
        self.self_addresses = frozenset(a.lower() for a in self_addresses)
        self._warnings: dict[str, None] = {}
        self._hidden = 0
        self._anonymous: dict[str, int] = {}
        self._numbers: dict[int, int] = {}  # id(VEVENT) → its number in the file
        self._counted = 0
        self._zones: dict[str, list[int]] = {}
        self._steps = 0.0
        self._total = 0

    @property
    def warnings(self) -> list[str]:
        shown = list(self._warnings)
        if self._hidden:
            shown.append(f"{self.source}: {self._hidden} more warnings like these")
        return shown

    def note(self, text: str) -> None:
        line = f"{self.source}: {text}"
        if line in self._warnings:
            return
        if len(self._warnings) >= MAX_WARNINGS:
            self._hidden += 1  # a hostile file must not make a warning per event
            return
        self._warnings[line] = None

    def warn(self, vevent: icalendar.Component | None, reason: str) -> None:
        self.note(f"skipped {self._name(vevent)}: {reason}")

    def _name(self, vevent: icalendar.Component | None) -> str:
        number = self._numbers.get(id(vevent)) if vevent is not None else None
        return f"event {number}" if number else "an event"

    def events(
        self,
        calendars: Iterable[icalendar.Component],
        window: Window,
        dropped: Collection[int] = (),
        plain: Iterable[tuple[int, Plain]] = (),
    ) -> list[Event]:
        """The events of ``calendars`` in ``window``. ``dropped``: numbers of VEVENTs the
        parser left out (:class:`~.parse.Parsed`), so the others keep their numbers.
        ``plain``: VEVENTs read from their lines (:mod:`.lean`) by their numbers, of the
        one calendar there then is; their events take their places among the others."""
        found: list[Event] = []
        waiting = list(plain)
        for top in calendars:
            if top.name != "VCALENDAR":
                self.note("events outside a VCALENDAR (RFC 5545 §3.4); read anyway")
            scale = str(top.get("CALSCALE", "GREGORIAN")).upper()
            if scale != "GREGORIAN":
                raise CalendarError(
                    self.calendar,
                    self.source,
                    "its CALSCALE is not GREGORIAN, the only one supported (RFC 5545 §3.7.1)",
                )
            # iTIP (RFC 5546 §3.2.5): every event of a METHOD:CANCEL object is cancelled.
            cancelled = str(top.get("METHOD", "")).upper() == "CANCEL"
            at = 0
            firsts: dict[str, int] = {}
            for uid, group in self._groups(top, dropped, firsts).items():
                while at < len(waiting) and waiting[at][0] < firsts[uid]:
                    found.extend(self._plain(waiting[at][1], window, cancelled))
                    at += 1
                found.extend(self._series(uid, group, window, cancelled))
            for _, event in waiting[at:]:
                found.extend(self._plain(event, window, cancelled))
            waiting = []
        for text, numbers in self._zones.items():
            self.note(text.format(events=_numbered(numbers)))
        self._zones = {}
        return found

    def _groups(
        self, top: icalendar.Component, dropped: Collection[int], firsts: dict[str, int]
    ) -> dict[str, list[Adapter]]:
        """The VEVENTs of one calendar by UID (a series: RFC 5545 §3.8.4.4 RECURRENCE-ID
        ties a moved or cancelled instance to its series by UID). A VEVENT that ends
        before it starts makes its whole series unreadable (an empty group). ``firsts``
        gets the number of each group's first VEVENT."""
        walker = self._x_wr_walker(top)
        groups: dict[str, list[Adapter]] = {}
        broken: set[str] = set()
        for vevent in top.walk("VEVENT"):
            self._counted += 1
            while self._counted in dropped:
                self._counted += 1
            number = self._counted
            uid = vevent.get("UID")
            key = str(uid) if uid is not None else self._anonymous_id(vevent)
            firsts.setdefault(key, number)
            if key in broken:
                continue
            self._numbers[id(vevent)] = number
            try:
                self._place(vevent, number)
                if walker is not None:
                    vevent = walker.walk_event(vevent)
                    self._numbers[id(vevent)] = number
                backwards = self._ends_before_start(vevent)
            except Exception as exc:
                self.warn(vevent, diagnose([Adapter(vevent)], exc)[1])
                broken.add(key)
                groups[key] = []
                continue
            if backwards:
                self.warn(vevent, backwards)
                broken.add(key)
                groups[key] = []
                continue
            groups.setdefault(key, []).append(Adapter(vevent))
        return groups

    def _place(self, vevent: icalendar.Component, number: int) -> None:
        """Times whose TZID icalendar does not know: a Windows display name or a
        "(UTC±hh:mm)" prefix where there is one; else DTSTART in the clinician's zone, as
        floating times (RFC 5545 §3.3.5) are, and DTEND and the others in the zone of
        DTSTART. Placed here rather than left floating: recurring-ical-events would give
        a floating time the zone of the event's other end. Each is said in a warning that
        names the property, not the zone (a TZID is the file's text)."""

        def fallback(name: str) -> tzinfo:
            start = getattr(vevent.get("DTSTART"), "dt", None)
            if name == "DTSTART" or not isinstance(start, datetime) or start.tzinfo is None:
                return self.tz
            return start.tzinfo

        for name, how in fix_zones(vevent, fallback):
            if how == "offset":
                reading = (
                    "read at the UTC offset its name states (daylight saving time may be "
                    "off by an hour)"
                )
            elif name == "DTSTART":
                reading = f"read as {self.tz.key} time"
            else:
                reading = "read in the zone of the event's DTSTART"
            text = f"the time zone of {name} in {{events}} is unknown; {reading}"
            self._zones.setdefault(text, []).append(number)

    def _ends_before_start(self, vevent: icalendar.Component) -> str | None:
        """Why the event ends before it starts, or None. RFC 5545 §3.8.2.2 requires a
        later DTEND; such an event is skipped with a warning, never turned around (which
        recurring-ical-events would do)."""
        start = getattr(vevent.get("DTSTART"), "dt", None)
        if not isinstance(start, date):
            return None
        end = getattr(vevent.get("DTEND"), "dt", None)
        if isinstance(end, date):
            backwards = self._moment(end) < self._moment(start)
            return "its DTEND lies before its DTSTART" if backwards else None
        duration = getattr(vevent.get("DURATION"), "dt", None)
        if isinstance(duration, timedelta) and duration < timedelta(0):
            return "its DURATION is negative"
        return None

    def _x_wr_walker(self, top: icalendar.Component) -> x_wr_timezone.CalendarWalker | None:
        """X-WR-TIMEZONE (Google, Apple exports): UTC and floating times mean local
        times in that zone. Applied event by event so one broken event stays alone."""
        name = top.get(x_wr_timezone.X_WR_TIMEZONE)
        if name is None:
            return None
        zone = tzp.timezone(str(name))
        if zone is None:
            self.note("its X-WR-TIMEZONE names an unknown time zone; times are read as written")
            return None
        return x_wr_timezone.UTCChangingWalker(zone)

    def _series(
        self, uid: str, adapters: list[Adapter], window: Window, cancelled: bool
    ) -> list[Event]:
        if not adapters:
            return []
        try:
            series = Series(adapters)
            recurring = any(
                a.is_modification() or a.has_recurrence_rules() for a in series.components
            )
            steps = rule_steps(series, window, self._moment) if recurring else 0.0
        except Exception as exc:
            index, reason = diagnose(adapters, exc)
            self.warn(adapters[index].vevent, reason)
            return []
        refusal = too_many(steps)
        if refusal is None and self._steps + steps > MAX_FILE_STEPS:
            refusal = "the file's rules together repeat too often to expand them all"
        if refusal:
            self.warn(adapters[0].vevent, refusal)
            return []
        self._steps += steps
        events: list[Event] = []
        texts: dict[int, tuple[EventText, timedelta]] = {}
        try:
            for occurrence in series.between(window.start, window.end):
                event = self._event(uid, occurrence, recurring, texts, cancelled)
                if window.overlaps(event.start, event.end):
                    events.append(event)
                if len(events) > MAX_SERIES_EVENTS:
                    self.warn(
                        adapters[0].vevent,
                        f"it repeats more than {MAX_SERIES_EVENTS:,} times in the window: "
                        "not an appointment",
                    )
                    return []
        except Exception as exc:
            index, reason = diagnose(adapters, exc)
            self.warn(adapters[index].vevent, reason)
            return []
        self._count(len(events))
        return events

    def _plain(self, plain: Plain, window: Window, cancelled: bool) -> list[Event]:
        """The event of a VEVENT read from its lines, as :meth:`_series` makes it of a
        series of one."""
        event = plain_event(plain, self.calendar, window, cancelled, self._moment)
        if event is None:
            return []
        self._count(1)
        return [event]

    def _count(self, events: int) -> None:
        """Adds ``events`` to the file's events in the window, which may not pass
        :data:`MAX_EVENTS`."""
        self._total += events
        if self._total > MAX_EVENTS:
            raise CalendarError(
                self.calendar,
                self.source,
                f"more than {MAX_EVENTS:,} events in the window: not a clinician's calendar",
            )

    def _event(
        self,
        uid: str,
        occurrence: Occurrence,
        recurring: bool,
        texts: dict[int, tuple[EventText, timedelta]],
        cancelled: bool,
    ) -> Event:
        adapter = occurrence.adapter
        known = texts.get(id(adapter))
        if known is None:
            # What all occurrences of a VEVENT share: its text, and how far a moved
            # instance with RANGE=THISANDFUTURE shifts the ones it generates.
            text = EventText(
                adapter.vevent, cancelled, declined(adapter.vevent, self.self_addresses)
            )
            shift = adapter.move_recurrences_by if recurring else timedelta(0)
            known = texts[id(adapter)] = (text, shift)
        text, shift = known
        start_value = occurrence.start
        start = self._moment(start_value)
        end = max(self._moment(occurrence.end), start)
        event_id = uid
        if recurring:
            # Each occurrence is named by its RECURRENCE-ID (RFC 5545 §3.8.4.4): the
            # original start, which a moved instance keeps, so its id (and its buffer's
            # identity) stays the same when it moves.
            rid: date | datetime
            if occurrence.generated:
                rid = start_value - shift
            elif adapter.is_modification():
                found = getattr(adapter.vevent.get("RECURRENCE-ID"), "dt", None)
                rid = found if isinstance(found, date) else start_value
            else:
                rid = start_value
            event_id = f"{uid}@{self._stamp(rid)}"
        # The marker is ours only on the event caldaemon wrote under it: the UID derived
        # from its value (DESIGN.md §5). A user's copy of a buffer keeps the marker under
        # a new UID, and a recurring event is never one caldaemon wrote: marked, no owner.
        bound = text.marker is not None and event_id == buffer_uid(text.marker)
        return Event(
            calendar=self.calendar,
            id=event_id,
            start=start,
            end=end,
            all_day=not isinstance(start_value, datetime),
            title=text.title,
            description=text.description,
            categories=text.categories,
            color=text.color,
            cancelled=text.cancelled,
            busy=text.busy,
            declined=text.declined,
            out_of_office=text.out_of_office,
            owner=text.marker if bound else None,
            marked=text.marker is not None,
            series=uid if recurring else None,
            etag=text.etag if bound else None,
        )

    def _moment(self, value: date | datetime) -> datetime:
        if isinstance(value, datetime):
            # Floating times (RFC 5545 §3.3.5 form #1) are the clinician's local time.
            return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
        # A DATE (all-day, §3.3.4) starts at the clinician's local midnight.
        return datetime.combine(value, time(), self.tz)

    def _stamp(self, value: date | datetime) -> str:
        # As strftime("%Y%m%dT%H%M%SZ") writes them (the year unpadded), at half the cost.
        if isinstance(value, datetime):
            u = self._moment(value).astimezone(UTC)
            return f"{u.year}{u.month:02}{u.day:02}T{u.hour:02}{u.minute:02}{u.second:02}Z"
        return f"{value.year}{value.month:02}{value.day:02}"

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


def _numbered(numbers: list[int]) -> str:
    """ "event 3", "events 3 and 7", "events 3, 7, 9 and 12 others"."""
    if len(numbers) == 1:
        return f"event {numbers[0]}"
    if len(numbers) <= 4:
        return f"events {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"
    return f"events {', '.join(map(str, numbers[:3]))} and {len(numbers) - 3} others"
