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
from urllib.parse import parse_qs, urlsplit

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
    """How often the service looks at your calendars for changes (at least 10s)."""
    horizon: Duration = timedelta(days=28)
    """How far ahead caldaemon checks your boundaries and places buffers."""
    state_dir: FilePath = Path("~/.local/state/caldaemon")
    """Where caldaemon keeps what it remembers (which buffers it placed, which notices it sent);
    never the names in your appointments. A relative path is relative to this file; under
    systemd, StateDirectory= when not set."""
    dry_run: Flag = False
    """true: only read and report; never write to a calendar or send an email."""
    max_deletes_per_cycle: Count = 20
    """A safety valve: at most this many buffers are removed in one round. If more would go at
    once (a calendar that suddenly looks empty), caldaemon waits and tells you."""
    # About 13 months: a year of hours, whichever day of the month it is asked for.
    keep_history: History = timedelta(days=400)
    """How long past appointments stay in what caldaemon remembers (times and kinds only, never
    their text), for `caldaemon hours`: about 13 months gives a year of hours on any day. Up to
    5 years; 0d keeps only what the rules need."""

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
        # libpq also reads a password from the query (?password=…).
        query = {key.lower() for key in parse_qs(parts.query)}
        if parts.password is not None or "password" in query:
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
    """true: an event with a level tag or colour is a session."""
    title_matches: Pattern | None = r"(?i)\b(session|client|intake|therapy)\b"
    """An event whose title matches this regular expression is a session ((?i) at the start
    ignores case); null: titles decide nothing."""
    calendars: list[str] = []
    """Every busy event on these calendars (by id) is a session."""


def _rule_kind(value: str) -> str:
    if value not in TAGGABLE_KINDS:
        kinds = ", ".join(sorted(TAGGABLE_KINDS))
        raise fail("kind", f"{value!r} is not a kind (use one of: {kinds})")
    return value


class ClassificationRule(Strict):
    """One of ``classification.rules``: conditions (all must hold) and what they decide."""

    calendar: str | None = None
    """The rule matches events of this calendar (its id)."""
    min_length: Duration | None = None
    """The rule matches events at least this long."""
    title_matches: Pattern | None = None
    """The rule matches events whose title matches this regular expression."""
    level: LevelName | None = None
    """The level a matching event gets (give this or kind)."""
    kind: Annotated[str, AfterValidator(_rule_kind)] | None = None
    """The kind a matching event gets (give this or level)."""

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
    """How heavy a session is, from lightest to heaviest. Rules use these names."""
    weights: dict[str, Count] = {}
    """Each level's weight in max_daily_load (default 1, 2, 3, … in the order of levels)."""
    default_level: str | None = None
    """The level of a session that carries no level tag or colour (default: the middle level)."""
    tags: dict[str, str] | None = None
    """Tags you already write in titles or descriptions (#heavy or [heavy]), or use as Outlook
    categories, and what they mean: a level, one of the kinds supervision, peer_support, admin,
    personal, day_off (all-day: a day you keep free), or accept (#ok: you know about this one).
    Absent: each level's and kind's own name, heavy, light, off and ok."""
    colors: dict[str, str] = {}
    """Event colours (Google Calendar colour names, or an .ics COLOR) and the level or kind they
    mean."""
    sessions: Sessions = Sessions()
    """Which events are client sessions: any of these makes an event a session."""
    # First match wins (DESIGN.md §10): for feeds whose sessions carry no tags.
    rules: list[ClassificationRule] = []
    """For events that carry no tags (a practice system's "Appointment", a client code): rules
    that give a level or a kind, checked in order; the first that matches counts. Each can name
    a calendar, a minimum length and a title pattern (all that are given must match)."""

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
    """A short name for the command line (--clinician lee): letters, digits, '-', '_' or '.'."""
    name: str | None = None
    """How notices address you."""
    email: Email | None = None
    """Where notices go."""
    timezone: str | None = None
    """This clinician's time zone (default: the top-level timezone)."""
    rules: Name
    """Which set of boundaries under rule_sets applies."""
    overrides: dict[str, Any] = {}
    """Rule-set keys that change single rules just for this clinician, merged over the rule set
    (e.g. {max_sessions_per_day: 5})."""
    calendars: Annotated[list[CalendarConfig], Field(min_length=1)]
    """The calendars caldaemon reads, each with an id and a provider: google (Google Calendar),
    outlook (Microsoft 365), ics (a file or feed), caldav."""
    buffers_to: str | None = None
    """The id of the calendar that receives buffer blocks and holds; leave out to only report,
    never write."""


