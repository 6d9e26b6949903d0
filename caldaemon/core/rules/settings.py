"""What a rule set in the YAML says (DESIGN.md §3 "Rule semantics"): one field per rule,
each with the model of its value. The registry (:mod:`.registry`) names the checks and rule
ids behind each field and refuses to load when the two disagree.

Names of levels are checked against ``classification.levels``, which the config loader
passes as validation context (``{"levels": [...]}``)."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator

from caldaemon.fields import (
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
    max_per_week: Count | None = None
    latest_start: Clock | None = None


class Breaks(Strict):
    after_sessions: Annotated[int, Field(ge=1, strict=True)]
    min_break: Span


class NoBackToBack(Strict):
    level: LevelName
    min_gap: Span


class BufferRule(Strict):
    """A buffer ``after`` sessions at a level (or ``before`` them: preparation), of
    ``length``; ``fit: shrink`` places the longest block of at least ``min_length`` that
    fits when the full length has no room (DESIGN.md §10)."""

    after: LevelName | None = None
    before: LevelName | None = None
    length: Duration
    title: Name = "Buffer"
    fit: Literal["full", "shrink"] = "full"
    min_length: Duration | None = None

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

    kind: Annotated[Name, AfterValidator(_cadence_kind)]
    every: Duration | None = None
    hours: Annotated[float, Field(gt=0, le=24 * 366)] | None = None
    per: Duration | None = None

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


class Protect(Strict):
    """Protected time (DESIGN.md §10): holds written to ``buffers_to`` so that booking
    pages offer nothing more once a boundary is reached."""

    full_days: Flag = False
    full_weeks: Flag = False
    days_off: Flag = False
    title: Name = "Unavailable"


class RuleSet(Strict):
    """One rule set. A rule whose key is absent is not checked."""

    week_starts: Weekday = "mon"
    working_hours: Annotated[WorkingHours | None, BeforeValidator(_working_hours)] = None
    days_off: list[Weekday] = []
    max_work_days_per_week: Annotated[int, Field(ge=0, le=7, strict=True)] | None = None
    max_sessions_per_day: Count | None = None
    max_sessions_per_week: Count | None = None
    level_limits: dict[LevelName, LevelLimit] = {}
    breaks: Breaks | None = None
    no_back_to_back: NoBackToBack | None = None
    max_daily_load: Count | None = None
    buffers: list[BufferRule] = []
    cadence: list[Cadence] = []
    double_booked: Flag = False
    protect: Protect | None = None
    # Rule id (or family, like ``level_limits``) → severity; checked against the registry.
    severity: dict[str, Literal["error", "warning"]] = {}


# Fields of a rule set that are not rules themselves.
SETTINGS_KEYS = frozenset({"week_starts", "severity", "protect"})
