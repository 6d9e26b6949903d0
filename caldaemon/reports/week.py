"""One clinician's week as facts (DESIGN.md §11): what ``caldaemon report`` draws and
prints. Pure over the core's results: the classified events and the evaluation of an
:class:`~caldaemon.core.assess.Assessment`. No event text ever enters: a block is its
times, its kind and its level; a violation is its rule, severity, times and the message
the rules wrote (times, kinds and levels only).

The figures are the core's own, so the report and the rules cannot disagree: sessions,
load and sessions per level are counted by core/rules/counts.py (a session on the day it
starts), and hours by core/hours.py (split at local midnights, so a session from 23:00
to 01:00, or a night across the week's end, counts its part in each day and week).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from caldaemon.core.assess import Assessment, P
from caldaemon.core.hours import tally
from caldaemon.core.policy import ClassificationSettings
from caldaemon.core.rules.context import Context
from caldaemon.core.rules.counts import at_level, load, week_sessions, work_days
from caldaemon.core.rules.hours import is_day_off
from caldaemon.model import Classified, Kind, Violation

# Kinds whose hours the week counts apart from client sessions (a licensure log's lines).
COUNTED_KINDS = (Kind.SUPERVISION, Kind.PEER_SUPPORT, Kind.PERSONAL, Kind.ADMIN)
SHOWN_KINDS = frozenset({Kind.SESSION, *COUNTED_KINDS, Kind.OTHER})


@dataclass(frozen=True)
class Block:
    """Something that takes time on a day: a session (with its level), another kind of
    event, or a buffer or hold caldaemon keeps (``kind`` "buffer" or "hold")."""

    start: datetime
    end: datetime
    kind: str
    level: str | None = None
    flagged: bool = False  # part of an unaccepted violation


@dataclass(frozen=True)
class Mark:
    """A boundary crossed, as the rules said it (no event text)."""

    rule: str
    severity: str
    start: datetime | None
    end: datetime | None
    message: str
    accepted: bool


@dataclass(frozen=True)
class Count:
    """A figure against its limit (``limit`` None: no limit set)."""

    name: str
    value: float
    limit: float | None

    @property
    def over(self) -> bool:
        return self.limit is not None and self.value > self.limit

    @property
    def at_limit(self) -> bool:
        return self.limit is not None and self.value >= self.limit


@dataclass(frozen=True)
class DayView:
    day: date
    day_off: bool
    working: tuple[tuple[time, time], ...]
    blocks: tuple[Block, ...]
    marks: tuple[Mark, ...]
    counts: tuple[Count, ...]


@dataclass(frozen=True)
class WeekView:
    clinician: str
    name: str
    tz: ZoneInfo
    start: date
    days: tuple[DayView, ...]
    counts: tuple[Count, ...]
    hours: dict[str, float]  # "client" and each counted kind → hours in the week
    marks: tuple[Mark, ...]  # violations of the week as a whole (weekly limits, cadence)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=7)

    @property
    def errors(self) -> int:
        return sum(1 for m in self._all_marks() if m.severity == "error" and not m.accepted)

    @property
    def warnings(self) -> int:
        return sum(1 for m in self._all_marks() if m.severity == "warning" and not m.accepted)

    def _all_marks(self) -> Iterable[Mark]:
        yield from self.marks
        for day in self.days:
            yield from day.marks


def build(
    assessment: Assessment[P],
    classification: ClassificationSettings,
    start: date,
    name: str = "",
) -> WeekView:
    """The week beginning ``start`` (a date in the clinician's zone) of ``assessment``,
    which must have read and evaluated that week."""
    clinician = assessment.clinician
    tz = clinician.tz
    rules = clinician.rules
    end = start + timedelta(days=7)
    ctx = Context(
        clinician, classification, tuple(assessment.classified), assessment.now, assessment.now
    )
    flagged = {key for v in assessment.evaluation.violations if not v.accepted for key in v.events}
    blocks_by_day: dict[date, list[Block]] = defaultdict(list)
    for c in assessment.classified:
        block = _block(c, flagged)
        if block is not None:
            blocks_by_day[block.start.astimezone(tz).date()].append(block)
    for b in assessment.evaluation.buffers:
        blocks_by_day[b.start.astimezone(tz).date()].append(Block(b.start, b.end, "buffer"))
    for h in assessment.evaluation.holds:
        if not h.all_day:
            blocks_by_day[h.start.astimezone(tz).date()].append(Block(h.start, h.end, "hold"))
    marks_by_day: dict[date, list[Mark]] = defaultdict(list)
    week_marks: list[Mark] = []
    for v in assessment.evaluation.violations:
        if not start <= v.date < end:
            continue
        mark = _mark(v)
        if v.start is not None and v.start.astimezone(tz).date() == v.date:
            marks_by_day[v.date].append(mark)
        else:
            week_marks.append(mark)
    days = []
    for n in range(7):
        day = start + timedelta(days=n)
        blocks = tuple(sorted(blocks_by_day.get(day, ()), key=lambda b: (b.start, b.end)))
        sessions = ctx.sessions_by_day.get(day, [])
        counts = [
            Count("sessions", len(sessions), rules.max_sessions_per_day),
            Count("load", load(ctx, sessions), rules.max_daily_load),
        ]
        for level, limit in rules.level_limits.items():
            at_least = at_level(ctx, sessions, level)
            counts.append(Count(f"{level} sessions", len(at_least), limit.max_per_day))
        ranges = (rules.working_hours or {}).get(day.weekday(), ())
        days.append(
            DayView(
                day=day,
                day_off=is_day_off(ctx, day),
                working=tuple((_clock(low), _clock(high)) for low, high in ranges),
                blocks=blocks,
                marks=tuple(marks_by_day.get(day, ())),
                counts=tuple(counts),
            )
        )
    sessions = week_sessions(ctx, start)
    week_counts = [
        Count("sessions", len(sessions), rules.max_sessions_per_week),
        Count("days with sessions", len(work_days(sessions)), rules.max_work_days_per_week),
    ]
    for level, limit in rules.level_limits.items():
        at_least = at_level(ctx, sessions, level)
        week_counts.append(Count(f"{level} sessions", len(at_least), limit.max_per_week))
    return WeekView(
        clinician=clinician.id,
        name=name,
        tz=tz,
        start=start,
        days=tuple(days),
        counts=tuple(week_counts),
        hours=_hours(assessment, classification, start),
        marks=tuple(week_marks),
    )


def _hours(
    assessment: Assessment[P], classification: ClassificationSettings, start: date
) -> dict[str, float]:
    """Client hours and the hours of each counted kind in the whole week, planned time
    included, as ``caldaemon hours`` counts them."""
    clinician = assessment.clinician
    last = start + timedelta(days=6)
    week = tally(
        clinician.id,
        assessment.classified,
        tz=clinician.tz,
        week_starts=clinician.rules.week_starts,
        first=start,
        last=last,
        until=datetime.combine(last + timedelta(days=1), time(), clinician.tz),
        levels=classification.levels,
    ).total
    hours = {"client": week.cents[Kind.SESSION] / 100}
    for kind in COUNTED_KINDS:
        hours[kind.value] = week.cents[kind] / 100
    return hours


def _block(c: Classified, flagged: set[str]) -> Block | None:
    if c.kind not in SHOWN_KINDS or c.event.all_day or not c.occupies_time:
        return None
    return Block(c.event.start, c.event.end, c.kind.value, c.level, c.event.key in flagged)


def _mark(v: Violation) -> Mark:
    return Mark(
        rule=v.rule,
        severity=v.severity.value,
        start=v.start,
        end=v.end,
        message=v.message,
        accepted=v.accepted,
    )


def _clock(minute: int) -> time:
    return time(23, 59) if minute >= 24 * 60 else time(minute // 60, minute % 60)
