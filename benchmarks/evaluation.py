"""Evaluation cost: ``caldaemon check`` over a year of a 40-clinician practice, against
parsing and expanding the same files over the same windows with icalendar +
recurring-ical-events alone; and pure rule evaluation on already-normalized events, in
events per second.

Two references (issue 15): ``between()``, the library's public call, copies a VEVENT per
occurrence (about 30 % of its time), which caldaemon never does; the lean reference stops
at the occurrences (``_occurrences_between``, no copies), the floor a reader of these
files cannot go below with these libraries. Each comparison is paired and interleaved
(reference, check, reference, check, …) and measured in CPU time of this process, so a
noisy neighbour moves both sides of a pair; the median ratio of the pairs and their
spread are reported."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events

from caldaemon import config
from caldaemon.cli import render
from caldaemon.core.assess import assess, window
from caldaemon.service.read import check, fewer_collections

from .practice import now_in, write_practice


def _paired(pairs: int, reference: Any, subject: Any) -> tuple[float, float, float]:
    """Median CPU seconds of ``reference`` and ``subject``, and the median of their
    per-pair ratios, over ``pairs`` interleaved pairs (after one warm-up each)."""
    reference()
    subject()
    ref_times: list[float] = []
    sub_times: list[float] = []
    for _ in range(pairs):
        for work, times in ((reference, ref_times), (subject, sub_times)):
            started = time.process_time()
            work()
            times.append(time.process_time() - started)
    ratios = sorted(s / r for s, r in zip(sub_times, ref_times, strict=True))
    return statistics.median(ref_times), statistics.median(sub_times), ratios


def _best(runs: int, work: Any) -> float:
    """The least CPU seconds ``work`` took in ``runs`` runs. CPU time, not wall time: on
    a machine shared with other jobs the wall time of pure computation grows with the
    load (2 cores and a load of 10 made 2.2 s of CPU take 15 s)."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def _command_wall(config_path: Path, now_text: str, jobs: int, runs: int) -> float:
    """The least wall time of ``caldaemon check --json --jobs N`` as a command, in
    seconds (processes: wall time is what they save, not CPU)."""
    command = [sys.executable, "-m", "caldaemon", "check", "--config", str(config_path)]
    command += ["--now", now_text, "--json", "--jobs", str(jobs)]
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - started)
    return best


def run(folder: Path, runs: int = 3) -> dict[str, Any]:
    config_path, sessions = write_practice(folder)
    now = now_in()
    settings = config.load(config_path)
    windows = {c.id: window(c, now, settings.daemon.horizon) for c in settings.clinicians}
    files = {c.id: c.calendars[0].path for c in settings.clinicians}

    def reference() -> int:
        count = 0
        for clinician, path in files.items():
            cal = icalendar.Calendar.from_ical(path.read_bytes())
            start, end = windows[clinician]
            count += len(recurring_ical_events.of(cal).between(start, end))
        return count

    def lean_reference() -> int:
        count = 0
        for clinician, path in files.items():
            cal = icalendar.Calendar.from_ical(path.read_bytes())
            start, end = windows[clinician]
            query = recurring_ical_events.of(cal)
            count += len(
                query._occurrences_between(query.to_datetime(start), query.to_datetime(end))
            )
        return count

    def caldaemon_check() -> None:
        # As the command does (caldaemon/cli/check.py).
        loaded = config.load(config_path)
        with fewer_collections():
            results = check(loaded, now)
            render.check_json(now, results)

    reference_s, check_s, ratios = _paired(runs, reference, caldaemon_check)
    lean_s, lean_check_s, lean_ratios = _paired(runs, lean_reference, caldaemon_check)
    occurrences = reference()
    if lean_reference() != occurrences:
        raise AssertionError("the lean reference expands other occurrences than between()")

    results = check(settings, now)
    normalized = [(r.clinician, [c.event for c in r.classified]) for r in results]
    events = sum(len(e) for _, e in normalized)

    def evaluate_only() -> None:
        for clinician, found in normalized:
            assess(clinician, settings.classification, found, now, settings.daemon.horizon)

    evaluate_s = _best(runs, evaluate_only)
    jobs = min(len(os.sched_getaffinity(0)), 8) if hasattr(os, "sched_getaffinity") else 1
    wall_one = _command_wall(config_path, now.isoformat(), 1, runs)
    wall_jobs = _command_wall(config_path, now.isoformat(), jobs, runs)
    violations = sum(len(r.evaluation.violations) for r in results)
    buffers = sum(len(r.evaluation.buffers) for r in results)
    return {
        "sessions": sessions,
        "occurrences": occurrences,
        "events": events,
        "violations": violations,
        "buffers": buffers,
        "reference_s": reference_s,
        "check_s": check_s,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "lean_s": lean_s,
        "lean_check_s": lean_check_s,
        "lean_ratio": statistics.median(lean_ratios),
        "lean_ratios": lean_ratios,
        "evaluate_s": evaluate_s,
        "jobs": jobs,
        "wall_one_s": wall_one,
        "wall_jobs_s": wall_jobs,
        "events_per_s": events / evaluate_s,
    }
