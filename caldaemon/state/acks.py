"""What the clinician told caldaemon by command: ``marks``, the level of an event or a
whole series (``caldaemon mark``), and ``acks``, violations accepted (``caldaemon ack``),
for good or until a date (DESIGN.md §10). Ids only: no event text."""

from __future__ import annotations

from datetime import date, datetime

from caldaemon.state.convert import iso
from caldaemon.state.dialect import Connection, upsert


class Marks:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def of(self, clinician: str) -> dict[str, str]:
        """Level by ``calendar/id`` (an event, or a series by its id)."""
        rows = self.db.execute("SELECT key, level FROM marks WHERE clinician=?", (clinician,))
        return {row["key"]: row["level"] for row in rows}

    def set(self, clinician: str, key: str, level: str, now: datetime) -> None:
        self.db.execute(
            upsert("marks", ("clinician", "key", "level", "created"), ("clinician", "key")),
            {"clinician": clinician, "key": key, "level": level, "created": iso(now)},
        )

    def clear(self, clinician: str, key: str) -> bool:
        cursor = self.db.execute("DELETE FROM marks WHERE clinician=? AND key=?", (clinician, key))
        return cursor.rowcount > 0


class Acks:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def active(self, clinician: str, today: date) -> set[str]:
        """Fingerprints of the violations accepted on ``today``."""
        rows = self.db.execute(
            "SELECT fingerprint FROM acks WHERE clinician=? AND (until IS NULL OR until>=?)",
            (clinician, today.isoformat()),
        )
        return {row["fingerprint"] for row in rows}

    def add(self, clinician: str, fingerprint: str, until: date | None, now: datetime) -> None:
        self.db.execute(
            upsert(
                "acks",
                ("clinician", "fingerprint", "until", "created"),
                ("clinician", "fingerprint"),
            ),
            {
                "clinician": clinician,
                "fingerprint": fingerprint,
                "until": until.isoformat() if until else None,
                "created": iso(now),
            },
        )

    def prune(self, clinician: str, today: date) -> None:
        """Acks whose date has passed (``until``) mean nothing any more."""
        self.db.execute(
            "DELETE FROM acks WHERE clinician=? AND until IS NOT NULL AND until<?",
            (clinician, today.isoformat()),
        )
