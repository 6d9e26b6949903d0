"""Small builders for tests: a config from a rule-set dict, events from local times."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from caldaemon import config
from caldaemon.core.assess import assess
from caldaemon.model import Event

TZ = ZoneInfo("America/Toronto")
# A Monday; nothing in the tests depends on the real date.
MONDAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)


def make_settings(
    rules: dict[str, Any],
    *,
    classification: dict[str, Any] | None = None,
    clinician: dict[str, Any] | None = None,
    **top: Any,
) -> config.Settings:
    text = config_text(rules, classification=classification, clinician=clinician, **top)
    return config.parse(text, Path("/tmp/test-config.yaml"))


def config_text(
    rules: dict[str, Any],
    *,
    classification: dict[str, Any] | None = None,
    clinician: dict[str, Any] | None = None,
    **top: Any,
) -> str:
    """The config :func:`make_settings` loads: one clinician, two ics calendars."""
    data: dict[str, Any] = {
        "timezone": "America/Toronto",
        "classification": classification
        or {
            "tags": {
                "heavy": "high",
                "moderate": "moderate",
                "light": "low",
                "supervision": "supervision",
                "team": "peer_support",
                "off": "day_off",
                "admin": "admin",
            },
            "colors": {"tomato": "high"},
        },
        "clinicians": [
            {
                "id": "lee",
                "email": "lee@example.org",
                "rules": "standard",
                "calendars": [
                    {"id": "work", "provider": "ics", "path": "work.ics"},
                    {"id": "home", "provider": "ics", "path": "home.ics", "use": "busy"},
                ],
                **(clinician or {}),
            }
        ],
        "rule_sets": {"standard": rules},
        **top,
    }
    return yaml.safe_dump(data, sort_keys=False)


def at(day: date, hhmm: str, tz: ZoneInfo = TZ) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


_counter = iter(range(10**9))


def session(
    day: date,
    start: str,
    end: str,
    title: str = "Client session",
    *,
    calendar: str = "work",
    tz: ZoneInfo = TZ,
    **fields: Any,
) -> Event:
    return Event(
        calendar=calendar,
        id=fields.pop("id", f"ev{next(_counter)}"),
        start=at(day, start, tz),
        end=at(day, end, tz),
        title=title,
        **fields,
    )


def all_day(day: date, title: str, days: int = 1, *, calendar: str = "work") -> Event:
    start = datetime(day.year, day.month, day.day, tzinfo=TZ)
    return Event(
        calendar=calendar,
        id=f"ev{next(_counter)}",
        start=start,
        end=start + timedelta(days=days),
        all_day=True,
        title=title,
    )


def evaluate(settings: config.Settings, events: list[Event], now: datetime = NOW):
    return assess(
        settings.clinicians[0], settings.classification, events, now, settings.daemon.horizon
    ).evaluation


def rules_hit(evaluation, rule: str) -> list:
    return [v for v in evaluation.violations if v.rule == rule]


class StepClock:
    """An injected clock: fixed, moved on by hand (``advance``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int = 2) -> None:
        self.now += timedelta(minutes=minutes)
