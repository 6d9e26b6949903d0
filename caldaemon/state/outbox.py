"""``outbox``: notices queued for delivery, at least once, each under its deterministic
Message-ID; ``digests``: when each clinician's last digest went out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from caldaemon.state.convert import iso, optional_iso, parse_iso
from caldaemon.state.dialect import Connection, Row

# pending: to be sent; sent; held: refused for a reason the config can fix (a certificate,
# STARTTLS, a password), sent again after a reload or restart; failed: refused for good
# (a recipient the server does not take).
PENDING, SENT, HELD, FAILED = "pending", "sent", "held", "failed"


@dataclass(frozen=True)
class QueuedNotice:
    message_id: str
    clinician: str | None
    recipient: str
    subject: str
    text: str
    html: str
    created: datetime
    not_before: datetime
    attempts: int
    # pending | sent | failed (for good)
    status: str
    last_error: str | None
    sent_at: datetime | None
    # The picture shown inline in the HTML part (the weekly report's PNG), if any.
    image: bytes | None = None


def _notice(row: Row) -> QueuedNotice:
    return QueuedNotice(
        message_id=row["message_id"],
        clinician=row["clinician"],
        recipient=row["recipient"],
        subject=row["subject"],
        text=row["text"],
        html=row["html"],
        created=parse_iso(row["created"]),
        not_before=parse_iso(row["not_before"]),
        attempts=row["attempts"],
        status=row["status"],
        last_error=row["last_error"],
        sent_at=optional_iso(row["sent_at"]),
        image=row["image"],
    )


# How long an instance that took a notice to deliver has it to itself (issue 15): longer
# than a delivery can take (SMTP's timeout is 30 s a message); after that, one that died
# with it claimed is delivered by another (at least once, under its Message-ID).
CLAIM = timedelta(minutes=10)
# At most this many notices are taken at once.
BATCH = 200


class Outbox:
    """``holder``: this instance shares the state with others, and taking the due
    notices claims them (``FOR UPDATE SKIP LOCKED``): each is delivered by one."""

    def __init__(self, db: Connection, holder: str | None = None) -> None:
        self.db = db
        self.holder = holder

    def queue(
        self,
        *,
        message_id: str,
        clinician: str | None,
        recipient: str,
        subject: str,
        text: str,
        html: str,
        now: datetime,
        not_before: datetime,
        image: bytes | None = None,
    ) -> None:
        """Queue a notice once: the same Message-ID again is the same notice."""
        self.db.execute(
            "INSERT INTO outbox (message_id, clinician, recipient, subject, text, "
            "html, created, not_before, image) VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT DO NOTHING",
            (
                message_id,
                clinician,
                recipient,
                subject,
                text,
                html,
                iso(now),
                iso(not_before),
                image,
            ),
        )

    def has(self, message_id: str) -> bool:
        """Whether a notice with this Message-ID was queued (and not pruned yet)."""
        row = self.db.execute("SELECT 1 FROM outbox WHERE message_id=?", (message_id,))
        return row.fetchone() is not None

    def due(self, now: datetime) -> list[QueuedNotice]:
        """Pending notices whose time has come, oldest first (with a holder: those no
        other instance has claimed, claimed for this one for :data:`CLAIM`)."""
        if self.holder is None:
            rows = self.db.execute(
                "SELECT * FROM outbox WHERE status=? AND not_before<=? ORDER BY created",
                (PENDING, iso(now)),
            )
            return [_notice(row) for row in rows]
        # One statement: atomic on its own, without a transaction around it.
        claimed = self.db.execute(
            "UPDATE outbox SET claimed_by=:holder, claimed_until=:until WHERE message_id IN "
            "(SELECT message_id FROM outbox WHERE status=:pending AND not_before<=:now "
            "AND (claimed_until IS NULL OR claimed_until<=:now) ORDER BY created "
            f"LIMIT {BATCH}{self.db.skip_locked}) RETURNING *",
            {"holder": self.holder, "until": iso(now + CLAIM), "pending": PENDING, "now": iso(now)},
        )
        return sorted((_notice(row) for row in claimed), key=lambda n: n.created)

    def all(self) -> list[QueuedNotice]:
        return [_notice(row) for row in self.db.execute("SELECT * FROM outbox ORDER BY created")]

    def failed(self) -> list[QueuedNotice]:
        rows = self.db.execute("SELECT * FROM outbox WHERE status=? ORDER BY created", (FAILED,))
        return [_notice(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many notices have each status."""
        rows = self.db.execute("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        return {row["status"]: row["n"] for row in rows}

    def sent(self, message_id: str, now: datetime) -> None:
        """Delivered: its text goes at once (with ``privacy: full`` it names clients)."""
        self.db.execute(
            "UPDATE outbox SET status=?, sent_at=?, attempts=attempts+1, text='', html='', "
            "image=NULL "
            "WHERE message_id=?",
            (SENT, iso(now), message_id),
        )

    def prune_delivered(self, before: datetime) -> None:
        """Forget notices delivered (or given up) before ``before``."""
        self.db.execute(
            "DELETE FROM outbox WHERE (status=? AND sent_at<?) OR (status=? AND created<?)",
            (SENT, iso(before), FAILED, iso(before)),
        )

    def attempt_failed(
        self, message_id: str, *, attempts: int, error: str, status: str, retry_at: datetime
    ) -> None:
        """A failed attempt; ``status`` says what comes next (pending, held, failed)."""
        self.db.execute(
            "UPDATE outbox SET attempts=?, last_error=?, status=?, not_before=?, "
            "claimed_until=NULL WHERE message_id=?",
            (attempts, error, status, iso(retry_at), message_id),
        )

    def release_held(self, now: datetime) -> int:
        """The config changed: notices held for a config problem are tried again now."""
        cursor = self.db.execute(
            "UPDATE outbox SET status=?, not_before=?, attempts=0 WHERE status=?",
            (PENDING, iso(now), HELD),
        )
        return cursor.rowcount

    def held(self) -> list[QueuedNotice]:
        rows = self.db.execute("SELECT * FROM outbox WHERE status=? ORDER BY created", (HELD,))
        return [_notice(row) for row in rows]


class Digests:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def last_sent(self, clinician: str) -> datetime | None:
        row = self.db.execute(
            "SELECT last_sent FROM digests WHERE clinician=?", (clinician,)
        ).fetchone()
        return parse_iso(row[0]) if row else None

    def sent(self, clinician: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO digests (clinician, last_sent) VALUES (?, ?) "
            "ON CONFLICT (clinician) DO UPDATE SET last_sent=excluded.last_sent",
            (clinician, iso(now)),
        )
