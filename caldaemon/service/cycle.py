"""One cycle for one clinician: sync every calendar, evaluate from the cache, reconcile the
buffers, record violations and queue notices. The single place where planned writes are
carried out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from caldaemon import failpoints
from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.assess import assess, window
from caldaemon.core.reconcile import Plan, plan
from caldaemon.errors import CalendarError, RemoteGone, WriteConflict
from caldaemon.model import Buffer, BufferStatus, Create, Delete, Event, Update, Window, WriteResult
from caldaemon.notices import outbox
from caldaemon.service.providers import Providers
from caldaemon.service.sync import SyncResult, sync_calendar
from caldaemon.state import State
from caldaemon.state.events import Cached

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
        horizon = self.settings.daemon.horizon
        start, end = window(clinician, now, horizon)
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
        errors = {cid: r.error for cid, r in results.items() if r.error is not None}
        outbox.calendar_problems(self.state, self.settings, clinician, errors, now)

        with self.state.read() as tables:
            events = tables.events.overlapping(clinician.id, needed)
        if clinician.id in self.titles:
            known = {e.key for e in events}
            self.titles[clinician.id] = {
                k: t for k, t in self.titles[clinician.id].items() if k in known
            }
        assessment = assess(clinician, self.settings.classification, events, now, horizon)
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
        with self.state.read() as tables:
            owned = tables.buffers.owned(clinician.id, calendar)
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
        before any write is sent (see core/reconcile.py on crash safety)."""
        with self.state.transaction() as tables:
            for adopt in actions.adopt:
                tables.buffers.save(
                    clinician,
                    calendar,
                    adopt.identity,
                    adopt.buffer,
                    remote_id=adopt.remote.id,
                    etag=adopt.remote.etag,
                    now=now,
                )
            for mark in actions.marks:
                tables.buffers.set_status(clinician, mark.identity, mark.status, now)
                log.info(
                    "%s: buffer %s is now %s; caldaemon leaves it alone",
                    clinician,
                    mark.identity[:8],
                    mark.status.replace("_", " "),
                )
            tables.buffers.forget(clinician, actions.forget)
            for write in actions.writes:
                if isinstance(write, Create):
                    tables.buffers.intend_create(
                        clinician, calendar, write.identity, write.buffer, now
                    )
                elif isinstance(write, Update):
                    tables.buffers.intend_update(clinician, write.identity, write.buffer)
                else:
                    tables.buffers.intend_delete(clinician, write.identity)

    def _record_results(
        self,
        clinician: str,
        calendar: str,
        results: list[WriteResult],
        now: datetime,
        report: CycleReport,
    ) -> None:
        with self.state.transaction() as tables:
            for result in results:
                write = result.write
                if isinstance(write, Delete) and (
                    result.error is None or isinstance(result.error, RemoteGone)
                ):
                    # Kept as ``deleted``: if the session comes back, so does the buffer.
                    tables.buffers.deleted(clinician, write.identity, now)
                    tables.events.remove(clinician, calendar, [write.remote.id])
                    report.deleted += result.error is None
                    continue
                if isinstance(result.error, (WriteConflict, RemoteGone)):
                    status = (
                        BufferStatus.USER_EDITED
                        if isinstance(result.error, WriteConflict)
                        else BufferStatus.USER_DELETED
                    )
                    tables.buffers.set_status(clinician, write.identity, status, now)
                    continue
                if result.error is not None:
                    # The intent stays recorded; the next cycle finds out what happened.
                    log.warning("%s: %s failed: %s", clinician, _describe(write), result.error)
                    continue
                assert result.remote is not None and isinstance(write, (Create, Update))
                tables.buffers.save(
                    clinician,
                    calendar,
                    write.identity,
                    write.buffer,
                    remote_id=result.remote.id,
                    etag=result.remote.etag,
                    now=now,
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
                tables.events.store(clinician, [Cached(mirrored, title_matches=False)])
                if isinstance(write, Create):
                    report.created += 1
                else:
                    report.updated += 1


def _describe(write: Create | Update | Delete) -> str:
    if isinstance(write, Delete):
        return f"delete buffer {write.identity[:8]}"
    verb = "create" if isinstance(write, Create) else "move"
    b = write.buffer
    return (
        f"{verb} buffer {write.identity[:8]} '{b.title}' {b.start.isoformat()}–{b.end.isoformat()}"
    )
