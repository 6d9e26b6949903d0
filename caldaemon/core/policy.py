"""What the core reads of the config: how events are classified, and each clinician's
boundaries. The config loader builds these; the core never reads the YAML or a provider's
settings (DESIGN.md §2: the core imports no I/O, no SQL, no provider)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from caldaemon.core.rules.settings import RuleSet


@dataclass(frozen=True)
class ClassificationRule:
    """One of ``classification.rules`` (DESIGN.md §10): every condition given must hold;
    the first rule that matches gives its level (the event is then a session) or kind."""

    calendar: str | None = None
    min_length: timedelta | None = None
    title_pattern: re.Pattern[str] | None = None
    level: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class ClassificationSettings:
    """``classification`` with its defaults applied (DESIGN.md §3 "Classification")."""

    levels: tuple[str, ...]
    weights: dict[str, int]
    default_level: str
    tags: dict[str, str]
    colors: dict[str, str]
    tagged_sessions: bool
    title_pattern: re.Pattern[str] | None
    session_calendars: frozenset[str]
    rules: tuple[ClassificationRule, ...] = ()

    def rank(self, level: str) -> int:
        return self.levels.index(level)


@dataclass(frozen=True)
class Policy:
    """One clinician as the rules see them: who, in which zone, under which rule set,
    where buffers go, and which calendars only occupy time (``use: busy``)."""

    id: str
    tz: ZoneInfo
    rules: RuleSet
    buffers_to: str | None
    busy_calendars: frozenset[str]
