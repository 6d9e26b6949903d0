"""Where a new session still fits (DESIGN.md §11 ``caldaemon slots``): the next start times
at which one more session of a given length and level would break no error-severity
boundary, the buffers the rules would place around it included. Pure: no I/O.

What counts, and why:

- **The rules decide, not a copy of them.** A start is a slot when evaluating the calendar
  with one added session (:func:`~caldaemon.core.assess.evaluate`, every rule of the
  clinician's set but cadence, below) finds no error the calendar without it has not got:
  none with a new fingerprint, and none the new session is part of that it makes worse
  (its count, load or gap changes, see :func:`added`). So a limit already broken (say
  ``max_per_week``) does not rule out an unrelated slot, but a slot that would be one more
  session in it is ruled out; a violation accepted with ``#ok`` or ``ack`` accepts what is
  there, never one more session. Warnings never rule a slot out; the warnings a slot
  would add are given with it (a shortened grounding time, a load over a limit kept as a
  warning).
- **Its buffers must fit.** The new session's before- and after-buffers are planned as
  for any session; one with no room is a ``buffers`` error (or, with ``fit: shrink``, a
  shortened one is a warning), like for a booked session.
- **It is free time.** A booking tool never offers busy time, so the session itself must
  overlap no busy event (whatever ``double_booked`` says) and none of the blocks caldaemon
  keeps: the buffers of the sessions already there (grounding time is not bookable even
  where ``fit: shrink`` would let it shrink) and the holds of ``protect`` (time the
  clinician asked to keep off booking pages; where the limit behind a hold is an error,
  its rule rules the day out anyway, where it is a warning the hold still keeps it). The
  new session's own buffers may meet other buffers, as on the calendar.
- **On a grid.** Candidate starts lie on the clinician's wall clock every ``step`` minutes
  from midnight (09:00, 09:15, …); on a DST change day the hour that does not exist has no
  start and the repeated hour has both. A session's length is real time. Without
  ``working_hours`` every time of day is a candidate: the rules then set no hours.
- **Within the horizon.** From ``start`` (never before now), and over by ``now +
  horizon``: past that the daemon neither checks nor places buffers.
- **Cadence is left out.** One more session can only meet a cadence sooner, never miss
  one (a deadline is missed where no event of the kind falls in a stretch of ``every``, and
  hours only add up); but it moves the chain of deadlines, and with it the fingerprints of
  the ones missed anyway, which would read as new.

Fast enough to answer while the clinician waits (a month in well under a second): most
starts are dropped by cheap tests (:mod:`.slot_grid`) that only ever drop what the rules
would report as an error; the rest are evaluated on their week alone: every rule left
looks at a session's day, its week or its neighbours, all within the week and a margin
(tests/core/test_slots.py pins that this agrees with evaluating the whole window). The
search also says why starts were ruled out (days closed and starts dropped per rule), so
"nothing fits" comes with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from caldaemon.core.assess import Evaluation, evaluate
from caldaemon.core.intervals import Intervals
from caldaemon.core.policy import ClassificationSettings, Policy
from caldaemon.core.rules.context import Context
from caldaemon.core.slot_grid import Grid
from caldaemon.model import Buffer, Classified, Event, Kind, Severity, Violation

DEFAULT_STEP = timedelta(minutes=15)
# A calendar id no config can have (ids start with a letter or digit): the new session's
# key is never a real event's.
_CALENDAR = "~slot"
_ID = "new-session"
KEY = f"{_CALENDAR}/{_ID}"


@dataclass(frozen=True)
class SlotRequest:
    """What to look for: a session of ``length`` at ``level``, the first ``count`` starts
    from ``start`` (None: now) on a grid of ``step``."""

    length: timedelta
    level: str
    count: int = 5
    start: datetime | None = None
    step: timedelta = DEFAULT_STEP


@dataclass(frozen=True)
class Slot:
    """One place the session fits: its times in the clinician's zone, the buffers caldaemon
    would place with it, and the warnings it would add (never errors)."""

    clinician: str
    start: datetime
    end: datetime
    level: str
    buffers: tuple[Buffer, ...] = ()
    warnings: tuple[Violation, ...] = ()


@dataclass(frozen=True)
class SlotSearch:
    """The slots found and the span searched (``start``, ``end``: the clinician's zone),
    with what it took: grid starts looked at on open days, and those evaluated; and why
    the rest was ruled out: days each rule closed, starts each rule (or ``busy``) dropped
    or the evaluation rejected."""

    slots: tuple[Slot, ...]
    start: datetime
    end: datetime
    looked_at: int = 0
    evaluated: int = 0
    closed: Mapping[str, int] = field(default_factory=dict)
    ruled_out: Mapping[str, int] = field(default_factory=dict)


def find_slots(
    clinician: Policy,
    classification: ClassificationSettings,
    classified: Sequence[Classified],
    now: datetime,
    horizon: timedelta,
    request: SlotRequest,
) -> SlotSearch:
    """The first ``request.count`` slots for ``clinician`` given their ``classified``
    events (as :func:`~caldaemon.core.assess.assess` classified them, over its
    :func:`~caldaemon.core.assess.window`)."""
    search = _Search(clinician, classification, classified, now, horizon, request)
    slots: list[Slot] = []
    for start in search.grid.starts():
        slot = search.judge(start)
        if slot is not None:
            slots.append(slot)
            if len(slots) >= request.count:
                break
    grid = search.grid
    return SlotSearch(
        tuple(slots),
        grid.begin.astimezone(clinician.tz),
        grid.end.astimezone(clinician.tz),
        grid.looked_at,
        search.evaluated,
        dict(grid.closed.most_common()),
        dict((grid.dropped + search.rejected).most_common()),
    )


def new_session(start: datetime, end: datetime, level: str) -> Classified:
    """The hypothetical session, classified at the level asked for (as if marked): the
    clinician says what it will be; no tag or classification rule second-guesses it."""
    event = Event(calendar=_CALENDAR, id=_ID, start=start, end=end)
    return Classified(event, Kind.SESSION, level, "a new session (caldaemon slots)")


def added(evaluation: Evaluation, before: Mapping[str, str], severity: Severity) -> list[Violation]:
    """The violations of ``severity`` that the new session brings, given ``before``: the
    messages of those the calendar without it has, by fingerprint. Brought: a new one, or
    one the new session is part of that now says something else (the count, load or gap
    it names changed: an eighth session where seven were already too many). A week already
    over its work days is not made worse by a session on a day already worked."""
    return [
        v
        for v in evaluation.violations
        if v.severity is severity
        and (
            v.fingerprint not in before or (KEY in v.events and before[v.fingerprint] != v.message)
        )
    ]


def messages(evaluation: Evaluation, severity: Severity) -> dict[str, str]:
    """The messages of an evaluation's violations of ``severity``, by fingerprint: what
    :func:`added` compares with."""
    return {v.fingerprint: v.message for v in evaluation.violations if v.severity is severity}


@dataclass(frozen=True)
class _Baseline:
    """An evaluation without the new session: its errors and warnings."""

    errors: dict[str, str]
    warnings: dict[str, str]

    @classmethod
    def of(cls, evaluation: Evaluation) -> _Baseline:
        return cls(messages(evaluation, Severity.ERROR), messages(evaluation, Severity.WARNING))


class _Search:
    """One clinician's search: the baseline, the grid, and the verdict on each start."""

    def __init__(
        self,
        clinician: Policy,
        classification: ClassificationSettings,
        classified: Sequence[Classified],
        now: datetime,
        horizon: timedelta,
        request: SlotRequest,
    ) -> None:
        rules = clinician.rules
        self.classification, self.now, self.horizon = classification, now, horizon
        self.request, self.id, self.tz = request, clinician.id, clinician.tz
        # Cadence: see above. Holds add no violation: the week's evaluations plan none.
        kept = _policy(clinician, {"cadence": []})
        self.policy = _policy(clinician, {"protect": None, "cadence": []})
        self.events = tuple(c for c in classified if c.kind is not Kind.IGNORED)
        ctx = Context(self.policy, classification, self.events, now, now + horizon)
        baseline = evaluate(kept, classification, self.events, now, horizon)
        # The session itself is free time: no event, no block caldaemon keeps.
        busy = [(c.event.start, c.event.end) for c in ctx.busy]
        busy += [(b.start, b.end) for b in baseline.blocks]
        self.grid = Grid(
            ctx,
            classification,
            request.level,
            request.length,
            request.step,
            max(now, request.start or now).astimezone(UTC),
            (now + horizon).astimezone(UTC),
            Intervals(busy),
        )
        longest = max((b.length for b in rules.buffers), default=timedelta(0))
        # Whatever can meet the new session or its buffers lies within this of its week.
        self.margin = timedelta(days=1) + longest + request.length
        self.weeks: dict[date, tuple[tuple[Classified, ...], _Baseline]] = {}
        self.evaluated = 0
        self.rejected: Counter[str] = Counter()

    def judge(self, start: datetime) -> Slot | None:
        """The slot at ``start``, or None when the new session would add an error."""
        end = start + self.request.length
        session = new_session(start, end, self.request.level)
        events, baseline = self._week(self.grid.ctx.week_start(start.astimezone(self.tz).date()))
        self.evaluated += 1
        verdict = evaluate(
            self.policy, self.classification, (*events, session), self.now, self.horizon
        )
        errors = added(verdict, baseline.errors, Severity.ERROR)
        if errors:
            self.rejected.update({v.rule for v in errors})
            return None
        return Slot(
            self.id,
            start.astimezone(self.tz),
            end.astimezone(self.tz),
            self.request.level,
            tuple(b for b in verdict.buffers if b.after == KEY),
            tuple(added(verdict, baseline.warnings, Severity.WARNING)),
        )

    def _week(self, week: date) -> tuple[tuple[Classified, ...], _Baseline]:
        """The events near ``week`` and their evaluation without the new session."""
        if week not in self.weeks:
            low = self.grid.ctx.midnight(week) - self.margin
            high = self.grid.ctx.midnight(week + timedelta(days=7)) + self.margin
            events = tuple(
                c
                for c in self.events
                if c.event.start < high and (c.event.end > low or c.event.start >= low)
            )
            evaluation = evaluate(self.policy, self.classification, events, self.now, self.horizon)
            self.weeks[week] = (events, _Baseline.of(evaluation))
        return self.weeks[week]


def _policy(clinician: Policy, changes: dict[str, object]) -> Policy:
    """``clinician`` as the rules see them, with some rules of their set changed."""
    rules = clinician.rules.model_copy(update=changes)
    return Policy(clinician.id, clinician.tz, rules, clinician.buffers_to, clinician.busy_calendars)
