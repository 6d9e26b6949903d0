"""From violations to queued notices, through the outbox in the state database.

A violation is recorded and its notice queued in the same transaction, so a crash between
them loses nothing (DESIGN.md §6); :mod:`.delivery` sends what is queued. Operational
problems go to ``admin_email`` once per distinct problem.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.errors import AuthorizationError, CalendarError, CalendarPaused
from caldaemon.model import Violation
from caldaemon.notices import compose, weekly
from caldaemon.state import State, Tables
from caldaemon.state.convert import iso
from caldaemon.text import WEEKDAYS

if TYPE_CHECKING:
    from caldaemon.reports.week import WeekView

log = logging.getLogger("caldaemon.notices")

UNREACHABLE_AFTER = timedelta(hours=1)


def recipient(settings: Settings, clinician: ClinicianSettings | None) -> str:
    if clinician is not None and clinician.email:
        return clinician.email
    if settings.notices.admin_email:
        return settings.notices.admin_email
    return f"{clinician.id if clinician else 'caldaemon'}@localhost"


def admin_recipient(settings: Settings, clinician: ClinicianSettings | None) -> str:
    return settings.notices.admin_email or recipient(settings, clinician)


def next_working_moment(clinician: ClinicianSettings, now: datetime) -> datetime:
    """Now, when inside working hours (or none are set); else the start of the next."""
    hours = clinician.rules.working_hours
    if not hours:
        return now
    local = now.astimezone(clinician.tz)
    for offset in range(15):
        day: date = local.date() + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] in clinician.rules.days_off:
            continue
        for start, end in hours.get(day.weekday(), ()):
            opens = datetime.combine(day, time(start // 60, start % 60), clinician.tz)
            closes = datetime.combine(day, time(), clinician.tz) + timedelta(minutes=end)
            if opens <= local < closes:
                return now
            if local < opens:
                return opens
    return now


def _queue(
    tables: Tables,
    message: compose.Message,
    clinician: str | None,
    now: datetime,
    not_before: datetime,
) -> None:
    tables.outbox.queue(
        message_id=message.message_id,
        clinician=clinician,
        recipient=message.to,
        subject=message.subject,
        text=message.text,
        html=message.html,
        now=now,
        not_before=not_before,
        image=message.image,
    )


def weekly_report_queued(state: State, clinician: str, week: date) -> bool:
    """Whether the report of ``week`` was queued for ``clinician`` already."""
    with state.read() as tables:
        return tables.outbox.has(compose.message_id(weekly.weekly_key(clinician, week)))


def queue_weekly_report(
    state: State,
    settings: Settings,
    clinician: ClinicianSettings,
    view: WeekView,
    png: bytes | None,
    now: datetime,
) -> bool:
    """Queue the week's report (once per clinician and week, by its Message-ID); it goes
    out at once, like a digest: the clinician chose the moment. Returns whether it was
    new."""
    message = weekly.weekly_message(
        view,
        png,
        privacy=settings.notices.privacy,
        key=weekly.weekly_key(clinician.id, view.start),
        to=recipient(settings, clinician),
        greeting_name=clinician.name or "",
    )
    with state.transaction() as tables:
        if tables.outbox.has(message.message_id):
            return False
        _queue(tables, message, clinician.id, now, now)
    return True


def record_violations(
    state: State,
    settings: Settings,
    clinician: ClinicianSettings,
    violations: Sequence[Violation],
    now: datetime,
    titles: Mapping[str, str] | None = None,
) -> int:
    """Store this cycle's violations; in immediate mode queue one notice with what is
    new, due again (``repeat_after``) or resolved. Returns the number of notices queued."""
    notices = settings.notices
    today = now.astimezone(clinician.tz).date()
    current = {v.fingerprint: v for v in violations}
    # Not durable (caldaemon.state.db): lost to a power cut, the same verdicts are
    # recorded and their notices queued again by the next cycle; claiming a notice for
    # delivery is durable, and makes this durable with it.
    with state.transaction(durable=False) as tables:
        known = tables.violations.open(clinician.id)
        for violation in current.values():
            tables.violations.seen(violation, now)
        gone = [record for fp, record in known.items() if fp not in current]
        tables.violations.resolve(clinician.id, (r.fingerprint for r in gone), now)
        if notices.mode != "immediate":
            return 0
        # Accepted violations (an #ok tag, caldaemon ack) are kept, never announced
        # (DESIGN.md §10): the clinician already knows.
        told = {fp: v for fp, v in current.items() if not v.accepted}
        new = [v for fp, v in told.items() if fp not in known or known[fp].last_notified is None]
        again = [
            v
            for fp, v in told.items()
            if fp in known
            and (last := known[fp].last_notified) is not None
            and last + notices.repeat_after <= now
        ]
        resolved = [r for r in gone if r.last_notified and r.violation.date >= today]
        if not (new or again or resolved):
            return 0
        included = [v.fingerprint for v in (*new, *again)]
        key = f"{clinician.id}/{iso(now)}/" + ",".join(
            sorted(included + [r.fingerprint for r in resolved])
        )
        message = compose.violations_message(
            clinician=clinician,
            new=new,
            still_open=again,
            resolved=[r.violation for r in resolved],
            privacy=notices.privacy,
            titles=titles,
            key=key,
            to=recipient(settings, clinician),
        )
        not_before = (
            next_working_moment(clinician, now) if notices.quiet_outside_working_hours else now
        )
        _queue(tables, message, clinician.id, now, not_before)
        tables.violations.notified(
            clinician.id, now, told=included, resolutions=[r.fingerprint for r in resolved]
        )
        return 1


def queue_digest(
    state: State,
    settings: Settings,
    clinician: ClinicianSettings,
    now: datetime,
    titles: Mapping[str, str] | None = None,
) -> int:
    """The daily digest: what is new or due again, and what resolved since the last one."""
    today = now.astimezone(clinician.tz).date()
    repeat_after = settings.notices.repeat_after
    with state.transaction() as tables:
        since = tables.digests.last_sent(clinician.id) or now - timedelta(days=1)
        open_records = [
            r for r in tables.violations.open_from(clinician.id, today) if not r.violation.accepted
        ]
        new = [r for r in open_records if r.last_notified is None]
        again = [
            r
            for r in open_records
            if r.last_notified is not None and r.last_notified + repeat_after <= now
        ]
        resolved = tables.violations.resolved_unannounced(clinician.id, since, today)
        tables.digests.sent(clinician.id, now)
        if not (new or again or resolved):
            return 0
        message = compose.violations_message(
            clinician=clinician,
            new=[r.violation for r in new],
            still_open=[r.violation for r in again],
            resolved=[r.violation for r in resolved],
            privacy=settings.notices.privacy,
            titles=titles,
            key=f"{clinician.id}/digest/{today.isoformat()}",
            to=recipient(settings, clinician),
        )
        _queue(tables, message, clinician.id, now, now)
        tables.violations.notified(
            clinician.id,
            now,
            told=[r.fingerprint for r in (*new, *again)],
            resolutions=[r.fingerprint for r in resolved],
        )
        return 1


def raise_problem(
    state: State,
    settings: Settings,
    key: str,
    problem: str,
    advice: str,
    clinician: ClinicianSettings | None,
    now: datetime,
) -> bool:
    """Queue an operational notice unless this problem was already reported."""
    with state.transaction() as tables:
        if tables.problems.known(key):
            return False
        tables.problems.add(key, problem, now)
        message = compose.operational_message(
            problem=problem,
            advice=advice,
            key=f"problem/{key}/{iso(now)}",
            to=admin_recipient(settings, clinician),
            clinician=clinician.id if clinician else None,
        )
        _queue(tables, message, clinician.id if clinician else None, now, now)
    log.warning("operational notice: %s", problem)
    return True


def clear_problem(state: State, key_prefix: str) -> None:
    with state.transaction() as tables:
        tables.problems.clear(key_prefix)


def calendar_problems(
    state: State,
    settings: Settings,
    clinician: ClinicianSettings,
    errors: Mapping[str, CalendarError],
    now: datetime,
) -> None:
    """Authorization failures at once; other failures once they last over an hour."""
    for calendar_id, error in errors.items():
        key = f"calendar:{clinician.id}/{calendar_id}:"
        if isinstance(error, AuthorizationError):
            problem, advice = compose.authorization_problem(error)
            raise_problem(state, settings, key + "auth", problem, advice, clinician, now)
            continue
        if isinstance(error, CalendarPaused):
            problem, advice = compose.paused_problem(error)
            raise_problem(state, settings, key + "paused", problem, advice, clinician, now)
            continue
        with state.read() as tables:
            row = tables.calendars.get(clinician.id, calendar_id)
        # A paused calendar was reported as an authorization problem already.
        if (
            row
            and not row.paused
            and row.failing_since
            and row.failing_since <= now - UNREACHABLE_AFTER
        ):
            since = row.failing_since.astimezone(clinician.tz)
            problem, advice = compose.unreachable_problem(calendar_id, since)
            raise_problem(state, settings, key + "unreachable", problem, advice, clinician, now)
