"""PostgreSQL as the state database (``daemon.state: postgresql://user@host/db``): for a
large practice or a platform, where several ``caldaemon run`` instances on several
machines share the clinicians (:mod:`.leases`).

psycopg 3 is an optional dependency (``pip install 'caldaemon[postgresql]'``), imported
only when a PostgreSQL state is opened. The password never sits in the URL (``validate``
refuses one there): it comes from ``daemon.state_password_file`` or
``daemon.state_password_env`` and is handed to libpq apart from the URL, so no message
that names the URL can show it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from caldaemon.secret import read_secret
from caldaemon.state.dialect import Connection, Cursor, Params

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql", "postgres")
# How long connecting may take before the daemon says the database cannot be reached
# (libpq's connect_timeout, in seconds).
CONNECT_TIMEOUT = 10
# The key of the advisory lock that serialises migrations between instances starting
# together (any constant; PostgreSQL advisory locks are per database).
_MIGRATION_LOCK = 0x63616C64  # "cald"


@dataclass(frozen=True)
class PostgresLocation:
    """Where the state lives when it is PostgreSQL, and where its password comes from."""

    url: str
    password_file: Path | None = None
    password_env: str | None = None

    def __str__(self) -> str:
        return shown_url(self.url)


def shown_url(url: str) -> str:
    """The URL as messages show it: without a password, query or fragment (DESIGN.md §5)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the PostgreSQL URL"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))


# A string literal, a cast, a positional or named parameter, or a percent sign.
_TOKEN = re.compile(r"'(?:[^']|'')*'|::|\?|:([A-Za-z_]\w*)|%")


@lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> str:
    """SQLite's ``?`` and ``:name`` parameters as psycopg's ``%s`` and ``%(name)s`` (a
    literal ``%`` doubled); string literals are left as they are."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("'"):
            return token.replace("%", "%%")
        if token == "::":
            return token
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return f"%({match.group(1)})s"

    return _TOKEN.sub(swap, sql)


def translate_ddl(statement: str) -> str:
    """A migration written for SQLite, for PostgreSQL: binary columns are BYTEA; text
    compares byte by byte as SQLite's does (collation "C": instants are stored as ISO
    8601 text and compared as text, which a locale's collation would order otherwise);
    the column ``end``, a reserved word there, quoted."""
    text = re.sub(r"\bBLOB\b", "BYTEA", statement)
    text = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', text)
    return re.sub(r'(?<![\w"])end(?![\w"])', '"end"', text)


class PgRow:
    """A row read by column name or position, as :class:`sqlite3.Row` is."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: int | str, /) -> Any:
        return self._values[key if isinstance(key, int) else self._index[key]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], PgRow]:
    index = {column.name: n for n, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(index, values)


class PostgresConnection(Connection):
    dialect = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    for_update = " FOR UPDATE"

    def __init__(self, conn: psycopg.Connection[PgRow]) -> None:
        import psycopg

        self.conn = conn
        self.errors = (psycopg.Error,)

    def execute(self, sql: str, params: Params = (), /) -> Cursor:
        return self.conn.execute(to_psycopg(sql), params)

    def executemany(self, sql: str, rows: Iterable[Params], /) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(to_psycopg(sql), rows)

    def begin(self, *, durable: bool = True) -> None:
        self.conn.execute("BEGIN")
        if not durable:
            # The commit returns before its WAL record reaches the disk; a later
            # synchronous commit flushes it (postgresql.org/docs/current/wal-async-commit.html).
            self.conn.execute("SET LOCAL synchronous_commit TO off")

    def lock_schema(self) -> None:
        # Instances starting together: one migrates, the others wait and find it done.
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if not self.broken:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    @property
    def broken(self) -> bool:
        return self.conn.closed or self.conn.broken

    def table_names(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        return [row[0] for row in rows]

    def run_ddl(self, statement: str) -> None:
        self.conn.execute(translate_ddl(statement))


class PostgresMissing(Exception):
    """psycopg is not installed."""


def server_errors() -> tuple[type[Exception], ...]:
    """What psycopg raises (nothing, when it is not installed)."""
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.Error,)


def connect(location: PostgresLocation, *, read_only: bool) -> PostgresConnection:
    """A connection in autocommit mode (transactions are begun explicitly, so reading
    never leaves one open); ``read_only``: the server refuses every write."""
    try:
        import psycopg
    except ImportError:
        raise PostgresMissing(
            "a PostgreSQL state needs psycopg: pip install 'caldaemon[postgresql]'"
        ) from None
    password = read_secret(
        location.password_file, location.password_env, what="the state database password"
    )
    extra: dict[str, Any] = {} if password is None else {"password": password}
    if read_only:
        extra["options"] = "-c default_transaction_read_only=on"
    conn = psycopg.connect(
        location.url,
        autocommit=True,
        row_factory=_rows,
        connect_timeout=CONNECT_TIMEOUT,
        application_name="caldaemon",
        **extra,
    )
    return PostgresConnection(conn)
