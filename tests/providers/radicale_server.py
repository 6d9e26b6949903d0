"""Real CalDAV servers for the tests, in this process: Radicale here, Xandikos in
``xandikos_server.py``, both on one harness (:class:`DavServer`).

A server's own WSGI application is served by a threaded wsgiref server on 127.0.0.1
(port chosen by the OS) over a temporary storage folder. Every request is recorded in
``requests``, so a test can count what a provider sent; ``fail_next`` answers the next
requests with a status instead, and ``rewrite_next`` changes the next reply to a method
(a reply a real server may give but these two never do, such as a truncated multistatus;
a rewrite that sets ``content-length`` to "" sends the body without one, to the end of
the connection as HTTP/1.0 allows).
The server object also acts as the user's own calendar app: it makes calendars and PUTs
and DELETEs objects with plain HTTP, never through the provider under test.
"""

from __future__ import annotations

import base64
import gzip
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import radicale
import radicale.config
import trustme

USER = "lee"
PASSWORD = "correct horse battery staple"
PROPFIND_ETAGS = (
    b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")


Rewrite = Callable[[Reply], Reply]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class DavServer:
    """A running CalDAV server. Subclasses build the application and say where a user's
    calendars live (``home``)."""

    #: The collection under which :meth:`make_calendar` makes calendars.
    home: str
    #: What a test may call it (pytest ids, messages).
    name: str

    def __init__(
        self, application: Callable[..., Iterable[bytes]], tls: trustme.CA | None = None
    ) -> None:
        """``tls``: serve https with a certificate of this CA (the client side of a test
        trusts it through REQUESTS_CA_BUNDLE)."""
        self.requests: list[Request] = []
        self.drop_put_etag = False  # a server that sends no ETag after PUT (RFC 4791 §5.3.4)
        self._faults: list[tuple[int, dict[str, str]]] = []
        self._rewrites: list[tuple[str, Rewrite]] = []
        #: What a rewrite raised (its request then fails with 500): a test checks it is empty.
        self.rewrite_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._server = make_server(
            "127.0.0.1", 0, self._counting(application), server_class=_Server, handler_class=_Quiet
        )
        self.port = self._server.server_address[1]
        self._client_tls: ssl.SSLContext | None = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.issue_cert("127.0.0.1").configure_cert(context)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self._client_tls = ssl.create_default_context()
            tls.configure_trust(self._client_tls)
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()
        self._wait_ready()

    def _wait_ready(self, deadline: float = 10.0) -> None:
        """Poll the user's principal until it answers a multistatus (no sleeping: each
        attempt waits on the socket); Radicale also makes the principal at this request."""
        until = time.monotonic() + deadline
        while True:
            try:
                reply = self.request("PROPFIND", f"/{USER}/", PROPFIND_ETAGS, {"Depth": "0"})
                if reply.status == 207:
                    return
            except OSError:
                pass
            if time.monotonic() > until:
                raise RuntimeError(f"{self.name} did not answer within {deadline} s")

    def _counting(self, application: Callable[..., Iterable[bytes]]) -> Callable[..., Any]:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            method = environ["REQUEST_METHOD"]

            def record(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                with self._lock:
                    self.requests.append(
                        Request(method, environ.get("PATH_INFO", ""), int(status.split()[0]))
                    )
                if method == "PUT" and self.drop_put_etag:
                    headers = [(k, v) for k, v in headers if k.lower() != "etag"]
                return start_response(status, headers, *rest)

            with self._lock:
                fault = self._faults.pop(0) if self._faults else None
                rewrite = next((r for m, r in self._rewrites if m == method), None)
                if rewrite is not None and fault is None:
                    self._rewrites.remove((method, rewrite))
            if fault is not None:
                record(f"{fault[0]} Injected", list(fault[1].items()))
                return [b""]
            if rewrite is None:
                return application(environ, record)
            return self._rewritten(application, environ, record, rewrite)

        return app

    def _rewritten(
        self,
        application: Callable[..., Iterable[bytes]],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        rewrite: Rewrite,
    ) -> Iterable[bytes]:
        seen: list[tuple[str, list[tuple[str, str]]]] = []
        body = b"".join(application(environ, lambda s, h, *rest: seen.append((s, h))))
        [(status, headers)] = seen
        named = {k.lower(): v for k, v in headers}
        if named.pop("content-encoding", "") == "gzip":  # Radicale's, when asked for it
            body = gzip.decompress(body)
        try:
            reply = rewrite(Reply(int(status.split()[0]), named, body))
        except Exception as exc:
            self.rewrite_errors.append(exc)
            raise
        kept = [(k, v) for k, v in reply.headers.items() if k != "content-length"]
        if reply.headers.get("content-length") != "":
            kept.append(("Content-Length", str(len(reply.body))))
        start_response(f"{reply.status} Rewritten", kept)
        # In pieces: wsgiref gives a one-piece body a Content-Length of its own.
        return [reply.body[i : i + 65536] for i in range(0, len(reply.body), 65536)] or [b""]

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` instead of serving them."""
        with self._lock:
            self._faults.extend([(status, {"Content-Length": "0", **(headers or {})})] * times)

    def rewrite_next(self, method: str, rewrite: Rewrite) -> None:
        """Pass the server's reply to the next ``method`` request through ``rewrite``."""
        with self._lock:
            self._rewrites.append((method, rewrite))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- as the user's own client ------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        password: str = PASSWORD,
    ) -> Reply:
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        request = urllib.request.Request(
            self.base + path,
            data=body or None,
            method=method,
            headers={
                "Authorization": f"Basic {token}",
                "Content-Type": "application/xml",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self._client_tls) as reply:
                return Reply(
                    reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
                )
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def make_calendar(
        self, name: str | None = None, path: str | None = None, components: str = ""
    ) -> str:
        """A new, empty calendar collection (at ``path``, else under ``home``) that takes
        the ``components`` named (say "VTODO"; default: the server's choice); returns its
        path."""
        path = path or f"{self.home}{uuid.uuid4().hex}/"
        display = f"<D:displayname>{escape(name)}</D:displayname>" if name else ""
        if components:
            display += (
                "<C:supported-calendar-component-set>"
                + "".join(f'<C:comp name="{c}"/>' for c in components.split())
                + "</C:supported-calendar-component-set>"
            )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:set><D:prop>{display}</D:prop></D:set></C:mkcalendar>"
        ).encode()
        reply = self.request("MKCALENDAR", path, body, {"Content-Type": "application/xml"})
        assert reply.status == 201, reply
        return path

    def put(self, href: str, ics: str, headers: dict[str, str] | None = None) -> Reply:
        reply = self.request(
            "PUT",
            href,
            ics.encode(),
            {"Content-Type": "text/calendar; charset=utf-8", **(headers or {})},
        )
        assert reply.status in (201, 204), reply
        return reply

    def get(self, href: str) -> Reply:
        return self.request("GET", href)

    def delete(self, href: str) -> Reply:
        reply = self.request("DELETE", href)
        assert reply.status in (200, 204), reply
        return reply

    def hrefs(self, collection: str) -> list[str]:
        """The object paths in a collection (PROPFIND Depth: 1)."""
        reply = self.request(
            "PROPFIND",
            collection,
            PROPFIND_ETAGS,
            {"Depth": "1", "Content-Type": "application/xml"},
        )
        found = [e.text or "" for e in ElementTree.fromstring(reply.body).iter("{DAV:}href")]
        return [h for h in found if h.rstrip("/") != collection.rstrip("/")]

    def objects(self, collection: str) -> dict[str, str]:
        """Every object of a collection by path: a backup, as a user's app makes one."""
        return {href: self.get(href).body.decode() for href in self.hrefs(collection)}

    def restore(self, collection: str, backup: dict[str, str]) -> None:
        """The collection deleted and made anew from ``backup``, as a server restored
        from a backup is: same path, same objects, none of its sync history."""
        self.delete(collection)
        self.make_calendar(path=collection)
        for href, ics in backup.items():
            self.put(href, ics)


class Radicale(DavServer):
    """Radicale with htpasswd authentication (plain passwords: no extra dependency)."""

    name = "radicale"
    home = f"/{USER}/"

    def __init__(
        self, folder: Path, rights: str | None = None, tls: trustme.CA | None = None
    ) -> None:
        """``rights``: a rights file (Radicale's ``from_file``) instead of owner_only;
        ``tls``: over https (see :class:`DavServer`)."""
        self.folder = folder
        users = folder / "users"
        users.write_text(f"{USER}:{PASSWORD}\n")
        checked: dict[str, str] = {"type": "owner_only"}
        if rights is not None:
            (folder / "rights").write_text(rights)
            checked = {"type": "from_file", "file": str(folder / "rights")}
        configuration = radicale.config.load([])
        configuration.update(
            {
                "auth": {
                    "type": "htpasswd",
                    "htpasswd_filename": str(users),
                    "htpasswd_encryption": "plain",
                    "delay": "0",
                },
                "rights": checked,
                "storage": {"filesystem_folder": str(folder / "collections")},
                "logging": {"level": "warning", "mask_passwords": "True"},
            },
            "tests",
        )
        configuration.update({"storage": {"_filesystem_fsync": "False"}}, "tests", privileged=True)
        super().__init__(radicale.Application(configuration), tls)

    def forget_sync_tokens(self) -> None:
        """Radicale keeps the collection states its sync-tokens name in
        ``.Radicale.cache/sync-token`` (a cache its documentation lets admins delete, and
        backups often leave out): without it every token issued so far is unknown."""
        for cache in (self.folder / "collections").rglob(".Radicale.cache"):
            shutil.rmtree(cache / "sync-token", ignore_errors=True)


def free_port() -> int:
    """A port nothing listens on (a server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def radicale_server(rights: str | None = None, tls: trustme.CA | None = None) -> Iterator[Radicale]:
    with tempfile.TemporaryDirectory(prefix="radicale-") as folder:
        server = Radicale(Path(folder), rights, tls)
        try:
            yield server
        finally:
            server.stop()
