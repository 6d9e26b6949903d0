"""Provider costs that grow with the number of calendars (issue 15): the CPU of an
unchanged Google poll, the memory each Google calendar keeps, the threads each Outlook
calendar adds, and how long the provider modules take to import.

    python -m benchmarks.providers [--calendars 200] [--polls 50]

* Google: ``--calendars`` providers on the local Google Calendar fake, each calendar
  holding four weeks of sessions (80 events). After one full listing each, every
  provider polls ``--polls`` times with its sync token (nothing changed). Reported: the
  caller's thread CPU (``time.thread_time``, so the fake server's threads are not
  counted) per unchanged poll, median and p90, and the Python memory held per calendar
  (tracemalloc) after the listings.
* Outlook: ``--calendars`` providers on the local identity + Graph fake (client
  credentials, one mailbox each, the same 80 events), each after one listing: the
  process's thread count before and after (``threading.active_count``), the threads by
  name, and the caller's CPU per unchanged poll (a delta round), ``--polls`` of them.
* Imports: ``python -X importtime`` of each provider module in a new process, its
  cumulative time in microseconds (best of 5).

Figures, not verdicts: nothing here fails on time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from caldaemon.model import Window
from caldaemon.providers.base import Provider, ProviderContext
from caldaemon.providers.google.provider import GoogleProvider
from caldaemon.providers.google.settings import GoogleCalendar
from caldaemon.providers.outlook.provider import OutlookProvider
from caldaemon.providers.outlook.settings import OutlookCalendar

from .servers import TZ, GoogleSide, GraphSide, started_google, started_graph, weekday_sessions

FIRST_DAY = datetime(2026, 11, 30, tzinfo=TZ)
WINDOW = Window(FIRST_DAY, FIRST_DAY + timedelta(days=28))
SLOTS = [(8, True), (11, True), (14, True), (17, False)]
MODULES = (
    "caldaemon.providers.google.provider",
    "caldaemon.providers.outlook.provider",
    "caldaemon.providers.caldav.provider",
)


def _context(clinician: str, state_dir: Path) -> ProviderContext:
    return ProviderContext(clinician, TZ, state_dir, frozenset(), buffers_to="work")


def google(calendars: int, polls: int) -> dict[str, Any]:
    """CPU per unchanged poll and memory per calendar on the Google fake."""
    server = started_google()
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            side = GoogleSide(server, root)
            sessions = weekday_sessions(FIRST_DAY, 28, SLOTS, "bench")
            providers: list[tuple[GoogleProvider, str | None]] = []
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            first: list[float] = []
            for n in range(calendars):
                entry = side.calendar(f"c{n:04d}", "work", sessions)
                provider = GoogleProvider(GoogleCalendar(**entry), _context(f"c{n:04d}", root))
                started = time.thread_time()
                listing = provider.changes(WINDOW, None)
                first.append(time.thread_time() - started)
                providers.append((provider, listing.token))
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            costs = _unchanged_polls(providers, polls)
    finally:
        server.stop()
    return {
        "calendars": calendars,
        "polls": len(costs),
        "first_ms": statistics.median(first) * 1000,
        "poll_ms": statistics.median(costs) * 1000,
        "poll_p90_ms": costs[int(0.9 * (len(costs) - 1))] * 1000,
        "kb_per_calendar": held / calendars / 1024,
    }


def _unchanged_polls(providers: Sequence[tuple[Provider, str | None]], polls: int) -> list[float]:
    """The thread CPU of ``polls`` unchanged polls taken in turn from ``providers`` (each
    with the token of its first listing), sorted; the providers are closed after."""
    costs: list[float] = []
    for n in range(polls):
        provider, token = providers[n % len(providers)]
        started = time.thread_time()
        provider.changes(WINDOW, token)
        costs.append(time.thread_time() - started)
    for provider, _ in providers:
        provider.close()
    return sorted(costs)


def outlook(calendars: int, polls: int) -> dict[str, Any]:
    """Threads in the process after ``calendars`` Outlook providers each listed once,
    and the CPU of an unchanged poll (a delta round with nothing in it)."""
    server = started_graph()
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            side = GraphSide(server, root)
            sessions = weekday_sessions(FIRST_DAY, 28, SLOTS, "bench")
            before = threading.active_count()
            providers = []
            for n in range(calendars):
                entry = side.calendar(f"c{n:04d}", "work", sessions)
                provider = OutlookProvider(OutlookCalendar(**entry), _context(f"c{n:04d}", root))
                providers.append((provider, provider.changes(WINDOW, None).token))
            after = threading.active_count()
            names = Counter(_thread_kind(t) for t in threading.enumerate())
            costs = _unchanged_polls(providers, polls)
    finally:
        server.stop()
    return {
        "calendars": calendars,
        "before": before,
        "after": after,
        "names": dict(names),
        "poll_ms": statistics.median(costs) * 1000,
        "poll_p90_ms": costs[int(0.9 * (len(costs) - 1))] * 1000,
    }


def _thread_kind(thread: threading.Thread) -> str:
    """A thread's name without its number: "Thread-12 (idle_conn_watch_task)" is
    idle_conn_watch_task."""
    name = thread.name
    return name[name.index("(") + 1 : -1] if name.endswith(")") and "(" in name else name


def import_times(runs: int = 5) -> dict[str, int]:
    """Cumulative import time (µs) of each provider module, best of ``runs``."""
    times: dict[str, int] = {}
    for module in MODULES:
        best = None
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", f"import {module}"],
                capture_output=True,
                text=True,
                check=True,
            )
            for line in done.stderr.splitlines():
                # "import time: self [us] | cumulative | imported package"
                parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
                if len(parts) == 3 and parts[2] == module:
                    cumulative = int(parts[1])
                    best = cumulative if best is None else min(best, cumulative)
        times[module] = best or 0
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.providers")
    parser.add_argument("--calendars", type=int, default=200)
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--only", choices=["google", "outlook", "imports"], nargs="*")
    args = parser.parse_args(argv)
    only = set(args.only or ["google", "outlook", "imports"])
    if "google" in only:
        g = google(args.calendars, args.polls)
        print(
            f"google: {g['calendars']} calendars, {g['polls']} unchanged polls: "
            f"CPU per poll median {g['poll_ms']:.2f} ms, p90 {g['poll_p90_ms']:.2f} ms "
            f"(first full listing {g['first_ms']:.2f} ms); "
            f"{g['kb_per_calendar']:.0f} KiB of Python memory per calendar"
        )
    if "outlook" in only:
        o = outlook(args.calendars, args.polls)
        print(
            f"outlook: {o['calendars']} calendars: threads {o['before']} before, "
            f"{o['after']} after; by kind {o['names']}; CPU per unchanged poll median "
            f"{o['poll_ms']:.2f} ms, p90 {o['poll_p90_ms']:.2f} ms"
        )
    if "imports" in only:
        for module, micros in import_times().items():
            print(f"import {module}: {micros / 1000:.0f} ms (cumulative, best of 5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
