"""The seam between the table modules and the database they run on: SQLite (the embedded
default, one file in ``state_dir``) or PostgreSQL (``daemon.state: postgresql://…``, for
several ``caldaemon run`` instances on several machines).

Every table module writes one SQL text that both accept: ``?`` and ``:name`` parameters
(turned into psycopg's ``%s`` and ``%(name)s`` by :mod:`.postgres`), ``ON CONFLICT``
upserts (SQLite ≥ 3.24 reads them as PostgreSQL does; :func:`upsert` writes them), the
column ``end`` quoted (a reserved word in PostgreSQL, not in SQLite), and rows read by
column name. The schema is the one list of migrations in :mod:`.db`, written for SQLite
and translated for PostgreSQL (:func:`caldaemon.state.postgres.translate_ddl`)."""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

Params = Sequence[Any] | Mapping[str, Any]


class Row(Protocol):
    """A row, read by column name (or position)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(ABC):
    """One connection to the state database, as the table modules use it."""

    # "sqlite" or "postgresql"
    dialect: str
    # What the database's driver raises.
    errors: tuple[type[Exception], ...]
    # What a SELECT ends with to lock the rows it takes while others skip them (issue 15:
    # instances sharing a PostgreSQL state); nothing on SQLite, whose single writer
    # holds the whole file.
    skip_locked = ""
    # What a SELECT ends with to lock the rows it reads until the transaction ends.
    for_update = ""

    @abstractmethod
    def execute(self, sql: str, params: Params = (), /) -> Cursor: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Params], /) -> None: ...

    @abstractmethod
    def begin(self, *, durable: bool = True) -> None:
        """Start a transaction that writes (taking whatever lock the database needs);
        unless ``durable``, its commit does not wait for the disk (:mod:`.db`)."""

    def lock_schema(self) -> None:
        """Within :meth:`begin`: keep other processes from migrating at the same time."""

    @property
    def broken(self) -> bool:
        """The connection was lost (a server restarted): open another."""
        return False

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def table_names(self) -> list[str]:
        """Every table of caldaemon's schema, by name."""

    def run_ddl(self, statement: str) -> None:
        """One statement of a migration, as written in :data:`caldaemon.state.schema.MIGRATIONS`."""
        self.execute(statement)


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` of every other column, from ``:name``
    parameters: what SQLite's ``INSERT OR REPLACE`` did when every column is given."""
    names = ", ".join(_quoted(c) for c in columns)
    values = ", ".join(f":{c}" for c in columns)
    rest = [c for c in columns if c not in key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{_quoted(c)}=excluded.{_quoted(c)}" for c in rest)
        if rest
        else "DO NOTHING"
    )
    return (
        f"INSERT INTO {table} ({names}) VALUES ({values}) ON CONFLICT ({', '.join(key)}) {action}"
    )


# Column names that are reserved words in PostgreSQL (SQL:2016 too), quoted wherever
# they are named.
RESERVED = frozenset({"end"})


def _quoted(column: str) -> str:
    return f'"{column}"' if column in RESERVED else column


class SqliteConnection(Connection):
    """The embedded default: one file, one connection shared by the daemon's threads."""

    dialect = "sqlite"
    errors = (sqlite3.Error,)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.row_factory = sqlite3.Row
        self._relaxed = False

    def execute(self, sql: str, params: Params = (), /) -> Cursor:
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params], /) -> None:
        self.db.executemany(sql, rows)

    def begin(self, *, durable: bool = True) -> None:
        if not durable:
            # The safety level is the connection's and may not change inside a
            # transaction: NORMAL for this one (in WAL mode its commit writes the WAL
            # without an fsync), FULL again once it ends.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._relaxed = True
        # IMMEDIATE takes the write lock now: a reader (``caldaemon status``) never turns
        # a transaction that has begun into SQLITE_BUSY halfway.
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        try:
            self.db.commit()
        finally:
            self._restore()

    def rollback(self) -> None:
        try:
            self.db.rollback()
        finally:
            self._restore()

    def _restore(self) -> None:
        if self._relaxed:
            self._relaxed = False
            self.db.execute("PRAGMA synchronous=FULL")

    def close(self) -> None:
        self.db.close()

    def table_names(self) -> list[str]:
        rows = self.db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        return [row[0] for row in rows]
