"""Scale: one daemon process polling ``calendars`` calendars every 60 s against the local
Google and Graph servers, each request delayed 50 ms on the server (DESIGN.md §9; issue
15: 10,000 calendars on one process, lag p99 < 10 s, no missed runs, < 1 GB).

Set-up: one clinician per calendar, alternately on Google (a calendar each on one fake
Calendar API server, OAuth refresh tokens) and on Graph (a mailbox each on one fake
tenant, one app with a client secret); each calendar is also the clinician's
``buffers_to`` and holds a week of sessions, 5 #heavy (each gets a buffer) and 5
moderate. The fakes run in this process (threaded HTTP servers, latency slept outside
their locks); the daemon is its own process, ``caldaemon -v run --config …`` started
through a bootstrap that only adds a timestamp and the thread name to its log lines and
lifts caldaemon's 1 MB limit on the config file (a guard against pointing at the wrong
file; a clinician's entry here takes about 400 bytes, so 10,000 need about 4 MB).

Read from the daemon's log: for every cycle, its scheduled time (APScheduler's
"Running job … (scheduled at …)"), when it started and when it finished (the cycle's own
"cycle <id>: …" line from the same worker thread), and every run APScheduler skipped.
Sampled from /proc/<pid> every 0.1 s: CPU time (utime + stime), threads; at the end the
peak RSS (VmHWM).

The run, in rounds of one poll interval each, counted from the end of the first round
(every calendar's first cycle: a full sync that signs in and places the buffers):

1. a read-back round (each calendar lists the buffers it wrote as changes);
2. a quiet round: nothing changes anywhere, so every cycle is an unchanged poll; the
   daemon's CPU over the cycles it ran is ``unchanged_cpu_ms`` (scheduler, logging and
   idle threads included);
3. ``rounds`` busy rounds: 10 % of the calendars, a different random tenth each round,
   get one session moved by an hour (as a person would drag it), spread evenly over the
   round; at the start of the first busy round every access token either server issued
   is forgotten, so each calendar's next request gets a 401 and signs in again (token
   refreshes inside the run, all in that round: the worst case);
4. the measured round: the daemon is stopped (SIGSTOP) for a little less than a poll,
   so nearly every calendar falls due meanwhile; when it continues (SIGCONT, as after a
   suspended machine) they are due at once, and ``round_s`` is the time until every
   calendar has finished a cycle begun after that: measured, not scaled.

Per round: cycles, lag behind the poll p50 and p99 (a cycle's finish minus its scheduled
time, the schedule's jitter included; in the measured round counted from when the daemon
continued), missed runs (APScheduler's "missed by" and "maximum number of running
instances"), CPU share of one core, most threads.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
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

from .servers import (
    TZ,
    GoogleSide,
    GraphSide,
    Session,
    clinician_entry,
    google_resource,
    started_google,
    started_graph,
    weekday_sessions,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.05
POLL = "1m"
PERIOD = 60.0
SLOTS = [(10, True), (15, False)]
SAMPLE_EVERY = 0.1
CHANGING = 0.10
# The measured round: stopped a little less than a poll, so that nearly every calendar
# falls due meanwhile and the one due first is still within APScheduler's grace time
# (misfire_grace_time = the poll interval, daemon.py) when the daemon continues.
STOPPED = PERIOD - 2.0

_BOOT = (
    "import logging, sys; "
    "logging.basicConfig(level=logging.INFO, format="
    "'%(created).6f %(threadName)s %(levelname)s %(name)s: %(message)s'); "
    "[logging.getLogger(n).setLevel(logging.WARNING) for n in "
    "('googleapiclient', 'msal', 'urllib3', 'apscheduler.scheduler')]; "
    "import caldaemon.config.load; "
    "sys.argv = ['caldaemon', '-v', *sys.argv[1:]]; "
    "from caldaemon.cli import main; main()"
)
_LINE = re.compile(r"^(\d+\.\d+) (\S+) ([A-Z]+) ([\w.]+): (.*)$")
_RUNNING = re.compile(r'^Running job "Daemon\.run_clinician .*" \(scheduled at (.+)\)$')
_CYCLE = re.compile(r"^cycle (\S+): \d+ calendars ok, (\d+) failed, .* \+(\d+) ~\d+ -\d+ buffers$")
_FAILED = re.compile(r"^cycle for (\S+) failed")
_MISSED = re.compile(r'^(Run time of job "Daemon\.run_clinician|Execution of job "Daemon\.run)')


@dataclass(frozen=True)
class CycleTimes:
    clinician: str
    scheduled: float
    started: float
    finished: float


@dataclass
class DaemonLog:
    """What the daemon's log says, parsed as it arrives (times are the records' own)."""

    cycles: list[CycleTimes] = field(default_factory=list)
    done: dict[str, int] = field(default_factory=dict)
    missed: list[float] = field(default_factory=list)
    failed: int = 0
    calendar_errors: int = 0
    buffers_placed: int = 0
    warnings: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: dict[str, tuple[float, float]] = field(default_factory=dict)

    def read(self, stream: IO[str], copy: IO[str] | None = None) -> None:
        for raw in stream:
            if copy is not None:
                copy.write(raw)
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
                self.cycles.append(CycleTimes(clinician, scheduled, started, at))
                self.done[clinician] = self.done.get(clinician, 0) + 1
            elif _FAILED.match(message):
                self.failed += 1
                self.running.pop(thread, None)
            elif _MISSED.match(message):
                self.missed.append(at)
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


@dataclass
class ProcessSampler:
    """CPU seconds and threads of one process, sampled from /proc."""

    pid: int
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def cpu(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status(self, key: str) -> int:
        """A number from /proc/<pid>/status (kB for the Vm* keys)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def loop(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY):
            try:
                self.samples.append((time.time(), self.cpu(), self.status("Threads")))
            except OSError:
                return

    def between(self, start: float, end: float) -> tuple[float, float, int]:
        """CPU seconds and wall seconds from ``start`` to ``end``, and most threads."""
        inside = [s for s in self.samples if start <= s[0] <= end] or [
            min(self.samples, key=lambda s: abs(s[0] - start))
        ]
        first = min(self.samples, key=lambda s: abs(s[0] - start))
        last = min(self.samples, key=lambda s: abs(s[0] - end))
        return last[1] - first[1], last[0] - first[0], max(s[2] for s in inside)


