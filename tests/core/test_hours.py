"""The hours log (DESIGN.md §11): each event counts by its part inside each day, week and
month, in the clinician's zone and in elapsed time; only sessions and the kinds a log asks
for count, never all-day events; each column of the weeks, and of the months, adds up to
the total."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from caldaemon.core.hours import COUNTED, HoursLog, Period, tally
from caldaemon.model import Classified, Event, Kind
from tests.support import TZ, all_day, at, session

LEVELS = ("low", "moderate", "high")
FAR = datetime(2030, 1, 1, tzinfo=TZ)


def item(event: Event, kind: Kind = Kind.SESSION, level: str | None = None) -> Classified:
    if kind is Kind.SESSION and level is None:
        level = "moderate"
    return Classified(event, kind, level, "test")


def log_of(
    events: list[Classified],
    first: date = date(2026, 11, 1),
    last: date = date(2026, 12, 31),
    until: datetime = FAR,
    week_starts: str = "mon",
) -> HoursLog:
    return tally(
        "lee",
        events,
        tz=TZ,
        week_starts=week_starts,
        first=first,
        last=last,
        until=until,
        levels=LEVELS,
    )


def hours(period: Period, kind: Kind = Kind.SESSION) -> str:
    return period.hours(kind)


def week(log: HoursLog, start: date) -> Period:
    return next(p for p in log.weeks if p.start == start)


def month(log: HoursLog, number: int) -> Period:
    return next(p for p in log.months if p.start.month == number)


def test_each_kind_counts_in_its_own_column() -> None:
    day = date(2026, 11, 30)
    log = log_of(
        [
            item(session(day, "09:00", "09:50")),
            item(session(day, "10:00", "11:30", "Supervision"), Kind.SUPERVISION),
            item(session(day, "12:00", "13:00", "Team"), Kind.PEER_SUPPORT),
            item(session(day, "13:00", "13:15", "Notes"), Kind.ADMIN),
            item(session(day, "17:00", "18:00", "Therapy of my own"), Kind.PERSONAL),
        ]
    )
    total = log.total
    assert [total.hours(k) for k in COUNTED] == ["0.83", "1.50", "1.00", "0.25", "1.00"]
    assert total.session_count == 1


def test_ignored_buffers_other_time_and_days_off_never_count() -> None:
    day = date(2026, 11, 30)
    log = log_of(
        [
            item(session(day, "09:00", "10:00", cancelled=True), Kind.IGNORED),
            item(session(day, "10:00", "11:00", declined=True), Kind.IGNORED),
            item(session(day, "11:00", "12:00", busy=False), Kind.IGNORED),
            item(session(day, "12:00", "12:15", "Grounding time"), Kind.BUFFER),
            item(session(day, "13:00", "14:00", "Dentist"), Kind.OTHER),
            item(all_day(day, "Off #off"), Kind.DAY_OFF),
        ]
    )
    assert all(log.total.cents[k] == 0 for k in COUNTED)
    assert log.total.session_count == 0


def test_an_all_day_event_never_counts_as_hours_whatever_its_kind() -> None:
    day = date(2026, 12, 2)
    log = log_of([item(all_day(day, "Supervision day"), Kind.SUPERVISION)])
    assert hours(log.total, Kind.SUPERVISION) == "0.00"


def test_an_event_across_midnight_counts_in_each_week_by_its_part() -> None:
    # Sunday 6 Dec 23:00 to Monday 7 Dec 01:00: a week ends at midnight.
    event = session(date(2026, 12, 6), "23:00", "23:00")
    event = Event(event.calendar, event.id, event.start, event.start + timedelta(hours=2))
    log = log_of([item(event, Kind.SUPERVISION)])
    assert hours(week(log, date(2026, 11, 30)), Kind.SUPERVISION) == "1.00"
    assert hours(week(log, date(2026, 12, 7)), Kind.SUPERVISION) == "1.00"
    assert hours(log.total, Kind.SUPERVISION) == "2.00"


def test_a_session_across_a_month_end_counts_in_both_months_and_once_as_a_session() -> None:
    start = at(date(2026, 11, 30), "23:30")
    event = Event("work", "late", start, start + timedelta(hours=1))
    log = log_of([item(event, level="high")])
    assert hours(month(log, 11)) == "0.50"
    assert hours(month(log, 12)) == "0.50"
    assert month(log, 11).sessions["high"] == 1  # by the day it starts
    assert month(log, 12).session_count == 0


def test_on_the_dst_change_days_hours_are_the_time_that_really_passed() -> None:
    # Toronto: clocks go back at 02:00 on Sun 1 Nov 2026 (01:00–02:00 happens twice),
    # and forward at 02:00 on Sun 8 Mar 2026 (02:00–03:00 never happens).
    back = session(date(2026, 11, 1), "00:30", "03:30")
    forward = session(date(2026, 3, 8), "01:00", "04:00")
    log = log_of([item(back, Kind.PERSONAL), item(forward, Kind.ADMIN)], first=date(2026, 3, 1))
    assert hours(month(log, 11), Kind.PERSONAL) == "4.00"
    assert hours(month(log, 3), Kind.ADMIN) == "2.00"


def test_a_day_of_25_hours_counts_an_event_over_all_of_it() -> None:
    start = datetime(2026, 11, 1, tzinfo=TZ)
    event = Event("work", "long", start, datetime(2026, 11, 2, tzinfo=TZ))
    log = log_of([item(event, Kind.ADMIN)])
    assert hours(log.total, Kind.ADMIN) == "25.00"


def test_only_the_part_inside_the_range_and_before_until_counts() -> None:
    before = session(date(2026, 10, 31), "23:00", "23:00")
    before = Event("work", "b", before.start, before.start + timedelta(hours=2))
    running = session(date(2026, 12, 1), "09:00", "10:00")
    later = session(date(2026, 12, 1), "11:00", "12:00")
    log = log_of(
        [item(before, Kind.SUPERVISION), item(running), item(later)],
        until=at(date(2026, 12, 1), "09:30"),
    )
    assert hours(log.total, Kind.SUPERVISION) == "1.00"  # its Saturday hour was October's
    assert hours(log.total) == "0.50"  # half of the one under way; none of the later one
    assert log.total.session_count == 1  # the one that began


def test_sessions_are_counted_per_level() -> None:
    day = date(2026, 12, 1)
    log = log_of(
        [
            item(session(day, "09:00", "09:50"), level="high"),
            item(session(day, "10:00", "10:50"), level="high"),
            item(session(day, "11:00", "11:50"), level="low"),
            item(session(day, "13:00", "13:50"), level="custom"),
        ]
    )
    assert log.total.sessions == {"high": 2, "low": 1, "custom": 1}
    assert log.levels == ("low", "moderate", "high", "custom")


def test_every_week_and_month_of_the_range_is_a_row_clipped_to_the_range() -> None:
    log = log_of([], first=date(2026, 11, 4), last=date(2026, 12, 9))
    assert [(p.start, p.end) for p in log.months] == [
        (date(2026, 11, 4), date(2026, 11, 30)),
        (date(2026, 12, 1), date(2026, 12, 9)),
    ]
    assert log.weeks[0].start == date(2026, 11, 4)  # a Wednesday: the week is cut
    assert log.weeks[0].end == date(2026, 11, 8)
    assert log.weeks[-1].start == date(2026, 12, 7)
    assert log.weeks[-1].end == date(2026, 12, 9)
    assert len(log.weeks) == 6
    assert (log.total.start, log.total.end) == (date(2026, 11, 4), date(2026, 12, 9))


def test_weeks_start_on_the_rule_sets_week_start() -> None:
    log = log_of([], first=date(2026, 11, 1), last=date(2026, 11, 30), week_starts="sun")
    assert [p.start.weekday() for p in log.weeks[1:]] == [6] * 4


def test_columns_of_weeks_and_of_months_add_up_to_the_total_exactly() -> None:
    # Fifty-minute sessions: 0.8333… hours each; rounded alone, 0.83 + 0.83 + 0.83 = 2.49.
    events = [
        item(session(date(2026, 11, 2) + timedelta(days=7 * n + d), "09:00", "09:50"))
        for n in range(8)
        for d in range(n % 3 + 1)
    ]
    log = log_of(events)
    for rows in (log.weeks, log.months):
        for kind in COUNTED:
            assert sum(p.cents[kind] for p in rows) == log.total.cents[kind]
    assert hours(log.total) == f"{len(events) * 50 / 60:.2f}"
    for period in log.weeks:  # each row within a hundredth of its exact value
        exact = period.time[Kind.SESSION] / timedelta(hours=1)
        assert abs(period.cents[Kind.SESSION] / 100 - exact) < 0.01
