"""Keeping the event cache in step with one calendar: incremental listing, the listing and
its token stored in one transaction, and the empty-read guard (DESIGN.md §5)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from .classify import tags_of
from .config import ClinicianSettings, Settings
from .errors import AuthorizationError, CalendarError
from .providers.base import Listing, Provider, Window
from .state import State, event_row, iso, parse_iso

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


def vocabulary(settings: Settings, clinician: ClinicianSettings) -> str:
    """What the cached classification inputs depend on; when it changes the cache is
    rebuilt by a full listing (the cache keeps only known tags and a title-match bit)."""
    c = settings.classification
    raw = "\n".join(
        [
            ",".join(sorted(c.tags)),
            ",".join(sorted(c.colors)),
            c.title_pattern.pattern if c.title_pattern else "",
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
    row = state.calendar(clinician.id, provider.id)
    if (
        row is not None
        and row.paused
        and row.last_error_at
        and (parse_iso(row.last_error_at) > now - PAUSE_RETRY)
    ):
        return SyncResult(
            provider.id,
            ok=False,
            trusted=False,
            error=CalendarError(provider.id, provider.describe(), row.paused),
        )
    vocab = vocabulary(settings, clinician)
    stored = (
        Window(parse_iso(row.window_start), parse_iso(row.window_end))
        if row is not None and row.window_start and row.window_end
        else None
    )
    full = (
        row is None
        or row.token is None
        or row.vocabulary != vocab
        or stored is None
        or not stored.covers(needed)
    )
    window = Window(needed.start, needed.end + WINDOW_SLACK) if full else stored
    assert window is not None
    try:
        listing = provider.list(window, None if full else row.token)  # type: ignore[union-attr]
    except CalendarError as exc:
        _record_failure(state, clinician.id, provider.id, exc, now)
        return SyncResult(provider.id, ok=False, trusted=False, error=exc)
    except Exception as exc:  # a bug or an unexpected library error: contain it
        log.exception("reading calendar %s of %s failed unexpectedly", provider.id, clinician.id)
        error = CalendarError(
            provider.id, provider.describe(), f"unexpected error: {type(exc).__name__}"
        )
        _record_failure(state, clinician.id, provider.id, error, now)
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
        with state.transaction() as db:
            db.execute(
                "UPDATE calendars SET empty_reads=empty_reads+1 WHERE clinician=? AND calendar=?",
                (clinician.id, provider.id),
            )
        return SyncResult(provider.id, ok=True, trusted=False, warnings=listing.warnings)
    _store(settings, state, clinician.id, provider.id, listing, window, vocab, now)
    return SyncResult(provider.id, ok=True, trusted=True, warnings=listing.warnings, titles=titles)


def _looks_emptied(
    state: State, clinician: str, calendar: str, listing: Listing, window: Window, row
) -> bool:  # type: ignore[no-untyped-def]
    """A listing that suddenly holds nothing where we knew events is more often an
    outage or a wrong account than a cleared calendar: believe it the second time."""
    if row is None or row.empty_reads > 0 or listing.events or (
            not listing.full and not listing.removed):
        return False  # events came back, or nothing changed: the usual poll costs no query
    known = state.query(
        "SELECT id FROM events WHERE clinician=? AND calendar=? AND start<? AND end>=?",
        (clinician, calendar, iso(window.end), iso(window.start)),
    )
    if not known:
        return False
    return listing.full or len(set(listing.removed)) >= len(known)


def _store(
    settings: Settings,
    state: State,
    clinician: str,
    calendar: str,
    listing: Listing,
    window: Window,
    vocab: str,
    now: datetime,
) -> None:
    known_tags = set(settings.classification.tags)
    pattern = settings.classification.title_pattern
    keep, drop = [], list(listing.removed)
    for event in listing.events:
        if window.overlaps(event.start, event.end):
            matches = bool(pattern.search(event.title)) if pattern is not None else False
            keep.append(event_row(event, tags_of(event) & known_tags, matches))
        else:
            drop.append(event.id)
    with state.transaction() as db:
        State.ensure_calendar(db, clinician, calendar)
        if listing.full:
            db.execute("DELETE FROM events WHERE clinician=? AND calendar=?", (clinician, calendar))
        else:
            db.executemany(
                "DELETE FROM events WHERE clinician=? AND calendar=? AND id=?",
                ((clinician, calendar, i) for i in drop),
            )
            db.execute(
                "DELETE FROM events WHERE clinician=? AND calendar=? AND end<?",
                (clinician, calendar, iso(window.start)),
            )
        State.store_events(db, clinician, keep)
        db.execute(
            "UPDATE calendars SET token=?, window_start=?, window_end=?, vocabulary=?, "
            "last_success=?, last_error=NULL, failing_since=NULL, paused=NULL, empty_reads=0 "
            "WHERE clinician=? AND calendar=?",
            (
                listing.token,
                iso(window.start),
                iso(window.end),
                vocab,
                iso(now),
                clinician,
                calendar,
            ),
        )
        db.execute("DELETE FROM problems WHERE key LIKE ?", (f"calendar:{clinician}/{calendar}:%",))


def _record_failure(
    state: State, clinician: str, calendar: str, error: CalendarError, now: datetime
) -> None:
    log.warning("calendar %s of %s: %s", calendar, clinician, error)
    paused = error.reason if isinstance(error, AuthorizationError) else None
    with state.transaction() as db:
        State.ensure_calendar(db, clinician, calendar)
        db.execute(
            "UPDATE calendars SET last_error=?, last_error_at=?, "
            "failing_since=COALESCE(failing_since, ?), paused=? WHERE clinician=? AND calendar=?",
            (str(error), iso(now), iso(now), paused, clinician, calendar),
        )
