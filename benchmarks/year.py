"""A year of a practice in one daemon: N clinicians, each with a session calendar and a
buffers calendar (the memory provider: the point is caldaemon's own cost over time, not a
service's), one round of cycles per simulated day, notices to the Maildir.

Each simulated day the practice system's calendar shows the next four weeks of sessions
(a weekly timetable, some heavy, a seeded few moved or cancelled), and forgets the past
beyond a month, as practice exports do. What is measured: the state file's size and CPU
per round as the days go by. DESIGN.md §9 wants the state to grow with the horizon, not
with time."""

from __future__ import annotations

import random
import shutil
import textwrap
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from caldaemon.model import Event
from caldaemon.providers.memory import MemoryStore
from caldaemon.service.daemon import Daemon

TZ = ZoneInfo("America/Toronto")
START = date(2027, 1, 4)  # a Monday
HOURS = (9, 10, 11, 13, 14, 15)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _config(folder: Path, clinicians: int) -> Path:
    people = "".join(
        textwrap.dedent(f"""\
          - id: c{n}
            email: c{n}@example.org
            rules: standard
            calendars:
              - {{id: practice, provider: memory, store: year-practice-{n}}}
              - {{id: buffers, provider: memory, store: year-buffers-{n}}}
            buffers_to: buffers
        """)
        for n in range(clinicians)
    )
    path = folder / "config.yaml"
    path.write_text(
        "timezone: America/Toronto\n"
        "daemon: {state_dir: state, horizon: 14d}\n"
        "notices: {quiet_outside_working_hours: false, repeat_after: 7d}\n"
        "clinicians:\n"
        + textwrap.indent(people, "  ")
        + textwrap.dedent("""\
        rule_sets:
          standard:
            working_hours: {mon-fri: "09:00-17:00"}
            max_sessions_per_day: 5
            level_limits: {high: {max_per_day: 2}}
            buffers:
              - {after: high, length: 15m, title: Grounding time}
              - {after: moderate, length: 10m, title: Notes}
            cadence:
              - {kind: supervision, every: 14d}
        """)
    )
    return path


def _timetable(clinician: int, day: date, rng: random.Random) -> list[Event]:
    """The sessions of one day, as the practice system shows them."""
    if day.weekday() >= 5:
        return []
    found = []
    for hour in HOURS:
        if (hour + day.weekday() + clinician) % 4 == 0:
            continue  # a free hour
        start = datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=hour)
        if rng.random() < 0.05:
            start += timedelta(minutes=rng.choice((-30, 30, 60)))  # moved
        heavy = (hour + clinician) % 3 == 0
        found.append(
            Event(
                calendar="practice",
                id=f"c{clinician}-{day.isoformat()}-{hour}",
                start=start,
                end=start + timedelta(minutes=50),
                title="Session #heavy" if heavy else "Session",
                cancelled=rng.random() < 0.03,
            )
        )
    return found


def _show(store: MemoryStore, clinician: int, today: date, rng: random.Random) -> None:
    """Four weeks ahead appear; events older than a month are gone from the export."""
    wanted: dict[str, Event] = {}
    for offset in range(-30, 29):
        for event in _timetable(clinician, today + timedelta(days=offset), rng):
            wanted[event.id] = event
    for event in store.all():
        if event.id not in wanted:
            store.remove(event.id)
    for event_id, event in wanted.items():
        current = store.get(event_id)
        if current is None or (current.start, current.cancelled) != (event.start, event.cancelled):
            store.put(event)


def _state_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("state.sqlite3*"))


def run(folder: Path, clinicians: int = 40, days: int = 365) -> dict[str, Any]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = _config(folder, clinicians)
    clock = Clock(datetime.combine(START, datetime.min.time(), TZ) + timedelta(hours=7))
    rngs = [random.Random(n) for n in range(clinicians)]
    stores = [MemoryStore.named(f"year-practice-{n}") for n in range(clinicians)]
    daemon = Daemon(str(config), clock=clock)
    samples: list[dict[str, Any]] = []
    try:
        for day in range(days):
            today = START + timedelta(days=day)
            clock.now = datetime.combine(today, datetime.min.time(), TZ) + timedelta(hours=7)
            for n, store in enumerate(stores):
                _show(store, n, today, rngs[n])
            cpu = time.process_time()
            reports = daemon.once()
            cpu = time.process_time() - cpu
            if day % 30 == 0 or day == days - 1:
                daemon.state.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                samples.append(
                    {
                        "day": day,
                        "state_kb": _state_bytes(folder / "state") / 1024,
                        "cpu_s": cpu,
                        "rows": {k: len(v) for k, v in daemon.state.dump().items()},
                        "failed": len(daemon.failed_cycles),
                        "cycles": len(reports),
                    }
                )
                print(
                    f"  day {day:3}: state {samples[-1]['state_kb']:,.0f} KB, round CPU "
                    f"{cpu:.2f} s, rows {samples[-1]['rows']}",
                    flush=True,
                )
    finally:
        daemon.close()
        for n in range(clinicians):
            MemoryStore.forget(f"year-practice-{n}")
            MemoryStore.forget(f"year-buffers-{n}")
    notices = len(list((folder / "state" / "notices" / "new").glob("*")))
    return {"clinicians": clinicians, "days": days, "samples": samples, "notices": notices}
