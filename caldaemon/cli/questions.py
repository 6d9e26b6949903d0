"""The questions of ``caldaemon init`` (DESIGN.md §12), each with the answer it offers;
:mod:`caldaemon.config.answers` checks what is typed, :mod:`caldaemon.config.template`
writes the file. Imported only when ``init`` runs: the config's models take a second to
import, which ``caldaemon --help`` should not wait for.

click's own prompts are enough: ``value_proc`` asks again with the message of a wrong
answer, which is all the dialogue needs; a prompt library would add a dependency for menus
that a handful of short questions do not need."""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import click

from caldaemon.config import answers as parse
from caldaemon.config.init_answers import Answers, CalendarAnswer, ClinicianAnswer, SmtpAnswer
from caldaemon.errors import Error
from caldaemon.providers.registry import PROVIDERS
from caldaemon.text import WEEKDAYS

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Dialogue:
    """Questions with defaults; without a terminal's answers (``--defaults``) each
    question takes its default, checked by the same parser as a typed answer."""

    interactive: bool
    folder: Path  # the config's folder: where relative paths and default files go
    cwd: Path

    def ask(self, question: str, check: Callable[[str], T], default: str | None = None) -> T:
        def value_proc(text: str) -> T:
            try:
                return check(text)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None

        if not self.interactive:
            if default is None:
                raise Error(f"--defaults has no answer for: {question}")
            return value_proc(default)
        value: T = click.prompt(
            question, default=default, value_proc=value_proc, show_default=bool(default)
        )
        return value

    def choose(self, question: str, choices: tuple[str, ...], default: str) -> str:
        if not self.interactive:
            return default
        choice: str = click.prompt(
            question, type=click.Choice(choices, case_sensitive=False), default=default
        )
        return choice.lower()

    def section(self, title: str) -> None:
        if self.interactive:
            click.echo(f"\n{title}")

    def yes(self, question: str, default: bool) -> bool:
        return click.confirm(question, default=default) if self.interactive else default

    def path(self, question: str, default: str) -> str:
        return self.ask(question, lambda text: parse.absolute(text, self.cwd), default)


Keys = tuple[tuple[str, str, str], ...]


@dataclasses.dataclass(frozen=True)
class Asking:
    """What a provider's questions know: the calendar's id, the keys given for the last
    calendar of the same provider (offered again: a practice's clinicians share one app,
    one key file), and the clinician's address (the mailbox or user an app acts for)."""

    calendar_id: str
    earlier: Mapping[str, str]
    owner: str | None


def _ics(d: Dialogue, a: Asking) -> tuple[Keys, bool]:
    source = d.ask(
        "Path of the .ics file, or the https:// address of a feed",
        lambda text: parse.feed_url(text) if parse.is_feed(text) else parse.absolute(text, d.cwd),
        str(d.folder / f"{a.calendar_id}.ics"),
    )
    if not parse.is_feed(source):
        comment = "A calendar file (while missing: an empty calendar)."
        return (("path", source, comment),), False
    keys = [("url", source, "A read-only feed: it can receive no buffers.")]
    username = d.ask("User name for the feed", parse.optional, "none")
    if username:
        keys.append(("username", username, ""))
        secret = d.path("File holding the feed's password", str(d.folder / "feed-password"))
        keys.append(("password_file", secret, "A file holding the password, and nothing else."))
    return tuple(keys), False


