"""A real Radicale CalDAV server for the tests, in this process.

Radicale's WSGI application is served by a threaded wsgiref server on 127.0.0.1 (port
chosen by the OS), with htpasswd authentication (plain passwords: no extra dependency)
and a temporary storage folder. Every request is recorded in ``requests``, so a test can
count what a provider sent. ``Radicale`` also acts as the user's own calendar app: it
makes calendars and PUTs and DELETEs objects with plain HTTP, never through the provider
under test.
"""

from __future__ import annotations

import base64
import socket
import socketserver
import tempfile
import threading
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

USER = "lee"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")


class Radicale:
    """A running server; see :func:`radicale_server`."""

    def __init__(self, folder: Path) -> None:
        users = folder / "users"
        users.write_text(f"{USER}:{PASSWORD}\n")
        configuration = radicale.config.load([])
        configuration.update(
            {
                "auth": {
                    "type": "htpasswd",
                    "htpasswd_filename": str(users),
                    "htpasswd_encryption": "plain",
                    "delay": "0",
                },
                "rights": {"type": "owner_only"},
                "storage": {"filesystem_folder": str(folder / "collections")},
                "logging": {"level": "warning", "mask_passwords": "True"},
            },
            "tests",
        )
        configuration.update({"storage": {"_filesystem_fsync": "False"}}, "tests", privileged=True)
        self.requests: list[Request] = []
        self.drop_put_etag = False  # a server that sends no ETag after PUT (RFC 4791 §5.3.4)
        self._faults: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        application = radicale.Application(configuration)
        self._server = make_server(
            "127.0.0.1", 0, self._counting(application), server_class=_Server, handler_class=_Quiet
        )
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()
        # Radicale makes the principal collection /lee/ at the user's first request.
        self.request("PROPFIND", f"/{USER}/", headers={"Depth": "0"})

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
            if fault is not None:
                record(f"{fault[0]} Injected", list(fault[1].items()))
                return [b""]
            return application(environ, record)

        return app

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` instead of serving them."""
        with self._lock:
            self._faults.extend([(status, {"Content-Length": "0", **(headers or {})})] * times)

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
            headers={"Authorization": f"Basic {token}", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return Reply(
                    reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
                )
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def make_calendar(self, name: str | None = None) -> str:
        """A new, empty calendar collection; returns its path (``/lee/<id>/``)."""
        path = f"/{USER}/{uuid.uuid4().hex}/"
        display = f"<D:displayname>{escape(name)}</D:displayname>" if name else ""
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
            b'<?xml version="1.0"?><D:propfind '
            b'xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>',
            {"Depth": "1", "Content-Type": "application/xml"},
        )
        found = [e.text or "" for e in ElementTree.fromstring(reply.body).iter("{DAV:}href")]
        return [h for h in found if h.rstrip("/") != collection.rstrip("/")]


def free_port() -> int:
    """A port nothing listens on (a server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def radicale_server() -> Iterator[Radicale]:
    with tempfile.TemporaryDirectory(prefix="radicale-") as folder:
        server = Radicale(Path(folder))
        try:
            yield server
        finally:
            server.stop()
