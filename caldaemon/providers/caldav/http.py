"""HTTP for the caldav provider: each WebDAV request sent over the account's shared
session (:mod:`~caldaemon.providers.caldav.session`) with our timeout, retries and bounds.

Every request is ours: no client library stands between the provider and the server, so
each one has the calendar's timeout (per read, and over the whole body between pieces),
our retries (:mod:`caldaemon.retry`), a bound on the size of its reply and, in
discovery, a bound on the redirects followed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit
from xml.etree import ElementTree

from caldaemon.errors import AuthorizationError, CalendarError, ConfigError, TransientError
from caldaemon.providers.caldav.session import Account, account_of
from caldaemon.providers.caldav.webdav import own_status
from caldaemon.providers.ics.parse import MAX_CALENDAR_BYTES
from caldaemon.retry import RetryVerdict, parse_retry_after, with_retries
from caldaemon.secret import read_secret

if TYPE_CHECKING:
    import requests
    import requests.auth

    from caldaemon.providers.base import ProviderContext
    from caldaemon.providers.caldav.settings import CaldavCalendar

# A reply holds at most a calendar's worth of objects (a calendar-query of the window),
# and a calendar is refused past this size when read from a file or feed too.
MAX_REPLY_BYTES = MAX_CALENDAR_BYTES
# Servers move a DAV root in a hop or two (RFC 6764 §5: /.well-known/caldav redirects to
# the context path); more is a loop or a trap.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PIECE = 64 * 1024
_FORBIDDEN = "the server does not let this user read the calendar (403)"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def etag(self) -> str | None:
        """A strong ETag or None: a weak one never matches If-Match (RFC 9110 §13.1.1),
        and a server that rewrote the object sends none (RFC 4791 §5.3.4)."""
        value = self.headers.get("ETag")
        return value if value and not value.startswith("W/") else None


class _Busy(Exception):
    """A reply worth trying again (408, 429, 5xx); ``args[0]`` is the reply."""


class _Slow(Exception):
    """The reply's body was still arriving when the timeout had passed."""


class _TooLarge(Exception):
    """The reply is larger than the bound; ``args[0]`` is the bound in bytes."""


class NotFound(CalendarError):
    """The collection answered 404."""


