"""A year of a practice in one daemon: N clinicians, each with a session calendar (the
memory provider: the point is caldaemon's own cost over time, not a service's) and a
buffers calendar, by default a local .ics file (``buffers="ics"``: the file caldaemon
writes grows with history, and must not cost more as it does; ``"memory"`` leaves it
out), one round of cycles per simulated day, notices to the Maildir.

Each simulated day the practice system's calendar shows the next four weeks of sessions
(a weekly timetable, some heavy, a seeded few moved or cancelled), and forgets the past
beyond a month, as practice exports do. What is measured: the state file's size and CPU
per round as the days go by, month by month (30 simulated days each; the median round of
a month, so that one round that meets a garbage collection does not speak for it).
DESIGN.md §9 and issue 15 want both to grow with the horizon, not with time: CPU per round
flat within ±20 % from month 2 to month 12. The event cache keeps the past for
``daemon.keep_history`` (400 days, ``caldaemon hours``) by design: its rows grow all year,
the other tables do not."""

from __future__ import annotations

import random
import shutil
import statistics
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


def _config(folder: Path, clinicians: int, buffers: str, keep_history: str) -> Path:
    def calendar(n: int) -> str:
        if buffers == "ics":
            return f"{{id: buffers, provider: ics, path: {folder / 'buffers' / f'c{n}.ics'}}}"
        return f"{{id: buffers, provider: memory, store: year-buffers-{n}}}"

    people = "".join(
        textwrap.dedent(f"""\
          - id: c{n}
            email: c{n}@example.org
            rules: standard
            calendars:
              - {{id: practice, provider: memory, store: year-practice-{n}}}
              - {calendar(n)}
            buffers_to: buffers
        """)
        for n in range(clinicians)
    )
    path = folder / "config.yaml"
    path.write_text(
        "timezone: America/Toronto\n"
        f"daemon: {{state_dir: state, horizon: 14d, keep_history: {keep_history}}}\n"
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


def _bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern))


MONTH = 30  # simulated days


def run(
    folder: Path,
    clinicians: int = 40,
    days: int = 365,
    buffers: str = "ics",
    keep_history: str = "400d",
) -> dict[str, Any]:
    """``keep_history``: how long the event cache keeps the past (``caldaemon hours``);
    shorter than the run, it shows the state with its history bounded as well."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = _config(folder, clinicians, buffers, keep_history)
    clock = Clock(datetime.combine(START, datetime.min.time(), TZ) + timedelta(hours=7))
    rngs = [random.Random(n) for n in range(clinicians)]
    stores = [MemoryStore.named(f"year-practice-{n}") for n in range(clinicians)]
    daemon = Daemon(str(config), clock=clock)
    samples: list[dict[str, Any]] = []
    months: list[dict[str, Any]] = []
    rounds: list[float] = []
    try:
        for day in range(days):
            today = START + timedelta(days=day)
            clock.now = datetime.combine(today, datetime.min.time(), TZ) + timedelta(hours=7)
            for n, store in enumerate(stores):
                _show(store, n, today, rngs[n])
            cpu = time.process_time()
            reports = daemon.once()
            cpu = time.process_time() - cpu
            rounds.append(cpu)
            if day % MONTH == 0 or day == days - 1:
                daemon.state.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                samples.append(
                    {
                        "day": day,
                        "state_kb": _bytes(folder / "state", "state.sqlite3*") / 1024,
                        "cpu_s": cpu,
                        "rows": {k: len(v) for k, v in daemon.state.dump().items()},
                        "failed": len(daemon.failed_cycles),
                        "cycles": len(reports),
                    }
                )
            if (day + 1) % MONTH == 0 or day == days - 1:
                months.append(_month(folder, daemon, rounds[-((day % MONTH) + 1) :], day))
    finally:
        daemon.close()
        for n in range(clinicians):
            MemoryStore.forget(f"year-practice-{n}")
            MemoryStore.forget(f"year-buffers-{n}")
    notices = len(list((folder / "state" / "notices" / "new").glob("*")))
    return {
        "clinicians": clinicians,
        "days": days,
        "buffers": buffers,
        "samples": samples,
        "months": months,
        "notices": notices,
    }


def _month(folder: Path, daemon: Daemon, rounds: list[float], day: int) -> dict[str, Any]:
    """The month that ends on ``day``: its rounds' CPU, and the state and the buffers
    files as the month leaves them."""
    daemon.state.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = {k: len(v) for k, v in daemon.state.dump().items()}
    month = {
        "month": day // MONTH + 1,
        "day": day,
        "cpu_median_s": statistics.median(rounds),
        "cpu_mean_s": statistics.fmean(rounds),
        "state_kb": _bytes(folder / "state", "state.sqlite3*") / 1024,
        "ics_kb": _bytes(folder / "buffers", "*.ics") / 1024,
        "rows": rows,
    }
    shown = ", ".join(f"{k} {v:,}" for k, v in rows.items() if v and k != "meta")
    print(
        f"  month {month['month']:2} (to day {day:3}): CPU per round median "
        f"{month['cpu_median_s']:.2f} s, mean {month['cpu_mean_s']:.2f} s; state "
        f"{month['state_kb'] / 1024:.1f} MB, buffers .ics {month['ics_kb'] / 1024:.1f} MB; "
        f"rows: {shown}",
        flush=True,
    )
    return month


def verdict(months: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 15's target over whole months from month 2 (month 1 holds the first round,
    which writes every buffer): each month's median round within ±20 % of their median,
    and the state's rows other than the event cache's history no more at the end than in
    month 2 (+20 %). The event cache keeps the past for ``keep_history`` by design."""
    later = [m for m in months[1:] if m["day"] + 1 == m["month"] * MONTH]
    if not later:
        return {"met": False, "figure": "too short: no whole month after the first"}
    cpu = [m["cpu_median_s"] for m in later]
    middle = statistics.median(cpu)
    rows = [sum(v for k, v in m["rows"].items() if k != "events") for m in later]
    met = all(abs(c / middle - 1) <= 0.2 for c in cpu) and rows[-1] <= rows[0] * 1.2
    figure = (
        f"CPU per round (a month's median) {cpu[0]:.2f} s in month 2, "
        f"{min(cpu):.2f}–{max(cpu):.2f} s over months 2–{later[-1]['month']} "
        f"({min(cpu) / middle - 1:+.0%} … {max(cpu) / middle - 1:+.0%} of their median); "
        f"state {later[0]['state_kb'] / 1024:.1f} → {later[-1]['state_kb'] / 1024:.1f} MB, "
        f"rows other than the event cache {rows[0]:,} → {rows[-1]:,}"
    )
    return {"met": met, "figure": figure}
