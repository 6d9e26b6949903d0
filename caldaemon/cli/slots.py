"""``caldaemon slots``: where a new session of a length and level still fits inside the
clinician's boundaries (DESIGN.md §11), its buffers included. The calendars are read live
and read-only, as ``check`` reads them; the search is the core's
(:mod:`caldaemon.core.slots`). Only times, levels, rule ids and buffer titles from the
config are printed: nothing from any event."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import click

from caldaemon.cli.app import (
    clinician_option,
    config_option,
    json_option,
    load_settings,
    main,
    now_option,
    parse_now,
    user_errors,
)
from caldaemon.errors import Error
from caldaemon.text import clock, day_name, describe, plural
from caldaemon.text import length as adjective

if TYPE_CHECKING:
    from caldaemon.config import ClinicianSettings, Settings
    from caldaemon.core.assess import Assessment
    from caldaemon.core.slots import Slot, SlotSearch

LONGEST = timedelta(hours=12)
MOST = 50
# Steps that divide an hour keep the grid on the hour (09:00, 09:20, 09:40, …).
STEPS = (5, 10, 15, 20, 30, 60)


def parse_length(text: str) -> timedelta:
    """``--length``: a positive whole number of minutes, at most 12 hours."""
    length = _duration("--length", text)
    if not timedelta(0) < length <= LONGEST or length % timedelta(minutes=1):
        raise Error(f"--length: {text!r} must be whole minutes, more than 0 and at most 12h")
    return length


def parse_step(text: str) -> timedelta:
    """``--step``: one of :data:`STEPS` minutes."""
    step = _duration("--step", text)
    if step not in [timedelta(minutes=m) for m in STEPS]:
        shown = ", ".join(f"{m}m" for m in STEPS)
        raise Error(f"--step: {text!r} is not one of {shown}")
    return step


def _duration(option: str, text: str) -> timedelta:
    from caldaemon.fields import parse_duration

    try:
        return parse_duration(text.strip())
    except ValueError:
        raise Error(f"{option}: {text!r} is not a duration like 50m or 1h30m") from None


def parse_level(text: str | None, settings: Settings) -> str:
    """``--level``: one of ``classification.levels``; ``default_level`` when not given."""
    levels = settings.classification.levels
    if text is None:
        return settings.classification.default_level
    if text.strip().lower() not in levels:
        raise Error(f"--level: {text!r} is not a level (levels: {', '.join(levels)})")
    return text.strip().lower()


def parse_from(text: str | None, settings: Settings) -> date | datetime | None:
    """``--from``: a day (its midnight in each clinician's zone) or a moment (naive: the
    config's zone)."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parse_now(text, settings)
    except Error:
        raise Error(f"--from: {text!r} is not a date like 2026-12-01") from None


@main.command()
@config_option
@now_option
@clinician_option
@json_option
@click.option(
    "--length",
    "length_text",
    required=True,
    metavar="DURATION",
    help="How long the session is, e.g. 50m or 1h30m (at most 12h).",
)
@click.option("--level", "level_text", metavar="LEVEL", help="Its level (default: default_level).")
@click.option(
    "--count",
    type=click.IntRange(1, MOST),
    default=5,
    show_default=True,
    help=f"How many start times (1–{MOST}).",
)
@click.option(
    "--from",
    "from_text",
    metavar="DATE",
    help="Look from this day (YYYY-MM-DD) on, within the horizon (default: now).",
)
@click.option(
    "--step",
    "step_text",
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="Start times every so often on the clock: 5m, 10m, 15m, 20m, 30m or 60m.",
)
@user_errors
def slots(
    config_path: str | None,
    now_text: str | None,
    clinician_id: str | None,
    as_json: bool,
    length_text: str,
    level_text: str | None,
    count: int,
    from_text: str | None,
    step_text: str,
) -> None:
    """Where a new session of --length at --level can go: the next start times at which
    it would break no boundary kept as an error, with the buffers that would follow it,
    within the horizon. A limit already broken is no reason to rule out a start, unless
    the session would make it worse; warnings are said, not ruled out. Changes nothing.
    Exit 0: start times found; 1: none; 2: bad input or a calendar that could not be read
    (then no start time is shown: they would be judged on part of the calendar)."""
    from caldaemon.core.slots import SlotRequest, find_slots
    from caldaemon.service.read import check as read_and_assess

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    length, step = parse_length(length_text), parse_step(step_text)
    level = parse_level(level_text, settings)
    since = parse_from(from_text, settings)
    results = read_and_assess(settings, now, clinician_id)
    for result in results:
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
    if any(r.errors for r in results):
        for error in (e for r in results for e in r.errors):
            click.echo(f"error: {error}", err=True)
        click.echo(_json(now, results, []) if as_json else _unread(results))
        sys.exit(2)
    found = []
    for result in results:
        request = SlotRequest(length, level, count, _start(since, result.clinician), step)
        horizon = settings.daemon.horizon
        found.append(
            find_slots(
                result.clinician, settings.classification, result.classified, now, horizon, request
            )
        )
    click.echo(
        _json(now, results, found) if as_json else _text(results, found, length, level, count)
    )
    sys.exit(0 if any(search.slots for search in found) else 1)


def _start(since: date | datetime | None, clinician: ClinicianSettings) -> datetime | None:
    if since is None or isinstance(since, datetime):
        return since
    return datetime.combine(since, time(), clinician.tz)


def _unread(results: list[Assessment[ClinicianSettings]]) -> str:
    lines = []
    for result in results:
        if result.errors:
            unread = ", ".join(f"'{e.calendar}' ({e.reason})" for e in result.errors)
            lines.append(
                f"{result.clinician.who}: incomplete: could not read {unread}. No start "
                "times are shown until every calendar can be read."
            )
    return "\n".join(lines)


def _when(moment: datetime) -> str:
    return f"{day_name(moment.date())} {clock(moment)}"


def slot_line(slot: Slot) -> str:
    """``Tue 1 Dec 13:00–13:50 (high) — grounding time 13:50–14:05``."""
    line = f"{_when(slot.start)}–{clock(slot.end)} ({slot.level})"
    tz = slot.start.tzinfo
    blocks = sorted(slot.buffers, key=lambda b: b.start)
    if blocks:
        line += " — " + ", ".join(
            f"{b.title.lower()} {clock(b.start.astimezone(tz))}–{clock(b.end.astimezone(tz))}"
            for b in blocks
        )
    return line


def _counts(counts: Mapping[str, int]) -> str:
    """``217 busy, 3 by no_back_to_back``."""
    from caldaemon.core.slot_grid import BUSY

    return ", ".join(
        f"{n} busy" if rule == BUSY else f"{n} by {rule}" for rule, n in counts.items()
    )


def _text(
    results: list[Assessment[ClinicianSettings]],
    found: list[SlotSearch],
    length: timedelta,
    level: str,
    count: int,
) -> str:
    what = f"a {adjective(length)} {describe(level)}"
    lines: list[str] = []
    for result, search in zip(results, found, strict=True):
        span = f"{_when(search.start)} to {_when(search.end)}"
        if search.slots:
            lines.append(
                f"{result.clinician.who}: {plural(len(search.slots), 'start time')} for {what} "
                f"({span}):"
            )
            for slot in search.slots:
                lines.append(f"  {slot_line(slot)}")
                if slot.warnings:
                    said = "; ".join(dict.fromkeys(w.phrase or w.message for w in slot.warnings))
                    lines.append(f"      warning: {said}")
        else:
            lines.append(
                f"{result.clinician.who}: nowhere from {span} does {what} fit inside your "
                "boundaries."
            )
        if len(search.slots) < count:  # it ran out: say why
            if search.closed:
                lines.append(f"  Days ruled out: {_counts(search.closed)}.")
            if search.ruled_out:
                lines.append(f"  Start times ruled out: {_counts(search.ruled_out)}.")
        lines.append("")
    return "\n".join(lines).rstrip()


def _json(
    now: datetime, results: list[Assessment[ClinicianSettings]], found: list[SlotSearch]
) -> str:
    # ``searched``: per clinician, the span looked at and why starts were ruled out
    # (days closed and starts dropped, by rule id). Empty when nothing was searched.
    return json.dumps(
        {
            "now": now.isoformat(),
            "slots": [slot_json(slot) for search in found for slot in search.slots],
            "searched": [
                {
                    "clinician": result.clinician.id,
                    "from": search.start.isoformat(),
                    "to": search.end.isoformat(),
                    "closed": dict(search.closed),
                    "ruled_out": dict(search.ruled_out),
                }
                for result, search in zip(results, found, strict=False)
            ],
            "warnings": [w for r in results for w in r.warnings],
            "errors": [str(e) for r in results for e in r.errors],
        },
        indent=2,
    )


def slot_json(slot: Slot) -> dict[str, Any]:
    return {
        "clinician": slot.clinician,
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
        "level": slot.level,
        "buffers": [
            {
                "start": b.start.isoformat(),
                "end": b.end.isoformat(),
                "title": b.title,
                "calendar": b.calendar,
            }
            for b in sorted(slot.buffers, key=lambda b: b.start)
        ],
        "warnings": [{"rule": w.rule, "message": w.message} for w in slot.warnings],
    }
