"""The weekly report counts as the rules and the hours log do (DESIGN.md §3 "Rule
semantics", §11): a session counts on the day, and in the week, it starts in, as the
limits judge it; its hours count by their part in each day and week, as ``caldaemon hours``
counts them. So a session from 23:00 to 01:00, or one across the week's end, is never
counted one way in the report and another in ``check`` or the hours log."""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from caldaemon.config import Settings
from caldaemon.core.assess import Assessment, assess
from caldaemon.core.hours import tally
from caldaemon.model import Event, Kind, Violation
from caldaemon.reports.week import Count, WeekView, build
from tests.support import MONDAY, TZ, at, make_settings

NEXT_MONDAY = MONDAY + timedelta(days=7)
LEVEL_TAGS = {"low": "#light", "moderate": "#moderate", "high": "#heavy"}
# Every limit at 0: each day and week with a session yields a violation that names its
# sessions, so the rules' own counts can be read off ``check``'s result.
ZERO_LIMITS: dict[str, Any] = {
    "max_sessions_per_day": 0,
    "max_sessions_per_week": 0,
    "max_work_days_per_week": 0,
    "max_daily_load": 0,
    "level_limits": {level: {"max_per_day": 0, "max_per_week": 0} for level in LEVEL_TAGS},
}


def event(start: datetime, end: datetime, level: str = "high", n: int = 0) -> Event:
    return Event(
        calendar="work",
        id=f"s{n}-{start:%d%H%M}",
        start=start,
        end=end,
        title=f"Client session {LEVEL_TAGS[level]}",
    )


def assessed(settings: Settings, events: list[Event], now: datetime) -> Assessment[Any]:
    clinician = settings.clinicians[0]
    return assess(clinician, settings.classification, events, now, settings.daemon.horizon)


def week_of(settings: Settings, events: list[Event], start: date) -> WeekView:
    now = at(start, "00:00")
    return build(assessed(settings, events, now), settings.classification, start)


def count(counts: tuple[Count, ...], name: str) -> float:
    return next(c.value for c in counts if c.name == name)


def day_counts(view: WeekView, day: date, name: str) -> float:
    return count(next(d for d in view.days if d.day == day).counts, name)


def hours_log_weeks(settings: Settings, events: list[Event], first: date, last: date) -> list[str]:
    """The client hours of each week as ``caldaemon hours`` shows them."""
    result = assessed(settings, events, at(first, "00:00"))
    log = tally(
        "lee",
        result.classified,
        tz=TZ,
        week_starts="mon",
        first=first,
        last=last,
        until=at(last + timedelta(days=1), "00:00"),
        levels=settings.classification.levels,
    )
    return [week.hours(Kind.SESSION) for week in log.weeks]


def hit(violations: list[Violation], rule: str) -> dict[date, Violation]:
    return {v.date: v for v in violations if v.rule == rule}


def test_a_session_across_midnight_counts_on_the_day_it_starts_and_all_its_hours() -> None:
    settings = make_settings(ZERO_LIMITS)
    tuesday, wednesday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)
    events = [event(at(tuesday, "23:00"), at(wednesday, "01:00"))]
    view = week_of(settings, events, MONDAY)
    per_day = hit(
        assessed(settings, events, at(MONDAY, "00:00")).evaluation.violations,
        "max_sessions_per_day",
    )
    assert set(per_day) == {tuesday}
    assert day_counts(view, tuesday, "sessions") == 1
    assert day_counts(view, wednesday, "sessions") == 0
    assert day_counts(view, tuesday, "high sessions") == 1
    assert view.hours["client"] == 2.0
    assert hours_log_weeks(settings, events, MONDAY, MONDAY + timedelta(days=6)) == ["2.00"]