class Smtp(Strict):
    host: Name
    """The mail server."""
    port: Annotated[int, Field(ge=1, le=65535, strict=True)] | None = None
    """Its port (default: 587 for starttls, 465 for tls)."""
    security: Literal["starttls", "tls"] = "starttls"
    """starttls (usually port 587) or tls (port 465); certificates are always checked."""
    username: str | None = None
    """The user name to sign in with, with password_file or password_env."""
    password_file: SecretPath | None = None
    """A file holding the password. A relative path is under $CREDENTIALS_DIRECTORY when set
    (under systemd: the LoadCredential= name), else relative to this file."""
    password_env: str | None = None
    """Or an environment variable holding the password."""
    ca_file: FilePath | None = None
    """A CA certificate file, for a server whose certificate comes from a private CA."""
    timeout: Duration = timedelta(seconds=30)
    """How long one delivery may take in all."""


class EmailSettings(Strict):
    sender: Email = Field(alias="from")
    """The address notices come from."""
    via: Literal["smtp", "graph"] = "smtp"
    """smtp: through the mail server under smtp; graph: through the Microsoft 365 account of an
    outlook calendar."""
    smtp: Smtp | None = None
    """The mail server (with via: smtp)."""
    graph_calendar: str | None = None
    """With via: graph, the id of the outlook calendar whose account sends (default: the first
    outlook calendar)."""


class WeeklyReport(Strict):
    """Your week by email: the picture of `caldaemon report` and the same facts as text, for
    the week that begins on the day it is sent (or the next one)."""

    day: Weekday = "mon"
    """The weekday it goes out (mon, tue, … sun)."""
    at: Clock = 7 * 60
    """The time it goes out, HH:MM in the clinician's time zone."""


class Notices(Strict):
    mode: Literal["immediate", "digest"] = "immediate"
    """immediate: an email as soon as a boundary is crossed; digest: one email a day."""
    digest_at: Clock = 7 * 60 + 30
    """When the daily digest goes out."""
    quiet_outside_working_hours: Flag = True
    """true: hold notices until the clinician's next working hours."""
    repeat_after: Duration = timedelta(days=7)
    """Remind you of something unresolved at most this often."""
    privacy: Literal["minimal", "redacted", "full"] = "redacted"
    """redacted: notices name times, kinds and levels, never what your events say; minimal: only
    weekdays and counts, no dates or times, for an email that is not as private as your
    calendar; full: event titles too (only if your email is as private as your calendar)."""
    admin_email: Email | None = None
    """Who hears about technical problems (expired sign-ins, a bad config); default: the
    clinician."""
    email: EmailSettings | None = None
    """How notices are sent. Absent: they are written as files to a Maildir folder in state_dir
    (any mail program can open it)."""
    weekly_report: WeeklyReport | None = None
    """Your week by email on a weekday at a time, like {day: mon, at: "07:00"} (with privacy:
    minimal only counts per weekday, no picture). Absent: no weekly email."""


class Config(Strict):
    timezone: str | None = None
    """Your time zone (like America/Toronto). Every rule is checked in local time, so a 17:00
    limit stays 17:00 when the clocks change. The default for clinicians without their own;
    absent: the machine's zone."""
    daemon: Daemon = Daemon()
    """How the background service runs."""
    classification: Classification = Classification()
    """How events are read: levels of intensity, the tags and colours that give them, and which
    events are client sessions."""
    clinicians: Annotated[list[Clinician], Field(min_length=1)]
    """The clinicians caldaemon looks after, each with their calendars and the rule set that
    applies."""
    rule_sets: dict[str, RuleSet]
    """Named sets of boundaries; each clinician's rules key names one."""
    notices: Notices = Notices()
    """The emails caldaemon sends: when, how private, and how they are delivered."""
