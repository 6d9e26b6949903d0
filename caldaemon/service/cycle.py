"""One cycle for one clinician: sync every calendar, evaluate from the cache, reconcile the
buffers (:mod:`.buffers`), record violations and queue notices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.assess import assess, window
from caldaemon.core.reconcile import Evidence
from caldaemon.errors import CalendarError, TransientError
from caldaemon.model import Window
from caldaemon.notices import outbox
from caldaemon.service.buffers import Target, reconcile
from caldaemon.service.providers import Providers
from caldaemon.service.sync import SyncResult, history_cutoff, record_failure, sync_calendar
from caldaemon.state import State

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
        # A cycle has a deadline (DESIGN.md §5): its poll interval. A calendar not reached
        # by then counts as not read this cycle, never as read.
        deadline = now + self.settings.daemon.poll_interval
        results: dict[str, SyncResult] = {}
        for calendar in clinician.calendars:
            try:
                if self.clock() > deadline:
                    raise TransientError(
                        calendar.id, calendar.id, "not read: the cycle ran out of time"
                    )
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
            marks = tables.marks.of(clinician.id)
            acked = tables.acks.active(clinician.id, now.astimezone(clinician.tz).date())
        if clinician.id in self.titles:
            known = {e.key for e in events}
            self.titles[clinician.id] = {
                k: t for k, t in self.titles[clinician.id].items() if k in known
            }
        assessment = assess(
            clinician,
            self.settings.classification,
            events,
            now,
            horizon,
            marks=marks,
            acked=frozenset(acked),
        )
        report.violations = len(assessment.evaluation.violations)
        # Placing a buffer is a verdict ("there is room here"): none from partial data.
        target = results.get(clinician.buffers_to) if clinician.buffers_to else None
        if target is not None and target.ok and not target.trusted:
            # Its listing came back empty where events were known: the cache is not what
            # the calendar shows, so it is no evidence of ours either. Wait a cycle.
            log.warning("%s: buffers on %s wait a cycle", clinician.id, clinician.buffers_to)
        elif clinician.buffers_to and target is not None and report.ok:
            with self.state.read() as tables:
                read = tables.calendars.get(clinician.id, clinician.buffers_to)
            evidence = Evidence(
                window=read.window if read is not None else None,
                trusted=target.trusted and all(r.ok for r in results.values()),
            )
            buffers_to = clinician.buffers_to
            outcome = reconcile(
                self.state,
                Target(
                    clinician.id,
                    buffers_to,
                    lambda: self.providers.get(clinician, buffers_to),
                    evidence,
                ),
                list(assessment.evaluation.blocks),
                events,
                now=now,
                view_end=now + horizon,
                max_deletes=self.settings.daemon.max_deletes_per_cycle,
                dry_run=self.dry_run,
                deadline=deadline,
                clock=self.clock,
            )
            report.created, report.updated = outcome.created, outcome.updated
            report.deleted, report.held_deletes = outcome.deleted, outcome.held_deletes
            if outcome.refused is not None:
                # Writes refused for a while: pause the calendar and tell the admin once,
                # as a refused read does.
                record_failure(self.state, clinician.id, buffers_to, outcome.refused, now)
                report.calendar_errors.append(outcome.refused)
                outbox.calendar_problems(
                    self.state, self.settings, clinician, {buffers_to: outcome.refused}, now
                )
        if report.ok:
            report.notices = outbox.record_violations(
                self.state,
                self.settings,
                clinician,
                assessment.evaluation.violations,
                now,
                titles=self.titles.get(clinician.id, {}),
            )
        else:
            # Failing closed (DESIGN.md §5): rules over a calendar that was not read would
            # judge partial data. No new notice, nothing resolved; the failing calendar
            # gets its own operational notice once it has failed for an hour.
            log.warning(
                "%s: not every calendar was read; no violations are recorded this cycle",
                clinician.id,
            )
        with self.state.transaction() as tables:
            tables.prune(
                clinician.id,
                now,
                self.settings.notices.repeat_after,
                history_before=history_cutoff(self.settings, start, now),
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
