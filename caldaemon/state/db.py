"""The state database: one SQLite file in ``state_dir`` (DESIGN.md §6) or a PostgreSQL
database, opened and migrated (:mod:`.schema`), its transactions, and the typed tables
over it.

The folder is 0700 and the files 0600; WAL keeps readers (``caldaemon status``) from
blocking the daemon. Every change of a cycle that must not be half done (a listing and its
token; a violation and its notice) goes in one transaction::

    with state.transaction() as tables:
        tables.events.replace(...)
        tables.calendars.record_success(...)

Durability: a transaction waits for the disk (an fsync, 2–4 ms here) only when it is
``durable``, the default. A cycle's own bookkeeping (listings and tokens, verdicts and
the notices they queue, pruning) is committed with ``durable=False``: an operating
system crash or a power cut may lose the last of those (a crash of caldaemon alone loses
nothing: the data is in the operating system's cache), never half of one, and the state
is then as it was a moment earlier, which the next cycle reads again from the calendars.
Whatever precedes or records an effect outside the state (the intent of a calendar write
and its result, a notice claimed or delivered, a lease) stays durable, and committing it
makes every earlier transaction durable too: SQLite's WAL is one file appended in order,
PostgreSQL's WAL likewise (SQLite: "WAL mode is always consistent with
synchronous=NORMAL", sqlite.org/pragma.html#pragma_synchronous; PostgreSQL:
``synchronous_commit = off`` "does not create any risk of database inconsistency",
postgresql.org/docs/current/wal-async-commit.html). Issue 15: at 10,000 calendars one
fsync per unchanged poll held the shared connection's lock for half of every second.

The modules beside this one hold every SQL statement caldaemon runs, one module per table
family; nothing outside this package writes SQL.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from caldaemon.errors import Error
from caldaemon.state.acks import Acks, Marks
from caldaemon.state.buffers import Buffers
from caldaemon.state.calendars import Calendars
from caldaemon.state.dialect import Connection, SqliteConnection, upsert
from caldaemon.state.events import Events
from caldaemon.state.leases import Leases
from caldaemon.state.outbox import Digests, Outbox
from caldaemon.state.pool import Pool
from caldaemon.state.postgres import PostgresLocation, PostgresMissing, connect, server_errors
from caldaemon.state.problems import Problems
from caldaemon.state.schema import MIGRATIONS, SCHEMA_VERSION
from caldaemon.state.violations import Violations


class StateError(Error):
    def __init__(self, path: Path | PostgresLocation, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


class NewerStateError(StateError):
    """A state whose schema is newer than this caldaemon's: never read or changed (a
    downgrade would misread it); ``doctor`` tells to run the caldaemon that wrote it."""

    def __init__(self, path: Path | PostgresLocation, version: int) -> None:
        super().__init__(path, f"written by a newer caldaemon (schema {version})")


# Delivered notices are kept this long (``status`` counts them), without their text.
KEEP_DELIVERED = timedelta(days=30)
# Buffers that ended this long ago are never looked at again (nothing before now is
# changed): their records go.
KEEP_PAST_BUFFERS = timedelta(days=1)


class Tables:
    """The typed tables over one connection (see the module of each)."""

    def __init__(self, db: Connection, holder: str | None = None) -> None:
        self.calendars = Calendars(db)
        self.events = Events(db)
        self.buffers = Buffers(db)
        self.violations = Violations(db)
        self.outbox = Outbox(db, holder)
        self.digests = Digests(db)
        self.problems = Problems(db)
        self.marks = Marks(db)
        self.acks = Acks(db)
        self.leases = Leases(db)

    def prune(
        self,
        clinician: str,
        now: datetime,
        repeat_after: timedelta,
        history_before: datetime | None = None,
    ) -> None:
        """Keep the state growing with the horizon and the history kept, not with time
        (DESIGN.md §9): resolved violations once they could no longer be repeated,
        delivered notices after a month, buffers in the past, events that ended before
        ``history_before`` (``daemon.keep_history`` ago, or the rules' window if earlier)."""
        self.violations.prune_resolved(clinician, now - repeat_after)
        self.outbox.prune_delivered(now - KEEP_DELIVERED)
        self.buffers.prune_ended(clinician, now - KEEP_PAST_BUFFERS)
        if history_before is not None:
            self.events.prune_ended(clinician, history_before)


# Where the state lives: a SQLite file, or a PostgreSQL database.
Location = Path | str | PostgresLocation


class State:
    """One connection shared by the daemon's threads; each transaction holds the lock.

    ``location``: the SQLite file, or a :class:`PostgresLocation`.
    ``memory_copy``: work on an in-memory copy (a dry run keeps nothing);
    ``read_only``: open the state for reading only (``caldaemon status`` beside a running
    daemon), without creating or migrating it.
    """

    def __init__(
        self, location: Location, *, memory_copy: bool = False, read_only: bool = False
    ) -> None:
        self.location = location if isinstance(location, PostgresLocation) else Path(location)
        self._lock = threading.RLock()
        # PostgreSQL, written to: a connection per thread at a time (:mod:`.pool`).
        self._pool: Pool[Tables] | None = None
        self.holder: str | None = None
        # The schema the database held when opened (a read-only or dry-run open works on
        # an upgraded copy: ``schema_version()`` then answers for the copy).
        self.found_version: int | None = None
        if isinstance(self.location, PostgresLocation):
            self._open_postgres(self.location, memory_copy=memory_copy, read_only=read_only)
        else:
            self._open_sqlite(self.location, memory_copy=memory_copy, read_only=read_only)
        self._tables = Tables(self.db)

    @property
    def db(self) -> Connection:
        """The connection: on PostgreSQL, the one this thread holds inside a transaction
        or read (else the first one made)."""
        if self._pool is not None:
            lent = self._pool.current()
            if lent is not None:
                return lent
        return self._primary

    @db.setter
    def db(self, connection: Connection) -> None:
        self._primary = connection

    def share_as(self, holder: str) -> None:
        """This instance shares the state with others (:mod:`caldaemon.service.sharing`):
        taking the due notices claims them for ``holder``, so each goes out once."""
        self.holder = holder
        self._tables = Tables(self.db, holder)
        if self._pool is not None:
            self._pool.rewrap()

    @property
    def path(self) -> Path:
        """The SQLite file (a PostgreSQL state has none)."""
        if isinstance(self.location, PostgresLocation):
            raise StateError(self.location, "a PostgreSQL state is not a file")
        return self.location

    def _open_sqlite(self, path: Path, *, memory_copy: bool, read_only: bool) -> None:
        try:
            if path.exists() and path.stat().st_size == 0:
                # Never silently start afresh over a file that is there: an empty one is a
                # broken copy or a full disk, and starting afresh forgets which buffers
                # are caldaemon's.
                raise StateError(path, "the state file is empty; move it away to start afresh")
            if read_only:
                self.db = SqliteConnection(
                    sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
                )
            elif memory_copy:
                self.db = self._sqlite_copy(path)
            else:
                self.db = SqliteConnection(self._open_private(path))
            version = self.found_version = self.schema_version()
            if not read_only:
                self.db.execute("PRAGMA synchronous=FULL")
                self._migrate()
            elif version > SCHEMA_VERSION:
                raise NewerStateError(path, version)
            elif version < SCHEMA_VERSION:
                # An older file that the daemon has not upgraded yet: read an upgraded
                # copy in memory, never the file in place.
                self.db.close()
                self.db = self._sqlite_copy(path)
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(path, f"the state database cannot be used: {exc}") from None
        except OSError as exc:
            raise StateError(path, f"cannot open the state: {exc.strerror}") from None

    @staticmethod
    def _sqlite_copy(path: Path) -> SqliteConnection:
        memory = sqlite3.connect(":memory:", check_same_thread=False)
        if path.exists():
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as source:
                source.backup(memory)
        return SqliteConnection(memory)

    def _open_postgres(
        self, location: PostgresLocation, *, memory_copy: bool, read_only: bool
    ) -> None:
        try:
            server = connect(location, read_only=read_only or memory_copy)
        except PostgresMissing as exc:
            raise StateError(location, str(exc)) from None
        except OSError as exc:
            raise StateError(location, f"cannot open the state: {exc.strerror}") from None
        except server_errors() as exc:
            raise StateError(location, f"cannot connect: {_first_line(exc)}") from None
        self.db = server
        with self._errors():
            version = self.found_version = self.schema_version()
            if version > SCHEMA_VERSION:
                raise NewerStateError(location, version)
            if memory_copy or (read_only and version < SCHEMA_VERSION):
                # A dry run, or a database the daemon has not upgraded yet: an in-memory
                # SQLite copy, the server's rows in the schema of their version, upgraded.
                self.db = SqliteConnection(sqlite3.connect(":memory:", check_same_thread=False))
                self._migrate(version)
                self.db.begin()
                copy_rows(server, self.db)
                self.db.commit()
                server.close()
                self._migrate()
            elif not read_only:
                self._migrate()
                self._pool = Pool(
                    server,
                    lambda: connect(location, read_only=False),
                    lambda db: Tables(db, self.holder),
                )

    def _reconnect_if_broken(self) -> None:
        """A PostgreSQL server that restarted or a network that dropped the connection:
        the next read opens a new one. Only a read-only state gets here: a written one
        takes its connections from its pool, which replaces a broken one itself."""
        if self.db.broken and isinstance(self.location, PostgresLocation):
            self._open_postgres(self.location, memory_copy=False, read_only=True)
            self._tables = Tables(self.db, self.holder)

    @staticmethod
    def _open_private(path: Path) -> sqlite3.Connection:
        """The file and its folder readable by this user only (DESIGN.md §7)."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        old_umask = os.umask(0o077)
        try:
            db = sqlite3.connect(path, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
        finally:
            os.umask(old_umask)
        for suffix in ("", "-wal", "-shm"):
            candidate = Path(f"{path}{suffix}")
            if candidate.exists():
                os.chmod(candidate, 0o600)
        return db

    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Upgrade the schema to ``target``, in one transaction, on either database."""
        with self._lock:
            self.db.begin()
            try:
                self.db.lock_schema()
                self.db.run_ddl(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"
                )
                version = self.schema_version()
                if version > SCHEMA_VERSION:
                    raise NewerStateError(self.location, version)
                for number in range(version, target):
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            self.db.run_ddl(statement)
                if target > version:
                    self.db.execute(
                        upsert("meta", ("key", "value"), ("key",)),
                        {"key": "schema_version", "value": str(target)},
                    )
            except BaseException:
                self.db.rollback()
                raise
            self.db.commit()

    def schema_version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Tables]:
        """The tables, in one transaction that commits at the end or rolls back on error;
        ``durable=False`` for what the next cycle derives again (see the module's
        docstring). A database that cannot be written (a full disk, a read-only folder)
        is a :class:`StateError` naming the file, never a traceback."""
        with self._errors(), self._session() as (db, tables):
            db.begin(durable=durable)
            try:
                yield tables
            except BaseException:
                db.rollback()
                raise
            db.commit()

    @contextmanager
    def read(self) -> Iterator[Tables]:
        """The tables for reading: on SQLite under the lock (one connection shared by the
        threads), on PostgreSQL on a connection of this thread's own."""
        with self._errors(), self._session() as (_, tables):
            yield tables

    @contextmanager
    def _session(self) -> Iterator[tuple[Connection, Tables]]:
        if self._pool is None:
            with self._lock:
                self._reconnect_if_broken()
                yield self.db, self._tables
            return
        with self._pool.lend() as (db, tables):
            yield db, tables

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self.db.errors as exc:
            text = _first_line(exc)
            if "full" in text:
                reason = "the disk is full"
            elif "readonly" in text or "read-only" in text:
                reason = "the state cannot be written (read-only file or folder)"
            else:
                reason = f"the state database failed: {text}"
            raise StateError(self.location, reason) from None

    def dump(self) -> dict[str, list[tuple[object, ...]]]:
        """Every row of every table, for audits (what does the state hold about events?)."""
        with self._session() as (db, _):
            return {
                name: [tuple(row) for row in db.execute(f'SELECT * FROM "{name}"')]
                for name in db.table_names()
            }

    def integrity(self) -> str:
        """SQLite's own check of the file: ``ok`` when it is sound."""
        with self._session() as (db, _):
            return str(db.execute("PRAGMA integrity_check").fetchone()[0])

    def journal_mode(self) -> str:
        with self._session() as (db, _):
            return str(db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
            self.db.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def copy_rows(source: Connection, target: Connection) -> None:
    """Every row of every table of ``source`` into the same tables of ``target``."""
    for name in source.table_names():
        if name == "meta":
            continue
        rows = source.execute(f'SELECT * FROM "{name}"').fetchall()
        if rows:
            columns = rows[0].keys()
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            target.executemany(
                f'INSERT INTO "{name}" ({names}) VALUES ({marks})', (tuple(r) for r in rows)
            )
