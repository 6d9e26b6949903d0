"""The practice view (DESIGN.md §11 ``report --practice``): for a clinical director, one
row of aggregates per clinician: sessions, the heaviest day's load against its limit,
boundaries crossed per rule, supervision and peer-support cadence. No times, no events,
nothing that names or dates a client's session."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from html import escape
from typing import Any

from caldaemon.reports.week import WeekView
from caldaemon.text import day_name


@dataclass(frozen=True)
class Row:
    clinician: str
    name: str
    readable: bool = True
    sessions: int = 0
    sessions_limit: float | None = None
    client_hours: float = 0.0
    heaviest_load: float = 0.0
    load_limit: float | None = None
    days_at_load_limit: int = 0
    crossed: dict[str, int] = field(default_factory=dict)  # rule → unaccepted violations
    cadence: str = "on track"


def row(view: WeekView) -> Row:
    marks = [m for d in view.days for m in d.marks] + list(view.marks)
    crossed = Counter(m.rule for m in marks if not m.accepted)
    loads = [c for d in view.days for c in d.counts if c.name == "load"]
    sessions = next(c for c in view.counts if c.name == "sessions")
    limit = loads[0].limit if loads else None
    overdue = crossed.get("cadence", 0)
    return Row(
        clinician=view.clinician,
        name=view.name,
        sessions=int(sessions.value),
        sessions_limit=sessions.limit,
        client_hours=view.hours.get("client", 0.0),
        heaviest_load=max((c.value for c in loads), default=0),
        load_limit=limit,
        days_at_load_limit=sum(1 for c in loads if c.at_limit),
        crossed=dict(sorted(crossed.items())),
        cadence="on track" if not overdue else f"{overdue} overdue",
    )


def unreadable(clinician: str, name: str) -> Row:
    return Row(clinician=clinician, name=name, readable=False, cadence="unknown")


def _of(value: float, limit: float | None) -> str:
    return f"{value:g}" + (f" of {limit:g}" if limit is not None else "")


def _crossed(r: Row) -> str:
    if not r.readable:
        return "calendar could not be read"
    return ", ".join(f"{rule} {n}" for rule, n in r.crossed.items()) or "none"


def practice_text(week: date, rows: list[Row]) -> str:
    lines = [f"The practice, the week of {day_name(week)}", ""]
    for r in rows:
        who = f"{r.name} ({r.clinician})" if r.name else r.clinician
        if not r.readable:
            lines += [f"  {who}: calendar could not be read; nothing is judged", ""]
            continue
        lines += [
            f"  {who}",
            f"    sessions {_of(r.sessions, r.sessions_limit)} · client hours {r.client_hours:g}",
            f"    heaviest day's load {_of(r.heaviest_load, r.load_limit)}"
            f" · days at the load limit {r.days_at_load_limit}",
            f"    boundaries crossed: {_crossed(r)}",
            f"    supervision and peer support: {r.cadence}",
            "",
        ]
    return "\n".join(lines)


def practice_json(week: date, rows: list[Row]) -> str:
    items: list[dict[str, Any]] = [
        {
            "clinician": r.clinician,
            "readable": r.readable,
            "sessions": r.sessions,
            "sessions_limit": r.sessions_limit,
            "client_hours": r.client_hours,
            "heaviest_load": r.heaviest_load,
            "load_limit": r.load_limit,
            "days_at_load_limit": r.days_at_load_limit,
            "crossed": r.crossed,
            "cadence": r.cadence,
        }
        for r in rows
    ]
    return json.dumps({"week": week.isoformat(), "clinicians": items}, indent=2)


CELL = 'style="padding:6px 10px;border-bottom:1px solid #dddddd;text-align:left"'


def practice_html(week: date, rows: list[Row]) -> str:
    head = (
        "Clinician",
        "Sessions",
        "Client hours",
        "Heaviest day",
        "Days at limit",
        "Boundaries crossed",
        "Supervision / peer support",
    )
    body = []
    for r in rows:
        cells = (
            r.name or r.clinician,
            _of(r.sessions, r.sessions_limit) if r.readable else "—",
            f"{r.client_hours:g}" if r.readable else "—",
            _of(r.heaviest_load, r.load_limit) if r.readable else "—",
            str(r.days_at_load_limit) if r.readable else "—",
            _crossed(r),
            r.cadence,
        )
        body.append("<tr>" + "".join(f"<td {CELL}>{escape(c)}</td>" for c in cells) + "</tr>")
    title = escape(f"The practice, the week of {day_name(week)}")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>"
        '<body style="margin:0;padding:16px;font-family:Helvetica,Arial,sans-serif;'
        'color:#222222">'
        f'<h1 style="font-size:20px">{title}</h1>'
        '<table style="border-collapse:collapse;font-size:14px"><tr>'
        + "".join(f"<th {CELL}>{escape(h)}</th>" for h in head)
        + "</tr>"
        + "".join(body)
        + "</table></body></html>"
    )
