"""Recurring series as recurring-ical-events expands them, with what caldaemon adds: each
occurrence knows its VEVENT and whether a rule generated it, a series whose rules would
take minutes to expand is refused before it is expanded, and a series that cannot be read
is described in the terms of the file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import icalendar
import recurring_ical_events

from caldaemon.model import Window
from caldaemon.providers.ics.parse import why

# A series whose rule would make dateutil step through more candidate times than this is
# not an appointment (RRULE:FREQ=SECONDLY from 1970, fuzzed files): skipped, never a hang.
# dateutil steps from DTSTART, not from the window, so the span counts from DTSTART.
MAX_RULE_STEPS = 500_000
_STEP = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 604800,
    "MONTHLY": 2629746,
    "YEARLY": 31556952,
}
# Each BYxxx part at a coarser FREQ multiplies the occurrences of a period (RFC 5545
# §3.3.10 "expand"); BYDAY counts each weekday once a week (see _by_day).
_FINER = (
    ("BYMONTH", 2629746),
    ("BYWEEKNO", 604800),
    ("BYYEARDAY", 86400),
    ("BYMONTHDAY", 86400),
    ("BYHOUR", 3600),
    ("BYMINUTE", 60),
    ("BYSECOND", 1),
)
_TIMING = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "RDATE", "EXDATE")


class Adapter(recurring_ical_events.EventAdapter):
    """recurring-ical-events' view of a VEVENT that also hands back the VEVENT."""

    @property
    def vevent(self) -> icalendar.Component:
        component: icalendar.Component = self._component
        return component


class Occurrence(recurring_ical_events.Occurrence):
    """An occurrence that knows its VEVENT and whether a rule generated it (it then has
    no RECURRENCE-ID of its own)."""

    def __init__(
        self, adapter: Any, start: Any = None, end: Any = None, sequence: int = -1
    ) -> None:
        super().__init__(adapter, start, end, sequence)
        self.generated = start is not None

    @property
    def adapter(self) -> Adapter:
        adapter: Adapter = self._adapter
        return adapter


class Series(recurring_ical_events.Series):
    def occurrence(self, adapter: Any, start: Any = None, end: Any = None) -> Occurrence:
        return Occurrence(adapter, start, end)


def diagnose(adapters: list[Adapter], exc: BaseException) -> tuple[int, str]:
    """Why a series could not be read, in the terms of the file where we can tell, and
    which of its VEVENTs is at fault (an index into ``adapters``). Values are described,
    never quoted (DESIGN.md §7)."""
    try:
        for index, vevent in enumerate(adapter.vevent for adapter in adapters):
            for name in _TIMING:
                found = vevent.get(name)
                if isinstance(found, list) and name in _TIMING[:4]:
                    return index, f"it has more than one {name} (RFC 5545 §3.6.1 allows one)"
                for value in found if isinstance(found, list) else [found]:
                    if isinstance(value, icalendar.vBroken):
                        return index, f"an unreadable {name}"
                    if any(isinstance(v.dt, time) for v in getattr(value, "dts", [])):
                        return index, f"its {name} holds a time of day without a date"
    except Exception:
        pass  # the reason is only less precise
    if isinstance(exc, recurring_ical_events.BadRuleStringFormat):
        return 0, "an unreadable RRULE (RFC 5545 §3.3.10)"
    if isinstance(exc, recurring_ical_events.PeriodEndBeforeStart):
        return 0, "a period (RDATE, DTEND or DURATION) that ends before it starts"
    return 0, why(exc)


def rule_steps(
    series: Series, window: Window, moment: Callable[[date | datetime], datetime]
) -> float:
    """About how many candidate times dateutil steps through to expand this series'
    rules up to the end of ``window`` (an upper bound: it steps from DTSTART)."""
    total = 0.0
    for adapter in series.components:
        rules = adapter.vevent.get("RRULE")
        if rules is None:
            continue
        begin = moment(adapter.start)
        reach = window.end + abs(adapter.end - adapter.start)
        for rule in rules if isinstance(rules, list) else [rules]:
            step = _STEP.get(str(rule.get("FREQ", ["DAILY"])[0]).upper(), 86400)
            step *= max(1, int(rule.get("INTERVAL", [1])[0] or 1))
            until = [moment(u) for u in rule.get("UNTIL", [])]
            stop = min([reach, *until])
            steps = max(0.0, (stop - begin).total_seconds()) / step
            for name, unit in _FINER:
                if name in rule and step > unit:
                    steps *= len(rule[name])
            if "BYDAY" in rule and step > 86400:
                steps *= len(rule["BYDAY"]) * max(1, step // 604800)
            if "COUNT" in rule:
                steps = min(steps, int(rule["COUNT"][0]))
            total += steps
    return total


def too_many(steps: float) -> str | None:
    """Why expanding a series of ``steps`` (:func:`rule_steps`) could take minutes."""
    if steps > MAX_RULE_STEPS:
        return (
            "its RRULE repeats too often to be an appointment "
            f"(more than {MAX_RULE_STEPS:,} times before the end of the window)"
        )
    return None
