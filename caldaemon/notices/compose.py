"""Notice composition: violations and operational problems → a kindly worded email.

Pure functions, no I/O: delivery lives in :mod:`.delivery`, the HTML part's look in
:mod:`.html`. A notice names times, kinds, levels and counts only (DESIGN.md §7):
``Violation.message`` is built from nothing else; event titles are added only when the
config opts in with ``privacy: full``, and ``privacy: minimal`` leaves dates and times out
too (weekdays and counts only, DESIGN.md §11).
"""

from __future__ import annotations

import hashlib
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
from caldaemon.notices import html as markup
from caldaemon.notices.html import Entry, Tone, plain
from caldaemon.text import clock, day_name, plural

PRODUCT = "caldaemon"
_MAX_TITLES = 5
_MAX_SUBJECT_PROBLEM = 70
_FOOTER = (
    "To change a limit, edit the rules in your caldaemon config file (YAML), then run "
    "`caldaemon check` to see your calendar with the new rules."
)
_SIGNATURE = "This notice was sent automatically by caldaemon."
_FULL_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Message:
    """One notice, ready for any mailer: strings, and the PNG the HTML part shows inline
    (the weekly report's picture), so the outbox can store it."""

    message_id: str
    to: str
    subject: str
    text: str
    html: str
    image: bytes | None = None

    @property
    def image_cid(self) -> str:
        """The Content-ID of the inline picture, as the HTML part's ``cid:`` URL names it
        (RFC 2392: an addr-spec, unique per message; derived from the Message-ID, so a
        re-sent notice is the same message byte for byte)."""
        return "week." + self.message_id.strip("<>")


