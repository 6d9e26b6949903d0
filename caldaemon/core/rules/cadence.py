"""``cadence``: supervision, peer support and personal time come back regularly.

An entry asks either for an event of its kind at least ``every`` so long, or for ``hours``
of it in every rolling period ``per`` (DESIGN.md §10). Leave pauses the first kind: each
dated day off (an all-day ``#off``, out of office) between the previous event and the
deadline moves the deadline a day later.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from caldaemon.core.rules.context import Context
from caldaemon.core.rules.settings import Cadence
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
    """``every`` later on the clinician's clock, and a day later for each dated day off on
    the way: a Tuesday 11:00 meeting every 7 days is due Tuesday 11:00 across a DST change
    (written with a TZID or in UTC: the difference of two aware times in one zone is
    wall-clock time), and a week of leave moves it a week."""
    local = moment.astimezone(ctx.tz)
    deadline = local + every
    counted = 0
    while True:
        leave = sum(1 for d in ctx.day_off_dates if local.date() < d <= deadline.date())
        if leave == counted:
            return deadline.astimezone(UTC)
        deadline += timedelta(days=leave - counted)
        counted = leave


def cadence(ctx: Context) -> Iterator[Violation]:
    for entry in ctx.clinician.rules.cadence:
        if entry.every is not None:
            yield from _by_deadline(ctx, entry, entry.every)
        else:
            yield from _by_hours(ctx, entry)


def _by_deadline(ctx: Context, entry: Cadence, every: timedelta) -> Iterator[Violation]:
    """Walk the chain of deadlines from the last occurrence before now (DESIGN.md §3):
    each deadline is met by an event of the kind starting by then, else it is missed and
    becomes the next previous."""
    kind = Kind(entry.kind)
    found = sorted((c.event.start, c.event.key) for c in ctx.events if c.kind is kind)
    starts = [start for start, _ in found]
    last = bisect_right(starts, ctx.now) - 1
    if last >= 0 and starts[last] >= ctx.now - every:
        previous, anchor = found[last]
    else:
        previous, anchor = ctx.now, "now"
    missed = 0
    while (deadline := _later(previous, every, ctx)) <= ctx.horizon_end:
        following = bisect_right(starts, previous)
        if following < len(starts) and starts[following] <= deadline:
            previous, anchor = found[following]
            missed = 0
            continue
        missed += 1
        local = deadline.astimezone(ctx.tz)
        how_often = _every(every.total_seconds() / 86400)
        noun = _NOUNS.get(kind, kind.value)
        yield ctx.violation(
            "cadence",
            day=local.date(),
            start=local,
            end=local,
            kind=kind.value,
            subject=f"{kind.value}/{anchor}/{missed}",
            message=f"no {noun} by {day_name(local.date())} {clock(local)}; you planned it "
            f"{how_often}",
            phrase=f"no {noun} by {clock(local)}; you planned it {how_often}",
        )
        previous = deadline


def _hours(value: float) -> str:
    return f"{value:g} h"


def _by_hours(ctx: Context, entry: Cadence) -> Iterator[Violation]:
    """At least ``hours`` of the kind in every rolling ``per`` that ends inside the
    horizon: one violation, dated at the first day whose period falls short."""
    assert entry.hours is not None and entry.per is not None
    kind = Kind(entry.kind)
    spans = [(c.event.start, c.event.end) for c in ctx.events if c.kind is kind]
    day: date = ctx.today
    while day <= ctx.last_day:
        end = datetime.combine(day + timedelta(days=1), time(), ctx.tz)
        start = end - entry.per
        total = sum(
            max(timedelta(0), min(b, end) - max(a, start)).total_seconds() for a, b in spans
        )
        if total / 3600 + 1e-9 < entry.hours:
            days = round(entry.per.total_seconds() / 86400)
            noun = _NOUNS.get(kind, kind.value)
            done = _hours(round(total / 3600, 2))
            yield ctx.violation(
                "cadence",
                day=day,
                start=start.astimezone(ctx.tz),
                end=end,
                kind=kind.value,
                # One open violation per entry: it moves with the first short period
                # instead of becoming a new one (and a new notice) every day.
                subject=f"{kind.value}/hours/{entry.per}",
                message=f"{done} of {noun} in the {days} days to {day_name(day)}; you "
                f"planned {_hours(entry.hours)} every {days} days",
                phrase=f"{done} of {noun} in {days} days; you planned {_hours(entry.hours)}",
            )
            return
        day += timedelta(days=1)