@dataclass
class Practice:
    """The fakes, every calendar's sessions, and a person's hand on them."""

    folder: Path
    calendars: int
    google: Any = None
    graph: Any = None
    google_side: GoogleSide | None = None
    graph_side: GraphSide | None = None
    sessions: list[Session] = field(default_factory=list)
    moved: set[tuple[int, str]] = field(default_factory=set)
    changes: int = 0

    def seed(self) -> Path:
        self.google = started_google(latency=LATENCY)
        self.graph = started_graph(latency=LATENCY)
        self.google_side = GoogleSide(self.google, self.folder / "google")
        self.graph_side = GraphSide(self.graph, self.folder / "graph")
        today = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        monday = today + timedelta(days=7 - today.weekday())
        self.sessions = weekday_sessions(monday, 7, SLOTS, "s")
        clinicians = []
        for index in range(self.calendars):
            name = _name(index)
            if index % 2 == 0:
                entry = self.google_side.calendar(name, "work", self.sessions)
            else:
                entry = self.graph_side.calendar(name, "work", self.sessions)
            clinicians.append(clinician_entry(name, entry))
        return write_config(
            self.folder / "config.yaml", clinicians, poll_interval=POLL, horizon="14d"
        )

    def change(self, index: int, rng: random.Random) -> None:
        """Move one of the calendar's heavy sessions by an hour (or back)."""
        assert self.google_side is not None and self.graph_side is not None
        session = rng.choice([s for s in self.sessions if s.heavy])
        key = (index, session.key)
        start = session.start if key in self.moved else session.start + timedelta(hours=1)
        self.moved.symmetric_difference_update({key})
        if index % 2 == 0:
            self.google.put_event(f"{_name(index)}@bench.example", google_resource(session, start))
        else:
            self.graph_side.move(_name(index), session, start)
        self.changes += 1

    def expire_sign_ins(self) -> None:
        self.google.expire_access_tokens()
        self.graph.expire_access_tokens()

    def stop(self) -> None:
        for server in (self.google, self.graph):
            if server is not None:
                server.stop()


