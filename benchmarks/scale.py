"""Scale: daemons polling ``calendars`` calendars every 60 s against the local Google and
Graph servers, each request delayed 50 ms on the server (DESIGN.md §9; issue 15: 10,000
calendars on one process, lag p99 < 10 s, no missed runs, < 1 GB; then several processes
sharing the clinicians through PostgreSQL).

Set-up: one clinician per calendar, alternately on Google (a calendar each on one fake
Calendar API server, OAuth refresh tokens) and on Graph (a mailbox each on one fake
tenant, one app with a client secret); each calendar is also the clinician's
``buffers_to`` and holds a week of sessions, 5 #heavy (each gets a buffer) and 5
moderate. The fakes run in this process (threaded HTTP servers, latency slept outside
their locks; their CPU is reported: a saturated core here shows as lag there). Each
daemon is its own process, ``caldaemon -v run --config …`` started through a bootstrap
that only adds a timestamp, the process and the thread name to its log lines (a
clinician's entry here takes about 430 bytes: 10,000 make a config of about 4.3 MB,
within caldaemon's 10 MB bound).

With ``processes`` = 1 the daemon keeps its state in SQLite. With more, a throwaway
PostgreSQL cluster (tests/state/cluster.py; fsync on, unix socket) holds one state for
``processes`` daemons started at once on the same config (``daemon.state: postgresql://…``,
``state_password_file``): they share the clinicians by leases. The server's CPU (the
postmaster and its backends) is sampled too, and at the end each daemon's leases are
read from ``caldaemon status --json``.

Read from the daemons' logs (benchmarks/scale_log.py): every cycle, its process, its
scheduled time, when it started and finished, and every run APScheduler skipped. Sampled
from /proc every 0.1 s (benchmarks/scale_procs.py): CPU time and threads; at the end the
peak RSS (VmHWM).

The run, in rounds of one poll interval each, counted from the end of the first round
(every calendar's first cycle: a full sync that signs in and places the buffers):

1. a read-back round (each calendar lists the buffers it wrote as changes);
2. a quiet round: nothing changes anywhere, so every cycle is an unchanged poll; the
   daemons' CPU over the cycles they ran is ``unchanged_cpu_ms`` (scheduler, logging,
   idle threads and, when shared, the lease heartbeats included);
3. ``rounds`` busy rounds: 10 % of the calendars, a different random tenth each round,
   get one session moved by an hour (as a person would drag it), spread evenly over the
   round; at the start of the first busy round every access token either server issued
   is forgotten, so each calendar's next request gets a 401 and signs in again (token
   refreshes inside the run, all in that round: the worst case);
4. the measured round: once the last busy round's cycles have finished (at most a poll
   later), every daemon is stopped (SIGSTOP) for a little less than a poll,
   so nearly every calendar falls due meanwhile; when they continue (SIGCONT, as after a
   suspended machine) they are due at once, and ``round_s`` is the time until every
   calendar has finished a cycle begun after that: measured, not scaled.

Per round, over all daemons together: cycles, lag behind the poll p50 and p99 (a cycle's
finish minus its scheduled time, the schedule's jitter included; in the measured round
counted from when the daemons continued), missed runs (APScheduler's "missed by" and
"maximum number of running instances"), clinicians with no cycle in the round, CPU share
of one core (daemons, this process, PostgreSQL), threads. Per daemon: cycles, missed
runs, CPU share from the end of the first round to the measured one, peak RSS, threads,
leases at the end.
Checked after the run: no clinician cycled by two daemons at overlapping times.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.state.cluster import ClusterUnavailable, Postgres, start_cluster

from . import runs
from .scale_log import LINE_FORMAT, DaemonLog, overlapping, quantile, unpolled
from .scale_practice import LATENCY, Practice, name_of
from .scale_procs import Fleet, ProcessSampler
from .scale_table import table

ROOT = Path(__file__).resolve().parents[1]
PERIOD = 60.0
CHANGING = 0.10
# The measured round: stopped a little less than a poll, so that nearly every calendar
# falls due meanwhile and none twice (a late poll runs once, however late:
# service/jobs.py).
STOPPED = PERIOD - 2.0
# The largest jitter the daemon adds to a poll (caldaemon/service/jobs.py).
JITTER = 1.0

_BOOT = (
    "import logging, sys; "
    "logging.basicConfig(level=logging.INFO, format="
    f"'{LINE_FORMAT}'); "
    "[logging.getLogger(n).setLevel(logging.WARNING) for n in "
    "('googleapiclient', 'msal', 'urllib3', 'apscheduler.scheduler')]; "
    "sys.argv = ['caldaemon', '-v', *sys.argv[1:]]; "
    "from caldaemon.cli import main; main()"
)


def run(
    calendars: int = 1000,
    rounds: int = 2,
    seed: int = 15,
    log_to: Path | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """The figures of one run (see the module's docstring): ``round_s``, ``rounds`` (one
    dict per round: ``name``, ``cycles``, ``lag_p50_s``, ``lag_p99_s``, ``missed``,
    ``unpolled``, ``cpu_share``, ``bench_share``, ``postgres_share``, ``threads``),
    ``daemons`` (one dict per process: ``pid``, ``cycles``, ``missed``, ``cpu_share``,
    ``rss_mb``, ``threads``, ``leases``), ``overlaps``, ``unchanged_cpu_ms``, ``rss_mb``,
    ``threads``, ``first_round_s``, ``changes``, ``failed``, ``calendar_errors``,
    ``buffers_placed``, ``warnings``, ``open_fds``, ``lease_changes``."""
    if rounds < 1:
        raise ValueError("at least one busy round")
    if processes < 1:
        raise ValueError("at least one process")
    postgres = start_cluster(fsync=True) if processes > 1 else None
    try:
        with tempfile.TemporaryDirectory(prefix="caldaemon-bench-scale-") as name:
            practice = Practice(Path(name), calendars)
            try:
                config = practice.seed(postgres)
                fleet = Fleet(_BOOT, config, processes, ROOT)
                figures = _measure(practice, fleet, postgres, rounds, random.Random(seed), log_to)
            finally:
                practice.stop()
    finally:
        if postgres is not None:
            postgres.stop()
    return {
        **figures,
        "calendars": calendars,
        "processes": processes,
        "google": (calendars + 1) // 2,
        "graph": calendars // 2,
        "latency_s": LATENCY,
        "changes": practice.changes,
    }


def _wait(fleet: Fleet, until: Callable[[], bool], deadline: float) -> float:
    while not until():
        fleet.check()
        if time.time() > deadline:
            raise RuntimeError("the daemons fell too far behind:\n" + "\n".join(fleet.log.tail))
        time.sleep(0.1)
    return time.time()


def _busy_round(practice: Practice, start: float, rng: random.Random, fleet: Fleet) -> None:
    """A tenth of the calendars changed, spread evenly from ``start`` over one poll."""
    chosen = rng.sample(range(practice.calendars), max(1, int(practice.calendars * CHANGING)))
    for n, index in enumerate(chosen):
        delay = start + PERIOD * n / len(chosen) - time.time()
        if delay > 0:
            time.sleep(delay)
        fleet.check()
        practice.change(index, rng)
    time.sleep(max(0.0, start + PERIOD - time.time()))


@dataclass(frozen=True)
class Samplers:
    """The daemons', this process's (the fakes) and PostgreSQL's CPU."""

    daemons: list[ProcessSampler]
    bench: ProcessSampler
    postgres: ProcessSampler | None

    def stop(self) -> None:
        for sampler in (*self.daemons, self.bench, self.postgres):
            if sampler is not None:
                sampler.stop.set()


