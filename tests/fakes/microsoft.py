"""A local TLS server faking the Microsoft identity platform and Microsoft Graph.

Usage::

    with MicrosoftServer() as server:
        app = msal.PublicClientApplication(
            "client-id",
            authority=server.authority,
            instance_discovery=False,  # MSAL would otherwise call login.microsoftonline.com
            verify=server.ca_path,
        )
        requests.get(f"{server.graph_url}/me/calendars", verify=server.ca_path, ...)

The identity side lives in :mod:`microsoft_identity`, Graph in
:mod:`microsoft_graph`; this module owns the HTTP server, the recording of
requests and fault injection, and the thread-safe public API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

import trustme

from .microsoft_graph import (
    Graph,
    GraphError,
    GraphRequest,
    JsonObject,
    graph_error_reply,
    parse_query,
)
from .microsoft_identity import (
    APPLICATION_PERMISSIONS,
    DEFAULT_DELEGATED_PERMISSIONS,
    Identity,
    IdentityError,
    Reply,
    User,
)

__all__ = ["DEFAULT_USER", "Fault", "MicrosoftServer", "RecordedRequest"]

DEFAULT_USER = "clinician@contoso.example"
FaultKind = Literal["status", "reset", "truncate", "hang"]
_log = logging.getLogger(__name__)
# Error codes Graph uses for these statuses (https://learn.microsoft.com/graph/errors,
# https://learn.microsoft.com/graph/throttling).
_GRAPH_FAULT_ERRORS = {
    429: ("TooManyRequests", "Too many requests."),
    500: ("generalException", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The gateway timed out."),
}


@dataclass
class RecordedRequest:
    """One request as the fake received it (a ``$batch`` item is recorded on its own)."""

    method: str
    path: str  # without the query string, percent-encoding kept
    query_string: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    batch_part: bool = False
    batch_id: str | None = None  # the item's "id" within its $batch
    status: int | None = None  # None until answered, and for "reset" faults
    timestamp: float = field(default_factory=time.time)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    @property
    def query(self) -> dict[str, str]:
        return parse_query(self.query_string)

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Fault:
    """A failure to inject into matching requests.

    ``kind``:
      * ``"status"``: answer ``status`` with a service-shaped error body (and a
        ``Retry-After`` header when ``retry_after`` is set) without processing;
      * ``"reset"``: close the connection (TCP RST) before processing anything;
      * ``"truncate"``: process the request (side effects happen), then send a
        ``Content-Length`` larger than the body and close, as when a response
        is lost after the server acted;
      * ``"hang"``: stall ``delay`` seconds, then answer normally (a client
        timeout shorter than ``delay`` turns it into a timeout).

    ``match`` is ``None`` (any request), ``"METHOD substring"``, a path+query
    substring, or a predicate on the :class:`RecordedRequest`.  ``times`` is
    how many matching requests it affects (``None``: all).  With ``in_batch``
    the fault applies to matching ``$batch`` items (``status``/``hang`` only)
    rather than to top-level requests.
    """

    status: int = 429
    retry_after: int | None = None
    kind: FaultKind = "status"
    match: str | Callable[[RecordedRequest], bool] | None = None
    times: int | None = 1
    in_batch: bool = False
    delay: float = 0.0
    code: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("status", "reset", "truncate", "hang"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError("a status fault needs a 4xx or 5xx status")
        if self.in_batch and self.kind not in ("status", "hang"):
            raise ValueError("only status and hang faults can apply to $batch items")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be positive or None")

    def matches(self, request: RecordedRequest) -> bool:
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(request))
        method, _, rest = self.match.partition(" ")
        if rest and method.isalpha() and method.isupper():
            return request.method == method and rest in request.target
        return self.match in request.target


class MicrosoftServer:
    """Fake login.microsoftonline.com + graph.microsoft.com on one local TLS port."""

    def __init__(self, *, tenant: str = "contoso-tenant-id", max_batch: int = 20) -> None:
        self.tenant = tenant
        self.latency = 0.0
        self.default_user = DEFAULT_USER
        self.ca_path = ""
        self.url = ""
        self._lock = threading.RLock()
        self._identity = Identity(tenant, self._lock)
        self._graph = Graph(self._identity, self._lock, max_batch)
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self.add_user(DEFAULT_USER)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        self._tmpdir = tempfile.mkdtemp(prefix="fake-microsoft-")
        self.ca_path = os.path.join(self._tmpdir, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self)
        # Handshake lazily in the handler thread so a stalled client cannot
        # block the accept loop.
        httpd.socket = context.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self.url = f"https://localhost:{httpd.server_address[1]}"
        self._identity.base_url = self.url
        self._graph.base_url = self.graph_url
        self._stopping.clear()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-microsoft",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start() if self._httpd is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.tenant}"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    # -- knobs -----------------------------------------------------------------------

    @property
    def access_token_lifetime(self) -> int:
        return self._identity.access_token_lifetime

    @access_token_lifetime.setter
    def access_token_lifetime(self, seconds: int) -> None:
        with self._lock:
            self._identity.access_token_lifetime = seconds

    @property
    def device_code_lifetime(self) -> int:
        return self._identity.device_code_lifetime

    @device_code_lifetime.setter
    def device_code_lifetime(self, seconds: int) -> None:
        with self._lock:
            self._identity.device_code_lifetime = seconds

    @property
    def delta_expired_status(self) -> Literal[400, 410]:
        """Status of an expired deltaLink: 410 (with Location) or 400."""
        return self._graph.delta_expired_status  # type: ignore[return-value]

    @delta_expired_status.setter
    def delta_expired_status(self, status: Literal[400, 410]) -> None:
        if status not in (400, 410):
            raise ValueError("delta_expired_status must be 400 or 410")
        with self._lock:
            self._graph.delta_expired_status = status

    @property
    def default_page_size(self) -> int:
        """Page size of collections when the client sends no odata.maxpagesize/$top."""
        return self._graph.default_page_size

    @default_page_size.setter
    def default_page_size(self, size: int) -> None:
        with self._lock:
            self._graph.default_page_size = size

    # -- identity ------------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        certificate: str | bytes | None = None,
        name: str | None = None,
    ) -> None:
        """Register an app; with a secret and/or PEM certificate it is confidential.

        Unregistered client ids are accepted as public clients.  A confidential
        client must authenticate on every token request (client_secret in the
        body or HTTP Basic, or a client_assertion JWT; the assertion's signature
        is checked only when a certificate was registered).
        """
        with self._lock:
            self._identity.register_client(client_id, secret, certificate, name)

    def add_user(self, upn: str, *, user_id: str | None = None) -> str:
        """Add a user with a mailbox holding a default calendar; returns the object id."""
        with self._lock:
            user = self._identity.add_user(upn, user_id)
            self._graph.add_mailbox(user)
            return user.oid

    def user_id(self, user: str | None = None) -> str:
        with self._lock:
            return self._user(user).oid

    def approve_device_code(self, user: str | None = None, *, user_code: str | None = None) -> None:
        """Sign ``user`` in on the device-code page (the latest pending code by default)."""
        with self._lock:
            self._identity.approve_device_code(self._user(user), user_code)

    def decline_device_code(self, *, user_code: str | None = None) -> None:
        with self._lock:
            self._identity.decline_device_code(user_code)

    def revoke_refresh_tokens(
        self, user: str | None = None, *, error_code: Literal[50173, 70008] = 50173
    ) -> None:
        """Invalidate the user's refresh tokens: AADSTS50173 (revoked) or 70008 (expired)."""
        with self._lock:
            self._identity.revoke_refresh_tokens(self._user(user), error_code)

    def revoke_consent(self, client_id: str) -> None:
        """Refreshing then fails with AADSTS65001 until a device code is approved again."""
        with self._lock:
            self._identity.revoke_consent(client_id)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now rejected by Graph with 401."""
        with self._lock:
            self._identity.expire_access_tokens()

    def mint_access_token(
        self,
        user: str | None = None,
        *,
        client_id: str = "fake-test-client",
        scopes: Iterable[str] = DEFAULT_DELEGATED_PERMISSIONS,
        app_only: bool = False,
    ) -> str:
        """A Graph access token without going through MSAL (for Graph-only tests)."""
        with self._lock:
            if app_only:
                return self._identity.mint_access_token(client_id, None, APPLICATION_PERMISSIONS)
            return self._identity.mint_access_token(client_id, self._user(user), tuple(scopes))

    # -- graph store ----------------------------------------------------------------------

    def add_calendar(self, user: str, name: str, *, default: bool = False) -> str:
        with self._lock:
            return self._graph.add_calendar(self._user(user), name, default)

    def put_event(
        self, user: str, calendar_id: str | None, resource: Mapping[str, Any]
    ) -> JsonObject:
        """Insert or replace an event as the user would in Outlook.

        ``resource`` uses Graph's shape.  With an existing ``id`` the event is
        replaced (new change key); with an occurrence id it becomes an
        exception; otherwise it is inserted (under the given ``id`` if any).
        Unlike the API, seeding may set ``isCancelled``, ``responseStatus``,
        ``isOrganizer`` and ``iCalUId``.  ``calendar_id=None``: default calendar.
        Returns the event as Graph renders it (UTC, all extended properties).
        """
        with self._lock:
            try:
                return self._graph.put_event(self._user(user), calendar_id, resource)
            except GraphError as exc:
                raise (KeyError if exc.status == 404 else ValueError)(exc.message) from exc

    def delete_event(self, user: str, event_id: str) -> None:
        """Delete an event or series; an occurrence id cancels that occurrence."""
        with self._lock:
            try:
                self._graph.delete_event(self._user(user), event_id)
            except GraphError as exc:
                raise KeyError(exc.message) from exc

    def events(self, user: str, calendar_id: str | None = None) -> list[JsonObject]:
        """Stored events (single instances and series masters) in creation order.

        ``calendar_id=None`` lists every calendar of the mailbox.
        """
        with self._lock:
            return self._graph.list_events(self._user(user), calendar_id)

    @property
    def sent_mail(self) -> list[JsonObject]:
        """Copies of what was posted to sendMail: {"from", "message", "saveToSentItems", ...}."""
        with self._lock:
            return [dict(m) for m in self._graph.sent_mail]

    def expire_delta_tokens(self) -> None:
        """Every deltaLink issued so far now answers ``delta_expired_status``."""
        with self._lock:
            self._graph.expire_delta_tokens()

    # -- recording and faults -------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- internals ------------------------------------------------------------------------

    def _user(self, key: str | None) -> User:
        return self._identity.user(key or self.default_user)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_fault(self, request: RecordedRequest, *, in_batch: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.in_batch == in_batch and fault.matches(request):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _answer(self, request: RecordedRequest) -> tuple[Fault | None, Reply | None]:
        """The reply to a top-level request, and the fault (if any) shaping it."""
        fault: Fault | None = None
        try:
            fault = self._take_fault(request, in_batch=False)
            if fault is not None and fault.kind == "reset":
                return fault, None
            if fault is not None and fault.kind == "hang":
                self._stopping.wait(fault.delay)
            if self.latency:
                self._stopping.wait(self.latency)
            if fault is not None and fault.kind == "status":
                return fault, self._fault_reply(fault, request)
            return fault, self._dispatch(request)
        except Exception:  # a bug in the fake or a fault predicate: answer 500
            _log.exception("fake Microsoft server failed on %s %s", request.method, request.path)
            return fault, Reply.json(
                500, {"error": {"code": "FakeServerBug", "message": traceback.format_exc()}}
            )

    def _dispatch(self, request: RecordedRequest) -> Reply:
        if request.path == "/v1.0" or request.path.startswith("/v1.0/"):
            graph_request = GraphRequest(
                request.method,
                request.path[len("/v1.0"):] or "/",
                request.query,
                request.headers,
                request.body,
            )
            return self._graph.handle(graph_request, self._batch_item)
        segments = [unquote(s) for s in request.path.split("/") if s]
        with self._lock:
            reply = self._identity.handle(request.method, segments, request.headers, request.body)
        if reply is None:
            return Reply.json(404, {"error": "not_found", "error_description": request.path})
        return reply

    def _batch_item(
        self,
        item_id: str,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        run: Callable[[], Reply],
    ) -> Reply:
        path, _, query_string = target.partition("?")
        record = RecordedRequest(
            method, path, query_string, dict(headers), body, batch_part=True, batch_id=item_id
        )
        self._record(record)
        fault = self._take_fault(record, in_batch=True)
        if fault is not None and fault.kind == "status":
            reply = self._fault_reply(fault, record)
        else:
            if fault is not None:
                self._stopping.wait(fault.delay)
            reply = run()
        record.status = reply.status
        return reply

    def _fault_reply(self, fault: Fault, request: RecordedRequest) -> Reply:
        extra: tuple[tuple[str, str], ...] = ()
        if fault.retry_after is not None:
            extra = (("Retry-After", str(fault.retry_after)),)
        if request.path.startswith("/v1.0"):
            default = ("UnknownError", "Injected fault.")
            code, message = _GRAPH_FAULT_ERRORS.get(fault.status, default)
            return graph_error_reply(
                fault.status, fault.code or code, fault.message or message, request.headers, extra
            )
        if fault.status == 429:
            number, message = 50196, (
                "The server terminated an operation because it encountered a client "
                "request loop. Please contact your app vendor."
            )
        else:
            number, message = 90033, "A transient error has occurred. Please try again."
        error = IdentityError(
            fault.status,
            fault.code or "temporarily_unavailable",
            number,
            fault.message or message,
        )
        reply = self._identity.error_reply(
            error, request.headers.get("client-request-id", "00000000-0000-0000-0000-000000000000")
        )
        return Reply(reply.status, reply.headers + extra, reply.body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        owner: MicrosoftServer,
    ) -> None:
        super().__init__(address, handler)
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so handler threads end with the server."""
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeMicrosoft/1.0"
    timeout = 30
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY,
        # Nagle plus the client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.track(self.connection, open_=False)

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, OSError):
            # Handshake failures, clients that went away, and our own resets.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        split = urlsplit(self.path)
        headers = {
            name.lower(): ", ".join(self.headers.get_all(name) or [])
            for name in set(self.headers.keys())
        }
        record = RecordedRequest(self.command, split.path, split.query, headers, self._read_body())
        owner = self.server.owner
        owner._record(record)
        fault, reply = owner._answer(record)
        if reply is None:
            self._reset()
            return
        record.status = reply.status
        truncate = fault is not None and fault.kind == "truncate"
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.status != 204:
            length = len(reply.body) + (max(len(reply.body), 64) if truncate else 0)
            self.send_header("Content-Length", str(length))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.status != 204:
            self.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
        if truncate:
            self.wfile.flush()
            self.close_connection = True

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
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST.
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
