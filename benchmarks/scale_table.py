"""The figures of benchmarks/scale.py as one Markdown table (benchmarks/RESULTS.md takes
it as it is): a line of totals, a row per round over all daemons together, and with
several daemons a row per daemon."""

from __future__ import annotations

from typing import Any


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def table(figures: dict[str, Any]) -> str:
    """The figures as one Markdown table: a row per round (all daemons together), then,
    with several daemons, a row per daemon."""
    shared = figures["processes"] > 1
    state = (
        f"{figures['processes']} daemons on one PostgreSQL state (fsync on, unix socket)"
        if shared
        else "one daemon, SQLite state"
    )
    overlaps = len(figures["overlaps"])
    lines = [
        f"{figures['calendars']:,} calendars ({figures['google']:,} Google + "
        f"{figures['graph']:,} Graph), {state}; poll 60 s, "
        f"{figures['latency_s'] * 1000:.0f} ms per request; first round (every calendar's "
        f"first cycle) {figures['first_round_s']:.0f} s; measured round "
        f"{figures['round_s']:.1f} s for {figures['round_cycles']:,} cycles; unchanged cycle "
        f"{figures['unchanged_cpu_ms']:.2f} ms CPU; peak RSS {figures['rss_mb']:.0f} MB "
        f"(largest process); most threads {figures['threads']}; {figures['open_fds']} open "
        f"files; {figures['changes']:,} sessions moved; {figures['failed']} failed cycles, "
        f"{figures['calendar_errors']} calendar errors, {figures['warnings']} warnings; "
        f"{overlaps} clinician cycles run by two daemons at once"
        + (
            f"; {figures['lease_changes']} lease changes after the first round; daemon rows: "
            "cycles and missed runs over the whole run, CPU from the end of the first round "
            "to the measured round"
            if shared
            else ""
        ),
        "",
    ]
    head = ["round", "cycles", "lag p50", "lag p99", "missed", "unpolled", "CPU caldaemon"]
    head += (
        ["CPU fakes", "CPU PostgreSQL", "threads", "peak RSS", "leases at end"]
        if shared
        else [
            "CPU fakes",
            "threads",
        ]
    )
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in figures["rounds"]:
        row = [
            r["name"],
            f"{r['cycles']:,}",
            f"{r['lag_p50_s']:.2f} s",
            f"{r['lag_p99_s']:.2f} s",
            str(r["missed"]),
            "–" if r["unpolled"] is None else str(r["unpolled"]),
            _share(r["cpu_share"]),
            _share(r["bench_share"]),
        ]
        row += (
            [_share(r["postgres_share"]), str(r["threads"]), "–", "–"]
            if shared
            else [str(r["threads"])]
        )
        lines.append("| " + " | ".join(row) + " |")
    if shared:
        for number, d in enumerate(figures["daemons"], start=1):
            row = [f"daemon {number} (pid {d['pid']})", f"{d['cycles']:,}", "–", "–"]
            row += [str(d["missed"]), "–", _share(d["cpu_share"]), "–", "–"]
            row += [str(d["threads"]), f"{d['rss_mb']:.0f} MB", f"{d['leases']:,}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
