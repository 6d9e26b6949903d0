"""One fact, one line (DESIGN.md §10): what is merged, what is folded, what is said once
for a weekly series, and what stays on a line of its own."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from caldaemon.core.facts import facts, groups
from tests.support import MONDAY, TZ, evaluate, make_settings, session

RULES = {
    "working_hours": {"mon-fri": "09:00-17:00"},
    "level_limits": {"high": {"max_per_day": 1, "latest_start": "15:00"}},
    "no_back_to_back": {"level": "high", "min_gap": "60m"},
    "buffers": [{"after": "high", "length": "15m", "title": "Grounding time"}],
}


def weekly(event, weeks: int):
    """``event`` as occurrences of one weekly series (ids ``uid@stamp``)."""
    return [
        dataclasses.replace(
            event,
            id=f"{event.id}@{week}",
            series=event.id,
            start=event.start + timedelta(weeks=week),
            end=event.end + timedelta(weeks=week),
        )
        for week in range(weeks)
    ]


def test_two_boundaries_of_one_session_are_one_line_naming_each():
    settings = make_settings(RULES)
    late = session(MONDAY + timedelta(days=1), "16:30", "17:20", "#heavy")
    [fact] = facts(evaluate(settings, [late]).violations, TZ)
    assert fact.line == (
        "Tue 1 Dec, 16:30–17:20: outside your hours (09:00–17:00) and after 15:00 for "
        "high-intensity work"
    )
    assert {v.rule for v in fact.violations} == {"working_hours", "level_limits.latest_start"}


def test_no_room_for_a_buffer_in_a_back_to_back_gap_is_folded_into_that_line():
    settings = make_settings(RULES)
    first = session(MONDAY, "09:00", "09:50", "#heavy")
    second = session(MONDAY, "10:00", "10:50", "#heavy")
    found = facts(evaluate(settings, [first, second]).violations, TZ)
    [pair] = [f for f in found if any(v.rule == "no_back_to_back" for v in f.violations)]
    assert {v.rule for v in pair.violations} == {"no_back_to_back", "buffers"}
    assert pair.line.startswith("Mon 30 Nov, 10:00–10:50: right after another")
    assert pair.line.endswith("and no room for 15 minutes of grounding time in between")
    assert not any(f.violations == (v,) for f in found for v in pair.violations if f is not pair)


def test_the_same_violation_of_a_weekly_series_is_one_line_with_its_dates():
    settings = make_settings(RULES)
    late = weekly(session(MONDAY + timedelta(days=1), "16:30", "17:20", "#heavy", id="t"), 3)
    [fact] = facts(evaluate(settings, late).violations, TZ)
    assert fact.line.startswith("every Tuesday, 16:30–17:20: outside your hours")
    assert fact.line.endswith("; 1 Dec, 8 Dec, 15 Dec")
    assert len(fact.violations) == 6  # two rules, three weeks: every one is kept


def test_a_day_limit_repeating_every_week_is_one_line():
    settings = make_settings({"max_sessions_per_day": 1})
    monday = session(MONDAY, "09:00", "09:50", id="a")
    later = session(MONDAY, "11:00", "11:50", id="b")
    [fact] = facts(evaluate(settings, weekly(monday, 3) + weekly(later, 3)).violations, TZ)
    assert fact.line == "every Monday: 2 sessions; your limit is 1; 30 Nov, 7 Dec, 14 Dec"


def test_one_off_sessions_are_never_grouped_across_weeks():
    settings = make_settings(RULES)
    one = session(MONDAY + timedelta(days=1), "16:30", "17:20", "#heavy", id="x")
    other = session(MONDAY + timedelta(days=8), "16:30", "17:20", "#heavy", id="y")
    assert len(facts(evaluate(settings, [one, other]).violations, TZ)) == 2


def test_every_violation_gets_the_group_of_its_line():
    settings = make_settings(RULES)
    late = session(MONDAY + timedelta(days=1), "16:30", "17:20", "#heavy")
    [fact] = facts(evaluate(settings, [late]).violations, TZ)
    assert fact.group == min(v.fingerprint for v in fact.violations)[:12]


def test_groups_name_each_lines_violations_as_the_lines_do_without_writing_them():
    settings = make_settings(RULES)
    tuesdays = weekly(session(MONDAY + timedelta(days=1), "16:30", "17:20", "#heavy", id="t"), 3)
    pair = [
        session(MONDAY, "09:00", "09:50", "#heavy"),
        session(MONDAY, "10:00", "10:50", "#heavy"),
    ]
    violations = evaluate(settings, tuesdays + pair).violations
    lines = facts(violations, TZ)
    assert len(lines) >= 3
    assert groups(violations, TZ) == [(f.group, f.violations) for f in lines]


def test_violations_without_a_subject_as_state_reads_them_back_stay_on_their_own_lines():
    settings = make_settings(RULES)
    tuesday = session(MONDAY + timedelta(days=1), "16:30", "17:20", id="a")
    wednesday = session(MONDAY + timedelta(days=2), "17:30", "18:20", id="b")
    live = evaluate(settings, [tuesday, wednesday]).violations
    assert [v.rule for v in live] == ["working_hours", "working_hours"]
    stored = [dataclasses.replace(v, subject="", phrase="") for v in live]
    found = facts(stored, TZ)
    assert [f.line for f in found] == [v.message for v in live]
    assert [f.date for f in found] == [v.date for v in live]
