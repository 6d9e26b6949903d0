"""One process at a time works on a state folder (DESIGN.md §5): ``caldaemon run`` holds an
exclusive lock on ``state_dir/lock`` for as long as it runs; a second one exits naming the
holder. Read-only commands (``check``, ``events``, ``status``) never take it.

``flock(2)`` locks belong to the open file, so a crashed holder releases the lock with
its last descriptor: a stale lock file never blocks a restart."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from caldaemon.errors import Error


class StateLocked(Error):
    """Another process holds the state folder."""


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateLocked(
                f"{self.path.parent} is in use by another caldaemon (pid {holder}); "
                "stop it first, or give this one another daemon.state_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None
