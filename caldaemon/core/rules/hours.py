"""When sessions may happen: ``working_hours``, ``days_off``, ``level_limits.latest_start``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

from caldaemon.core.rules.context import Context, Session
from caldaemon.model import Violation
from caldaemon.text import clock, describe, span


def minute_of_day(moment: datetime, day: date) -> int | None:
    """Wall-clock minutes after ``day``'s midnight; 1440 for the next midnight; None when
    ``moment`` lies on no such day. Wall-clock, so a DST change day still reads 09:00 as
    540 (RFC 5545 §3.3.5 local time)."""
    if moment.date() == day:
        return moment.hour * 60 + moment.minute
    if moment.date() == day + timedelta(days=1) and moment.hour == moment.minute == 0:
        return 1440
    return None


def _fits(session: Session, ranges: tuple[tuple[int, int], ...]) -> bool:
    start = session.start
    # ``day`` is the date of ``start``: its minute of the day needs no date check.
    first = start.hour * 60 + start.minute
    last = minute_of_day(session.end, session.day)
    if last is None:
        return False
    return any(low <= first and last <= high for low, high in ranges)


def _hours_text(ranges: tuple[tuple[int, int], ...]) -> str:
    def hhmm(minute: int) -> str:
        return f"{minute // 60:02d}:{minute % 60:02d}"

    return ", ".join(f"{hhmm(a)}–{hhmm(b)}" for a, b in ranges)


def is_day_off(ctx: Context, day: date) -> bool:
    return day.weekday() in ctx.weekdays_off or day in ctx.day_off_dates


def days_off(ctx: Context) -> Iterator[Violation]:
    for day, sessions in ctx.days():
        if is_day_off(ctx, day):
            for session in sessions:
                yield ctx.session_violation(
                    "days_off",
                    session,
                    f"{span(session.start, session.end)}: a session on a day you keep free",
                    "on a day you keep free",
                )


def working_hours(ctx: Context) -> Iterator[Violation]:
    hours = ctx.clinician.rules.working_hours
    if hours is None:
        return
    # What a violation says of a weekday's hours, worded when the first one is found.
    wording: dict[int, tuple[str, str]] = {}
    for day, sessions in ctx.days():
        if is_day_off(ctx, day):
            continue  # reported by days_off, not twice (DESIGN.md §3 rule table)
        weekday = day.weekday()
        ranges = hours.get(weekday, ())
        for session in sessions:
            if _fits(session, ranges):
                continue
            if weekday not in wording:
                wording[weekday] = _hours_wording(ranges)
            limit, phrase = wording[weekday]
            yield ctx.session_violation(
                "working_hours",
                session,
                f"{span(session.start, session.end)}: a session outside your working "
                f"hours; {limit}",
                phrase,
            )


def _hours_wording(ranges: tuple[tuple[int, int], ...]) -> tuple[str, str]:
    """The clause a working-hours message ends with, and its short phrase."""
    if not ranges:
        return "you have no working hours that day", "on a day without working hours"
    shown = _hours_text(ranges)
    return f"your hours that day are {shown}", f"outside your hours ({shown})"


def latest_start(ctx: Context) -> Iterator[Violation]:
    for level, limit in ctx.clinician.rules.level_limits.items():
        if limit.latest_start is None:
            continue
        for day, sessions in ctx.days():
            for session in sessions:
                if not ctx.at_least(session.item.level, level):
                    continue
                start = minute_of_day(session.start, day)
                if start is not None and start > limit.latest_start:
                    latest = session.start.replace(
                        hour=limit.latest_start // 60, minute=limit.latest_start % 60
                    )
                    yield ctx.session_violation(
                        "level_limits.latest_start",
                        session,
                        f"{span(session.start, session.end)}: a "
                        f"{describe(session.item.level)} starts after {clock(latest)}; "
                        f"you keep {level}-intensity work before then",
                        f"after {clock(latest)} for {level}-intensity work",
                    )
