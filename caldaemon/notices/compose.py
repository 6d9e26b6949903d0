"""Notice composition: violations and operational problems → a kindly worded email.

Pure functions, no I/O: delivery lives in :mod:`caldaemon.mail`. A notice names times,
kinds, levels and counts only (DESIGN.md §7): ``Violation.message`` is built from nothing
else, and event titles are added only when the config opts in with ``privacy: full``.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from caldaemon.config import ClinicianSettings
from caldaemon.core.facts import Fact, facts
from caldaemon.errors import AuthorizationError, CalendarPaused, ConfigError
from caldaemon.model import Severity, Violation
from caldaemon.text import clock, day_name, plural

PRODUCT = "caldaemon"
_MAX_TITLES = 5
_MAX_SUBJECT_PROBLEM = 70
_FOOTER = (
    "To change a limit, edit the rules in your caldaemon config file (YAML), then run "
    "`caldaemon check` to see your calendar with the new rules."
)
_SIGNATURE = "This notice was sent automatically by caldaemon."


@dataclass(frozen=True)
class Message:
    """One notice, ready for any mailer. Plain strings only, so the outbox can store it."""

    message_id: str
    to: str
    subject: str
    text: str
    html: str


def message_id(key: str) -> str:
    """A deterministic Message-ID (RFC 5322 §3.6.4): a notice re-sent after a crash carries
    the same id, so at-least-once delivery (DESIGN.md §6) lets mail clients and the Maildir
    mailer drop the duplicate."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{PRODUCT}>"


# -- violations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    fact: Fact
    status: str  # "new" | "open" | "resolved"

    @property
    def order(self) -> tuple[int, int, datetime, str, str]:
        head = self.fact.violations[0]
        return (
            self.status == "resolved",
            self.fact.severity is not Severity.ERROR,
            head.start,
            head.rule,
            self.fact.line,
        )


def _lines(violations: Sequence[Violation], status: str, tz: ZoneInfo) -> list[_Line]:
    return [_Line(fact, status) for fact in facts(violations, tz)]


def violations_message(
    *,
    clinician: ClinicianSettings,
    new: Sequence[Violation],
    still_open: Sequence[Violation] = (),
    resolved: Sequence[Violation] = (),
    privacy: str = "redacted",
    titles: Mapping[str, str] | None = None,
    key: str,
    to: str,
) -> Message:
    """An immediate notice (``new`` only) or a digest (new, still open and resolved),
    grouped by day in the clinician's zone, errors before warnings within a day.

    With ``privacy="redacted"`` (the default) nothing from event text is used, whatever
    ``titles`` holds; with ``privacy="full"`` each line names its events' titles
    (``titles`` maps an event key, as in ``Violation.events``, to its title).
    """
    if privacy not in ("redacted", "full"):
        raise ValueError(f"privacy must be 'redacted' or 'full', not {privacy!r}")
    if not (new or still_open or resolved):
        raise ValueError("a notice needs at least one violation, open or resolved")
    shown = dict(titles or {}) if privacy == "full" else {}
    tz = clinician.tz
    lines = (
        _lines(new, "new", tz) + _lines(still_open, "open", tz) + _lines(resolved, "resolved", tz)
    )
    crossed = [line.fact for line in lines if line.status != "resolved"]
    settled = [line.fact for line in lines if line.status == "resolved"]
    days: dict[date, list[_Line]] = {}
    for line in sorted(lines, key=lambda item: (item.fact.date, item.order)):
        days.setdefault(line.fact.date, []).append(line)

    greeting = f"Hello {clinician.name}," if clinician.name else "Hello,"
    intro = _intro(len(crossed), len(settled))
    zone = f"Times are in {clinician.tz.key} time."
    if privacy == "redacted":
        zone += " Client details are left out of this notice on purpose."

    text = [greeting, "", intro, zone, ""]
    body = [f"<p>{_e(greeting)}</p>", f"<p>{_e(intro)}<br>{_e(zone)}</p>"]
    for day, day_lines in days.items():
        text.append(day_name(day))
        body.append(f"<h3>{_e(day_name(day))}</h3>")
        body.append("<ul>")
        for line in day_lines:
            before, after = _sentence(line)
            names = _titles(dict.fromkeys(k for v in line.fact.violations for k in v.events), shown)
            text.append(f"  - {before}" + (f" ({names})" if names else "") + after)
            body.append(
                f"<li>{_e(before)}"
                + (f" <i>({_e(names)})</i>" if names else "")
                + f"{_e(after)}</li>"
            )
        text.append("")
        body.append("</ul>")
    text += [_FOOTER, "", _SIGNATURE, ""]
    body += [f"<p>{_e(_FOOTER)}</p>", f"<p><small>{_e(_SIGNATURE)}</small></p>"]
    subject = _violations_subject([f.date for f in crossed], [f.date for f in settled])
    return Message(
        message_id=message_id(key),
        to=to,
        subject=subject,
        text="\n".join(text),
        html=_document(subject, body),
    )


def _intro(crossed: int, resolved: int) -> str:
    parts = []
    if crossed:
        places = "one place" if crossed == 1 else f"{crossed} places"
        parts.append(
            f"caldaemon noticed {places} where your calendar goes past the "
            "boundaries you set. This is only a heads-up, so you can decide what, "
            "if anything, you would like to change."
        )
    if resolved:
        which = "One boundary" if resolved == 1 else f"{resolved} boundaries"
        parts.append(
            f"{which} mentioned earlier {'is' if resolved == 1 else 'are'} back within your limits."
        )
    return " ".join(parts)


