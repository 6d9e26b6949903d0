"""The common VEVENT read straight from its content lines (issue 15: ``check`` at the
floor): one that belongs to no series, whose times are plain dates, UTC, floating or in
an IANA zone, and whose lines hold nothing unusual. Parsing it with icalendar builds a
component, a typed value per property and a recurrence series of one, only for
caldaemon to read a dozen of them back; reading the lines costs a fraction of that.

The reading must never change a result, so it follows icalendar 7's own parser step for
step (unfolding, the split of a line into name, parameters and value, TEXT unescaping,
the values it takes verbatim) and gives up, returning None, on anything it does not
handle exactly as icalendar and recurring-ical-events would: the block then goes through
the icalendar path unchanged. tests/providers/ics/test_lean_reader.py holds the two
paths to equal events and warnings on the corpus, the practice files and generated
VEVENTs."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from icalendar.parser import split_on_unescaped_comma
from icalendar.parser.content_line import UFOLD
from icalendar.timezone import tzp
from recurring_ical_events.util import time_span_contains_event

from caldaemon.model import Event, Window
from caldaemon.providers.base import OWNER_PROPERTY

# One content line (RFC 5545 §3.1): a name, parameters whose values are quoted (and may
# then hold ':' and ';', §3.1.1) or plain, and the value after the first colon outside
# quotes. Stricter than icalendar, which also takes spaces around '=' and ';' and
# backslashes in parameters: such a line is left to icalendar.
_PARAMETER_VALUE = r'(?:"[^"\\]*"|[^";:,\\ \t](?:[^";:,\\]*[^";:,\\ \t])?)'
_CONTENT = re.compile(
    rf"([A-Za-z0-9-]+)((?:;[A-Za-z0-9-]+={_PARAMETER_VALUE}(?:,{_PARAMETER_VALUE})*)*):(.*)",
    re.DOTALL,
)
_PARAMETERS = re.compile(r';([A-Za-z0-9-]+)=((?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*)')
# TEXT unescaping as icalendar does it (RFC 5545 §3.3.11: \\ \; \, \n \N, and \:).
_ESCAPE = re.compile(r"\\([\\,;:nN])")
_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_DATE_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})(Z?)")
# RFC 5545 §3.3.6, as icalendar's DURATION_REGEX with ASCII digits (and few enough of
# them that timedelta cannot overflow).
_DURATION = re.compile(
    r"([-+]?)P(?:([0-9]{1,6})W)?(?:([0-9]{1,6})D)?"
    r"(?:T(?:([0-9]{1,6})H)?(?:([0-9]{1,6})M)?(?:([0-9]{1,9})S)?)?"
)
# Bytes that are not UTF-8, kept as surrogates when the file is decoded: icalendar then
# decodes the whole file with U+FFFD in their place, after which a line folded inside a
# multi-byte character no longer joins into it.
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_SEQUENCE = re.compile(r"[0-9]{1,9}")
# An IANA zone name, nothing that icalendar would clean, guess or look up elsewhere.
_ZONE_NAME = re.compile(r"[A-Za-z0-9/_+-]+")

# What makes a VEVENT part of a series (RFC 5545 §3.8.4.4, §3.8.5), caldaemon's own
# marker (its etag is computed from icalendar's values) and components inside it.
_REFUSED = frozenset(
    {"RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID", OWNER_PROPERTY, "BEGIN", "END"}
)
# Properties read here: each may appear once (icalendar makes a list of a repeated one,
# which caldaemon would then read as text). CATEGORIES may repeat (§3.8.1.2).
_READ = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "SUMMARY",
        "DESCRIPTION",
        "STATUS",
        "TRANSP",
        "COLOR",
        "X-MICROSOFT-CDO-BUSYSTATUS",
        # recurring-ical-events reads it of every component (a series of one too).
        "SEQUENCE",
    }
)
# Properties that nothing reads from a VEVENT that belongs to no series: icalendar keeps
# a value it cannot read as vBroken, in a VEVENT without raising. Any other property name
# (a component-specific one of another kind, or one from a later RFC) goes to icalendar.
_IGNORED = frozenset(
    {
        "DTSTAMP",
        "CREATED",
        "LAST-MODIFIED",
        "PRIORITY",
        "CLASS",
        "LOCATION",
        "ORGANIZER",
        "ATTENDEE",
        "URL",
        "COMMENT",
        "CONTACT",
        "RESOURCES",
        "CATEGORIES",
    }
)


@dataclass(frozen=True, slots=True)
class Plain:
    """What caldaemon reads of a VEVENT that belongs to no series: its times as
    recurring-ical-events gives them (a missing DTEND is DTSTART, or the next day for a
    DATE; RFC 5545 §3.6.1) and its text as icalendar gives it."""

    uid: str
    written_uid: str  # as the file writes it (escaped)
    start: date | datetime
    end: date | datetime
    title: str
    description: str
    categories: tuple[str, ...]
    color: str | None
    cancelled: bool
    busy: bool
    out_of_office: bool
    attendees: bool


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def _zone(name: str) -> tzinfo | None:
    """The zone icalendar gives a TZID that names an IANA zone, else None."""
    if not _ZONE_NAME.fullmatch(name) or name not in _zones():
        return None
    return tzp.timezone(name)


def unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _parameters(text: str) -> dict[str, str] | None:
    """The parameters caldaemon reads (TZID, VALUE), unquoted; None when one repeats."""
    found: dict[str, str] = {}
    for name, value in _PARAMETERS.findall(text):
        name = name.upper()
        if name in ("TZID", "VALUE"):
            if name in found:
                return None
            found[name] = value[1:-1] if value[:1] == '"' and value[-1:] == '"' else value
    return found


def _when(parameters: str, value: str) -> date | datetime | None:
    """A DATE or DATE-TIME (RFC 5545 §3.3.4, §3.3.5) as icalendar reads it; None for any
    other form (a DATE with a TZID, which icalendar makes a local midnight; a UTC time
    with a TZID; a PERIOD; an unknown zone)."""
    params = _parameters(parameters) if parameters else {}
    if params is None:
        return None
    kind, zone_name = params.get("VALUE"), params.get("TZID")
    try:
        if len(value) == 8 and kind in (None, "DATE") and zone_name is None:
            found = _DATE.fullmatch(value)
            return date(*map(int, found.groups())) if found else None
        moment = _DATE_TIME.fullmatch(value)
        if moment is None or kind not in (None, "DATE-TIME"):
            return None
        year, month, day, hour, minute, second, utc = moment.groups()
        naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None  # a day that does not exist: icalendar says so
    if zone_name is not None:
        zone = _zone(zone_name)
        return None if zone is None or utc else tzp.localize(naive, zone)
    return tzp.localize_utc(naive) if utc else naive


def _duration(parameters: str, value: str) -> timedelta | None:
    if parameters:
        return None
    found = _DURATION.fullmatch(value)
    if found is None:
        return None
    span = timedelta(
        weeks=int(found.group(2) or 0),
        days=int(found.group(3) or 0),
        hours=int(found.group(4) or 0),
        minutes=int(found.group(5) or 0),
        seconds=int(found.group(6) or 0),
    )
    return -span if found.group(1) == "-" else span


def read(text: str) -> Plain | None:
    """The VEVENT block ``text`` (from its BEGIN line to its END line) read from its lines,
    or None when it must go through icalendar."""
    # A lone CR is no line end to icalendar (RFC 5545 §3.1 says CRLF).
    if text.count("\r") != text.count("\r\n") or (not text.isascii() and _SURROGATE.search(text)):
        return None
    if "\n " in text or "\n\t" in text:  # folded (RFC 5545 §3.1); most lines are not
        text = UFOLD.sub("", text)
    # icalendar splits at CRLF and LF (NEWLINE); with no lone CR left, this is the same.
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[0].upper() != "BEGIN:VEVENT":
        return None
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 2 or lines[-1].upper() != "END:VEVENT":
        return None
    read: dict[str, tuple[str, str]] = {}
    categories: list[str] = []
    attendees = False
    for line in lines[1:-1]:
        if not line:
            continue  # icalendar skips empty lines
        found = _CONTENT.fullmatch(line)
        if found is None:
            return None
        name, parameters, value = found.groups()
        name = name.upper()
        if name in _READ:
            if name in read:
                return None
            read[name] = (parameters, value)
        elif name in _IGNORED:
            if name == "CATEGORIES":
                if "VALUE=" in parameters.upper():
                    return None
                # icalendar splits the raw value at unescaped commas, then unescapes.
                categories.extend(split_on_unescaped_comma(value))
            attendees = attendees or name == "ATTENDEE"
        elif not name.startswith("X-") or name in _REFUSED:
            return None
    return _plain(read, categories, attendees)


def _plain(
    read: dict[str, tuple[str, str]], categories: list[str], attendees: bool
) -> Plain | None:
    if "UID" not in read or "DTSTART" not in read or ("DTEND" in read and "DURATION" in read):
        return None
    for name, (parameters, _) in read.items():
        if name not in ("DTSTART", "DTEND") and "VALUE=" in parameters.upper():
            return None  # another value type than the property's default
    sequence = read.get("SEQUENCE")
    if sequence is not None and (sequence[0] or not _SEQUENCE.fullmatch(sequence[1])):
        return None
    uid = unescape(read["UID"][1])
    if uid.startswith(("[", "no-uid-")):
        return None  # could meet the text of a repeated UID, or a made-up one
    start = _when(*read["DTSTART"])
    if start is None:
        return None
    end = _end(start, read)
    if end is None or type(end) is not type(start):
        return None
    if (
        isinstance(start, datetime)
        and isinstance(end, datetime)
        and (start.tzinfo is None) != (end.tzinfo is None)
    ):
        return None  # recurring-ical-events would move one into the other's zone
    if end < start:
        return None  # skipped with a warning (RFC 5545 §3.8.2.2), said by icalendar's path
    color = read.get("COLOR")
    return Plain(
        uid=uid,
        written_uid=read["UID"][1],
        start=start,
        end=end,
        title=unescape(read["SUMMARY"][1]) if "SUMMARY" in read else "",
        description=unescape(read["DESCRIPTION"][1]) if "DESCRIPTION" in read else "",
        categories=tuple(c.strip() for c in categories if c.strip()),
        # COLOR and X- properties are taken verbatim (icalendar's vUnknown, RFC 7265).
        color=color[1].lower() if color is not None else None,
        cancelled=unescape(read.get("STATUS", ("", ""))[1]).upper() == "CANCELLED",
        busy=unescape(read.get("TRANSP", ("", "OPAQUE"))[1]).upper() != "TRANSPARENT",
        out_of_office=read.get("X-MICROSOFT-CDO-BUSYSTATUS", ("", ""))[1].upper() == "OOF",
        attendees=attendees,
    )


def _end(start: date | datetime, read: dict[str, tuple[str, str]]) -> date | datetime | None:
    """The end as recurring-ical-events' EventAdapter.raw_end computes it."""
    if "DTEND" in read:
        return _when(*read["DTEND"])
    if "DURATION" in read:
        span = _duration(*read["DURATION"])
        if span is None or (span.seconds and not isinstance(start, datetime)):
            return None  # a DATE plus hours turns into a floating time there
        return start + span
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def plain_event(
    plain: Plain,
    calendar: str,
    window: Window,
    cancelled: bool,
    moment: Callable[[date | datetime], datetime],
) -> Event | None:
    """The event of ``plain`` as the Reader makes it of a series of one, or None outside
    ``window``: kept when recurring-ical-events would yield it for the window and it
    overlaps the window. ``moment``: how a date or a floating time is placed in time."""
    # Times with a zone are comparable as they are (recurring-ical-events' own
    # shortcut); dates and floating times are made comparable as it does.
    aware = isinstance(plain.start, datetime) and plain.start.tzinfo is not None
    if not time_span_contains_event(window.start, window.end, plain.start, plain.end, aware):
        return None
    start = moment(plain.start)
    end = max(moment(plain.end), start)
    if not window.overlaps(start, end):
        return None
    return Event(
        calendar=calendar,
        id=plain.uid,
        start=start,
        end=end,
        all_day=not isinstance(plain.start, datetime),
        title=plain.title,
        description=plain.description,
        categories=plain.categories,
        color=plain.color,
        cancelled=cancelled or plain.cancelled,
        busy=plain.busy,
        out_of_office=plain.out_of_office,
    )
