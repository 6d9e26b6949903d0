"""caldaemon's memory: one SQLite file in ``state_dir`` (DESIGN.md §6).

It holds sync tokens, a cache of normalized events (ids, times and the inputs of
classification: never titles, descriptions, locations or attendees), the buffers
caldaemon owns, violations with their fingerprints, the notice outbox, and operational
problems. The folder is 0700 and the files 0600; WAL keeps readers (``caldaemon status``)
from blocking the daemon. Every change of a cycle that must not be half done (a listing
and its token; a violation and its notice) goes in one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import Error
from .model import Event

SCHEMA_VERSION = 1

# Each entry upgrades the schema by one version; never edit a released entry, add one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE calendars (
        clinician TEXT NOT NULL, calendar TEXT NOT NULL,
        token TEXT, window_start TEXT, window_end TEXT, vocabulary TEXT,
        last_success TEXT, last_error TEXT, last_error_at TEXT, failing_since TEXT,
        paused TEXT, empty_reads INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (clinician, calendar));
    CREATE TABLE events (
        clinician TEXT NOT NULL, calendar TEXT NOT NULL, id TEXT NOT NULL,
        start TEXT NOT NULL, end TEXT NOT NULL, all_day INTEGER NOT NULL,
        tags TEXT NOT NULL, color TEXT, cancelled INTEGER NOT NULL, busy INTEGER NOT NULL,
        declined INTEGER NOT NULL, owner TEXT, series TEXT, etag TEXT, title_matches INTEGER,
        PRIMARY KEY (clinician, calendar, id));
    CREATE TABLE buffers (
        clinician TEXT NOT NULL, identity TEXT NOT NULL, calendar TEXT NOT NULL,
        remote_id TEXT NOT NULL, etag TEXT, start TEXT NOT NULL, end TEXT NOT NULL,
        title TEXT NOT NULL, after TEXT NOT NULL, status TEXT NOT NULL,
        pending_start TEXT, pending_end TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (clinician, identity));
    CREATE TABLE violations (
        clinician TEXT NOT NULL, fingerprint TEXT NOT NULL, rule TEXT NOT NULL,
        severity TEXT NOT NULL, date TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL,
        message TEXT NOT NULL, events TEXT NOT NULL, level TEXT, kind TEXT,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, last_notified TEXT,
        resolved_at TEXT, resolution_notified INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (clinician, fingerprint));
    CREATE TABLE outbox (
        message_id TEXT PRIMARY KEY, clinician TEXT, recipient TEXT NOT NULL,
        subject TEXT NOT NULL, text TEXT NOT NULL, html TEXT NOT NULL,
        created TEXT NOT NULL, not_before TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'pending', last_error TEXT, sent_at TEXT);
    CREATE TABLE problems (
        key TEXT PRIMARY KEY, message TEXT NOT NULL, first_seen TEXT NOT NULL,
        notified_at TEXT);
    CREATE TABLE digests (clinician TEXT PRIMARY KEY, last_sent TEXT NOT NULL);
    """,
)


class StateError(Error):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def iso(moment: datetime) -> str:
    """UTC ISO 8601: sorts as text in the same order as time."""
    return moment.astimezone(UTC).isoformat()


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class CalendarState:
    clinician: str
    calendar: str
    token: str | None
    window_start: str | None
    window_end: str | None
    vocabulary: str | None
    last_success: str | None
    last_error: str | None
    last_error_at: str | None
    failing_since: str | None
    paused: str | None
    empty_reads: int


@dataclass(frozen=True)
class OwnedBuffer:
    clinician: str
    identity: str
    calendar: str
    remote_id: str
    etag: str | None
    start: datetime
    end: datetime
    title: str
    after: str
    # active | creating | deleting (a write is under way) | user_edited | user_deleted
    status: str
    # Where an update under way moves the buffer: tells our own lost update from a user edit.
    pending: tuple[datetime, datetime] | None = None


class State:
    """One connection shared by the daemon's threads; each transaction holds the lock."""

    def __init__(self, path: Path | str, *, memory_copy: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            if memory_copy:
                self.db = sqlite3.connect(":memory:", check_same_thread=False)
                if self.path.exists():
                    with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as source:
                        source.backup(self.db)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.chmod(self.path.parent, 0o700)
                old_umask = os.umask(0o077)
                try:
                    self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                    self.db.execute("PRAGMA journal_mode=WAL")
                finally:
                    os.umask(old_umask)
                for suffix in ("", "-wal", "-shm"):
                    candidate = Path(f"{self.path}{suffix}")
                    if candidate.exists():
                        os.chmod(candidate, 0o600)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(self.path, f"the state database cannot be used: {exc}") from None
        except OSError as exc:
            raise StateError(self.path, f"cannot open the state: {exc.strerror}") from None

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StateError(self.path, f"written by a newer caldaemon (schema {version})")
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.rollback()
                raise
            self.db.commit()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.db.execute(sql, tuple(params)).fetchall()

    # -- calendars and the event cache ---------------------------------------------------

    def calendar(self, clinician: str, calendar: str) -> CalendarState | None:
        rows = self.query(
            "SELECT * FROM calendars WHERE clinician=? AND calendar=?", (clinician, calendar)
        )
        return CalendarState(**dict(rows[0])) if rows else None

    def calendars(self) -> list[CalendarState]:
        return [
            CalendarState(**dict(r))
            for r in self.query("SELECT * FROM calendars ORDER BY clinician, calendar")
        ]

    @staticmethod
    def ensure_calendar(db: sqlite3.Connection, clinician: str, calendar: str) -> None:
        db.execute(
            "INSERT OR IGNORE INTO calendars (clinician, calendar) VALUES (?, ?)",
            (clinician, calendar),
        )

    def events(self, clinician: str, start: datetime, end: datetime) -> list[Event]:
        rows = self.query(
            "SELECT * FROM events WHERE clinician=? AND start<? AND end>=?",
            (clinician, iso(end), iso(start)),
        )
        return [_event(row) for row in rows]

    @staticmethod
    def store_events(
        db: sqlite3.Connection, clinician: str, rows: Iterable[tuple[Any, ...]]
    ) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ((clinician, *row) for row in rows),
        )


def event_row(event: Event, tags: Iterable[str], title_matches: bool | None) -> tuple[Any, ...]:
    """The cached form of an event: no title, description, location or attendee."""
    return (
        event.calendar,
        event.id,
        iso(event.start),
        iso(event.end),
        int(event.all_day),
        json.dumps(sorted(tags)),
        event.color,
        int(event.cancelled),
        int(event.busy),
        int(event.declined),
        event.owner,
        event.series,
        event.etag,
        None if title_matches is None else int(title_matches),
    )


def _event(row: sqlite3.Row) -> Event:
    return Event(
        calendar=row["calendar"],
        id=row["id"],
        start=parse_iso(row["start"]),
        end=parse_iso(row["end"]),
        all_day=bool(row["all_day"]),
        categories=tuple(json.loads(row["tags"])),
        color=row["color"],
        cancelled=bool(row["cancelled"]),
        busy=bool(row["busy"]),
        declined=bool(row["declined"]),
        owner=row["owner"],
        series=row["series"],
        etag=row["etag"],
        title_matches=None if row["title_matches"] is None else bool(row["title_matches"]),
    )


def owned_buffer(row: sqlite3.Row) -> OwnedBuffer:
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
        status=row["status"],
        pending=(parse_iso(row["pending_start"]), parse_iso(row["pending_end"]))
        if row["pending_start"]
        else None,
    )
