"""A generated year of a group practice as .ics files: 40 clinicians in several time
zones, weekly recurring sessions with moved and cancelled instances, and one-off
sessions; about 50,000 sessions in all. Deterministic (seeded)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ZONES = [
    "America/Toronto",
    "America/Vancouver",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
]
TAGS = ["#heavy", "[trauma]", "#intake", "#light", "", "", ""]
START = date(2026, 1, 5)  # a Monday
NOW = datetime(2026, 1, 5, 8, 0)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def clinician_ics(index: int, rng: random.Random) -> tuple[str, int]:
    """One clinician's year; returns the text and the number of sessions in it."""
    zone = ZONES[index % len(ZONES)]
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:-//bench//practice {index}//EN"]
    sessions = 0
    slots = [(day, hour) for day in range(5) for hour in (9, 10, 11, 13, 14, 15)]
    rng.shuffle(slots)
    for number, (day, hour) in enumerate(slots[:20]):
        first = datetime.combine(START + timedelta(days=day), datetime.min.time()).replace(
            hour=hour
        )
        uid = f"c{index}-series{number}@bench"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID={zone}:{_stamp(first)}",
            f"DTEND;TZID={zone}:{_stamp(first + timedelta(minutes=50))}",
            f"SUMMARY:Session client {index}-{number} {rng.choice(TAGS)}",
            "RRULE:FREQ=WEEKLY;COUNT=52",
        ]
        cancelled = [first + timedelta(weeks=w) for w in rng.sample(range(52), 2)]
        lines += [f"EXDATE;TZID={zone}:{_stamp(c)}" for c in cancelled]
        lines.append("END:VEVENT")
        sessions += 50
        week = rng.randrange(52)
        original = first + timedelta(weeks=week)
        if original not in cancelled:
            moved = original + timedelta(hours=rng.choice([-2, 1, 3]))
            lines += [
                "BEGIN:VEVENT",
                f"UID:{uid}",
                "DTSTAMP:20260101T000000Z",
                f"RECURRENCE-ID;TZID={zone}:{_stamp(original)}",
                f"DTSTART;TZID={zone}:{_stamp(moved)}",
                f"DTEND;TZID={zone}:{_stamp(moved + timedelta(minutes=50))}",
                f"SUMMARY:Session client {index}-{number} (moved)",
                "END:VEVENT",
            ]
    for number in range(sessions // 4):
        day = START + timedelta(days=rng.randrange(364))
        start = datetime.combine(day, datetime.min.time()).replace(
            hour=rng.randrange(8, 19), minute=rng.choice([0, 30])
        )
        lines += [
            "BEGIN:VEVENT",
            f"UID:c{index}-one{number}@bench",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID={zone}:{_stamp(start)}",
            f"DTEND;TZID={zone}:{_stamp(start + timedelta(minutes=50))}",
            f"SUMMARY:Client session {rng.choice(TAGS)}",
            "END:VEVENT",
        ]
    sessions += sessions // 4
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n", sessions


def write_practice(folder: Path, clinicians: int = 40, seed: int = 7) -> tuple[Path, int]:
    """Write the calendars and a config; returns the config path and the session count."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    total = 0
    entries = []
    for index in range(clinicians):
        text, count = clinician_ics(index, rng)
        (folder / f"clinician{index}.ics").write_text(text)
        total += count
        zone = ZONES[index % len(ZONES)]
        entries.append(f"""  - id: c{index}
    timezone: {zone}
    rules: standard
    calendars:
      - {{id: practice, provider: ics, path: clinician{index}.ics}}
""")
    config = folder / "config.yaml"
    config.write_text(f"""timezone: America/Toronto
daemon: {{horizon: 365d, state_dir: state}}
clinicians:
{"".join(entries)}rule_sets:
  standard:
    working_hours: {{mon-fri: "09:00-17:00"}}
    max_sessions_per_day: 6
    max_sessions_per_week: 22
    level_limits: {{high: {{max_per_day: 2, latest_start: "15:00"}}}}
    breaks: {{after_sessions: 3, min_break: 30m}}
    no_back_to_back: {{level: high, min_gap: 60m}}
    max_daily_load: 12
    buffers:
      - {{after: high, length: 15m, title: Grounding}}
      - {{after: moderate, length: 10m, title: Notes}}
    double_booked: true
""")
    return config, total


def now_in(zone: str = "America/Toronto") -> datetime:
    return NOW.replace(tzinfo=ZoneInfo(zone))
