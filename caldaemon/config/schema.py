"""The declarative schema of the config file (DESIGN.md §3): every key, its type, its
default. A rule set's keys come from :mod:`caldaemon.core.rules.settings`, a calendar's
from its provider's settings model (through the provider registry). Cross-references
between sections (a tag naming a level, ``rules`` naming a rule set) are checked in
:mod:`.checks`; :mod:`.messages` turns errors into file:line sentences."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from caldaemon.core.rules.settings import LevelName, RuleSet
from caldaemon.fields import (
    Clock,
    Count,
    Duration,
    Email,
    FilePath,
    Flag,
    Id,
    Name,
    SecretPath,
    Strict,
    Weekday,
    fail,
    parse_duration,
)
from caldaemon.model import TAGGABLE_KINDS
from caldaemon.providers.registry import PROVIDERS
from caldaemon.providers.settings import CalendarSettings

__all__ = ["Config", "Daemon", "EmailSettings", "Notices", "RuleSet", "Smtp"]


# Polling more often than this gains nothing (the services' own limits are per minute)
# and a poll of zero would spin (DESIGN.md §5).
MIN_POLL_INTERVAL = timedelta(seconds=10)
# How long the event cache keeps past events for ``caldaemon hours`` (DESIGN.md §11): a
# licensing log spans years, and five years of one clinician's events is a few MB of state.
MAX_HISTORY = timedelta(days=1830)


def _history(value: Any) -> timedelta:
    return parse_duration(value, longest=MAX_HISTORY)


# Zero keeps only what the rules need (no history): nothing of the past beyond that.
History = Annotated[timedelta, BeforeValidator(_history)]


class Daemon(Strict):
    poll_interval: Duration = timedelta(minutes=2)
    horizon: Duration = timedelta(days=28)
    state_dir: FilePath = Path("~/.local/state/caldaemon")
    dry_run: Flag = False
    max_deletes_per_cycle: Count = 20
    # About 13 months: a year of hours, whichever day of the month it is asked for.
    keep_history: History = timedelta(days=400)

    state: str | None = None
    """A PostgreSQL database for what caldaemon remembers, instead of the file in state_dir
    (postgresql://user@host/database): for several `caldaemon run` instances that share the
    clinicians. Its password goes in state_password_file or state_password_env, never in
    the URL."""
    state_password_file: SecretPath | None = None
    """A file holding the PostgreSQL password (relative to $CREDENTIALS_DIRECTORY under
    systemd)."""
    state_password_env: str | None = None
    """An environment variable holding the PostgreSQL password."""

    @field_validator("state")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError:
            raise fail("state", "is not a valid postgresql:// URL") from None
        if parts.password is not None:
            # Like a feed's URL (DESIGN.md §5): a credential in a URL ends up in logs and
            # process lists; the password has its own keys.
            raise fail(
                "state",
                "the URL holds a password: remove it from the URL and set "
                "'state_password_file' (or 'state_password_env') instead",
            )
        if parts.scheme.lower() not in ("postgresql", "postgres"):
            raise fail("state", "is not a postgresql:// URL (the SQLite file needs no key)")
        if re.search(r"[\x00-\x20\x7f]", value.strip()):
            raise fail("state", "is not a valid postgresql:// URL")
        return value.strip()

    @model_validator(mode="after")
    def _state_password(self) -> Daemon:
        if self.state_password_file is not None and self.state_password_env is not None:
            raise fail(
                "state_password_env",
                "use one of 'state_password_file' or 'state_password_env', not both",
            )
        if self.state is None and (self.state_password_file or self.state_password_env):
            raise fail("state", "a state password is for a PostgreSQL 'state' URL; set one")
        return self

    @field_validator("poll_interval")
    @classmethod
    def _often_enough(cls, value: timedelta) -> timedelta:
        if value < MIN_POLL_INTERVAL:
            raise fail("poll_interval", "must be at least 10s")
        return value


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise fail("regex", f"{value!r} is not a valid regular expression: {exc}") from None
    return value


Pattern = Annotated[str, AfterValidator(_regex)]


class Sessions(Strict):
    tagged: Flag = True
    title_matches: Pattern | None = r"(?i)\b(session|client|intake|therapy)\b"
    calendars: list[str] = []


def _rule_kind(value: str) -> str:
    if value not in TAGGABLE_KINDS:
        kinds = ", ".join(sorted(TAGGABLE_KINDS))
        raise fail("kind", f"{value!r} is not a kind (use one of: {kinds})")
    return value


class ClassificationRule(Strict):
    """One of ``classification.rules``: conditions (all must hold) and what they decide."""

    calendar: str | None = None
    min_length: Duration | None = None
    title_matches: Pattern | None = None
    level: LevelName | None = None
    kind: Annotated[str, AfterValidator(_rule_kind)] | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> ClassificationRule:
        if (self.level is None) == (self.kind is None):
            raise fail("rule", "a rule gives exactly one of 'level' or 'kind'")
        if self.calendar is None and self.min_length is None and self.title_matches is None:
            raise fail(
                "rule", "a rule needs a condition: 'calendar', 'min_length' or 'title_matches'"
            )
        return self


class Classification(Strict):
    levels: Annotated[list[Name], Field(min_length=1)] = ["low", "moderate", "high"]
    weights: dict[str, Count] = {}
    default_level: str | None = None
    tags: dict[str, str] | None = None
    colors: dict[str, str] = {}
    sessions: Sessions = Sessions()
    # First match wins (DESIGN.md §10): for feeds whose sessions carry no tags.
    rules: list[ClassificationRule] = []

    @field_validator("levels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        lowered = [level.lower() for level in value]
        if len(set(lowered)) != len(lowered):
            raise fail("levels", "a level is listed twice")
        return lowered


if TYPE_CHECKING:
    CalendarConfig = CalendarSettings
else:
    # Every registered provider's settings, told apart by their ``provider`` key.
    CalendarConfig = Annotated[
        Union[tuple(kind.settings for kind in PROVIDERS.values())],  # noqa: UP007
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


class Smtp(Strict):
    host: Name
    port: Annotated[int, Field(ge=1, le=65535, strict=True)] | None = None
    security: Literal["starttls", "tls"] = "starttls"
    username: str | None = None
    password_file: SecretPath | None = None
    password_env: str | None = None
    ca_file: FilePath | None = None
    timeout: Duration = timedelta(seconds=30)


class EmailSettings(Strict):
    sender: Email = Field(alias="from")
    via: Literal["smtp", "graph"] = "smtp"
    smtp: Smtp | None = None
    graph_calendar: str | None = None


class WeeklyReport(Strict):
    """Your week by email: the picture of `caldaemon report` and the same facts as text, for
    the week that begins on the day it is sent (or the next one)."""

    day: Weekday = "mon"
    """The weekday it goes out (mon, tue, … sun)."""
    at: Clock = 7 * 60
    """The time it goes out, HH:MM in the clinician's time zone."""


class Notices(Strict):
    mode: Literal["immediate", "digest"] = "immediate"
    digest_at: Clock = 7 * 60 + 30
    quiet_outside_working_hours: Flag = True
    repeat_after: Duration = timedelta(days=7)
    # minimal: weekdays and counts only; redacted: times, kinds, levels, never event text;
    # full: event titles too (DESIGN.md §7, §11).
    privacy: Literal["minimal", "redacted", "full"] = "redacted"
    admin_email: Email | None = None
    email: EmailSettings | None = None
    weekly_report: WeeklyReport | None = None
    """Your week by email on a weekday at a time, like {day: mon, at: "07:00"} (with privacy:
    minimal only counts per weekday, no picture). Absent: no weekly email."""


class Config(Strict):
    timezone: str | None = None
    daemon: Daemon = Daemon()
    classification: Classification = Classification()
    clinicians: Annotated[list[Clinician], Field(min_length=1)]
    rule_sets: dict[str, RuleSet]
    notices: Notices = Notices()
