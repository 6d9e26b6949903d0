"""The declarative schema of the config file (DESIGN.md §3): every key, its type, its
default. Cross-references between sections (a tag naming a level, ``rules`` naming a rule
set) are checked in :mod:`caldaemon.config`, which also turns errors into file:line
messages."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message.replace("{", "{{").replace("}", "}}"))


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise _fail("duration", f"{value!r} is not a duration like 15m, 1h30m or 14d")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_clock(value: Any, *, allow_24: bool = False) -> int:
    """``HH:MM`` → minutes after midnight."""
    match = _CLOCK.match(value) if isinstance(value, str) else None
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not match or minutes > (1440 if allow_24 else 1439):
        raise _fail("clock", f"{value!r} is not a time of day like 09:30")
    return minutes


def parse_weekday(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower()[:3] in WEEKDAYS:
        return value.strip().lower()[:3]
    raise _fail("weekday", f"{value!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")


def parse_weekdays(spec: str) -> list[int]:
    """``mon-thu``, ``mon,wed,fri``, ``sat`` → weekday numbers (Monday is 0)."""
    days: list[int] = []
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        a = WEEKDAYS.index(parse_weekday(first))
        b = WEEKDAYS.index(parse_weekday(last)) if last else a
        days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return days


def parse_range(value: Any) -> tuple[int, int]:
    """``09:00-17:00`` → (540, 1020) minutes after midnight; the end may be 24:00."""
    if not isinstance(value, str) or value.count("-") != 1:
        raise _fail("range", f"{value!r} is not a time range like 09:00-17:00")
    start_text, end_text = (part.strip() for part in value.split("-"))
    start, end = parse_clock(start_text), parse_clock(end_text, allow_24=True)
    if end <= start:
        raise _fail("range", f"{value!r} ends before it starts")
    return start, end


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Clock = Annotated[int, BeforeValidator(parse_clock)]
Weekday = Annotated[str, BeforeValidator(parse_weekday)]
Count = Annotated[int, Field(ge=0, strict=True)]
Flag = Annotated[bool, Field(strict=True)]
Name = Annotated[str, Field(min_length=1)]


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise _fail("id", f"{value!r} is not an id: use letters, digits, '-', '_' or '.'")
    return value


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise _fail("email", f"{value!r} is not an email address")
    return value


Id = Annotated[str, AfterValidator(_check_id)]
Email = Annotated[str, AfterValidator(_check_email)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Daemon(Strict):
    poll_interval: Duration = timedelta(minutes=2)
    horizon: Duration = timedelta(days=28)
    state_dir: Path = Path("~/.local/state/caldaemon")
    dry_run: Flag = False
    max_deletes_per_cycle: Count = 20


class Sessions(Strict):
    tagged: Flag = True
    title_matches: str | None = r"(?i)\b(session|client|intake|therapy)\b"
    calendars: list[str] = []

    @field_validator("title_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                message = f"{value!r} is not a valid regular expression: {exc}"
                raise _fail("regex", message) from None
        return value


class Classification(Strict):
    levels: Annotated[list[Name], Field(min_length=1)] = ["low", "moderate", "high"]
    weights: dict[str, Count] = {}
    default_level: str | None = None
    tags: dict[str, str] | None = None
    colors: dict[str, str] = {}
    sessions: Sessions = Sessions()

    @field_validator("levels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        lowered = [level.lower() for level in value]
        if len(set(lowered)) != len(lowered):
            raise _fail("levels", "a level is listed twice")
        return lowered


class IcsCalendar(Strict):
    provider: Literal["ics"]
    id: Id
    use: Literal["sessions", "busy"] = "sessions"
    path: Path | None = None
    url: str | None = None
    timeout: Duration = timedelta(seconds=30)


class GoogleCalendar(Strict):
    provider: Literal["google"]
    id: Id
    use: Literal["sessions", "busy"] = "sessions"
    calendar: Name = "primary"
    credentials: Path
    subject: str | None = None
    token: Path | None = None
    api_endpoint: str | None = None
    timeout: Duration = timedelta(seconds=30)


class OutlookCalendar(Strict):
    provider: Literal["outlook"]
    id: Id
    use: Literal["sessions", "busy"] = "sessions"
    tenant: Name
    client_id: Name
    user: Name = "me"
    calendar: str | None = None
    auth: Literal["device_code", "client_credentials"] = "device_code"
    client_secret_file: Path | None = None
    client_secret_env: str | None = None
    certificate_file: Path | None = None
    certificate_thumbprint: str | None = None
    token: Path | None = None
    authority: str | None = None
    graph_endpoint: str | None = None
    ca_file: Path | None = None
    timeout: Duration = timedelta(seconds=30)


class CaldavCalendar(Strict):
    provider: Literal["caldav"]
    id: Id
    use: Literal["sessions", "busy"] = "sessions"
    url: Name
    calendar: str | None = None
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    timeout: Duration = timedelta(seconds=30)


CalendarConfig = Annotated[
    IcsCalendar | GoogleCalendar | OutlookCalendar | CaldavCalendar,
    Field(discriminator="provider"),
]


class Clinician(Strict):
    id: Id
    name: str | None = None
    email: Email | None = None
    timezone: str | None = None
    rules: Name
    overrides: dict[str, Any] = {}
    calendars: Annotated[list[CalendarConfig], Field(min_length=1)]
    buffers_to: str | None = None


class LevelLimit(Strict):
    max_per_day: Count | None = None
    max_per_week: Count | None = None
    latest_start: Clock | None = None


class Breaks(Strict):
    after_sessions: Annotated[int, Field(ge=1, strict=True)]
    min_break: Duration


class NoBackToBack(Strict):
    level: Name
    min_gap: Duration


class BufferRule(Strict):
    after: Name
    length: Duration
    title: Name = "Buffer"


class Cadence(Strict):
    kind: Name
    every: Duration


def _working_hours(value: Any) -> dict[int, tuple[tuple[int, int], ...]]:
    if not isinstance(value, dict):
        raise _fail("working_hours", "must map weekdays (like mon-thu) to time ranges")
    ranges: dict[int, list[tuple[int, int]]] = {}
    origin: dict[int, str] = {}
    for spec, given in value.items():
        items = given if isinstance(given, list) else [given]
        parsed = [parse_range(item) for item in items]
        for day in parse_weekdays(str(spec)):
            if day in origin and origin[day] != spec:
                raise _fail(
                    "working_hours",
                    f"{WEEKDAYS[day]} is given in both '{origin[day]}' and '{spec}'",
                )
            origin[day] = str(spec)
            ranges.setdefault(day, []).extend(parsed)
    for day, day_ranges in ranges.items():
        day_ranges.sort()
        for (_, end), (start, _) in pairwise(day_ranges):
            if start < end:
                raise _fail(
                    "working_hours", f"the ranges of {WEEKDAYS[day]} ('{origin[day]}') overlap"
                )
    return {day: tuple(r) for day, r in sorted(ranges.items())}


class RuleSet(Strict):
    week_starts: Weekday = "mon"
    working_hours: Annotated[
        dict[int, tuple[tuple[int, int], ...]] | None,
        BeforeValidator(lambda v: None if v is None else _working_hours(v)),
    ] = None
    days_off: list[Weekday] = []
    max_work_days_per_week: Annotated[int, Field(ge=0, le=7, strict=True)] | None = None
    max_sessions_per_day: Count | None = None
    max_sessions_per_week: Count | None = None
    level_limits: dict[str, LevelLimit] = {}
    breaks: Breaks | None = None
    no_back_to_back: NoBackToBack | None = None
    max_daily_load: Count | None = None
    buffers: list[BufferRule] = []
    cadence: list[Cadence] = []
    double_booked: Flag = False
    severity: dict[str, Literal["error", "warning"]] = {}


class Smtp(Strict):
    host: Name
    port: Annotated[int, Field(ge=1, le=65535, strict=True)] | None = None
    security: Literal["starttls", "tls"] = "starttls"
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    ca_file: Path | None = None
    timeout: Duration = timedelta(seconds=30)


class EmailSettings(Strict):
    sender: Email = Field(alias="from")
    via: Literal["smtp", "graph"] = "smtp"
    smtp: Smtp | None = None
    graph_calendar: str | None = None


class Notices(Strict):
    mode: Literal["immediate", "digest"] = "immediate"
    digest_at: Clock = 7 * 60 + 30
    quiet_outside_working_hours: Flag = True
    repeat_after: Duration = timedelta(days=7)
    privacy: Literal["redacted", "full"] = "redacted"
    admin_email: Email | None = None
    email: EmailSettings | None = None


class Config(Strict):
    timezone: str | None = None
    daemon: Daemon = Daemon()
    classification: Classification = Classification()
    clinicians: Annotated[list[Clinician], Field(min_length=1)]
    rule_sets: dict[str, RuleSet]
    notices: Notices = Notices()
