"""What the daemons of benchmarks/scale.py say in their logs, parsed as the lines arrive,
and the checks made on it afterwards.

Every line the bootstrap formats starts with the record's time, the process id and the
thread name, so that the logs of several processes read into one :class:`DaemonLog`
keep each cycle with the process and worker thread that ran it: a cycle is APScheduler's
"Running job … (scheduled at …)" and then the cycle's own "cycle <id>: …" line from the
same thread of the same process. An instance on a shared state polls the clinicians it
holds; a job that finds its clinician no longer held logs no "cycle" line and is no cycle.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

LINE_FORMAT = "%(created).6f %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"
_LINE = re.compile(r"^(\d+\.\d+) (\d+) (\S+) ([A-Z]+) ([\w.]+): (.*)$")
_RUNNING = re.compile(r'^Running job "Daemon\.run_clinician .*" \(scheduled at (.+)\)$')
_CYCLE = re.compile(r"^cycle (\S+): \d+ calendars ok, (\d+) failed, .* \+(\d+) ~\d+ -\d+ buffers$")
_FAILED = re.compile(r"^cycle for (\S+) failed")
_MISSED = re.compile(r'^(Run time of job "Daemon\.run_clinician|Execution of job "Daemon\.run)')
_HOLDING = re.compile(r"^holding (\d+) clinician\(s\) \((\d+) taken, (\d+) given back\)$")
# APScheduler 3 moves each run by up to the daemon's jitter (1 s) from the last one, so a
# clinician polled every round can still have no run scheduled inside one round's bounds.
JITTER = 1.0


@dataclass(frozen=True)
class CycleTimes:
    clinician: str
    process: int
    scheduled: float
    started: float
    finished: float


@dataclass(frozen=True)
class Holding:
    """One "holding N clinician(s) (T taken, G given back)" line: the leases changed."""

    at: float
    process: int
    held: int
    taken: int
    given: int


@dataclass
class DaemonLog:
    """What the daemons' logs say (times are the records' own)."""

    cycles: list[CycleTimes] = field(default_factory=list)
    done: dict[str, int] = field(default_factory=dict)
    missed: list[tuple[float, int]] = field(default_factory=list)
    holdings: list[Holding] = field(default_factory=list)
    failed: int = 0
    calendar_errors: int = 0
    buffers_placed: int = 0
    warnings: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: dict[tuple[int, str], tuple[float, float]] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        found = _LINE.match(line)
        with self.lock:
            self.tail.append(line)
            if found is None:
                return
            created, pid, thread, level, _, message = found.groups()
            at, process = float(created), int(pid)
            worker = (process, thread)
            if (running := _RUNNING.match(message)) is not None:
                scheduled = datetime.fromisoformat(running.group(1)).timestamp()
                self.running[worker] = (scheduled, at)
            elif (cycle := _CYCLE.match(message)) is not None and worker in self.running:
                scheduled, started = self.running.pop(worker)
                clinician, errors, placed = cycle.groups()
                self.calendar_errors += int(errors)
                self.buffers_placed += int(placed)
                self.cycles.append(CycleTimes(clinician, process, scheduled, started, at))
                self.done[clinician] = self.done.get(clinician, 0) + 1
            elif _FAILED.match(message):
                self.failed += 1
                self.running.pop(worker, None)
            elif _MISSED.match(message):
                self.missed.append((at, process))
            elif (holding := _HOLDING.match(message)) is not None:
                held, taken, given = (int(n) for n in holding.groups())
                self.holdings.append(Holding(at, process, held, taken, given))
            elif level in ("WARNING", "ERROR", "CRITICAL"):
                self.warnings += 1

    def finished(self, at_least: int) -> int:
        """How many clinicians have finished at least ``at_least`` cycles."""
        with self.lock:
            return sum(1 for n in self.done.values() if n >= at_least)

    def polled_since(self, moment: float) -> int:
        """How many clinicians have had a cycle start at or after ``moment``."""
        with self.lock:
            return len({c.clinician for c in self.cycles if c.started >= moment})

    def finished_scheduled_since(self, moment: float) -> int:
        """How many clinicians have finished a cycle scheduled at or after ``moment``."""
        with self.lock:
            return len({c.clinician for c in self.cycles if c.scheduled >= moment})

    def last_held(self) -> Counter[int]:
        """How many clinicians each process said it held last."""
        with self.lock:
            return Counter({h.process: h.held for h in self.holdings})


def overlapping(cycles: Iterable[CycleTimes]) -> list[tuple[CycleTimes, CycleTimes]]:
    """Pairs of cycles of one clinician run by two processes at overlapping times (from
    the job's start to the cycle's line): what the leases exist to prevent."""
    by_clinician: dict[str, list[CycleTimes]] = {}
    for cycle in cycles:
        by_clinician.setdefault(cycle.clinician, []).append(cycle)
    pairs = []
    for runs in by_clinician.values():
        runs.sort(key=lambda c: c.started)
        for i, earlier in enumerate(runs):
            for later in runs[i + 1 :]:
                if later.started >= earlier.finished:
                    break
                if later.process != earlier.process:
                    pairs.append((earlier, later))
    return pairs


def unpolled(
    cycles: Iterable[CycleTimes], clinicians: Iterable[str], start: float, end: float
) -> set[str]:
    """The clinicians no process ran a cycle for that was scheduled from ``start`` to
    ``end`` (widened by the jitter on both sides)."""
    polled = {c.clinician for c in cycles if start - JITTER <= c.scheduled < end + JITTER}
    return set(clinicians) - polled


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
