"""Properties over random inputs (hypothesis): rule invariants on random weeks, planning
that settles, and random or mutated YAML and ICS that are reported, never raised."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caldaemon import config
from caldaemon.core.reconcile import Evidence, Plan, plan
from caldaemon.errors import CalendarError, ConfigError
from caldaemon.model import (
    Buffer,
    BufferStatus,
    Create,
    Delete,
    Event,
    OwnedBuffer,
    Update,
    Window,
)
from tests.support import MONDAY, NOW, TZ, evaluate, make_settings

ROOT = Path(__file__).resolve().parents[2]
COUNT_RULES = {
    "max_sessions_per_day",
    "max_sessions_per_week",
    "max_work_days_per_week",
    "level_limits.max_per_day",
    "level_limits.max_per_week",
    "max_daily_load",
}
RULES = make_settings(
    {
        "max_sessions_per_day": 3,
        "max_sessions_per_week": 8,
        "max_work_days_per_week": 3,
        "level_limits": {"high": {"max_per_day": 1, "max_per_week": 3, "latest_start": "15:00"}},
        "max_daily_load": 6,
        "breaks": {"after_sessions": 2, "min_break": "20m"},
        "no_back_to_back": {"level": "high", "min_gap": "45m"},
        "double_booked": True,
        "working_hours": {"mon-fri": "09:00-17:00"},
        "days_off": ["sun"],
        "buffers": [{"after": "high", "length": "15m"}, {"after": "moderate", "length": "10m"}],
    },
    clinician={"buffers_to": "work"},
)

TAGS = ["#heavy", "#light", "", "#team", "Dentist"]


@st.composite
def events(draw, calendar="work") -> Event:  # type: ignore[no-untyped-def]
    day = draw(st.integers(0, 6))
    start = datetime(MONDAY.year, MONDAY.month, MONDAY.day, tzinfo=TZ) + timedelta(
        days=day, minutes=draw(st.integers(7 * 60, 19 * 60)) // 5 * 5
    )
    length = timedelta(minutes=draw(st.sampled_from([30, 45, 50, 60, 90])))
    tag = draw(st.sampled_from(TAGS))
    title = tag if tag == "Dentist" else f"Client session {tag}"
    return Event(
        calendar,
        f"e{draw(st.integers(0, 10**9))}",
        start,
        start + length,
        title=title,
        busy=draw(st.sampled_from([True, True, True, False])),
    )


weeks = st.lists(events(), max_size=25, unique_by=lambda e: e.id)


def count_violations(evaluation) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(v.rule, v.subject) for v in evaluation.violations if v.rule in COUNT_RULES}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(week=weeks, extra=events())
def test_adding_a_session_never_removes_a_count_violation(week, extra):
    before = count_violations(evaluate(RULES, week))
    after = count_violations(evaluate(RULES, [*week, extra]))
    assert before <= after


@settings(max_examples=150, deadline=None)
@given(week=weeks)
def test_placed_buffers_never_overlap_busy_events(week):
    result = evaluate(RULES, week)
    busy = [e for e in week if e.busy]
    for b in result.buffers:
        assert b.start >= NOW
        assert not any(e.start < b.end and b.start < e.end for e in busy), b


def plan_once(
    desired: Sequence[Buffer], owned: dict[str, OwnedBuffer], listed: dict[str, Event]
) -> Plan:
    return plan(
        desired,
        owned,
        list(listed.values()),
        NOW,
        view_end=NOW + timedelta(days=28),
        evidence=Evidence(Window(NOW - timedelta(days=7), NOW + timedelta(days=60)), True),
        max_deletes=1000,
    )


@settings(max_examples=150, deadline=None)
@given(week=weeks, later=weeks)
def test_applying_a_plan_twice_changes_nothing(week, later):
    """Carry out a plan on a model calendar, then plan again: nothing is left to do."""
    owned: dict[str, OwnedBuffer] = {}
    listed: dict[str, Event] = {}
    for desired_week in (week, later):
        desired = evaluate(RULES, desired_week).buffers
        for _ in range(2):
            actions = plan_once(desired, owned, listed)
            for write in actions.writes:
                if isinstance(write, Delete):
                    del owned[write.identity], listed[write.identity]
                    continue
                assert isinstance(write, (Create, Update))
                b = write.buffer
                etag = f"etag-{b.start.isoformat()}"
                owned[write.identity] = OwnedBuffer(
                    "lee",
                    write.identity,
                    "work",
                    write.identity,
                    etag,
                    b.start,
                    b.end,
                    b.title,
                    b.after,
                    BufferStatus.ACTIVE,
                )
                listed[write.identity] = Event(
                    "work",
                    write.identity,
                    b.start,
                    b.end,
                    title=b.title,
                    owner=write.identity,
                    marked=True,
                    etag=etag,
                )
        assert plan_once(desired, owned, listed).empty
        assert {o.start for o in owned.values()} == {b.start for b in desired}


EXAMPLE = (ROOT / "config.example.yaml").read_text()


def mutate(text: str, data: st.DataObject) -> str:
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, max(len(lines) - 1, 0)))
        action = data.draw(st.sampled_from(["drop", "dup", "indent", "garble", "swap"]))
        if not lines:
            break
        if action == "drop":
            lines.pop(index)
        elif action == "dup":
            lines.insert(index, lines[index])
        elif action == "indent":
            lines[index] = "  " + lines[index]
        elif action == "garble":
            junk = data.draw(st.text(st.characters(codec="utf-8"), max_size=12))
            cut = data.draw(st.integers(0, len(lines[index])))
            lines[index] = lines[index][:cut] + junk + lines[index][cut:]
        else:
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
    return "\n".join(lines)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_config_is_reported_never_raised(data):
    text = mutate(EXAMPLE, data)
    try:
        config.parse(text, ROOT / "config.yaml")
    except ConfigError as exc:
        assert exc.problems and all(
            str(p).startswith(str(ROOT / "config.yaml")) for p in exc.problems
        )


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=15,
    )
)
def test_random_yaml_is_reported_never_raised(value):
    import yaml

    with contextlib.suppress(ConfigError):
        config.parse(yaml.safe_dump(value), Path("c.yaml"))


ICS_EXAMPLES = sorted((ROOT / "examples").glob("*.ics"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_ics_loads_or_is_refused_cleanly(data):
    from caldaemon.providers.ics.parse import parse
    from caldaemon.providers.ics.reader import Reader

    source = data.draw(st.sampled_from(ICS_EXAMPLES)).read_text()
    text = mutate(source, data)
    window = Window(NOW - timedelta(days=7), NOW + timedelta(days=28))
    reader = Reader("work", "mutated.ics", TZ)
    try:
        found = reader.events(parse(text.encode(), "work", "mutated.ics"), window)
    except CalendarError as exc:
        assert "mutated.ics" in str(exc) and "\n" not in str(exc)
        return
    for event in found:
        assert event.start.tzinfo is not None and event.end >= event.start
    for warning in reader.warnings:
        assert warning.startswith("mutated.ics: ")
