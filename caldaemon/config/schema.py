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

from pydantic import Field, field_validator

from caldaemon.core.rules.settings import RuleSet
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
    fail,
)
from caldaemon.providers.registry import PROVIDERS
from caldaemon.providers.settings import CalendarSettings

__all__ = ["Config", "Daemon", "EmailSettings", "Notices", "RuleSet", "Smtp"]


# Polling more often than this gains nothing (the services' own limits are per minute)
# and a poll of zero would spin (DESIGN.md §5).
MIN_POLL_INTERVAL = timedelta(seconds=10)


class Daemon(Strict):
    poll_interval: Duration = timedelta(minutes=2)
    horizon: Duration = timedelta(days=28)
    state_dir: FilePath = Path("~/.local/state/caldaemon")
    dry_run: Flag = False
    max_deletes_per_cycle: Count = 20

    @field_validator("poll_interval")
    @classmethod
    def _often_enough(cls, value: timedelta) -> timedelta:
        if value < MIN_POLL_INTERVAL:
            raise fail("poll_interval", "must be at least 10s")
        return value


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
                raise fail("regex", message) from None
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
