"""Reading an iCalendar file (RFC 5545) into its components, refusing what cannot be a
calendar with one line that says why. Nothing of the file's text is ever quoted: a line
may hold a client's name (DESIGN.md §7), so a reason is described ("a line that is not a
property, line 12"), never shown.

A file whose one component cannot be read (a Google export's VFREEBUSY whose period ends
before it starts) loses that component, with a warning, instead of refusing the whole
file (:func:`parse_file`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import icalendar

from caldaemon.errors import CalendarError
from caldaemon.providers.ics.lean import Plain

_LF = b"\n"
BOM = b"\xef\xbb\xbf"
# The first line may follow a UTF-8 byte-order mark, which icalendar skips too.
_BEGIN_VCALENDAR = re.compile(rb"(?im)^(?:\xef\xbb\xbf)?begin[ \t]*:[ \t]*vcalendar[ \t]*\r?$")
# BEGIN/END lines (not continuation lines: those start with a space or a tab).
_BEGIN_END = re.compile(rb"(?im)^(?:\xef\xbb\xbf)?(begin|end)[ \t]*:[ \t]*([^\r\n]*?)\r?$")
_BEGIN_VEVENT = re.compile(rb"(?im)^begin[ \t]*:[ \t]*vevent[ \t]*\r?$")
# One line with its end (CRLF, LF or CR).
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")
# What one calendar may hold before it is refused unread (DESIGN.md §5: bounded time and
# memory). A clinician's calendar, ten years of it, is a few MB and some 20,000 events;
# parsing takes about a second per 3,000 events and 10 KB of memory per event.
MAX_CALENDAR_BYTES = 64 * 1024 * 1024
MAX_VEVENTS = 50_000
# No calendar nests components deeper than a VCALENDAR > VTIMEZONE > STANDARD or a
# VEVENT > VALARM; a file that does is hostile, and icalendar walks components
# recursively (Python's recursion limit is 1000).
MAX_DEPTH = 12
# Components named by RFC 5545 and its extensions: a name not among them is the file's
# own text and is not repeated in a message.
_KNOWN = frozenset(
    {
        "VCALENDAR",
        "VEVENT",
        "VTODO",
        "VJOURNAL",
        "VFREEBUSY",
        "VTIMEZONE",
        "STANDARD",
        "DAYLIGHT",
        "VALARM",
        "VAVAILABILITY",
        "AVAILABLE",
        "PARTICIPANT",
        "VLOCATION",
        "VRESOURCE",
    }
)


@dataclass
class Parsed:
    """The calendars of a file, the components left out because they cannot be read
    (each a sentence), and the numbers of the VEVENTs among them (1 = the file's first
    VEVENT), so that the events that remain keep their numbers in warnings; and the
    VEVENTs read from their lines instead (:mod:`.lean`), which icalendar did not see."""

    calendars: list[icalendar.Component]
    skipped: list[str] = field(default_factory=list)
    dropped_events: frozenset[int] = frozenset()
    plain: tuple[tuple[int, Plain], ...] = ()  # VEVENTs read from their lines, by number


def blank(data: bytes) -> bool:
    """An empty file (0 bytes, whitespace, or only a byte-order mark)."""
    return not data.removeprefix(BOM).strip()


def parse(data: bytes, calendar: str, source: str) -> list[icalendar.Component]:
    """The top-level components of ``data`` that may hold events (normally its
    VCALENDARs); CalendarError with a one-line reason when the file as a whole is
    unusable. A blank file is an empty calendar."""
    if blank(data):
        return []
    check_limits(data, calendar, source)
    try:
        found = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError, …
        raise _unreadable(exc, data, calendar, source) from None
    return _calendars(found, data, calendar, source)


def parse_file(data: bytes, calendar: str, source: str) -> Parsed:
    """As :func:`parse`, except that a component that makes the whole file unreadable is
    left out (with a sentence in ``skipped``) when the rest then reads."""
    if blank(data):
        return Parsed([])
    check_limits(data, calendar, source)
    try:
        found = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:
        return _without_unreadable(data, calendar, source, _unreadable(exc, data, calendar, source))
    return Parsed(_calendars(found, data, calendar, source))


def _unreadable(exc: Exception, data: bytes, calendar: str, source: str) -> CalendarError:
    return CalendarError(calendar, source, f"not a readable iCalendar file ({why(exc, data)})")


def _without_unreadable(data: bytes, calendar: str, source: str, refusal: CalendarError) -> Parsed:
    """The file without the components that cannot be read alone, if the rest reads;
    else ``refusal`` is raised."""
    skipped: list[str] = []
    dropped: set[int] = set()
    kept: list[bytes] = []
    events = 0
    for block, first_line, what in _blocks(data):
        vevents = len(_BEGIN_VEVENT.findall(block))
        if what is not None:  # a component of its own: does it read alone?
            try:
                icalendar.Component.from_ical(block, multiple=True)
            except Exception as exc:
                numbers = range(events + 1, events + vevents + 1)
                if vevents and what == "VEVENT":
                    skipped.append(
                        f"skipped event {events + 1} (line {first_line}): "
                        f"it cannot be read ({why(exc)})"
                    )
                else:
                    article = "an" if what[:1] in "AEIOU" else "a"
                    named = f"{article} {what}" if what in _KNOWN else "a component"
                    skipped.append(
                        f"skipped {named} (line {first_line}): it cannot be read ({why(exc)})"
                    )
                dropped.update(numbers)
                events += vevents
                continue
        events += vevents
        kept.append(block)
    if not skipped:
        raise refusal
    rest = b"".join(kept)
    try:
        found = icalendar.Calendar.from_ical(rest, multiple=True)
        calendars = _calendars(found, rest, calendar, source)
    except Exception:
        raise refusal from None  # what made the file unreadable was not (only) those
    return Parsed(calendars, skipped, frozenset(dropped))


def _calendars(
    found: Sequence[icalendar.Component], data: bytes, calendar: str, source: str
) -> list[icalendar.Component]:
    calendars = [c for c in found if c.name == "VCALENDAR"]
    # icalendar silently drops a component that is never closed: a file cut short (a
    # download or a save that stopped half-way) would read as a calendar with fewer
    # events, and buffers of the missing sessions would be removed.
    if len(_BEGIN_VCALENDAR.findall(data)) > len(calendars):
        raise CalendarError(
            calendar,
            source,
            "the file is incomplete: a BEGIN:VCALENDAR "
            "(or a component inside it) has no matching END",
        )
    if calendars:
        return [c for c in found if c.name == "VCALENDAR" or c.walk("VEVENT")]
    if any(c.walk("VEVENT") for c in found):
        return list(found)  # bare VEVENTs without a VCALENDAR around them: read them
    if not found:
        raise CalendarError(calendar, source, "not an iCalendar file (no VCALENDAR in it)")
    names = sorted({str(c.name) for c in found})
    shown = ", ".join(n for n in names if n in _KNOWN) or "other components"
    raise CalendarError(
        calendar,
        source,
        f"not a calendar: the file holds only {shown} and no VCALENDAR (RFC 5545 §3.4)",
    )


def vevent_count(data: bytes) -> int:
    """How many VEVENTs ``data`` holds (its BEGIN:VEVENT lines)."""
    return len(_BEGIN_VEVENT.findall(data))


def check_limits(data: bytes, calendar: str, source: str) -> None:
    """Refuse, before parsing, what would take minutes or gigabytes to parse."""
    if len(data) > MAX_CALENDAR_BYTES:
        raise CalendarError(calendar, source, f"larger than {MAX_CALENDAR_BYTES // 2**20} MB")
    if vevent_count(data) > MAX_VEVENTS:
        raise CalendarError(
            calendar,
            source,
            f"more than {MAX_VEVENTS:,} events: not a clinician's calendar (or split it)",
        )
    depth = 0
    for match in _BEGIN_END.finditer(data):
        depth += 1 if match.group(1).lower() == b"begin" else -1
        if depth > MAX_DEPTH:
            raise CalendarError(
                calendar,
                source,
                f"components nested more than {MAX_DEPTH} deep: not a calendar",
            )


def _blocks(data: bytes) -> list[tuple[bytes, int, str | None]]:
    """``data`` cut into pieces, in order: each component directly inside a top-level
    one, and each top-level component other than a VCALENDAR, with its first line number
    and its name; and the text between them (name None)."""
    pieces: list[tuple[bytes, int, str | None]] = []
    current: list[bytes] = []
    start, depth, opened_at = 1, 0, 0
    name: str | None = None
    for number, line in enumerate(_LINE.findall(data), start=1):
        match = None if line[:1] in (b" ", b"\t") else _BEGIN_END.match(line.rstrip(b"\r\n"))
        word = match.group(1).lower() if match else b""
        if word == b"begin" and match:
            depth += 1
            value = match.group(2).strip().upper().decode("ascii", "replace")
            if name is None and (depth == 2 or (depth == 1 and value != "VCALENDAR")):
                if current:
                    pieces.append((b"".join(current), start, None))
                current, start, name, opened_at = [], number, value, depth
        current.append(line)
        if word == b"end":
            depth -= 1
            if name is not None and depth == opened_at - 1:
                pieces.append((b"".join(current), start, name))
                current, start, name = [], number + 1, None
    if current:
        pieces.append((b"".join(current), start, None))
    return pieces


# What icalendar's errors mean, in words that quote nothing of the file. Its messages
# often carry the value they could not read ("Expected time, got: …"), so only these
# known beginnings are used, never the rest of a message.
_REASONS = (
    ("content line could not be parsed", "a line that is not a property (NAME:value)"),
    ("start time is greater than end time", "a period that ends before it starts"),
    ("end encountered without", "an END without its BEGIN"),
    ("does not have a parent component", "a property outside any component"),
    ("invalid icalendar duration", "an unreadable duration"),
    ("expected", "an unreadable value"),
    ("wrong date", "an unreadable date"),
    ("wrong datetime", "an unreadable date and time"),
    ("wrong time", "an unreadable time"),
    ("invalid literal", "an unreadable number"),
    ("not enough values", "an incomplete value"),
    ("utc offset", "an unreadable UTC offset"),
    ("offset must be", "an unreadable UTC offset"),
    ("invalid recurrence", "an unreadable RRULE"),
    ("month must be", "a date that does not exist"),
    ("out of range", "a value out of range"),
)


def why(exc: BaseException, data: bytes | None = None) -> str:
    """One line saying what is wrong, for a person to read, quoting nothing of the file:
    a known kind of error in words, and the line where the value it quoted stands."""
    if type(exc) is KeyError and exc.args and isinstance(exc.args[0], str):
        name = exc.args[0]
        if re.fullmatch(r"[A-Z][A-Z-]{0,30}", name):
            return f"it has no {name}"
    text = (str(exc).strip().splitlines() or [""])[0]
    lowered = text.casefold()
    reason = next(
        (words for start, words in _REASONS if start in lowered),
        f"a value that cannot be read ({type(exc).__name__})",
    )
    line = _line_of(text, data)
    return f"{reason}, line {line}" if line else reason


def _line_of(text: str, data: bytes | None) -> int | None:
    """The line of ``data`` holding a value the message quotes (or names after a colon)."""
    if data is None:
        return None
    quoted = [m.group(2) for m in re.finditer(r"""(['"])(.+?)\1""", text)]
    after = text.rpartition(": ")[2]
    for candidate in [*quoted, after]:
        candidate = candidate.strip()
        if len(candidate) < 3:
            continue
        at = data.find(candidate.encode("utf-8", "surrogateescape"))
        if at >= 0:
            return data.count(_LF, 0, at) + 1
    return None
