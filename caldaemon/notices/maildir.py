"""Notices into a local Maildir: the fallback when no email is configured (the quick
start's notices land here)."""

from __future__ import annotations

import hashlib
import mailbox
import os
from email import policy
from pathlib import Path

from caldaemon.errors import DeliveryError
from caldaemon.notices.compose import Message, to_mime

# maildir(5) flags: Draft, Flagged, Passed, Replied, Seen, Trashed; every subset of them,
# in the ASCII order the name carries them.
_FLAGS = "DFPRST"
_FLAG_SETS = tuple(
    "".join(flag for bit, flag in enumerate(_FLAGS) if subset >> bit & 1)
    for subset in range(2 ** len(_FLAGS))
)


class MaildirMailer:
    """Writes notices into a Maildir (the fallback when no email is configured): folder
    0700, files 0600, one file per Message-ID however often a notice is re-sent."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.box = mailbox.Maildir(self.folder, factory=None, create=True)
        for path in (self.folder, *(self.folder / sub for sub in ("tmp", "new", "cur"))):
            os.chmod(path, 0o700)

    @staticmethod
    def key(message_id: str) -> str:
        """The file name: unique per Message-ID, as Maildir requires of names."""
        return "caldaemon." + hashlib.sha256(message_id.encode()).hexdigest()[:40]

    def _delivered(self, key: str) -> bool:
        """Whether the notice is in the Maildir already (a re-send after a crash), looked
        up by name, never by listing a folder that grows with every notice: new/ holds it
        under its name until a mail program moves it to cur/, adding ``:2,`` and its
        flags, which maildir(5) keeps in ASCII order, so every name it can have is known."""
        if (self.folder / "new" / key).exists() or (self.folder / "cur" / key).exists():
            return True
        cur = self.folder / "cur"
        return any((cur / f"{key}:2,{flags}").exists() for flags in _FLAG_SETS)

    def send(self, message: Message) -> None:
        key = self.key(message.message_id)
        try:
            if self._delivered(key):
                return
            data = to_mime(message, "caldaemon@localhost").as_bytes(policy=policy.default)
            tmp = self.folder / "tmp" / f"{key}.{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            # Written in tmp/, then renamed into new/: a reader never sees half a message.
            os.rename(tmp, self.folder / "new" / key)
            dir_fd = os.open(self.folder / "new", os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write the notice to {self.folder}: {exc.strerror or exc}", permanent=False
            ) from None
