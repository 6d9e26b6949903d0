"""Scale: one daemon process polling ``calendars`` calendars every 60 s against the local
Google and Graph servers, each request delayed 50 ms on the server (DESIGN.md §9: one
process on 2 cores keeps 1,000 calendars polled every 60 s).

Set-up: one clinician per calendar, alternately on Google (a calendar each on one fake
Calendar API server, OAuth refresh tokens) and on Graph (a mailbox each on one fake
tenant, one app with a client secret); each calendar is also the clinician's
``buffers_to`` and holds a week of sessions, 5 #heavy (each gets a buffer) and 5
moderate. The fakes run in this process (threaded HTTP servers, latency slept outside
their locks); the daemon is its own process, ``caldaemon -v run --config …`` started
through a bootstrap that only adds a timestamp and the thread name to its log lines (as
benchmarks/startup.py wraps ``caldaemon`` to count modules).

Read from the daemon's log: for every cycle, its scheduled time (APScheduler's
"Running job … (scheduled at …)", jitter included), when it started, and when it
finished (the cycle's own "cycle <id>: …" line from the same worker thread). Sampled
from /proc/<pid>: CPU time (utime + stime) and peak RSS (VmHWM).

The run: the first round (every calendar's first cycle, a full sync that signs in and
places the buffers; the daemon staggers first runs by 200 ms per clinician), then the
steady state until every calendar has finished ``cycles`` cycles, the first included.
Early in the steady state the daemon is stopped (SIGSTOP) for 20 s, at the moment when
the most cycles fall due in those 20 s; when it continues (SIGCONT, as after a suspended
machine) they are all due at once, and the time it takes to work through them measures
its throughput. Cycles stopped or delayed by this catch-up are left out of the
steady-state figures, and so is the CPU time it took.

Reported:

* ``round_s``: the time one full round of all calendars takes when all its cycles are
  due at once: the catch-up's duration scaled from the cycles it held to ``calendars``
  (the daemon is throughput-bound there, so the time grows in proportion);
* ``lag_s``: in the steady state, the latest a cycle finished after its scheduled time;
* ``cpu_share``: the daemon's CPU seconds over wall seconds in the steady state (one
  core = 1.0);
* ``rss_mb``: the daemon's peak resident memory over the whole run;

and the extra keys listed in :func:`run`.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import MicrosoftServer

from .servers import (
    TZ,
    GoogleSide,
    GraphSide,
    clinician_entry,
    started_google,
    started_graph,
    weekday_sessions,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.05
POLL = "1m"
SLOTS = [(10, True), (15, False)]
SAMPLE_EVERY = 0.1
STOPPED = 20.0
PERIOD = 60.0
# The daemon's start-up stagger (200 ms per clinician) and APScheduler's jitter for a
# 60 s interval (daemon.py: min(poll / 10, 30)): used only to bound the wait.
STAGGER = 0.2
JITTER = 6.0
# A catch-up is over when no cycle that was due before it has run for this long.
SETTLED = 1.0

# Logging with a timestamp and the thread name, then caldaemon's own command line.
_BOOT = (
    "import logging, sys; "
    "logging.basicConfig(level=logging.INFO, format="
    "'%(created).6f %(threadName)s %(levelname)s %(name)s: %(message)s'); "
    "[logging.getLogger(n).setLevel(logging.WARNING) for n in "
    "('googleapiclient', 'msal', 'urllib3', 'apscheduler.scheduler')]; "
    "sys.argv = ['caldaemon', '-v', *sys.argv[1:]]; "
    "from caldaemon.cli import main; main()"
)
_LINE = re.compile(r"^(\d+\.\d+) (\S+) ([A-Z]+) ([\w.]+): (.*)$")
_RUNNING = re.compile(r'^Running job "Daemon\.run_clinician .*" \(scheduled at (.+)\)$')
_CYCLE = re.compile(r"^cycle (\S+): \d+ calendars ok, (\d+) failed, .* \+(\d+) ~\d+ -\d+ buffers$")
_FAILED = re.compile(r"^cycle for (\S+) failed")
_MISSED = re.compile(r'^Run time of job "Daemon\.run_clinician .*" was missed by')


@dataclass(frozen=True)
class CycleTimes:
    clinician: str
    scheduled: float
    started: float
    finished: float


@dataclass
class DaemonLog:
    """What the daemon's log says, parsed as it arrives (times are the records' own)."""

    cycles: dict[str, list[CycleTimes]] = field(default_factory=dict)
    failed: int = 0
    calendar_errors: int = 0
    buffers_placed: int = 0
    missed: int = 0
    warnings: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: dict[str, tuple[float, float]] = field(default_factory=dict)

    def read(self, stream: IO[str]) -> None:
        for raw in stream:
            self.feed(raw.rstrip("\n"))

    def feed(self, line: str) -> None:
        found = _LINE.match(line)
        with self.lock:
            self.tail.append(line)
            if found is None:
                return
            created, thread, level, _, message = found.groups()
            at = float(created)
            if (running := _RUNNING.match(message)) is not None:
                scheduled = datetime.fromisoformat(running.group(1)).timestamp()
                self.running[thread] = (scheduled, at)
            elif (cycle := _CYCLE.match(message)) is not None and thread in self.running:
                scheduled, started = self.running.pop(thread)
                clinician, errors, placed = cycle.groups()
                self.calendar_errors += int(errors)
                self.buffers_placed += int(placed)
                self.cycles.setdefault(clinician, []).append(
                    CycleTimes(clinician, scheduled, started, at)
                )
            elif _FAILED.match(message):
                self.failed += 1
                self.running.pop(thread, None)
            elif _MISSED.match(message):
                self.missed += 1
            elif level in ("WARNING", "ERROR", "CRITICAL"):
                self.warnings += 1

    def done(self, cycles: int) -> int:
        """How many clinicians have finished at least ``cycles`` cycles."""
        with self.lock:
            return sum(1 for c in self.cycles.values() if len(c) >= cycles)

    def caught_up(self, resumed: float) -> bool:
        """No cycle that was due when the daemon continued at ``resumed`` is running, and
        none has finished for a while (the pool's queue, first in first out, is empty)."""
        with self.lock:
            if any(scheduled < resumed for scheduled, _ in self.running.values()):
                return False
            last = max(
                (
                    c.finished
                    for h in self.cycles.values()
                    for c in h
                    if c.scheduled < resumed <= c.started
                ),
                default=resumed,
            )
        return time.time() - last > SETTLED


@dataclass
class ProcessSampler:
    """CPU seconds of one process, sampled from /proc, and its memory."""

    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def cpu(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_kb(self, key: str) -> int:
        """A number from /proc/<pid>/status (kB for the Vm* keys)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def loop(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY):
            try:
                self.samples.append((time.time(), self.cpu()))
            except OSError:
                return

    def cpu_at(self, moment: float) -> tuple[float, float]:
        """The sample nearest to ``moment``: (its time, CPU seconds then)."""
        return min(self.samples, key=lambda s: abs(s[0] - moment))


def _seed(folder: Path, calendars: int) -> tuple[Path, GoogleCalendarServer, MicrosoftServer]:
    """Start the two fakes, seed every calendar, write the config."""
    google = started_google(latency=LATENCY)
    graph = started_graph(latency=LATENCY)
    google_side = GoogleSide(google, folder / "google")
    graph_side = GraphSide(graph, folder / "graph")
    today = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today + timedelta(days=7 - today.weekday())
    clinicians = []
    for index in range(calendars):
        clinician = f"c{index:04d}"
        sessions = weekday_sessions(monday, 7, SLOTS, "s")
        if index % 2 == 0:
            entry = google_side.calendar(clinician, "work", sessions)
        else:
            entry = graph_side.calendar(clinician, "work", sessions)
        clinicians.append(clinician_entry(clinician, entry))
    config = write_config(folder / "config.yaml", clinicians, poll_interval=POLL, horizon="14d")
    return config, google, graph


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(calendars: int = 1000, cycles: int = 3) -> dict[str, Any]:
    """Returns ``calendars``, ``round_s``, ``lag_s``, ``cpu_share`` and ``rss_mb`` (see the
    module's docstring), and:

    * ``first_round_s``: from the daemon's start until every calendar's first cycle
      finished; ``first_lag_s``: the latest a first cycle finished after its schedule;
    * ``period_mean_s``, ``period_max_s``: steady-state time between two polls of the
      same calendar (finish to finish; the schedule's jitter included);
    * ``cycle_p50_ms``, ``cycle_p99_ms``: steady-state cycle durations;
      ``cpu_per_cycle_ms``: steady-state CPU over the cycles finished in it;
      ``steady_cycles``: how many;
    * ``catch_up_cycles``, ``catch_up_s``: the cycles due when the daemon continued and
      the time it took to finish them (``round_s`` is ``catch_up_s`` scaled), and the
      daemon's CPU share meanwhile (near 1.0: bound by its own CPU, not the servers);
    * ``failed`` (cycles that raised), ``calendar_errors`` (calendars a cycle could not
      read), ``buffers_placed``, ``missed`` (runs APScheduler skipped), ``warnings``
      (other warning lines); ``threads`` and ``open_fds`` of the daemon at the end;
      ``google``/``graph`` (calendars on each), ``latency_s``."""
    if cycles < 2:
        raise ValueError("cycles must be at least 2: the first cycle is a full sync")
    with tempfile.TemporaryDirectory(prefix="caldaemon-bench-scale-") as name:
        config, google, graph = _seed(Path(name), calendars)
        try:
            figures = _measure(config, calendars, cycles)
        finally:
            google.stop()
            graph.stop()
    return {
        **figures,
        "google": (calendars + 1) // 2,
        "graph": calendars // 2,
        "latency_s": LATENCY,
    }


def _wait(
    daemon: subprocess.Popen[str],
    log: DaemonLog,
    until: Callable[[], bool],
    deadline: float,
    what: str,
) -> float:
    while not until():
        if daemon.poll() is not None:
            raise RuntimeError("the daemon exited early:\n" + "\n".join(log.tail))
        if time.time() > deadline:
            raise RuntimeError(f"the daemon did not finish {what} in time")
        time.sleep(0.2)
    return time.time()


@dataclass
class Timeline:
    """When things happened, in wall-clock seconds."""

    launched: float
    first_round_end: float = 0.0
    stopped: float = 0.0
    resumed: float = 0.0
    caught_up: float = 0.0
    steady_end: float = 0.0


def _stop_time(log: DaemonLog, earliest: float) -> float:
    """When to stop the daemon so that the most cycles fall due while it is stopped:
    each calendar's next run is expected a period (plus half the jitter) after its last
    scheduled one."""
    with log.lock:
        due = sorted(h[-1].scheduled + PERIOD + JITTER / 2 for h in log.cycles.values())
    candidates = [earliest + step for step in range(int(PERIOD))]
    return max(candidates, key=lambda t: sum(1 for d in due if t <= d < t + STOPPED))


def _measure(config: Path, calendars: int, cycles: int) -> dict[str, Any]:
    log = DaemonLog()
    times = Timeline(time.time())
    daemon = subprocess.Popen(
        [sys.executable, "-c", _BOOT, "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert daemon.stderr is not None
    reader = threading.Thread(target=log.read, args=(daemon.stderr,), daemon=True)
    reader.start()
    sampler = ProcessSampler(daemon.pid)
    threading.Thread(target=sampler.loop, daemon=True).start()
    deadline = times.launched + 60 + STAGGER * calendars + (cycles + 1) * (PERIOD + JITTER)
    peak_kb = threads = fds = 0
    try:
        times.first_round_end = _wait(
            daemon, log, lambda: log.done(1) >= calendars, deadline, "the first round"
        )
        stop_at = _stop_time(log, times.first_round_end + 1)
        _wait(daemon, log, lambda: time.time() >= stop_at, deadline, "waiting")
        daemon.send_signal(signal.SIGSTOP)
        times.stopped = time.time()
        time.sleep(STOPPED)
        times.resumed = time.time()
        daemon.send_signal(signal.SIGCONT)
        times.caught_up = _wait(
            daemon, log, lambda: log.caught_up(times.resumed), times.resumed + 120, "the catch-up"
        )
        times.steady_end = _wait(
            daemon,
            log,
            lambda: log.done(cycles) >= calendars,
            deadline,
            f"{cycles} cycles per calendar",
        )
        peak_kb = sampler.memory_kb("VmHWM")
        threads = sampler.memory_kb("Threads")
        fds = len(os.listdir(f"/proc/{daemon.pid}/fd"))
    finally:
        sampler.stop.set()
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGCONT)
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        reader.join(timeout=10)
    return _figures(log, sampler, calendars, times) | {
        "rss_mb": peak_kb / 1024,
        "threads": threads,
        "open_fds": fds,
    }


def _figures(
    log: DaemonLog, sampler: ProcessSampler, calendars: int, times: Timeline
) -> dict[str, Any]:
    with log.lock:
        histories = [list(c) for c in log.cycles.values()]
    firsts = [h[0] for h in histories]

    def disturbed(cycle: CycleTimes) -> bool:
        """Stopped, or delayed by the catch-up."""
        return cycle.finished > times.stopped and cycle.scheduled < times.caught_up

    def steady(cycle: CycleTimes) -> bool:
        return times.first_round_end <= cycle.started and not disturbed(cycle)

    periods = [
        c.finished - b.finished
        for h in histories
        for b, c in itertools.pairwise(h)
        if steady(c) and not disturbed(b)
    ]
    later = [c for h in histories for c in h[1:] if steady(c)]
    lags = [c.finished - c.scheduled for c in later]
    durations = [c.finished - c.started for c in later]
    cpu = wall = 0.0
    for start, end in ((times.first_round_end, times.stopped), (times.caught_up, times.steady_end)):
        (start_at, start_cpu), (end_at, end_cpu) = sampler.cpu_at(start), sampler.cpu_at(end)
        cpu, wall = cpu + end_cpu - start_cpu, wall + end_at - start_at
    counted = sum(1 for c in later if c.finished <= times.stopped or c.started >= times.caught_up)
    catch_up = [c for h in histories for c in h if c.started >= times.resumed > c.scheduled]
    catch_up_s = max((c.finished for c in catch_up), default=times.resumed) - times.resumed
    (resumed_at, resumed_cpu), (caught_at, caught_cpu) = (
        sampler.cpu_at(times.resumed),
        sampler.cpu_at(times.resumed + catch_up_s),
    )
    return {
        "calendars": calendars,
        "round_s": catch_up_s * calendars / max(len(catch_up), 1),
        "lag_s": max(lags, default=float("nan")),
        "cpu_share": cpu / wall if wall else float("nan"),
        "first_round_s": times.first_round_end - times.launched,
        "first_lag_s": max(c.finished - c.scheduled for c in firsts),
        "period_mean_s": statistics.fmean(periods) if periods else float("nan"),
        "period_max_s": max(periods, default=float("nan")),
        "cycle_p50_ms": _quantile(durations, 0.5) * 1000,
        "cycle_p99_ms": _quantile(durations, 0.99) * 1000,
        "cpu_per_cycle_ms": cpu / max(counted, 1) * 1000,
        "steady_cycles": len(later),
        "catch_up_cycles": len(catch_up),
        "catch_up_s": catch_up_s,
        "catch_up_cpu_share": (caught_cpu - resumed_cpu) / max(caught_at - resumed_at, 1e-9),
        "failed": log.failed,
        "calendar_errors": log.calendar_errors,
        "buffers_placed": log.buffers_placed,
        "missed": log.missed,
        "warnings": log.warnings,
    }
