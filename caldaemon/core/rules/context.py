"""What every rule reads: one clinician's classified events seen from a pinned ``now``,
with the day and week arithmetic of DESIGN.md §3 "Rule semantics" done once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from operator import attrgetter
from zoneinfo import ZoneInfo

from caldaemon.core.policy import ClassificationSettings, Policy
from caldaemon.model import Classified, Event, Kind, Severity, Violation
from caldaemon.text import WEEKDAYS

# Kinds that are never busy time: caldaemon's own blocks, and what classification ignores.
_NOT_BUSY = frozenset({Kind.BUFFER, Kind.IGNORED})


@dataclass(frozen=True, slots=True)
class Session:
    """A timed session in the clinician's zone. ``key`` (the event's), ``day`` (the
    local date of its start) and the instants are worked out once: the rules ask for them
    hundreds of thousands of times over a year of a practice."""

    item: Classified
    start: datetime
    end: datetime
    key: str
    day: date
    # The instants, for arithmetic and searches that must not follow the wall clock (a
    # time in the repeated hour of a DST change, PEP 495): buffer planning, the busy index.
    utc_start: datetime
    utc_end: datetime

    @classmethod
    def of(cls, item: Classified, tz: ZoneInfo, utc_start: datetime, utc_end: datetime) -> Session:
        """``item`` seen in ``tz``, with its instants (:attr:`Context.busy_utc`)."""
        event = item.event
        start = event.start.astimezone(tz)
        return cls(
            item, start, event.end.astimezone(tz), event.key, start.date(), utc_start, utc_end
        )

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
        # A session is timed busy time, so it is among ``busy``, whose instants are
        # worked out already.
        tz, session = self.tz, Kind.SESSION
        starts, ends = self.busy_utc
        found = [
            Session.of(c, tz, utc_start, utc_end)
            for c, utc_start, utc_end in zip(self.busy, starts, ends, strict=True)
            if c.kind is session
        ]
        return tuple(sorted(found, key=attrgetter("start", "end", "key")))

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
                (c for c in self.events if c.kind not in _NOT_BUSY and c.occupies_time),
                key=attrgetter("event.start", "event.end"),
            )
        )

    @cached_property
    def busy_utc(self) -> tuple[list[datetime], list[datetime]]:
        """The starts and the ends of ``busy`` in UTC, in its order: worked out once for
        the sessions and the busy index (a conversion out of a zone costs a ``utcoffset``
        call, and there are two per event of a year)."""
        busy = self.busy
        return (
            [c.event.start.astimezone(UTC) for c in busy],
            [c.event.end.astimezone(UTC) for c in busy],
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

    def sessions_ahead(self) -> list[Session]:
        """The sessions that end now or later and start by the horizon's end. A session
        that ends right now still wants the buffer that starts now (else the buffer would
        be deleted the moment it begins)."""
        # As Python compares ``session.end < now``: by wall clock when both carry the same
        # zone object, else by instant after a ``utcoffset`` call on each (datetime docs,
        # "aware comparisons"). Every session is in the clinician's zone, so the way is the
        # same for all of them, and their instants are known: no call at all.
        now, end = self.now, self.horizon_end
        local_now, local_end = now.tzinfo is self.tz, end.tzinfo is self.tz
        end_of = attrgetter("end" if local_now else "utc_end")
        start_of = attrgetter("start" if local_end else "utc_start")
        now = now if local_now else now.astimezone(UTC)
        end = end if local_end else end.astimezone(UTC)
        return [s for s in self.sessions if not (end_of(s) < now or start_of(s) > end)]

    def week_start(self, day: date) -> date:
        return week_start(day, self.clinician.rules.week_starts)

    # Days and weeks are asked for by nearly every rule, and again by holds and reports:
    # grouped and sorted once per context rather than on every call.
    @cached_property
    def _weeks(self) -> tuple[tuple[date, list[Session]], ...]:
        # By day first, days in order: a day's sessions follow one another in session
        # order, so each week's list is in session order too, with one week_start per day.
        grouped: dict[date, list[Session]] = defaultdict(list)
        for day, sessions in sorted(self.sessions_by_day.items()):
            grouped[self.week_start(day)] += sessions
        return tuple(
            (start, grouped[start])
            for start in sorted(grouped)
            if start + timedelta(days=7) > self.today and start <= self.last_day
        )

    @cached_property
    def _days(self) -> tuple[tuple[date, list[Session]], ...]:
        return tuple(
            (day, sessions)
            for day, sessions in sorted(self.sessions_by_day.items())
            if self.today <= day <= self.last_day
        )

    def weeks(self) -> Iterator[tuple[date, list[Session]]]:
        """Weeks that are not over yet and start within the horizon, with their sessions."""
        return iter(self._weeks)

    def days(self) -> Iterator[tuple[date, list[Session]]]:
        """Reportable days (today up to the horizon) that have sessions."""
        return iter(self._days)

    def reportable(self, day: date) -> bool:
        return self.today <= day <= self.last_day

    @cached_property
    def _ranks(self) -> dict[str, int]:
        return {level: rank for rank, level in enumerate(self.classification.levels)}

    def at_least(self, level: str | None, threshold: str) -> bool:
        # Dict lookups, not ``classification.rank``'s list search: the rules ask hundreds
        # of thousands of times over a year of a practice.
        if level is None:
            return False
        try:
            return self._ranks[level] >= self._ranks[threshold]
        except KeyError:  # an unknown level fails as it always did
            return self.classification.rank(level) >= self.classification.rank(threshold)

    @cached_property
    def weekdays_off(self) -> frozenset[int]:
        """The weekdays (Monday 0) the rule set keeps free."""
        days_off = self.clinician.rules.days_off
        return frozenset(n for n, name in enumerate(WEEKDAYS) if name in days_off)

    def severity(self, rule: str) -> Severity:
        found = self._severities.get(rule)
        if found is None:
            given = self.clinician.rules.severity
            family = rule.split(".", 1)[0]
            found = Severity(given.get(rule) or given.get(family) or Severity.ERROR)
            self._severities[rule] = found
        return found

    @cached_property
    def _severities(self) -> dict[str, Severity]:
        """Each rule id's severity once found (every violation asks for its own)."""
        return {}

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
        severity: Severity | None = None,
    ) -> Violation:
        """A violation of ``rule``, of the severity the rule set gives it unless
        ``severity`` says otherwise."""
        return Violation(
            clinician=self.clinician.id,
            rule=rule,
            severity=self.severity(rule) if severity is None else severity,
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
