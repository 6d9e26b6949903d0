"""``caldaemon status``: what the daemon knows, read from its state (read-only, beside a
running daemon). The JSON shape is a contract (DESIGN.md §4): add fields, never rename."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from caldaemon.cli.app import config_option, json_option, load_settings, main, user_errors

if TYPE_CHECKING:
    from caldaemon.config import Settings


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def collect(settings: Settings) -> dict[str, Any]:
    from caldaemon.state import State

    path = settings.state_file
    if not path.exists():
        return {"state": str(path), "calendars": [], "open_violations": [], "outbox": {}}
    state = State(path, read_only=True)
    try:
        with state.read() as tables:
            calendars = tables.calendars.all()
            violations = tables.violations.all_open()
            outbox = tables.outbox.counts()
            failed = tables.outbox.failed()
            held = tables.outbox.held()
            buffers = tables.buffers.counts()
    finally:
        state.close()
    return {
        "state": str(path),
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
    }


def render(settings: Settings, as_json: bool) -> str:
    data = collect(settings)
    if as_json:
        return json.dumps(data, indent=2)
    lines = [f"state: {data['state']}", "", "calendars:"]
    if not data["calendars"]:
        lines.append("  (none synced yet: is `caldaemon run` running?)")
    for c in data["calendars"]:
        state = (
            "paused: " + c["paused"]
            if c["paused"]
            else (
                f"last error {c['last_error_at'][:16]}: {c['last_error']}"
                if c["last_error"]
                else "ok"
            )
        )
        lines.append(
            f"  {c['clinician']}/{c['calendar']}: last sync "
            f"{(c['last_success'] or 'never')[:16]}; {state}"
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
    return "\n".join(lines)


@main.command()
@config_option
@json_option
@user_errors
def status(config_path: str | None, as_json: bool) -> None:
    """Show each calendar's last sync and error, open violations, and the outbox."""
    click.echo(render(load_settings(config_path), as_json))
