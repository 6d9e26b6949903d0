"""``provider: ics``: a local .ics file, or an http(s) feed such as practice-management
systems publish.

A file is read-write when it is the clinician's ``buffers_to`` calendar: caldaemon then
adds and removes only its own VEVENTs, editing the file as text so that every other
component keeps its exact bytes, and replaces it atomically, only while it still holds
what was read (:mod:`.localfile`). A feed is read-only and is fetched with If-None-Match /
If-Modified-Since (RFC 9110 §13.1), so an unchanged feed costs one request and no parsing.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from caldaemon.errors import CalendarError, ConfigError, RemoteGone, WriteConflict
from caldaemon.model import Create, Remote, Update, Window, Write, WriteResult
from caldaemon.providers.base import (
    BatchProvider,
    Listing,
    ProviderContext,
    WriteAccess,
    token_fields,
)
from caldaemon.providers.ics.cache import KnownFile
from caldaemon.providers.ics.document import Document
from caldaemon.providers.ics.http import Feed, fetch_feed, redact_url
from caldaemon.providers.ics.localfile import LocalFile
from caldaemon.providers.ics.mapping import buffer_component, buffer_etag, buffer_uid
from caldaemon.providers.ics.parse import (
    MAX_CALENDAR_BYTES,
    Parsed,
    blank,
    check_limits,
    parse_file,
    vevent_count,
)
from caldaemon.providers.ics.reader import Reader
from caldaemon.providers.ics.settings import IcsCalendar
from caldaemon.secret import read_secret

# A file with fewer VEVENTs than this, read for the first time, has no block left out for
# its times as written (:attr:`.Span.ordered`) but only those :mod:`.lean` reads: a
# broken block outside the window is then still parsed and warned about, as when small
# files were parsed whole. (Once this provider has written the file, its own blocks are
# left out by their times, whatever its size.)
SELECTIVE_FROM = 200


class IcsProvider(BatchProvider):
    batch = True
    batch_size = 1000
    config: IcsCalendar

    def __init__(self, config: IcsCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        # The one provider whose capability depends on its config: a feed URL is
        # read-only, a file is not.
        self.read_only = config.url is not None
        self._file: LocalFile | None = None
        self._known = KnownFile()

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
        source = self.describe()
        reader = Reader(self.id, source, self.context.tz, self.context.self_addresses)
        parsed = self._parse(data or b"", window)
        if blank(data or b"") and self.context.buffers_to != self.id:
            # An empty file reads as a calendar without events; a practice file emptied
            # by a failed sync or save would too, so it is said (the buffers file
            # caldaemon writes to starts absent or empty, and that is normal).
            reader.note("the file is empty; read as a calendar without events")
        for skipped in parsed.skipped:
            reader.note(skipped)
        events = reader.events(parsed.calendars, window, parsed.dropped_events, parsed.plain)
        return Listing(
            events=tuple(events),
            removed=(),
            token=_token(version, window),
            full=True,
            warnings=tuple(reader.warnings),
        )

    def _parse(self, data: bytes, window: Window) -> Parsed:
        """A feed, or a blank file, parsed whole. A local file: only its VEVENTs that may
        lie in ``window`` (:meth:`.Document.within`), cut from the document kept for its
        bytes when there is one (:mod:`.cache`), so a file that grows with history costs
        a round no more as it does."""
        source = self.describe()
        if self.config.url or blank(data):
            return parse_file(data, self.id, source)
        small = False
        if not self._known.holds(data):
            small = vevent_count(data) < SELECTIVE_FROM
            check_limits(data, self.id, source)  # the whole file's, before it is scanned
        document = self._known.document(data)
        # VEVENTs of no series are read from their lines (:mod:`.lean`); when the rest
        # is not one readable VCALENDAR, the file is read as if they had not been.
        attendees = bool(self.context.self_addresses)
        selection = document.within(window, plain=True, attendees=attendees, trusted=not small)
        parsed = parse_file(selection.data, self.id, source)
        if selection.plain and (parsed.skipped or len(parsed.calendars) != 1):
            if small:
                return parse_file(data, self.id, source)
            selection = document.within(window)
            parsed = parse_file(selection.data, self.id, source)
        if parsed.skipped:
            # Something in the selection cannot be read: said in the terms of the whole
            # file (its line and event numbers), by the whole file's parse.
            return parse_file(data, self.id, source)
        plain_numbers = {number for number, _ in selection.plain}
        return Parsed(
            parsed.calendars,
            dropped_events=selection.left_out | plain_numbers,
            plain=selection.plain,
        )

    def _fetch(self, version: str | None) -> tuple[bytes | None, str]:
        """The calendar's bytes, or None when ``version`` says it has not changed."""
        if self.config.url:
            return fetch_feed(self._feed(), version, calendar=self.id)
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
        if stat.st_size > MAX_CALENDAR_BYTES:
            raise CalendarError(self.id, str(path), f"larger than {MAX_CALENDAR_BYTES // 2**20} MB")
        try:
            with path.open("rb") as handle:  # what it holds now, up to the cap
                data = handle.read(MAX_CALENDAR_BYTES + 1)
            return data, current
        except OSError as exc:
            raise CalendarError(self.id, str(path), f"cannot read: {exc.strerror}") from None

    def _feed(self) -> Feed:
        """The feed with its credentials, read now (a changed secret file is used at the
        next fetch). The secret goes into the Authorization header only."""
        config = self.config
        authorization = None
        try:
            if config.username is not None:
                password = read_secret(
                    config.password_file, config.password_env, what="the feed's password"
                )
                _check_secret(password or "", self.id, self.describe(), "password")
                pair = f"{config.username}:{password or ''}".encode()
                authorization = "Basic " + base64.b64encode(pair).decode("ascii")
            elif config.bearer_token_file is not None:
                token = read_secret(config.bearer_token_file, None, what="the feed's token") or ""
                # RFC 6750 §2.1: b64token characters only (also keeps it to one header line).
                if not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token):
                    raise CalendarError(
                        self.id,
                        self.describe(),
                        "the bearer token file does not hold a token (letters, digits and "
                        "-._~+/ only, on one line)",
                    )
                authorization = f"Bearer {token}"
        except ConfigError as exc:
            # Names the file or variable and why it cannot be read, never its content.
            raise CalendarError(self.id, self.describe(), exc.problems[0].message) from None
        return Feed(
            url=str(config.url),
            timeout=config.timeout.total_seconds(),
            authorization=authorization,
            ca_file=Path(config.ca_file) if config.ca_file is not None else None,
        )

    def write_access(self) -> WriteAccess:
        """A file is written as a temporary file in its folder renamed over it
        (:mod:`.localfile`), through a symlink to its target: what must be writable is
        that folder (made when missing), whatever the file's own mode."""
        if self.config.url:
            return WriteAccess(False, "a feed URL is read-only")
        folder = Path(os.path.realpath(self._path())).parent
        existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        if not existing.is_dir():
            return WriteAccess(False, f"{existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            return WriteAccess(False, f"the folder {existing} is not writable")
        made = "" if existing == folder else f" (caldaemon makes {folder} in it)"
        return WriteAccess(True, f"the folder {existing} is writable{made}")

    def _path(self) -> Path:
        if self.config.path is None:
            raise CalendarError(self.id, self.describe(), "no path configured")
        return Path(self.config.path)

    # -- writing (local files only) ----------------------------------------------------

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """All writes of a cycle in one read-modify-replace of the file."""
        if self.read_only:
            raise CalendarError(self.id, self.describe(), "a feed URL cannot be written to")
        if self._file is None:
            self._file = LocalFile(self._path(), self.id)
        seen = self._file.read()
        # The document this provider last read or wrote, while the file still holds it:
        # our own write of the last round is not scanned again.
        document = self._known.document(seen.data)
        stamp = self.context.now()
        try:
            results = [self._one(document, write, stamp) for write in writes]
            if document.changed:
                # Nothing is written when the file changed since ``seen``
                # (TransientError): the results above then never reach the file, and the
                # caller counts none.
                data = document.render()
                self._file.replace(seen, data)
                self._known.wrote(data, document)
        except BaseException:
            self._known.forget()  # the document may hold writes that never reached the file
            raise
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
            if not document.owned(index, write.identity):
                return WriteResult(write, error=WriteConflict(self.id, uid))
            if document.cancelled(index):
                # Our id, taken by an event that is there but cancelled: the core writes
                # the buffer's next generation under a new id.
                return WriteResult(write, error=RemoteGone(self.id, uid))
            etag = document.etag(index)
            block = buffer_component(write.buffer, write.identity, stamp)
            if etag != buffer_etag(block) and document.ended(index, stamp):
                # Ours, not what this create writes, and over: an earlier life of the
                # buffer (its record pruned). The core writes the next generation.
                return WriteResult(write, error=RemoteGone(self.id, uid))
            # A retried create: the event is there already (idempotent, DESIGN.md §5).
            return WriteResult(write, remote=Remote(uid, etag))
        index = document.find(write.remote.id)
        if index is None:
            return WriteResult(write, error=RemoteGone(self.id, write.remote.id))
        # Only our own events (the marker bound to the UID: a user's copy of a buffer is
        # theirs), and only as we last saw them (the etag is If-Match).
        owned = document.owned(index, write.identity)
        if not owned or document.etag(index) != write.remote.etag:
            return WriteResult(write, error=WriteConflict(self.id, write.remote.id))
        if isinstance(write, Update):
            block = buffer_component(write.buffer, write.identity, stamp)
            etag = document.replace(index, block)
            return WriteResult(write, remote=Remote(write.remote.id, etag))
        document.remove(index)
        return WriteResult(write)


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


def _check_secret(value: str, calendar: str, source: str, what: str) -> None:
    """A line break or control character would end the header it goes into (and
    http.client's refusal would quote it)."""
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise CalendarError(
            calendar, source, f"the {what} holds a line break or a control character"
        )
