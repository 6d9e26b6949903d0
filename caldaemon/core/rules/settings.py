"""What a rule set in the YAML says (DESIGN.md §3 "Rule semantics"): one field per rule,
each with the model of its value. The registry (:mod:`.registry`) names the checks and rule
ids behind each field and refuses to load when the two disagree.

Names of levels are checked against ``classification.levels``, which the config loader
passes as validation context (``{"levels": [...]}``)."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from caldaemon.fields import (
    RANGE_SCHEMA,
    WEEKDAYS_SCHEMA,
    Clock,
    Count,
    Duration,
    Flag,
    Name,
    Span,
    Strict,
    Weekday,
    fail,
    parse_range,
    parse_weekdays,
)
from caldaemon.model import TAG_KINDS, Kind
from caldaemon.text import WEEKDAYS

# Kinds a cadence can ask for: every kind a tag can name, and sessions.
CADENCE_KINDS: tuple[str, ...] = (*TAG_KINDS, Kind.SESSION)


def _known_level(value: str, info: ValidationInfo) -> str:
    levels = (info.context or {}).get("levels")
    if levels is not None and value.lower() not in levels:
        raise fail("level", f"{value!r} is not a level (levels: {', '.join(levels)})")
    return value


def _cadence_kind(value: str) -> str:
    if value not in CADENCE_KINDS:
        raise fail("kind", f"{value!r} is not a kind (use one of: {', '.join(CADENCE_KINDS)})")
    return value


LevelName = Annotated[Name, AfterValidator(_known_level)]


class LevelLimit(Strict):
    max_per_day: Count | None = None
    """At most this many sessions at this level or above in a day."""
    max_per_week: Count | None = None
    """At most this many sessions at this level or above in a week."""
    latest_start: Clock | None = None
    """No session at this level or above starts after this time."""


class Breaks(Strict):
    after_sessions: Annotated[int, Field(ge=1, strict=True)]
    """After this many sessions in a row, a break."""
    min_break: Span
    """The break's least length: sessions are in a row when less than this separates them."""


class NoBackToBack(Strict):
    level: LevelName
    """Two sessions at this level (or above) may not follow each other closely."""
    min_gap: Span
    """The least time between two such sessions."""


class BufferRule(Strict):
    """A buffer ``after`` sessions at a level (or ``before`` them: preparation), of
    ``length``; ``fit: shrink`` places the longest block of at least ``min_length`` that
    fits when the full length has no room (DESIGN.md §10)."""

    after: LevelName | None = None
    """A buffer after each session at this level or above (the entry with the highest level a
    session reaches applies)."""
    before: LevelName | None = None
    """Or before each such session: preparation time."""
    length: Duration
    """How long the block is."""
    title: Name = "Buffer"
    """The block's title on the calendar (it never carries anything of the session)."""
    fit: Literal["full", "shrink"] = "full"
    """full: the whole length or, when something else is booked there, a notice; shrink: the
    longest block of at least min_length that fits, as between two 50-minute sessions on the
    hour (you hear that it was shortened)."""
    min_length: Duration | None = None
    """With fit: shrink, the shortest block worth placing."""

    @model_validator(mode="after")
    def _consistent(self) -> BufferRule:
        if (self.after is None) == (self.before is None):
            raise fail("buffer", "a buffer is 'after' sessions or 'before' them: give one")
        if self.fit == "shrink" and self.min_length is None:
            raise fail("buffer", "fit: shrink needs min_length (the shortest block worth it)")
        if self.min_length is not None and self.min_length > self.length:
            raise fail("buffer", "min_length is longer than length")
        return self

    @property
    def level(self) -> str:
        """The level it follows or precedes (lower-cased)."""
        return (self.after or self.before or "").lower()


class Cadence(Strict):
    """An event of ``kind`` at least ``every`` so long, or at least ``hours`` of it in
    every rolling period ``per`` (DESIGN.md §10: supervision written in hours a month)."""

    kind: Annotated[
        Name,
        AfterValidator(_cadence_kind),
        WithJsonSchema({"enum": [str(kind) for kind in CADENCE_KINDS]}),
    ]
    """The kind of event that should come back regularly."""
    every: Duration | None = None
    """At most this long from one to the next (e.g. 14d)."""
    hours: Annotated[float, Field(gt=0, le=24 * 366)] | None = None
    """Or at least this many hours of them in every period of per (e.g. hours: 1.5, per: 30d)."""
    per: Duration | None = None
    """The rolling period for hours."""

    @model_validator(mode="after")
    def _one_measure(self) -> Cadence:
        if (self.every is None) == (self.hours is None and self.per is None):
            raise fail("cadence", "a cadence gives 'every', or 'hours' with 'per'")
        if (self.hours is None) != (self.per is None):
            raise fail("cadence", "'hours' and 'per' go together (e.g. hours: 1.5, per: 30d)")
        return self

    @property
    def reach(self) -> timedelta:
        """How far back the rule looks."""
        return self.every or self.per or timedelta(0)


