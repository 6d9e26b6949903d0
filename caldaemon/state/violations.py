"""``violations``: every boundary crossed, by fingerprint, with when it was first and last
seen, last notified and resolved (DESIGN.md §6)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from caldaemon.model import Severity, Violation
from caldaemon.state.convert import iso, optional_iso, parse_iso
from caldaemon.state.dialect import Connection, Row


@dataclass(frozen=True)
class ViolationRecord:
    """A violation as state remembers it: the one that was judged, with its subject and
    phrase, so a digest merges and words its lines as ``check`` does."""

    violation: Violation
    first_seen: datetime
    last_seen: datetime
    last_notified: datetime | None
    resolved_at: datetime | None
    resolution_notified: bool

    @property
    def fingerprint(self) -> str:
        """The key of its row: the violation's own (for a row from before schema 7, the
        stored one, see :func:`_record`)."""
        return self.violation.fingerprint


def _record(row: Row) -> ViolationRecord:
    violation = Violation(
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
        subject=row["subject"] or "",
        phrase=row["phrase"] or "",
        accepted=bool(row["accepted"]),
    )
    if row["subject"] is None:
        # Recorded before schema 7 and not seen since: its subject is lost (only the hash
        # made from it was kept), so the fingerprint made here from "" would be another
        # violation's. It keeps the stored one; with no subject it stands alone in a
        # merged listing (caldaemon.core.facts) and, with no phrase, says its message.
        object.__setattr__(violation, "fingerprint", row["fingerprint"])
    return ViolationRecord(
        violation=violation,
        first_seen=parse_iso(row["first_seen"]),
        last_seen=parse_iso(row["last_seen"]),
        last_notified=optional_iso(row["last_notified"]),
        resolved_at=optional_iso(row["resolved_at"]),
        resolution_notified=bool(row["resolution_notified"]),
    )


class Violations:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def open(self, clinician: str) -> dict[str, ViolationRecord]:
        """A clinician's unresolved violations, by fingerprint."""
        rows = self.db.execute(
            "SELECT * FROM violations WHERE clinician=? AND resolved_at IS NULL", (clinician,)
        )
        return {record.fingerprint: record for record in map(_record, rows)}

    def open_from(self, clinician: str, day: date) -> list[ViolationRecord]:
        """Unresolved violations dated ``day`` or later."""
        rows = self.db.execute(
            "SELECT * FROM violations WHERE clinician=? AND resolved_at IS NULL AND date>=?",
            (clinician, day.isoformat()),
        )
        return [_record(row) for row in rows]

    def resolved_unannounced(
        self, clinician: str, since: datetime, day: date
    ) -> list[ViolationRecord]:
        """Violations resolved since ``since``, dated ``day`` or later, that were notified
        and whose resolution was not."""
        rows = self.db.execute(
            "SELECT * FROM violations WHERE clinician=? AND resolved_at>=? AND date>=? AND "
            "last_notified IS NOT NULL AND resolution_notified=0",
            (clinician, iso(since), day.isoformat()),
        )
        return [_record(row) for row in rows]

    def all_open(self) -> list[ViolationRecord]:
        rows = self.db.execute(
            "SELECT * FROM violations WHERE resolved_at IS NULL ORDER BY clinician, date, rule"
        )
        return [_record(row) for row in rows]

    def count_open(self) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM violations WHERE resolved_at IS NULL")
        return int(row.fetchone()[0])

    def seen(self, violation: Violation, now: datetime) -> None:
        """Record a violation found this cycle (again open, if it had resolved). A row
        from before schema 7 gets its subject and phrase back here."""
        self.db.execute(
            'INSERT INTO violations (clinician, fingerprint, rule, severity, date, start, "end", '
            "message, events, level, kind, subject, phrase, first_seen, last_seen, accepted) "
            "VALUES (:clinician, :fingerprint, :rule, :severity, :date, :start, :end, :message, "
            ":events, :level, :kind, :subject, :phrase, :now, :now, :accepted) "
            "ON CONFLICT (clinician, fingerprint) DO UPDATE SET "
            "severity=excluded.severity, date=excluded.date, start=excluded.start, "
            '"end"=excluded."end", message=excluded.message, events=excluded.events, '
            "subject=excluded.subject, phrase=excluded.phrase, "
            "last_seen=excluded.last_seen, accepted=excluded.accepted, resolved_at=NULL, "
            "resolution_notified=0",
            {
                "clinician": violation.clinician,
                "fingerprint": violation.fingerprint,
                "rule": violation.rule,
                "severity": violation.severity.value,
                "date": violation.date.isoformat(),
                "start": iso(violation.start),
                "end": iso(violation.end),
                "message": violation.message,
                "events": json.dumps(list(violation.events)),
                "level": violation.level,
                "kind": violation.kind,
                # Event keys or a period, and times, kinds, levels and counts: no event
                # text (DESIGN.md §7; made in caldaemon/core/rules/, see schema 7).
                "subject": violation.subject,
                "phrase": violation.phrase,
                "now": iso(now),
                "accepted": int(violation.accepted),
            },
        )

    def resolve(self, clinician: str, fingerprints: Iterable[str], now: datetime) -> None:
        self.db.executemany(
            "UPDATE violations SET resolved_at=? WHERE clinician=? AND fingerprint=?",
            ((iso(now), clinician, fingerprint) for fingerprint in fingerprints),
        )

    def notified(
        self,
        clinician: str,
        now: datetime,
        *,
        told: Iterable[str] = (),
        resolutions: Iterable[str] = (),
    ) -> None:
        """A queued notice told of these violations, and of these resolutions."""
        self.db.executemany(
            "UPDATE violations SET last_notified=? WHERE clinician=? AND fingerprint=?",
            ((iso(now), clinician, fingerprint) for fingerprint in told),
        )
        self.db.executemany(
            "UPDATE violations SET resolution_notified=1 WHERE clinician=? AND fingerprint=?",
            ((clinician, fingerprint) for fingerprint in resolutions),
        )

    def prune_resolved(self, clinician: str, before: datetime) -> None:
        self.db.execute(
            "DELETE FROM violations WHERE clinician=? AND resolved_at IS NOT NULL "
            "AND resolved_at<?",
            (clinician, iso(before)),
        )
