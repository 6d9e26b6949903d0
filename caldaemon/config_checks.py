"""Checks of a config beyond its schema, and the wording of every problem: pydantic's
errors become plain sentences with file:line and key path; cross-references (a tag naming
a level, ``rules`` naming a rule set, ``buffers_to`` naming a calendar) are checked here."""

from __future__ import annotations

import difflib
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import config_schema as schema
from . import yamlsource
from .errors import Problem
from .model import TAG_KINDS, TAGGABLE_KINDS, Kind

RULE_IDS = (
    "working_hours",
    "days_off",
    "max_work_days_per_week",
    "max_sessions_per_day",
    "max_sessions_per_week",
    "level_limits.max_per_day",
    "level_limits.max_per_week",
    "level_limits.latest_start",
    "breaks",
    "no_back_to_back",
    "max_daily_load",
    "buffers",
    "cadence",
    "double_booked",
)
_SECRET_KEYS = {"password", "client_secret", "secret", "api_key", "refresh_token"}
_CADENCE_KINDS = (*TAG_KINDS, Kind.SESSION)


class Problems:
    def __init__(self, doc: yamlsource.Document) -> None:
        self.doc = doc
        self.items: list[Problem] = []

    def add(self, path: yamlsource.Path, message: str, *, line: int | None = None) -> None:
        if line is None:
            line = self.doc.line_of(path)
        problem = Problem(self.doc.file, line, yamlsource.format_path(path), message)
        if problem not in self.items:
            self.items.append(problem)

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=lambda p: (p.line or 0, p.path))

    def add_pydantic(self, error: Any, prefix: yamlsource.Path) -> None:
        loc = _data_path(self.doc.data, prefix + tuple(error["loc"]))
        kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
        if kind == "extra_forbidden":
            self.add(loc, _unknown_key(str(loc[-1])))
        elif kind == "missing":
            self.add(loc[:-1], f"missing required key '{loc[-1]}'")
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            choices = "google, outlook, ics or caldav"
            if kind == "union_tag_not_found":
                self.add(loc, f"missing required key 'provider' ({choices})")
            else:
                self.add(
                    loc + ("provider",), f"{ctx.get('tag')!r} is not a provider: use {choices}"
                )
        else:
            self.add(loc, _describe(kind, value, ctx, error["msg"]))


def _data_path(data: Any, loc: tuple[Any, ...]) -> yamlsource.Path:
    """Drop the discriminator tags and validator names pydantic puts into ``loc``."""
    out: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif (
            last
            and isinstance(node, dict)
            and isinstance(part, str)
            and not part.startswith(("function-", "nullable"))
        ):
            out.append(part)
    return tuple(out)


_KNOWN_KEYS = sorted(
    {
        name
        for model in (
            schema.Config,
            schema.Daemon,
            schema.Classification,
            schema.Sessions,
            schema.IcsCalendar,
            schema.GoogleCalendar,
            schema.OutlookCalendar,
            schema.CaldavCalendar,
            schema.Clinician,
            schema.RuleSet,
            schema.LevelLimit,
            schema.Breaks,
            schema.NoBackToBack,
            schema.BufferRule,
            schema.Cadence,
            schema.Smtp,
            schema.EmailSettings,
            schema.Notices,
        )
        for name in model.model_fields
    }
    | {"from"}
)


def _unknown_key(key: str) -> str:
    if key.lower() in _SECRET_KEYS:
        return (
            f"unknown key '{key}': secrets never sit in the config; "
            f"use {key}_file (a file holding it) or {key}_env (an environment variable)"
        )
    close = difflib.get_close_matches(key, _KNOWN_KEYS, n=1, cutoff=0.75)
    return f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")


_TYPE_NAMES = {
    "int": "a whole number",
    "bool": "true or false",
    "string": "text",
    "list": "a list",
    "dict": "a mapping of keys to values",
    "model": "a mapping of keys to values",
    "model_attributes": "a mapping of keys to values",
    "tuple": "a list",
    "float": "a number",
    "path": "a file path",
}


