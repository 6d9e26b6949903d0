"""What ``caldaemon hours`` counts (DESIGN.md §11): one clinician's classified events over a
span, from the daemon's history where its cache holds the calendar, and read live
(read-only, as ``check`` reads) where it does not.

Per calendar, the cache is used from its ``history_from`` (since when it holds every event
without a gap) up to the end of its window when the daemon read it lately, else up to its
last successful read. The rest of the span is read live: before the history starts
(caldaemon was installed later, or ``keep_history`` is shorter) and after a read that is
old (the daemon is not running). An event comes from exactly one source: the cache when
it starts inside the part the cache holds, else the live listing. A calendar that cannot
be read is an error, never a smaller total.

Why combine rather than read everything live: a practice system's feed forgets the past
(TheraNest shows 60 days ahead, others a month back; RESEARCH.md), so only the cache
knows last spring; and a year from the cache costs no request. Why read live at all: the
cache starts when the daemon started, and Google, Outlook, CalDAV and calendar files
still hold the years before that."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.classify import classify
from caldaemon.errors import CalendarError
from caldaemon.model import Classified, Event, Kind, Window
from caldaemon.providers.registry import open_provider
from caldaemon.service.providers import provider_context
from caldaemon.state import State
from caldaemon.state.calendars import CalendarState
from caldaemon.state.events import Recorded

# A cache read this many polls ago is still the daemon's current picture of a calendar.
FRESH_POLLS = 3


@dataclass(frozen=True)
class Source:
    """Where one calendar's events came from: ``cached`` the part of the span taken
    from the daemon's history, ``live`` the parts read from the calendar."""

    calendar: str
    cached: Window | None
    live: tuple[Window, ...]


@dataclass
class Gathered:
    classified: list[Classified] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[CalendarError] = field(default_factory=list)


@dataclass(frozen=True)
class _Cache:
    rows: dict[str, CalendarState]
    events: list[Recorded]
    marks: dict[str, str]


def gather(
    settings: Settings,
    clinician: ClinicianSettings,
    span: Window,
    now: datetime,
    *,
    live_only: bool = False,
) -> Gathered:
    """Every event of ``clinician`` that overlaps ``span``, classified; ``live_only``:
    read every calendar live (after a change of tags or rules, say)."""
    cache = _read_cache(settings, clinician.id, span)
    fresh_after = now - FRESH_POLLS * settings.daemon.poll_interval
    found = Gathered()
    busy = clinician.busy_calendars
    c = settings.classification
    for calendar in clinician.calendars:
        row = None if live_only else cache.rows.get(calendar.id)
        held = _held(row, fresh_after, span)
        pieces = _outside(span, held)
        found.sources.append(Source(calendar.id, held, pieces))
        if held is not None:
            for item in cache.events:
                if item.event.calendar == calendar.id and held.start <= item.event.start < held.end:
                    found.classified.append(_recorded(item, settings, clinician, cache.marks))
        if not pieces:
            continue
        events = _read_live(settings, clinician, calendar.id, pieces, found)
        for event in events:
            if held is None or not held.start <= event.start < held.end:
                found.classified.append(
                    classify(
                        event, c, busy_only=calendar.id in busy, tz=clinician.tz, marks=cache.marks
                    )
                )
    return found


def _read_cache(settings: Settings, clinician: str, span: Window) -> _Cache:
    """The daemon's history of ``clinician`` (nothing when it has no state); read-only."""
    if not settings.has_state:
        return _Cache({}, [], {})
    state = State(settings.state_location, read_only=True)
    try:
        with state.read() as tables:
            rows = {r.calendar: r for r in tables.calendars.all() if r.clinician == clinician}
            events = tables.events.recorded(clinician, span)
            marks = tables.marks.of(clinician)
    finally:
        state.close()
    return _Cache(rows, events, marks)


def _held(row: CalendarState | None, fresh_after: datetime, span: Window) -> Window | None:
    """The part of ``span`` the cache holds for one calendar, or None."""
    if row is None or row.history_from is None or row.last_success is None or not row.window:
        return None
    # Read lately: the cache is the daemon's current picture up to its window's end; else
    # only what had happened by its last read is settled.
    end = row.window.end if row.last_success >= fresh_after else row.last_success
    start, end = max(row.history_from, span.start), min(end, span.end)
    return Window(start, end) if start < end else None


def _outside(span: Window, held: Window | None) -> tuple[Window, ...]:
    if held is None:
        return (span,)
    parts = (Window(span.start, held.start), Window(held.end, span.end))
    return tuple(p for p in parts if p.start < p.end)


def _read_live(
    settings: Settings,
    clinician: ClinicianSettings,
    calendar: str,
    pieces: tuple[Window, ...],
    found: Gathered,
) -> list[Event]:
    """The events of ``pieces`` of one calendar, each once (an event can reach into two)."""
    events: dict[str, Event] = {}
    try:
        provider = open_provider(
            clinician.calendar(calendar), provider_context(settings, clinician)
        )
    except CalendarError as exc:
        found.errors.append(exc)
        return []
    try:
        for piece in pieces:
            listing = provider.changes(piece, None)
            found.warnings.extend(listing.warnings)
            events.update((e.id, e) for e in listing.events)
    except CalendarError as exc:
        found.errors.append(exc)
        return []
    finally:
        provider.close()
    return list(events.values())


def _recorded(
    item: Recorded, settings: Settings, clinician: ClinicianSettings, marks: Mapping[str, str]
) -> Classified:
    """A cached event as it was classified when stored; classified again from what the
    cache keeps when a mark concerns it (marks are applied as they are now) or when it was
    stored before kinds were kept."""
    event = item.event
    marked = event.key in marks or (event.series and f"{event.calendar}/{event.series}" in marks)
    if item.kind in _KINDS and not marked:
        return Classified(event, Kind(item.kind), item.level, "as recorded")
    busy_only = event.calendar in clinician.busy_calendars
    return classify(
        event, settings.classification, busy_only=busy_only, tz=clinician.tz, marks=marks
    )


_KINDS = frozenset(k.value for k in Kind)
