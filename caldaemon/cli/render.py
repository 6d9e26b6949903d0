"""What ``check`` and ``events`` print: a kind, readable table grouped by day, or JSON
(DESIGN.md §4). Only times, kinds, levels and counts, plus titles in ``events`` which
exists to show a clinician how their own events were read."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from caldaemon.config import ClinicianSettings
from caldaemon.core.assess import Assessment
from caldaemon.core.facts import Fact, facts, groups
from caldaemon.model import Buffer, Kind, Violation
from caldaemon.text import clock, day_name, plural


def violation_json(v: Violation, group: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "clinician": v.clinician,
        "rule": v.rule,
        # A StrEnum member is a str: json writes its value ("error") as .value would, and
        # without the enum's property lookup, once per violation of a year.
        "severity": v.severity,
        "date": v.date.isoformat(),
        "start": v.start.isoformat(),
        "end": v.end.isoformat(),
        "message": v.message,
        "events": v.events,  # a tuple: json writes it as the list it is
        "fingerprint": v.fingerprint,
        "accepted": v.accepted,
        "group": group,
    }
    if v.level:
        out["level"] = v.level
    if v.kind:
        out["kind"] = v.kind
    return out


def buffer_json(b: Buffer) -> dict[str, Any]:
    return {
        "clinician": b.clinician,
        "calendar": b.calendar,
        "start": b.start.isoformat(),
        "end": b.end.isoformat(),
        "title": b.title,
        "after": b.after,
    }


def hold_json(b: Buffer) -> dict[str, Any]:
    return {
        "clinician": b.clinician,
        "calendar": b.calendar,
        "start": b.start.isoformat(),
        "end": b.end.isoformat(),
        "all_day": b.all_day,
        "title": b.title,
        "reason": b.rule,
    }


# The lists of ``check --json``, in the order they are written.
CHECK_LISTS = ("violations", "buffers", "holds", "incomplete", "warnings", "errors")


def check_json(now: datetime, results: list[Assessment[ClinicianSettings]]) -> str:
    return check_json_joined(now, [check_json_items(results)])


def check_json_items(results: list[Assessment[ClinicianSettings]]) -> dict[str, str]:
    """Each of :data:`CHECK_LISTS` for ``results``, as the JSON of its items without the
    brackets: what :func:`check_json_joined` puts together, so clinicians judged in
    several processes print what one process prints."""
    judged = [r for r in results if not r.errors]
    lists: dict[str, list[Any]] = {
        "violations": [
            violation_json(v, group)
            for r in judged
            for group, grouped in groups(r.evaluation.violations, r.clinician.tz)
            for v in grouped
        ],
        "buffers": [buffer_json(b) for r in judged for b in r.evaluation.buffers],
        "holds": [hold_json(b) for r in judged for b in r.evaluation.holds],
        # Clinicians with a calendar that could not be read: judged on nothing.
        "incomplete": [
            {"clinician": r.clinician.id, "calendar": e.calendar, "error": str(e)}
            for r in results
            for e in r.errors
        ],
        "warnings": [w for r in results for w in r.warnings],
        "errors": [str(e) for r in results for e in r.errors],
    }
    # Compact: json's C encoder only runs without indent, and a year of a practice is
    # tens of thousands of records (pipe through `jq` to read it). No cycle check: the
    # tree is built here and has none, and the check costs a lookup per record.
    return {name: json.dumps(items, check_circular=False)[1:-1] for name, items in lists.items()}


def check_json_joined(now: datetime, parts: list[dict[str, str]]) -> str:
    """The JSON object of ``check --json`` from :func:`check_json_items` of consecutive
    groups of clinicians: json separates items with ", " at any depth."""
    fields = [f'"now": {json.dumps(now.isoformat())}']
    for name in CHECK_LISTS:
        items = ", ".join(part[name] for part in parts if part[name])
        fields.append(f'"{name}": [{items}]')
    return "{" + ", ".join(fields) + "}"


def _fact_line(fact: Fact) -> str:
    """``error    working_hours+latest_start  Tue 1 Dec, …  [ab12cd34]``: the id in brackets
    is what ``caldaemon ack`` takes."""
    rules = "+".join(dict.fromkeys(v.rule.removeprefix("level_limits.") for v in fact.violations))
    ids = ", ".join(sorted({v.fingerprint[:8] for v in fact.violations}))
    # A StrEnum member formats as its value, without the enum's property lookup.
    return f"    {fact.severity:<8} {rules:<26} {fact.line}  [{ids}]"


def check_text(results: list[Assessment[ClinicianSettings]]) -> str:
    return check_text_joined([check_lines(results)])


def check_text_joined(parts: list[list[str]]) -> str:
    """The text of ``check`` from :func:`check_lines` of consecutive groups of clinicians."""
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"


def check_lines(results: list[Assessment[ClinicianSettings]]) -> list[str]:
    lines: list[str] = []
    for result in results:
        tz, who = result.clinician.tz, result.clinician.who
        violations, buffers = result.evaluation.violations, result.evaluation.buffers
        horizon = f"from {day_name(result.now.astimezone(tz).date())}"
        if result.errors:
            # Failing closed: rules over a calendar that was not read judge partial data.
            unread = ", ".join(f"'{e.calendar}' ({e.reason})" for e in result.errors)
            lines.append(
                f"{who}: incomplete: could not read {unread}. Nothing is judged "
                "until every calendar can be read."
            )
            lines.append("")
            continue
        found = facts(violations, tz)
        open_facts: list[Fact] = []
        accepted: list[Fact] = []
        for fact in found:
            (accepted if fact.accepted else open_facts).append(fact)
        if not open_facts:
            lines.append(f"{who}: everything fits inside your boundaries ({horizon}).")
        else:
            lines.append(f"{who}: {plural(len(open_facts), 'thing')} to look at ({horizon}).")
            by_day: dict[date, list[Fact]] = defaultdict(list)
            for fact in open_facts:
                by_day[fact.date].append(fact)
            for day in sorted(by_day):
                lines.append("")
                lines.append(f"  {day_name(day)}")
                for fact in by_day[day]:
                    lines.append(_fact_line(fact))
        if accepted:
            lines.append("")
            lines.append(f"  {plural(len(accepted), 'accepted exception')} (no notices):")
            lines.extend(_fact_line(fact) for fact in accepted)
        holds = result.evaluation.holds
        if holds:
            lines.append("")
            lines.append(f"  Protected time ({plural(len(holds), 'hold')}):")
            for h in holds:
                start = h.start.astimezone(tz)
                when = "all day" if h.all_day else f"{clock(start)}–{clock(h.end.astimezone(tz))}"
                lines.append(f"    {day_name(start.date()):<11} {when:<11}  {h.title}")
        if buffers:
            target = (
                f"on '{result.clinician.buffers_to}'"
                if result.clinician.buffers_to
                else ("not written: no buffers_to calendar is set")
            )
            lines.append("")
            lines.append(f"  Buffers ({len(buffers)}, {target}):")
            for b in buffers:
                start = b.start.astimezone(tz)
                lines.append(
                    f"    {day_name(start.date()):<11} {clock(start)}–"
                    f"{clock(b.end.astimezone(tz))}  {b.title}"
                )
        lines.append("")
    return lines


def events_json(now: datetime, results: list[Assessment[ClinicianSettings]], redact: bool) -> str:
    items = []
    for result in results:
        for c in result.classified:
            e = c.event
            item: dict[str, Any] = {
                "clinician": result.clinician.id,
                "calendar": e.calendar,
                "id": e.id,
                "start": e.start.isoformat(),
                "end": e.end.isoformat(),
                "all_day": e.all_day,
                "kind": c.kind.value,
                "level": c.level,
                "why": c.why,
                "accepted": c.accepted,
            }
            if not redact:
                item["title"] = e.title
            items.append(item)
    return json.dumps(
        {
            "now": now.isoformat(),
            "events": items,
            "warnings": [w for r in results for w in r.warnings],
            "errors": [str(e) for r in results for e in r.errors],
        },
        indent=2,
    )


def events_text(results: list[Assessment[ClinicianSettings]], redact: bool) -> str:
    lines: list[str] = []
    for result in results:
        tz = result.clinician.tz
        lines.append(f"{result.clinician.who}: {plural(len(result.classified), 'event')}")
        current: date | None = None
        for c in result.classified:
            start = c.event.start.astimezone(tz)
            if start.date() != current:
                current = start.date()
                lines.append(f"  {day_name(current)}")
            when = (
                "all day    "
                if c.event.all_day
                else (f"{clock(start)}–{clock(c.event.end.astimezone(tz))}")
            )
            what = c.kind.value if c.kind is not Kind.SESSION else f"session/{c.level}"
            title = "" if redact else f"  {c.event.title[:40]}"
            why = f"{c.why}; accepted" if c.accepted else c.why
            lines.append(f"    {when}  {c.event.calendar:<10} {what:<18} {why}{title}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