def _name(index: int) -> str:
    return f"c{index:05d}"


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    calendars: int = 1000, rounds: int = 2, seed: int = 15, log_to: Path | None = None
) -> dict[str, Any]:
    """The figures of one run (see the module's docstring): ``round_s``, ``rounds`` (one
    dict per round: ``name``, ``cycles``, ``lag_p50_s``, ``lag_p99_s``, ``missed``,
    ``cpu_share``, ``threads``), ``unchanged_cpu_ms``, ``rss_mb``, ``threads``,
    ``first_round_s``, ``changes``, ``failed``, ``calendar_errors``, ``buffers_placed``,
    ``warnings``, ``open_fds``."""
    if rounds < 1:
        raise ValueError("at least one busy round")
    with tempfile.TemporaryDirectory(prefix="caldaemon-bench-scale-") as name:
        practice = Practice(Path(name), calendars)
        try:
            config = practice.seed()
            figures = _measure(practice, config, rounds, random.Random(seed), log_to)
        finally:
            practice.stop()
    return {
        **figures,
        "calendars": calendars,
        "google": (calendars + 1) // 2,
        "graph": calendars // 2,
        "latency_s": LATENCY,
        "changes": practice.changes,
    }


def _wait(
    daemon: subprocess.Popen[str], log: DaemonLog, until: Callable[[], bool], deadline: float
) -> float:
    while not until():
        if daemon.poll() is not None:
            raise RuntimeError("the daemon exited early:\n" + "\n".join(log.tail))
        if time.time() > deadline:
            raise RuntimeError("the daemon fell too far behind:\n" + "\n".join(log.tail))
        time.sleep(0.1)
    return time.time()


def _busy_round(
    practice: Practice, start: float, rng: random.Random, daemon: subprocess.Popen[str]
) -> None:
    """A tenth of the calendars changed, spread evenly from ``start`` over one poll."""
    chosen = rng.sample(range(practice.calendars), max(1, int(practice.calendars * CHANGING)))
    for n, index in enumerate(chosen):
        delay = start + PERIOD * n / len(chosen) - time.time()
        if delay > 0:
            time.sleep(delay)
        if daemon.poll() is not None:
            return
        practice.change(index, rng)
    time.sleep(max(0.0, start + PERIOD - time.time()))


