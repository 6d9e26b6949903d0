"""Run every benchmark side by side and write benchmarks/RESULTS.md.

    python -m benchmarks            # everything (a few minutes)
    python -m benchmarks --quick    # fewer repetitions and a smaller scale run

Benchmarks are not tests: they print figures and never fail on time."""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"


def _row(name: str, figure: str, target: str, verdict: str) -> str:
    return f"| {name} | {figure} | {target} | {verdict} |"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller scale")
    parser.add_argument("--only", choices=["evaluation", "api", "scale", "startup"], nargs="*")
    args = parser.parse_args(argv)
    only = set(args.only or ["evaluation", "api", "scale", "startup"])
    runs = 1 if args.quick else 3
    rows: list[str] = []
    notes: list[str] = []

    if "evaluation" in only:
        from . import evaluation

        print("evaluation: generating a year of a 40-clinician practice …", flush=True)
        e = evaluation.run(WORK / "practice", runs=runs)
        rows.append(
            _row(
                "check vs icalendar + recurring-ical-events (same files, same windows)",
                f"{e['check_s']:.2f} s vs {e['reference_s']:.2f} s = **{e['ratio']:.2f}×**",
                "≤ 1.3×",
                _verdict(e["ratio"] <= 1.3),
            )
        )
        rows.append(
            _row(
                "pure rule evaluation (normalized events)",
                f"{e['events_per_s']:,.0f} events/s ({e['events']:,} events in "
                f"{e['evaluate_s']:.2f} s)",
                "—",
                "—",
            )
        )
        notes.append(
            f"evaluation: {e['sessions']:,} sessions generated, {e['occurrences']:,} "
            f"occurrences expanded by the reference, {e['events']:,} events read by "
            f"caldaemon, {e['violations']:,} violations, {e['buffers']:,} buffers."
        )

    if "api" in only:
        from . import api

        print("api: requests per poll against the local Google and Graph servers …", flush=True)
        for r in api.run():
            rows.append(
                _row(
                    f"{r['provider']}: {r['case']}",
                    f"{r['requests']} requests (naive re-list: {r['naive']})",
                    r["target"],
                    _verdict(r["requests"] <= r["target_value"]),
                )
            )

    if "scale" in only:
        from . import scale

        calendars = 200 if args.quick else 1000
        print(f"scale: one daemon, {calendars} calendars, 50 ms latency …", flush=True)
        s = scale.run(calendars=calendars, cycles=2 if args.quick else 3)
        rows.append(
            _row(
                f"scale: {s['calendars']} calendars, poll 60 s, 50 ms latency",
                f"round {s['round_s']:.1f} s (lag {s['lag_s']:.1f} s), CPU "
                f"{s['cpu_share']:.0%} of one core, peak RSS {s['rss_mb']:.0f} MB",
                "round < 60 s on 2 cores",
                _verdict(s["round_s"] < 60),
            )
        )

    if "startup" in only:
        from . import startup

        print("startup: new processes …", flush=True)
        s = startup.run(runs=3 if args.quick else 7)
        rows.append(
            _row(
                "`caldaemon --help`",
                f"{s['help_s'] * 1000:.0f} ms, "
                f"{s['help_modules']} modules (bare Python: "
                f"{s['python_s'] * 1000:.0f} ms, {s['python_modules']})",
                "well under 500 ms",
                _verdict(s["help_s"] < 0.25),
            )
        )
        rows.append(
            _row(
                "`caldaemon check` on the example",
                f"{s['check_s'] * 1000:.0f} ms, {s['check_modules']} modules",
                "—",
                "—",
            )
        )

    table = ["| benchmark | figure | target | verdict |", "|---|---|---|---|", *rows]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}"
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"Written by `python -m benchmarks{' --quick' if args.quick else ''}` on {stamp} "
            f"({machine}). Wall-clock figures are the best of several runs.",
            "",
            *table,
            "",
            *[f"- {n}" for n in notes],
            "",
        ]
    )
    print("\n".join(table))
    if only == {"evaluation", "api", "scale", "startup"}:
        (HERE / "RESULTS.md").write_text(text)
        print(f"\nwritten to {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
