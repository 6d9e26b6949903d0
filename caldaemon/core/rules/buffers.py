"""Buffer planning (DESIGN.md §3 "Buffers", §10 "Buffers that fit"): a block before or
after each future session, placed only where nothing else is busy. Where the full length
has no room, ``fit: shrink`` places the longest block of at least ``min_length`` that fits
and says so with a ``buffers`` warning; otherwise it is a ``buffers`` violation."""

from __future__ import annotations

from bisect import bisect_left, insort
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
            (utc_start, utc_end, c.event.start, c.event.end)
            for c, (utc_start, utc_end) in zip(ctx.busy, ctx.busy_instants, strict=True)
        )
        # Already in start order, so the index keeps it: its positions are the spans'.
        self.events = Intervals((a, b) for a, b, _, _ in spans)
        self.spans = [(a, b) for _, _, a, b in spans]
        # (UTC start, UTC end, start, end) of each block planned so far, by start.
        self.planned: list[tuple[datetime, datetime, datetime, datetime]] = []
        # The longest of them: a block that overlaps [a, b) starts after a - longest, so a
        # search looks at the blocks from there on, not at all of them (holds ask
        # thousands of times, with a block planned after each session of the year).
        self.longest = timedelta(0)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        return self.events.overlaps(start, end) or bool(self._planned(start, end))

    def free_after(self, start: datetime, limit: timedelta) -> timedelta:
        """How long from ``start`` (up to ``limit``) nothing is busy."""
        end = start + limit
        if not self.overlaps(start, end):  # the common case: all of it
            return max(timedelta(0), limit)
        blockers = [
            a
            for a, b in self._overlapping(start, end)
            if b > start  # an event that ends exactly at start leaves it free
        ]
        return max(timedelta(0), min([end, *blockers]) - start)

    def free_before(self, end: datetime, limit: timedelta) -> timedelta:
        """How long before ``end`` (up to ``limit``) nothing is busy."""
        start = end - limit
        if not self.overlaps(start, end):
            return max(timedelta(0), limit)
        blockers = [b for a, b in self._overlapping(start, end) if a < end]
        return max(timedelta(0), end - max([start, *blockers]))

    def _overlapping(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The events and planned blocks that overlap [start, end), as they were given."""
        utc_start, utc_end = start.astimezone(UTC), end.astimezone(UTC)
        found = [self.spans[i] for i in self.events.overlapping(utc_start, utc_end)]
        found += [(a, b) for _, _, a, b in self._planned(utc_start, utc_end)]
        return found

    def _planned(
        self, utc_start: datetime, utc_end: datetime
    ) -> list[tuple[datetime, datetime, datetime, datetime]]:
        """The planned blocks that overlap [utc_start, utc_end), in their order."""
        planned = self.planned
        if not planned:  # while buffers are planned: they never block each other
            return []
        low = bisect_left(planned, utc_start - self.longest, key=_utc_start)
        high = bisect_left(planned, utc_end, lo=low, key=_utc_start)
        return [block for block in planned[low:high] if utc_start < block[1]]

    def take(self, start: datetime, end: datetime) -> None:
        """A block planned here is busy for what is planned after it."""
        self.take_all([(start.astimezone(UTC), end.astimezone(UTC), start, end)])

    def take_all(self, blocks: list[tuple[datetime, datetime, datetime, datetime]]) -> None:
        """Blocks, each as (UTC start, UTC end, start, end), busy for what is planned
        after them."""
        for block in blocks:
            insort(self.planned, block)
            self.longest = max(self.longest, block[1] - block[0])


def _utc_start(block: tuple[datetime, datetime, datetime, datetime]) -> datetime:
    return block[0]


def _choose(ctx: Context, rules: list[BufferRule], level: str | None) -> BufferRule | None:
    """The rule with the highest level the session reaches."""
    reached = [r for r in rules if ctx.at_least(level, r.level)]
    return max(reached, key=lambda r: ctx.classification.rank(r.level), default=None)


def plan_buffers(ctx: Context, busy: BusyIndex) -> tuple[list[Buffer], list[Violation]]:
    """The buffers wanted around the sessions from now to the horizon's end, and the
    ``buffers`` violations and warnings of those without room. The buffers are then busy
    in ``busy`` for what is planned after them (holds)."""
    rules = list(ctx.clinician.rules.buffers)
    if not rules:
        return [], []
    before = [r for r in rules if r.before is not None]
    after = [r for r in rules if r.after is not None]
    buffers: list[Buffer] = []
    taken: list[tuple[datetime, datetime, datetime, datetime]] = []
    violations: list[Violation] = []
    # The rules a level reaches, chosen once per level (there are a handful of levels
    # and tens of thousands of sessions in a year).
    chosen: dict[str, tuple[tuple[BufferRule, bool], ...]] = {}
    for session in ctx.sessions:
        # A session that ends right now still wants the buffer that starts now (else the
        # buffer would be deleted the moment it begins).
        if ctx.before_now(session.end, session.utc_end) or ctx.after_horizon(
            session.start, session.utc_start
        ):
            continue
        level = session.level
        wanted = chosen.get(level)
        if wanted is None:
            wanted = chosen[level] = tuple(
                (rule, is_before)
                for rule, is_before in (
                    (_choose(ctx, before, level), True),
                    (_choose(ctx, after, level), False),
                )
                if rule is not None
            )
        for rule, is_before in wanted:
            placed, problem = _place(ctx, busy, session, rule, is_before)
            # Buffers never block each other (DESIGN.md §3: caldaemon's own buffers
            # excepted), and none is written before now; holds, planned after them, never
            # cover them.
            if placed is not None and not ctx.before_now(placed[0].start, placed[1]):
                buffers.append(placed[0])
                taken.append((placed[1], placed[2], placed[0].start, placed[0].end))
            if problem is not None:
                violations.append(problem)
    busy.take_all(taken)
    return buffers, violations


def _place(
    ctx: Context, busy: BusyIndex, session: Session, rule: BufferRule, is_before: bool
) -> tuple[tuple[Buffer, datetime, datetime] | None, Violation | None]:
    """The buffer ``rule`` wants for ``session`` (with its UTC start and end) when there
    is room, and the violation or warning when there is not enough."""
    # In UTC: wall-clock arithmetic on a time in the repeated hour of a DST change
    # (fold=1) lands an hour early (PEP 495).
    edge = session.utc_start if is_before else session.utc_end
    length = rule.length
    if is_before:
        room = busy.free_before(edge, length)
        slot = (edge - length, edge)
    else:
        room = busy.free_after(edge, length)
        slot = (edge, edge + length)
    local = (slot[0].astimezone(ctx.tz), slot[1].astimezone(ctx.tz))
    if room >= length:
        return (_buffer(ctx, session, rule, *local), *slot), None
    where = "before" if is_before else "after"
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
        return (_buffer(ctx, session, rule, *local_short), *short), warning
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
