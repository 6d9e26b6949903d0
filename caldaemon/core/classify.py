"""Event → (kind, level, why), as DESIGN.md §3 "Classification" and §10 say.

Kind: a kind tag or colour wins (``day_off``, then ``supervision``, ``peer_support``,
``admin``, ``personal``); out of office covering whole local days is a day off; else the
first matching ``classification.rules`` entry that names a kind; else a session when a
``sessions`` condition, a level tag, colour or rule says so; else ``other``.
Level of a session: its mark (``caldaemon mark``), else the highest of its tags, colour
and matching rule, else ``default_level``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from caldaemon.core.policy import ClassificationRule, ClassificationSettings
from caldaemon.model import ACCEPT, TAG_KINDS, Classified, Event, Kind

LONGEST_SESSION = timedelta(hours=24)
# ``#heavy`` or ``[heavy]``; the look-behind keeps HTML entities like ``&#39;`` out.
_HASH_TAG = re.compile(r"(?<![&\w])#([^\W_][\w-]*)")
_BRACKET_TAG = re.compile(r"\[\s*([^\W_][\w-]*)\s*\]")


def tags_of(event: Event) -> frozenset[str]:
    """Every tag an event carries, lower-cased: ``#word`` and ``[word]`` in its title or
    description, and its category names."""
    found: set[str] = set()
    for text in (event.title, event.description):
        if text:
            found.update(m.lower() for m in _HASH_TAG.findall(text))
            found.update(m.lower() for m in _BRACKET_TAG.findall(text))
    found.update(c.strip().lower() for c in event.categories if c.strip())
    return frozenset(found)


def rule_matches(rule: ClassificationRule, event: Event, index: int) -> bool:
    """Whether every condition ``rule`` (at ``index`` in the config) gives holds."""
    if rule.calendar is not None and rule.calendar != event.calendar:
        return False
    if rule.min_length is not None and event.end - event.start < rule.min_length:
        return False
    if rule.title_pattern is not None:
        if event.title_rules is not None:  # read back from the cache: no title kept
            return index in event.title_rules
        return rule.title_pattern.search(event.title) is not None
    return True


def title_rules(settings: ClassificationSettings, title: str) -> tuple[int, ...]:
    """The rules whose title pattern ``title`` matches: what the cache keeps of a title."""
    return tuple(
        i
        for i, rule in enumerate(settings.rules)
        if rule.title_pattern is not None and rule.title_pattern.search(title)
    )


@dataclass
class _Signals:
    """What an event's tags, colour, title and rules say about it."""

    kinds: dict[Kind, str] = field(default_factory=dict)
    levels: list[tuple[str, str]] = field(default_factory=list)
    session: str | None = None
    accepted: bool = False
    # Whether the title matches ``sessions.title_matches``.
    title_match: bool = False
    # What :func:`_verdict` found, by the event's cached title match and its calendar:
    # the rest it reads is these signals.
    verdicts: dict[tuple[bool | None, str], tuple[Kind, str | None, str]] = field(
        default_factory=dict
    )

    def copy(self) -> _Signals:
        return _Signals(
            dict(self.kinds), list(self.levels), self.session, self.accepted, self.title_match
        )

    def note(self, target: str, why: str, settings: ClassificationSettings) -> None:
        if target in settings.levels:
            self.levels.append((target, why))
        elif target == ACCEPT:
            self.accepted = True
        elif target == Kind.SESSION:
            self.session = self.session or why
        else:
            self.kinds.setdefault(Kind(target), why)


def _signals(
    event: Event, settings: ClassificationSettings, tags: tuple[str, ...] | None
) -> _Signals:
    pattern = settings.title_pattern
    found = _Signals(title_match=pattern is not None and pattern.search(event.title) is not None)
    for tag in sorted(tags_of(event)) if tags is None else tags:
        target = settings.tags.get(tag)
        if target is not None:
            found.note(target, f"tag #{tag}", settings)
    if event.color:
        target = settings.colors.get(event.color.lower())
        if target is not None:
            found.note(target, f"colour {event.color.lower()}", settings)
    return found


def _whole_days(event: Event, tz: ZoneInfo) -> bool:
    """Whether an event covers whole local days (midnight to midnight, at least one)."""
    if event.all_day:
        return True
    start, end = event.start.astimezone(tz), event.end.astimezone(tz)
    midnight = time()
    return start.time() == midnight and end.time() == midnight and end.date() > start.date()


def classify(
    event: Event,
    settings: ClassificationSettings,
    *,
    busy_only: bool = False,
    tz: ZoneInfo | None = None,
    marks: Mapping[str, str] | None = None,
    tags: tuple[str, ...] | None = None,
) -> Classified:
    """Decide one event's kind and level; ``busy_only`` for calendars with ``use: busy``;
    ``marks``: levels the clinician gave events or series (by ``calendar/id``); ``tags``:
    the event's tags (:func:`tags_of`) in order, when the caller has them already."""
    return _decide(
        event, settings, _signals(event, settings, tags), busy_only=busy_only, tz=tz, marks=marks
    )


