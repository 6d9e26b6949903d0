"""The value types of the config file, shared by every settings model (the daemon's, the
rules', each provider's): durations, times of day, weekdays, ids, e-mail addresses, and
paths that are resolved against the config's folder (or, for secrets, against
``$CREDENTIALS_DIRECTORY``). Each parse error is a plain sentence that the config's
messages show with file:line."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from caldaemon.text import WEEKDAYS

_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def fail(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (braces are not templates)."""
    return PydanticCustomError(kind, message.replace("{", "{{").replace("}", "}}"))


# No duration in a clinician's config needs more than a year; a longer one is a typo, and
# one long enough overflows timedelta or makes the rules walk for minutes (DESIGN.md §5).
MAX_DURATION = timedelta(days=366)
_DURATION_DIGITS = 12  # bounds int() before any arithmetic: 10**12 seconds is 31,000 years


def parse_duration(value: Any, *, longest: timedelta = MAX_DURATION) -> timedelta:
    """``15m``, ``1h30m``, ``14d``: at most ``longest``, 366 days unless a key says
    otherwise (zero is allowed here; see :data:`Duration` for the keys that need more
    than nothing)."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise fail("duration", f"{value!r} is not a duration like 15m, 1h30m or 14d")
    if any(len(g) > _DURATION_DIGITS for g in match.groups() if g):
        raise fail("duration", f"{value!r} is longer than {longest.days} days")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if total > longest:
        raise fail("duration", f"{value!r} is longer than {longest.days} days")
    return total


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise fail("duration", "must be longer than nothing (like 15m)")
    return value


def parse_clock(value: Any, *, allow_24: bool = False) -> int:
    """``HH:MM`` → minutes after midnight."""
    match = _CLOCK.match(value) if isinstance(value, str) else None
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not match or minutes > (1440 if allow_24 else 1439):
        raise fail("clock", f"{value!r} is not a time of day like 09:30")
    return minutes


def parse_weekday(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower()[:3] in WEEKDAYS:
        return value.strip().lower()[:3]
    raise fail("weekday", f"{value!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")


def parse_weekdays(spec: str) -> list[int]:
    """``mon-thu``, ``mon,wed,fri``, ``sat`` → weekday numbers (Monday is 0)."""
    days: list[int] = []
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        a = WEEKDAYS.index(parse_weekday(first))
        b = WEEKDAYS.index(parse_weekday(last)) if last else a
        days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return days


def parse_range(value: Any) -> tuple[int, int]:
    """``09:00-17:00`` → (540, 1020) minutes after midnight; the end may be 24:00."""
    if not isinstance(value, str) or value.count("-") != 1:
        raise fail("range", f"{value!r} is not a time range like 09:00-17:00")
    start_text, end_text = (part.strip() for part in value.split("-"))
    start, end = parse_clock(start_text), parse_clock(end_text, allow_24=True)
    if end <= start:
        raise fail("range", f"{value!r} ends before it starts")
    return start, end


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise fail("id", f"{value!r} is not an id: use letters, digits, '-', '_' or '.'")
    return value


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise fail("email", f"{value!r} is not an email address")
    return value


class PathRole(Enum):
    """How the loader resolves a path key (see :func:`path_role`)."""

    # Relative to the config file's folder.
    FILE = "file"
    # A secret: relative to $CREDENTIALS_DIRECTORY when set (systemd's LoadCredential=,
    # systemd.exec(5)), else to the config file's folder.
    SECRET = "secret"


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" for c in word)


# The JSON Schema (``caldaemon schema``) of each value type: the same syntax as the parsers
# above, written as ECMA-262 patterns (JSON Schema 2020-12 §6.3.3; no inline flags, hence
# the [Mm] classes) so that an editor checks a value as the loader will. A pattern may be
# looser than its parser (a range's order, a duration's 366 days), never stricter.
# patternErrorMessage is what VS Code's JSON and YAML support show instead of the pattern
# (vscode-json-languageservice's extension keyword; validators ignore unknown keywords).
# parse_weekday reads the first three letters: "Monday" and "mon" are both Monday.
_DAY = r"\s*(?:" + "|".join(_any_case(day) for day in WEEKDAYS) + ")"
# One part of parse_weekdays: a day, or two joined by the first "-".
_DAYS = rf"{_DAY}[^,-]*(?:-{_DAY}[^,]*)?"
_CLOCK_TEXT = r"(?:[01]?\d|2[0-3]):[0-5]\d"
_UNITS = r"(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?$"
SPAN_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": rf"^(?=\d){_UNITS}",
    "patternErrorMessage": "a duration like 0m, 15m, 1h30m or 14d",
    "examples": ["0m", "15m", "1h30m", "14d"],
}
# At least one digit that is not 0: more than nothing.
DURATION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": rf"^(?=\d)(?=[^1-9]*[1-9]){_UNITS}",
    "patternErrorMessage": "a duration longer than nothing, like 15m, 1h30m or 14d",
    "examples": ["15m", "1h30m", "14d", "2w"],
}
CLOCK_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": f"^{_CLOCK_TEXT}$",
    "patternErrorMessage": "a time of day like 09:30",
    "examples": ["07:30", "15:00"],
}
WEEKDAY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": f"^{_DAY}",
    "patternErrorMessage": "a weekday: mon, tue, wed, thu, fri, sat or sun",
    "examples": list(WEEKDAYS),
}
# ``mon-thu``, ``mon,wed,fri`` (:func:`parse_weekdays`).
WEEKDAYS_SCHEMA: dict[str, Any] = {
    "pattern": f"^{_DAYS}(?:,{_DAYS})*$",
    "patternErrorMessage": "weekdays like mon-thu, mon,wed,fri or sat",
}
# ``09:00-17:00``; the end may be 24:00 (:func:`parse_range`).
RANGE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": rf"^\s*{_CLOCK_TEXT}\s*-\s*(?:{_CLOCK_TEXT}|24:00)\s*$",
    "patternErrorMessage": "a time range like 09:00-17:00",
    "examples": ["09:00-17:00"],
}
PATH_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1}


def format_duration(value: timedelta) -> str:
    """A duration as the config writes it: ``2m``, ``1h30m``, ``400d``."""
    seconds = int(value.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h")]
    parts += [(seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0m"


def format_clock(minutes: int) -> str:
    """Minutes after midnight as the config writes them: ``07:30``."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# A duration that must be more than nothing (a buffer's length, how often, how long to wait).
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_positive),
    WithJsonSchema(DURATION_SCHEMA),
]
# A duration where nothing is a meaningful answer (a break or gap of zero minutes).
Span = Annotated[timedelta, BeforeValidator(parse_duration), WithJsonSchema(SPAN_SCHEMA)]
Clock = Annotated[int, BeforeValidator(parse_clock), WithJsonSchema(CLOCK_SCHEMA)]
Weekday = Annotated[str, BeforeValidator(parse_weekday), WithJsonSchema(WEEKDAY_SCHEMA)]
Count = Annotated[int, Field(ge=0, strict=True)]
Flag = Annotated[bool, Field(strict=True)]
Name = Annotated[str, Field(min_length=1)]
ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": _ID.pattern,
    "patternErrorMessage": "an id: letters, digits, '-', '_' or '.'",
}
EMAIL_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": _EMAIL.pattern,
    "patternErrorMessage": "an email address",
}
Id = Annotated[str, AfterValidator(_check_id), WithJsonSchema(ID_SCHEMA)]
Email = Annotated[str, AfterValidator(_check_email), WithJsonSchema(EMAIL_SCHEMA)]
FilePath = Annotated[Path, PathRole.FILE, WithJsonSchema(PATH_SCHEMA)]
SecretPath = Annotated[Path, PathRole.SECRET, WithJsonSchema(PATH_SCHEMA)]


def path_role(model: type[BaseModel], key: str) -> PathRole | None:
    """Whether ``key`` of ``model`` is a path, and how it is resolved."""
    field = model.model_fields.get(key)
    if field is None:
        return None
    found = [*field.metadata]
    # ``FilePath | None``: the marker sits on a member of the union.
    for member in get_args(field.annotation):
        if get_origin(member) is Annotated:
            found.extend(member.__metadata__)
    return next((m for m in found if isinstance(m, PathRole)), None)


class Strict(BaseModel):
    """Every settings model: unknown keys are errors, values never change after loading."""

    # A field's docstring (the string under it) is its description in ``caldaemon schema``,
    # what an editor shows beside the key: one text for the code and the user. It is read
    # from the source only when the schema is made (config/json_schema.py): pydantic's
    # use_attribute_docstrings reads it at import, which made loading the config ~0.3 s
    # slower for every command.
    model_config = ConfigDict(extra="forbid", frozen=True)
