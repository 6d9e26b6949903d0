"""Buffer planning (DESIGN.md §3 "Buffers", §10 "Buffers that fit"): a block before or
after each future session, placed only where nothing else is busy. Where the full length
has no room, ``fit: shrink`` places the longest block of at least ``min_length`` that fits
and says so with a ``buffers`` warning; otherwise it is a ``buffers`` violation."""

from __future__ import annotations

from bisect import insort
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from caldaemon.core.intervals import Intervals
from caldaemon.core.rules.context import Context, Session
from caldaemon.core.rules.settings import BufferRule
from caldaemon.model import Buffer, Kind, Severity, Violation
from caldaemon.text import describe, minutes, span


class BusyIndex:
    """Answers "is anything busy in [a, b)?" and "how much is free from t on / up to t?"
    over the clinician's busy events, and the blocks planned so far.

    Searched by UTC instants: events keep the zone they were written in, and comparing
    two aware datetimes of different zones calls ``utcoffset`` on both every time
    (a bisect over a year of sessions spent most of ``check``'s rule time there). What is
    returned is worked out from the events' own datetimes, as before."""

    def __init__(self, ctx: Context) -> None:
        spans = sorted(
            (
                (c.event.start.astimezone(UTC), c.event.end.astimezone(UTC)),
                (c.event.start, c.event.end),
            )
            for c in ctx.busy
        )
        # Already in start order, so the index keeps it: its positions are the spans'.
        self.events = Intervals(utc for utc, _ in spans)
        self.spans = [own for _, own in spans]
        # (UTC start, UTC end, start, end) of each block planned so far, by start.
        self.planned: list[tuple[datetime, datetime, datetime, datetime]] = []

    def overlaps(self, start: datetime, end: datetime) -> bool:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        return self.events.overlaps(start, end) or any(
            a < end and start < b for a, b, _, _ in self.planned
        )

    def free_after(self, start: datetime, limit: timedelta) -> timedelta:
        """How long from ``start`` (up to ``limit``) nothing is busy."""
        end = start + limit
        blockers = [
            a
            for a, b in self._overlapping(start, end)
            if b > start  # an event that ends exactly at start leaves it free
        ]
        return max(timedelta(0), min([end, *blockers]) - start)

    def free_before(self, end: datetime, limit: timedelta) -> timedelta:
        """How long before ``end`` (up to ``limit``) nothing is busy."""
        start = end - limit
        blockers = [b for a, b in self._overlapping(start, end) if a < end]
        return max(timedelta(0), end - max([start, *blockers]))

    def _overlapping(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The events and planned blocks that overlap [start, end), as they were given."""
        utc_start, utc_end = start.astimezone(UTC), end.astimezone(UTC)
        found = [self.spans[i] for i in self.events.overlapping(utc_start, utc_end)]
        found += [(a, b) for ua, ub, a, b in self.planned if ua < utc_end and utc_start < ub]
        return found

    def take(self, start: datetime, end: datetime) -> None:
        """A block planned here is busy for what is planned after it."""
        insort(self.planned, (start.astimezone(UTC), end.astimezone(UTC), start, end))


def _choose(ctx: Context, rules: list[BufferRule], level: str | None) -> BufferRule | None:
    """The rule with the highest level the session reaches."""
    reached = [r for r in rules if ctx.at_least(level, r.level)]
    return max(reached, key=lambda r: ctx.classification.rank(r.level), default=None)


def plan_buffers(ctx: Context, busy: BusyIndex) -> tuple[list[Buffer], list[Violation]]:
    rules = list(ctx.clinician.rules.buffers)
    if not rules:
        return [], []
    before = [r for r in rules if r.before is not None]
    after = [r for r in rules if r.after is not None]
    buffers: list[Buffer] = []
    violations: list[Violation] = []
    # The rules a level reaches, chosen once per level (there are a handful of levels
    # and tens of thousands of sessions in a year).
    chosen: dict[str, tuple[tuple[BufferRule | None, bool], ...]] = {}
    for session in ctx.sessions:
        # A session that ends right now still wants the buffer that starts now (else the
        # buffer would be deleted the moment it begins).
        if session.end < ctx.now or session.start > ctx.horizon_end:
            continue
        level = session.level
        pair = chosen.get(level)
        if pair is None:
            pair = chosen[level] = (
                (_choose(ctx, before, level), True),
                (_choose(ctx, after, level), False),
            )
        for rule, is_before in pair:
            if rule is None:
                continue
            placed, problem = _place(ctx, busy, session, rule, is_before)
            # Buffers never block each other (DESIGN.md §3: caldaemon's own buffers
            # excepted); holds, planned after them, never cover them.
            if placed is not None and placed.start >= ctx.now:
                buffers.append(placed)
            if problem is not None:
                violations.append(problem)
    return buffers, violations


def _place(
    ctx: Context, busy: BusyIndex, session: Session, rule: BufferRule, is_before: bool
) -> tuple[Buffer | None, Violation | None]:
    # In UTC: wall-clock arithmetic on a time in the repeated hour of a DST change
    # (fold=1) lands an hour early (PEP 495).
    edge = (session.start if is_before else session.end).astimezone(UTC)
    length = rule.length
    if is_before:
        room = busy.free_before(edge, length)
        slot = (edge - length, edge)
    else:
        room = busy.free_after(edge, length)
        slot = (edge, edge + length)
    where = "before" if is_before else "after"
    local = (slot[0].astimezone(ctx.tz), slot[1].astimezone(ctx.tz))
    if room >= length:
        return _buffer(ctx, session, rule, *local), None
    if rule.fit == "shrink" and rule.min_length is not None and room >= rule.min_length:
        short = (edge - room, edge) if is_before else (edge, edge + room)
        local_short = (short[0].astimezone(ctx.tz), short[1].astimezone(ctx.tz))
        warning = _violation(
            ctx,
            session,
            local_short,
            f"{span(*local_short)}: {rule.title.lower()} shortened to {minutes(room)} "
            f"({where} a {describe(session.level)}); there was no room for "
            f"{minutes(length)}",
            f"{rule.title.lower()} shortened to {minutes(room)}",
            Severity.WARNING,
            after=not is_before,
        )
        return _buffer(ctx, session, rule, *local_short), warning
    return None, _violation(
        ctx,
        session,
        local,
        f"{span(*local)}: no room for {minutes(length)} of {rule.title.lower()} {where} a "
        f"{describe(session.level)}",
        f"no room for {minutes(length)} of {rule.title.lower()} {where} it",
        None,
        after=not is_before,
    )


def _buffer(
    ctx: Context, session: Session, rule: BufferRule, start: datetime, end: datetime
) -> Buffer:
    return Buffer(
        clinician=ctx.clinician.id,
        calendar=ctx.clinician.buffers_to,
        start=start,
        end=end,
        title=rule.title,
        after=session.key,
        # The rule's identity part: the level alone for an after-buffer, as it always was
        # (so existing buffers keep their identity), "before:<level>" for a before-buffer.
        rule=rule.level if rule.after is not None else f"before:{rule.level}",
    )


def _violation(
    ctx: Context,
    session: Session,
    slot: tuple[datetime, datetime],
    message: str,
    phrase: str,
    severity: Severity | None,
    *,
    after: bool,
) -> Violation:
    # About the session, dated and timed as the slot its message names.
    found = ctx.violation(
        "buffers",
        day=session.day,
        start=slot[0],
        end=slot[1],
        message=message,
        subject=session.key if after else f"{session.key}/before",
        events=(session.key,),
        level=session.item.level,
        kind=Kind.SESSION.value,
        phrase=phrase,
    )
    # A shortened buffer is always a warning: it was placed.
    return found if severity is None else replace(found, severity=severity)
