"""``cadence``: supervision, peer support and personal time come back regularly."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from caldaemon.core.rules.context import Context
from caldaemon.model import Kind, Violation
from caldaemon.text import clock, day_name

_NOUNS = {
    Kind.SUPERVISION: "supervision or consultation",
    Kind.PEER_SUPPORT: "team debrief or peer support",
    Kind.PERSONAL: "time for yourself",
    Kind.ADMIN: "admin time",
    Kind.SESSION: "session",
}


def _every(days: float) -> str:
    whole = round(days)
    if whole == 7:
        return "every week"
    return f"every {whole} days" if whole != 1 else "every day"


def _later(moment: datetime, every: timedelta, ctx: Context) -> datetime:
    """``every`` later on the clinician's clock: a Tuesday 11:00 meeting every 7 days is
    due Tuesday 11:00 across a DST change, whether its event was written with a TZID or in
    UTC (the difference of two aware times in one zone is wall-clock time)."""
    return (moment.astimezone(ctx.tz) + every).astimezone(UTC)


def cadence(ctx: Context) -> Iterator[Violation]:
    """Walk the chain of deadlines from the last occurrence before now (DESIGN.md §3):
    each deadline is met by an event of the kind starting by then, else it is missed and
    becomes the next previous."""
    for entry in ctx.clinician.rules.cadence:
        kind = Kind(entry.kind)
        found = sorted((c.event.start, c.event.key) for c in ctx.events if c.kind is kind)
        starts = [start for start, _ in found]
        last = bisect_right(starts, ctx.now) - 1
        if last >= 0 and starts[last] >= ctx.now - entry.every:
            previous, anchor = found[last]
        else:
            previous, anchor = ctx.now, "now"
        missed = 0
        while (deadline := _later(previous, entry.every, ctx)) <= ctx.horizon_end:
            following = bisect_right(starts, previous)
            if following < len(starts) and starts[following] <= deadline:
                previous, anchor = found[following]
                missed = 0
                continue
            missed += 1
            local = deadline.astimezone(ctx.tz)
            yield ctx.violation(
                "cadence",
                day=local.date(),
                start=local,
                end=local,
                kind=kind.value,
                subject=f"{kind.value}/{anchor}/{missed}",
                message=f"no {_NOUNS.get(kind, kind.value)} by {day_name(local.date())} "
                f"{clock(local)}; you planned it "
                f"{_every(entry.every.total_seconds() / 86400)}",
                phrase=f"no {_NOUNS.get(kind, kind.value)} by {clock(local)}; you planned it "
                f"{_every(entry.every.total_seconds() / 86400)}",
            )
            previous = deadline
