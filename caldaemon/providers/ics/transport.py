"""One HTTP GET under a total deadline (DESIGN.md §5 "Failing closed": ``timeout`` bounds
the whole request, a body that trickles in included).

A socket timeout bounds each read, not the request: a server that sends a byte a second
never trips it. So the name lookup runs in a thread that is waited for only until the
deadline, and a watchdog shuts the request's sockets down when the deadline passes, which
ends any read that is still waiting; the body is read a piece at a time, each piece
checked against the deadline and the size cap. A compressed body (Content-Encoding: gzip
or deflate) is inflated under the same cap, so a gzip bomb is refused, not inflated.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

_PIECE = 64 * 1024
_SAFE = "/%:@!$&'()*+,;=-._~?"


class Expired(Exception):
    """The deadline passed before the answer was complete."""


class TooLarge(Exception):
    """The body (or what it inflates to) is larger than the cap."""


class Undecodable(Exception):
    """A Content-Encoding caldaemon does not read, or a compressed body that is broken;
    the argument is a sentence that quotes nothing the server sent."""


class Deadline:
    """A moment on the monotonic clock (the wall clock may step)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


class _Watchdog:
    """Shuts down every socket it watches when the deadline passes; a read blocked on one
    then returns at once. ``close`` (before the sockets are closed) stops it."""

    def __init__(self, deadline: Deadline) -> None:
        self.expired = False
        self._done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(deadline.left(), 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                raise Expired
            self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                # The plain socket's shutdown, also under TLS: it only touches the
                # file descriptor, never the TLS state another thread is using.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes  # read (and inflated) only for a 200


def get(
    url: SplitResult,
    headers: dict[str, str],
    *,
    deadline: Deadline,
    max_bytes: int,
    context: ssl.SSLContext | None = None,
) -> Answer:
    """GET ``url`` (no userinfo: the caller sends credentials as headers). Raises Expired,
    TooLarge, Undecodable, or what the network raises (OSError, ssl.SSLError,
    http.client.HTTPException) for the caller to describe."""
    watchdog = _Watchdog(deadline)
    sock: socket.socket | None = None
    try:
        host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
        proxy = _proxy(url.scheme, host)
        target = url._replace(netloc=_netloc(host, url.port)).geturl()
        # Characters a pasted URL may hold that HTTP does not allow unescaped.
        path = quote(url.path or "/", safe=_SAFE)
        if url.query:
            path += f"?{quote(url.query, safe=_SAFE)}"
        if proxy is not None:
            sock = _connect(proxy.hostname or "", proxy.port or 8080, deadline, watchdog)
            if url.scheme == "https":
                _tunnel(sock, host, port, proxy, deadline)
            else:
                path = target  # a proxy takes the absolute URL (RFC 9112 §3.2.2)
                headers = {**headers, **_proxy_authorization(proxy)}
        else:
            sock = _connect(host, port, deadline, watchdog)
        if url.scheme == "https":
            context = context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
            watchdog.watch(sock)
            sock.settimeout(_left(deadline))
            sock.do_handshake()
        connection = (
            http.client.HTTPSConnection(host, port, context=context)
            if url.scheme == "https"
            else http.client.HTTPConnection(host, port)
        )
        connection.sock = sock
        connection.request("GET", path, headers=headers)
        sock.settimeout(_left(deadline))
        response = connection.getresponse()
        body = _body(response, sock, deadline, max_bytes) if response.status == 200 else b""
        if watchdog.expired:
            raise Expired
        return Answer(response.status, response.reason, response.headers, body)
    except (OSError, ValueError, http.client.HTTPException):
        if watchdog.expired or deadline.left() <= 0:
            raise Expired from None
        raise
    finally:
        watchdog.close()
        if sock is not None:
            sock.close()


def _left(deadline: Deadline) -> float:
    left = deadline.left()
    if left <= 0:
        raise Expired
    return left


def _resolve(host: str, port: int, deadline: Deadline) -> list[Any]:
    """getaddrinfo, waited for only until the deadline (it has no timeout of its own; the
    thread it runs in ends on its own when the resolver gives up)."""
    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(exc)

    thread = threading.Thread(target=lookup, name="caldaemon-resolve", daemon=True)
    thread.start()
    thread.join(_left(deadline))
    if not found:
        raise Expired
    if isinstance(found[0], OSError):
        raise found[0]
    infos: list[Any] = found[0]
    return infos


def _connect(host: str, port: int, deadline: Deadline, watchdog: _Watchdog) -> socket.socket:
    error: OSError | None = None
    for family, kind, proto, _, address in _resolve(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            watchdog.watch(sock)
            sock.settimeout(_left(deadline))
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError("the host name has no address")


def _proxy(scheme: str, host: str) -> SplitResult | None:
    """The proxy the environment names for ``scheme`` (http_proxy, https_proxy, with
    no_proxy), as urllib used it."""
    proxies = urllib.request.getproxies_environment()
    found = proxies.get(scheme)
    if not found or urllib.request.proxy_bypass(host):
        return None
    proxy = urlsplit(found if "://" in found else f"http://{found}")
    return proxy if proxy.hostname else None


def _proxy_authorization(proxy: SplitResult) -> dict[str, str]:
    if proxy.username is None:
        return {}
    pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}


def _tunnel(
    sock: socket.socket, host: str, port: int, proxy: SplitResult, deadline: Deadline
) -> None:
    """HTTP CONNECT through the proxy (RFC 9110 §9.3.6)."""
    lines = [f"CONNECT {_netloc(host, port)} HTTP/1.1", f"Host: {_netloc(host, port)}"]
    lines += [f"{k}: {v}" for k, v in _proxy_authorization(proxy).items()]
    sock.settimeout(_left(deadline))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    response = http.client.HTTPResponse(sock, method="CONNECT")
    response.begin()
    if response.status != 200:
        raise OSError(f"the proxy refused the connection ({response.status})")


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


def _body(
    response: http.client.HTTPResponse, sock: socket.socket, deadline: Deadline, cap: int
) -> bytes:
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    inflate = _Inflater(encoding, cap)
    received = 0
    while True:
        sock.settimeout(_left(deadline))
        piece = response.read1(_PIECE)
        if not piece:
            break
        received += len(piece)
        if received > cap:
            raise TooLarge
        inflate.feed(piece)
        _left(deadline)
    if response.length:  # the connection closed before Content-Length bytes came
        raise http.client.IncompleteRead(b"", response.length)
    return inflate.finish()


class _Inflater:
    """The body as sent (identity) or inflated (gzip, deflate), never more than ``cap``
    bytes of output: zlib stops at ``max_length`` and keeps the rest of its input."""

    def __init__(self, encoding: str, cap: int) -> None:
        self.cap = cap
        self.parts: list[bytes] = []
        self.size = 0
        if encoding in ("", "identity"):
            self.wbits: int | None = None
        elif encoding in ("gzip", "x-gzip"):
            self.wbits = 31
        elif encoding == "deflate":
            self.wbits = 15
        else:
            raise Undecodable("the feed is compressed in a way caldaemon does not read")
        self.zlib = zlib.decompressobj(self.wbits) if self.wbits else None

    def feed(self, data: bytes) -> None:
        if self.zlib is None:
            self._keep(data)
            return
        while data:
            try:
                out = self.zlib.decompress(data, self.cap - self.size + 1)
            except zlib.error:
                raise Undecodable("the feed's compressed body is broken") from None
            self._keep(out)
            data = self.zlib.unconsumed_tail
            if self.zlib.eof and self.zlib.unused_data and self.wbits == 31:
                # Concatenated gzip members (RFC 1952 §2.2) read as one body.
                data = self.zlib.unused_data
                self.zlib = zlib.decompressobj(self.wbits)

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.cap:
            raise TooLarge
        self.parts.append(data)

    def finish(self) -> bytes:
        if self.zlib is not None and not self.zlib.eof:
            raise Undecodable("the feed's compressed body is cut short")
        return b"".join(self.parts)
