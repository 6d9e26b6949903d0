"""Connections to a PostgreSQL state for one instance's threads (issue 15).

On SQLite the daemon's threads share one connection behind a lock: a statement is a call
into the library. On PostgreSQL each statement is a round trip to the server, and with
one connection the round trips of every cycle queued behind each other: 3 instances of
10,000 clinicians lagged 13.7 s behind the poll in a quiet round where one instance on
SQLite lagged 0.17 s. So each thread takes a connection of its own for a transaction or a
read, up to :data:`SIZE` at once, and gives it back after; a thread that is already
inside one (a read within a transaction) keeps using it, so it sees its own writes and
never waits for a second connection while holding a first."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from caldaemon.errors import Error
from caldaemon.state.dialect import Connection

# At most this many connections per instance: enough for the worker threads' transactions
# to overlap their round trips, few enough that many instances stay well within the
# server's max_connections (100 by default: 3 instances take 24).
SIZE = 8
# How long a thread waits for a free connection before the cycle fails (every wait has a
# deadline); transactions are milliseconds long, so this means the server is stuck.
WAIT = 60.0


class PoolExhausted(Error):
    """No connection came free within :data:`WAIT` (the server is stuck)."""


T = TypeVar("T")


class Pool(Generic[T]):
    """Connections made by ``connect`` on demand, each with what ``wrap`` makes of it (the
    typed tables), lent to one thread at a time."""

    def __init__(
        self,
        first: Connection,
        connect: Callable[[], Connection],
        wrap: Callable[[Connection], T],
        size: int = SIZE,
        wait: float = WAIT,
    ) -> None:
        self._connect = connect
        self._wrap = wrap
        self._size = size
        self._wait = wait
        self._idle: list[tuple[Connection, T]] = [(first, wrap(first))]
        self._made = 1
        self._free = threading.Condition()
        self._local = threading.local()

    def current(self) -> Connection | None:
        """The connection this thread holds, if it is inside :meth:`lend`."""
        lent: tuple[Connection, T] | None = getattr(self._local, "lent", None)
        return lent[0] if lent is not None else None

    @contextmanager
    def lend(self) -> Iterator[tuple[Connection, T]]:
        """A connection (and its tables) for this thread until the block ends."""
        held: tuple[Connection, T] | None = getattr(self._local, "lent", None)
        if held is not None:
            yield held
            return
        held = self._take()
        self._local.lent = held
        try:
            yield held
        finally:
            self._local.lent = None
            self._give_back(held)

    def _take(self) -> tuple[Connection, T]:
        with self._free:
            if not self._free.wait_for(lambda: self._idle or self._made < self._size, self._wait):
                raise PoolExhausted(f"no free connection to the state in {self._wait:.0f} s")
            if self._idle:
                connection, tables = self._idle.pop()
                if not connection.broken:
                    return connection, tables
                self._made -= 1
                connection.close()
            self._made += 1
        try:
            connection = self._connect()
        except BaseException:
            with self._free:
                self._made -= 1
                self._free.notify()
            raise
        return connection, self._wrap(connection)

    def _give_back(self, held: tuple[Connection, T]) -> None:
        with self._free:
            self._idle.append(held)
            self._free.notify()

    def rewrap(self) -> None:
        """Make the idle connections' tables again (the holder changed)."""
        with self._free:
            self._idle = [(c, self._wrap(c)) for c, _ in self._idle]

    def close(self) -> None:
        with self._free:
            for connection, _ in self._idle:
                connection.close()
            self._idle = []
