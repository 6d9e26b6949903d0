"""The answers of ``caldaemon init`` as data (DESIGN.md §12), once each has been checked
(:mod:`caldaemon.config.answers` parses what is typed; :mod:`caldaemon.config.template`
writes the config from these), and the key and password files they name, which the
system service is given by their bare names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from caldaemon.fields import PathRole, path_role
from caldaemon.providers.registry import PROVIDERS


@dataclass(frozen=True)
class CalendarAnswer:
    """One calendar: its provider's keys in the order they are written, each with the
    comment that explains it (empty: none)."""

    id: str
    provider: str
    keys: tuple[tuple[str, str, str], ...]
    use: str = "sessions"
    # Someone signs in once with ``caldaemon auth`` (an OAuth client, a device code); an
    # app-only calendar (a service account, client credentials) needs nobody.
    signs_in: bool = False


@dataclass(frozen=True)
class ClinicianAnswer:
    id: str
    name: str | None
    email: str | None
    calendars: tuple[CalendarAnswer, ...]
    buffers_to: str | None


@dataclass(frozen=True)
class SmtpAnswer:
    sender: str
    host: str
    port: int
    security: str
    username: str | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class Answers:
    """Everything ``caldaemon init`` asks. A limit that is None is left out (not checked)."""

    timezone: str
    clinicians: tuple[ClinicianAnswer, ...]  # the first is the person answering
    working_days: str
    working_hours: tuple[str, ...]
    days_off: tuple[str, ...]
    max_sessions_per_day: int | None
    max_sessions_per_week: int | None
    high_per_day: int | None
    high_per_week: int | None
    high_latest_start: str | None
    grounding: str | None
    notes: str | None
    supervision_every: str | None
    smtp: SmtpAnswer | None
    # For the system service (`init --system`, or a config in /etc/caldaemon): every key
    # and password file is written by its bare name, found beside the config.
    system: bool = False


# The calendar keys that name a key or password file: a SecretPath in a provider's
# settings, the marker the loader resolves by (config/load.py), so a new one is never
# missing here and is written by its bare name for the system unit.
SECRET_KEYS = frozenset(
    field.alias or key
    for kind in PROVIDERS.values()
    for key, field in kind.settings.model_fields.items()
    if path_role(kind.settings, key) is PathRole.SECRET
)


def secret_files(answers: Answers) -> tuple[tuple[str, str], ...]:
    """Each key or password file the answers name, as (the name written for it, the path
    answered), in the order asked, once each."""
    answered = [
        value
        for clinician in answers.clinicians
        for calendar in clinician.calendars
        for key, value, _ in calendar.keys
        if key in SECRET_KEYS
    ]
    if answers.smtp and answers.smtp.password_file:
        answered.append(answers.smtp.password_file)
    return tuple((PurePath(path).name, path) for path in dict.fromkeys(answered))
