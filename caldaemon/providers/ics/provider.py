"""``provider: ics``: a local .ics file, or an http(s) feed such as practice-management
systems publish.

A file is read-write when it is the clinician's ``buffers_to`` calendar: caldaemon then
adds and removes only its own VEVENTs, editing the file as text so that every other
component keeps its exact bytes, and replaces it atomically. A feed is read-only and is
fetched with If-None-Match / If-Modified-Since (RFC 9110 §13.1), so an unchanged feed
costs one request and no parsing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from caldaemon.errors import CalendarError, RemoteGone, TransientError, WriteConflict
from caldaemon.model import Create, Remote, Update, Window, Write, WriteResult
from caldaemon.providers.base import BatchProvider, Listing, ProviderContext, token_fields
from caldaemon.providers.ics.document import Document
from caldaemon.providers.ics.http import fetch_feed, redact_url
from caldaemon.providers.ics.mapping import buffer_component, buffer_uid
from caldaemon.providers.ics.parse import parse
from caldaemon.providers.ics.reader import Reader
from caldaemon.providers.ics.settings import IcsCalendar


class IcsProvider(BatchProvider):
    batch = True
    batch_size = 1000
    config: IcsCalendar

    def __init__(self, config: IcsCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        # The one provider whose capability depends on its config: a feed URL is
        # read-only, a file is not.
        self.read_only = config.url is not None

    def describe(self) -> str:
        if self.config.url:
            return redact_url(self.config.url)
        return str(self.config.path)

    # -- reading -----------------------------------------------------------------------

    def changes(self, window: Window, token: str | None) -> Listing:
        """A token records what was read (file stat or HTTP validators) and the window
        expanded. Unchanged content and a window inside the old one: nothing changed.
        A moved window needs the file expanded again (recurring events reach into it)."""
        known = _read_token(token)
        covered = known is not None and known[1].covers(window)
        data, version = self._fetch(known[0] if known is not None and covered else None)
        if data is None and known is not None:
            return Listing(events=(), removed=(), token=_token(version, known[1]), full=False)
        reader = Reader(self.id, self.describe(), self.context.tz, self.context.self_addresses)
        events = reader.events(parse(data or b"", self.id, self.describe()), window)
        return Listing(
            events=tuple(events),
            removed=(),
            token=_token(version, window),
            full=True,
            warnings=tuple(reader.warnings),
        )

    def _fetch(self, version: str | None) -> tuple[bytes | None, str]:
        """The calendar's bytes, or None when ``version`` says it has not changed."""
        if self.config.url:
            return fetch_feed(
                str(self.config.url),
                version,
                calendar=self.id,
                timeout=self.config.timeout.total_seconds(),
            )
        path = self._path()
        try:
            stat = path.stat()
        except FileNotFoundError:
            if self.context.buffers_to == self.id:
                return b"", "absent"  # caldaemon creates it with the first buffer
            raise CalendarError(self.id, str(path), "file not found") from None
        except OSError as exc:
            raise CalendarError(self.id, str(path), f"cannot read: {exc.strerror}") from None
        # ctime changes on every write and cannot be set back (unlike mtime); with size
        # and inode it tells a changed file without reading it.
        current = f"{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_size}:{stat.st_ino}"
        if current == version:
            return None, current
        try:
            return path.read_bytes(), current
        except OSError as exc:
            raise CalendarError(self.id, str(path), f"cannot read: {exc.strerror}") from None

    def _path(self) -> Path:
        if self.config.path is None:
            raise CalendarError(self.id, self.describe(), "no path configured")
        return Path(self.config.path)

    # -- writing (local files only) ----------------------------------------------------

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """All writes of a cycle in one read-modify-replace of the file."""
        if self.read_only:
            raise CalendarError(self.id, self.describe(), "a feed URL cannot be written to")
        path = self._path()
        try:
            original = path.read_bytes() if path.exists() else b""
        except OSError as exc:
            raise CalendarError(self.id, str(path), f"cannot read: {exc.strerror}") from None
        document = Document(original)
        stamp = datetime.fromtimestamp(self.context.clock(), UTC)
        results = [self._one(document, write, stamp) for write in writes]
        if document.changed:
            self._replace(path, original, document.render())
        return results

    def _one(self, document: Document, write: Write, stamp: datetime) -> WriteResult:
        if isinstance(write, Create):
            uid = buffer_uid(write.identity)
            index = document.find(uid)
            if index is None:
                if not document.can_add:
                    return WriteResult(
                        write,
                        error=CalendarError(
                            self.id,
                            self.describe(),
                            "the file has no END:VCALENDAR; caldaemon adds nothing to it",
                        ),
                    )
                block = buffer_component(write.buffer, write.identity, stamp)
                return WriteResult(write, remote=Remote(uid, document.add(block)))
            if not document.owned(index):
                return WriteResult(write, error=WriteConflict(self.id, uid))
            # A retried create: the event is there already (idempotent, DESIGN.md §5).
            return WriteResult(write, remote=Remote(uid, document.etag(index)))
        index = document.find(write.remote.id)
        if index is None:
            return WriteResult(write, error=RemoteGone(self.id, write.remote.id))
        # Only our own events, and only as we last saw them (the etag is If-Match).
        if not document.owned(index) or document.etag(index) != write.remote.etag:
            return WriteResult(write, error=WriteConflict(self.id, write.remote.id))
        if isinstance(write, Update):
            block = buffer_component(write.buffer, write.identity, stamp)
            etag = document.replace(index, block)
            return WriteResult(write, remote=Remote(write.remote.id, etag))
        document.remove(index)
        return WriteResult(write)

    def _replace(self, path: Path, original: bytes, data: bytes) -> None:
        """Write beside the file and rename over it: a reader never sees half a file.
        If the file changed since we read it (the user's app saved it), give up this
        cycle rather than overwrite their change."""
        try:
            current = path.read_bytes() if path.exists() else b""
            if current != original:
                raise TransientError(
                    self.id,
                    str(path),
                    "the file changed while caldaemon was writing; trying again next cycle",
                )
            mode = path.stat().st_mode & 0o7777 if path.exists() else 0o600
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        except OSError as exc:
            raise CalendarError(self.id, str(path), f"cannot write: {exc.strerror}") from None
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException as exc:
            if os.path.exists(temporary):
                os.unlink(temporary)
            if isinstance(exc, OSError):
                raise CalendarError(self.id, str(path), f"cannot write: {exc.strerror}") from None
            raise


def _token(version: str, window: Window) -> str:
    return json.dumps(
        {"version": version, "window": [window.start.isoformat(), window.end.isoformat()]}
    )


def _read_token(token: str | None) -> tuple[str, Window] | None:
    """(version, window); None for no token or one we cannot read (from an older
    caldaemon): that only costs a full listing."""
    data = token_fields(token)
    try:
        start, end = (datetime.fromisoformat(t) for t in data["window"])
        return str(data["version"]), Window(start, end)
    except (KeyError, TypeError, ValueError):
        return None
