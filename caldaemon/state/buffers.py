"""``buffers``: the buffers caldaemon wrote, with the identity, remote id and etag it
recorded, its status (:class:`~caldaemon.model.BufferStatus`) and the intent of a write
under way (DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from caldaemon.model import Buffer, BufferStatus, OwnedBuffer
from caldaemon.state.convert import iso, parse_iso
from caldaemon.state.dialect import Connection, Row, upsert

_COLUMNS = (
    "clinician",
    "identity",
    "calendar",
    "remote_id",
    "etag",
    "start",
    "end",
    "title",
    "after",
    "status",
    "pending_start",
    "pending_end",
    "updated_at",
    "generation",
)
_PUT = upsert("buffers", _COLUMNS, ("clinician", "identity"))


def _owned(row: Row) -> OwnedBuffer:
    return OwnedBuffer(
        clinician=row["clinician"],
        identity=row["identity"],
        calendar=row["calendar"],
        remote_id=row["remote_id"],
        etag=row["etag"],
        start=parse_iso(row["start"]),
        end=parse_iso(row["end"]),
        title=row["title"],
        after=row["after"],
        status=BufferStatus(row["status"]),
        pending=(parse_iso(row["pending_start"]), parse_iso(row["pending_end"]))
        if row["pending_start"]
        else None,
        generation=row["generation"],
    )


class Buffers:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def owned(self, clinician: str, calendar: str | None = None) -> dict[str, OwnedBuffer]:
        """A clinician's buffers (on one calendar, if given), by identity."""
        if calendar is None:
            rows = self.db.execute(
                "SELECT * FROM buffers WHERE clinician=? ORDER BY start", (clinician,)
            )
        else:
            rows = self.db.execute(
                "SELECT * FROM buffers WHERE clinician=? AND calendar=? ORDER BY start",
                (clinician, calendar),
            )
        return {buffer.identity: buffer for buffer in map(_owned, rows)}

    def all(self) -> list[OwnedBuffer]:
        rows = self.db.execute("SELECT * FROM buffers ORDER BY clinician, start, identity")
        return [_owned(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many buffers have each status."""
        rows = self.db.execute("SELECT status, COUNT(*) AS n FROM buffers GROUP BY status")
        return {row["status"]: row["n"] for row in rows}

    def _put(
        self,
        clinician: str,
        calendar: str,
        identity: str,
        buffer: Buffer,
        *,
        remote_id: str,
        etag: str | None,
        status: BufferStatus,
        generation: int,
        now: datetime,
    ) -> None:
        self.db.execute(
            _PUT,
            {
                "clinician": clinician,
                "identity": identity,
                "calendar": calendar,
                "remote_id": remote_id,
                "etag": etag,
                "start": iso(buffer.start),
                "end": iso(buffer.end),
                "title": buffer.title,
                "after": buffer.after,
                "status": status.value,
                "pending_start": None,
                "pending_end": None,
                "updated_at": iso(now),
                "generation": generation,
            },
        )

    def save(
        self,
        clinician: str,
        calendar: str,
        identity: str,
        buffer: Buffer,
        *,
        remote_id: str,
        etag: str | None,
        generation: int,
        status: BufferStatus = BufferStatus.ACTIVE,
        now: datetime,
    ) -> None:
        """The calendar holds this buffer with this content (as written, or adopted)."""
        self._put(
            clinician,
            calendar,
            identity,
            buffer,
            remote_id=remote_id,
            etag=etag,
            status=status,
            generation=generation,
            now=now,
        )

    def intend_create(
        self,
        clinician: str,
        calendar: str,
        identity: str,
        buffer: Buffer,
        *,
        generation: int,
        now: datetime,
    ) -> None:
        """Recorded before the create is sent: a crash leaves ``creating`` behind."""
        self._put(
            clinician,
            calendar,
            identity,
            buffer,
            remote_id="",
            etag=None,
            status=BufferStatus.CREATING,
            generation=generation,
            now=now,
        )

    def settle(
        self,
        clinician: str,
        identity: str,
        *,
        status: BufferStatus,
        remote_id: str,
        etag: str | None,
        now: datetime,
    ) -> None:
        """What the calendar shows of a recorded buffer: its event and the status that
        evidence gives it (the recorded content stays what caldaemon last wrote)."""
        self.db.execute(
            "UPDATE buffers SET status=?, remote_id=?, etag=?, pending_start=NULL, "
            "pending_end=NULL, updated_at=? WHERE clinician=? AND identity=?",
            (status.value, remote_id, etag, iso(now), clinician, identity),
        )

    def intend_update(self, clinician: str, identity: str, buffer: Buffer) -> None:
        """Where an update under way moves the buffer (tells our lost update from a user
        edit)."""
        self.db.execute(
            "UPDATE buffers SET pending_start=?, pending_end=? WHERE clinician=? AND identity=?",
            (iso(buffer.start), iso(buffer.end), clinician, identity),
        )

    def intend_delete(self, clinician: str, identity: str) -> None:
        self.db.execute(
            "UPDATE buffers SET status=? WHERE clinician=? AND identity=?",
            (BufferStatus.DELETING.value, clinician, identity),
        )

    def set_status(
        self, clinician: str, identity: str, status: BufferStatus, now: datetime
    ) -> None:
        self.db.execute(
            "UPDATE buffers SET status=?, updated_at=? WHERE clinician=? AND identity=?",
            (status.value, iso(now), clinician, identity),
        )

    def deleted(self, clinician: str, identity: str, now: datetime) -> None:
        """Our delete landed: kept as ``deleted`` so the buffer comes back with its session."""
        self.db.execute(
            "UPDATE buffers SET status=?, pending_start=NULL, pending_end=NULL, updated_at=? "
            "WHERE clinician=? AND identity=?",
            (BufferStatus.DELETED.value, iso(now), clinician, identity),
        )

    def forget(self, clinician: str, identities: Iterable[str]) -> None:
        self.db.executemany(
            "DELETE FROM buffers WHERE clinician=? AND identity=?",
            ((clinician, identity) for identity in identities),
        )

    def prune_ended(self, clinician: str, before: datetime) -> None:
        """Forget buffers that ended before ``before``: nothing before now is changed."""
        self.db.execute(
            'DELETE FROM buffers WHERE clinician=? AND "end"<?', (clinician, iso(before))
        )
