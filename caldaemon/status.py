"""``caldaemon status``: what the daemon knows, read from its state (read-only)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .config import Settings
from .daemon import state_path


def collect(settings: Settings) -> dict[str, Any]:
    path = state_path(settings)
    if not path.exists():
        return {"state": str(path), "calendars": [], "open_violations": [], "outbox": {}}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        calendars = [
            dict(r)
            for r in db.execute(
                "SELECT clinician, calendar, last_success, last_error, last_error_at, "
                "failing_since, "
                "paused FROM calendars ORDER BY clinician, calendar"
            )
        ]
        violations = [
            dict(r)
            for r in db.execute(
                "SELECT clinician, rule, severity, date, message, first_seen, last_notified "
                "FROM violations WHERE resolved_at IS NULL ORDER BY clinician, date, rule"
            )
        ]
        outbox = {
            r["status"]: r["n"]
            for r in db.execute("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        }
        failed = [
            dict(r)
            for r in db.execute(
                "SELECT message_id, recipient, subject, attempts, last_error FROM outbox "
                "WHERE status='failed' ORDER BY created"
            )
        ]
        buffers = {
            r["status"]: r["n"]
            for r in db.execute("SELECT status, COUNT(*) AS n FROM buffers GROUP BY status")
        }
    finally:
        db.close()
    return {
        "state": str(path),
        "calendars": calendars,
        "open_violations": violations,
        "outbox": outbox,
        "failed_notices": failed,
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
    buffers = data.get("buffers", {})
    if buffers:
        lines.append(
            "buffers: "
            + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(buffers.items()))
        )
    return "\n".join(lines)