class DavClient:
    """One provider's WebDAV requests, over its account's shared session.

    Errors name the provider's calendar (``calendar_id``, ``describe()``). ``context()``
    is asked for the provider's context at each use rather than once, so a context
    swapped in later (another clock or sleep) is the one that counts."""

    def __init__(
        self,
        config: CaldavCalendar,
        url: str,
        *,
        calendar_id: str,
        describe: Callable[[], str],
        context: Callable[[], ProviderContext],
    ) -> None:
        self.config = config
        self.url = url
        self.calendar_id = calendar_id
        self.describe = describe
        self.context = context
        self.timeout = config.timeout.total_seconds()
        self._account: Account | None = None

    def close(self) -> None:
        """Lets go of the account's session; it closes when its last calendar does."""
        self._account = None

    def account(self) -> Account:
        if self._account is None:
            self._account = account_of(self.config, self.url)
        return self._account

    def _auth(self, account: Account) -> requests.auth.AuthBase | None:
        import requests.auth

        with account.lock:
            if not account.loaded:
                username, password = self.credentials()
                # Basic from the first request spares a 401 round trip; a server that
                # asks for Digest only gets Digest (see send).
                account.auth = (
                    requests.auth.HTTPBasicAuth(username, password)
                    if username is not None and password is not None
                    else None
                )
                account.loaded = True
            return account.auth

    def credentials(self) -> tuple[str | None, str | None]:
        try:
            password = read_secret(
                self.config.password_file, self.config.password_env, what="the CalDAV password"
            )
        except ConfigError as exc:
            raise CalendarError(
                self.calendar_id, self.describe(), exc.problems[0].message
            ) from None
        return self.config.username, password

    def send(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> Reply:
        import requests.auth

        def attempt() -> Reply:
            account = self.account()
            auth = self._auth(account)
            started = time.monotonic()
            response = account.session.request(
                method,
                url,
                data=body or None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
                auth=auth,
            )
            with response:
                offered = {
                    s.lower()
                    for s in re.findall(
                        r"(?:^|,)\s*(Basic|Digest)\b",
                        response.headers.get("WWW-Authenticate", ""),
                        re.IGNORECASE,
                    )
                }
                if (
                    response.status_code == 401
                    and offered == {"digest"}
                    and isinstance(auth, requests.auth.HTTPBasicAuth)
                ):
                    with account.lock:
                        if account.auth is auth:
                            account.auth = requests.auth.HTTPDigestAuth(
                                _text(auth.username), _text(auth.password)
                            )
                    return attempt()
                data = _body(response, max_bytes, started + self.timeout)
            reply = Reply(response.status_code, response.headers, data)
            # 501: the server does not do this at all; asking again cannot help.
            if reply.status in (408, 429) or (reply.status >= 500 and reply.status != 501):
                raise _Busy(reply)
            return reply

        try:
            reply = with_retries(attempt, classify=self.classify, sleep=self.context().sleep)
        except _Busy as exc:
            raise TransientError(
                self.calendar_id,
                self.describe(),
                f"the server answered {exc.args[0].status}; trying again next poll",
            ) from None
        except _TooLarge as exc:
            raise CalendarError(
                self.calendar_id,
                self.describe(),
                f"the server's reply to a {method} is larger than {_size(exc.args[0])}; "
                "refused unread",
            ) from None
        except (requests.exceptions.RequestException, _Slow) as exc:
            kind = TransientError if self.classify(exc) else CalendarError
            raise kind(self.calendar_id, self.describe(), _network(exc)) from None
        if reply.status == 401:
            with self.account().lock:  # the next request reads the password again
                self.account().loaded = False
            raise self.refused()
        return reply

    def follow(
        self, method: str, url: str, body: bytes, headers: dict[str, str], *, max_bytes: int
    ) -> tuple[str, Reply]:
        """``send``, following up to MAX_REDIRECTS redirects to the same method (a DAV
        root moved, RFC 6764 §5); the URL that answered and its reply. A redirect from
        https to http is refused: the password would travel in clear."""
        for _ in range(MAX_REDIRECTS + 1):
            reply = self.send(method, url, body, headers, max_bytes=max_bytes)
            location = reply.headers.get("Location")
            if reply.status not in _REDIRECTS or not location:
                return url, reply
            target = urljoin(url, location)
            if urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https":
                raise CalendarError(
                    self.calendar_id,
                    self.describe(),
                    f"the server redirects {redact(url)} to {redact(target)}, which is not "
                    "https; refused (the password would be sent in clear)",
                )
            url = target
        raise CalendarError(
            self.calendar_id,
            self.describe(),
            f"more than {MAX_REDIRECTS} redirects, the last to {redact(url)}",
        )

    def classify(self, exc: BaseException) -> RetryVerdict | None:
        import requests

        if isinstance(exc, _Busy):
            return RetryVerdict(
                parse_retry_after(exc.args[0].headers.get("Retry-After"), self.context().clock)
            )
        if isinstance(
            exc,
            (
                _Slow,
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ),
        ):
            return RetryVerdict()
        return None

    def multistatus(self, reply: Reply, url: str) -> ElementTree.Element:
        """A 207 reply's XML (RFC 4918 §13); CalendarError for anything else."""
        if reply.status == 404:
            raise NotFound(self.calendar_id, self.describe(), f"{redact(url)} does not exist (404)")
        if reply.status == 403:
            raise CalendarError(self.calendar_id, self.describe(), _FORBIDDEN)
        if 300 <= reply.status < 400:
            location = redact(urljoin(url, reply.headers.get("Location", "")))
            raise CalendarError(
                self.calendar_id,
                self.describe(),
                f"the server redirects to {location}; put that URL in the configuration",
            )
        if reply.status != 207:
            raise CalendarError(
                self.calendar_id,
                self.describe(),
                f"the server answered {reply.status} to a WebDAV request",
            )
        try:
            root = ElementTree.fromstring(reply.body)
        except ElementTree.ParseError as exc:
            raise CalendarError(
                self.calendar_id, self.describe(), f"the server's reply is not XML ({exc})"
            ) from None
        if own_status(root, url) == 404:
            # Xandikos answers a PROPFIND of a missing resource with 207 and a 404 inside.
            raise NotFound(self.calendar_id, self.describe(), f"{redact(url)} does not exist (404)")
        return root

    def refused(self) -> AuthorizationError:
        who = f"user {self.config.username!r}" if self.config.username else "no username"
        return AuthorizationError(
            self.calendar_id,
            self.describe(),
            f"the server refused the login ({who}, HTTP "
            f"401); check 'username' and 'password_file' (or 'password_env') of calendar "
            f"{self.calendar_id!r}",
            f"caldaemon check --clinician {self.context().clinician}",
        )


def _body(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    """The body, a piece at a time: refused once it passes ``max_bytes`` (as inflated,
    so a compressed bomb is refused too) or once ``deadline`` (monotonic) has passed
    between two pieces; each piece waits at most the timeout for the socket."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _TooLarge(max_bytes)
    pieces: list[bytes] = []
    size = 0
    for piece in response.iter_content(_PIECE):
        size += len(piece)
        if size > max_bytes:
            raise _TooLarge(max_bytes)
        if time.monotonic() > deadline:
            raise _Slow()
        pieces.append(piece)
    return b"".join(pieces)


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count} bytes"


def _network(exc: BaseException) -> str:
    """What went wrong on the wire, without the URL."""
    import requests

    if isinstance(exc, (_Slow, requests.exceptions.Timeout)):
        return "the server did not answer in time"
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return f"cannot reach the server ({match.group(1).strip() if match else type(exc).__name__})"


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def redact(url: str) -> str:
    """A URL without credentials, query or fragment."""
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