def _measure(
    practice: Practice, config: Path, rounds: int, rng: random.Random, log_to: Path | None
) -> dict[str, Any]:
    log = DaemonLog()
    launched = time.time()
    daemon = subprocess.Popen(
        [sys.executable, "-c", _BOOT, "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert daemon.stderr is not None
    copy = log_to.open("w") if log_to is not None else None
    reader = threading.Thread(target=log.read, args=(daemon.stderr, copy), daemon=True)
    reader.start()
    sampler = ProcessSampler(daemon.pid)
    threading.Thread(target=sampler.loop, daemon=True).start()
    calendars = practice.calendars
    bounds: list[tuple[str, float, float]] = []
    peak_kb = fds = 0
    try:
        first_end = _wait(daemon, log, lambda: log.finished(1) >= calendars, launched + 20 * PERIOD)
        bounds.append(("first", launched, first_end))
        # Rounds start on the first round's end: by then every calendar has its phase.
        # The second round reads back the buffers the first one wrote.
        quiet_start = first_end + PERIOD
        quiet_end = quiet_start + PERIOD
        _wait(daemon, log, lambda: time.time() >= quiet_start, quiet_start + 1)
        bounds.append(("read back", first_end, quiet_start))
        _wait(daemon, log, lambda: time.time() >= quiet_end, quiet_end + 1)
        bounds.append(("quiet", quiet_start, quiet_end))
        start = quiet_end
        for number in range(1, rounds + 1):
            if number == 1:
                practice.expire_sign_ins()
            _busy_round(practice, start, rng, daemon)
            bounds.append(
                (f"busy {number}" + (" (sign-ins)" if number == 1 else ""), start, start + PERIOD)
            )
            start += PERIOD
        daemon.send_signal(signal.SIGSTOP)
        time.sleep(STOPPED)
        resumed = time.time()
        daemon.send_signal(signal.SIGCONT)
        round_end = _wait(
            daemon,
            log,
            lambda: log.polled_since(resumed) >= calendars,
            resumed + 20 * PERIOD,
        )
        bounds.append(("measured", resumed, round_end))
        peak_kb = sampler.status("VmHWM")
        fds = len(os.listdir(f"/proc/{daemon.pid}/fd"))
    finally:
        sampler.stop.set()
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGCONT)
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        reader.join(timeout=10)
        if copy is not None:
            copy.close()
    per_round = [_round(log, sampler, *bound) for bound in bounds]
    quiet = next(r for r in per_round if r["name"] == "quiet")
    measured = per_round[-1]
    return {
        "round_s": measured["last_finished"] - resumed,
        "round_cycles": measured["cycles"],
        "first_round_s": first_end - launched,
        "rounds": per_round,
        "unchanged_cpu_ms": quiet["cpu_s"] / max(quiet["cycles"], 1) * 1000,
        "rss_mb": peak_kb / 1024,
        "threads": max(r["threads"] for r in per_round),
        "open_fds": fds,
        "failed": log.failed,
        "calendar_errors": log.calendar_errors,
        "buffers_placed": log.buffers_placed,
        "warnings": log.warnings,
    }


def _round(
    log: DaemonLog, sampler: ProcessSampler, name: str, start: float, end: float
) -> dict[str, Any]:
    """The cycles scheduled from ``start`` to ``end``, and the process meanwhile. The
    measured round (``start``: when the daemon continued) holds each calendar's first
    cycle from then on, its lag counted from ``start`` or its schedule, whichever is
    later (from when the daemon could have run it)."""
    with log.lock:
        if name == "measured":
            first: dict[str, CycleTimes] = {}
            for c in log.cycles:
                if c.started >= start and c.clinician not in first:
                    first[c.clinician] = c
            cycles = list(first.values())
        else:
            cycles = [c for c in log.cycles if start <= c.scheduled < end]
        missed = sum(1 for at in log.missed if start <= at < end)
    lags = [c.finished - max(c.scheduled, start if name == "measured" else 0) for c in cycles]
    cpu, wall, threads = sampler.between(start, end)
    return {
        "name": name,
        "cycles": len(cycles),
        "last_finished": max((c.finished for c in cycles), default=end),
        "lag_p50_s": _quantile(lags, 0.5),
        "lag_p99_s": _quantile(lags, 0.99),
        "missed": missed,
        "cpu_s": cpu,
        "cpu_share": cpu / wall if wall else float("nan"),
        "threads": threads,
    }


def table(figures: dict[str, Any]) -> str:
    """The figures as a Markdown table, one row per round."""
    lines = [
        f"{figures['calendars']:,} calendars ({figures['google']:,} Google + "
        f"{figures['graph']:,} Graph), poll 60 s, {figures['latency_s'] * 1000:.0f} ms per "
        f"request; measured round {figures['round_s']:.1f} s for "
        f"{figures['round_cycles']:,} cycles; unchanged cycle "
        f"{figures['unchanged_cpu_ms']:.2f} ms CPU; peak RSS {figures['rss_mb']:.0f} MB; "
        f"most threads {figures['threads']}; {figures['open_fds']} open files; "
        f"{figures['changes']:,} sessions moved; {figures['failed']} failed cycles, "
        f"{figures['calendar_errors']} calendar errors, {figures['warnings']} warnings",
        "",
        "| round | cycles | lag p50 | lag p99 | missed | CPU (one core) | threads |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in figures["rounds"]:
        lines.append(
            f"| {r['name']} | {r['cycles']:,} | {r['lag_p50_s']:.2f} s | "
            f"{r['lag_p99_s']:.2f} s | {r['missed']} | {r['cpu_share']:.0%} | {r['threads']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--calendars", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="busy rounds (default 2)")
    parser.add_argument("--log", type=Path, help="keep the daemon's log in this file")
    args = parser.parse_args(argv)
    print(table(run(args.calendars, args.rounds, log_to=args.log)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
