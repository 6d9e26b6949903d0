"""Event → (kind, level, why), exactly as DESIGN.md §3 "Classification" says."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from caldaemon.core.policy import ClassificationSettings
from caldaemon.model import TAG_KINDS, Classified, Event, Kind

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


def classify(
    event: Event, settings: ClassificationSettings, *, busy_only: bool = False
) -> Classified:
    """Decide one event's kind and level; ``busy_only`` for calendars with ``use: busy``."""
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
    if not event.busy:
        return Classified(event, Kind.IGNORED, None, "marked free")
    if busy_only:
        return Classified(event, Kind.OTHER, None, "calendar has use: busy")

    tags = tags_of(event)
    kind_hits: dict[Kind, str] = {}
    level_hits: list[tuple[str, str]] = []
    session_hint: str | None = None
    for tag in sorted(tags):
        target = settings.tags.get(tag)
        if target is not None:
            _note(target, f"tag #{tag}", settings, kind_hits, level_hits)
            if target == Kind.SESSION:
                session_hint = f"tag #{tag}"
    if event.color:
        target = settings.colors.get(event.color.lower())
        if target is not None:
            _note(target, f"colour {event.color.lower()}", settings, kind_hits, level_hits)
            if target == Kind.SESSION:
                session_hint = f"colour {event.color.lower()}"

    for kind in TAG_KINDS:
        if kind in kind_hits:
            return Classified(event, kind, None, kind_hits[kind])
    if event.all_day:
        return Classified(event, Kind.OTHER, None, "all-day event")
    if event.end - event.start > LONGEST_SESSION:
        # A timed event over a day (a conference, an event exported with a wrong end) is
        # busy time, never a session: no rule should count it as client work.
        return Classified(event, Kind.OTHER, None, "longer than a day: busy time")

    reason = _session_reason(event, settings, level_hits, session_hint)
    if reason is None:
        return Classified(event, Kind.OTHER, None, "no session tag, colour or title match")
    if level_hits:
        level, why = max(level_hits, key=lambda hit: settings.rank(hit[0]))
        return Classified(event, Kind.SESSION, level, f"{why} → {level}")
    return Classified(
        event,
        Kind.SESSION,
        settings.default_level,
        f"{reason}; default level {settings.default_level}",
    )


def _note(
    target: str,
    why: str,
    settings: ClassificationSettings,
    kind_hits: dict[Kind, str],
    level_hits: list[tuple[str, str]],
) -> None:
    if target in settings.levels:
        level_hits.append((target, why))
    elif target != Kind.SESSION:
        kind_hits.setdefault(Kind(target), why)


def _session_reason(
    event: Event,
    settings: ClassificationSettings,
    level_hits: list[tuple[str, str]],
    session_hint: str | None,
) -> str | None:
    if settings.tagged_sessions and (level_hits or session_hint):
        return session_hint or level_hits[0][1]
    if session_hint:
        return session_hint
    if (
        event.title_matches
        if event.title_matches is not None
        else (settings.title_pattern is not None and settings.title_pattern.search(event.title))
    ):
        return "title matches sessions.title_matches"
    if event.calendar in settings.session_calendars:
        return f"calendar '{event.calendar}' is in sessions.calendars"
    return None


def classify_all(
    events: Iterable[Event],
    settings: ClassificationSettings,
    busy_calendars: frozenset[str] = frozenset(),
) -> list[Classified]:
    return [classify(e, settings, busy_only=e.calendar in busy_calendars) for e in events]