WorkingHours = dict[int, tuple[tuple[int, int], ...]]


def _working_hours(value: Any) -> WorkingHours | None:
    """``{mon-thu: "09:00-17:00", fri: [...]}`` → weekday → sorted minute ranges."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail("working_hours", "must map weekdays (like mon-thu) to time ranges")
    ranges: dict[int, list[tuple[int, int]]] = {}
    origin: dict[int, str] = {}
    for spec, given in value.items():
        items = given if isinstance(given, list) else [given]
        parsed = [parse_range(item) for item in items]
        for day in parse_weekdays(str(spec)):
            if day in origin and origin[day] != spec:
                raise fail(
                    "working_hours",
                    f"{WEEKDAYS[day]} is given in both '{origin[day]}' and '{spec}'",
                )
            origin[day] = str(spec)
            ranges.setdefault(day, []).extend(parsed)
    for day, day_ranges in ranges.items():
        day_ranges.sort()
        for (_, end), (start, _) in pairwise(day_ranges):
            if start < end:
                raise fail(
                    "working_hours", f"the ranges of {WEEKDAYS[day]} ('{origin[day]}') overlap"
                )
    return {day: tuple(r) for day, r in sorted(ranges.items())}


# What :func:`_working_hours` reads, for ``caldaemon schema``.
WORKING_HOURS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "propertyNames": WEEKDAYS_SCHEMA,
            "additionalProperties": {
                "anyOf": [RANGE_SCHEMA, {"type": "array", "items": RANGE_SCHEMA}]
            },
        },
        {"type": "null"},
    ]
}


class Protect(Strict):
    """Protected time (DESIGN.md §10): holds written to ``buffers_to`` so that booking
    pages offer nothing more once a boundary is reached."""

    full_days: Flag = False
    """A day at max_sessions_per_day or max_daily_load: hold its free working hours."""
    full_weeks: Flag = False
    """The week at its limit: hold the free hours of its remaining days."""
    days_off: Flag = False
    """true: an all-day hold on each day off."""
    title: Name = "Unavailable"
    """What colleagues and booking pages see (holds are always private)."""


class RuleSet(Strict):
    """One rule set. A rule whose key is absent is not checked."""

    week_starts: Weekday = "mon"
    """The first day of a week, for the weekly limits."""
    working_hours: Annotated[
        WorkingHours | None,
        BeforeValidator(_working_hours),
        WithJsonSchema(WORKING_HOURS_SCHEMA),
    ] = None
    """When sessions may happen: weekdays (mon-thu, or mon,wed,fri) and a time range like
    "09:00-17:00" or a list of them; a session must fit inside one range of its day. A weekday
    not listed has no hours."""
    days_off: list[Weekday] = []
    """Weekdays you keep free of sessions (all-day events tagged #off add single days)."""
    max_work_days_per_week: Annotated[int, Field(ge=0, le=7, strict=True)] | None = None
    """At most this many days with sessions in one week."""
    max_sessions_per_day: Count | None = None
    """At most this many sessions in a day."""
    max_sessions_per_week: Count | None = None
    """At most this many sessions in a week."""
    level_limits: dict[LevelName, LevelLimit] = {}
    """Limits for heavy work, per level (a limit for a level also counts the levels above it)."""
    breaks: Breaks | None = None
    """After a number of sessions in a row, a break of at least a length."""
    no_back_to_back: NoBackToBack | None = None
    """Never two sessions at a level with less than a gap between them."""
    max_daily_load: Count | None = None
    """The day's total weight of sessions (see classification.weights) stays within this."""
    buffers: list[BufferRule] = []
    """Time kept free after (or before) sessions, placed on the buffers_to calendar as busy
    blocks: grounding after a high-intensity session, notes after a moderate one. If something
    else is already booked there, you get a notice instead."""
    cadence: list[Cadence] = []
    """Things that should come back regularly, like supervision every two weeks or peer support
    every week: you hear about it when one is missing. Days off that are dates (an all-day #off
    event, out of office) move a deadline."""
    double_booked: Flag = False
    """true: two events at the same time, at least one of them a session, is a boundary crossed."""
    protect: Protect | None = None
    """Busy holds on the buffers_to calendar so that booking pages offer nothing more once a
    boundary is reached (caldaemon owns them as it owns buffers, and removes them when the
    reason goes); they never cover one of your events."""
    # Checked against the registry (config/checks.py), which knows every rule id.
    severity: dict[str, Literal["error", "warning"]] = {}
    """How much each rule matters: a rule id (or a rule's key, for all its ids) and error (the
    default) or warning. `caldaemon check` exits 1 only for errors."""


# Fields of a rule set that are not rules themselves.
SETTINGS_KEYS = frozenset({"week_starts", "severity", "protect"})
