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
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from .. import ical
from ..errors import CalendarError, RemoteGone, TransientError, WriteConflict
from ..model import Buffer
from .base import (
    OWNER_PROPERTY,
    Create,
    Delete,
    Listing,
    Provider,
    Remote,
    Update,
    Window,
    Write,
    WriteResult,
)

_USER_AGENT = "caldaemon (+https://github.com/caldaemon/caldaemon)"


class IcsProvider(Provider):
    batch = True
    batch_size = 1000

    def __init__(self, config, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config, context)
        self.read_only = config.url is not None

    def describe(self) -> str:
        if self.config.url:
            return _redact_url(self.config.url)
        return str(self.config.path)

    # -- reading -----------------------------------------------------------------------

    def list(self, window: Window, token: str | None) -> Listing:
        data, version = self._fetch(json.loads(token)["version"] if token else None)
        new_token = json.dumps({"version": version})
        if data is None:
            return Listing(events=(), removed=(), token=new_token, full=False)
        reader = ical.Reader(self.id, self.describe(), self.context.tz,
                             self.context.self_addresses)
        events = reader.events(ical.parse(data, self.id, self.describe()), window)
        return Listing(events=tuple(events), removed=(), token=new_token, full=True,
                       warnings=tuple(reader.warnings))

    def _fetch(self, version: str | None) -> tuple[bytes | None, str]:
        """The calendar's bytes, or None when ``version`` says it has not changed."""
        if self.config.url:
            return self._fetch_url(version)
        path: Path = self.config.path
        try:
            stat = path.stat()
        except FileNotFoundError:
            if self.context.buffers_to == self.id:
                return b"", "absent"
            raise CalendarError(self.id, str(path), "file not found")
        except OSError as exc:
            raise CalendarError(self.id, str(path), f"cannot read: {exc.strerror}")
        current = f"{stat.st_mtime_ns}:{stat.st_size}:{stat.st_ino}"
        if current == version:
            return None, current
        try:
            return path.read_bytes(), current
        except OSError as exc:
            raise CalendarError(self.id, str(path), f"cannot read: {exc.strerror}")

    def _fetch_url(self, version: str | None) -> tuple[bytes | None, str]:
        url = re.sub(r"^webcal(s?)://", lambda m: "https://" if m.group(1) else "http://",
                     self.config.url)
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        validators = json.loads(version) if version else {}
        if validators.get("etag"):
            request.add_header("If-None-Match", validators["etag"])
        if validators.get("modified"):
            request.add_header("If-Modified-Since", validators["modified"])
        where = self.describe()
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout.total_seconds()) as reply:
                body = reply.read()
                headers = reply.headers
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None, version or ""
            message = f"the server answered {exc.code} {exc.reason}"
            if exc.code in (408, 425, 429) or exc.code >= 500:
                raise TransientError(self.id, where, message) from None
            raise CalendarError(self.id, where, message) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientError(self.id, where, f"cannot fetch: {reason}") from None
        etag, modified = headers.get("ETag"), headers.get("Last-Modified")
        if not (etag or modified):
            digest = hashlib.sha256(body).hexdigest()
            if validators.get("sha256") == digest:
                return None, version or ""
            return body, json.dumps({"sha256": digest})
        return body, json.dumps({"etag": etag, "modified": modified})

    # -- writing (local files only) ----------------------------------------------------

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """All writes of a cycle in one read-modify-replace of the file."""
        if self.read_only:
            raise CalendarError(self.id, self.describe(), "a feed URL cannot be written to")
        path: Path = self.config.path
        original = path.read_bytes() if path.exists() else b""
        document = _Document(original)
        stamp = datetime.now(timezone.utc)
        results: list[WriteResult] = []
        for write in writes:
            if isinstance(write, Create):
                uid = ical.buffer_uid(write.identity)
                existing = document.find(uid)
                if existing is not None:
                    # A retried create: the event is there already (idempotent).
                    results.append(WriteResult(write, remote=Remote(uid, document.etag(existing))))
                    continue
                block = ical.buffer_component(write.buffer, write.identity, stamp)
                etag = document.add(block)
                results.append(WriteResult(write, remote=Remote(uid, etag)))
                continue
            index = document.find(write.remote.id)
            if index is None:
                results.append(WriteResult(write, error=RemoteGone(self.id, write.remote.id)))
            elif not document.owned(index) or document.etag(index) != write.remote.etag:
                results.append(WriteResult(write, error=WriteConflict(self.id, write.remote.id)))
            elif isinstance(write, Update):
                block = ical.buffer_component(write.buffer, write.identity, stamp)
                etag = document.replace(index, block)
                results.append(WriteResult(write, remote=Remote(write.remote.id, etag)))
            else:
                document.remove(index)
                results.append(WriteResult(write))
        if document.changed:
            self._replace(path, original, document.render())
        return results

    def create(self, buffer: Buffer, identity: str) -> Remote:
        result = self.apply([Create(buffer, identity)])[0]
        return _unwrap(result)

    def update(self, remote: Remote, buffer: Buffer, identity: str) -> Remote:
        return _unwrap(self.apply([Update(buffer, identity, remote)])[0])

    def delete(self, remote: Remote) -> None:
        result = self.apply([Delete("", remote)])[0]
        if result.error:
            raise result.error

    def _replace(self, path: Path, original: bytes, data: bytes) -> None:
        """Write beside the file and rename over it: a reader never sees half a file.
        If the file changed since we read it (the user's app saved it), give up this
        cycle rather than overwrite their change."""
        current = path.read_bytes() if path.exists() else b""
        if current != original:
            raise TransientError(self.id, str(path), "the file changed while caldaemon was "
                                 "writing; trying again next cycle")
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise


def _unwrap(result: WriteResult) -> Remote:
    if result.error:
        raise result.error
    assert result.remote is not None
    return result.remote


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
            word = line.strip().upper()
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
        tail = self.pieces[-1] or ""
        self.end_at = tail.upper().rfind("END:VCALENDAR")

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

    def etag(self, index: int) -> str:
        return ical.buffer_etag(ical.icalendar.Event.from_ical(self.pieces[index] or ""))

    def _serialize(self, component: ical.icalendar.Event) -> tuple[str, str]:
        text = component.to_ical().decode("utf-8")
        lines = "".join(line + self.newline for line in text.splitlines())
        return lines, ical.buffer_etag(ical.icalendar.Event.from_ical(text))

    def add(self, component: ical.icalendar.Event) -> str:
        """Insert before the last END:VCALENDAR (or at the end if the file lacks one)."""
        text, etag = self._serialize(component)
        tail = self.pieces.pop() or ""
        cut = self.end_at if self.end_at >= 0 else len(tail)
        before = tail[:cut]
        if before and not before.endswith(("\n", "\r")):
            before += self.newline
        self.pieces.append(before)
        self._append_block(text)
        self.pieces.append(tail[cut:])
        self.end_at = 0 if self.end_at >= 0 else -1
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
