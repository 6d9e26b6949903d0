"""Helpers for the tests of the ics provider: a buffers file, the provider that writes
it, and byte-level views of its VEVENT blocks; a local feed server whose routes can
trickle, stall, redirect or answer garbage; a guard that turns a hang into a failure."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import trustme

from caldaemon.model import Buffer, Event, Window
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.ics.http import MAX_FEED_BYTES
from caldaemon.providers.ics.provider import IcsProvider
from caldaemon.providers.ics.settings import IcsCalendar

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ics"
TORONTO = ZoneInfo("America/Toronto")
BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Window(datetime(2026, 1, 1, tzinfo=TORONTO), datetime(2026, 4, 1, tzinfo=TORONTO))
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()

BOM = b"\xef\xbb\xbf"


def provider(
    path: Path | None = None,
    *,
    url: str | None = None,
    buffers_to: str | None = None,
    tz: ZoneInfo = TORONTO,
    calendar: str = "cal",
    timeout: float = 5,
    **keys: Any,
) -> IcsProvider:
    """An ics calendar of a file or a feed (with its other settings in ``keys``)."""
    config = IcsCalendar(
        provider="ics",
        id=calendar,
        path=path,
        url=url,
        timeout=timedelta(seconds=timeout),
        **keys,
    )
    context = ProviderContext(
        clinician="lee",
        tz=tz,
        state_dir=Path("/nonexistent"),
        self_addresses=frozenset({"lee@example.org"}),
        buffers_to=buffers_to,
        clock=lambda: NOW,
    )
    return IcsProvider(config, context)


def at(tz: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=tz)  # type: ignore[misc]


# The name of a temporary file caldaemon writes beside ``buffers.ics``: mkstemp's eight
# random characters between a recognisable prefix and suffix.
OUR_TEMP = re.compile(r"\.buffers\.ics\.caldaemon-[a-z0-9_]{8}\.tmp")


def buffer(hour: int = 15, session: str = "s1") -> Buffer:
    """A buffer after ``session``; its identity depends on the session, not the time."""
    start = at(TORONTO, 2026, 1, 12, hour)
    return Buffer(
        clinician="lee",
        calendar="buffers",
        start=start,
        end=start + timedelta(minutes=15),
        title="Grounding time",
        after=f"practice/{session}@practice.example",
        rule="buffers[0]",
    )


def buffers_file(folder: Path) -> Path:
    """A copy of the LF buffers fixture (a user's event, a VTODO, a folded line), 0640."""
    path = folder / "buffers.ics"
    shutil.copy(FIXTURES / "buffers_lf.ics", path)
    path.chmod(0o640)
    return path


def writer(path: Path) -> IcsProvider:
    return provider(path, buffers_to="buffers", calendar="buffers")


def _span(lines: list[bytes], uid: str) -> tuple[int, int]:
    at_uid = next(
        i for i, line in enumerate(lines) if line.rstrip(b"\r\n") == f"UID:{uid}".encode()
    )
    begin = max(i for i in range(at_uid) if lines[i].strip() == b"BEGIN:VEVENT")
    end = next(i for i in range(at_uid, len(lines)) if lines[i].strip() == b"END:VEVENT")
    return begin, end + 1


def block_of(data: bytes, uid: str) -> bytes:
    """The bytes of the VEVENT whose UID is ``uid``."""
    lines = data.splitlines(keepends=True)
    begin, end = _span(lines, uid)
    return b"".join(lines[begin:end])


def without_block(data: bytes, uid: str) -> bytes:
    """``data`` with the VEVENT whose UID is ``uid`` cut out."""
    lines = data.splitlines(keepends=True)
    begin, end = _span(lines, uid)
    return b"".join(lines[:begin] + lines[end:])


def before_end(data: bytes, block: bytes) -> bytes:
    """``data`` with ``block`` inserted before its last END:VCALENDAR, as an app adds one."""
    at_end = data.rindex(b"END:VCALENDAR")
    return data[:at_end] + block + data[at_end:]


def listed(path: Path, uid: str) -> Event:
    found = {e.id: e for e in writer(path).changes(WINDOW, None).events}
    return found[uid]


# -- a feed server -----------------------------------------------------------------------


class FeedHandler(BaseHTTPRequestHandler):
    """Answers each path with its route in :attr:`FeedServer.routes` (404 otherwise)."""

    server: FeedHTTPServer
    protocol_version = "HTTP/1.1"

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # a client that hung up on a keep-alive
            super().handle()

    def do_GET(self) -> None:  # http.server's name for it
        self.server.owner.seen.append((self.path, dict(self.headers)))
        route = self.server.owner.routes.get(self.path.split("?")[0])
        try:
            if route is None:
                self.reply(404, b"")
            else:
                route(self)
        except OSError:
            pass  # the client went away (caldaemon gave up): nothing more to send

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {"Content-Type": "text/calendar"}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def pause(self, seconds: float) -> None:
        """Wait in the server's thread (the test itself never sleeps); cut short when
        the server stops."""
        self.server.owner.stopping.wait(seconds)

    def log_message(self, *args: Any) -> None:
        pass


class FeedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: FeedServer


Route = Callable[[FeedHandler], None]


class FeedServer:
    """A local feed server on 127.0.0.1 (over TLS with a throwaway trustme CA when
    ``tls``), whose answers are functions of the request handler, so that a route can
    trickle, stall or answer anything at all."""

    def __init__(self, routes: dict[str, Route], *, tls: bool = False) -> None:
        self.routes = routes
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stopping = threading.Event()
        self.server = FeedHTTPServer(("127.0.0.1", 0), FeedHandler)
        self.server.owner = self
        self.ca_path: Path | None = None
        if tls:
            ca = trustme.CA()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.ca = ca
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


# -- hostile calendars and the routes of a hostile feed ---------------------------------

HEAD = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile//EN\r\n"
TAIL = b"END:VCALENDAR\r\n"


def vevent(uid: str = "s1", *lines: str) -> bytes:
    body = [f"UID:{uid}", "DTSTAMP:20260101T000000Z", "DTSTART:20260112T140000Z"]
    body += ["DTEND:20260112T145000Z", "SUMMARY:Session", *lines]
    return (
        "BEGIN:VEVENT\r\n" + "".join(f"{line}\r\n" for line in body) + "END:VEVENT\r\n"
    ).encode()


CALENDAR = HEAD + vevent("s1") + vevent("s2").replace(b"T14", b"T16") + TAIL


def answer(body: bytes, **headers: str) -> Callable[[FeedHandler], None]:
    return lambda h: h.reply(200, body, {"Content-Type": "text/calendar", **headers})


def redirect(location: str, status: int = 302) -> Callable[[FeedHandler], None]:
    return lambda h: h.reply(status, b"", {"Location": location})


def drip(h: FeedHandler) -> None:
    """A whole calendar, one byte every 0.2 s (10 s and more for all of it)."""
    h.send_response(200)
    h.send_header("Content-Type", "text/calendar")
    h.send_header("Content-Length", str(len(CALENDAR)))
    h.end_headers()
    for byte in CALENDAR:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        h.pause(0.2)


def drip_headers(h: FeedHandler) -> None:
    """The status line, then a header a byte at a time (each read gets a byte)."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for byte in b"X-Slow: " + b"a" * 200 + b"\r\n":
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        h.pause(0.2)


def stall(h: FeedHandler) -> None:
    h.pause(30)


def huge(h: FeedHandler) -> None:
    """A calendar-looking body past the size cap, sent without a Content-Length."""
    h.send_response(200)
    h.send_header("Content-Type", "text/calendar")
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(HEAD)
    line = b"X-PADDING:" + b"x" * 1000 + b"\r\n"
    for _ in range(MAX_FEED_BYTES // len(line) + 10):
        h.wfile.write(line)
    h.close_connection = True


def bomb() -> bytes:
    """A gzip body of 100 MB of zeros (about 100 KB compressed)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(2**20)
    return b"".join([*(packer.compress(zeros) for _ in range(100)), packer.flush()])


def cut(h: FeedHandler) -> None:
    """A Content-Length of the whole calendar, then half of it and a closed connection."""
    h.send_response(200)
    h.send_header("Content-Length", str(len(CALENDAR)))
    h.end_headers()
    h.wfile.write(CALENDAR[: len(CALENDAR) // 2])
    h.close_connection = True


def chain(n: int) -> Callable[[FeedHandler], None]:
    return redirect(f"/chain/{n + 1}.ics")


class Hung(BaseException):
    """Raised in a case that overran its deadline: a BaseException, so that no ``except
    Exception`` (or ``except OSError``, which TimeoutError is) of the code under test
    takes it for an ordinary failure."""


@contextlib.contextmanager
def no_hang(seconds: int) -> Iterator[None]:
    """A case that hangs fails instead of stopping the suite (SIGALRM in this thread)."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
