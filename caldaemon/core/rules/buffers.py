"""Buffer planning (DESIGN.md §3 "Buffers"): a block after each future session, placed only
where nothing else is busy; where there is no room, a ``buffers`` violation instead."""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, datetime
from itertools import accumulate

from caldaemon.core.rules.context import Context
from caldaemon.model import Buffer, Kind, Violation
from caldaemon.text import describe, minutes, span


class _BusyIndex:
    """Answers "is anything busy in [a, b)?" in O(log n + k) over events sorted by start."""

    def __init__(self, ctx: Context) -> None:
        self.items = ctx.busy
        self.starts = [c.event.start for c in self.items]
        self.max_end = list(accumulate((c.event.end for c in self.items), max))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        index = bisect_left(self.starts, end) - 1
        while index >= 0 and self.max_end[index] > start:
            if self.items[index].event.end > start:
                return True
            index -= 1
        return False


def plan_buffers(ctx: Context) -> tuple[list[Buffer], list[Violation]]:
    rules = sorted(
        ctx.clinician.rules.buffers,
        key=lambda r: ctx.classification.rank(r.after.lower()),
        reverse=True,
    )
    if not rules:
        return [], []
    busy = _BusyIndex(ctx)
    buffers: list[Buffer] = []
    violations: list[Violation] = []
    for session in ctx.sessions:
        if session.end <= ctx.now or session.start > ctx.horizon_end:
            continue
        rule = next((r for r in rules if ctx.at_least(session.item.level, r.after.lower())), None)
        if rule is None:
            continue
        # In UTC: wall-clock arithmetic on a time in the repeated hour of a DST change
        # (fold=1) lands an hour early, before the session ends (PEP 495).
        start = session.end
        end = (session.end.astimezone(UTC) + rule.length).astimezone(ctx.tz)
        if busy.overlaps(start, end):
            # About the session, dated and timed as the slot its message names.
            violations.append(
                ctx.violation(
                    "buffers",
                    day=session.day,
                    start=start,
                    end=end,
                    message=f"{span(start, end)}: no room for {minutes(rule.length)} of "
                    f"{rule.title.lower()} after a {describe(session.item.level)}",
                    phrase=f"no room for {minutes(rule.length)} of {rule.title.lower()} after it",
                    subject=session.key,
                    events=(session.key,),
                    level=session.item.level,
                    kind=Kind.SESSION.value,
                )
            )
            continue
        buffers.append(
            Buffer(
                clinician=ctx.clinician.id,
                calendar=ctx.clinician.buffers_to,
                start=start,
                end=end,
                title=rule.title,
                after=session.key,
                rule=rule.after.lower(),
            )
        )
    return buffers, violations
