"""The week as text and as JSON (DESIGN.md §11): the same facts as the picture, for a
screen reader, a terminal or a script. Times, kinds, levels, counts and hours only."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any

from caldaemon.reports.week import Block, Count, DayView, Mark, WeekView
from caldaemon.text import clock, day_name, plural

KIND_NAMES = {
    "session": "session",
    "supervision": "supervision",
    "peer_support": "peer support",
    "personal": "personal",
    "admin": "admin",
    "other": "busy",
    "buffer": "buffer",
    "hold": "held",
}


def _count(c: Count) -> str:
    if c.limit is None:
        return f"{c.name} {_number(c.value)}"
    flag = " (over)" if c.over else " (at the limit)" if c.at_limit else ""
    return f"{c.name} {_number(c.value)} of {_number(c.limit)}{flag}"


def _hhmm(moment: time) -> str:
    return f"{moment:%H:%M}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _when(start: datetime | None, end: datetime | None, view: WeekView) -> str:
    if start is None or end is None:
        return ""
    return f"{clock(start.astimezone(view.tz))}–{clock(end.astimezone(view.tz))}"


def _block_line(block: Block, view: WeekView) -> str:
    what = KIND_NAMES.get(block.kind, block.kind)
    if block.level:
        what = f"{what}, {block.level}"
    flag = "  ← a boundary crossed" if block.flagged else ""
    return f"    {_when(block.start, block.end, view)}  {what}{flag}"


def _mark_line(mark: Mark) -> str:
    accepted = " (accepted)" if mark.accepted else ""
    return f"    {mark.severity:<8} {mark.message}{accepted}"


def _day_lines(day: DayView, view: WeekView) -> list[str]:
    head = f"  {day_name(day.day)}"
    if day.day_off:
        head += " · day off"
    elif day.working:
        hours = ", ".join(f"{_hhmm(a)}–{_hhmm(b)}" for a, b in day.working)
        head += f" · working hours {hours}"
    lines = [head]
    if day.blocks:
        lines.append("    " + " · ".join(_count(c) for c in day.counts))
    lines += [_block_line(b, view) for b in day.blocks]
    lines += [_mark_line(m) for m in day.marks]
    return lines


def week_text(view: WeekView) -> str:
    who = f"{view.name} ({view.clinician})" if view.name else view.clinician
    crossed = f"{view.errors} boundar{'y' if view.errors == 1 else 'ies'} crossed"
    problems = (
        crossed + (f", {plural(view.warnings, 'warning')}" if view.warnings else "")
        if view.errors or view.warnings
        else "everything fits"
    )
    lines = [f"{who}: the week of {day_name(view.start)} ({view.tz.key}): {problems}.", ""]
    for day in view.days:
        lines += _day_lines(day, view)
    lines += ["", "  The week: " + " · ".join(_count(c) for c in view.counts)]
    lines += [_mark_line(m) for m in view.marks]
    hours = " · ".join(
        f"{KIND_NAMES.get(k, k).replace('session', 'client')} {_number(v)} h"
        for k, v in view.hours.items()
    )
    lines += [f"  Hours: {hours}", ""]
    return "\n".join(lines)


def _iso(moment: datetime | None, view: WeekView) -> str | None:
    return moment.astimezone(view.tz).isoformat() if moment is not None else None


def _mark_json(mark: Mark, view: WeekView) -> dict[str, Any]:
    return {
        "rule": mark.rule,
        "severity": mark.severity,
        "start": _iso(mark.start, view),
        "end": _iso(mark.end, view),
        "message": mark.message,
        "accepted": mark.accepted,
    }


def _count_json(c: Count) -> dict[str, Any]:
    return {"name": c.name, "value": c.value, "limit": c.limit, "over": c.over}


def week_json(view: WeekView) -> dict[str, Any]:
    return {
        "clinician": view.clinician,
        "week": view.start.isoformat(),
        "timezone": view.tz.key,
        "errors": view.errors,
        "warnings": view.warnings,
        "days": [
            {
                "date": day.day.isoformat(),
                "day_off": day.day_off,
                "working_hours": [f"{_hhmm(a)}-{_hhmm(b)}" for a, b in day.working],
                "blocks": [
                    {
                        "start": _iso(b.start, view),
                        "end": _iso(b.end, view),
                        "kind": b.kind,
                        "level": b.level,
                        "flagged": b.flagged,
                    }
                    for b in day.blocks
                ],
                "counts": [_count_json(c) for c in day.counts],
                "violations": [_mark_json(m, view) for m in day.marks],
            }
            for day in view.days
        ],
        "counts": [_count_json(c) for c in view.counts],
        "violations": [_mark_json(m, view) for m in view.marks],
        "hours": view.hours,
    }


def weeks_json(now: datetime, views: list[WeekView]) -> str:
    return json.dumps({"now": now.isoformat(), "weeks": [week_json(v) for v in views]}, indent=2)
