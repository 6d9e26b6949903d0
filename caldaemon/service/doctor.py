"""What ``caldaemon doctor`` checks (DESIGN.md §12): every connection the daemon will make,
once, read-only. Each check gives one :class:`Finding`: passed or not, what was seen, and
for a failure what to do.

Nothing here writes to a calendar or sends mail: a calendar's write permission is asked of
its service (:meth:`~caldaemon.providers.base.Provider.write_access`), SMTP is spoken up
to the login and left with QUIT. What a check does write is what the daemon would write
at the same step: a refreshed token is saved back. Every network wait has the deadline
of its calendar's or the SMTP server's ``timeout``; waits between retries are capped in
all by :class:`Patience`. No event text and no credential reaches a finding.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.errors import (
    AuthorizationError,
    CalendarError,
    CalendarPaused,
    ConfigError,
    DeliveryError,
    Error,
    TransientError,
)
from caldaemon.model import Window
from caldaemon.providers.base import Provider
from caldaemon.providers.registry import open_provider
from caldaemon.service.providers import provider_context

if TYPE_CHECKING:
    from caldaemon.state import State
    from caldaemon.state.postgres import PostgresLocation

# How far ahead a calendar is read: enough to prove it can be read, little to transfer.
READ_SPAN = timedelta(days=1)
# Seconds a whole doctor run may spend waiting between retries (a busy service's
# Retry-After, backoff); past that, retries go at once and the check fails sooner.
PATIENCE = 10.0
_OFFLINE = "check the network and that the service is up, then run caldaemon doctor again"


@dataclass(frozen=True)
class Finding:
    """One check: ``ok``, what it is about, what was seen, and (failed) what to do."""

    ok: bool
    subject: str
    detail: str
    fix: str | None = None


class Patience:
    """A sleep for the providers' retries that waits at most ``total`` seconds in all."""

    def __init__(self, total: float = PATIENCE, sleep: Callable[[float], None] = time.sleep):
        self.left = total
        self._sleep = sleep

    def __call__(self, seconds: float) -> None:
        wait = max(0.0, min(seconds, self.left))
        self.left -= wait
        if wait:
            self._sleep(wait)


