"""The pure middle of caldaemon: events → classification → rules → violations and wanted
buffers. No I/O; the clock is the ``now`` it is given."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from operator import attrgetter
from typing import Generic, TypeVar

from caldaemon.core.classify import classify_all
from caldaemon.core.policy import ClassificationSettings, Policy
from caldaemon.core.rules.buffers import BusyIndex, plan_buffers
from caldaemon.core.rules.context import Context, week_start
from caldaemon.core.rules.holds import plan_holds
from caldaemon.core.rules.registry import rules_on
from caldaemon.errors import CalendarError
from caldaemon.model import Buffer, Classified, Event, Kind, Violation


@dataclass(frozen=True)
class Evaluation:
    violations: tuple[Violation, ...]
    buffers: tuple[Buffer, ...]
    holds: tuple[Buffer, ...] = ()

    @property
    def blocks(self) -> tuple[Buffer, ...]:
        """Everything caldaemon would write: buffers and holds alike."""
        return self.buffers + self.holds


P = TypeVar("P", bound=Policy)


@dataclass
class Assessment(Generic[P]):
    """One clinician's calendars seen at ``now``; ``warnings`` and ``errors`` are what
    reading the calendars ran into (filled in by whoever read them)."""

    clinician: P
    now: datetime
    classified: list[Classified]
    evaluation: Evaluation
    warnings: list[str] = field(default_factory=list)
    errors: list[CalendarError] = field(default_factory=list)


def assess(
    clinician: P,
    classification: ClassificationSettings,
    events: Iterable[Event],
    now: datetime,
    horizon: timedelta,
    *,
    marks: Mapping[str, str] | None = None,
    acked: frozenset[str] = frozenset(),
) -> Assessment[P]:
    """Classify and evaluate one clinician's events; ``marks``: the levels the clinician
    gave events or series (``caldaemon mark``), by ``calendar/id``; ``acked``: the
    fingerprints of violations accepted with ``caldaemon ack``."""
    classified = classify_all(
        events, classification, clinician.busy_calendars, tz=clinician.tz, marks=marks
    )
    classified.sort(key=attrgetter("event.start", "event.end", "event.key"))
    evaluation = evaluate(clinician, classification, classified, now, horizon)
    accepting = {c.event.key for c in classified if c.accepted}
    if accepting or acked:
        evaluation = replace(
            evaluation,
            violations=tuple(
                replace(v, accepted=True)
                if v.fingerprint in acked or accepting.intersection(v.events)
                else v
                for v in evaluation.violations
            ),
        )
    return Assessment(clinician, now, classified, evaluation)


def evaluate(
    clinician: Policy,
    classification: ClassificationSettings,
    events: Iterable[Classified],
    now: datetime,
    horizon: timedelta,
) -> Evaluation:
    """Check one clinician's events (already classified) against their rule set."""
    ignored = Kind.IGNORED
    relevant = tuple(c for c in events if c.kind is not ignored)
    ctx = Context(clinician, classification, relevant, now, now + horizon)
    violations: list[Violation] = []
    for rule in rules_on(clinician.rules):
        for check in rule.checks:
            violations.extend(check(ctx))
    busy = BusyIndex(ctx)
    buffers, no_room = plan_buffers(ctx, busy)
    holds = plan_holds(ctx, busy, buffers)
    violations.extend(no_room)
    violations.sort(key=attrgetter("date", "start", "rule", "subject"))
    return Evaluation(tuple(violations), tuple(buffers), tuple(holds))


def window(clinician: Policy, now: datetime, horizon: timedelta) -> tuple[datetime, datetime]:
    """The span of events the rules need: back to the start of the current week (weekly
    totals count its past sessions) and the longest cadence period (the last previous
    occurrence); forward to the end of the week that contains the horizon's end."""
    tz, starts_on = clinician.tz, clinician.rules.week_starts
    today = now.astimezone(tz).date()
    last_day = (now + horizon).astimezone(tz).date()
    back = max([timedelta(days=1)] + [c.reach for c in clinician.rules.cadence])
    start = datetime.combine(week_start(today, starts_on), time(), tz)
    end = datetime.combine(week_start(last_day, starts_on) + timedelta(days=7), time(), tz)
    return min(start, now - back), end
