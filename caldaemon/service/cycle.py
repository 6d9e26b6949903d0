"""One cycle for one clinician: sync every calendar, evaluate from the cache, reconcile the
buffers (:mod:`.buffers`), record violations and queue notices."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.assess import assess, window
from caldaemon.core.reconcile import Evidence
from caldaemon.errors import CalendarError, TransientError
from caldaemon.model import Window
from caldaemon.notices import outbox
from caldaemon.providers.base import Provider
from caldaemon.service.buffers import Target, reconcile
from caldaemon.service.providers import Providers
from caldaemon.service.sync import SyncResult, history_cutoff, record_failure, sync_calendar
from caldaemon.state import State

log = logging.getLogger("caldaemon.cycle")

# How long a settled clinician's verdicts are reused while nothing changes (issue 15: an
# unchanged poll should cost a few milliseconds of CPU, and assessing a week is most of
# it). Same events, marks, acks, config and day give the same verdicts except where time
# alone moves them: a cadence deadline passing, a hold's start slipping into the past, a
# notice due again after ``repeat_after``. Those wait at most this long.
REASSESS_EVERY = timedelta(minutes=10)


@dataclass(frozen=True)
class Settled:
    """What a clinician's last full cycle saw when it left nothing to do: every calendar
    read, the buffers calendar as planned (no write wanted, none held back), violations
    recorded. While every listing since came back empty from the tokens it stored, the
    same config, marks and acks on the same days give the same verdicts."""

    settings: Settings
    tokens: Mapping[str, str | None]
    days: tuple[date, date]
    marks: Mapping[str, str]
    acked: frozenset[str]
    at: datetime
    violations: int

    def holds(
        self,
        settings: Settings,
        results: Mapping[str, SyncResult],
        days: tuple[date, date],
        marks: Mapping[str, str],
        acked: frozenset[str],
        now: datetime,
    ) -> bool:
        return (
            settings is self.settings
            and results.keys() == self.tokens.keys()
            and all(
                r.ok and r.trusted and r.quiet and r.listed_from == self.tokens[cid]
                for cid, r in results.items()
            )
            and days == self.days
            and marks == self.marks
            and acked == self.acked
            and self.at <= now < self.at + REASSESS_EVERY
        )


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
        # By clinician; each clinician's cycles never overlap (one job, max_instances=1).
        self.settled: dict[str, Settled] = {}

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
        wrote: list[str] = []
        settled_buffers = not clinician.buffers_to
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

        days = (
            now.astimezone(clinician.tz).date(),
            (now + horizon).astimezone(clinician.tz).date(),
        )
        with self.state.read() as tables:
            marks = tables.marks.of(clinician.id)
            acked = frozenset(tables.acks.active(clinician.id, days[0]))
        settled = self.settled.pop(clinician.id, None)
        if settled is not None and settled.holds(self.settings, results, days, marks, acked, now):
            # Nothing changed since a cycle that left nothing to do: its verdicts stand.
            tokens = {cid: r.token for cid, r in results.items()}
            self.settled[clinician.id] = replace(settled, tokens=tokens)
            report.violations = settled.violations
            self._log(report)
            return report
        with self.state.read() as tables:
            events = tables.events.overlapping(clinician.id, needed)
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
            acked=acked,
        )
        report.violations = len(assessment.evaluation.violations)
        # Placing a buffer is a verdict ("there is room here"): none from partial data.
        target = results.get(clinician.buffers_to) if clinician.buffers_to else None
        if target is not None and target.ok and not target.trusted:
            # Its listing came back empty where events were known: the cache is not what
            # the calendar shows, so it is no evidence of ours either. Wait a cycle.
            log.warning("%s: buffers on %s wait a cycle", clinician.id, clinician.buffers_to)
        elif clinician.buffers_to and target is not None and report.ok:
            # report.ok: every calendar was read, so the target's listing was stored with
            # this window just now.
            evidence = Evidence(
                window=target.window,
                trusted=target.trusted and all(r.ok for r in results.values()),
            )
            buffers_to = clinician.buffers_to

            def writer() -> Provider:
                # reconcile asks for the provider only when it has writes to send.
                wrote.append(buffers_to)
                return self.providers.get(clinician, buffers_to)

            outcome = reconcile(
                self.state,
                Target(clinician.id, buffers_to, writer, evidence),
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
            settled_buffers = (
                not wrote
                and not self.dry_run
                and not outcome.held_deletes
                and outcome.refused is None
                and self.clock() <= deadline
            )
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
        with self.state.transaction(durable=False) as tables:
            tables.prune(
                clinician.id,
                now,
                self.settings.notices.repeat_after,
                history_before=history_cutoff(self.settings, start, now),
            )
        if report.ok and settled_buffers and all(r.ok and r.trusted for r in results.values()):
            self.settled[clinician.id] = Settled(
                self.settings,
                {cid: r.token for cid, r in results.items()},
                days,
                marks,
                acked,
                now,
                report.violations,
            )
        self._log(report)
        return report

    @staticmethod
    def _log(report: CycleReport) -> None:
        log.info(
            "cycle %s: %d calendars ok, %d failed, %d violations, +%d ~%d -%d buffers",
            report.clinician,
            report.calendars_ok,
            len(report.calendar_errors),
            report.violations,
            report.created,
            report.updated,
            report.deleted,
        )
