"""Keeping the event cache in step with one calendar: incremental listing, the listing and
its token stored in one transaction, and the empty-read guard (DESIGN.md §5).

History (``caldaemon hours``, DESIGN.md §11): past events stay in the cache for
``daemon.keep_history``, each with the kind and level it was given while its title was at
hand. A listing that starts later never erases them; ``history_from`` says since when the
cache holds a calendar without a gap, and a daemon that was away longer than the window
reaches back lists from where it left off, so the gap is filled rather than recorded."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.classify import classify, tags_of, title_rules
from caldaemon.errors import CalendarError, CalendarPaused
from caldaemon.model import Window
from caldaemon.providers.base import Listing, Provider
from caldaemon.state import State
from caldaemon.state.calendars import CalendarState
from caldaemon.state.events import Cached

log = logging.getLogger("caldaemon.sync")

# A full listing covers this much beyond what the rules need, so incremental syncs keep
# working for a week before the window has to move (and a full listing is due again).
WINDOW_SLACK = timedelta(days=7)
# An authorization that failed is tried again this often (the person may have fixed it).
PAUSE_RETRY = timedelta(hours=1)


@dataclass(frozen=True)
class SyncResult:
    calendar: str
    ok: bool
    trusted: bool
    error: CalendarError | None = None
    warnings: tuple[str, ...] = ()
    titles: dict[str, str] | None = None
    # An incremental listing with nothing in it: the cache is what it was. ``listed_from``
    # is the token the listing started from (as the state held it), ``token`` the one
    # stored after it; a cycle compares them with what it stored itself last time.
    quiet: bool = False
    listed_from: str | None = None
    token: str | None = None
    # The window the cache now holds the calendar for (stored with the listing): the
    # evidence a reconcile of the buffers calendar needs, without reading it back.
    window: Window | None = None


def vocabulary(settings: Settings, clinician: ClinicianSettings) -> str:
    """What the cached classification inputs depend on; when it changes the cache is
    rebuilt by a full listing (the cache keeps only known tags and a title-match bit)."""
    c = settings.classification
    raw = "\n".join(
        [
            ",".join(sorted(c.tags)),
            ",".join(sorted(c.colors)),
            c.title_pattern.pattern if c.title_pattern else "",
            "|".join(r.title_pattern.pattern for r in c.rules if r.title_pattern),
            str(clinician.tz),
        ]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def sync_calendar(
    settings: Settings,
    clinician: ClinicianSettings,
    provider: Provider,
    state: State,
    needed: Window,
    now: datetime,
) -> SyncResult:
    """Bring the cache of one calendar up to date. Never raises for calendar problems:
    they are recorded and returned, so one calendar never stops the others."""
    with state.read() as tables:
        row = tables.calendars.get(clinician.id, provider.id)
    if (
        row is not None
        and row.paused
        and row.last_error_at
        and (row.last_error_at > now - PAUSE_RETRY)
    ):
        return SyncResult(
            provider.id,
            ok=False,
            trusted=False,
            error=CalendarError(provider.id, provider.describe(), row.paused),
        )
    vocab = vocabulary(settings, clinician)
    stored = row.window if row is not None else None
    token = row.token if row is not None else None
    full = (
        row is None
        or token is None
        or row.vocabulary != vocab
        or stored is None
        or not stored.covers(needed)
    )
    start = needed.start
    if full and row is not None and row.history_from and row.last_success:
        # Away longer than the window reaches back: list from where the daemon left off
        # (within keep_history), so what happened meanwhile is seen after it happened.
        start = min(start, max(row.last_success, now - settings.daemon.keep_history))
    window = Window(start, needed.end + WINDOW_SLACK) if full or stored is None else stored
    try:
        listing = provider.changes(window, None if full else token)
    except CalendarError as exc:
        record_failure(state, clinician.id, provider.id, exc, now)
        return SyncResult(provider.id, ok=False, trusted=False, error=exc)
    except Exception as exc:  # a bug or an unexpected library error: contain it
        log.exception("reading calendar %s of %s failed unexpectedly", provider.id, clinician.id)
        error = CalendarError(
            provider.id, provider.describe(), f"unexpected error: {type(exc).__name__}"
        )
        record_failure(state, clinician.id, provider.id, error, now)
        return SyncResult(provider.id, ok=False, trusted=False, error=error)

    for warning in listing.warnings:
        log.warning("%s", warning)
    # Titles stay in memory only, and only when notices may show them (privacy: full).
    titles = (
        {e.key: e.title for e in listing.events} if settings.notices.privacy == "full" else None
    )
    if _looks_emptied(state, clinician.id, provider.id, listing, window, row):
        log.warning(
            "calendar %s of %s came back empty where events were known; "
            "nothing is deleted this cycle",
            provider.id,
            clinician.id,
        )
        with state.transaction(durable=False) as tables:
            tables.calendars.record_empty_read(clinician.id, provider.id)
        return SyncResult(provider.id, ok=True, trusted=False, warnings=listing.warnings)
    _store(settings, clinician, state, provider.id, listing, window, vocab, now, row)
    return SyncResult(
        provider.id,
        ok=True,
        trusted=True,
        warnings=listing.warnings,
        titles=titles,
        quiet=not (full or listing.full or listing.events or listing.removed),
        listed_from=token,
        token=listing.token,
        window=window,
    )


def _looks_emptied(
    state: State,
    clinician: str,
    calendar: str,
    listing: Listing,
    window: Window,
    row: CalendarState | None,
) -> bool:
    """A listing that suddenly holds nothing where we knew events is more often an
    outage or a wrong account than a cleared calendar: believe it the second time."""
    if (
        row is None
        or row.empty_reads > 0
        or listing.events
        or (not listing.full and not listing.removed)
    ):
        return False  # events came back, or nothing changed: the usual poll costs no query
    with state.read() as tables:
        known = tables.events.ids(clinician, calendar, window)
    if not known:
        return False
    # Only removals of events we hold count (a deleted open-ended series can report a
    # thousand cancelled instances we never cached).
    return listing.full or known <= set(listing.removed)


def history_cutoff(settings: Settings, window_start: datetime, now: datetime) -> datetime:
    """Events that ended before this are forgotten: ``keep_history`` ago, or the start of
    what the rules need when that lies further back."""
    return min(window_start, now - settings.daemon.keep_history)


def _store(
    settings: Settings,
    clinician: ClinicianSettings,
    state: State,
    calendar: str,
    listing: Listing,
    window: Window,
    vocab: str,
    now: datetime,
    row: CalendarState | None,
) -> None:
    c = settings.classification
    known_tags, known_colors = set(c.tags), set(c.colors)
    busy_only = calendar in clinician.busy_calendars
    cutoff = history_cutoff(settings, window.start, now)
    keep: list[Cached] = []
    drop = list(listing.removed)
    for event in listing.events:
        # A change to a past event outside the window (an incremental listing reports
        # changes anywhere) still corrects history.
        if window.overlaps(event.start, event.end) or cutoff < event.end <= window.start:
            matches = bool(c.title_pattern.search(event.title)) if c.title_pattern else False
            # Like tags, a colour is kept only when the config gives it a meaning: an ICS
            # COLOR is free text (DESIGN.md §7).
            color = event.color if (event.color or "").lower() in known_colors else None
            cached = replace(event, color=color) if color != event.color else event
            rules = title_rules(c, event.title)
            found = tags_of(event)
            # Decided now, while the title is at hand; marks are applied when read.
            decided = classify(
                event, c, busy_only=busy_only, tz=clinician.tz, tags=tuple(sorted(found))
            )
            tags = frozenset(found & known_tags)
            keep.append(Cached(cached, tags, matches, rules, decided.kind.value, decided.level))
        else:
            drop.append(event.id)
    # The cache holds this calendar without a gap from history_from when this listing
    # reaches back to the last one (an incremental one always does).
    continuous = (
        row is not None
        and row.history_from is not None
        and row.last_success is not None
        and window.start <= row.last_success
    )
    history_from = row.history_from if continuous and row and row.history_from else window.start
    # Not durable (caldaemon.state.db): lost to a power cut, the listing is read again
    # from the token before it.
    with state.transaction(durable=False) as tables:
        if listing.full:
            first = min((e.start for e in listing.events), default=now)
            tables.events.replace_listed(clinician.id, calendar, window, min(now, first))
        tables.events.remove(clinician.id, calendar, drop)
        tables.events.drop_ended_before(clinician.id, calendar, cutoff)
        tables.events.store(clinician.id, keep)
        tables.calendars.record_success(
            clinician.id,
            calendar,
            token=listing.token,
            window=window,
            vocabulary=vocab,
            now=now,
            history_from=max(history_from, cutoff),
        )
        tables.problems.clear(f"calendar:{clinician.id}/{calendar}:")


def record_failure(
    state: State, clinician: str, calendar: str, error: CalendarError, now: datetime
) -> None:
    log.warning("calendar %s of %s: %s", calendar, clinician, error)
    # An expired sign-in, or a service that refuses the calendar for hours: not asked
    # again before PAUSE_RETRY (a person may act meanwhile).
    paused = error.reason if isinstance(error, CalendarPaused) else None
    with state.transaction() as tables:
        tables.calendars.record_failure(
            clinician, calendar, error=str(error), paused=paused, now=now
        )
