"""The hours log (``caldaemon hours``, DESIGN.md §11): classified events → direct client
hours and the hours of each kind per week, per month and in total, with session counts
per level. Pure: no I/O, the clock is the ``until`` it is given.

What counts: the part of each timed event of a counted kind that lies inside the range
and before ``until``, split at local midnights, so an event across midnight, a week's or a
month's end counts in each period by its part there. Durations are elapsed time: an
event across a DST change counts the hours that really passed, not the wall clock's.
Cancelled, declined, free and caldaemon's own events are classified ``ignored`` or
``buffer`` and never count; all-day events never count as hours. A session is counted
once, in the period of the day it starts.

Hours are kept exactly (microseconds) and rounded to hundredths only for showing, so
that each column of the weeks, and of the months, adds up to the total's exact rounded
value (largest-remainder rounding: a row is at most 0.01 h from its own rounding).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from caldaemon.core.rules.context import week_start
from caldaemon.model import Classified, Kind

# The kinds whose hours are logged, in the order they are shown: direct client hours
# first (licensing bodies ask for those and for supervision).
COUNTED: tuple[Kind, ...] = (
    Kind.SESSION,
    Kind.SUPERVISION,
    Kind.PEER_SUPPORT,
    Kind.ADMIN,
    Kind.PERSONAL,
)
_CENT = timedelta(seconds=36)  # a hundredth of an hour


@dataclass(frozen=True)
class Period:
    """One row of the log: ``kind`` is ``week``, ``month`` or ``total``; ``start`` and
    ``end`` (inclusive) are the period's dates within the range. ``time`` is exact;
    ``cents`` the hundredths of an hour shown (see the module's note on rounding)."""

    kind: str
    start: date
    end: date
    time: dict[Kind, timedelta]
    cents: dict[Kind, int]
    sessions: Counter[str]

    def hours(self, kind: Kind) -> str:
        """The hours of ``kind`` as shown: ``12.50``."""
        cents = self.cents[kind]
        return f"{cents // 100}.{cents % 100:02d}"

    @property
    def session_count(self) -> int:
        return sum(self.sessions.values())


@dataclass(frozen=True)
class HoursLog:
    """One clinician's hours from ``first`` to ``last`` (local dates, inclusive), counted
    up to ``until``; ``levels``: the session levels to show, lowest first."""

    clinician: str
    first: date
    last: date
    until: datetime
    levels: tuple[str, ...]
    weeks: tuple[Period, ...]
    months: tuple[Period, ...]
    total: Period


def tally(
    clinician: str,
    events: Iterable[Classified],
    *,
    tz: ZoneInfo,
    week_starts: str,
    first: date,
    last: date,
    until: datetime,
    levels: Sequence[str],
) -> HoursLog:
    """The hours log of ``events`` (one clinician's, classified) over ``first``–``last``
    in ``tz``, counting nothing after ``until``."""
    begin = _midnight(first, tz)
    end = min(_midnight(last + timedelta(days=1), tz), until.astimezone(UTC))
    by_day: dict[date, dict[Kind, timedelta]] = defaultdict(lambda: defaultdict(timedelta))
    sessions_by_day: dict[date, Counter[str]] = defaultdict(Counter)
    for item in events:
        event = item.event
        if item.kind not in COUNTED or event.all_day:
            continue
        start, stop = event.start.astimezone(UTC), event.end.astimezone(UTC)
        if item.kind is Kind.SESSION and begin <= start < end:
            sessions_by_day[start.astimezone(tz).date()][item.level or ""] += 1
        for day, part in _by_day(max(start, begin), min(stop, end), tz):
            by_day[day][item.kind] += part
    weeks = _spans(first, last, lambda d: week_start(d, week_starts), lambda d: d + _WEEK)
    months = _spans(first, last, lambda d: d.replace(day=1), _next_month)
    found = {level for counts in sessions_by_day.values() for level in counts}
    shown = tuple(levels) + tuple(sorted(found - set(levels)))

    def rows(kind: str, spans: list[tuple[date, date]]) -> list[_Row]:
        return [_row(kind, a, b, by_day, sessions_by_day) for a, b in spans]

    week_rows, month_rows = rows("week", weeks), rows("month", months)
    (total,) = rows("total", [(first, last)])
    return HoursLog(
        clinician,
        first,
        last,
        until,
        shown,
        _rounded(week_rows, total),
        _rounded(month_rows, total),
        _rounded([total], total)[0],
    )


_WEEK = timedelta(days=7)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(UTC)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _by_day(start: datetime, stop: datetime, tz: ZoneInfo) -> Iterable[tuple[date, timedelta]]:
    """The parts of ``[start, stop)`` (UTC) on each local day: elapsed time, so a day of
    23 or 25 hours counts what it had."""
    day = start.astimezone(tz).date()
    while start < stop:
        boundary = min(stop, _midnight(day + timedelta(days=1), tz))
        if boundary > start:
            yield day, boundary - start
        start, day = boundary, day + timedelta(days=1)


def _spans(
    first: date, last: date, opening: Callable[[date], date], following: Callable[[date], date]
) -> list[tuple[date, date]]:
    """The periods that meet ``first``–``last``, each clipped to it: (start, end)."""
    found = []
    start = opening(first)
    while start <= last:
        after = following(start)
        found.append((max(start, first), min(after - timedelta(days=1), last)))
        start = after
    return found


@dataclass(frozen=True)
class _Row:
    kind: str
    start: date
    end: date
    time: dict[Kind, timedelta]
    sessions: Counter[str]


def _row(
    kind: str,
    start: date,
    end: date,
    by_day: dict[date, dict[Kind, timedelta]],
    sessions_by_day: dict[date, Counter[str]],
) -> _Row:
    totals = {k: timedelta() for k in COUNTED}
    sessions: Counter[str] = Counter()
    day = start
    while day <= end:
        for k, part in by_day.get(day, {}).items():
            totals[k] += part
        sessions.update(sessions_by_day.get(day, {}))
        day += timedelta(days=1)
    return _Row(kind, start, end, totals, sessions)


def _rounded(rows: list[_Row], total: _Row) -> tuple[Period, ...]:
    """``rows`` with hundredths that add up, per kind, to the total's rounded value."""
    cents: list[dict[Kind, int]] = [{} for _ in rows]
    for kind in COUNTED:
        exact = [row.time[kind] // timedelta(microseconds=1) for row in rows]
        unit = _CENT // timedelta(microseconds=1)
        whole = (2 * (total.time[kind] // timedelta(microseconds=1)) + unit) // (2 * unit)
        floors = [value // unit for value in exact]
        short = whole - sum(floors)
        # The rows with the largest remainders get the hundredths left (earlier first).
        order = sorted(range(len(rows)), key=lambda i: (-(exact[i] % unit), i))
        for rank, i in enumerate(order):
            cents[i][kind] = floors[i] + (1 if rank < short else 0)
    return tuple(
        Period(row.kind, row.start, row.end, row.time, cents[i], row.sessions)
        for i, row in enumerate(rows)
    )
