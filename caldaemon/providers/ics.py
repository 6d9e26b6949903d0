"""``provider: ics``: a local .ics file, or an http(s) feed such as practice-management
systems publish.

A file is read-write when it is the clinician's ``buffers_to`` calendar: caldaemon then
adds and removes only its own VEVENTs, editing the file as text so that every other
component keeps its exact bytes, and replaces it atomically. A feed is read-only and is
fetched with If-None-Match / If-Modified-Since (RFC 9110 §13.1), so an unchanged feed
costs one request and no parsing.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import ical
from ..errors import CalendarError, RemoteGone, TransientError, WriteConflict
from .base import (
    OWNER_PROPERTY,
    BatchProvider,
    Create,
    Listing,
    ProviderContext,
    Remote,
    Update,
    Window,
    Write,
    WriteResult,
    token_fields,
)

if TYPE_CHECKING:
    from ..config_schema import IcsCalendar

_USER_AGENT = "caldaemon (+https://github.com/caldaemon/caldaemon)"
# A feed bigger than this is not a clinician's calendar (a wrong URL, a hostile server).
MAX_FEED_BYTES = 64 * 1024 * 1024


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
            return _redact_url(self.config.url)
        return str(self.config.path)

    # -- reading -----------------------------------------------------------------------

    def list(self, window: Window, token: str | None) -> Listing:
        """A token records what was read (file stat or HTTP validators) and the window
        expanded. Unchanged content and a window inside the old one: nothing changed.
        A moved window needs the file expanded again (recurring events reach into it)."""
        known = _read_token(token)
        covered = known is not None and known[1].covers(window)
        data, version = self._fetch(known[0] if known is not None and covered else None)
        if data is None and known is not None:
            return Listing(events=(), removed=(), token=_token(version, known[1]), full=False)
        reader = ical.Reader(self.id, self.describe(), self.context.tz,
                             self.context.self_addresses)
        events = reader.events(ical.parse(data or b"", self.id, self.describe()), window)
        return Listing(events=tuple(events), removed=(), token=_token(version, window),
                       full=True, warnings=tuple(reader.warnings))

    def _fetch(self, version: str | None) -> tuple[bytes | None, str]:
        """The calendar's bytes, or None when ``version`` says it has not changed."""
        if self.config.url:
            return self._fetch_url(version)
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

    def _fetch_url(self, version: str | None) -> tuple[bytes | None, str]:
        url = re.sub(r"^webcal(s?)://", lambda m: "https://" if m.group(1) else "http://",
                     str(self.config.url))
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        validators = token_fields(version)
        if validators.get("etag"):
            request.add_header("If-None-Match", validators["etag"])
        if validators.get("modified"):
            request.add_header("If-Modified-Since", validators["modified"])
        where = self.describe()
        try:
            timeout = self.config.timeout.total_seconds()
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                body = reply.read(MAX_FEED_BYTES + 1)
                headers = reply.headers
        except urllib.error.HTTPError as exc:
            if exc.code == 304 and version:
                return None, version
            message = f"the server answered {exc.code} {exc.reason}"
            if exc.code in (408, 425, 429) or exc.code >= 500:
                raise TransientError(self.id, where, message) from None
            raise CalendarError(self.id, where, message) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise TransientError(self.id, where, f"cannot fetch: {reason}") from None
        if len(body) > MAX_FEED_BYTES:
            raise CalendarError(self.id, where, f"the feed is larger than "
                                f"{MAX_FEED_BYTES // 2**20} MB; is the URL right?")
        etag, modified = headers.get("ETag"), headers.get("Last-Modified")
        if not (etag or modified):
            # No validators: the server cannot answer 304, so compare the content.
            digest = hashlib.sha256(body).hexdigest()
            if version and validators.get("sha256") == digest:
                return None, version
            return body, json.dumps({"sha256": digest})
        return body, json.dumps({"etag": etag, "modified": modified})

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
        document = _Document(original)
        stamp = datetime.fromtimestamp(self.context.clock(), UTC)
        results = [self._one(document, write, stamp) for write in writes]
        if document.changed:
            self._replace(path, original, document.render())
        return results

    def _one(self, document: _Document, write: Write, stamp: datetime) -> WriteResult:
        if isinstance(write, Create):
            uid = ical.buffer_uid(write.identity)
            index = document.find(uid)
            if index is None:
                if not document.can_add:
                    return WriteResult(write, error=CalendarError(
                        self.id, self.describe(), "the file has no END:VCALENDAR; "
                        "caldaemon adds nothing to it"))
                block = ical.buffer_component(write.buffer, write.identity, stamp)
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
            block = ical.buffer_component(write.buffer, write.identity, stamp)
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
                raise TransientError(self.id, str(path), "the file changed while caldaemon "
                                     "was writing; trying again next cycle")
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
    return json.dumps({"version": version, "window": [window.start.isoformat(),
                                                      window.end.isoformat()]})