def message_id(key: str) -> str:
    """A deterministic Message-ID (RFC 5322 §3.6.4): a notice re-sent after a crash carries
    the same id, so at-least-once delivery (DESIGN.md §6) lets mail clients and the Maildir
    mailer drop the duplicate."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{PRODUCT}>"


# -- violations ---------------------------------------------------------------------------

# How much of a notice names (DESIGN.md §7, §11), least first.
PRIVACY = ("minimal", "redacted", "full")
_MINIMAL_NOTE = (
    "Dates, times and client details are left out of this notice on purpose: "
    "run `caldaemon check` to see them."
)


@dataclass(frozen=True)
class _Line:
    fact: Fact
    status: str  # "new" | "open" | "resolved"

    @property
    def order(self) -> tuple[int, datetime, int, str, str]:
        """Within a day: what is still open in time order (errors and warnings told apart
        by their label, not by place), then what resolved."""
        head = self.fact.violations[0]
        return (
            self.status == "resolved",
            head.start,
            self.fact.severity is not Severity.ERROR,
            head.rule,
            self.fact.line,
        )

    @property
    def tone(self) -> Tone:
        if self.status == "resolved":
            return "resolved"
        return "error" if self.fact.severity is Severity.ERROR else "warning"


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
    grouped by day in the clinician's zone, in time order within a day.

    With ``privacy="redacted"`` (the default) nothing from event text is used, whatever
    ``titles`` holds; with ``privacy="full"`` each line names its events' titles
    (``titles`` maps an event key, as in ``Violation.events``, to its title); with
    ``privacy="minimal"`` the notice, its subject included, names only weekdays and
    counts: a date and a time can identify a client to someone who also sees the
    calendar (HIPAA counts such dates as identifiers, 45 CFR 164.514(b)(2)).
    """
    if privacy not in PRIVACY:
        raise ValueError(f"privacy must be 'minimal', 'redacted' or 'full', not {privacy!r}")
    if not (new or still_open or resolved):
        raise ValueError("a notice needs at least one violation, open or resolved")
    shown = dict(titles or {}) if privacy == "full" else {}
    tz = clinician.tz
    lines = sorted(
        _lines(new, "new", tz) + _lines(still_open, "open", tz) + _lines(resolved, "resolved", tz),
        key=lambda line: (line.fact.date, line.order),
    )
    crossed = [line.fact.date for line in lines if line.status != "resolved"]
    settled = [line.fact.date for line in lines if line.status == "resolved"]

    greeting = f"Hello {clinician.name}," if clinician.name else "Hello,"
    intro = _intro(len(crossed), len(settled))
    sections: list[tuple[str | None, list[Entry]]]
    if privacy == "minimal":
        note = _MINIMAL_NOTE
        sections = [(None, _weekdays(lines))]
        subject = _minimal_subject(len(crossed), len(settled))
    else:
        note = f"Times are in {tz.key} time."
        if privacy == "redacted":
            note += " Client details are left out of this notice on purpose."
        days: dict[date, list[Entry]] = {}
        for line in lines:
            days.setdefault(line.fact.date, []).append(_entry(line, shown))
        sections = [(day_name(day), items) for day, items in days.items()]
        subject = _violations_subject(crossed, settled)

    text = [greeting, "", intro, plain(note), ""]
    body = [markup.paragraph(greeting), markup.paragraph(intro, note)]
    for title, items in sections:
        if title:
            text.append(title)
            body.append(markup.heading(title))
        text += [f"  - {_said(item, by_day=title is not None)}" for item in items]
        text.append("")
        body.append(markup.entries(items))
    text += [plain(_FOOTER), "", _SIGNATURE, ""]
    body += [markup.paragraph(_FOOTER), markup.paragraph(_SIGNATURE, small=True)]
    return Message(
        message_id=message_id(key),
        to=to,
        subject=subject,
        text="\n".join(text),
        html=markup.document(subject, body),
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


_LABELS: dict[Tone, str] = {"error": "Error", "warning": "Warning", "resolved": "Resolved"}
# How the plain-text part marks a line, where the HTML part shows its label.
_TEXT_MARKS: dict[Tone, str] = {"error": "", "warning": "(warning) ", "resolved": "Resolved: "}


def _entry(line: _Line, titles: Mapping[str, str]) -> Entry:
    """A fact's line; titles (``privacy: full``) go between its words and its note."""
    events = dict.fromkeys(k for v in line.fact.violations for k in v.events)
    names = _titles(events, titles)
    if line.status == "resolved":
        return Entry("resolved", "Resolved", f"“{line.fact.line}”", names, " no longer applies.")
    note = " (mentioned before)" if line.status == "open" else ""
    return Entry(line.tone, _LABELS[line.tone], line.fact.line, names, note)


def _said(item: Entry, *, by_day: bool) -> str:
    """The plain-text line for ``item``: the label is a mark of the line (under a day's
    heading) or, for a weekday's counts, the weekday."""
    lead = _TEXT_MARKS[item.tone] if by_day else f"{item.label}: "
    return lead + item.text + (f" ({item.names})" if item.names else "") + item.note


def _weekdays(lines: Sequence[_Line]) -> list[Entry]:
    """``privacy: minimal``: one entry per weekday, in the order the days come, with
    counts only (the same weekday of another week counts on the same line)."""
    counts: dict[int, list[_Line]] = {}
    for line in lines:
        counts.setdefault(line.fact.date.weekday(), []).append(line)
    out = []
    for weekday, day_lines in counts.items():
        tones = [line.tone for line in day_lines]
        open_, warnings, resolved = (
            len(tones) - tones.count("resolved"),
            tones.count("warning"),
            tones.count("resolved"),
        )
        words = []
        if open_:
            said = f"{plural(open_, 'thing')} to look at"
            if warnings == open_:
                said += ", a warning" if warnings == 1 else ", all warnings"
            elif warnings:
                said += f", {warnings} of them {'a warning' if warnings == 1 else 'warnings'}"
            words.append(said)
        if resolved:
            words.append(
                f"{resolved if open_ else plural(resolved, 'thing')} back within your limits"
            )
        tone: Tone = "error" if "error" in tones else "warning" if open_ else "resolved"
        out.append(Entry(tone, _FULL_WEEKDAYS[weekday], "; ".join(words)))
    return out


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


def _minimal_subject(crossed: int, resolved: int) -> str:
    """Counts only: a subject shows on a locked phone and in every list of mail."""
    if crossed:
        subject = f"{PRODUCT}: {plural(crossed, 'thing')} to look at"
        return subject + (f"; {resolved} resolved" if resolved else "")
    return f"{PRODUCT}: {plural(resolved, 'thing')} resolved"


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
        _indent(plain(problem)),
        "",
        "What to do:",
        _indent(plain(advice)),
        "",
        _SIGNATURE,
        "",
    ]
    body = [
        markup.paragraph("Hello,"),
        markup.paragraph(intro),
        markup.heading("What happened"),
        markup.lines(problem),
        markup.heading("What to do"),
        markup.lines(advice),
        markup.paragraph(_SIGNATURE, small=True),
    ]
    return Message(
        message_id=message_id(key),
        to=to,
        subject=subject,
        text="\n".join(text),
        html=markup.document(subject, body),
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
        f"Run this command on the machine running caldaemon:\n`{error.command}`",
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


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.strip().splitlines())


# -- HTML and MIME -----------------------------------------------------------------------


def to_mime(message: Message, sender: str, *, now: datetime | None = None) -> EmailMessage:
    """The notice as multipart/alternative: plain text first, HTML last (RFC 2046 §5.1.4:
    the last part is the preferred one). A picture goes with the HTML part in a
    multipart/related (RFC 2387), which the HTML names by ``cid:`` (RFC 2392), so mail
    clients show it without fetching anything."""
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
    if message.image is not None:
        [html_part] = [p for p in mime.iter_parts() if p.get_content_type() == "text/html"]
        html_part.add_related(
            message.image,
            maintype="image",
            subtype="png",
            cid=f"<{message.image_cid}>",
            disposition="inline",
            filename="week.png",
        )
    return mime