def _decide(
    event: Event,
    settings: ClassificationSettings,
    signals: _Signals,
    *,
    busy_only: bool,
    tz: ZoneInfo | None,
    marks: Mapping[str, str] | None,
) -> Classified:
    """:func:`classify` once the event's tags and colour are read (``signals``, which it
    leaves as they are: events that carry the same tags share them)."""
    if event.owner is not None:
        return Classified(event, Kind.BUFFER, None, "caldaemon's own buffer")
    if event.marked:
        # A copy of one of caldaemon's buffers (the user duplicated it): the user's event,
        # never touched, and buffer time rather than a conflict with the buffer it copies.
        return Classified(event, Kind.BUFFER, None, "a copy of a caldaemon buffer")
    if event.cancelled:
        return Classified(event, Kind.IGNORED, None, "cancelled")
    if event.declined:
        return Classified(event, Kind.IGNORED, None, "declined")
    day_off = signals.kinds.get(Kind.DAY_OFF)
    if event.out_of_office and _whole_days(event, tz or ZoneInfo("UTC")):
        day_off = day_off or "out of office"
    if day_off is not None and _whole_days(event, tz or ZoneInfo("UTC")):
        # Calendar apps make all-day events free by default: a day off counts anyway.
        return Classified(event, Kind.DAY_OFF, None, day_off, signals.accepted)
    if not event.busy:
        return Classified(event, Kind.IGNORED, None, "marked free")
    if busy_only:
        return Classified(event, Kind.OTHER, None, "calendar has use: busy")
    if event.out_of_office:
        return Classified(event, Kind.OTHER, None, "out of office: busy time")
    if signals.kinds:
        for kind in TAG_KINDS:
            if kind in signals.kinds:
                return Classified(event, kind, None, signals.kinds[kind], signals.accepted)
    if event.all_day:
        return Classified(event, Kind.OTHER, None, "all-day event", signals.accepted)
    if event.end - event.start > LONGEST_SESSION:
        # A timed event over a day (a conference, an event exported with a wrong end) is
        # busy time, never a session: no rule should count it as client work.
        return Classified(event, Kind.OTHER, None, "longer than a day: busy time")
    rule = (
        next(((i, r) for i, r in enumerate(settings.rules) if rule_matches(r, event, i)), None)
        if settings.rules
        else None
    )
    if rule is not None:
        index, matched = rule
        why = f"classification.rules[{index}]"
        signals = signals.copy()
        if matched.level is not None:
            signals.note(matched.level, why, settings)
        elif matched.kind is not None:
            kind = Kind(matched.kind)
            if kind is not Kind.SESSION:
                return Classified(event, kind, None, why, signals.accepted)
            signals.note(Kind.SESSION, why, settings)
    return _session(event, settings, signals, marks)


def _session(
    event: Event,
    settings: ClassificationSettings,
    signals: _Signals,
    marks: Mapping[str, str] | None,
) -> Classified:
    # Most clinicians mark nothing: no keys to make for each event.
    mark = _mark(event, settings, marks) if marks else None
    if mark is not None:
        return Classified(event, Kind.SESSION, mark, f"marked {mark}", signals.accepted)
    # Worked out once for the events that share these signals (a series, above all).
    seen = (event.title_matches, event.calendar)
    verdict = signals.verdicts.get(seen)
    if verdict is None:
        verdict = signals.verdicts[seen] = _verdict(event, settings, signals)
    kind, level, why = verdict
    return Classified(event, kind, level, why, signals.accepted)


def _mark(event: Event, settings: ClassificationSettings, marks: Mapping[str, str]) -> str | None:
    """The level ``caldaemon mark`` gave the event, else its series. A mark whose level the
    config no longer has (a level renamed or removed since) counts as no mark: the event
    is classified as if unmarked, never compared with levels that have no rank."""
    for key in (event.key, f"{event.calendar}/{event.series}" if event.series else None):
        level = marks.get(key) if key is not None else None
        if level is not None and level in settings.levels:
            return level
    return None


def _verdict(
    event: Event, settings: ClassificationSettings, signals: _Signals
) -> tuple[Kind, str | None, str]:
    """An unmarked event's kind, level and reason once its tags, colour and rules are
    read: a session at the highest level they give, else at ``default_level``; or, with
    no reason to call it a session, ``other``."""
    reason = _session_reason(event, settings, signals)
    if reason is None:
        return Kind.OTHER, None, "no session tag, colour, rule or title match"
    if signals.levels:
        level, why = max(signals.levels, key=lambda hit: settings.rank(hit[0]))
        return Kind.SESSION, level, f"{why} → {level}"
    return (
        Kind.SESSION,
        settings.default_level,
        f"{reason}; default level {settings.default_level}",
    )


def _session_reason(
    event: Event, settings: ClassificationSettings, signals: _Signals
) -> str | None:
    if signals.session:
        return signals.session
    if signals.levels and (
        settings.tagged_sessions
        or any(why.startswith("classification.rules") for _, why in signals.levels)
    ):
        return signals.levels[0][1]
    if event.title_matches if event.title_matches is not None else signals.title_match:
        return "title matches sessions.title_matches"
    if event.calendar in settings.session_calendars:
        return f"calendar '{event.calendar}' is in sessions.calendars"
    return None


def classify_all(
    events: Iterable[Event],
    settings: ClassificationSettings,
    busy_calendars: frozenset[str] = frozenset(),
    *,
    tz: ZoneInfo | None = None,
    marks: Mapping[str, str] | None = None,
) -> list[Classified]:
    # The occurrences of a series share their text and colour: what its tags, colour and
    # title say is found once.
    known: dict[tuple[str, str, tuple[str, ...], str | None], _Signals] = {}

    def signals(event: Event) -> _Signals:
        seen = (event.title, event.description, event.categories, event.color)
        found = known.get(seen)
        if found is None:
            found = known[seen] = _signals(event, settings, tuple(sorted(tags_of(event))))
        return found

    return [
        _decide(
            e,
            settings,
            signals(e),
            busy_only=e.calendar in busy_calendars,
            tz=tz,
            marks=marks,
        )
        for e in events
    ]
