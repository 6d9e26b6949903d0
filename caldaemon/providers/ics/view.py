"""How icalendar sees the text of an .ics file, where :class:`.document.Document` must see
the same to cut it (issue 15): the BEGIN and END lines icalendar reads (its unfolding and
its line ends, RFC 5545 §3.1, are not quite the cut's), and what in the text around the
VEVENT blocks keeps :mod:`.lean` from reading them."""

from __future__ import annotations

import re

from icalendar.parser.content_line import UFOLD

from caldaemon.providers.ics import lean

# icalendar's line ends are CRLF and LF only; a lone CR joins two lines into one.
_LONE_CR = re.compile(r"\r(?!\n)")
# A BEGIN:VCALENDAR line, and an X-WR-TIMEZONE (whose zone turns the file's UTC and
# floating times into local ones: read by x-wr-timezone on the icalendar path).
_VCALENDAR = re.compile(r"(?im)^\ufeff?begin[ \t]*:[ \t]*vcalendar[ \t]*\r?$")
_X_WR_TIMEZONE = re.compile(r"(?im)^x-wr-timezone[;:]")
# A line that icalendar reads as a BEGIN or END (its name without the spaces in it).
# (A line that starts with a space or a tab continues the one before: RFC 5545 §3.1.)
_ICAL_BEGIN_END = re.compile(
    r"^(b[ \t]*e[ \t]*g[ \t]*i[ \t]*n|e[ \t]*n[ \t]*d)[ \t]*([:;])([^\n]*)",
    re.IGNORECASE | re.MULTILINE,
)
# A line that may be the start of a BEGIN or END and is folded (icalendar's UFOLD: a line
# end, perhaps blank lines, then a space or a tab).
_FOLDED_BEGIN_END = re.compile(r"^[be][^\n]*\n(?:\r?\n)*[ \t]", re.IGNORECASE | re.MULTILINE)
# What follows a block and would be folded into its END line (icalendar's UFOLD).
_FOLDED_ON = re.compile(r"(?:\r?\n)*[ \t]")


def components(text: str) -> list[str]:
    """The BEGIN and END lines as icalendar reads them (unfolded, split at CRLF and LF
    only), each as "BEGIN:NAME"; a line it would read as one in any other way than
    :class:`.document.Document` does (spaces in the name, parameters, escapes) as "?"."""
    found: list[str] = []
    if _FOLDED_BEGIN_END.search(text):  # else unfolding changes no BEGIN or END line
        text = UFOLD.sub("", text)
    for line in _ICAL_BEGIN_END.finditer(text):
        kind, separator, value = line.groups()
        value = value.removesuffix("\r")
        plain = separator == ":" and kind.isalpha() and value.strip() == value
        found.append(f"{kind}:{value}".upper() if plain and "\\" not in value else "?")
    return found


def plain_around(around: str) -> bool:
    """Whether the text around a file's VEVENT blocks lets :mod:`.lean` read them: one
    VCALENDAR (the events' METHOD is its), no X-WR-TIMEZONE, and no lone CR."""
    return (
        len(_VCALENDAR.findall(around)) == 1
        and not _X_WR_TIMEZONE.search(around)
        and not _LONE_CR.search(around)
    )


def folded_on(after: str) -> bool:
    """Whether the text ``after`` a block would be folded into its END line."""
    return _FOLDED_ON.match(after) is not None


def uid_key(uid: str | None) -> str:
    """A block's UID (first found, stripped) as icalendar reads it, near enough that two
    blocks whose UIDs icalendar reads alike get the same key."""
    return lean.unescape(uid).strip() if uid is not None else "\0"
