"""Evaluation cost: ``caldaemon check`` over a year of a 40-clinician practice, against
parsing and expanding the same files over the same windows with icalendar +
recurring-ical-events alone (DESIGN.md §9: target ≤ 1.3×); and pure rule evaluation on
already-normalized events, in events per second."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events

from caldaemon import config
from caldaemon.cli import render
from caldaemon.core.assess import assess, window
from caldaemon.service.read import check

from .practice import now_in, write_practice


def _best(runs: int, work: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
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

    def caldaemon_check() -> None:
        loaded = config.load(config_path)
        results = check(loaded, now)
        render.check_json(now, results)

    reference_s = _best(runs, reference)
    check_s = _best(runs, caldaemon_check)
    occurrences = reference()

    results = check(settings, now)
    normalized = [(r.clinician, [c.event for c in r.classified]) for r in results]
    events = sum(len(e) for _, e in normalized)

    def evaluate_only() -> None:
        for clinician, found in normalized:
            assess(clinician, settings.classification, found, now, settings.daemon.horizon)

    evaluate_s = _best(runs, evaluate_only)
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
        "ratio": check_s / reference_s,
        "evaluate_s": evaluate_s,
        "events_per_s": events / evaluate_s,
    }
