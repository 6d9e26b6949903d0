"""The wording helpers every message shares: day names, times, lengths and plurals, in
English and independent of the machine's locale (a notice reads the same wherever the
daemon runs)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

# Weekdays as the config writes them; Monday is 0, as in ``date.weekday()``.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_name(day: date) -> str:
    """``Mon 30 Nov``."""
    return f"{WEEKDAY_NAMES[day.weekday()]} {day.day} {MONTH_NAMES[day.month - 1]}"


def clock(moment: datetime) -> str:
    # Not f"{moment:%H:%M}": strftime costs three times as much, and a year of a
    # practice writes tens of thousands of these.
    return f"{moment.hour:02d}:{moment.minute:02d}"


def span(start: datetime, end: datetime) -> str:
    """``Tue 1 Dec, 15:00–15:50``."""
    return f"{day_name(start.date())}, {clock(start)}–{clock(end)}"


def minutes(delta: timedelta) -> str:
    """``45 minutes``, ``1 hour``, ``1 h 30 min``."""
    total = int(delta.total_seconds() // 60)
    hours, mins = divmod(total, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    return f"{hours} hour{'s' if hours > 1 else ''}" if hours else f"{mins} minutes"


def length(delta: timedelta) -> str:
    """``30-minute``, ``1-hour``, ``90-minute``: a duration as an adjective."""
    total = int(delta.total_seconds() // 60)
    return f"{total // 60}-hour" if total % 60 == 0 and total >= 60 else f"{total}-minute"


def describe(level: str | None) -> str:
    """``high-intensity session``, or ``session`` when the level is unknown."""
    return f"{level}-intensity session" if level else "session"


def plural(count: int, word: str) -> str:
    """``1 session``, ``3 sessions``."""
    return f"{count} {word}{'' if count == 1 else 's'}"
