"""One cycle for one clinician: sync every calendar, evaluate from the cache, reconcile the
buffers, record violations and queue notices. The single place where planned writes are
carried out."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from . import failpoints, outbox, rules
from .config import ClinicianSettings, Settings
from .engine import assess, provider_context
from .errors import CalendarError, RemoteGone, WriteConflict
from .model import Buffer, Event
from .plan import ACTIVE, CREATING, DELETED, DELETING, USER_DELETED, USER_EDITED, Plan, plan
from .providers import open_provider
from .providers.base import Create, Delete, Provider, Update, Window, WriteResult
from .state import State, event_row, iso, owned_buffer
from .sync import SyncResult, sync_calendar

log = logging.getLogger("caldaemon.cycle")


@dataclass
class CycleReport:
    clinician: str
    at: datetime
    calendars_ok: int = 0
    calendar_errors: list[CalendarError] = field(default_factory=list)
    violations: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    held_deletes: int = 0
    notices: int = 0

    @property
    def ok(self) -> bool:
        return not self.calendar_errors


class Providers:
    """Provider instances kept across cycles (connections, token caches), per calendar."""

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        self._open: dict[tuple[str, str], Provider] = {}
        self._lock = threading.Lock()

    def get(self, clinician: ClinicianSettings, calendar_id: str) -> Provider:
        key = (clinician.id, calendar_id)
        with self._lock:
            if key not in self._open:
                self._open[key] = open_provider(
                    clinician.calendar(calendar_id),
                    provider_context(self.settings, clinician, self.sleep),
                )
            return self._open[key]

    def close(self) -> None:
        with self._lock:
            for provider in self._open.values():
                provider.close()
            self._open.clear()


class Cycle:
    def __init__(
        self,
        settings: Settings,
        state: State,
        providers: Providers,
        *,
        clock: Callable[[], datetime],
        dry_run: bool = False,
    ) -> None:
        self.settings = settings
        self.state = state
        self.providers = providers
        self.clock = clock
        self.dry_run = dry_run or settings.daemon.dry_run
        self.titles: dict[str, dict[str, str]] = {}

    def run(self, clinician: ClinicianSettings) -> CycleReport:
        now = self.clock()
        report = CycleReport(clinician.id, now)
        start, end = rules.window(clinician, now, self.settings.daemon.horizon)
        needed = Window(start, end)
        results: dict[str, SyncResult] = {}
        for calendar in clinician.calendars:
            try:
                provider = self.providers.get(clinician, calendar.id)
            except CalendarError as exc:
                results[calendar.id] = SyncResult(calendar.id, ok=False, trusted=False, error=exc)
                continue
            results[calendar.id] = sync_calendar(
                self.settings, clinician, provider, self.state, needed, now
            )
        for result in results.values():
            if result.ok:
                report.calendars_ok += 1
            elif result.error is not None:
                report.calendar_errors.append(result.error)
            if result.titles is not None:
                titles = self.titles.setdefault(clinician.id, {})
                titles.update(result.titles)
        outbox.calendar_problems(self.state, self.settings, clinician, results, now)

        events = self.state.events(clinician.id, start, end)
        if clinician.id in self.titles:
            known = {e.key for e in events}
            self.titles[clinician.id] = {
                k: t for k, t in self.titles[clinician.id].items() if k in known
            }
        assessment = assess(self.settings, clinician, events, now)
        report.violations = len(assessment.evaluation.violations)
        if clinician.buffers_to:
            target = results.get(clinician.buffers_to)
            if target is not None and target.ok:
                self._reconcile(
                    clinician,
                    list(assessment.evaluation.buffers),
                    events,
                    now,
                    trusted=target.trusted and all(r.ok for r in results.values()),
                    report=report,
                )
        report.notices = outbox.record_violations(
            self.state,
            self.settings,
            clinician,
            assessment.evaluation.violations,
            now,
            titles=self.titles.get(clinician.id, {}),
        )
        log.info(
            "cycle %s: %d calendars ok, %d failed, %d violations, +%d ~%d -%d buffers",
            clinician.id,
            report.calendars_ok,
            len(report.calendar_errors),
            report.violations,
            report.created,
            report.updated,
            report.deleted,
        )
        return report

    def _reconcile(
        self,
        clinician: ClinicianSettings,
        desired: list[Buffer],
        events: list[Event],
        now: datetime,
        *,
        trusted: bool,
        report: CycleReport,
    ) -> None:
        calendar = clinician.buffers_to
        assert calendar is not None
        owned = {
            b.identity: b
            for b in (
                owned_buffer(r)
                for r in self.state.query(
                    "SELECT * FROM buffers WHERE clinician=? AND calendar=?",
                    (clinician.id, calendar),
                )
            )
        }
        listed = {e.owner: e for e in events if e.owner and e.calendar == calendar}
        actions = plan(
            desired,
            owned,
            listed,
            now,
            listing_trusted=trusted,
            max_deletes=self.settings.daemon.max_deletes_per_cycle,
        )
        report.held_deletes = actions.held_deletes
        if actions.held_deletes:
            log.warning(
                "%s: %d buffer deletions held back (max_deletes_per_cycle)",
                clinician.id,
                actions.held_deletes,
            )
        if actions.empty:
            return
        if self.dry_run:
            for write in actions.writes:
                log.warning("dry run: would %s", _describe(write))
            return
        provider = self.providers.get(clinician, calendar)
        self._record_plan(clinician.id, calendar, actions, now)
        failpoints.reach("before-write")
        results: list[WriteResult] = []
        for offset in range(0, len(actions.writes), max(provider.batch_size, 1)):
            chunk = actions.writes[offset : offset + max(provider.batch_size, 1)]
            try:
                results.extend(provider.apply(chunk))
            except CalendarError as exc:
                log.warning("%s: writing buffers to %s failed: %s", clinician.id, calendar, exc)
                break
        failpoints.reach("after-write")
        self._record_results(clinician.id, calendar, results, now, report)
        failpoints.reach("after-commit")

    def _record_plan(self, clinician: str, calendar: str, actions: Plan, now: datetime) -> None:
        """Adoptions, the user's take-overs, and the intent of every write, committed
        before any write is sent (see plan.py on crash safety)."""
        with self.state.transaction() as db:
            for adopt in actions.adopt:
                _save_buffer(
                    db,
                    clinician,
                    calendar,
                    adopt.identity,
                    adopt.buffer,
                    adopt.remote.id,
                    adopt.remote.etag,
                    now,
                )
            for mark in actions.marks:
                db.execute(
                    "UPDATE buffers SET status=?, updated_at=? WHERE clinician=? AND identity=?",
                    (mark.status, iso(now), clinician, mark.identity),
                )
                log.info(
                    "%s: buffer %s is now %s; caldaemon leaves it alone",
                    clinician,
                    mark.identity[:8],
                    mark.status.replace("_", " "),
                )
            db.executemany(
                "DELETE FROM buffers WHERE clinician=? AND identity=?",
                ((clinician, identity) for identity in actions.forget),
            )
            for write in actions.writes:
                if isinstance(write, Create):
                    db.execute(
                        "INSERT OR IGNORE INTO buffers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            clinician,
                            write.identity,
                            calendar,
                            "",
                            None,
                            iso(write.buffer.start),
                            iso(write.buffer.end),
                            write.buffer.title,
                            write.buffer.after,
                            CREATING,
                            None,
                            None,
                            iso(now),
                        ),
                    )
                elif isinstance(write, Update):
                    db.execute(
                        "UPDATE buffers SET pending_start=?, pending_end=? WHERE "
                        "clinician=? AND identity=?",
                        (iso(write.buffer.start), iso(write.buffer.end), clinician, write.identity),
                    )
                else:
                    db.execute(
                        "UPDATE buffers SET status=? WHERE clinician=? AND identity=?",
                        (DELETING, clinician, write.identity),
                    )

    def _record_results(
        self,
        clinician: str,
        calendar: str,
        results: list[WriteResult],
        now: datetime,
        report: CycleReport,
    ) -> None:
        with self.state.transaction() as db:
            for result in results:
                write = result.write
                if isinstance(write, Delete) and (
                    result.error is None or isinstance(result.error, RemoteGone)
                ):
                    # Kept as ``deleted``: if the session comes back, so does the buffer.
                    db.execute(
                        "UPDATE buffers SET status=?, pending_start=NULL, pending_end=NULL, "
                        "updated_at=? WHERE clinician=? AND identity=?",
                        (DELETED, iso(now), clinician, write.identity),
                    )
                    db.execute(
                        "DELETE FROM events WHERE clinician=? AND calendar=? AND id=?",
                        (clinician, calendar, write.remote.id),
                    )
                    report.deleted += result.error is None
                    continue
                if isinstance(result.error, (WriteConflict, RemoteGone)):
                    status = (
                        USER_EDITED if isinstance(result.error, WriteConflict) else USER_DELETED
                    )
                    db.execute(
                        "UPDATE buffers SET status=?, updated_at=? WHERE clinician=? "
                        "AND identity=?",
                        (status, iso(now), clinician, write.identity),
                    )
                    continue
                if result.error is not None:
                    # The intent stays recorded; the next cycle finds out what happened.
                    log.warning("%s: %s failed: %s", clinician, _describe(write), result.error)
                    continue
                assert result.remote is not None and isinstance(write, (Create, Update))
                _save_buffer(
                    db,
                    clinician,
                    calendar,
                    write.identity,
                    write.buffer,
                    result.remote.id,
                    result.remote.etag,
                    now,
                )
                # Mirror the write in the cache so the next plan sees it even before the
                # calendar's next listing reports it.
                mirrored = Event(
                    calendar=calendar,
                    id=result.remote.id,
                    start=write.buffer.start,
                    end=write.buffer.end,
                    owner=write.identity,
                    etag=result.remote.etag,
                )
                State.store_events(db, clinician, [event_row(mirrored, (), False)])
                if isinstance(write, Create):
                    report.created += 1
                else:
                    report.updated += 1


def _save_buffer(
    db: sqlite3.Connection,
    clinician: str,
    calendar: str,
    identity: str,
    buffer: Buffer,
    remote_id: str,
    etag: str | None,
    now: datetime,
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO buffers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            clinician,
            identity,
            calendar,
            remote_id,
            etag,
            iso(buffer.start),
            iso(buffer.end),
            buffer.title,
            buffer.after,
            ACTIVE,
            None,
            None,
            iso(now),
        ),
    )


def _describe(write: Create | Update | Delete) -> str:
    if isinstance(write, Delete):
        return f"delete buffer {write.identity[:8]}"
    verb = "create" if isinstance(write, Create) else "move"
    b = write.buffer
    return (
        f"{verb} buffer {write.identity[:8]} '{b.title}' {b.start.isoformat()}–{b.end.isoformat()}"
    )
