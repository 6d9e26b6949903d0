"""Checks of a config beyond its schema: names that must point at something (a tag naming
a level, ``rules`` naming a rule set, ``buffers_to`` naming a calendar), ids used twice,
time zones, and what each provider's settings say about their own keys."""

from __future__ import annotations

import difflib
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from caldaemon.config import yaml
from caldaemon.config.messages import Problems
from caldaemon.core.rules.registry import RULE_IDS, SEVERITY_KEYS
from caldaemon.model import TAG_TARGETS, Kind
from caldaemon.providers.registry import PROVIDERS

DEFAULT_LEVELS = ["low", "moderate", "high"]


def _check_timezone(name: Any, path: yaml.Path, problems: Problems) -> None:
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


def levels_of(data: dict[str, Any]) -> list[str]:
    """The levels the config names (lower-cased), as the rule sets' checks need them."""
    raw = _mapping(data.get("classification")).get("levels", DEFAULT_LEVELS)
    return [str(v).lower() for v in raw] if isinstance(raw, list) else []


def check_references(data: dict[str, Any], problems: Problems) -> None:
    """Cross-references the schema cannot see: names that must point at something."""
    _check_timezone(data.get("timezone"), ("timezone",), problems)
    classification = _mapping(data.get("classification"))
    levels = levels_of(data)
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
    targets = sorted(level_set | TAG_TARGETS)
    for section in ("tags", "colors"):
        for name, target in _mapping(classification.get(section)).items():
            if isinstance(target, str) and target.lower() not in level_set | TAG_TARGETS:
                problems.add(
                    ("classification", section, name),
                    f"{target!r} is neither a level nor a kind (use one of: {', '.join(targets)})",
                )

    rule_sets = _mapping(data.get("rule_sets"))
    for name, rule_set in rule_sets.items():
        check_severity(_mapping(rule_set), ("rule_sets", name), problems)

    all_calendars: set[str] = set()
    seen_clinicians: dict[str, int] = {}
    for index, clinician in _items(data.get("clinicians")):
        clinician = _mapping(clinician)
        where: yaml.Path = ("clinicians", index)
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
            kind = PROVIDERS.get(str(calendar.get("provider")))
            if kind is not None:
                for path, message in kind.settings.problems(calendar):
                    problems.add(c_where + path, message)
        _check_buffers_to(clinician.get("buffers_to"), calendar_ids, where, problems)
    sessions = _mapping(classification.get("sessions"))
    for index, name in _items(sessions.get("calendars")):
        if name not in all_calendars:
            problems.add(
                ("classification", "sessions", "calendars", index), f"no calendar with id {name!r}"
            )
    for index, rule in _items(classification.get("rules")):
        named = _mapping(rule).get("calendar")
        if named is not None and named not in all_calendars:
            problems.add(
                ("classification", "rules", index, "calendar"), f"no calendar with id {named!r}"
            )
    outlook = [
        _mapping(c).get("id")
        for _, clinician in _items(data.get("clinicians"))
        for _, c in _items(_mapping(clinician).get("calendars"))
        if _mapping(c).get("provider") == "outlook"
    ]
    _check_notices(_mapping(data.get("notices")), outlook, problems)


def _check_buffers_to(
    target: Any,
    calendar_ids: dict[str, dict[str, Any]],
    where: yaml.Path,
    problems: Problems,
) -> None:
    if not isinstance(target, str):
        return
    if target not in calendar_ids:
        problems.add(
            where + ("buffers_to",),
            f"no calendar '{target}' among this "
            f"clinician's calendars ({', '.join(calendar_ids) or 'none'})",
        )
        return
    calendar = calendar_ids[target]
    kind = PROVIDERS.get(str(calendar.get("provider")))
    if kind is not None and kind.settings.read_only(calendar):
        problems.add(
            where + ("buffers_to",),
            f"calendar '{target}' is a read-only "
            "feed (url); buffers need a calendar caldaemon can write to",
        )


def _not_a_level(name: Any, levels: list[str]) -> str:
    return f"{name!r} is not a level (levels: {', '.join(levels)})"


def check_severity(rule_set: dict[str, Any], where: yaml.Path, problems: Problems) -> None:
    """``severity`` names rule ids (or a rule's key, for all its ids) from the registry."""
    for rule in _mapping(rule_set.get("severity")):
        if rule not in SEVERITY_KEYS:
            close = difflib.get_close_matches(rule, RULE_IDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.add(where + ("severity", rule), f"'{rule}' is not a rule id{hint}")


def _check_notices(notices: dict[str, Any], outlook: list[Any], problems: Problems) -> None:
    email = _mapping(notices.get("email"))
    if email and email.get("via", "smtp") == "smtp" and "smtp" not in email:
        problems.add(("notices", "email"), "missing required key 'smtp' (or set via: graph)")
    if email.get("via") == "graph" and not outlook:
        problems.add(
            ("notices", "email", "via"),
            "via: graph sends through a Microsoft 365 "
            "account, but no calendar has provider: outlook",
        )
    named = email.get("graph_calendar")
    if named is not None and named not in outlook:
        problems.add(
            ("notices", "email", "graph_calendar"),
            f"no outlook calendar with id "
            f"{named!r} (outlook calendars: {', '.join(map(str, outlook)) or 'none'})",
        )
    smtp = _mapping(email.get("smtp"))
    if smtp.get("username") and not (smtp.get("password_file") or smtp.get("password_env")):
        problems.add(
            ("notices", "email", "smtp", "username"),
            "a username needs password_file or password_env",
        )
