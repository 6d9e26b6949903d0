"""What one cycle costs, by what it finds, and how that grows with the horizon and with
the writes it makes (issue 15, part 5: "how the cost grows with calendars, writes and
horizon"; the growth with calendars is the scale table's, benchmarks/scale.py).

    python -m benchmarks.cycles [--calendars 100] [--horizons 7d 14d 28d 56d]

``--calendars`` clinicians, one calendar each, alternately on the local Google and Graph
fakes (no latency: CPU only), each calendar its clinician's ``buffers_to`` and holding
weekday sessions at 10:00 (#heavy, a buffer each) and 15:00 over the horizon. One
:class:`caldaemon.service.daemon.Daemon` runs every clinician's cycle in this thread, and
each cycle's CPU is this thread's (``time.thread_time``: the fakes' threads are not
counted), in milliseconds, median over the clinicians:

* ``unchanged``: nothing changed since the last full cycle (one listing, verdicts kept);
* ``reassess``: nothing changed, but the verdicts are made again (as every 10 minutes);
* ``moved N``: N heavy sessions moved (N buffer moves written and recorded; fewer when the
  horizon holds fewer heavy sessions);
* ``sign-in``: every access token expired (a token request first).

Figures, not verdicts: nothing here fails on time."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from caldaemon.service.daemon import Daemon

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

SLOTS = [(10, True), (15, False)]
MOVES = (1, 5, 20)


def _name(index: int) -> str:
    return f"c{index:04d}"


class Practice:
    """The fakes and the clinicians' sessions, with a hand to move them."""

    def __init__(self, folder: Path, calendars: int, horizon_days: int) -> None:
        self.google, self.graph = started_google(), started_graph()
        self.google_side = GoogleSide(self.google, folder / "google")
        self.graph_side = GraphSide(self.graph, folder / "graph")
        today = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        self.sessions = weekday_sessions(today + timedelta(days=1), horizon_days, SLOTS, "s")
        self.heavy = [s for s in self.sessions if s.heavy]
        self.calendars = calendars
        self.shift = 0
        entries = []
        for index in range(calendars):
            side = self.google_side if index % 2 == 0 else self.graph_side
            entries.append(
                clinician_entry(_name(index), side.calendar(_name(index), "work", self.sessions))
            )
        self.config = write_config(
            folder / "config.yaml", entries, poll_interval="1m", horizon=f"{horizon_days}d"
        )

    def move(self, index: int, sessions: Sequence[Session], hours: int) -> None:
        for session in sessions:
            start = session.start + timedelta(hours=hours)
            if index % 2 == 0:
                self.google.put_event(
                    f"{_name(index)}@bench.example", google_resource(session, start)
                )
            else:
                self.graph_side.move(_name(index), session, start)

    def stop(self) -> None:
        self.google.stop()
        self.graph.stop()


def _round(
    daemon: Daemon, ids: list[str], before: Callable[[int, str], None] | None = None
) -> float:
    """Every clinician's cycle once; the median CPU of one, in milliseconds."""
    costs = []
    for index, clinician in enumerate(ids):
        if before is not None:
            before(index, clinician)
        started = time.thread_time()
        daemon.run_clinician(clinician)
        costs.append((time.thread_time() - started) * 1000)
    return statistics.median(costs)


def measure(calendars: int, horizon_days: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="caldaemon-bench-cycles-") as name:
        practice = Practice(Path(name), calendars, horizon_days)
        daemon = Daemon(str(practice.config))
        ids = [c.id for c in daemon.settings.clinicians]
        try:
            figures: dict[str, float] = {}
            figures["first"] = _round(daemon, ids)
            _round(daemon, ids)  # reads back the buffers it wrote
            figures["unchanged"] = _round(daemon, ids)
            figures["reassess"] = _round(
                daemon, ids, lambda _, clinician: daemon.cycle.settled.pop(clinician, None)
            )
            # Each step moves its sessions somewhere they were not: +1 h, +2 h, -1 h.
            for moved, shift in zip(MOVES, (1, 2, -1), strict=True):
                chosen = practice.heavy[:moved]

                def move(
                    index: int, _: str, chosen: Sequence[Session] = chosen, shift: int = shift
                ) -> None:
                    practice.move(index, chosen, shift)

                figures[f"moved {moved}"] = _round(daemon, ids, move)
                _round(daemon, ids)  # reads back the moved buffers
            practice.google.expire_access_tokens()
            practice.graph.expire_access_tokens()
            figures["sign-in"] = _round(daemon, ids)
            figures["events"] = len(practice.sessions)
            return figures
        finally:
            daemon.close()
            practice.stop()


def run(calendars: int, horizons: Sequence[int]) -> dict[str, Any]:
    return {"calendars": calendars, "by_horizon": {h: measure(calendars, h) for h in horizons}}


def table(figures: dict[str, Any]) -> str:
    horizons = list(figures["by_horizon"])
    kinds = ["unchanged", "reassess", *(f"moved {m}" for m in MOVES), "sign-in", "first"]
    lines = [
        f"CPU per cycle (ms, median of {figures['calendars']} clinicians; half Google, half "
        "Graph; no latency), by horizon:",
        "",
        "| cycle | "
        + " | ".join(
            f"{h} days ({figures['by_horizon'][h]['events']:.0f} events)" for h in horizons
        )
        + " |",
        "|---|" + "---|" * len(horizons),
    ]
    for kind in kinds:
        cells = " | ".join(f"{figures['by_horizon'][h][kind]:.2f}" for h in horizons)
        lines.append(f"| {kind} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cycles")
    parser.add_argument("--calendars", type=int, default=100)
    parser.add_argument("--horizons", type=int, nargs="*", default=[7, 14, 28, 56], help="days")
    args = parser.parse_args(argv)
    print(table(run(args.calendars, args.horizons)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