def _measure(
    practice: Practice,
    fleet: Fleet,
    postgres: Postgres | None,
    rounds: int,
    rng: random.Random,
    log_to: Path | None,
) -> dict[str, Any]:
    log = fleet.log
    copy = log_to.open("w") if log_to is not None else None
    server = None
    if postgres is not None:
        server = ProcessSampler(postgres.postmaster_pid(), tree=True).started()
    bench = ProcessSampler(os.getpid()).started()
    launched = time.time()
    fleet.start(copy)
    samplers = Samplers(fleet.samplers, bench, server)
    calendars = practice.calendars
    bounds: list[tuple[str, float, float]] = []
    peaks: list[int] = []
    fds: list[int] = []
    leases: Counter[int] = Counter()
    try:
        first_end = _wait(fleet, lambda: log.finished(1) >= calendars, launched + 20 * PERIOD)
        bounds.append(("first", launched, first_end))
        # Rounds start on the first round's end: by then every calendar has its phase.
        # The second round reads back the buffers the first one wrote.
        quiet_start = first_end + PERIOD
        quiet_end = quiet_start + PERIOD
        _wait(fleet, lambda: time.time() >= quiet_start, quiet_start + 1)
        bounds.append(("read back", first_end, quiet_start))
        _wait(fleet, lambda: time.time() >= quiet_end, quiet_end + 1)
        bounds.append(("quiet", quiet_start, quiet_end))
        start = quiet_end
        for number in range(1, rounds + 1):
            if number == 1:
                practice.expire_sign_ins()
            _busy_round(practice, start, rng, fleet)
            bounds.append(
                (f"busy {number}" + (" (sign-ins)" if number == 1 else ""), start, start + PERIOD)
            )
            start += PERIOD
        # The last busy round's cycles finish before the stop (at most a poll more): one
        # still queued or running then would count the stop's 58 s as its lag.
        last_round = start - PERIOD - JITTER
        while log.finished_scheduled_since(last_round) < calendars and time.time() < start + PERIOD:
            time.sleep(0.1)
        stopped = time.time()
        fleet.signal(signal.SIGSTOP)
        time.sleep(STOPPED)
        resumed = time.time()
        fleet.signal(signal.SIGCONT)
        round_end = _wait(
            fleet, lambda: log.polled_since(resumed) >= calendars, resumed + 20 * PERIOD
        )
        bounds.append(("measured", resumed, round_end))
        peaks, fds = fleet.peak_kb(), fleet.open_fds()
        if postgres is not None:
            leases = _leases(fleet)
    finally:
        samplers.stop()
        fleet.stop()
        if copy is not None:
            copy.close()
    clinicians = [name_of(i) for i in range(calendars)]
    per_round = [_round(log, samplers, clinicians, *bound) for bound in bounds]
    quiet = next(r for r in per_round if r["name"] == "quiet")
    measured = per_round[-1]
    per_process = Counter(c.process for c in log.cycles)
    missed = Counter(process for _, process in log.missed)
    daemons = []
    for daemon, sampler, peak in zip(fleet.daemons, fleet.samplers, peaks, strict=True):
        cpu, wall, _ = sampler.between(first_end, stopped)
        daemons.append(
            {
                "pid": daemon.pid,
                "cycles": per_process[daemon.pid],
                "missed": missed[daemon.pid],
                "cpu_share": cpu / wall if wall else float("nan"),
                "rss_mb": peak / 1024,
                "threads": max(s[2] for s in sampler.samples),
                "leases": leases[daemon.pid] if postgres is not None else None,
            }
        )
    return {
        "round_s": measured["last_finished"] - resumed,
        "round_cycles": measured["cycles"],
        "first_round_s": first_end - launched,
        "rounds": per_round,
        "daemons": daemons,
        "overlaps": overlapping(log.cycles),
        "lease_changes": sum(1 for h in log.holdings if h.at > first_end),
        "unchanged_cpu_ms": quiet["cpu_s"] / max(quiet["cycles"], 1) * 1000,
        "rss_mb": max(peaks) / 1024,
        "threads": max(r["threads"] for r in per_round),
        "open_fds": max(fds),
        "failed": log.failed,
        "calendar_errors": log.calendar_errors,
        "buffers_placed": log.buffers_placed,
        "warnings": log.warnings,
    }


