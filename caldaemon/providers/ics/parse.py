"""Reading an iCalendar file (RFC 5545) into its components, refusing what cannot be a
calendar with one line that says why (and never quotes a line of the file: it may hold a
client's name, DESIGN.md §7)."""

from __future__ import annotations

import re

import icalendar

from caldaemon.errors import CalendarError

_LF = b"\n"
_BEGIN_VCALENDAR = re.compile(rb"(?im)^begin[ \t]*:[ \t]*vcalendar[ \t]*\r?$")


def parse(data: bytes, calendar: str, source: str) -> list[icalendar.Component]:
    """The top-level components of ``data`` that may hold events (normally its
    VCALENDARs); CalendarError with a one-line reason when the file as a whole is
    unusable. A blank file is an empty calendar (a buffers file not yet written)."""
    if not data.strip():
        return []
    try:
        found = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError, …
        raise CalendarError(
            calendar, source, f"not a readable iCalendar file ({why(exc, data)})"
        ) from None
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
    names = ", ".join(sorted({str(c.name) for c in found}))
    raise CalendarError(
        calendar,
        source,
        f"not a calendar: the file holds only {names} and no VCALENDAR (RFC 5545 §3.4)",
    )


def why(exc: BaseException, data: bytes | None = None) -> str:
    """One line saying what is wrong, for a message that a person reads. icalendar
    quotes the content line it could not parse; that line may be a client's name
    (DESIGN.md §7), so a long quote becomes its line number in ``data``."""
    if type(exc) is KeyError and exc.args and isinstance(exc.args[0], str):
        return f"it has no {exc.args[0]}"
    text = (str(exc).strip().splitlines() or [""])[0]

    def where(match: re.Match[str]) -> str:
        at = data.find(match.group(2).encode()) if data is not None else -1
        if data is None or at < 0:
            return "…"
        return f"line {data.count(_LF, 0, at) + 1}"

    return re.sub(r"""(['"])(.{24,}?)\1""", where, text)[:160] or type(exc).__name__
