"""The weekly report (``notices.weekly_report``, DESIGN.md §11): which week, when it is due,
and reading that week live, as ``caldaemon report`` does, to queue it in the outbox.

Failing closed (DESIGN.md §5): a calendar that cannot be read means no report, never a
week that looks emptier than it is. A report not sent at its moment stays due for
:data:`GRACE` and is tried again at each poll (and at the start after a restart), then
dropped; one still missing after :data:`~caldaemon.notices.outbox.UNREACHABLE_AFTER`
gets one operational notice. Logs name clinicians, calendars and the reason a provider
gave, never event text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.config.schema import WeeklyReport
from caldaemon.core.rules.context import week_start
from caldaemon.errors import CalendarError
from caldaemon.notices import outbox
from caldaemon.reports.week import WeekView, build
from caldaemon.state import State
from caldaemon.text import WEEKDAYS, day_name

log = logging.getLogger("caldaemon.weekly")

# How long after its moment a report is still worth sending (the daemon was down at
# 07:00, a calendar could not be read): the day it was meant for. Later it would arrive
# beside the next one or deep into its week.
GRACE = timedelta(days=1)


@dataclass(frozen=True)
class WeekRead:
    """The week of one clinician read live: the view, or the calendars that failed."""

    view: WeekView | None
    warnings: tuple[str, ...] = ()
    errors: tuple[CalendarError, ...] = ()


def read_week(
    settings: Settings, clinician: ClinicianSettings, now: datetime, start: date
) -> WeekRead:
    """The week beginning ``start`` read live, as ``check`` reads it (a past week judged
    as it stood when it began); no view when a calendar could not be read."""
    from caldaemon.service.read import check

    week_begins = datetime.combine(start, time(), clinician.tz)
    week_ends = week_begins + timedelta(days=7)
    judged_at = min(now.astimezone(clinician.tz), week_begins) if week_ends <= now else now
    horizon = max(settings.daemon.horizon, week_ends - judged_at)
    [result] = check(settings, judged_at, clinician.id, horizon=horizon)
    warnings = tuple(result.warnings)
    if result.errors:
        return WeekRead(None, warnings, tuple(result.errors))
    view = build(result, settings.classification, start, clinician.name or "")
    return WeekRead(view, warnings)


def send_moment(report: WeeklyReport, clinician: ClinicianSettings, now: datetime) -> datetime:
    """The latest moment at or before ``now`` when the report is sent: ``day`` at ``at``
    on the clinician's wall clock (a moment in a DST gap falls an hour later, as zoneinfo
    reads it)."""
    tz = clinician.tz
    today = now.astimezone(tz).date()
    weekday = WEEKDAYS.index(report.day)
    at = time(report.at // 60, report.at % 60)
    for back in range(8):
        day = today - timedelta(days=back)
        moment = datetime.combine(day, at, tz)
        if day.weekday() == weekday and moment <= now:
            return moment
    raise AssertionError("a weekday recurs within 8 days")


def week_of(clinician: ClinicianSettings, moment: datetime) -> date:
    """The week a report sent at ``moment`` shows: the one that begins on the moment's day
    or next (sent on Monday morning: this week; on Friday: the next)."""
    day = moment.astimezone(clinician.tz).date()
    begins = week_start(day, clinician.rules.week_starts)
    return begins if begins == day else begins + timedelta(days=7)


@dataclass
class WeeklyOutcome:
    """What one attempt did: ``queued`` the week's report, or found it not due (nothing
    said), or could not read the week (``errors``)."""

    clinician: str
    week: date | None = None
    queued: bool = False
    errors: list[CalendarError] = field(default_factory=list)

    def said(self) -> str | None:
        """A line for ``run --once``; None when nothing was due."""
        if self.week is None:
            return None
        when = day_name(self.week)
        if self.queued:
            return f"{self.clinician}: the weekly report of the week of {when} queued"
        failed = ", ".join(e.calendar for e in self.errors)
        return (
            f"{self.clinician}: the weekly report of the week of {when} not sent: "
            f"calendar(s) not read ({failed}); tried again at the next poll"
        )


def send_if_due(
    state: State,
    settings: Settings,
    clinician: ClinicianSettings,
    now: datetime,
    known_errors: Sequence[CalendarError] = (),
) -> WeeklyOutcome:
    """Queue the clinician's weekly report when it is due and not queued yet.
    ``known_errors``: calendars this cycle could not read (then nothing is read again)."""
    outcome = WeeklyOutcome(clinician.id)
    report = settings.notices.weekly_report
    if report is None:
        return outcome
    moment = send_moment(report, clinician, now)
    if now - moment >= GRACE:
        return outcome
    week = week_of(clinician, moment)
    if outbox.weekly_report_queued(state, clinician.id, week):
        return outcome
    outcome.week = week
    errors = list(known_errors)
    if not errors:
        read = read_week(settings, clinician, now, week)
        errors = list(read.errors)
        if read.view is not None:
            outcome.queued = _queue(state, settings, clinician, read.view, now)
            outbox.clear_problem(state, _problem_key(clinician.id, week))
            return outcome
    outcome.errors = errors
    reasons = "; ".join(f"{e.calendar}: {e.reason}" for e in errors)
    log.warning(
        "the weekly report for %s (week of %s) is not sent: not every calendar was read (%s)",
        clinician.id,
        week.isoformat(),
        reasons,
    )
    if now - moment >= outbox.UNREACHABLE_AFTER:
        failed = ", ".join(f"'{e.calendar}'" for e in errors)
        outbox.raise_problem(
            state,
            settings,
            _problem_key(clinician.id, week),
            f"The weekly report for {clinician.id} (the week of {day_name(week)}) is not "
            f"sent: calendar {failed} could not be read, and a report without it would show "
            "a week emptier than it is.",
            "caldaemon tries again at each poll for a day after the report's time. "
            "`caldaemon check` shows why the calendar cannot be read.",
            clinician,
            now,
        )
    return outcome


def _queue(
    state: State, settings: Settings, clinician: ClinicianSettings, view: WeekView, now: datetime
) -> bool:
    png: bytes | None = None
    if settings.notices.privacy != "minimal":
        from caldaemon.reports.picture import week_png

        png = week_png(view, settings.classification.levels)
    queued = outbox.queue_weekly_report(state, settings, clinician, view, png, now)
    if queued:
        log.info(
            "weekly report for %s (week of %s) queued, picture %s bytes",
            clinician.id,
            view.start.isoformat(),
            len(png) if png is not None else 0,
        )
    return queued


def _problem_key(clinician: str, week: date) -> str:
    return f"weekly:{clinician}/{week.isoformat()}"
