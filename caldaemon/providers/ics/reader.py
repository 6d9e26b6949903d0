"""iCalendar (RFC 5545) in and out: parse a file, expand recurrences into occurrences,
normalize them to :class:`Event`. caldaemon's own buffer VEVENTs are built in
:mod:`.mapping`.

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
import warnings
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import icalendar
import x_wr_timezone
from icalendar.timezone import tzp

from caldaemon.errors import CalendarError
from caldaemon.model import Event, Window
from caldaemon.providers.base import OWNER_PROPERTY
from caldaemon.providers.ics.mapping import buffer_etag
from caldaemon.providers.ics.parse import why
from caldaemon.providers.ics.series import Adapter, Occurrence, Series, diagnose, too_many

# icalendar reads TZIDs like /freeassociation.sourceforge.net/Europe/Berlin (RFC 5545
# §3.2.19 "globally unique") as their IANA suffix and warns that it guessed. The guess is
# right for every exporter that writes them (libical, Evolution, Lightning); the warning
# would only reach the clinician as noise on stderr.
warnings.filterwarnings("ignore", category=icalendar.GloballyUniqueTZIDGuessed)


class _Text:
    """What an event says, read once per VEVENT (all its occurrences share it)."""

    __slots__ = (
        "busy",
        "cancelled",
        "categories",
        "color",
        "declined",
        "description",
        "etag",
        "owner",
        "title",
    )

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

    def __init__(
        self, calendar: str, source: str, tz: ZoneInfo, self_addresses: frozenset[str] = frozenset()
    ) -> None:
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
                raise CalendarError(
                    self.calendar,
                    self.source,
                    f"CALSCALE:{scale} is not supported, only GREGORIAN (RFC 5545 §3.7.1)",
                )
            # iTIP (RFC 5546 §3.2.5): every event of a METHOD:CANCEL object is cancelled.
            cancelled = str(top.get("METHOD", "")).upper() == "CANCEL"
            for uid, adapters in self._groups(top).items():
                found.extend(self._series(uid, adapters, window, cancelled))
        return found

    def _groups(self, top: icalendar.Component) -> dict[str, list[Adapter]]:
        """The VEVENTs of one calendar by UID (a series: RFC 5545 §3.8.4.4 RECURRENCE-ID
        ties a moved or cancelled instance to its series by UID)."""
        walker = self._x_wr_walker(top)
        groups: dict[str, list[Adapter]] = {}
        for vevent in top.walk("VEVENT"):
            uid = vevent.get("UID")
            key = str(uid) if uid is not None else self._anonymous_id(vevent)
            if walker is not None:
                try:
                    vevent = walker.walk_event(vevent)
                except Exception as exc:
                    self.warn(uid, why(exc))
                    continue
            groups.setdefault(key, []).append(Adapter(vevent))
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

    def _series(
        self, uid: str, adapters: list[Adapter], window: Window, cancelled: bool
    ) -> list[Event]:
        try:
            series = Series(adapters)
            recurring = any(
                a.is_modification() or a.has_recurrence_rules() for a in series.components
            )
            refusal = too_many(series, window, self._moment) if recurring else None
        except Exception as exc:
            self.warn(uid, diagnose(adapters, exc))
            return []
        if refusal:
            self.warn(uid, refusal)
            return []
        events: list[Event] = []
        texts: dict[int, _Text] = {}
        try:
            for occurrence in series.between(window.start, window.end):
                event = self._event(uid, occurrence, recurring, texts, cancelled)
                if window.overlaps(event.start, event.end):
                    events.append(event)
        except Exception as exc:
            self.warn(uid, diagnose(adapters, exc))
            return []
        return events

    def _event(
        self,
        uid: str,
        occurrence: Occurrence,
        recurring: bool,
        texts: dict[int, _Text],
        cancelled: bool,
    ) -> Event:
        adapter = occurrence.adapter
        text = texts.get(id(adapter))
        if text is None:
            text = texts[id(adapter)] = _Text(
                adapter.vevent, cancelled, self._declined(adapter.vevent)
            )
            self._check_zones(adapter.vevent)
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
                rid = start_value - adapter.move_recurrences_by
            elif adapter.is_modification():
                found = getattr(adapter.vevent.get("RECURRENCE-ID"), "dt", None)
                rid = found if isinstance(found, date) else start_value
            else:
                rid = start_value
            event_id = f"{uid}@{self._stamp(rid)}"
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
            owner=text.owner,
            series=uid if recurring else None,
            etag=text.etag,
        )

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

    def _check_zones(self, vevent: icalendar.Component) -> None:
        """A TZID that names no VTIMEZONE and no known zone (RFC 5545 §3.2.19 requires
        one) leaves a floating time: say that it is read as the clinician's time."""
        for name in ("DTSTART", "DTEND"):
            prop = vevent.get(name)
            tzid = getattr(prop, "params", {}).get("TZID")
            value = getattr(prop, "dt", None)
            if tzid and isinstance(value, datetime) and value.tzinfo is None:
                self.note(
                    f"unknown time zone {str(tzid)!r}: its times are read as {self.tz.key} time"
                )

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
