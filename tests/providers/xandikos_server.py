"""A real Xandikos CalDAV server for the tests, in this process, on the harness Radicale
uses (:class:`~tests.providers.radicale_server.DavServer`).

Xandikos stores each collection as a git repository; its sync-tokens are commit ids, so
a collection made anew (a restored backup) knows none of the tokens issued before, and
it answers such a token with 412 and ``<DAV:valid-sync-token/>`` (xandikos/sync.py,
RFC 6578 §3.2). It does no authentication itself: its README has it run behind a
reverse proxy that does, which the Basic check here plays. Its WSGI adapter reads a
request body to the end of the stream, so the body is handed over bounded by
Content-Length, as gunicorn or uWSGI do.
"""

from __future__ import annotations

import base64
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xandikos.web import SingleUserFilesystemBackend, XandikosApp

from tests.providers.radicale_server import PASSWORD, USER, DavServer

_CREDENTIALS = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Xandikos(DavServer):
    name = "xandikos"
    home = f"/{USER}/calendars/"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        backend = SingleUserFilesystemBackend(str(folder))
        backend.create_principal(f"/{USER}/")
        (folder / USER / "calendars").mkdir(parents=True, exist_ok=True)
        super().__init__(_behind_proxy(XandikosApp(backend, f"/{USER}/")))


def _behind_proxy(application: Callable[..., Iterable[bytes]]) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_AUTHORIZATION") != _CREDENTIALS:
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="xandikos"'), ("Content-Length", "0")],
            )
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length) if length else b"")
        return application(environ, start_response)

    return app


@contextmanager
def xandikos_server() -> Iterator[Xandikos]:
    with tempfile.TemporaryDirectory(prefix="xandikos-") as folder:
        server = Xandikos(Path(folder))
        try:
            yield server
        finally:
            server.stop()
