"""From violations to delivered notices, through the outbox in the state database.

A violation is recorded and its notice queued in the same transaction, so a crash between
them loses nothing; delivery is at-least-once with a deterministic Message-ID, retried with
backoff on temporary failures and kept (shown by ``caldaemon status``) after permanent
ones (DESIGN.md §6). Operational problems go to ``admin_email`` once per distinct problem.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from . import failpoints, notify
from .config import ClinicianSettings, Settings
from .config_schema import WEEKDAYS
from .errors import AuthorizationError, DeliveryError
from .model import Severity, Violation
from .state import State, iso, parse_iso

if TYPE_CHECKING:
    from .mail import Mailer

log = logging.getLogger("caldaemon.notices")

UNREACHABLE_AFTER = timedelta(hours=1)
MAX_ATTEMPTS = 30
_delivery_lock = threading.Lock()


def recipient(settings: Settings, clinician: ClinicianSettings | None) -> str:
    if clinician is not None and clinician.email:
        return clinician.email
    if settings.notices.admin_email:
        return settings.notices.admin_email
    return f"{clinician.id if clinician else 'caldaemon'}@localhost"


def admin_recipient(settings: Settings, clinician: ClinicianSettings | None) -> str:
    return settings.notices.admin_email or recipient(settings, clinician)


def next_working_moment(clinician: ClinicianSettings, now: datetime) -> datetime:
    """Now, when inside working hours (or none are set); else the start of the next."""
    hours = clinician.rules.working_hours
    if not hours:
        return now
    local = now.astimezone(clinician.tz)
    for offset in range(15):
        day: date = local.date() + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] in clinician.rules.days_off:
            continue
        for start, end in hours.get(day.weekday(), ()):
            opens = datetime.combine(day, time(start // 60, start % 60), clinician.tz)
            closes = datetime.combine(day, time(), clinician.tz) + timedelta(minutes=end)
            if opens <= local < closes:
                return now
            if local < opens:
                return opens
    return now


def _queue(
    db,
    message: notify.Message,
    clinician: str | None,
    now: datetime,  # type: ignore[no-untyped-def]
    not_before: datetime,
) -> None:
    db.execute(
        "INSERT OR IGNORE INTO outbox (message_id, clinician, recipient, subject, text, "
        "html, created, not_before) VALUES (?,?,?,?,?,?,?,?)",
        (
            message.message_id,
            clinician,
            message.to,
            message.subject,
            message.text,
            message.html,
            iso(now),
            iso(not_before),
        ),
    )


def _mark_notified(db: sqlite3.Connection, clinician: str, now: datetime,
                   notified: Sequence[str], resolved: Sequence[str]) -> None:
    """Remember what a queued notice told, in the transaction that queued it."""
    db.executemany(
        "UPDATE violations SET last_notified=? WHERE clinician=? AND fingerprint=?",
        ((iso(now), clinician, fp) for fp in notified),
    )
    db.executemany(
        "UPDATE violations SET resolution_notified=1 WHERE clinician=? AND fingerprint=?",
        ((clinician, fp) for fp in resolved),
    )


def _row_violation(row) -> Violation:  # type: ignore[no-untyped-def]
    return Violation(
        clinician=row["clinician"],
        rule=row["rule"],
        severity=Severity(row["severity"]),
        date=date.fromisoformat(row["date"]),
        start=parse_iso(row["start"]),
        end=parse_iso(row["end"]),
        message=row["message"],
        events=tuple(json.loads(row["events"])),
        level=row["level"],
        kind=row["kind"],
    )


def record_violations(
    state: State,
    settings: Settings,
    clinician: ClinicianSettings,
    violations: Sequence[Violation],
    now: datetime,
    titles: Mapping[str, str] | None = None,
) -> int:
    """Store this cycle's violations; in immediate mode queue one notice with what is
    new, due again (``repeat_after``) or resolved. Returns the number of notices queued."""
    notices = settings.notices
    today = now.astimezone(clinician.tz).date()
    current = {v.fingerprint: v for v in violations}
    with state.transaction() as db:
        known = {
            r["fingerprint"]: r
            for r in db.execute(
                "SELECT * FROM violations WHERE clinician=? AND resolved_at IS NULL",
                (clinician.id,),
            )
        }
        for fingerprint, v in current.items():
            db.execute(
                "INSERT INTO violations (clinician, fingerprint, rule, severity, date, start, end, "
                "message, events, level, kind, first_seen, last_seen) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (clinician, fingerprint) DO UPDATE SET "
                "severity=excluded.severity, date=excluded.date, start=excluded.start, "
                "end=excluded.end, message=excluded.message, events=excluded.events, "
                "last_seen=excluded.last_seen, resolved_at=NULL, resolution_notified=0",
                (
                    clinician.id,
                    fingerprint,
                    v.rule,
                    v.severity.value,
                    v.date.isoformat(),
                    iso(v.start),
                    iso(v.end),
                    v.message,
                    json.dumps(list(v.events)),
                    v.level,
                    v.kind,
                    iso(now),
                    iso(now),
                ),
            )
        gone = [r for fp, r in known.items() if fp not in current]
        db.executemany(
            "UPDATE violations SET resolved_at=? WHERE clinician=? AND fingerprint=?",
            ((iso(now), clinician.id, r["fingerprint"]) for r in gone),
        )
        if notices.mode != "immediate":
            return 0
        new = [
            v for fp, v in current.items() if fp not in known or known[fp]["last_notified"] is None
        ]
        again = [
            v
            for fp, v in current.items()
            if fp in known
            and known[fp]["last_notified"]
            and parse_iso(known[fp]["last_notified"]) + notices.repeat_after <= now
        ]
        resolved = [
            r for r in gone if r["last_notified"] and date.fromisoformat(r["date"]) >= today
        ]
        if not (new or again or resolved):
            return 0
        included = [v.fingerprint for v in (*new, *again)]
        key = f"{clinician.id}/{iso(now)}/" + ",".join(
            sorted(included + [r["fingerprint"] for r in resolved])
        )
        message = notify.violations_message(
            clinician=clinician,
            new=new,
            still_open=again,
            resolved=[_row_violation(r) for r in resolved],
            privacy=notices.privacy,
            titles=titles,
            key=key,
            to=recipient(settings, clinician),
        )
        not_before = (
            next_working_moment(clinician, now) if notices.quiet_outside_working_hours else now
        )
        _queue(db, message, clinician.id, now, not_before)
        _mark_notified(db, clinician.id, now, included, [r["fingerprint"] for r in resolved])
        return 1


def queue_digest(
    state: State,
    settings: Settings,
    clinician: ClinicianSettings,
    now: datetime,
    titles: Mapping[str, str] | None = None,
) -> int:
    """The daily digest: what is new or due again, and what resolved since the last one."""
    today = now.astimezone(clinician.tz).date()
    repeat_after = settings.notices.repeat_after
    with state.transaction() as db:
        last = db.execute(
            "SELECT last_sent FROM digests WHERE clinician=?", (clinician.id,)
        ).fetchone()
        since = parse_iso(last[0]) if last else now - timedelta(days=1)
        open_rows = db.execute(
            "SELECT * FROM violations WHERE clinician=? AND resolved_at IS NULL AND date>=?",
            (clinician.id, today.isoformat()),
        ).fetchall()
        new = [r for r in open_rows if r["last_notified"] is None]
        again = [
            r
            for r in open_rows
            if r["last_notified"] and parse_iso(r["last_notified"]) + repeat_after <= now
        ]
        resolved = db.execute(
            "SELECT * FROM violations WHERE clinician=? AND resolved_at>=? AND date>=? AND "
            "last_notified IS NOT NULL AND resolution_notified=0",
            (clinician.id, iso(since), today.isoformat()),
        ).fetchall()
        db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?)", (clinician.id, iso(now)))
        if not (new or again or resolved):
            return 0
        message = notify.violations_message(
            clinician=clinician,
            new=[_row_violation(r) for r in new],
            still_open=[_row_violation(r) for r in again],
            resolved=[_row_violation(r) for r in resolved],
            privacy=settings.notices.privacy,
            titles=titles,
            key=f"{clinician.id}/digest/{today.isoformat()}",
            to=recipient(settings, clinician),
        )
        _queue(db, message, clinician.id, now, now)
        _mark_notified(db, clinician.id, now, [r["fingerprint"] for r in (*new, *again)],
                       [r["fingerprint"] for r in resolved])
        return 1


def raise_problem(
    state: State,
    settings: Settings,
    key: str,
    problem: str,
    advice: str,
    clinician: ClinicianSettings | None,
    now: datetime,
) -> bool:
    """Queue an operational notice unless this problem was already reported."""
    with state.transaction() as db:
        if db.execute("SELECT 1 FROM problems WHERE key=?", (key,)).fetchone():
            return False
        db.execute("INSERT INTO problems VALUES (?,?,?,?)", (key, problem, iso(now), iso(now)))
        message = notify.operational_message(
            problem=problem,
            advice=advice,
            key=f"problem/{key}/{iso(now)}",
            to=admin_recipient(settings, clinician),
            clinician=clinician.id if clinician else None,
        )
        _queue(db, message, clinician.id if clinician else None, now, now)
    log.warning("operational notice: %s", problem)
    return True


def clear_problem(state: State, key_prefix: str) -> None:
    with state.transaction() as db:
        db.execute("DELETE FROM problems WHERE key LIKE ?", (key_prefix + "%",))


def calendar_problems(
    state: State,
    settings: Settings,
    clinician: ClinicianSettings,
    results: Mapping[str, object],
    now: datetime,
) -> None:
    """Authorization failures at once; other failures once they last over an hour."""
    for calendar_id, result in results.items():
        error = getattr(result, "error", None)
        if error is None:
            continue
        key = f"calendar:{clinician.id}/{calendar_id}:"
        if isinstance(error, AuthorizationError):
            raise_problem(
                state,
                settings,
                key + "auth",
                f"caldaemon can no longer read calendar '{calendar_id}' of "
                f"{clinician.id}: {error.reason.split('; run:')[0]}.",
                f"Sign in again with: {error.command}",
                clinician,
                now,
            )
            continue
        row = state.calendar(clinician.id, calendar_id)
        # A paused calendar was reported as an authorization problem already.
        if (
            row
            and not row.paused
            and row.failing_since
            and parse_iso(row.failing_since) <= now - UNREACHABLE_AFTER
        ):
            raise_problem(
                state,
                settings,
                key + "unreachable",
                f"calendar '{calendar_id}' of {clinician.id} has been unreachable "
                f"since {row.failing_since[:16].replace('T', ' ')} UTC: {error}",
                "Check the calendar's address and the network; caldaemon keeps "
                "trying and uses what it last read meanwhile.",
                clinician,
                now,
            )


def deliver_due(
    state: State, mailer: Mailer, now: datetime, rng: random.Random | None = None
) -> tuple[int, int]:
    """Send what is due. Returns (sent, failed for good)."""
    from .mail import retry_delay

    rng = rng or random.Random()
    sent = failed = 0
    with _delivery_lock:
        rows = state.query(
            "SELECT * FROM outbox WHERE status='pending' AND not_before<=? ORDER BY created",
            (iso(now),),
        )
        for row in rows:
            message = notify.Message(
                message_id=row["message_id"],
                to=row["recipient"],
                subject=row["subject"],
                text=row["text"],
                html=row["html"],
            )
            try:
                mailer.send(message)
            except DeliveryError as exc:
                attempts = row["attempts"] + 1
                permanent = exc.permanent or attempts >= MAX_ATTEMPTS
                with state.transaction() as db:
                    db.execute(
                        "UPDATE outbox SET attempts=?, last_error=?, status=?, not_before=? "
                        "WHERE message_id=?",
                        (
                            attempts,
                            str(exc),
                            "failed" if permanent else "pending",
                            iso(now + timedelta(seconds=retry_delay(attempts, rng))),
                            row["message_id"],
                        ),
                    )
                failed += permanent
                log.warning(
                    "notice %s not delivered (%s): %s",
                    row["message_id"],
                    "giving up" if permanent else "will retry",
                    exc,
                )
                continue
            failpoints.reach("after-send")
            with state.transaction() as db:
                db.execute(
                    "UPDATE outbox SET status='sent', sent_at=?, attempts=attempts+1 "
                    "WHERE message_id=?",
                    (iso(now), row["message_id"]),
                )
            sent += 1
    return sent, failed