def _leases(fleet: Fleet) -> Counter[int]:
    """Each daemon's leases as ``caldaemon status --json`` shows them; if it cannot, as
    each daemon last logged them (a run's figures are not lost to the status command)."""
    try:
        return fleet.leases()
    except (subprocess.SubprocessError, ValueError, KeyError) as exc:
        print(f"note: status --json failed ({exc}); leases from the logs", file=sys.stderr)
        return fleet.log.last_held()


def _round(
    log: DaemonLog, samplers: Samplers, clinicians: list[str], name: str, start: float, end: float
) -> dict[str, Any]:
    """The cycles scheduled from ``start`` to ``end``, and the processes meanwhile. The
    measured round (``start``: when the daemons continued) holds each calendar's first
    cycle from then on, its lag counted from ``start`` or its schedule, whichever is
    later (from when a daemon could have run it)."""
    with log.lock:
        if name == "measured":
            first: dict[str, Any] = {}
            for c in log.cycles:
                if c.started >= start and c.clinician not in first:
                    first[c.clinician] = c
            cycles = list(first.values())
        else:
            cycles = [c for c in log.cycles if start <= c.scheduled < end]
        missed = sum(1 for at, _ in log.missed if start <= at < end)
        # The first and the measured rounds last until every clinician has had a cycle.
        missing = (
            None if name in ("first", "measured") else unpolled(log.cycles, clinicians, start, end)
        )
    lags = [c.finished - max(c.scheduled, start if name == "measured" else 0) for c in cycles]
    measured = [s.between(start, end) for s in samplers.daemons]
    cpu = sum(m[0] for m in measured)
    wall = measured[0][1]
    bench_cpu, bench_wall, _ = samplers.bench.between(start, end)
    server_share = None
    if samplers.postgres is not None:
        server_cpu, server_wall, _ = samplers.postgres.between(start, end)
        server_share = server_cpu / server_wall if server_wall else float("nan")
    return {
        "name": name,
        "cycles": len(cycles),
        "last_finished": max((c.finished for c in cycles), default=end),
        "lag_p50_s": quantile(lags, 0.5),
        "lag_p99_s": quantile(lags, 0.99),
        "missed": missed,
        "unpolled": None if missing is None else len(missing),
        "cpu_s": cpu,
        "cpu_share": cpu / wall if wall else float("nan"),
        "bench_share": bench_cpu / bench_wall if bench_wall else float("nan"),
        "postgres_share": server_share,
        "threads": sum(m[2] for m in measured),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--calendars", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="busy rounds (default 2)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="daemons sharing the clinicians; more than 1: on a throwaway PostgreSQL",
    )
    parser.add_argument("--log", type=Path, help="keep the daemons' logs in this file")
    parser.add_argument(
        "--record", action="store_true", help="keep the figures in benchmarks/runs/ for RESULTS.md"
    )
    args = parser.parse_args(argv)
    started, load_before = datetime.now(UTC), runs.load()
    try:
        figures = run(args.calendars, args.rounds, log_to=args.log, processes=args.processes)
    except ClusterUnavailable as exc:
        print(f"no PostgreSQL for {args.processes} daemons: {exc}", file=sys.stderr)
        return 2
    print(table(figures))
    if args.record:
        name = f"scale: {args.calendars:,} calendars, {args.processes} process" + (
            "es on PostgreSQL" if args.processes > 1 else " on SQLite"
        )
        command = "python -m benchmarks.scale " + " ".join(argv or sys.argv[1:])
        print(f"kept in {runs.record(name, command, started, load_before, table(figures))}")
    # The evidence, should leases ever let two daemons cycle one clinician at once.
    for earlier, later in figures["overlaps"][:10]:
        print(f"overlapping cycles: {earlier} and {later}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
