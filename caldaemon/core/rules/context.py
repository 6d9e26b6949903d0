"""What every rule reads: one clinician's classified events seen from a pinned ``now``,
with the day and week arithmetic of DESIGN.md §3 "Rule semantics" done once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from caldaemon.core.policy import ClassificationSettings, Policy
from caldaemon.model import Classified, Event, Kind, Severity, Violation
from caldaemon.text import WEEKDAYS


@dataclass(frozen=True)
class Session:
    """A timed session in the clinician's zone. ``key`` (the event's) and ``day`` (the
    local date of its start) are worked out once: the rules ask for them hundreds of
    thousands of times over a year of a practice."""

    item: Classified
    start: datetime
    end: datetime
    key: str
    day: date

    @classmethod
    def of(cls, item: Classified, tz: ZoneInfo) -> Session:
        start = item.event.start.astimezone(tz)
        return cls(item, start, item.event.end.astimezone(tz), item.event.key, start.date())

    @property
    def level(self) -> str:
        assert self.item.level is not None
        return self.item.level


@dataclass(frozen=True)
class Context:
    clinician: Policy
    classification: ClassificationSettings
    events: tuple[Classified, ...]
    now: datetime
    horizon_end: datetime

    @cached_property
    def tz(self) -> ZoneInfo:
        return self.clinician.tz

    @cached_property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()

    @cached_property
    def last_day(self) -> date:
        return self.horizon_end.astimezone(self.tz).date()

    @cached_property
    def sessions(self) -> tuple[Session, ...]:
        found = [
            Session.of(c, self.tz) for c in self.events if c.is_session and not c.event.all_day
        ]
        return tuple(sorted(found, key=lambda s: (s.start, s.end, s.key)))

    @cached_property
    def sessions_by_day(self) -> dict[date, list[Session]]:
        days: dict[date, list[Session]] = defaultdict(list)
        for session in self.sessions:
            days[session.day].append(session)
        return dict(days)

    @cached_property
    def busy(self) -> tuple[Classified, ...]:
        """Timed busy events (caldaemon's buffers excepted), by start."""
        return tuple(
            sorted(
                (
                    c
                    for c in self.events
                    if c.kind not in (Kind.BUFFER, Kind.IGNORED) and c.occupies_time
                ),
                key=lambda c: (c.event.start, c.event.end),
            )
        )

    @cached_property
    def day_off_dates(self) -> frozenset[date]:
        """Dates covered by a day off: an all-day event of kind ``day_off``, or one (out of
        office, say) that runs from a local midnight to a later one."""
        dates: set[date] = set()
        for c in self.events:
            if c.kind is Kind.DAY_OFF and _whole_days(c.event, self.tz):
                day = c.event.start.astimezone(self.tz).date()
                last = max(c.event.end.astimezone(self.tz).date(), day + timedelta(days=1))
                while day < last:
                    dates.add(day)
                    day += timedelta(days=1)
        return frozenset(dates)

    def week_start(self, day: date) -> date:
        return week_start(day, self.clinician.rules.week_starts)

    def weeks(self) -> Iterator[tuple[date, list[Session]]]:
        """Weeks that are not over yet and start within the horizon, with their sessions."""
        grouped: dict[date, list[Session]] = defaultdict(list)
        for session in self.sessions:
            grouped[self.week_start(session.day)].append(session)
        for start in sorted(grouped):
            if start + timedelta(days=7) > self.today and start <= self.last_day:
                yield start, grouped[start]

    def days(self) -> Iterator[tuple[date, list[Session]]]:
        """Reportable days (today up to the horizon) that have sessions."""
        for day, sessions in sorted(self.sessions_by_day.items()):
            if self.today <= day <= self.last_day:
                yield day, sessions

    def reportable(self, day: date) -> bool:
        return self.today <= day <= self.last_day

    def at_least(self, level: str | None, threshold: str) -> bool:
        return level is not None and (
            self.classification.rank(level) >= self.classification.rank(threshold)
        )

    def severity(self, rule: str) -> Severity:
        given = self.clinician.rules.severity
        family = rule.split(".", 1)[0]
        return Severity(given.get(rule) or given.get(family) or Severity.ERROR)

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), self.tz)

    def violation(
        self,
        rule: str,
        *,
        day: date,
        start: datetime,
        end: datetime,
        message: str,
        subject: str,
        events: tuple[str, ...] = (),
        level: str | None = None,
        kind: str | None = None,
        phrase: str = "",
    ) -> Violation:
        return Violation(
            clinician=self.clinician.id,
            rule=rule,
            severity=self.severity(rule),
            date=day,
            start=start,
            end=end,
            message=message,
            events=events,
            level=level,
            kind=kind,
            subject=subject,
            phrase=phrase,
        )

    def day_violation(
        self,
        rule: str,
        day: date,
        days: int,
        message: str,
        sessions: list[Session],
        *,
        level: str | None = None,
        phrase: str = "",
    ) -> Violation:
        """A violation about a whole day (days=1) or week (days=7), dated at its start."""
        return self.violation(
            rule,
            day=day,
            start=self.midnight(day),
            end=self.midnight(day + timedelta(days=days)),
            message=message,
            subject=f"{day.isoformat()}/{level or ''}",
            events=tuple(s.key for s in sessions),
            level=level,
            phrase=phrase,
        )

    def session_violation(
        self, rule: str, session: Session, message: str, phrase: str = ""
    ) -> Violation:
        return self.violation(
            rule,
            day=session.day,
            start=session.start,
            end=session.end,
            message=message,
            subject=session.key,
            events=(session.key,),
            level=session.item.level,
            kind=Kind.SESSION.value,
            phrase=phrase,
        )


def _whole_days(event: Event, tz: ZoneInfo) -> bool:
    if event.all_day:
        return True
    start, end = event.start.astimezone(tz), event.end.astimezone(tz)
    return start.time() == end.time() == time() and end.date() > start.date()


def week_start(day: date, starts_on: str) -> date:
    return day - timedelta(days=(day.weekday() - WEEKDAYS.index(starts_on)) % 7)
