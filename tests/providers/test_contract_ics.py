"""The provider contract against the ics provider: a local file (read-write, as a
buffers_to calendar) and an http feed served locally (read-only)."""

from __future__ import annotations

import http.server
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caldaemon.providers.base import ProviderContext
from caldaemon.providers.ics.provider import IcsProvider
from caldaemon.providers.ics.settings import IcsCalendar
from tests.providers.contract import SELF, TZ, ProviderContract, UserEvent


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
    read_only = False

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
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n" + body + "END:VCALENDAR\r\n"
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
