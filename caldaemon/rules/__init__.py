"""Every boundary rule, as pure functions of a :class:`Context` (clock injected).

``RULES`` maps the rule-set key that switches a rule on to the functions that check it; a
rule whose key is absent from the clinician's rule set is not checked (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from ..config import ClassificationSettings, ClinicianSettings
from ..model import Buffer, Classified, Kind, Violation
from . import cadence, counts, hours, sequence
from .buffers import plan_buffers
from .context import Context, week_start

Rule = Callable[[Context], Iterator[Violation]]

RULES: dict[str, tuple[Rule, ...]] = {
    "working_hours": (hours.working_hours,),
    "days_off": (hours.days_off,),
    "max_work_days_per_week": (counts.max_work_days_per_week,),
    "max_sessions_per_day": (counts.max_sessions_per_day,),
    "max_sessions_per_week": (counts.max_sessions_per_week,),
    "level_limits": (counts.level_per_day, counts.level_per_week, hours.latest_start),
    "breaks": (sequence.breaks,),
    "no_back_to_back": (sequence.no_back_to_back,),
    "max_daily_load": (counts.max_daily_load,),
    "cadence": (cadence.cadence,),
    "double_booked": (sequence.double_booked,),
}


@dataclass(frozen=True)
class Evaluation:
    violations: tuple[Violation, ...]
    buffers: tuple[Buffer, ...]


def evaluate(
    clinician: ClinicianSettings,
    classification: ClassificationSettings,
    events: Iterable[Classified],
    now: datetime,
    horizon: timedelta,
) -> Evaluation:
    """Check one clinician's events (already classified) against their rule set."""
    relevant = tuple(c for c in events if c.kind is not Kind.IGNORED)
    ctx = Context(clinician, classification, relevant, now, now + horizon)
    violations: list[Violation] = []
    # Only the rules the rule set names run (``double_booked: false`` runs and finds none).
    for key, checks in RULES.items():
        if key in clinician.rules.model_fields_set:
            for check in checks:
                violations.extend(check(ctx))
    buffers, no_room = plan_buffers(ctx)
    violations.extend(no_room)
    violations.sort(key=lambda v: (v.date, v.start, v.rule, v.subject))
    return Evaluation(tuple(violations), tuple(buffers))


def window(
    clinician: ClinicianSettings, now: datetime, horizon: timedelta
) -> tuple[datetime, datetime]:
    """The span of events the rules need: back to the start of the current week (weekly
    totals count its past sessions) and the longest cadence period (the last previous
    occurrence); forward to the end of the week that contains the horizon's end."""
    tz, starts_on = clinician.tz, clinician.rules.week_starts
    today = now.astimezone(tz).date()
    last_day = (now + horizon).astimezone(tz).date()
    back = max([timedelta(days=1)] + [c.every for c in clinician.rules.cadence])
    start = datetime.combine(week_start(today, starts_on), time(), tz)
    end = datetime.combine(week_start(last_day, starts_on) + timedelta(days=7), time(), tz)
    return min(start, now - back), end
