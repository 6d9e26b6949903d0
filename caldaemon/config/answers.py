"""What a clinician types at ``caldaemon init``'s questions, checked as the config loader
will check it (the same value types from :mod:`caldaemon.fields`, the same rule-set and
provider models), so that a wrong answer is asked again at once with the loader's own
words, instead of turning up later as a line of ``caldaemon validate``.

Each parser takes the typed text and returns the value to write; a wrong answer raises
ValueError with a sentence that says what is wrong.
"""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import available_timezones

import pydantic
from pydantic_core import PydanticCustomError

from caldaemon.core.rules.settings import RuleSet
from caldaemon.fields import Clock, Duration, Email, Id, parse_weekdays
from caldaemon.providers.ics.settings import IcsCalendar
from caldaemon.text import WEEKDAYS

T = TypeVar("T")
# Words that leave an optional answer out: a limit that is not checked, a key not written.
NONE_WORDS = frozenset({"none", "no", "-"})
_FEED = re.compile(r"^(https?|webcals?)://", re.IGNORECASE)
# The levels the written config names (template.py writes these three).
_LEVELS = {"levels": ["low", "moderate", "high"]}


def _checked(kind: Any, value: Any) -> Any:
    """``value`` through the config's own type ``kind``; its message when it is wrong."""
    try:
        return pydantic.TypeAdapter(kind).validate_python(value)
    except pydantic.ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from None


def _is_none(text: str) -> bool:
    return text.strip().lower() in NONE_WORDS


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(text: str) -> str:
    """An IANA time zone name, as the config's ``timezone`` takes it."""
    name = text.strip()
    if name in _zones():
        return name
    close = difflib.get_close_matches(name, sorted(_zones()), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else " (like Europe/Berlin or America/Toronto)"
    raise ValueError(f"{name!r} is not an IANA time zone{hint}")


def ident(text: str) -> str:
    value: str = _checked(Id, text.strip())
    return value


def required(text: str) -> str:
    if not text.strip():
        raise ValueError("this one is needed")
    return text.strip()


def optional(text: str) -> str | None:
    """An answer that may be none (or nothing)."""
    return None if _is_none(text) else text.strip() or None


def email(text: str) -> str:
    value: str = _checked(Email, text.strip())
    return value


def optional_email(text: str) -> str | None:
    return None if _is_none(text) or not text.strip() else email(text)


def days_text(days: list[int]) -> str:
    """Weekday numbers as the config writes them: runs of three or more as ``mon-fri``."""
    parts: list[str] = []
    run: list[int] = []
    for day in sorted(set(days)) + [99]:
        if run and day == run[-1] + 1:
            run.append(day)
            continue
        if len(run) >= 3:
            parts.append(f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}")
        else:
            parts.extend(WEEKDAYS[d] for d in run)
        run = [day]
    return ",".join(parts)


def _weekday_numbers(text: str) -> list[int]:
    spec = ",".join(part for part in re.split(r"[\s,]+", text.strip()) if part)
    if not spec:
        raise ValueError("name at least one weekday (mon, tue, wed, thu, fri, sat, sun)")
    try:
        return parse_weekdays(spec)
    except PydanticCustomError as exc:
        raise ValueError(exc.message()) from None


def working_days(text: str) -> str:
    """``mon-fri``, ``mon,tue,thu`` or ``monday to thursday`` → ``mon-thu`` form."""
    return days_text(_weekday_numbers(text.replace(" to ", "-")))


def weekdays(text: str) -> tuple[str, ...]:
    """The weekdays ``text`` names, in the week's order."""
    return tuple(WEEKDAYS[d] for d in sorted(set(_weekday_numbers(text.replace(" to ", "-")))))


def days_off(text: str) -> tuple[str, ...]:
    return () if _is_none(text) else weekdays(text)


def working_hours(text: str) -> tuple[str, ...]:
    """One range or several, like ``09:00-12:00, 13:00-17:00``, checked as a rule set's
    ``working_hours`` is (each time a time of day, no range ending before it starts, no
    two overlapping)."""
    ranges = tuple(
        re.sub(r"\s*-\s*", "-", part.strip()) for part in text.split(",") if part.strip()
    )
    if not ranges:
        raise ValueError("give a range like 09:00-17:00")
    try:
        RuleSet.model_validate({"working_hours": {"mon": list(ranges)}}, context=_LEVELS)
    except pydantic.ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].replace("mon (", "(")) from None
    return ranges


def limit(text: str) -> int | None:
    """A count, or none for no limit."""
    if _is_none(text):
        return None
    if not text.strip().isdigit():
        raise ValueError(f"{text.strip()!r} is not a number (or none for no limit)")
    return int(text.strip())


def clock(text: str) -> str | None:
    """A time of day like 15:00, or none."""
    if _is_none(text):
        return None
    minutes: int = _checked(Clock, text.strip())
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def duration(text: str) -> str | None:
    """A duration like 15m or 14d, or none (0 too: no time at all)."""
    if _is_none(text) or text.strip() == "0":
        return None
    _checked(Duration, text.strip())
    return text.strip()


def absolute(text: str, folder: Path) -> str:
    """A path in full: ``~`` expanded, a relative one taken from the current folder (a
    relative path in the file would be read against the config's folder instead, and
    break when the file is copied elsewhere)."""
    if not text.strip():
        raise ValueError("give a path")
    return str((folder / Path(text.strip()).expanduser()).absolute())


def is_feed(text: str) -> bool:
    return _FEED.match(text.strip()) is not None


def feed_url(text: str) -> str:
    """A feed's address, with the ics provider's own checks (no password in the URL)."""
    url = text.strip()
    for _, message in IcsCalendar.problems({"url": url}):
        raise ValueError(message)
    return url


def http_url(text: str) -> str:
    url = text.strip()
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError(f"{url!r} is not an http(s) address like https://dav.example.org/")
    if re.match(r"^https?://[^/]*@", url):
        raise ValueError("the address holds a user name or password: leave it out here")
    return url


def port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text.strip()) <= 65535:
        raise ValueError(f"{text.strip()!r} is not a port number (1-65535)")
    return int(text.strip())
