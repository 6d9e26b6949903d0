"""A local calendar file that caldaemon shares with the user's calendar app (DESIGN.md §5
"Local files"): read as a snapshot, replaced atomically, and only when it still holds
what was read. The user's app can save at any moment; caldaemon must never write over
what it saved."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from caldaemon.errors import CalendarError, TransientError

# mkstemp fills the middle with 8 characters of this alphabet (tempfile's
# _RandomNameSequence); the pattern matches only names that caldaemon itself makes.
_RANDOM = r"[a-z0-9_]{8}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The file's bytes and the identity of what was read; ``stat`` is None for a file
    that did not exist."""

    data: bytes
    stat: tuple[int, int, int, int, int] | None = None
    mode: int = 0o600


def temp_prefix(name: str) -> str:
    return f".{name}.caldaemon-"


def is_our_temp(file_name: str, name: str) -> bool:
    """Whether ``file_name`` is a temporary file caldaemon made when writing ``name``."""
    return re.fullmatch(re.escape(temp_prefix(name)) + _RANDOM + r"\.tmp", file_name) is not None


class LocalFile:
    """One calendar file. Writes go to its target when it is a symlink, so the link stays
    a link (``os.replace`` on the link's path would replace the link itself)."""

    def __init__(self, path: Path, calendar: str) -> None:
        self.path = path
        self.calendar = calendar
        self._cleaned: set[Path] = set()

    def read(self) -> Snapshot:
        try:
            with open(self.path, "rb") as handle:
                # The stat of the very file that is read: an app that renames its save
                # over the path afterwards gives another inode at the re-check.
                stat = os.fstat(handle.fileno())
                data = handle.read()
        except FileNotFoundError:
            return Snapshot(b"")
        except OSError as exc:
            raise CalendarError(self.calendar, str(self.path), _cannot("read", exc)) from None
        key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        return Snapshot(data, key, stat.st_mode & 0o7777)

    def replace(self, seen: Snapshot, data: bytes) -> None:
        """Write ``data`` beside the file, make it durable, and rename it over the file
        if the file still is ``seen``. A file changed in between (the user's app saved)
        raises TransientError and is left as it is: the write is tried again next cycle,
        from what the file then holds.

        The re-check comes after the fsync, which can take tens of milliseconds on a busy
        disk; between the re-check and the rename there is no I/O but one stat and read of
        the file. (Closing that last gap would take a lock that calendar apps do not take.)
        """
        target = Path(os.path.realpath(self.path))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._clean_once(target)
            handle, temporary = tempfile.mkstemp(
                prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent
            )
        except OSError as exc:
            raise CalendarError(self.calendar, str(self.path), _cannot("write", exc)) from None
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fchmod(out.fileno(), seen.mode)
                os.fsync(out.fileno())
            if self.read() != seen:
                raise TransientError(
                    self.calendar,
                    str(self.path),
                    "the file changed while caldaemon was writing; trying again next cycle",
                )
            os.replace(temporary, target)
        except BaseException as exc:
            _remove(temporary)
            if isinstance(exc, OSError):
                raise CalendarError(self.calendar, str(self.path), _cannot("write", exc)) from None
            raise
        _sync_folder(target.parent)

    def _clean_once(self, target: Path) -> None:
        """Remove temporary files a crashed caldaemon left beside ``target``, the first
        time this file is written. Only names caldaemon makes, and only regular files."""
        if target in self._cleaned:
            return
        self._cleaned.add(target)
        try:
            with os.scandir(target.parent) as entries:
                stale = [
                    e.path
                    for e in entries
                    if is_our_temp(e.name, target.name) and e.is_file(follow_symlinks=False)
                ]
            for path in stale:
                _remove(path)
        except OSError:
            pass  # a leftover costs some disk space; it never stops a write


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX: a rename is recorded in the folder). Best effort:
    some file systems refuse to open or sync a folder; the file itself is synced."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _cannot(what: str, exc: OSError) -> str:
    return f"cannot {what}: {exc.strerror or type(exc).__name__}"
