"""Writing a config file (``caldaemon init``): private (or, for the system service, readable
by its own user and holding no secret), whole or not at all, and never over a file that
nobody agreed to replace."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from caldaemon.errors import Error

CONFIG_FILE_MODE = 0o600
# DESIGN.md §7; the XDG Base Directory spec asks the same of the folders it creates.
CONFIG_DIR_MODE = 0o700
# The system unit runs as an ephemeral user (DynamicUser=yes, systemd.exec(5)) that must
# read the config; its secrets stay root's (0600) and reach it by LoadCredential=.
SYSTEM_FILE_MODE = 0o644
SYSTEM_DIR_MODE = 0o755
# Hard links are refused by some file systems (FAT, some network shares); there the file
# is renamed into place after a last look that nothing is there.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}


def make_folder(folder: Path, mode: int = CONFIG_DIR_MODE) -> None:
    """The folder and any missing parents, each created with ``mode``; a folder that
    exists is left as it is."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=mode)
        path.chmod(mode)  # mkdir's mode is narrowed by the umask, never widened


def write_config(target: Path, text: str, *, replace: bool, system: bool = False) -> None:
    """Write ``text`` to a temporary file beside ``target`` (0600; 0644 for the system
    service, whose folder is then made or opened to 0755), make it durable, then put it in
    place: renamed over ``target`` when replacing was agreed, else linked, which fails
    when a file appeared there meanwhile instead of writing over it."""
    make_folder(target.parent, SYSTEM_DIR_MODE if system else CONFIG_DIR_MODE)
    if system and target.parent.stat().st_mode & 0o055 != 0o055:
        # An earlier `init` made it 0700: the service's user could not reach the config.
        target.parent.chmod(target.parent.stat().st_mode | 0o055)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, SYSTEM_FILE_MODE if system else CONFIG_FILE_MODE)
        if replace:
            os.replace(temporary, target)
        else:
            _put_new(Path(temporary), target)
    except OSError as exc:
        raise Error(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    with contextlib.suppress(OSError):
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself durable (fsync(2) on the folder)
        finally:
            os.close(directory)


def _put_new(temporary: Path, target: Path) -> None:
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise Error(f"{target} appeared meanwhile; it is left unchanged") from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if target.exists() or target.is_symlink():
            raise Error(f"{target} appeared meanwhile; it is left unchanged") from None
        os.rename(temporary, target)
