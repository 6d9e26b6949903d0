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
from datetime import timedelta
from pathlib import Path
from typing import Any

from caldaemon.service.daemon import Daemon

from .scale_practice import Practice
from .servers import Session

MOVES = (1, 5, 20)


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
        practice = Practice(
            Path(name),
            calendars,
            latency=0.0,
            days=horizon_days,
            horizon=f"{horizon_days}d",
            next_week=False,
        )
        daemon = Daemon(str(practice.seed(None)))
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
                chosen = [s for s in practice.sessions if s.heavy][:moved]

                def move(
                    index: int, _: str, chosen: Sequence[Session] = chosen, shift: int = shift
                ) -> None:
                    for session in chosen:
                        practice.move(index, session, session.start + timedelta(hours=shift))

                figures[f"moved {moved}"] = _round(daemon, ids, move)
                _round(daemon, ids)  # reads back the moved buffers
            practice.expire_sign_ins()
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
