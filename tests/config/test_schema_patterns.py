"""The schema's patterns read values as the loader's parsers do (caldaemon/fields.py):
whatever the loader takes, the schema takes; what the schema takes and the loader refuses
is refused for a reason a pattern cannot see (a duration over 366 days, a range that ends
before it starts). Checked on the shipped config.schema.json, as an editor sees it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from caldaemon.fields import Clock, Duration, Span, Weekday, parse_range, parse_weekdays

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "config.schema.json").read_text(encoding="utf-8"))
DEFS = SCHEMA["$defs"]


def accepts(property_schema: dict[str, Any], value: Any) -> bool:
    validator = Draft202012Validator({"$defs": DEFS, **property_schema})
    return validator.is_valid(value)


def loader_verdict(parse: Callable[[Any], object], value: Any) -> str | None:
    """None when the loader takes ``value``, else its message."""
    try:
        parse(value)
    except (pydantic.ValidationError, ValueError) as exc:
        return str(exc)
    return None


def agree(
    property_schema: dict[str, Any],
    parse: Callable[[Any], object],
    value: Any,
    *,
    unseen: tuple[str, ...] = (),
) -> None:
    refused = loader_verdict(parse, value)
    if refused is None:
        assert accepts(property_schema, value), value
    elif accepts(property_schema, value):
        assert any(reason in refused for reason in unseen), (value, refused)


def through(type_: Any) -> Callable[[Any], object]:
    return pydantic.TypeAdapter(type_).validate_python


DURATION_TEXT = st.text(alphabet="0123456789wdhms :.-", max_size=9)
CLOCK_TEXT = st.text(alphabet="0123456789:", max_size=6)
DAY_TEXT = st.text(alphabet="monTUEwdthfrisaMONun -,1", max_size=12)
EXAMPLES = ["15m", "1h30m", "14d", "2w", "0m", "0d0h", "90s", "400d", "15 minutes", "PT2M", ""]


@given(st.one_of(DURATION_TEXT, st.sampled_from(EXAMPLES)))
def test_durations_more_than_nothing(value: str) -> None:
    schema = DEFS["Daemon"]["properties"]["horizon"]
    agree(schema, through(Duration), value, unseen=("longer than",))


@given(st.one_of(DURATION_TEXT, st.sampled_from(EXAMPLES)))
def test_durations_where_nothing_is_allowed(value: str) -> None:
    schema = DEFS["Breaks"]["properties"]["min_break"]
    agree(schema, through(Span), value, unseen=("longer than",))


@given(st.one_of(CLOCK_TEXT, st.sampled_from(["07:30", "7:30", "23:59", "24:00", "12:60"])))
def test_times_of_day(value: str) -> None:
    agree(DEFS["Notices"]["properties"]["digest_at"], through(Clock), value)


@given(st.one_of(DAY_TEXT, st.sampled_from(["mon", "Monday", " SUN ", "mo", "thurs"])))
def test_weekdays(value: str) -> None:
    agree(DEFS["RuleSet"]["properties"]["week_starts"], through(Weekday), value)


@given(st.one_of(DAY_TEXT, st.sampled_from(["mon-thu", "mon,wed,fri", "fri-mon", "sat, sun"])))
def test_weekday_ranges_as_working_hours_keys(value: str) -> None:
    schema = DEFS["RuleSet"]["properties"]["working_hours"]
    refused = loader_verdict(parse_weekdays, value)
    takes = accepts(schema, {value: "09:00-17:00"})
    assert takes == (refused is None), (value, refused)


RANGES = ["09:00-17:00", " 9:00 - 24:00 ", "17:00-09:00", "09:00-09:00", "09:00", "9-5"]


@given(st.one_of(st.text(alphabet="0123456789:- ", max_size=13), st.sampled_from(RANGES)))
def test_time_ranges_as_working_hours_values(value: str) -> None:
    schema = DEFS["RuleSet"]["properties"]["working_hours"]
    refused = loader_verdict(parse_range, value)
    takes = accepts(schema, {"mon": value}) and accepts(schema, {"mon": [value]})
    if refused is None:
        assert takes, value
    elif takes:
        assert "ends before it starts" in refused, (value, refused)
