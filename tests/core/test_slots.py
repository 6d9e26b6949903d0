"""``caldaemon slots`` in the core: where one more session of a length and level fits
without a new error, on small hand-built weeks (DESIGN.md §11)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon import config
from caldaemon.core.assess import assess, evaluate
from caldaemon.core.slots import (
    SlotRequest,
    SlotSearch,
    _Search,
    added,
    find_slots,
    messages,
    new_session,
)
from caldaemon.model import Event, Severity
from caldaemon.service.read import check
from tests.support import MONDAY, NOW, TZ, all_day, at, make_settings, session

TUE, WED, THU, FRI, SAT = (MONDAY + timedelta(days=n) for n in range(1, 6))
ROOT = Path(__file__).resolve().parents[2]

RULES: dict[str, Any] = {
    "working_hours": {"mon-fri": "09:00-17:00"},
    "days_off": ["sat", "sun"],
    "max_sessions_per_day": 4,
    "level_limits": {"high": {"max_per_day": 2, "latest_start": "15:00"}},
    "no_back_to_back": {"level": "high", "min_gap": "60m"},
    "buffers": [{"after": "high", "length": "15m", "title": "Grounding time"}],
    "double_booked": True,
}


def search(
    events: list[Event],
    *,
    rules: dict[str, Any] | None = None,
    length: int = 50,
    level: str = "high",
    count: int = 5,
    now: datetime = NOW,
    start: datetime | None = None,
    step: int = 15,
    **settings: Any,
) -> SlotSearch:
    loaded = make_settings(RULES if rules is None else rules, **settings)
    clinician = loaded.clinicians[0]
    horizon = loaded.daemon.horizon
    classified = assess(clinician, loaded.classification, events, now, horizon).classified
    request = SlotRequest(timedelta(minutes=length), level, count, start, timedelta(minutes=step))
    return find_slots(clinician, loaded.classification, classified, now, horizon, request)


def starts(found: SlotSearch) -> list[datetime]:
    return [slot.start for slot in found.slots]


def heavy(day: date, start: str, end: str) -> Event:
    return session(day, start, end, "Client session #heavy")


def light(day: date, start: str, end: str) -> Event:
    return session(day, start, end, "Client session #light")


# -- filling gaps --------------------------------------------------------------------------


def test_a_slot_can_exactly_fill_the_gap_before_a_session():
    events = [light(MONDAY, "09:00", "10:00"), light(MONDAY, "11:00", "12:00")]
    found = search(events, level="moderate", length=60, count=2)
    assert starts(found) == [at(MONDAY, "10:00"), at(MONDAY, "12:00")]
    assert found.slots[0].end == at(MONDAY, "11:00")


def test_the_first_slot_starts_at_the_first_grid_time_after_now():
    found = search([], level="low", count=1, now=at(MONDAY, "09:07"))
    assert starts(found) == [at(MONDAY, "09:15")]


def test_a_slot_whose_grounding_time_has_no_room_is_not_offered():
    events = [light(MONDAY, "09:00", "09:50"), light(MONDAY, "11:00", "11:50")]
    found = search(events, count=1)
    # 10:00–10:50 fits, but its 15 minutes of grounding would run into 11:00.
    assert starts(found) == [at(MONDAY, "12:00")]
    assert found.ruled_out["buffers"] >= 1
    # A session that wants no buffer fits there.
    assert starts(search(events, level="moderate", count=1)) == [at(MONDAY, "10:00")]


def test_the_buffers_of_the_new_session_come_with_it():
    [slot] = search([], count=1).slots
    [grounding] = slot.buffers
    assert (grounding.start, grounding.end) == (at(MONDAY, "09:50"), at(MONDAY, "10:05"))
    assert grounding.title == "Grounding time" and slot.level == "high"


def test_a_before_buffer_must_fit_too():
    rules = RULES | {"buffers": [{"before": "high", "length": "15m", "title": "Preparation"}]}
    found = search([light(MONDAY, "09:00", "09:50")], rules=rules, count=1, step=5)
    assert starts(found) == [at(MONDAY, "10:05")]
    assert [(b.start, b.title) for b in found.slots[0].buffers] == [
        (at(MONDAY, "09:50"), "Preparation")
    ]


def test_grounding_time_kept_for_a_session_already_there_is_not_bookable():
    # With fit: shrink the rules would only warn that the grounding got shorter; a slot
    # over it would still take the time the clinician keeps to ground.
    rules = RULES | {
        "buffers": [
            {
                "after": "high",
                "length": "15m",
                "title": "Grounding",
                "fit": "shrink",
                "min_length": "5m",
            }
        ]
    }
    found = search([heavy(MONDAY, "09:00", "09:50")], rules=rules, level="low", count=1, step=5)
    assert starts(found) == [at(MONDAY, "10:05")]


def test_a_slot_never_overlaps_busy_time_even_without_double_booked():
    rules = {k: v for k, v in RULES.items() if k != "double_booked"}
    busy = session(MONDAY, "09:00", "12:00", "Dentist", calendar="home")
    assert starts(search([busy], rules=rules, level="low", count=1)) == [at(MONDAY, "12:00")]


# -- boundaries ----------------------------------------------------------------------------


def test_no_back_to_back_keeps_the_gap_after_a_heavy_session():
    found = search([heavy(MONDAY, "09:00", "09:50")], count=1, step=5)
    assert starts(found) == [at(MONDAY, "10:50")]
    assert found.ruled_out["no_back_to_back"] >= 1
    # And before the next one: a heavy session at 11:00 wants the new one over by 10:00.
    found = search([heavy(TUE, "11:00", "11:50")], start=at(TUE, "00:00"), count=4, step=5)
    assert starts(found) == [at(TUE, h) for h in ("09:00", "09:05", "09:10", "12:50")]


def test_no_high_session_starts_after_latest_start():
    found = search([], count=50, step=60)
    monday = [s for s in starts(found) if s.date() == MONDAY]
    assert monday == [at(MONDAY, f"{h:02d}:00") for h in range(9, 16)]
    assert found.ruled_out["level_limits.latest_start"] >= 1
    # latest_start is for high-intensity work only.
    found = search([], level="moderate", count=50, step=60)
    assert at(MONDAY, "16:00") in starts(found)


def test_a_day_at_max_sessions_per_day_is_skipped():
    full = [light(MONDAY, f"{h:02d}:00", f"{h:02d}:50") for h in (9, 10, 13, 14)]
    found = search(full, level="low", count=1)
    assert starts(found) == [at(TUE, "09:00")]
    assert found.closed["max_sessions_per_day"] == 1


def test_a_day_at_its_high_limit_takes_low_sessions_but_not_high_ones():
    two = [heavy(MONDAY, "09:00", "09:50"), heavy(MONDAY, "13:00", "13:50")]
    assert starts(search(two, count=1)) == [at(TUE, "09:00")]
    assert starts(search(two, level="low", count=1)) == [at(MONDAY, "10:15")]


def test_days_off_are_skipped_weekdays_and_dated():
    events = [all_day(MONDAY + timedelta(days=7), "Away #off")]
    found = search(events, level="low", count=1, now=at(FRI, "16:30"))
    # Friday is over, the weekend is off and so is the Monday after.
    assert starts(found) == [at(TUE + timedelta(days=7), "09:00")]
    assert found.closed["days_off"] == 3


def test_a_rule_kept_as_a_warning_does_not_rule_a_slot_out_but_is_said():
    full = [light(MONDAY, f"{h:02d}:00", f"{h:02d}:50") for h in (9, 10, 13, 14)]
    rules = RULES | {"severity": {"max_sessions_per_day": "warning"}}
    [slot] = search(full, rules=rules, level="low", count=1).slots
    assert slot.start == at(MONDAY, "11:00")
    assert [w.rule for w in slot.warnings] == ["max_sessions_per_day"]
    assert slot.warnings[0].severity is Severity.WARNING


def test_time_held_for_a_full_day_is_kept_even_when_its_limit_is_a_warning():
    full = [light(MONDAY, f"{h:02d}:00", f"{h:02d}:50") for h in (9, 10, 13, 14)]
    rules = RULES | {
        "severity": {"max_sessions_per_day": "warning"},
        "protect": {"full_days": True},
    }
    found = search(full, rules=rules, level="low", count=1, clinician={"buffers_to": "work"})
    # The hold keeps Monday's free hours off booking pages: no slot there either.
    assert starts(found) == [at(TUE, "09:00")]
    assert found.ruled_out["busy"] >= 1


def test_a_violation_already_there_does_not_rule_out_an_unrelated_slot():
    clash = [light(MONDAY, "09:00", "09:50"), session(MONDAY, "09:30", "10:00", calendar="home")]
    found = search(clash, level="low", count=1)
    assert starts(found) == [at(MONDAY, "10:00")]
    assert found.slots[0].warnings == ()


def test_one_more_session_in_a_week_already_over_its_limit_is_ruled_out():
    rules = RULES | {"max_sessions_per_week": 2}
    week = [
        light(MONDAY, "09:00", "09:50"),
        light(TUE, "09:00", "09:50"),
        light(WED, "09:00", "09:50"),
    ]
    found = search(week, rules=rules, level="low", count=1)
    assert starts(found) == [at(MONDAY + timedelta(days=7), "09:00")]
    assert found.closed["max_sessions_per_week"] == 5


def test_a_week_over_its_work_days_still_takes_a_session_on_a_day_already_worked():
    rules = RULES | {"max_work_days_per_week": 1}
    week = [light(MONDAY, "09:00", "09:50"), light(TUE, "09:00", "09:50")]
    found = search(week, rules=rules, level="low", count=2, now=at(MONDAY, "16:00"))
    assert starts(found) == [at(MONDAY, "16:00"), at(TUE, "10:00")]


def test_search_stays_inside_from_and_the_horizon():
    found = search([], level="low", count=50, start=at(MONDAY, "16:00"), daemon={"horizon": "1d"})
    assert starts(found) == [at(MONDAY, "16:00")]
    assert found.end == NOW + timedelta(days=1)
    assert (
        search(
            [], level="low", start=at(MONDAY, "00:00") + timedelta(days=3), daemon={"horizon": "1d"}
        ).slots
        == ()
    )


# -- the grid on DST change days -----------------------------------------------------------


SUNDAY_HOURS = {"working_hours": {"sun": "00:00-06:00"}, "days_off": []}


def test_spring_forward_day_skips_the_missing_hour_and_counts_real_time():
    spring = date(2027, 3, 14)
    now = datetime(2027, 3, 13, 23, 0, tzinfo=TZ)
    found = search([], rules=SUNDAY_HOURS, level="low", length=60, count=50, step=30, now=now)
    slots = [slot for slot in found.slots if slot.start.date() == spring]
    walls = [f"{slot.start:%H:%M}" for slot in slots]
    assert walls == [
        "00:00",
        "00:30",
        "01:00",
        "01:30",
        "03:00",
        "03:30",
        "04:00",
        "04:30",
        "05:00",
    ]
    assert all(
        slot.end.astimezone(UTC) - slot.start.astimezone(UTC) == timedelta(hours=1)
        for slot in slots
    )
    assert f"{slots[3].end:%H:%M}" == "03:30"  # 01:30 EST and an hour: 03:30 EDT


def test_fall_back_day_offers_both_of_the_repeated_hour():
    autumn = date(2026, 11, 1)
    now = datetime(2026, 10, 31, 23, 0, tzinfo=TZ)
    found = search([], rules=SUNDAY_HOURS, level="low", length=30, count=50, step=30, now=now)
    walls = [f"{s:%H:%M%z}" for s in starts(found) if s.date() == autumn]
    assert walls[:6] == [
        "00:00-0400",
        "00:30-0400",
        "01:00-0400",
        "01:30-0400",
        "01:00-0500",
        "01:30-0500",
    ]
    assert walls[-1] == "05:30-0500"


# -- the example, and the week-sized evaluation ---------------------------------------------


def _example() -> tuple[config.Settings, Any, datetime]:
    settings = config.load(ROOT / "config.example.yaml")
    now = datetime(2026, 11, 30, 8, 0, tzinfo=settings.tz)
    [result] = check(settings, now)
    return settings, result, now


@pytest.mark.parametrize("level", ["low", "moderate", "high"])
def test_judging_a_start_on_its_week_agrees_with_the_full_evaluation(level):
    settings, result, now = _example()
    clinician, horizon = result.clinician, settings.daemon.horizon
    request = SlotRequest(timedelta(minutes=50), level)
    probe = _Search(clinician, settings.classification, result.classified, now, horizon, request)
    before = messages(
        evaluate(clinician, settings.classification, result.classified, now, horizon),
        Severity.ERROR,
    )
    verdicts = []
    for day in (now.date() + timedelta(days=n) for n in range(14)):
        for minute in range(8 * 60, 18 * 60, 30):  # working hours and around them
            start = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=TZ)
            end = start + request.length
            if start < now or probe.grid.busy.overlaps(start, end):
                continue  # busy time is the grid's to drop (buffers of shrink fit included)
            added_one = (*result.classified, new_session(start, end, level))
            with_it = evaluate(clinician, settings.classification, added_one, now, horizon)
            fits = not added(with_it, before, Severity.ERROR)
            assert (probe.judge(start) is not None) == fits, start
            verdicts.append(fits)
    assert len(verdicts) > 100 and any(verdicts) != (level == "high")


def test_high_on_the_example_says_why_nothing_fits():
    settings, result, now = _example()
    request = SlotRequest(timedelta(minutes=50), "high")
    found = find_slots(
        result.clinician,
        settings.classification,
        result.classified,
        now,
        settings.daemon.horizon,
        request,
    )
    assert found.slots == ()
    assert found.closed["level_limits.max_per_week"] >= 10


def test_a_cadence_never_rules_a_slot_out():
    # One more session only meets a cadence of sessions sooner; the deadlines it moves
    # (missed anyway in the weeks without sessions) are not new errors.
    rules = RULES | {"cadence": [{"kind": "session", "every": "7d"}]}
    plain = search([light(MONDAY, "09:00", "09:50")], level="low", count=3)
    kept = search([light(MONDAY, "09:00", "09:50")], rules=rules, level="low", count=3)
    assert starts(kept) == starts(plain) == [at(MONDAY, h) for h in ("10:00", "10:15", "10:30")]
