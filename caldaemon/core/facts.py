"""One fact, one line (DESIGN.md §10): the violations ``check`` and notices show, grouped
so that a reader is told each thing once.

- Violations about the same session are one line naming each boundary ("Tue 1 Dec,
  16:30–17:20: outside your hours (09:00–17:00) and after 15:00 for high-intensity work").
- A ``buffers`` violation for the gap a ``no_back_to_back`` violation already names is
  folded into it.
- The same violation recurring week after week (the same weekday and times, the same
  words) is one line: "every Monday, 10:00–10:50: …, 30 Nov, 7 Dec, 14 Dec".

Every violation keeps its place in ``--json``, with the ``group`` of the line it is in.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from caldaemon.model import Severity, Violation
from caldaemon.text import MONTH_NAMES, clock, span

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Rules whose violations are about one session (its subject is the session's key), in
# the order a merged line names them.
_ORDER = ("working_hours", "days_off", "level_limits.latest_start", "breaks", "no_back_to_back")
_PER_SESSION = frozenset(_ORDER)
_RANK = {rule: place for place, rule in enumerate(_ORDER)}
# Lines about one session: its per-session rules, or a buffer with no room after it.
_ABOUT_A_SESSION = _PER_SESSION | {"buffers"}


@dataclass(frozen=True)
class Fact:
    """One line: the violations it stands for, its text, and the day it is listed on."""

    group: str
    violations: tuple[Violation, ...]
    line: str
    date: date

    @property
    def severity(self) -> Severity:
        errors = any(v.severity is Severity.ERROR for v in self.violations)
        return Severity.ERROR if errors else Severity.WARNING

    @property
    def accepted(self) -> bool:
        return all(v.accepted for v in self.violations)


@dataclass(slots=True)
class _Draft:
    violations: list[Violation]
    day: date  # the earliest of its violations' dates: the day its line is listed on


def _short(day: date) -> str:
    return f"{day.day} {MONTH_NAMES[day.month - 1]}"


def _phrase(v: Violation, folded: bool = False) -> str:
    if folded:  # a buffer that has no room in the gap the back-to-back line names
        return v.phrase.replace(" after it", " in between")
    return v.phrase or v.message


def _clauses(draft: _Draft) -> str:
    main = [v for v in draft.violations if v.rule != "buffers" or len(draft.violations) == 1]
    folded = [v for v in draft.violations if v not in main]
    parts = [_phrase(v) for v in main] + [_phrase(v, folded=True) for v in folded]
    return " and ".join(parts)


def _merge_same_session(violations: Sequence[Violation]) -> list[_Draft]:
    drafts: dict[str, _Draft] = {}
    alone: list[_Draft] = []
    by_gap = {
        v.events[0]: v for v in violations if v.rule == "no_back_to_back" and len(v.events) == 2
    }
    for v in violations:
        key: str | None = None
        if v.rule in _PER_SESSION:
            # A violation recorded in state before schema 7 is read back (digests,
            # resolved lines) without its subject. Its session unknown, it stands alone
            # rather than merging with every other such violation under "".
            key = v.subject or None
        elif v.rule == "buffers" and v.subject in by_gap:
            key = by_gap[v.subject].subject  # folded into the back-to-back line
        if key is None:
            alone.append(_Draft([v], v.date))
            continue
        draft = drafts.get(key)
        if draft is None:
            drafts[key] = _Draft([v], v.date)
            continue
        draft.violations.append(v)
        draft.day = min(draft.day, v.date)
    merged = list(drafts.values())
    for draft in merged:
        if len(draft.violations) > 1:
            # The session's own line comes first; a folded buffer after it.
            draft.violations.sort(key=_rank)
    return merged + alone


def _rank(v: Violation) -> int:
    return _RANK.get(v.rule, len(_RANK))


def _signature(draft: _Draft, tz: ZoneInfo) -> tuple[object, ...] | None:
    """What makes two drafts the same fact on another week; None: never grouped."""
    head = draft.violations[0]
    if head.rule == "cadence":
        return None
    said = tuple([(v.rule, v.severity, _phrase(v)) for v in draft.violations])
    start = head.start.astimezone(tz)
    if head.rule not in _ABOUT_A_SESSION:
        return (said, start.weekday(), head.end - head.start)
    try:
        # An occurrence's key is ``calendar/uid@stamp``: before the last "@" is its series.
        series = frozenset([k[: k.rindex("@")] for v in draft.violations for k in v.events])
    except ValueError:
        return None  # not every session is an occurrence of a recurring series
    return (said, start.weekday(), start.time(), head.end.astimezone(tz).time(), series)


def facts(violations: Sequence[Violation], tz: ZoneInfo) -> list[Fact]:
    """The lines for ``violations`` (one clinician's), in date order."""
    return [_fact(first, members, tz) for first, members in _grouped(violations, tz)]


def groups(
    violations: Sequence[Violation], tz: ZoneInfo
) -> list[tuple[str, tuple[Violation, ...]]]:
    """The ``group`` of each of :func:`facts`' lines and its violations, in the same order,
    without writing the lines (``check --json`` shows the group, never the line)."""
    found = []
    for _, members in _grouped(violations, tz):
        grouped = tuple([v for d in members for v in d.violations])
        found.append((_group(grouped), grouped))
    return found


def _group(violations: tuple[Violation, ...]) -> str:
    return min([v.fingerprint for v in violations])[:12]


def _grouped(violations: Sequence[Violation], tz: ZoneInfo) -> list[tuple[_Draft, list[_Draft]]]:
    """Each line's first draft and every draft it stands for, in date order."""
    drafts = _merge_same_session(violations)
    weekly: dict[tuple[object, ...], list[_Draft]] = {}
    out: list[tuple[_Draft, list[_Draft]]] = []
    drafts.sort(key=lambda d: (d.day, d.violations[0].start))
    for draft in drafts:
        signature = _signature(draft, tz)
        if signature is None:
            out.append((draft, [draft]))
            continue
        members = weekly.get(signature)
        if members is None:
            members = weekly[signature] = []
            out.append((draft, members))
        members.append(draft)
    return out


def _fact(first: _Draft, members: list[_Draft], tz: ZoneInfo) -> Fact:
    violations = tuple(v for d in members for v in d.violations)
    group = _group(violations)
    head = first.violations[0]
    if len(members) > 1:
        start = head.start.astimezone(tz)
        times = (
            f", {clock(start)}–{clock(head.end.astimezone(tz))}"
            if head.rule in _ABOUT_A_SESSION
            else ""
        )
        dates = ", ".join(_short(d.day) for d in members)
        line = f"every {_WEEKDAYS[start.weekday()]}{times}: {_clauses(first)}; {dates}"
    elif len(first.violations) > 1:
        session = next((v for v in first.violations if v.rule != "buffers"), head)
        start, end = session.start.astimezone(tz), session.end.astimezone(tz)
        line = f"{span(start, end)}: {_clauses(first)}"
    else:
        line = head.message
    return Fact(group, violations, line, first.day)