def _describe(kind: str, value: Any, ctx: dict[str, Any], fallback: str) -> str:
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    for suffix in ("_type", "_parsing"):
        if kind.endswith(suffix) and kind[: -len(suffix)] in _TYPE_NAMES:
            return f"{shown} is not {_TYPE_NAMES[kind[: -len(suffix)]]}"
    if kind == "literal_error":
        return f"{shown} is not allowed here: use {ctx.get('expected')}"
    if kind in ("greater_than_equal", "less_than_equal"):
        word = "at least" if kind == "greater_than_equal" else "at most"
        return f"{shown} must be {word} {ctx.get('ge', ctx.get('le'))}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    return fallback.removeprefix("Value error, ")


def _check_timezone(name: Any, path: yamlsource.Path, problems: Problems) -> None:
    if name is None or not isinstance(name, str):
        return
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(path, f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)")


def _items(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def check_references(data: dict[str, Any], problems: Problems) -> None:
    """Cross-references the schema cannot see: names that must point at something."""
    _check_timezone(data.get("timezone"), ("timezone",), problems)
    classification = _mapping(data.get("classification"))
    raw_levels = classification.get("levels", ["low", "moderate", "high"])
    levels = [str(v).lower() for v in raw_levels] if isinstance(raw_levels, list) else []
    kinds = {k.value for k in Kind}
    for index, level in enumerate(levels):
        if level in kinds:
            problems.add(
                ("classification", "levels", index),
                f"level '{level}' has the name of a kind; choose another name",
            )
    level_set = set(levels)
    default_level = classification.get("default_level")
    if default_level is not None and str(default_level).lower() not in level_set:
        problems.add(("classification", "default_level"), _not_a_level(default_level, levels))
    for name in _mapping(classification.get("weights")):
        if name.lower() not in level_set:
            problems.add(("classification", "weights", name), _not_a_level(name, levels))
    targets = sorted(level_set | TAGGABLE_KINDS)
    for section in ("tags", "colors"):
        for name, target in _mapping(classification.get(section)).items():
            if isinstance(target, str) and target.lower() not in level_set | TAGGABLE_KINDS:
                problems.add(
                    ("classification", section, name),
                    f"{target!r} is neither a level nor a kind (use one of: {', '.join(targets)})",
                )

    rule_sets = _mapping(data.get("rule_sets"))
    for name, rule_set in rule_sets.items():
        check_rule_set(_mapping(rule_set), ("rule_sets", name), levels, problems)

    all_calendars: set[str] = set()
    seen_clinicians: dict[str, int] = {}
    for index, clinician in _items(data.get("clinicians")):
        clinician = _mapping(clinician)
        where: yamlsource.Path = ("clinicians", index)
        cid = clinician.get("id")
        if isinstance(cid, str):
            if cid in seen_clinicians:
                problems.add(
                    where + ("id",),
                    f"clinician id '{cid}' is used twice (also clinicians[{seen_clinicians[cid]}])",
                )
            seen_clinicians.setdefault(cid, index)
        _check_timezone(clinician.get("timezone"), where + ("timezone",), problems)
        rules = clinician.get("rules")
        if isinstance(rules, str) and rules not in rule_sets:
            problems.add(
                where + ("rules",),
                f"no rule set named '{rules}' (rule_sets has: {', '.join(rule_sets) or 'none'})",
            )
        calendar_ids: dict[str, dict[str, Any]] = {}
        for c_index, calendar in _items(clinician.get("calendars")):
            calendar = _mapping(calendar)
            c_where = where + ("calendars", c_index)
            c_id = calendar.get("id")
            if isinstance(c_id, str):
                if c_id in calendar_ids:
                    problems.add(c_where + ("id",), f"calendar id '{c_id}' is used twice")
                calendar_ids[c_id] = calendar
                all_calendars.add(c_id)
            _check_calendar(calendar, c_where, problems)
        target = clinician.get("buffers_to")
        if isinstance(target, str):
            if target not in calendar_ids:
                problems.add(
                    where + ("buffers_to",),
                    f"no calendar '{target}' among this "
                    f"clinician's calendars ({', '.join(calendar_ids) or 'none'})",
                )
            elif calendar_ids[target].get("provider") == "ics" and calendar_ids[target].get("url"):
                problems.add(
                    where + ("buffers_to",),
                    f"calendar '{target}' is a read-only "
                    "feed (url); buffers need a calendar caldaemon can write to",
                )
    sessions = _mapping(classification.get("sessions"))
    for index, name in _items(sessions.get("calendars")):
        if name not in all_calendars:
            problems.add(
                ("classification", "sessions", "calendars", index), f"no calendar with id {name!r}"
            )
    outlook = [
        _mapping(c).get("id")
        for _, clinician in _items(data.get("clinicians"))
        for _, c in _items(_mapping(clinician).get("calendars"))
        if _mapping(c).get("provider") == "outlook"
    ]
    _check_notices(_mapping(data.get("notices")), outlook, problems)


def _not_a_level(name: Any, levels: list[str]) -> str:
    return f"{name!r} is not a level (levels: {', '.join(levels)})"


def check_rule_set(
    rule_set: dict[str, Any], where: yamlsource.Path, levels: list[str], problems: Problems
) -> None:
    for level in _mapping(rule_set.get("level_limits")):
        if level.lower() not in levels:
            problems.add(where + ("level_limits", level), _not_a_level(level, levels))
    for index, buffer in _items(rule_set.get("buffers")):
        after = _mapping(buffer).get("after")
        if isinstance(after, str) and after.lower() not in levels:
            problems.add(where + ("buffers", index, "after"), _not_a_level(after, levels))
    level = _mapping(rule_set.get("no_back_to_back")).get("level")
    if isinstance(level, str) and level.lower() not in levels:
        problems.add(where + ("no_back_to_back", "level"), _not_a_level(level, levels))
    for index, cadence in _items(rule_set.get("cadence")):
        kind = _mapping(cadence).get("kind")
        if isinstance(kind, str) and kind not in _CADENCE_KINDS:
            problems.add(
                where + ("cadence", index, "kind"),
                f"{kind!r} is not a kind (use one of: {', '.join(_CADENCE_KINDS)})",
            )
    for rule in _mapping(rule_set.get("severity")):
        if rule not in RULE_IDS and rule != "level_limits":
            close = difflib.get_close_matches(rule, RULE_IDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.add(where + ("severity", rule), f"'{rule}' is not a rule id{hint}")


def _check_calendar(calendar: dict[str, Any], where: yamlsource.Path, problems: Problems) -> None:
    provider = calendar.get("provider")
    if provider == "ics" and bool(calendar.get("path")) == bool(calendar.get("url")):
        problems.add(where, "an ics calendar needs exactly one of 'path' or 'url'")
    if (
        provider == "ics"
        and isinstance(calendar.get("url"), str)
        and not re.match(r"^(https?|webcals?)://", calendar["url"])
    ):
        problems.add(where + ("url",), f"{calendar['url']!r} is not an http(s) URL")
    if (
        provider == "outlook"
        and calendar.get("auth") == "client_credentials"
        and not any(
            calendar.get(k) for k in ("client_secret_file", "client_secret_env", "certificate_file")
        )
    ):
        problems.add(
            where + ("auth",),
            "client_credentials needs client_secret_file, client_secret_env or certificate_file",
        )
    if (
        provider == "outlook"
        and calendar.get("certificate_file")
        and not calendar.get("certificate_thumbprint")
    ):
        problems.add(
            where + ("certificate_file",), "a certificate needs certificate_thumbprint as well"
        )


def _check_notices(notices: dict[str, Any], outlook: list[Any], problems: Problems) -> None:
    email = _mapping(notices.get("email"))
    if email and email.get("via", "smtp") == "smtp" and "smtp" not in email:
        problems.add(("notices", "email"), "missing required key 'smtp' (or set via: graph)")
    if email.get("via") == "graph" and not outlook:
        problems.add(("notices", "email", "via"), "via: graph sends through a Microsoft 365 "
                     "account, but no calendar has provider: outlook")
    named = email.get("graph_calendar")
    if named is not None and named not in outlook:
        problems.add(("notices", "email", "graph_calendar"), f"no outlook calendar with id "
                     f"{named!r} (outlook calendars: {', '.join(map(str, outlook)) or 'none'})")
    smtp = _mapping(email.get("smtp"))
    if smtp.get("username") and not (smtp.get("password_file") or smtp.get("password_env")):
        problems.add(
            ("notices", "email", "smtp", "username"),
            "a username needs password_file or password_env",
        )
