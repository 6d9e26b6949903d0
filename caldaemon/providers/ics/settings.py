"""``provider: ics``: a local .ics file (``path``) or a read-only feed (``url``).

A feed may need credentials: ``username`` with ``password_file`` or ``password_env``
(HTTP Basic, RFC 7617), or ``bearer_token_file`` (RFC 6750); and ``ca_file`` when its
server's certificate comes from a private CA. Secrets are never in the YAML, and never
in a URL: ``https://user:pass@host/…`` is refused, and no message repeats it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from caldaemon.fields import FilePath, SecretPath
from caldaemon.providers.settings import CalendarSettings, RawProblem

_FEED_ONLY = ("username", "password_file", "password_env", "bearer_token_file", "ca_file")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class IcsCalendar(CalendarSettings):
    provider: Literal["ics"]
    """ics: an .ics file (path) or a read-only feed (url), like the export of a practice-
    management system."""
    path: FilePath | None = None
    """The .ics file; caldaemon can write buffers to it. A relative path is relative to this
    file."""
    url: str | None = None
    """Or a feed's URL (https, or webcal); read-only. Never with a user name or password in it."""
    username: str | None = None
    """The feed's user name (HTTP Basic), with password_file or password_env."""
    password_file: SecretPath | None = None
    """A file holding the feed's password. A relative path is under $CREDENTIALS_DIRECTORY when
    set, else relative to this file."""
    password_env: str | None = None
    """Or an environment variable holding the feed's password."""
    bearer_token_file: SecretPath | None = None
    """Or a file holding a bearer token for the feed."""
    ca_file: SecretPath | None = None
    """A CA certificate file, for a feed whose server's certificate comes from a private CA."""

    @classmethod
    def problems(cls, raw: Mapping[str, Any]) -> Iterator[RawProblem]:
        if bool(raw.get("path")) == bool(raw.get("url")):
            yield (), "an ics calendar needs exactly one of 'path' or 'url'"
        url = raw.get("url")
        if isinstance(url, str) and url:
            yield from _url_problems(url, raw)
        elif not url:
            for key in _FEED_ONLY:
                if raw.get(key) is not None:
                    yield (key,), f"'{key}' is for a feed ('url'); a local file needs none"
        yield from _credential_problems(raw)

    @classmethod
    def read_only(cls, raw: Mapping[str, Any]) -> bool:
        return bool(raw.get("url"))


def _url_problems(url: str, raw: Mapping[str, Any]) -> Iterator[RawProblem]:
    """The URL's own problems. The URL is shown without its userinfo, query and
    fragment (DESIGN.md §5: they never appear anywhere)."""
    try:
        parts = urlsplit(url.strip())
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is not None and (parts.username is not None or parts.password is not None):
        yield (
            ("url",),
            "the URL holds a user name or password: remove it from the URL and set "
            "'username' and 'password_file' (or 'password_env') instead",
        )
        return
    shown = _shown(url)
    if not re.match(r"^(https?|webcals?)://", url.strip(), re.IGNORECASE):
        yield ("url",), f"{shown!r} is not an http(s) URL"
        return
    spaces = re.search(r"[\x00-\x20\x7f]", url.strip())
    if parts is None or not parts.hostname or not port_ok or spaces:
        yield ("url",), f"{shown!r} is not a valid URL"
        return
    plain = parts.scheme.lower() in ("http", "webcal")
    local = parts.hostname.lower() in _LOCAL_HOSTS
    secrets = ("password_file", "password_env", "bearer_token_file")
    secret = next((k for k in secrets if raw.get(k)), None)
    if plain and secret and not local:
        yield (
            (secret,),
            "credentials go only over https (or webcals): the URL is plain http, which "
            "would send them in the clear",
        )
    if plain and raw.get("ca_file"):
        yield ("ca_file",), "ca_file is for an https URL; this one is plain http"


def _credential_problems(raw: Mapping[str, Any]) -> Iterator[RawProblem]:
    username = raw.get("username")
    password = [k for k in ("password_file", "password_env") if raw.get(k) is not None]
    if len(password) > 1:
        yield ("password_env",), "use one of 'password_file' or 'password_env', not both"
    if username is not None and not password:
        yield (
            ("username",),
            "a username needs its password: set 'password_file' (a file holding it) or "
            "'password_env' (an environment variable holding it)",
        )
    if password and username is None:
        yield (password[0],), f"'{password[0]}' needs 'username' as well"
    if isinstance(username, str) and (":" in username or re.search(r"[\x00-\x1f\x7f]", username)):
        # RFC 7617 §2: a user-id with a colon cannot be sent with Basic authentication.
        yield ("username",), "a username cannot hold a colon or a control character"
    if raw.get("bearer_token_file") is not None and (username is not None or password):
        yield (
            ("bearer_token_file",),
            "use either 'bearer_token_file' or 'username' with a password, not both",
        )


def _shown(url: str) -> str:
    """The URL as a message may show it: no userinfo, query or fragment."""
    text = url.strip()
    text = re.sub(r"^([^:/?#]+://)[^/?#]*@", r"\1", text)
    return re.split(r"[?#]", text, maxsplit=1)[0][:200]
