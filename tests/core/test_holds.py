"""Protected time (DESIGN.md §10): holds over the free working hours of a full day or week,
all-day holds on days off; never over an existing event or a buffer; gone when their
reason goes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from caldaemon.model import Buffer
from tests.support import MONDAY, TZ, all_day, at, evaluate, make_settings, session

HOURS = {"mon-fri": ["09:00-12:00", "13:00-17:00"]}


def settings(**rules: Any):  # type: ignore[no-untyped-def]
    return make_settings(
        {"working_hours": HOURS, **rules},
        clinician={"buffers_to": "work"},
    )


def spans(holds: tuple[Buffer, ...]) -> list[tuple[str, str]]:
    return [
        (f"{h.start.astimezone(TZ):%a %H:%M}", f"{h.end.astimezone(TZ):%a %H:%M}") for h in holds
    ]


def test_a_day_at_its_session_limit_is_held_in_every_free_stretch_split_around_lunch():
    rules = settings(max_sessions_per_day=2, protect={"full_days": True})
    first = session(MONDAY, "09:00", "09:50")
    second = session(MONDAY, "14:00", "14:50")
    result = evaluate(rules, [first, second])
    assert spans(result.holds) == [
        ("Mon 09:50", "Mon 12:00"),
        ("Mon 13:00", "Mon 14:00"),
        ("Mon 14:50", "Mon 17:00"),
    ]
    assert {h.title for h in result.holds} == {"Unavailable"}
    assert {h.rule for h in result.holds} == {"protect.full_days"}


def test_holds_never_cover_an_event_or_a_buffer():
    rules = settings(
        max_sessions_per_day=1,
        protect={"full_days": True, "title": "Booked out"},
        buffers=[{"after": "moderate", "length": "10m", "title": "Notes"}],
    )
    one = session(MONDAY, "09:00", "09:50")
    dentist = session(MONDAY, "15:00", "16:00", "Dentist", calendar="home")
    result = evaluate(rules, [one, dentist])
    assert spans(result.buffers) == [("Mon 09:50", "Mon 10:00")]
    assert spans(result.holds) == [
        ("Mon 10:00", "Mon 12:00"),
        ("Mon 13:00", "Mon 15:00"),
        ("Mon 16:00", "Mon 17:00"),
    ]
    assert {h.title for h in result.holds} == {"Booked out"}


def test_a_hold_never_covers_a_long_buffer_that_began_before_the_free_time_it_searches():
    # The search for free time asks about short stretches inside the two-hour buffer,
    # which started before each of them: the busy index must still find it there.
    rules = settings(
        max_sessions_per_day=1,
        protect={"full_days": True},
        buffers=[{"after": "moderate", "length": "2h", "title": "Notes"}],
    )
    result = evaluate(rules, [session(MONDAY, "09:00", "09:50")])
    assert spans(result.buffers) == [("Mon 09:50", "Mon 11:50")]
    # 11:50-12:00 is too short to hold.
    assert spans(result.holds) == [("Mon 13:00", "Mon 17:00")]


def test_a_day_below_its_limit_is_not_held_and_a_hold_goes_with_its_reason():
    rules = settings(max_sessions_per_day=2, protect={"full_days": True})
    one = session(MONDAY, "09:00", "09:50")
    assert evaluate(rules, [one]).holds == ()


def test_a_day_at_its_load_is_held():
    rules = settings(max_daily_load=6, protect={"full_days": True})
    heavy = [session(MONDAY, f"{h:02d}:00", f"{h:02d}:50", "#heavy") for h in (9, 10)]
    assert spans(evaluate(rules, heavy).holds)[0] == ("Mon 10:50", "Mon 12:00")


def test_a_full_week_holds_the_free_hours_of_its_remaining_days_but_not_its_days_off():
    rules = settings(max_sessions_per_week=2, protect={"full_weeks": True}, days_off=["fri"])
    week = [session(MONDAY, "09:00", "09:50"), session(MONDAY, "13:00", "13:50")]
    days = {h.start.astimezone(TZ).strftime("%a") for h in evaluate(rules, week).holds}
    assert days == {"Mon", "Tue", "Wed", "Thu"}


def test_a_week_at_its_work_days_holds_only_the_days_without_sessions():
    rules = settings(max_work_days_per_week=2, protect={"full_weeks": True})
    week = [
        session(MONDAY, "09:00", "09:50"),
        session(MONDAY + timedelta(days=2), "09:00", "09:50"),
    ]
    days = {h.start.astimezone(TZ).strftime("%a") for h in evaluate(rules, week).holds}
    assert days == {"Tue", "Thu", "Fri"}


def test_days_off_get_an_all_day_hold_unless_something_is_busy_on_them():
    rules = settings(days_off=["sat", "sun"], protect={"days_off": True})
    saturday = MONDAY + timedelta(days=5)
    party = session(saturday + timedelta(days=1), "13:00", "15:00", "Family lunch")
    holiday = all_day(MONDAY + timedelta(days=3), "#off")
    result = evaluate(rules, [party, holiday], now=at(MONDAY, "08:00"))
    held = sorted(h.start.astimezone(TZ).date() for h in result.holds)
    assert saturday in held and saturday + timedelta(days=1) not in held
    assert all(h.all_day and h.end - h.start >= timedelta(hours=23) for h in result.holds)


def test_no_holds_without_a_calendar_to_write_them_to():
    rules = make_settings(
        {"working_hours": HOURS, "max_sessions_per_day": 1, "protect": {"full_days": True}}
    )
    assert evaluate(rules, [session(MONDAY, "09:00", "09:50")]).holds == ()


def test_a_stretch_that_began_before_now_is_not_held():
    rules = settings(max_sessions_per_day=1, protect={"full_days": True})
    one = session(MONDAY, "09:00", "09:50")
    result = evaluate(rules, [one], now=datetime(2026, 11, 30, 11, 0, tzinfo=TZ))
    assert spans(result.holds) == [("Mon 13:00", "Mon 17:00")]
