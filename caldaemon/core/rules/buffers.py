"""Buffer planning (DESIGN.md §3 "Buffers", §10 "Buffers that fit"): a block before or
after each future session, placed only where nothing else is busy. Where the full length
has no room, ``fit: shrink`` places the longest block of at least ``min_length`` that fits
and says so with a ``buffers`` warning; otherwise it is a ``buffers`` violation."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
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
        starts, ends = ctx.busy_utc
        spans = sorted(
            (utc_start, utc_end, c.event.start, c.event.end)
            for c, utc_start, utc_end in zip(ctx.busy, starts, ends, strict=True)
        )
        # In the index's order, so its positions are the spans'. Kept as lists, not as a
        # pair per event: fewer objects for the garbage collector to look at.
        self.events = Intervals.of_sorted([a for a, _, _, _ in spans], [b for _, b, _, _ in spans])
        self.starts = [a for _, _, a, _ in spans]
        self.ends = [b for _, _, _, b in spans]
        # (UTC start, UTC end, start, end) of each block planned so far, by start, and
        # their UTC starts alone (a bisect with a key calls it at every step).
        self.planned: list[tuple[datetime, datetime, datetime, datetime]] = []
        self.planned_starts: list[datetime] = []
        # The longest of them: a block that overlaps [a, b) starts after a - longest, so a
        # search looks at the blocks from there on, not at all of them (holds ask
        # thousands of times, with a block planned after each session of the year).
        self.longest = timedelta(0)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.busy_between(start.astimezone(UTC), end.astimezone(UTC))

    def busy_between(self, utc_start: datetime, utc_end: datetime) -> bool:
        """:meth:`overlaps`, given UTC instants."""
        return self.events.overlaps(utc_start, utc_end) or bool(self._planned(utc_start, utc_end))

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
        found = [
            (self.starts[i], self.ends[i]) for i in self.events.overlapping(utc_start, utc_end)
        ]
        found += [(a, b) for _, _, a, b in self._planned(utc_start, utc_end)]
        return found

    def _planned(
        self, utc_start: datetime, utc_end: datetime
    ) -> list[tuple[datetime, datetime, datetime, datetime]]:
        """The planned blocks that overlap [utc_start, utc_end), in their order."""
        planned = self.planned
        if not planned:  # while buffers are planned: they never block each other
            return []
        low = bisect_left(self.planned_starts, utc_start - self.longest)
        high = bisect_left(self.planned_starts, utc_end, lo=low)
        return [block for block in planned[low:high] if utc_start < block[1]]

    def take(self, start: datetime, end: datetime) -> None:
        """A block planned here is busy for what is planned after it."""
        utc_start, utc_end = start.astimezone(UTC), end.astimezone(UTC)
        block = (utc_start, utc_end, start, end)
        at = bisect_right(self.planned, block)  # after its equals, as insort puts it
        self.planned.insert(at, block)
        self.planned_starts.insert(at, utc_start)
        self.longest = max(self.longest, utc_end - utc_start)

    def take_all(self, buffers: list[Buffer]) -> None:
        """:meth:`take` for each of ``buffers``."""
        if not buffers:
            return
        blocks = [(b.start.astimezone(UTC), b.end.astimezone(UTC), b.start, b.end) for b in buffers]
        # One sort instead of an insort each: sorting is stable, so equal blocks keep the
        # order one insort after another would give them.
        self.planned += blocks
        self.planned.sort()
        self.planned_starts = [start for start, _, _, _ in self.planned]
        self.longest = max([self.longest, *(end - start for start, end, _, _ in blocks)])


def _choose(ctx: Context, rules: list[BufferRule], level: str | None) -> BufferRule | None:
    """The rule with the highest level the session reaches."""
    reached = [r for r in rules if ctx.at_least(level, r.level)]
    return max(reached, key=lambda r: ctx.classification.rank(r.level), default=None)


@dataclass(frozen=True)
class _Wanted:
    """A buffer rule that a level reaches, with what every buffer of it repeats."""

    rule: BufferRule
    before: bool
    length: timedelta
    # The rule's identity part: the level alone for an after-buffer, as it always was
    # (so existing buffers keep their identity), "before:<level>" for a before-buffer.
    identity: str


def _wanted(ctx: Context, rules: list[BufferRule], level: str) -> tuple[_Wanted, ...]:
    before = _choose(ctx, [r for r in rules if r.before is not None], level)
    after = _choose(ctx, [r for r in rules if r.after is not None], level)
    return tuple(
        _Wanted(rule, is_before, rule.length, f"before:{rule.level}" if is_before else rule.level)
        for rule, is_before in ((before, True), (after, False))
        if rule is not None
    )


def plan_buffers(ctx: Context, busy: BusyIndex) -> tuple[list[Buffer], list[Violation]]:
    """The buffers wanted around the sessions from now to the horizon's end, and the
    ``buffers`` violations and warnings of those without room."""
    rules = list(ctx.clinician.rules.buffers)
    if not rules:
        return [], []
    tz = ctx.tz
    # None is written before now, compared as ``Context.sessions_ahead`` compares (every
    # buffer is in the clinician's zone).
    local_now = ctx.now.tzinfo is tz
    now = ctx.now if local_now else ctx.now.astimezone(UTC)
    buffers: list[Buffer] = []
    violations: list[Violation] = []
    # The rules a level reaches, chosen once per level (there are a handful of levels
    # and tens of thousands of sessions in a year).
    chosen: dict[str, tuple[_Wanted, ...]] = {}
    for session in ctx.sessions_ahead():
        level = session.level
        wanted = chosen.get(level)
        if wanted is None:
            wanted = chosen[level] = _wanted(ctx, rules, level)
        for want in wanted:
            # In UTC: wall-clock arithmetic on a time in the repeated hour of a DST change
            # (fold=1) lands an hour early (PEP 495).
            if want.before:
                utc_start, utc_end = session.utc_start - want.length, session.utc_start
            else:
                utc_start, utc_end = session.utc_end, session.utc_end + want.length
            if busy.busy_between(utc_start, utc_end):
                placed, problem = _place(ctx, busy, session, want)
                if problem is not None:
                    violations.append(problem)
                if placed is None:
                    continue
                utc_start = placed.start.astimezone(UTC)
            else:  # nothing else there: the whole length (most buffers)
                placed = _buffer(
                    ctx, session, want, utc_start.astimezone(tz), utc_end.astimezone(tz)
                )
            # Buffers never block each other (DESIGN.md §3: caldaemon's own buffers
            # excepted); holds, planned after them, never cover them.
            if (placed.start if local_now else utc_start) >= now:
                buffers.append(placed)
    return buffers, violations


def _place(
    ctx: Context, busy: BusyIndex, session: Session, want: _Wanted
) -> tuple[Buffer | None, Violation | None]:
    """Where something else is busy in a buffer's slot: the shortened buffer and its
    warning (``fit: shrink``), or no buffer and a violation."""
    rule, is_before, length = want.rule, want.before, want.length
    edge = session.utc_start if is_before else session.utc_end
    if is_before:
        room = busy.free_before(edge, length)
        slot = (edge - length, edge)
    else:
        room = busy.free_after(edge, length)
        slot = (edge, edge + length)
    local = (slot[0].astimezone(ctx.tz), slot[1].astimezone(ctx.tz))
    if room >= length:
        return _buffer(ctx, session, want, *local), None
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
        return _buffer(ctx, session, want, *local_short), warning
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
    ctx: Context, session: Session, want: _Wanted, start: datetime, end: datetime
) -> Buffer:
    return Buffer(
        clinician=ctx.clinician.id,
        calendar=ctx.clinician.buffers_to,
        start=start,
        end=end,
        title=want.rule.title,
        after=session.key,
        rule=want.identity,
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
    # About the session, dated and timed as the slot its message names; a shortened
    # buffer is always a warning: it was placed.
    return ctx.violation(
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
        severity=severity,
    )