def _is_service_account(path: str) -> bool:
    """Whether ``path`` holds a service account's key (its JSON says so: "type":
    "service_account"); a file not there yet is taken for an OAuth client."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return bool(json.loads(Path(path).read_text()).get("type") == "service_account")
    return False


def _google(d: Dialogue, a: Asking) -> tuple[Keys, bool]:
    calendar = d.ask("Google calendar (primary, or a calendar's id)", parse.required, "primary")
    client = d.path(
        "OAuth client file from Google Cloud (or a service account key)",
        a.earlier.get("credentials", str(d.folder / "google-client.json")),
    )
    keys = [("calendar", calendar, "primary: the main calendar; else a calendar's id.")]
    if not _is_service_account(client):
        keys.append(("credentials", client, "The OAuth client (then: caldaemon auth google)."))
        return tuple(keys), True
    # Domain-wide delegation: the key acts as a Workspace user, nobody signs in
    # (https://developers.google.com/identity/protocols/oauth2/service-account).
    subject = d.ask(
        "A service account key: the Workspace address whose calendar it acts for",
        parse.email,
        a.owner,
    )
    keys.append(("credentials", client, "A service account's key: nobody signs in."))
    keys.append(("subject", subject, "The Workspace user it acts for (domain-wide delegation)."))
    return tuple(keys), False


# Client credentials need the organisation's own tenant: Microsoft's shared authorities
# do not issue app-only tokens (learn.microsoft.com/entra/identity-platform/
# v2-oauth2-client-creds-grant-flow).
_SHARED_TENANTS = frozenset({"common", "organizations", "consumers"})


def _outlook(d: Dialogue, a: Asking) -> tuple[Keys, bool]:
    tenant = d.ask(
        "Microsoft 365 tenant (your organisation's domain or tenant id, or common)",
        parse.required,
        a.earlier.get("tenant", "common"),
    )
    client_id = d.ask(
        "Application (client) id of the app registered in Entra ID",
        parse.required,
        a.earlier.get("client_id"),
    )
    auth = "device_code"
    if tenant.lower() not in _SHARED_TENANTS:
        auth = d.choose(
            "Who signs in: a person, once, with a code (device_code), or the app itself "
            "with its secret, for a whole practice (client_credentials)",
            ("device_code", "client_credentials"),
            a.earlier.get("auth", "device_code"),
        )
    signs_in = "then: caldaemon auth outlook" if auth == "device_code" else "no sign-in"
    keys = [("tenant", tenant, ""), ("client_id", client_id, f"The app's id ({signs_in}).")]
    if auth == "client_credentials":
        mailbox = d.ask("The mailbox whose calendar this is (its address)", parse.email, a.owner)
        secret = d.path(
            "File holding the app's client secret",
            a.earlier.get("client_secret_file", str(d.folder / "outlook-client-secret")),
        )
        keys += [
            ("auth", auth, "The app signs in as itself: nobody signs in."),
            ("user", mailbox, "The mailbox it acts for."),
            ("client_secret_file", secret, "A file holding the secret, and nothing else."),
        ]
    calendar = d.ask("Calendar name (none for the main calendar)", parse.optional, "none")
    if calendar:
        keys.append(("calendar", calendar, "By its name or id."))
    return tuple(keys), auth == "device_code"


def _caldav(d: Dialogue, a: Asking) -> tuple[Keys, bool]:
    url = d.ask("Address of the CalDAV server or calendar", parse.http_url)
    keys = [("url", url, "")]
    calendar = d.ask(
        "Calendar on that server, by name (none if the address is the calendar)",
        parse.optional,
        "none",
    )
    if calendar:
        keys.append(("calendar", calendar, ""))
    username = d.ask("User name", parse.optional, "none")
    if username:
        keys.append(("username", username, ""))
        secret = d.path("File holding the password", str(d.folder / f"{a.calendar_id}-password"))
        keys.append(("password_file", secret, "A file holding the password, and nothing else."))
    return tuple(keys), False


# Each provider's questions, in the order the dialogue offers them; each gives the keys
# and whether someone signs in with `caldaemon auth` afterwards.
PROVIDER_QUESTIONS: dict[str, Callable[[Dialogue, Asking], tuple[Keys, bool]]] = {
    "ics": _ics,
    "google": _google,
    "outlook": _outlook,
    "caldav": _caldav,
}


def _calendars(
    d: Dialogue, owner: str | None, earlier: tuple[CalendarAnswer, ...]
) -> tuple[CalendarAnswer, ...]:
    calendars: list[CalendarAnswer] = []
    while True:
        d.section("A calendar")
        taken = {c.id for c in calendars}
        provider = d.choose(
            "Calendar provider",
            tuple(PROVIDER_QUESTIONS),
            "ics",
        )

        def new_id(text: str, taken: set[str] = taken) -> str:
            value = parse.ident(text)
            if value in taken:
                raise ValueError(f"'{value}' is the id of another calendar already")
            return value

        default_id = "work" if not calendars else f"calendar{len(calendars) + 1}"
        calendar_id = d.ask("A short id for this calendar", new_id, default_id)
        same = [c for c in (*earlier, *calendars) if c.provider == provider]
        given = {key: value for key, value, _ in same[-1].keys} if same else {}
        keys, signs_in = PROVIDER_QUESTIONS[provider](d, Asking(calendar_id, given, owner))
        use = d.choose(
            "Does it hold client sessions, or does it only block time (busy)?",
            ("sessions", "busy"),
            "sessions",
        )
        calendars.append(CalendarAnswer(calendar_id, provider, keys, use, signs_in))
        if not d.yes("Add another calendar?", default=False):
            return tuple(calendars)


def _buffers_to(d: Dialogue, calendars: tuple[CalendarAnswer, ...]) -> str | None:
    writable = [
        c.id
        for c in calendars
        if not PROVIDERS[c.provider].settings.read_only({key: v for key, v, _ in c.keys})
    ]
    if not writable:
        click.echo("None of these calendars can receive buffers (a feed is read-only):")
        click.echo("caldaemon will report, and place no buffers.")
        return None
    sessions = [c for c in writable if c in {x.id for x in calendars if x.use == "sessions"}]

    def target(text: str) -> str | None:
        if text.strip().lower() in parse.NONE_WORDS:
            return None
        if text.strip() not in writable:
            raise ValueError(f"choose one of: {', '.join(writable)} (or none)")
        return text.strip()

    return d.ask(
        f"Which calendar receives buffer blocks ({', '.join(writable)}, or none to only report)",
        target,
        (sessions or writable)[0],
    )


def _smtp(d: Dialogue, email: str) -> SmtpAnswer:
    domain = email.partition("@")[2]
    sender = d.ask("Sender address of the notices", parse.email, email)
    host = d.ask("SMTP server", parse.required, f"smtp.{domain}")
    security = d.choose(
        "Connection security",
        ("starttls", "tls"),
        "starttls",
    )
    port = d.ask("Port", parse.port, "587" if security == "starttls" else "465")
    username = d.ask("SMTP user name", parse.optional, "none")
    password = None
    if username:
        password = d.path("File holding the SMTP password", str(d.folder / "smtp-password"))
    return SmtpAnswer(sender, host, port, security, username, password)


def _user_id() -> str:
    """The login name when it can be an id; else ``me``."""
    with contextlib.suppress(OSError, KeyError):  # no login name, no passwd entry
        name = re.sub(r"[^A-Za-z0-9_.-]", "", getpass.getuser()).lstrip("._-")
        if name:
            return name
    return "me"


def guess_timezone() -> str:
    """The machine's zone as tzlocal tells it (TZ, /etc/timezone, /etc/localtime, …),
    when it is an IANA name; else UTC."""
    import tzlocal

    # tzlocal raises when the system names no zone or one it cannot find.
    with contextlib.suppress(LookupError, ValueError, OSError):
        name = tzlocal.get_localzone_name()
        if name:
            return parse.zone(name)
    return "UTC"


def _clinician(d: Dialogue, earlier: tuple[ClinicianAnswer, ...]) -> ClinicianAnswer:
    """The person answering first; then, for a practice, each other clinician."""
    taken = {c.id for c in earlier}

    def new_id(text: str) -> str:
        value = parse.ident(text)
        if value in taken:
            raise ValueError(f"'{value}' is the id of another clinician already")
        return value

    if not earlier:
        name = d.ask("Your name, as notices address you", parse.optional, "none")
        clinician_id = d.ask("A short id for you (letters, digits, - _ .)", new_id, _user_id())
        email = d.ask("Your email address, where notices go", parse.optional_email, "none")
    else:
        d.section(f"Clinician {len(earlier) + 1}")
        name = d.ask("Their name, as notices address them", parse.optional, "none")
        clinician_id = d.ask(
            "A short id for them (letters, digits, - _ .)", new_id, f"clinician{len(earlier) + 1}"
        )
        email = d.ask("Their email address, where notices go", parse.optional_email, "none")
    calendars = _calendars(d, email, tuple(c for e in earlier for c in e.calendars))
    buffers_to = _buffers_to(d, calendars)
    return ClinicianAnswer(clinician_id, name, email, calendars, buffers_to)


def ask_answers(d: Dialogue) -> Answers:
    zone = d.ask("Your time zone", parse.zone, guess_timezone())
    clinicians = [_clinician(d, ())]
    while d.yes("Add another clinician (a group practice)?", default=False):
        clinicians.append(_clinician(d, tuple(clinicians)))
    d.section("Your boundaries")
    days = d.ask("Working days", parse.working_days, "mon-fri")
    hours = d.ask(
        "Working hours on those days (one range, or several like 09:00-12:00, 13:00-17:00)",
        parse.working_hours,
        "09:00-17:00",
    )
    free = [day for day in WEEKDAYS if day not in parse.weekdays(days)]
    off = d.ask("Days off, kept free of sessions", parse.days_off, ",".join(free) or "none")
    per_day = d.ask("At most how many sessions a day (none for no limit)", parse.limit, "6")
    per_week = d.ask("At most how many sessions a week", parse.limit, "22")
    high_day = d.ask("At most how many high-intensity sessions a day", parse.limit, "2")
    high_week = d.ask("At most how many high-intensity sessions a week", parse.limit, "8")
    latest = d.ask(
        "Latest start of a high-intensity session (none for any time)",
        parse.clock,
        "15:00",
    )
    grounding = d.ask(
        "Grounding time after a high-intensity session (none for no buffer)",
        parse.duration,
        "15m",
    )
    notes = d.ask("Notes time after a moderate session", parse.duration, "10m")
    supervision = d.ask("Supervision at least every (none if not checked)", parse.duration, "14d")
    d.section("Notices")
    how = d.choose(
        "Notices by email, or as files in a Maildir folder",
        ("email", "maildir"),
        "maildir",
    )
    smtp = None
    if how == "email":
        first = clinicians[0]
        email = first.email or d.ask("Your email address, where notices go", parse.email)
        clinicians[0] = dataclasses.replace(first, email=email)
        smtp = _smtp(d, email)
    return Answers(
        timezone=zone,
        clinicians=tuple(clinicians),
        working_days=days,
        working_hours=hours,
        days_off=off,
        max_sessions_per_day=per_day,
        max_sessions_per_week=per_week,
        high_per_day=high_day,
        high_per_week=high_week,
        high_latest_start=latest,
        grounding=grounding,
        notes=notes,
        supervision_every=supervision,
        smtp=smtp,
    )
