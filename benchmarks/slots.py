"""``caldaemon slots`` on the example week (config.example.yaml + examples/*.ics, now Monday
30 Nov 2026 08:00): the pure search over already-read events, for the first 5 start times
as the command asks by default, and exhaustively (every start that fits) over a week and
over a month of horizon. DESIGN.md / issue 13: a month searched in well under a second for
one clinician. Beside it, what the search would cost without its cheap tests and week-sized
evaluations: every grid start in working hours judged by evaluating the whole window."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from caldaemon import config
from caldaemon.core.assess import evaluate
from caldaemon.core.slots import SlotRequest, added, find_slots, messages, new_session
from caldaemon.model import Severity
from caldaemon.service.read import check

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.fromisoformat("2026-11-30T08:00")
LENGTH = timedelta(minutes=50)
EVERYTHING = 10_000  # a count no search reaches: every start that fits


def _best(runs: int, work: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def _read(days: int) -> tuple[Any, Any, datetime, timedelta]:
    settings = config.load(ROOT / "config.example.yaml")
    horizon = timedelta(days=days)
    settings = replace(settings, daemon=settings.daemon.model_copy(update={"horizon": horizon}))
    now = NOW.replace(tzinfo=settings.tz)
    [result] = check(settings, now)
    assert not result.errors, result.errors
    return settings, result, now, horizon


def _search(
    days: int, level: str, count: int, runs: int, step: int = 15, open_week: bool = False
) -> dict[str, Any]:
    """``open_week``: the weekly limit of high-intensity sessions raised from 8 to 20, so
    that the rules of the day (no_back_to_back, buffers, latest_start) decide."""
    settings, result, now, horizon = _read(days)
    clinician = result.clinician
    if open_week:
        limits = dict(clinician.rules.level_limits)
        limits["high"] = limits["high"].model_copy(update={"max_per_week": 20})
        rules = clinician.rules.model_copy(update={"level_limits": limits})
        clinician = replace(clinician, rules=rules)
    request = SlotRequest(LENGTH, level, count, step=timedelta(minutes=step))

    def work() -> Any:
        return find_slots(
            clinician, settings.classification, result.classified, now, horizon, request
        )

    seconds, found = _best(runs, work)
    return {
        "days": days,
        "level": level,
        "step": step,
        "count": count,
        "events": len(result.classified),
        "s": seconds,
        "slots": len(found.slots),
        "looked_at": found.looked_at,
        "evaluated": found.evaluated,
    }


def _naive(days: int, level: str) -> dict[str, Any]:
    """Every 15-minute start in working hours, judged by evaluating the whole window with
    the session added, as the search would without its shortcuts."""
    settings, result, now, horizon = _read(days)
    clinician, classification = result.clinician, settings.classification
    hours = clinician.rules.working_hours or {}
    started = time.perf_counter()
    before = messages(
        evaluate(clinician, classification, result.classified, now, horizon), Severity.ERROR
    )
    judged = fits = 0
    day = now.date()
    while day <= (now + horizon).date():
        for low, high in hours.get(day.weekday(), ()):
            for minute in range(low, high, 15):
                start = datetime.combine(day, datetime.min.time(), settings.tz) + timedelta(
                    minutes=minute
                )
                if start < now or start + LENGTH > now + horizon:
                    continue
                session = new_session(start, start + LENGTH, level)
                verdict = evaluate(
                    clinician, classification, (*result.classified, session), now, horizon
                )
                judged += 1
                fits += not added(verdict, before, Severity.ERROR)
        day += timedelta(days=1)
    return {"s": time.perf_counter() - started, "judged": judged, "fits": fits}


def run(runs: int = 5) -> dict[str, Any]:
    return {
        "first5": _search(31, "moderate", 5, runs),
        "week": _search(7, "low", EVERYTHING, runs),
        "month": _search(31, "low", EVERYTHING, runs),
        "month_high": _search(31, "high", EVERYTHING, runs),
        "month_high_open": _search(31, "high", EVERYTHING, runs, open_week=True),
        "month_high_open_5m": _search(31, "high", EVERYTHING, runs, step=5, open_week=True),
        "naive": _naive(31, "low"),
    }


def report(r: dict[str, Any]) -> list[str]:
    """Lines for the console (``python -m benchmarks.slots``)."""
    lines = []
    for name in ("first5", "week", "month", "month_high", "month_high_open", "month_high_open_5m"):
        c = r[name]
        lines.append(
            f"{name:<18} {c['days']:>2} days, {c['level']:<8} step {c['step']:>2}m "
            f"{c['s'] * 1000:7.1f} ms  "
            f"{c['slots']:>3} slots, {c['looked_at']:>4} starts looked at, "
            f"{c['evaluated']:>3} evaluated ({c['events']} events read)"
        )
    n = r["naive"]
    lines.append(
        f"{'naive':<18} 31 days, low      step 15m {n['s'] * 1000:7.1f} ms  {n['fits']:>3} fit of "
        f"{n['judged']} starts each judged on the whole window"
    )
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
