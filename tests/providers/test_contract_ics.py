"""The provider contract against the ics provider: a local file (read-write, as a
buffers_to calendar) and an http feed served locally (read-only)."""

from __future__ import annotations

import http.server
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caldaemon.errors import WriteConflict
from caldaemon.model import Create, Delete, Remote, Update
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.ics.provider import IcsProvider
from caldaemon.providers.ics.settings import IcsCalendar
from tests.providers.contract import (
    SELF,
    TZ,
    WINDOW,
    ProviderContract,
    UserEvent,
    buffer,
    by_id,
)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(e: UserEvent) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{e.uid}", "DTSTAMP:20260101T000000Z"]
    if e.all_day:
        lines += [f"DTSTART;VALUE=DATE:{e.start:%Y%m%d}", f"DTEND;VALUE=DATE:{e.end:%Y%m%d}"]
    else:
        lines += [f"DTSTART:{_stamp(e.start)}", f"DTEND:{_stamp(e.end)}"]
    lines.append(f"SUMMARY:{e.title}")
    if e.transparent:
        lines.append("TRANSP:TRANSPARENT")
    if e.cancelled:
        lines.append("STATUS:CANCELLED")
    if e.declined:
        lines.append(f"ATTENDEE;PARTSTAT=DECLINED:mailto:{SELF}")
    if e.categories:
        lines.append("CATEGORIES:" + ",".join(e.categories))
    return "\r\n".join(lines + ["END:VEVENT"]) + "\r\n"


class FileBackend:
    """A calendar file as the user's app writes it: CRLF, no byte-order mark, a plain file.
    Subclasses vary what apps and setups vary."""

    read_only = False
    bom = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: dict[str, UserEvent] = {}

    def provider(self) -> IcsProvider:
        config = IcsCalendar(provider="ics", id="work", path=self.path)
        return IcsProvider(
            config,
            ProviderContext("lee", TZ, self.path.parent, frozenset({SELF}), buffers_to="work"),
        )

    def _text(self) -> str:
        return self.path.read_text() if self.path.exists() else ""

    def _write_user_events(self) -> None:
        # The user's own app rewrites its events and keeps caldaemon's blocks as they are.
        text = self._text()
        ours = [b for b in text.split("BEGIN:VEVENT")[1:] if "X-CALDAEMON-BUFFER" in b]
        body = "".join(vevent(e) for e in self.events.values()) + "".join(
            "BEGIN:VEVENT" + b.split("END:VCALENDAR")[0] for b in ours
        )
        self.path.write_text(
            self.bom
            + "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
            + body
            + "END:VCALENDAR\r\n"
        )

    def add(self, event: UserEvent) -> str:
        self.events[event.uid] = event
        self._write_user_events()
        return event.uid

    def change(self, event_id: str, event: UserEvent) -> None:
        self.add(event)

    def remove(self, event_id: str) -> None:
        del self.events[event_id]
        self._write_user_events()

    def edit_title(self, event_id: str, title: str) -> None:
        self.path.write_text(self._text().replace("SUMMARY:Grounding time", f"SUMMARY:{title}", 1))

    def count_with_title(self, title: str) -> int:
        return len(re.findall(rf"^SUMMARY:{re.escape(title)}\r?$", self._text(), re.M))


class TestIcsFile(ProviderContract):
    @pytest.fixture
    def backend(self, tmp_path):
        return FileBackend(tmp_path / "calendar.ics")

    def test_a_users_copy_of_a_buffer_is_theirs(self, backend: FileBackend) -> None:
        """The user duplicates a buffer in their app: a new UID, the marker kept. The copy
        is listed as marked but not owned, and no write aimed at it changes the file."""
        provider = backend.provider()
        b = buffer()
        [created] = provider.apply([Create(b, b.identity)])
        assert created.remote is not None
        text = backend.path.read_text()
        block = "BEGIN:VEVENT" + text.split("BEGIN:VEVENT")[-1].split("END:VCALENDAR")[0]
        copy = block.replace(f"UID:{created.remote.id}", "UID:copy@app.example")
        backend.path.write_text(text.replace("END:VCALENDAR", copy + "END:VCALENDAR"))
        listed = by_id(provider.changes(WINDOW, None))
        assert (listed["copy@app.example"].owner, listed["copy@app.example"].marked) == (
            None,
            True,
        )
        assert listed[created.remote.id].owner == b.identity
        data = backend.path.read_bytes()
        aimed = Remote("copy@app.example", created.remote.etag)
        results = provider.apply([Update(b, b.identity, aimed), Delete(b.identity, aimed)])
        assert all(isinstance(r.error, WriteConflict) for r in results)
        assert backend.path.read_bytes() == data
        [deleted] = provider.apply([Delete(b.identity, created.remote)])
        assert deleted.error is None and backend.count_with_title("Grounding time") == 1


class BomFileBackend(FileBackend):
    """An app on Windows that starts the file with a UTF-8 byte-order mark; the file is
    there (empty) before caldaemon writes to it."""

    bom = "\ufeff"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._write_user_events()


class TestIcsFileWithByteOrderMark(ProviderContract):
    @pytest.fixture
    def backend(self, tmp_path):
        return BomFileBackend(tmp_path / "calendar.ics")


class TestIcsFileThroughSymlink(ProviderContract):
    """The configured path is a link into a synced folder."""

    @pytest.fixture
    def backend(self, tmp_path):
        (tmp_path / "synced").mkdir()
        link = tmp_path / "calendar.ics"
        link.symlink_to(tmp_path / "synced" / "calendar.ics")
        yield FileBackend(link)
        assert link.is_symlink()


class _Feed(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        etag = f'"{hash(self.server.body) & 0xFFFFFFFF:x}"'  # type: ignore[attr-defined]
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(self.server.body)))  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(self.server.body)  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


class FeedBackend(FileBackend):
    read_only = True

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
        self.server.body = b""  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def _write_user_events(self) -> None:
        super()._write_user_events()
        self.server.body = self.path.read_bytes()  # type: ignore[attr-defined]

    def provider(self) -> IcsProvider:
        url = f"http://127.0.0.1:{self.server.server_address[1]}/feeds/secret-token/lee.ics"
        config = IcsCalendar(provider="ics", id="work", url=url, timeout=timedelta(seconds=5))
        return IcsProvider(config, ProviderContext("lee", TZ, self.path.parent, frozenset({SELF})))


class TestIcsFeed(ProviderContract):
    @pytest.fixture
    def backend(self, tmp_path):
        backend = FeedBackend(tmp_path / "feed.ics")
        yield backend
        backend.server.shutdown()

    def test_the_feed_url_is_not_shown_with_its_secret(self, backend):
        assert "secret-token" not in backend.provider().describe()