def test_a_session_across_the_weeks_end_counts_in_its_first_week_and_its_hours_in_both() -> None:
    settings = make_settings(ZERO_LIMITS)
    sunday = NEXT_MONDAY - timedelta(days=1)
    events = [event(at(sunday, "23:00"), at(NEXT_MONDAY, "01:30"))]
    first, second = week_of(settings, events, MONDAY), week_of(settings, events, NEXT_MONDAY)
    weekly = hit(
        assessed(settings, events, at(MONDAY, "00:00")).evaluation.violations,
        "max_sessions_per_week",
    )
    assert set(weekly) == {MONDAY} and len(weekly[MONDAY].events) == 1
    assert count(first.counts, "sessions") == 1 and count(second.counts, "sessions") == 0
    assert day_counts(first, sunday, "sessions") == 1
    assert day_counts(second, NEXT_MONDAY, "sessions") == 0
    # The hour before midnight in the first week, the hour and a half after it in the next.
    assert (first.hours["client"], second.hours["client"]) == (1.0, 1.5)
    shown = hours_log_weeks(settings, events, MONDAY, NEXT_MONDAY + timedelta(days=6))
    assert shown == ["1.00", "1.50"]
    assert [f"{v.hours['client']:.2f}" for v in (first, second)] == shown


def busy_week(seed: int) -> list[Event]:
    """Sessions at every level all over a week, overlapping, some late enough to run past
    midnight, and some of the previous Sunday's night running into Monday."""
    rng = random.Random(seed)
    events = []
    for n in range(rng.randint(40, 70)):
        day = MONDAY + timedelta(days=rng.randint(-1, 6))
        start = datetime.combine(day, datetime.min.time(), TZ) + timedelta(
            minutes=5 * rng.randint(7 * 12, 23 * 12 + 6)
        )
        end = start + timedelta(minutes=rng.choice((30, 45, 50, 60, 90, 120)))
        events.append(event(start, end, rng.choice(tuple(LEVEL_TAGS)), n))
    return events


LOAD = re.compile(r"a session load of (\d+) ")
DAYS = re.compile(r"sessions on (\d+) days")


def number(pattern: re.Pattern[str], violation: Violation | None) -> int:
    """The figure a violation's message states (0: no violation, nothing counted)."""
    if violation is None:
        return 0
    found = pattern.search(violation.message)
    assert found is not None, violation.message
    return int(found[1])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_on_a_busy_week_each_days_figures_are_the_rules_own(seed: int) -> None:
    settings = make_settings(ZERO_LIMITS)
    events = busy_week(seed)
    view = week_of(settings, events, MONDAY)
    violations = assessed(settings, events, at(MONDAY, "00:00")).evaluation.violations
    sessions, loads = hit(violations, "max_sessions_per_day"), hit(violations, "max_daily_load")
    compared = 0
    for day in view.days:
        by_rules = sessions.get(day.day)
        assert count(day.counts, "sessions") == (len(by_rules.events) if by_rules else 0)
        assert count(day.counts, "load") == number(LOAD, loads.get(day.day))
        for level in LEVEL_TAGS:
            per_level = {
                v.date: v
                for v in violations
                if v.rule == "level_limits.max_per_day" and v.level == level
            }
            found = per_level.get(day.day)
            assert count(day.counts, f"{level} sessions") == (len(found.events) if found else 0)
        compared += bool(by_rules)
    assert compared == 7  # every day had sessions: nothing compared as 0 == 0 only
    [week] = hit(violations, "max_sessions_per_week").values()
    assert count(view.counts, "sessions") == len(week.events)
    [days] = hit(violations, "max_work_days_per_week").values()
    assert count(view.counts, "days with sessions") == number(DAYS, days)
    for level in LEVEL_TAGS:
        [per_week] = [
            v for v in violations if v.rule == "level_limits.max_per_week" and v.level == level
        ]
        assert count(view.counts, f"{level} sessions") == len(per_week.events)


def test_a_session_across_the_autumn_dst_change_counts_the_hours_that_passed() -> None:
    # Toronto's clocks go back at 02:00 on Sunday 1 Nov 2026: 00:30–02:30 on the wall
    # clock is three hours of work, as the hours log counts it.
    settings = make_settings(ZERO_LIMITS)
    monday, sunday = date(2026, 10, 26), date(2026, 11, 1)
    events = [event(at(sunday, "00:30"), at(sunday, "02:30"))]
    view = week_of(settings, events, monday)
    assert view.hours["client"] == 3.0
    assert hours_log_weeks(settings, events, monday, sunday) == ["3.00"]