def examine(
    settings: Settings,
    clinician_id: str | None = None,
    *,
    now: datetime | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Iterator[Finding]:
    """Every check, in order: each calendar of each (or one) clinician, the notices'
    way out, the state folder."""
    patience = Patience(sleep=sleep) if sleep is not None else Patience()
    chosen = settings.chosen(clinician_id)
    start = now or datetime.now(settings.tz)
    for clinician in chosen:
        for calendar_id in (c.id for c in clinician.calendars):
            yield from _calendar(settings, clinician, calendar_id, start, patience)
    yield _notices(settings)
    yield _state(settings)


def _calendar(
    settings: Settings,
    clinician: ClinicianSettings,
    calendar_id: str,
    start: datetime,
    sleep: Callable[[float], None],
) -> Iterator[Finding]:
    """The sign-in renewed, the calendar read, and (``buffers_to``) its write permission;
    after a failure the later checks of the calendar are left out: they would fail alike."""
    subject = f"{clinician.id}/{calendar_id}"
    context = provider_context(settings, clinician, sleep=sleep)
    provider = open_provider(clinician.calendar(calendar_id), context)
    step = "sign-in"
    try:
        renewed = provider.renew_authorization()
        if renewed is not None:
            yield Finding(True, f"{subject} sign-in", renewed)
        step = "read"
        listing = provider.changes(Window(start, start + READ_SPAN), None)
        count = len(listing.events)
        yield Finding(
            True,
            f"{subject} read",
            f"{provider.describe()}: {count} event{'' if count == 1 else 's'} in the next day",
        )
        step = "buffers"
        if clinician.buffers_to == calendar_id:
            yield _writable(subject, provider)
    except CalendarError as exc:
        fix = _calendar_fix(exc, clinician.id, calendar_id)
        yield Finding(False, f"{subject} {step}", str(exc), fix)
    finally:
        provider.close()


def _writable(subject: str, provider: Provider) -> Finding:
    access = provider.write_access()
    if access.allowed is False:
        return Finding(
            False,
            f"{subject} buffers",
            f"caldaemon may not write here ({access.evidence})",
            "give this account permission to change events on the calendar, or set "
            "buffers_to to a calendar it may write",
        )
    said = access.evidence if access.allowed else f"{access.evidence}; tried at the first write"
    return Finding(True, f"{subject} buffers", f"caldaemon may write buffers here ({said})")


def _calendar_fix(exc: CalendarError, clinician: str, calendar: str) -> str:
    if isinstance(exc, AuthorizationError):
        return f"run: {exc.command}"
    if isinstance(exc, CalendarPaused):
        return "wait until the service lets caldaemon in again (hours), then run doctor again"
    if isinstance(exc, TransientError):
        return _OFFLINE
    return f"check calendar '{calendar}' of clinician '{clinician}' in the config"


def _notices(settings: Settings) -> Finding:
    """Where notices go: SMTP spoken up to the login, Graph's Mail.Send token, or the
    Maildir folder (no email configured)."""
    email = settings.notices.email
    if email is None:
        folder = settings.daemon.state_dir.expanduser() / "notices"
        return _folder("notices", folder, "the Maildir for notices", private=False)
    try:
        if email.via == "graph":
            return _graph_mail(settings)
        from caldaemon.notices.smtp import SmtpMailer

        mailer = SmtpMailer(email)
        mailer.probe()
    except ConfigError as exc:
        return Finding(False, "notices", exc.problems[0].message, "fix notices.email in the config")
    except DeliveryError as exc:
        fix = "fix notices.email.smtp in the config" if exc.permanent else _OFFLINE
        return Finding(False, "notices", str(exc), fix)
    tls = "STARTTLS" if mailer.smtp.security == "starttls" else "TLS"
    login = ", logged in" if mailer.smtp.username else ""
    return Finding(
        True,
        "notices",
        f"SMTP {mailer.smtp.host}:{mailer.port} answered EHLO; {tls} with a verified "
        f"certificate{login}; no mail sent",
    )


def _graph_mail(settings: Settings) -> Finding:
    from caldaemon.notices.graph import graph_mailer
    from caldaemon.providers.outlook.auth import MAIL_SCOPES

    mailer = graph_mailer(settings)
    user = mailer.calendar.user
    who = "the signed-in account" if user == "me" else user
    try:
        mailer.tokens.token(True, MAIL_SCOPES)
    except CalendarError as exc:
        fix = f"run: {exc.command}" if isinstance(exc, AuthorizationError) else _OFFLINE
        return Finding(False, "notices", f"sendMail as {who}: {exc}", fix)
    finally:
        mailer.close()
    return Finding(True, "notices", f"Microsoft Graph issued a Mail.Send token for {who}")


def _state(settings: Settings) -> Finding:
    """The state folder is private and usable; the database, when there is one, opens
    read-only and was not written by a newer caldaemon."""
    folder = settings.daemon.state_dir.expanduser()
    found = _folder("state", folder, "the state folder", private=True)
    if settings.daemon.state is not None and found.ok:
        return _database(settings, found)
    file = settings.state_file.expanduser()
    if not found.ok or not file.exists():
        return found
    from caldaemon.state.schema import SCHEMA_VERSION

    state = _open(
        file,
        f"move {file} away; the daemon starts a new one (buffers it placed are then "
        "adopted again by their markers)",
    )
    if isinstance(state, Finding):
        return state
    version = state.found_version or 0
    state.close()
    upgrade = "" if version == SCHEMA_VERSION else f"; the daemon upgrades it to {SCHEMA_VERSION}"
    return Finding(True, "state", f"{found.detail}; {file.name} opens (schema {version}{upgrade})")


def _database(settings: Settings, folder: Finding) -> Finding:
    """A PostgreSQL state (``daemon.state``): it answers, read-only, with the password
    from its file or variable, and was not written by a newer caldaemon. The folder is
    still checked first: tokens and Maildir notices live there."""
    from caldaemon.state.schema import SCHEMA_VERSION

    where = settings.state_location
    state = _open(
        where,
        "check daemon.state, the password in daemon.state_password_file or _env, and that "
        "the database server is up",
    )
    if isinstance(state, Finding):
        return state
    version = state.found_version or 0
    state.close()
    made = (
        "the daemon creates its tables"
        if version == 0
        else (f"schema {version}" + ("" if version == SCHEMA_VERSION else ", to be upgraded"))
    )
    return Finding(True, "state", f"{folder.detail}; the database {where} answers ({made})")


def _open(location: Path | PostgresLocation, fix: str) -> State | Finding:
    """The state opened read-only, or the failed check: ``fix`` unless it was written by
    a newer caldaemon."""
    from caldaemon.state import NewerStateError, State

    try:
        return State(location, read_only=True)
    except Error as exc:
        if isinstance(exc, NewerStateError):
            fix = "run the caldaemon that wrote it (or a newer one)"
        return Finding(False, "state", str(exc), fix)


def _folder(subject: str, folder: Path, what: str, *, private: bool) -> Finding:
    """A folder caldaemon writes into: there and writable (and ``private``: 0700, as
    DESIGN.md §7 wants it), or missing under a folder where it can be made."""
    if not folder.exists():
        existing = next((p for p in folder.parents if p.exists()), Path("/"))
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return Finding(True, subject, f"{what} {folder} will be made in {existing}")
        return Finding(
            False,
            subject,
            f"{what} {folder} cannot be made: {existing} is not a writable folder",
            f"create {folder} for the user caldaemon runs as, or choose another daemon.state_dir",
        )
    if not folder.is_dir():
        return Finding(
            False, subject, f"{what} {folder} is not a folder", "choose another daemon.state_dir"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return Finding(
            False,
            subject,
            f"{what} {folder} is not writable",
            f"make {folder} writable for the user caldaemon runs as",
        )
    mode = folder.stat().st_mode & 0o777
    if private and mode & 0o077:
        return Finding(
            False,
            subject,
            f"{what} {folder} can be read by others (mode {mode:o})",
            f"chmod 700 {folder}",
        )
    return Finding(
        True, subject, f"{what} {folder} is writable" + (" and private" if private else "")
    )