def _sentence(line: _Line) -> tuple[str, str]:
    """The line's text before and after the place where titles go (``privacy: full``)."""
    message = line.fact.line
    if line.status == "resolved":
        return f"Resolved: “{message}”", " no longer applies."
    if line.fact.severity is not Severity.ERROR:
        message = f"(warning) {message}"
    return message, " (mentioned before)" if line.status == "open" else ""


def _titles(events: Iterable[str], titles: Mapping[str, str]) -> str:
    found = [titles[key] for key in events if titles.get(key)]
    more = len(found) - _MAX_TITLES
    return ", ".join(found[:_MAX_TITLES]) + (f" and {more} more" if more > 0 else "")


def _violations_subject(crossed: Sequence[date], resolved: Sequence[date]) -> str:
    if crossed:
        count = f"{len(crossed)} {'boundary' if len(crossed) == 1 else 'boundaries'}"
        subject = f"{PRODUCT}: {count} crossed {_when(crossed)}"
        return subject + (f"; {len(resolved)} resolved" if resolved else "")
    count = "" if len(resolved) == 1 else f"{len(resolved)} "
    return f"{PRODUCT}: {count}resolved {_when(resolved)}"


def _when(days: Sequence[date]) -> str:
    first, last = min(days), max(days)
    if first == last:
        return f"on {day_name(first)}"
    return f"between {day_name(first)} and {day_name(last)}"


# -- operational notices -----------------------------------------------------------------


def operational_message(
    *, problem: str, advice: str, key: str, to: str, clinician: str | None
) -> Message:
    """A short, actionable notice for whoever runs caldaemon: what is wrong, what to do."""
    lines = problem.strip().splitlines() or ["a problem"]
    first = lines[0].split(". ")[0].rstrip(".:")
    if len(first) > _MAX_SUBJECT_PROBLEM:
        first = first[: _MAX_SUBJECT_PROBLEM - 1].rstrip() + "…"
    who = f" ({clinician})" if clinician else ""
    subject = f"{PRODUCT}: action needed{who}: {first}"
    scope = f" with the calendars of clinician '{clinician}'" if clinician else ""
    intro = f"caldaemon needs a hand{scope}."
    text = [
        "Hello,",
        "",
        intro,
        "",
        "What happened:",
        _indent(problem),
        "",
        "What to do:",
        _indent(advice),
        "",
        _SIGNATURE,
        "",
    ]
    body = [
        "<p>Hello,</p>",
        f"<p>{_e(intro)}</p>",
        "<p><b>What happened:</b></p>",
        _block(problem),
        "<p><b>What to do:</b></p>",
        _block(advice),
        f"<p><small>{_e(_SIGNATURE)}</small></p>",
    ]
    return Message(
        message_id=message_id(key),
        to=to,
        subject=subject,
        text="\n".join(text),
        html=_document(subject, body),
    )


def config_problem(error: ConfigError) -> tuple[str, str]:
    """(problem, advice) for a config file that became invalid on reload."""
    return (
        f"The changed config file has {plural(len(error.problems), 'problem')}. "
        f"caldaemon keeps using the last valid version until it is fixed:\n"
        f"{error.message}",
        "Fix the lines above, then run `caldaemon validate` to check the file; "
        "caldaemon reloads it by itself once it is valid.",
    )


def authorization_problem(error: AuthorizationError) -> tuple[str, str]:
    """(problem, advice) for an authorization that expired or was revoked."""
    return (
        f"Calendar '{error.calendar}' needs to be authorized again. Until then "
        "caldaemon can neither read it nor place buffers on it.",
        f"Run this command on the machine running caldaemon:\n{error.command}",
    )


def paused_problem(error: CalendarPaused) -> tuple[str, str]:
    """(problem, advice) for a calendar the service refuses for a while (Google's usage
    limits put a calendar into read-only mode for hours)."""
    return (
        f"Calendar '{error.calendar}' is refused by its service for now "
        f"({error.reason}). caldaemon pauses it and tries again in an hour; meanwhile it "
        "neither reads it nor places buffers on it.",
        "Nothing needs doing unless it lasts: then check the account's usage limits "
        "(for Google: the Calendar API quota of the project in Google Cloud console).",
    )


def unreachable_problem(calendar: str, since: datetime) -> tuple[str, str]:
    """(problem, advice) for a calendar that could not be read for over an hour. The
    calendar's URL is left out: private feed URLs carry access tokens."""
    when = f"{day_name(since.date())}, {clock(since)} {since.tzname() or ''}".rstrip()
    return (
        f"Calendar '{calendar}' could not be read since {when}.",
        "Check the network, the calendar's address and that the account still exists; "
        "`caldaemon check` shows the exact error.",
    )


def _block(text: str) -> str:
    """Lines kept as they are (a command must survive intact), long ones still wrapped."""
    return f'<p style="white-space: pre-wrap; font-family: monospace">{_e(text.strip())}</p>'


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.strip().splitlines())


# -- HTML and MIME -----------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _document(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8">',
            f"<title>{_e(title)}</title></head>",
            "<body>",
            *body,
            "</body></html>",
            "",
        ]
    )


def to_mime(message: Message, sender: str, *, now: datetime | None = None) -> EmailMessage:
    """The notice as multipart/alternative: plain text first, HTML last (RFC 2046 §5.1.4:
    the last part is the preferred one)."""
    mime = EmailMessage()
    mime["Message-ID"] = message.message_id
    mime["Date"] = format_datetime(now or datetime.now(UTC))
    mime["From"] = Address(display_name=PRODUCT, addr_spec=sender)
    mime["To"] = message.to
    mime["Subject"] = message.subject
    # RFC 3834 §5: automatic responders (vacation replies) must not answer this message.
    mime["Auto-Submitted"] = "auto-generated"
    # Exchange ignores RFC 3834 for out-of-office replies; this is its own opt-out.
    mime["X-Auto-Response-Suppress"] = "All"
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime
