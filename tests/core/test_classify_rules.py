"""Sessions from feeds without tags (DESIGN.md §10): ordered classification rules, marks
the clinician gives, accepted events, out of office and free days off."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from caldaemon.core.classify import classify, title_rules
from caldaemon.model import Event, Kind
from tests.support import MONDAY, TZ, all_day, make_settings, session

SETTINGS = make_settings(
    {},
    classification={
        "tags": {"heavy": "high", "light": "low", "off": "day_off", "ok": "accept"},
        "sessions": {"title_matches": r"(?i)\bsession\b"},
        "rules": [
            {"title_matches": r"(?i)\bEMDR\b", "level": "high"},
            {"min_length": "80m", "level": "high"},
            {"calendar": "practice", "level": "moderate"},
            {"title_matches": r"(?i)\bconsult", "kind": "supervision"},
        ],
    },
    clinician={
        "calendars": [
            {"id": "work", "provider": "ics", "path": "w.ics"},
            {"id": "practice", "provider": "ics", "url": "https://practice.example.org/f.ics"},
        ]
    },
).classification


def appointment(title: str = "Appointment", minutes: int = 50, **fields: object) -> Event:
    start = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
    return Event("practice", "a1", start, start + timedelta(minutes=minutes), title=title, **fields)  # type: ignore[arg-type]


def test_a_feed_with_no_tags_becomes_sessions_by_its_calendar_rule():
    result = classify(appointment(), SETTINGS)
    assert (result.kind, result.level) == (Kind.SESSION, "moderate")
    assert result.why == "classification.rules[2] → moderate"


def test_the_first_matching_rule_decides():
    long = classify(appointment(minutes=90), SETTINGS)
    assert (long.level, long.why) == ("high", "classification.rules[1] → high")
    emdr = classify(appointment("EMDR — R.T.", minutes=90), SETTINGS)
    assert emdr.why == "classification.rules[0] → high"


def test_a_rule_can_name_a_kind():
    consult = dataclasses.replace(appointment("Consultation with Dr. B"), calendar="work")
    result = classify(consult, SETTINGS)
    assert (result.kind, result.why) == (Kind.SUPERVISION, "classification.rules[3]")
    # On the practice calendar its calendar rule comes first: first match wins.
    assert classify(appointment("Consultation with Dr. B"), SETTINGS).kind is Kind.SESSION


def test_a_rule_level_joins_tags_and_the_highest_wins():
    light = classify(appointment("Appointment #light"), SETTINGS)
    assert light.level == "moderate"  # the rule's moderate is higher than the tag's low
    heavy = classify(appointment("Appointment #heavy"), SETTINGS)
    assert (heavy.level, heavy.why) == ("high", "tag #heavy → high")


def test_title_rules_read_back_from_the_cache_need_no_title():
    matched = title_rules(SETTINGS, "EMDR — R.T.")
    assert matched == (0,)
    cached = appointment(title="", title_rules=matched)
    assert classify(cached, SETTINGS).level == "high"
    other = appointment(title="", title_rules=())
    assert classify(other, SETTINGS).level == "moderate"


def test_a_mark_wins_over_tags_and_rules():
    marks = {"practice/a1": "low"}
    result = classify(appointment("EMDR #heavy"), SETTINGS, marks=marks)
    assert (result.kind, result.level, result.why) == (Kind.SESSION, "low", "marked low")


def test_a_mark_on_the_series_marks_every_occurrence_and_one_on_an_instance_only_it():
    first = appointment(series="weekly")
    first = dataclasses.replace(first, id="weekly@20261130T150000Z")
    second = dataclasses.replace(first, id="weekly@20261207T150000Z")
    series_marked = {"practice/weekly": "high"}
    assert classify(first, SETTINGS, marks=series_marked).level == "high"
    assert classify(second, SETTINGS, marks=series_marked).level == "high"
    one = {"practice/weekly@20261207T150000Z": "low"}
    assert classify(first, SETTINGS, marks=one).level == "moderate"
    assert classify(second, SETTINGS, marks=one).level == "low"


def test_a_mark_whose_level_the_config_no_longer_has_counts_as_no_mark():
    first = dataclasses.replace(appointment("EMDR #heavy", series="weekly"), id="weekly@1")
    stale = {first.key: "extreme"}
    assert classify(first, SETTINGS, marks=stale).level == classify(first, SETTINGS).level
    # A stale mark on the occurrence leaves the series' mark in force.
    both = {first.key: "extreme", "practice/weekly": "low"}
    assert classify(first, SETTINGS, marks=both).level == "low"


def test_a_mark_makes_an_event_nothing_else_calls_a_session_a_session():
    lunch = session(MONDAY, "12:00", "12:50", "Lunch with Sam")
    assert classify(lunch, SETTINGS).kind is Kind.OTHER
    marked = classify(lunch, SETTINGS, marks={lunch.key: "low"})
    assert (marked.kind, marked.level) == (Kind.SESSION, "low")


def test_an_ok_tag_accepts_the_event_and_keeps_its_kind():
    result = classify(session(MONDAY, "16:30", "17:20", "Session #heavy #ok"), SETTINGS)
    assert (result.kind, result.level, result.accepted) == (Kind.SESSION, "high", True)


def test_out_of_office_over_whole_days_is_a_day_off_and_shorter_is_busy_time():
    start = datetime(2026, 12, 2, tzinfo=TZ)
    away = Event("work", "oof", start, start + timedelta(days=2), out_of_office=True, busy=False)
    assert classify(away, SETTINGS, tz=TZ).kind is Kind.DAY_OFF
    short = dataclasses.replace(away, end=start + timedelta(hours=4), busy=True)
    result = classify(short, SETTINGS, tz=TZ)
    assert (result.kind, result.why) == (Kind.OTHER, "out of office: busy time")


def test_a_free_all_day_day_off_counts_as_a_day_off():
    free = dataclasses.replace(all_day(MONDAY, "Off #off"), busy=False)
    assert classify(free, SETTINGS, tz=TZ).kind is Kind.DAY_OFF
    other_free = dataclasses.replace(all_day(MONDAY, "Birthday"), busy=False)
    assert classify(other_free, SETTINGS, tz=TZ).kind is Kind.IGNORED


def test_ok_on_one_of_a_back_to_back_pair_accepts_the_pair_and_nothing_of_the_other():
    from tests.support import evaluate, rules_hit

    settings = make_settings(
        {
            "no_back_to_back": {"level": "high", "min_gap": "60m"},
            "level_limits": {"high": {"latest_start": "15:00"}},
        }
    )
    first = session(MONDAY, "15:00", "15:50", "Session #heavy #ok")
    second = session(MONDAY, "16:00", "16:50", "Session #heavy")
    result = evaluate(settings, [first, second])
    [pair] = rules_hit(result, "no_back_to_back")
    assert pair.accepted  # the accepted session is part of it
    [late] = rules_hit(result, "level_limits.latest_start")
    assert late.events == (second.key,) and not late.accepted  # only the other session