def _read_token(token: str | None) -> tuple[str, Window] | None:
    """(version, window); None for no token or one we cannot read (from an older
    caldaemon): that only costs a full listing."""
    data = token_fields(token)
    try:
        start, end = (datetime.fromisoformat(t) for t in data["window"])
        return str(data["version"]), Window(start, end)
    except (KeyError, TypeError, ValueError):
        return None



def _redact_url(url: str) -> str:
    """Feed URLs often carry a secret token in their path or query: show only the host."""
    match = re.match(r"^([a-z]+://)(?:[^@/]*@)?([^/?#]+)", url)
    return f"{match.group(1)}{match.group(2)}/…" if match else "(feed URL)"


class _Document:
    """An .ics file as a list of pieces: top-level VEVENT blocks (located by line, matched
    on unfolded text, RFC 5545 §3.1) and the raw text between them, kept byte for byte."""

    def __init__(self, data: bytes) -> None:
        text = data.decode("utf-8", errors="surrogateescape")
        self.newline = "\r\n" if "\r\n" in text or not text.strip() else "\n"
        if not text.strip():
            text = self.newline.join(["BEGIN:VCALENDAR", "VERSION:2.0",
                                      f"PRODID:{ical.PRODID}", "END:VCALENDAR", ""])
        self.pieces: list[str | None] = []
        self.by_uid: dict[str, int] = {}
        self.changed = False
        depth, block, raw = 0, [], []
        for line in text.splitlines(keepends=True):
            # A continuation line (RFC 5545 §3.1: starts with a space or tab) is part of
            # a value, even when it reads "BEGIN:…".
            word = "" if line[:1] in (" ", "\t") else line.strip().upper()
            if word.startswith("BEGIN:"):
                depth += 1
            if block or (word == "BEGIN:VEVENT" and depth == 2):
                block.append(line)
            else:
                raw.append(line)
            if word.startswith("END:"):
                if word == "END:VEVENT" and depth == 2 and block:
                    self.pieces.append("".join(raw))
                    raw = []
                    self._append_block("".join(block))
                    block = []
                depth -= 1
        self.pieces.append("".join(raw + block))
        self.end_at = (self.pieces[-1] or "").upper().rfind("END:VCALENDAR")

    @property
    def can_add(self) -> bool:
        return self.end_at >= 0

    def _append_block(self, text: str) -> None:
        uid = _properties(text).get("UID")
        if uid is not None:
            self.by_uid.setdefault(uid, len(self.pieces))
        self.pieces.append(text)

    def find(self, uid: str) -> int | None:
        index = self.by_uid.get(uid)
        return index if index is not None and self.pieces[index] is not None else None

    def owned(self, index: int) -> bool:
        return OWNER_PROPERTY in _properties(self.pieces[index] or "")

    def etag(self, index: int) -> str | None:
        """None when the block no longer parses (the user broke it): never ours to change."""
        try:
            return ical.buffer_etag(ical.icalendar.Event.from_ical(self.pieces[index] or ""))
        except Exception:
            return None

    def _serialize(self, component: ical.icalendar.Event) -> tuple[str, str]:
        text = component.to_ical().decode("utf-8")
        lines = "".join(line + self.newline for line in text.splitlines())
        return lines, ical.buffer_etag(ical.icalendar.Event.from_ical(text))

    def add(self, component: ical.icalendar.Event) -> str:
        """Insert before the last END:VCALENDAR."""
        text, etag = self._serialize(component)
        tail = self.pieces.pop() or ""
        before = tail[:self.end_at]
        if before and not before.endswith(("\n", "\r")):
            before += self.newline
        self.pieces.append(before)
        self._append_block(text)
        self.pieces.append(tail[self.end_at:])
        self.end_at = 0
        self.changed = True
        return etag

    def replace(self, index: int, component: ical.icalendar.Event) -> str:
        self.pieces[index], etag = self._serialize(component)
        self.changed = True
        return etag

    def remove(self, index: int) -> None:
        self.pieces[index] = None
        self.changed = True

    def render(self) -> bytes:
        return "".join(p for p in self.pieces if p).encode("utf-8", errors="surrogateescape")


def _properties(block: str) -> dict[str, str]:
    """Property name → value of one VEVENT's own lines (first occurrence wins)."""
    props: dict[str, str] = {}
    depth = 0
    for line in re.sub(r"\r?\n[ \t]", "", block).splitlines():
        name, _, value = line.partition(":")
        name = name.split(";", 1)[0].strip().upper()
        if name == "BEGIN":
            depth += 1
        elif name == "END":
            depth -= 1
        elif depth == 1:
            props.setdefault(name, value.strip())
    return props
