"""Classification exactly as DESIGN.md §3 says: what is ignored, kind, level, and why."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from caldaemon.core.classify import classify, classify_all, tags_of
from caldaemon.model import Event, Kind
from tests.support import MONDAY, TZ, all_day, make_settings, session

SETTINGS = make_settings(
    {},
    classification={
        "levels": ["low", "moderate", "high"],
        "default_level": "moderate",
        "tags": {
            "heavy": "high",
            "light": "low",
            "supervision": "supervision",
            "team": "peer_support",
            "off": "day_off",
            "notes": "admin",
            "selfcare": "personal",
            "client": "session",
        },
        "colors": {"tomato": "high", "banana": "moderate", "graphite": "admin"},
        "sessions": {"tagged": True, "title_matches": r"(?i)\bsession\b", "calendars": ["intake"]},
    },
    clinician={
        "calendars": [
            {"id": "work", "provider": "ics", "path": "w.ics"},
            {"id": "intake", "provider": "ics", "path": "i.ics"},
            {"id": "home", "provider": "ics", "path": "h.ics", "use": "busy"},
        ]
    },
).classification


def kind_level(event, busy_only=False):
    c = classify(event, SETTINGS, busy_only=busy_only)
    return c.kind, c.level


def test_tags_come_from_hash_brackets_and_categories_case_insensitively():
    ev = session(
        MONDAY,
        "09:00",
        "10:00",
        "Anna #Heavy [TEAM]",
        description="see #notes",
        categories=("SelfCare", " "),
    )
    assert tags_of(ev) == {"heavy", "team", "notes", "selfcare"}


def test_html_entities_are_not_tags():
    assert tags_of(session(MONDAY, "09:00", "10:00", "O&#39;Brien")) == frozenset()


@pytest.mark.parametrize(
    ("title", "fields", "expected"),
    [
        ("Session #heavy", {}, (Kind.SESSION, "high")),
        ("Lunch #heavy", {}, (Kind.SESSION, "high")),  # tagged: true
        ("Session", {}, (Kind.SESSION, "moderate")),  # default level
        ("Session #light", {"color": "Tomato"}, (Kind.SESSION, "high")),  # highest wins
        ("Session", {"color": "banana"}, (Kind.SESSION, "moderate")),
        ("Lunch", {}, (Kind.OTHER, None)),
        ("Meeting #client", {}, (Kind.SESSION, "moderate")),  # a tag naming the kind session
        ("Session #heavy #supervision", {}, (Kind.SUPERVISION, None)),  # a kind tag wins
        ("Session #team #supervision #off", {}, (Kind.DAY_OFF, None)),  # day_off first
        ("#team #supervision", {}, (Kind.SUPERVISION, None)),
        ("#selfcare #notes", {}, (Kind.ADMIN, None)),
        ("Anything", {"color": "graphite"}, (Kind.ADMIN, None)),
        ("Session #heavy", {"cancelled": True}, (Kind.IGNORED, None)),
        ("Session #heavy", {"declined": True}, (Kind.IGNORED, None)),
        ("Session #heavy", {"busy": False}, (Kind.IGNORED, None)),
        ("Grounding time", {"owner": "x"}, (Kind.BUFFER, None)),
    ],
)
def test_kind_and_level(title, fields, expected):
    assert kind_level(session(MONDAY, "09:00", "10:00", title, **fields)) == expected


def test_sessions_calendars_make_every_busy_event_a_session():
    assert kind_level(session(MONDAY, "09:00", "10:00", "A.B.", calendar="intake")) == (
        Kind.SESSION,
        "moderate",
    )


def test_busy_calendars_only_occupy_time_whatever_their_tags():
    assert kind_level(
        session(MONDAY, "09:00", "10:00", "Session #heavy #supervision"), busy_only=True
    ) == (Kind.OTHER, None)


def test_all_day_events_are_never_sessions_but_can_be_days_off():
    assert kind_level(all_day(MONDAY, "Session #heavy")) == (Kind.OTHER, None)
    assert kind_level(all_day(MONDAY, "Holiday #off")) == (Kind.DAY_OFF, None)


def test_why_names_the_deciding_tag_or_colour():
    assert (
        classify(session(MONDAY, "9:00", "10:00", "x #heavy"), SETTINGS).why == "tag #heavy → high"
    )
    assert classify(session(MONDAY, "9:00", "10:00", "x", color="tomato"), SETTINGS).why == (
        "colour tomato → high"
    )
    assert classify(session(MONDAY, "9:00", "10:00", "Session"), SETTINGS).why == (
        "title matches sessions.title_matches; default level moderate"
    )


def test_untagged_sessions_need_a_title_match_when_tagged_is_false():
    settings = make_settings(
        {},
        classification={
            "tags": {"heavy": "high"},
            "sessions": {"tagged": False, "title_matches": None},
        },
    ).classification
    assert classify(session(MONDAY, "9:00", "10:00", "x #heavy"), settings).kind is Kind.OTHER


def test_a_timed_event_longer_than_a_day_is_busy_time_never_a_session():
    settings = make_settings({}).classification
    start = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
    long = Event("work", "x", start, start + timedelta(days=3), title="Client session #heavy")
    result = classify(long, settings)
    assert result.kind is Kind.OTHER and result.level is None
    assert result.why == "longer than a day: busy time"


def test_classifying_many_events_at_once_reads_each_events_own_tags():
    same_text = [session(MONDAY, "09:00", "09:50", "Client #heavy") for _ in range(3)]
    other = [
        session(MONDAY, "11:00", "11:50", "Client #heavy", description="#light"),
        session(MONDAY, "13:00", "13:50", "Client #heavy", categories=("notes",)),
        session(MONDAY, "15:00", "15:50", "Client session"),
    ]
    events = same_text + other
    together = classify_all(events, SETTINGS, tz=TZ)
    assert together == [classify(e, SETTINGS, tz=TZ) for e in events]
    assert [(c.kind, c.level) for c in together[2:]] == [
        (Kind.SESSION, "high"),
        (Kind.SESSION, "high"),
        (Kind.ADMIN, None),
        (Kind.SESSION, "moderate"),
    ]
