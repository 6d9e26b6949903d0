"""HTTP plumbing shared by the local fakes of Google Calendar and Microsoft identity + Graph.

:class:`LocalServer` is a threaded HTTP/1.1 server on 127.0.0.1 (optionally TLS,
with a throwaway trustme CA in :attr:`LocalServer.ca_path`) that hands each
request, as an :class:`Incoming`, to a responder and sends back its
:class:`Answer`: a :class:`Reply`, a truncated reply, or a TCP reset.  stop()
wakes :meth:`LocalServer.sleep` (hangs, latency), ends the accept loop at once
(no serve_forever poll to wait out) and drops idle keep-alive connections.
:class:`FaultQueue` and :class:`RequestLog` are what fault injection and request
recording have in common; faults and recorded requests keep each fake's shape.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, Self, TypeVar
from urllib.parse import urlsplit

import trustme

_LOG = logging.getLogger(__name__)
_JSON_TYPE = "application/json; charset=utf-8"

# What an injected fault does: answer an error ("status"), abort the connection
# ("reset"), cut the answer short ("truncate") or stall before answering ("hang").
FaultKind = Literal["status", "reset", "truncate", "hang"]
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "reset", "truncate", "hang")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer produced by the fake services."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = _JSON_TYPE,
    ) -> Reply:
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, (("Content-Type", content_type), *headers), data)


@dataclass(frozen=True)
class Incoming:
    """A request as read off the wire, before a fake records it in its own shape."""

    method: str
    path: str  # without the query string, percent-encoding kept
    query: str
    header_lines: tuple[tuple[str, str], ...]  # as sent, in order
    body: bytes

    def headers(self, *, join_repeated: bool) -> dict[str, str]:
        """Headers by lower-cased name.

        A repeated header keeps its last value, or with ``join_repeated`` all of
        its values joined with ", " (RFC 9110 section 5.3).
        """
        headers: dict[str, str] = {}
        for name, value in self.header_lines:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if join_repeated and key in headers else value
        return headers


@dataclass(frozen=True)
class Answer:
    """What to send back: ``reply``, cut short with ``truncate``, or a reset when None."""

    reply: Reply | None
    truncate: bool = False


class LocalServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 handing every request to ``responder``.

    ``server_version`` replaces the product in the ``Server`` header;
    ``idle_timeout`` closes a keep-alive connection that stays silent that long
    (None: never).
    """

    def __init__(
        self,
        responder: Callable[[Incoming], Answer],
        *,
        name: str,
        tls: bool = False,
        server_version: str | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        self.responder = responder
        self.name = name
        self.tls = tls
        self.server_version = server_version
        self.idle_timeout = idle_timeout
        self.ca_path = ""
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        context = self._tls_context() if self.tls else None
        httpd = _Server(self, context)
        self._stopping.clear()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_until, args=(self._stopping,), name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        self._stopping.set()  # wakes 'hang' faults and latency sleeps, ends the accept loop
        httpd.wake()
        if thread is not None:
            thread.join(timeout=5)
        httpd.close_open_connections()
        httpd.server_close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the server stops meanwhile."""
        self._stopping.wait(seconds)

    def _tls_context(self) -> ssl.SSLContext:
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        self._tmpdir = tempfile.mkdtemp(prefix=f"{self.name}-")
        self.ca_path = os.path.join(self._tmpdir, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        return context


class _Server(ThreadingHTTPServer):
    """Tracks open connections so stop() can close idle keep-alives."""

    daemon_threads = True
    block_on_close = False
    timeout = 0  # handle_request() is only called once the listening socket is readable

    def __init__(self, owner: LocalServer, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            # Handshake lazily in the handler thread so a stalled client cannot
            # block the accept loop.
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.owner = owner
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._wake_up, self._wake_call = socket.socketpair()

    def serve_until(self, stopping: threading.Event) -> None:
        """Accept until ``stopping`` is set and wake() is called.

        Unlike ``serve_forever``, which notices a shutdown only at its next poll
        (every 0.5 s by default), this wakes up as soon as stop() asks.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_up, selectors.EVENT_READ)
            while not stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self and not stopping.is_set():
                        self.handle_request()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_call.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_up.close()
        self._wake_call.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            connections, self._open = self._open, set()
        for connection in connections:
            with contextlib.suppress(OSError):  # the client may have closed it already
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping connections are expected; other errors (a raising fault match) not."""
        level = logging.DEBUG if isinstance(sys.exc_info()[1], OSError) else logging.ERROR
        _LOG.log(level, "connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httplib2 and requests expect
    # Headers and body go out in separate writes; without TCP_NODELAY,
    # Nagle plus the client's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        idle_timeout = self.server.owner.idle_timeout
        if idle_timeout is not None:
            self.connection.settimeout(idle_timeout)

    def version_string(self) -> str:
        product = self.server.owner.server_version or self.server_version
        return f"{product} {self.sys_version}"

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # ssl.SSLError included
            # Handshake failures, clients that went away (e.g. timed out during a
            # 'hang'), and connections stop() shut down.
            _LOG.debug("connection from %s dropped", self.client_address, exc_info=True)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        target = urlsplit(self.path)
        lines = tuple((name, str(value)) for name, value in self.headers.items())
        incoming = Incoming(self.command, target.path, target.query, lines, self._read_body())
        answer = self.server.owner.responder(incoming)
        if answer.reply is None:
            self._reset()
        else:
            self._send(answer.reply, truncate=answer.truncate)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length", "")
        return self.rfile.read(int(length)) if length.isdigit() else b""

    def _send(self, reply: Reply, *, truncate: bool) -> None:
        """Write ``reply``; a truncated one announces more than it sends, then closes."""
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        bodyless = reply.status in (204, 304)
        if not bodyless:
            extra = max(len(reply.body), 64) if truncate else 0
            self.send_header("Content-Length", str(len(reply.body) + extra))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if not bodyless:
            self.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
        self.wfile.flush()
        self.close_connection = self.close_connection or truncate

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER with a zero timeout makes close() send a TCP RST.

        rfile is closed too, as its reference would delay the close; wfile stays
        open because BaseHTTPRequestHandler flushes it after every request.
        """
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()


class Spendable(Protocol):
    def spend(self) -> bool:
        """Count one use of a fault; True when it is used up."""
        ...


F = TypeVar("F", bound=Spendable)
R = TypeVar("R")


class FaultQueue(Generic[F]):
    """Injected faults, tried in injection order; the first that applies is used once."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._faults: list[F] = []

    def add(self, fault: F) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, applies: Callable[[F], bool]) -> F | None:
        """The first fault ``applies`` accepts, counted (and dropped once used up)."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if applies(fault):
                    if fault.spend():
                        del self._faults[index]
                    return fault
        return None


class RequestLog(Generic[R]):
    """Requests in the order they arrived; ``entries`` is the live list."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.entries: list[R] = []

    def record(self, request: R) -> None:
        with self._lock:
            self.entries.append(request)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def snapshot(self) -> list[R]:
        with self._lock:
            return list(self.entries)
