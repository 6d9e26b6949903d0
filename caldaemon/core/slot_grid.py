"""The cheap half of ``caldaemon slots`` (:mod:`caldaemon.core.slots`): the grid of start
times, and the tests that drop a start before any evaluation. Each test drops only what
the rules would report as an error (a rule whose severity is ``warning`` drops nothing), so
the evaluation that follows still has the last word; each says why, for the clinician who
asks why nothing fits.

- A day is closed when one more session at the level asked for would be an error on any
  start that day: a day off, no working hours that weekday, or a day or week already at
  ``max_sessions_per_day``/``_per_week``, ``max_work_days_per_week`` (a day not yet
  worked), ``max_daily_load`` or a level limit that the level reaches.
- A start is dropped when the session would end after its working range, start after a
  ``latest_start`` the level reaches, or overlap busy time (an event, or a block caldaemon
  keeps: a buffer of a session already there, a hold).

The grid is the wall clock: every ``step`` minutes from local midnight (09:00, 09:15, …).
On a DST change day the skipped hour has no start and the repeated hour has both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from caldaemon.core.intervals import Intervals
from caldaemon.core.policy import ClassificationSettings
from caldaemon.core.rules.context import Context
from caldaemon.core.rules.counts import at_level, load, week_sessions
from caldaemon.core.rules.hours import is_day_off, minute_of_day
from caldaemon.core.rules.registry import rules_on
from caldaemon.model import Severity

# Why a start was dropped when no rule says so: it overlaps busy time.
BUSY = "busy"
_DAY = 1440
Ranges = tuple[tuple[int, int], ...]


def errors_on(ctx: Context) -> frozenset[str]:
    """The rule ids the clinician's set checks at error severity."""
    return frozenset(
        rule_id
        for rule in rules_on(ctx.clinician.rules)
        for rule_id in rule.ids
        if ctx.severity(rule_id) is Severity.ERROR
    )


@dataclass
class Grid:
    """Start times for a session of ``length`` at ``level`` in ``[begin, end)`` (UTC; the
    session ends by ``end``), on a grid of ``step``, that no cheap test drops. ``busy``:
    what the session itself may not overlap. ``closed`` counts the days each rule closed,
    ``dropped`` the starts each reason dropped, ``looked_at`` the grid starts of open days."""

    ctx: Context
    classification: ClassificationSettings
    level: str
    length: timedelta
    step: timedelta
    begin: datetime
    end: datetime
    busy: Intervals
    closed: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    looked_at: int = 0

    def __post_init__(self) -> None:
        self.on = errors_on(self.ctx)
        self.tz = self.ctx.tz

    def starts(self) -> Iterator[datetime]:
        """The starts left, in time order (UTC)."""
        step = int(self.step.total_seconds() // 60)
        day = self.begin.astimezone(self.tz).date()
        last = self.end.astimezone(self.tz).date()
        while day <= last:
            plan = self._plan(day)
            if plan is not None:
                ranges, latest = plan
                found: list[tuple[datetime, int, int | None]] = []
                for low, high in ranges or ((0, _DAY),):
                    first = -(-low // step) * step  # the first grid minute in the range
                    for minute in range(first, min(high, _DAY), step):
                        limit = None if ranges is None else high
                        found += [(s, minute, limit) for s in _instants(day, minute, self.tz)]
                for start, minute, limit in sorted(found, key=lambda item: item[0]):
                    if self.begin <= start and start + self.length <= self.end:
                        self.looked_at += 1
                        reason = self._drops(start, day, minute > latest, limit)
                        if reason is None:
                            yield start
                        else:
                            self.dropped[reason] += 1
            day += timedelta(days=1)

    def _drops(self, start: datetime, day: date, late: bool, limit: int | None) -> str | None:
        """Why ``start`` is no slot without evaluating (``late``: after ``latest_start``;
        ``limit``: the end of its working range), or None."""
        if late:
            return "level_limits.latest_start"
        end = start + self.length
        if limit is not None:
            minute = minute_of_day(end.astimezone(self.tz), day)
            if minute is None or minute > limit:
                return "working_hours"
        return BUSY if self.busy.overlaps(start, end) else None

    def _plan(self, day: date) -> tuple[Ranges | None, int] | None:
        """The working ranges a session on ``day`` must fit (None: any time of day, hours
        are not an error that day) and the latest start (minutes after midnight); None
        when the day is closed."""
        ctx, rules, on = self.ctx, self.ctx.clinician.rules, self.on
        off = is_day_off(ctx, day)
        reason = "days_off" if off and "days_off" in on else self._past_limit(day)
        ranges: Ranges | None = None
        if reason is None and "working_hours" in on and not off:
            # On a day off working_hours is not checked (days_off speaks for it).
            ranges = (rules.working_hours or {}).get(day.weekday(), ())
            reason = None if ranges else "working_hours"
        if reason is not None:
            self.closed[reason] += 1
            return None
        latest = _DAY
        if "level_limits.latest_start" in on:
            latest = min(
                [
                    limits.latest_start
                    for threshold, limits in rules.level_limits.items()
                    if limits.latest_start is not None and ctx.at_least(self.level, threshold)
                ],
                default=latest,
            )
        return ranges, latest

    def _past_limit(self, day: date) -> str | None:
        """The limit one more session at the level asked for would take ``day`` or its
        week past, when its violation is an error (each rule: "more than allowed")."""
        ctx, rules, level = self.ctx, self.ctx.clinician.rules, self.level
        sessions = ctx.sessions_by_day.get(day, [])
        in_week = week_sessions(ctx, ctx.week_start(day))
        weights = self.classification.weights
        worked = {s.day for s in in_week}
        # The week's limits first: they close every day of it, the better reason to give.
        after: list[tuple[str, int | None, int]] = [
            ("max_sessions_per_week", rules.max_sessions_per_week, len(in_week) + 1),
            ("max_work_days_per_week", rules.max_work_days_per_week, len(worked | {day})),
        ]
        reached = [(t, lim) for t, lim in rules.level_limits.items() if ctx.at_least(level, t)]
        after += [
            ("level_limits.max_per_week", lim.max_per_week, len(at_level(ctx, in_week, t)) + 1)
            for t, lim in reached
        ]
        after += [
            ("max_sessions_per_day", rules.max_sessions_per_day, len(sessions) + 1),
            (
                "max_daily_load",
                rules.max_daily_load,
                load(ctx, sessions) + weights[level],
            ),
        ]
        after += [
            ("level_limits.max_per_day", lim.max_per_day, len(at_level(ctx, sessions, t)) + 1)
            for t, lim in reached
        ]
        for rule, limit, value in after:
            if rule not in self.on or limit is None or value <= limit:
                continue
            if rule == "max_work_days_per_week" and day in worked:
                continue  # over already, and not made worse
            return rule
        return None


def _instants(day: date, minute: int, tz: ZoneInfo) -> list[datetime]:
    """The real instants (UTC) at which ``day``'s wall clock shows ``minute``: none in the
    hour skipped by a DST change, two in the hour repeated."""
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    found: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == wall and instant not in found:
            found.append(instant)
    return found
