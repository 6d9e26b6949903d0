"""``caldaemon status``: what the daemon knows, read from its state (read-only, beside a
running daemon). The JSON shape is a contract (DESIGN.md §4): add fields, never rename."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from caldaemon.cli.app import config_option, json_option, load_settings, main, user_errors
from caldaemon.text import clock, day_name

if TYPE_CHECKING:
    from caldaemon.config import Settings


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def collect(settings: Settings) -> dict[str, Any]:
    from caldaemon.state import State

    location = settings.state_location
    if not settings.has_state:
        return {"state": str(location), "calendars": [], "open_violations": [], "outbox": {}}
    state = State(location, read_only=True)
    try:
        with state.read() as tables:
            calendars = tables.calendars.all()
            violations = tables.violations.all_open()
            outbox = tables.outbox.counts()
            failed = tables.outbox.failed()
            held = tables.outbox.held()
            buffers = tables.buffers.counts()
            leases = tables.leases.holders()
    finally:
        state.close()
    return {
        "state": str(location),
        "calendars": [
            {
                "clinician": c.clinician,
                "calendar": c.calendar,
                "last_success": _iso(c.last_success),
                "last_error": c.last_error,
                "last_error_at": _iso(c.last_error_at),
                "failing_since": _iso(c.failing_since),
                "paused": c.paused,
            }
            for c in calendars
        ],
        "open_violations": [
            {
                "clinician": r.violation.clinician,
                "rule": r.violation.rule,
                "severity": r.violation.severity.value,
                "date": r.violation.date.isoformat(),
                "message": r.violation.message,
                "first_seen": _iso(r.first_seen),
                "last_notified": _iso(r.last_notified),
            }
            for r in violations
        ],
        "outbox": outbox,
        "failed_notices": [
            {
                "message_id": n.message_id,
                "recipient": n.recipient,
                "subject": n.subject,
                "attempts": n.attempts,
                "last_error": n.last_error,
            }
            for n in failed
        ],
        "held_notices": [
            {
                "message_id": n.message_id,
                "recipient": n.recipient,
                "subject": n.subject,
                "attempts": n.attempts,
                "last_error": n.last_error,
            }
            for n in held
        ],
        "buffers": buffers,
        # Several instances on one PostgreSQL state: which one holds each clinician
        # (null: none now, another takes it at its next heartbeat).
        "leases": {clinician: holder or None for clinician, holder in leases.items()},
    }


def _zone_of(settings: Settings, clinician: str) -> ZoneInfo:
    """The clinician's zone (the config's, for one no longer in the config)."""
    return next((c.tz for c in settings.clinicians if c.id == clinician), settings.tz)


def _local(stamp: str | None, zone: ZoneInfo) -> str:
    """``Mon 30 Nov 08:00 America/Toronto``: a stored UTC time, as the clinician reads it."""
    if stamp is None:
        return "never"
    moment = datetime.fromisoformat(stamp).astimezone(zone)
    return f"{day_name(moment.date())} {clock(moment)} {zone.key}"


def render(settings: Settings, as_json: bool) -> str:
    data = collect(settings)
    if as_json:
        return json.dumps(data, indent=2)
    lines = [f"state: {data['state']}", "", "calendars:"]
    if not data["calendars"]:
        lines.append("  (none synced yet: is `caldaemon run` running?)")
    for c in data["calendars"]:
        zone = _zone_of(settings, c["clinician"])
        state = (
            "paused: " + c["paused"]
            if c["paused"]
            else (
                f"last error {_local(c['last_error_at'], zone)}: {c['last_error']}"
                if c["last_error"]
                else "ok"
            )
        )
        lines.append(
            f"  {c['clinician']}/{c['calendar']}: last sync "
            f"{_local(c['last_success'], zone)}; {state}"
        )
    lines += ["", f"open violations: {len(data['open_violations'])}"]
    for v in data["open_violations"]:
        lines.append(f"  {v['clinician']} {v['date']} {v['severity']:<7} {v['message']}")
    outbox = data["outbox"]
    lines += [
        "",
        "notices: " + (", ".join(f"{n} {s}" for s, n in sorted(outbox.items())) or "none"),
    ]
    for f in data.get("failed_notices", []):
        lines.append(
            f"  not delivered: '{f['subject']}' to {f['recipient']} after "
            f"{f['attempts']} attempt(s): {f['last_error']}"
        )
    for h in data.get("held_notices", []):
        lines.append(
            f"  held until the config is fixed: '{h['subject']}' to {h['recipient']}: "
            f"{h['last_error']}"
        )
    buffers = data.get("buffers", {})
    if buffers:
        lines.append(
            "buffers: "
            + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(buffers.items()))
        )
    holding: dict[str, list[str]] = {}
    for clinician, holder in data.get("leases", {}).items():
        holding.setdefault(holder or "nobody (taken at the next heartbeat)", []).append(clinician)
    if holding:
        lines += ["", "instances:"]
        lines += [f"  {holder}: {', '.join(held)}" for holder, held in sorted(holding.items())]
    return "\n".join(lines)


@main.command()
@config_option
@json_option
@user_errors
def status(config_path: str | None, as_json: bool) -> None:
    """Show each calendar's last sync and error, open violations, and the outbox."""
    click.echo(render(load_settings(config_path), as_json))
