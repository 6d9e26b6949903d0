"""How sessions follow one another: ``breaks``, ``no_back_to_back``, ``double_booked``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from itertools import pairwise

from caldaemon.core.rules.context import Context
from caldaemon.model import Classified, Kind, Violation
from caldaemon.text import describe, length, minutes, plural, span


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def breaks(ctx: Context) -> Iterator[Violation]:
    rule = ctx.clinician.rules.breaks
    if rule is None:
        return
    for _, sessions in ctx.days():
        run = 0
        previous_end: datetime | None = None
        for session in sessions:
            if previous_end is not None and session.start - previous_end < rule.min_break:
                run += 1
                previous_end = max(previous_end, session.end)
            else:
                run = 1
                previous_end = session.end
            if run > rule.after_sessions:
                yield ctx.session_violation(
                    "breaks",
                    session,
                    f"{span(session.start, session.end)}: the {_ordinal(run)} session in a "
                    f"row without a {length(rule.min_break)} break; you take a break after "
                    f"{plural(rule.after_sessions, 'session')}",
                    f"the {_ordinal(run)} session in a row without a "
                    f"{length(rule.min_break)} break",
                )


def no_back_to_back(ctx: Context) -> Iterator[Violation]:
    rule = ctx.clinician.rules.no_back_to_back
    if rule is None:
        return
    for _, sessions in ctx.days():
        for earlier, later in pairwise(sessions):
            gap = later.start - earlier.end
            if (
                ctx.at_least(earlier.item.level, rule.level)
                and ctx.at_least(later.item.level, rule.level)
                and gap < rule.min_gap
            ):
                shown = "no gap" if gap.total_seconds() <= 0 else f"{minutes(gap)} between them"
                # About the later session, but both are part of it (accepting either
                # accepts it).
                yield replace(
                    ctx.session_violation(
                        "no_back_to_back",
                        later,
                        f"{span(later.start, later.end)}: a {describe(later.item.level)} right "
                        f"after another ({shown}); you keep {minutes(rule.min_gap)} between "
                        f"{rule.level}-intensity sessions",
                        f"right after another {rule.level}-intensity session ({shown}; you "
                        f"keep {minutes(rule.min_gap)})",
                    ),
                    events=(earlier.key, later.key),
                )


def _label(item: Classified) -> str:
    if item.kind is Kind.SESSION:
        return describe(item.level)
    return "busy time" if item.kind is Kind.OTHER else item.kind.value.replace("_", " ")


def double_booked(ctx: Context) -> Iterator[Violation]:
    if not ctx.clinician.rules.double_booked:
        return
    active: list[Classified] = []
    for item in ctx.busy:
        start = item.event.start
        if active:  # most events overlap nothing before them
            active = [a for a in active if a.event.end > start]
        for other in active:
            if not (item.is_session or other.is_session):
                continue
            overlap_start = start.astimezone(ctx.tz)
            overlap_end = min(item.event.end, other.event.end).astimezone(ctx.tz)
            if not ctx.reportable(overlap_start.date()):
                continue
            first, second = sorted((other, item), key=lambda c: c.event.key)
            yield ctx.violation(
                "double_booked",
                day=overlap_start.date(),
                start=overlap_start,
                end=overlap_end,
                subject=f"{first.event.key}|{second.event.key}",
                events=(other.event.key, item.event.key),
                kind=Kind.SESSION.value,
                message=f"{span(overlap_start, overlap_end)}: a {_label(other)} and a "
                f"{_label(item)} overlap",
                phrase=f"a {_label(other)} and a {_label(item)} overlap",
            )
        active.append(item)
