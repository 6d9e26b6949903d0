"""Protected time (DESIGN.md §10): holds, busy events written to ``buffers_to`` so that
booking pages offer nothing more once a boundary is reached.

- ``full_days``: a day at ``max_sessions_per_day`` or ``max_daily_load``: holds over every
  free stretch of that day's working hours.
- ``full_weeks``: a week at ``max_sessions_per_week``: holds over the free working hours
  of its remaining days; at ``max_work_days_per_week``: over the remaining days that have
  no session yet (a session there would be one day too many).
- ``days_off``: an all-day hold on each day off (a weekday in ``days_off`` or a dated day
  off) that has nothing busy on it.

A hold covers only free time (never an existing event, nor a buffer), starts between now
and the horizon's end, and goes when its reason goes: the rules simply stop wanting it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from caldaemon.core.rules.buffers import BusyIndex
from caldaemon.core.rules.context import Context, Session
from caldaemon.core.rules.counts import load
from caldaemon.core.rules.hours import is_day_off
from caldaemon.model import Buffer, Kind

# Stretches shorter than this are left free: no booking page offers them.
SHORTEST_HOLD = timedelta(minutes=15)


def plan_holds(ctx: Context, busy: BusyIndex, buffers: list[Buffer]) -> list[Buffer]:
    """The holds over protected time, around ``busy`` and the ``buffers`` planned."""
    protect = ctx.clinician.rules.protect
    if protect is None or ctx.clinician.buffers_to is None:
        return []
    busy.take_all(buffers)  # holds never cover a buffer
    holds: list[Buffer] = []
    full: dict[date, str] = {}
    if protect.full_days:
        for day, sessions in ctx.days():
            if _day_full(ctx, sessions):
                full.setdefault(day, "full_days")
    if protect.full_weeks:
        for week, sessions in ctx.weeks():
            for day, reason in _week_full(ctx, week, sessions):
                full.setdefault(day, reason)
    for day, reason in sorted(full.items()):
        if ctx.reportable(day) and not is_day_off(ctx, day):
            holds += _stretches(ctx, busy, day, reason, protect.title)
    if protect.days_off:
        holds += _days_off(ctx, busy, protect.title)
    for hold in holds:
        busy.take(hold.start, hold.end)
    return holds


def _day_full(ctx: Context, sessions: list[Session]) -> bool:
    rules = ctx.clinician.rules
    if rules.max_sessions_per_day is not None and len(sessions) >= rules.max_sessions_per_day:
        return True
    return rules.max_daily_load is not None and load(ctx, sessions) >= rules.max_daily_load


def _week_full(ctx: Context, week: date, sessions: list[Session]) -> list[tuple[date, str]]:
    rules = ctx.clinician.rules
    remaining = [week + timedelta(days=n) for n in range(7)]
    remaining = [d for d in remaining if d >= ctx.today]
    if rules.max_sessions_per_week is not None and len(sessions) >= rules.max_sessions_per_week:
        return [(d, "full_weeks") for d in remaining]
    worked = {s.day for s in sessions}
    limit = rules.max_work_days_per_week
    if limit is not None and len(worked) >= limit:
        return [(d, "full_weeks") for d in remaining if d not in worked]
    return []


def _stretches(ctx: Context, busy: BusyIndex, day: date, reason: str, title: str) -> list[Buffer]:
    """Holds over the free parts of ``day``'s working hours, in order."""
    ranges = (ctx.clinician.rules.working_hours or {}).get(day.weekday(), ())
    found: list[Buffer] = []
    for low, high in ranges:
        cursor = _at(ctx, day, low)
        end = _at(ctx, day, high)
        while cursor < end:
            room = busy.free_after(cursor, end - cursor)
            # Like buffers, holds are placed from now to the horizon's end: a later one
            # would cover the place of a buffer not yet planned.
            if room >= SHORTEST_HOLD and ctx.now <= cursor < ctx.horizon_end:
                found.append(
                    _hold(ctx, cursor, cursor + room, title, f"hold/{day}/{len(found)}", reason)
                )
            cursor = _next_free(busy, cursor + room, end)
    return found


def _next_free(busy: BusyIndex, moment: datetime, end: datetime) -> datetime:
    """The first moment from ``moment`` on (before ``end``) that is not busy."""
    step = timedelta(minutes=5)
    # Each step's end is the next one's start: each is converted to UTC once.
    utc = moment.astimezone(UTC)
    while moment < end:
        following = moment + step
        utc_following = following.astimezone(UTC)
        if not busy.busy_between(utc, utc_following):
            break
        moment, utc = following, utc_following
    return moment


def _days_off(ctx: Context, busy: BusyIndex, title: str) -> list[Buffer]:
    found = []
    day = ctx.today + timedelta(days=1)  # today has begun: nothing before now is written
    while day <= ctx.last_day:
        start, end = _at(ctx, day, 0), _at(ctx, day + timedelta(days=1), 0)
        if is_day_off(ctx, day) and not busy.overlaps(start, end) and not _all_day_busy(ctx, day):
            found.append(_hold(ctx, start, end, title, f"hold/{day}/day_off", "days_off", True))
        day += timedelta(days=1)
    return found


def _all_day_busy(ctx: Context, day: date) -> bool:
    """A busy all-day event on ``day`` already keeps it: no hold over it. caldaemon's own
    holds do not count (else each would make itself unwanted the next cycle)."""
    return any(
        c.event.all_day
        and c.event.busy
        and c.kind is not Kind.BUFFER
        and c.event.start.astimezone(ctx.tz).date() <= day < c.event.end.astimezone(ctx.tz).date()
        for c in ctx.events
    )


def _at(ctx: Context, day: date, minute: int) -> datetime:
    return datetime.combine(day, time(), ctx.tz) + timedelta(minutes=minute)


def _hold(
    ctx: Context,
    start: datetime,
    end: datetime,
    title: str,
    key: str,
    reason: str,
    all_day: bool = False,
) -> Buffer:
    return Buffer(
        clinician=ctx.clinician.id,
        calendar=ctx.clinician.buffers_to,
        start=start,
        end=end,
        title=title,
        after=key,
        rule=f"protect.{reason}",
        all_day=all_day,
    )
