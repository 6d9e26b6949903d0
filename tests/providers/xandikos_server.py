"""A real Xandikos CalDAV server for the tests, in this process, on the harness Radicale
uses (:class:`~tests.providers.radicale_server.DavServer`).

Xandikos stores each collection as a git repository; its sync-tokens are commit ids, so
a collection made anew (a restored backup) knows none of the tokens issued before, and
it answers such a token with 412 and ``<DAV:valid-sync-token/>`` (xandikos/sync.py,
RFC 6578 §3.2). It does no authentication itself: its README has it run behind a
reverse proxy that does, which the Basic check here plays. Its WSGI adapter reads a
request body to the end of the stream, so the body is handed over bounded by
Content-Length, as gunicorn or uWSGI do. ``/.well-known/caldav`` redirects to the
principal before any login, as Xandikos' own WellknownRedirector does in front of it
(RFC 6764 §5). With ``digest=True`` the proxy asks for HTTP Digest only (RFC 7616, MD5
with qop=auth), as some servers still do.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xandikos.web import SingleUserFilesystemBackend, XandikosApp
from xandikos.wsgi_helpers import WellknownRedirector

from tests.providers.radicale_server import PASSWORD, USER, DavServer, Reply

_CREDENTIALS = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Xandikos(DavServer):
    name = "xandikos"
    home = f"/{USER}/calendars/"

    def __init__(self, folder: Path, digest: bool = False) -> None:
        self.folder = folder
        self.digest = digest
        backend = SingleUserFilesystemBackend(str(folder))
        backend.create_principal(f"/{USER}/")
        (folder / USER / "calendars").mkdir(parents=True, exist_ok=True)
        checked = _behind_proxy(XandikosApp(backend, f"/{USER}/"), digest)
        super().__init__(WellknownRedirector(checked, f"/{USER}/"))

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        password: str = PASSWORD,
    ) -> Reply:
        """As the user's own client; behind the Digest proxy it signs in with Digest."""
        if not self.digest:
            return super().request(method, path, body, headers, password=password)
        first = super().request(method, path, body, headers, password=password)
        challenge = dict(re.findall(r'(\w+)="([^"]*)"', first.headers.get("www-authenticate", "")))
        answer = _digest_header(method, path, challenge["realm"], challenge["nonce"], password)
        return super().request(
            method, path, body, {**(headers or {}), "Authorization": answer}, password=password
        )


def _digest(*parts: str) -> str:
    return hashlib.md5(":".join(parts).encode()).hexdigest()


def _digest_header(method: str, path: str, realm: str, nonce: str, password: str) -> str:
    cnonce, count = secrets.token_hex(8), "00000001"
    response = _digest(
        _digest(USER, realm, password), nonce, count, cnonce, "auth", _digest(method, path)
    )
    return (
        f'Digest username="{USER}", realm="{realm}", nonce="{nonce}", uri="{path}", '
        f'response="{response}", qop=auth, nc={count}, cnonce="{cnonce}", algorithm=MD5'
    )


def _digest_valid(header: str, method: str, nonces: set[str]) -> bool:
    """An Authorization: Digest header that proves the password (RFC 7616 §3.4.1)."""
    if not header.startswith("Digest "):
        return False
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[len("Digest ") :]))
    if fields.get("username") != USER or fields.get("nonce") not in nonces:
        return False
    expected = _digest(
        _digest(USER, "xandikos", PASSWORD),
        fields["nonce"],
        fields.get("nc", ""),
        fields.get("cnonce", ""),
        fields.get("qop", ""),
        _digest(method, fields.get("uri", "")),
    )
    return secrets.compare_digest(expected, fields.get("response", ""))


def _behind_proxy(application: Callable[..., Iterable[bytes]], digest: bool) -> Callable[..., Any]:
    nonces: set[str] = set()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get("HTTP_AUTHORIZATION", "")
        if digest:
            allowed = _digest_valid(given, environ["REQUEST_METHOD"], nonces)
        else:
            allowed = given == _CREDENTIALS
        if not allowed:
            nonce = secrets.token_hex(16)
            nonces.add(nonce)
            challenge = (
                f'Digest realm="xandikos", nonce="{nonce}", qop="auth", algorithm=MD5'
                if digest
                else 'Basic realm="xandikos"'
            )
            start_response(
                "401 Unauthorized", [("WWW-Authenticate", challenge), ("Content-Length", "0")]
            )
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length) if length else b"")
        return application(environ, start_response)

    return app


@contextmanager
def xandikos_server(digest: bool = False) -> Iterator[Xandikos]:
    with tempfile.TemporaryDirectory(prefix="xandikos-") as folder:
        server = Xandikos(Path(folder), digest)
        try:
            yield server
        finally:
            server.stop()
