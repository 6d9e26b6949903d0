"""How much work: session counts per day and week, level limits, work days, daily load.

The counting itself (:func:`at_level`, :func:`load`, :func:`work_days`,
:func:`week_sessions`) is public so that the weekly report (reports/week.py) shows the
very figures these rules judge, for every day of a week, past days included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from caldaemon.core.rules.context import Context, Session
from caldaemon.model import Violation
from caldaemon.text import day_name, plural


def _week_label(week: date) -> str:
    return f"the week of {day_name(week)}"


def max_sessions_per_day(ctx: Context) -> Iterator[Violation]:
    limit = ctx.clinician.rules.max_sessions_per_day
    if limit is None:
        return
    for day, sessions in ctx.days():
        if len(sessions) > limit:
            yield ctx.day_violation(
                "max_sessions_per_day",
                day,
                1,
                f"{plural(len(sessions), 'session')} on {day_name(day)}; your limit is {limit}",
                sessions,
                phrase=f"{plural(len(sessions), 'session')}; your limit is {limit}",
            )


def max_sessions_per_week(ctx: Context) -> Iterator[Violation]:
    limit = ctx.clinician.rules.max_sessions_per_week
    if limit is None:
        return
    for week, sessions in ctx.weeks():
        if len(sessions) > limit:
            yield ctx.day_violation(
                "max_sessions_per_week",
                week,
                7,
                f"{plural(len(sessions), 'session')} in {_week_label(week)}; your limit is {limit}",
                sessions,
                phrase=f"{plural(len(sessions), 'session')} that week; your limit is {limit}",
            )


def max_work_days_per_week(ctx: Context) -> Iterator[Violation]:
    limit = ctx.clinician.rules.max_work_days_per_week
    if limit is None:
        return
    for week, sessions in ctx.weeks():
        days = work_days(sessions)
        if len(days) > limit:
            yield ctx.day_violation(
                "max_work_days_per_week",
                week,
                7,
                f"sessions on {len(days)} days in {_week_label(week)}; "
                f"your limit is {plural(limit, 'day')}",
                sessions,
                phrase=f"sessions on {len(days)} days that week; your limit is "
                f"{plural(limit, 'day')}",
            )


def at_level(ctx: Context, sessions: list[Session], level: str) -> list[Session]:
    """The ``sessions`` at ``level`` or above."""
    return [s for s in sessions if ctx.at_least(s.item.level, level)]


def load(ctx: Context, sessions: list[Session]) -> int:
    """The sum of the ``sessions``' weights (``classification.weights``)."""
    weights = ctx.classification.weights
    return sum(weights[s.level] for s in sessions)


def work_days(sessions: list[Session]) -> list[date]:
    """The distinct days the ``sessions`` start on, in order."""
    return sorted({s.day for s in sessions})


def week_sessions(ctx: Context, week: date) -> list[Session]:
    """The sessions of the week beginning ``week``, in session order, as
    :meth:`Context.weeks` groups them (by the day each starts) but for any week, past
    ones too."""
    days = ctx.sessions_by_day
    return [s for n in range(7) for s in days.get(week + timedelta(days=n), ())]


def level_per_day(ctx: Context) -> Iterator[Violation]:
    for level, limit in ctx.clinician.rules.level_limits.items():
        if limit.max_per_day is None:
            continue
        for day, sessions in ctx.days():
            heavy = at_level(ctx, sessions, level)
            if len(heavy) > limit.max_per_day:
                yield ctx.day_violation(
                    "level_limits.max_per_day",
                    day,
                    1,
                    f"{plural(len(heavy), f'{level}-intensity session')} on {day_name(day)}; "
                    f"your limit is {limit.max_per_day}",
                    heavy,
                    level=level,
                    phrase=f"{plural(len(heavy), f'{level}-intensity session')}; your limit "
                    f"is {limit.max_per_day}",
                )


def level_per_week(ctx: Context) -> Iterator[Violation]:
    for level, limit in ctx.clinician.rules.level_limits.items():
        if limit.max_per_week is None:
            continue
        for week, sessions in ctx.weeks():
            heavy = at_level(ctx, sessions, level)
            if len(heavy) > limit.max_per_week:
                yield ctx.day_violation(
                    "level_limits.max_per_week",
                    week,
                    7,
                    f"{plural(len(heavy), f'{level}-intensity session')} in "
                    f"{_week_label(week)}; your limit is {limit.max_per_week}",
                    heavy,
                    level=level,
                    phrase=f"{plural(len(heavy), f'{level}-intensity session')} that week; "
                    f"your limit is {limit.max_per_week}",
                )


def max_daily_load(ctx: Context) -> Iterator[Violation]:
    limit = ctx.clinician.rules.max_daily_load
    if limit is None:
        return
    weights = ctx.classification.weights
    for day, sessions in ctx.days():
        total = load(ctx, sessions)
        if total > limit:
            scale = ", ".join(f"{lvl} {w}" for lvl, w in weights.items())
            yield ctx.day_violation(
                "max_daily_load",
                day,
                1,
                f"a session load of {total} on {day_name(day)} ({scale} per session); "
                f"your limit is {limit}",
                sessions,
                phrase=f"a session load of {total} ({scale} per session); your limit is {limit}",
            )
