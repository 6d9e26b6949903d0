"""WebDAV over HTTP for the caldav provider: the niquests session, requests with our
timeout and retries, multistatus replies (RFC 4918 §13) and the XML bodies of the
requests the provider sends.

python-caldav is used only to find the account's calendars (principal,
calendar-home-set); every other request is plain WebDAV over niquests (the HTTP client
python-caldav uses), so each request, its timeout and its retries are ours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from caldaemon.errors import AuthorizationError, CalendarError, ConfigError, TransientError
from caldaemon.retry import RetryVerdict, parse_retry_after, with_retries
from caldaemon.secret import read_secret

if TYPE_CHECKING:
    import niquests

    from caldaemon.providers.base import ProviderContext
    from caldaemon.providers.caldav.settings import CaldavCalendar

USER_AGENT = "caldaemon (+https://github.com/caldaemon/caldaemon)"
DAV, CALDAV, CS = "{DAV:}", "{urn:ietf:params:xml:ns:caldav}", "{http://calendarserver.org/ns/}"
XML = {"Content-Type": "application/xml; charset=utf-8"}
ICS = {"Content-Type": "text/calendar; charset=utf-8"}
_HEAD = '<?xml version="1.0" encoding="utf-8"?>'
_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'
#: PROPFIND for what tells a calendar collection and its version apart.
VERSION_PROPS = (
    f'{_HEAD}<D:propfind {_NS} xmlns:CS="http://calendarserver.org/ns/"><D:prop>'
    "<D:resourcetype/><D:sync-token/><CS:getctag/></D:prop></D:propfind>"
).encode()
#: PROPFIND for what the logged-in user may do (RFC 3744 §5.4).
PRIVILEGE_PROPS = (
    f"{_HEAD}<D:propfind {_NS}><D:prop><D:current-user-privilege-set/></D:prop></D:propfind>"
).encode()
GETETAG_PROPS = f"{_HEAD}<D:propfind {_NS}><D:prop><D:getetag/></D:prop></D:propfind>".encode()
_FORBIDDEN = "the server does not let this user read the calendar (403)"


def sync_collection(token: str) -> bytes:
    """RFC 6578 §3.2: the members changed since ``token``, with their ETags."""
    return (
        f"{_HEAD}<D:sync-collection {_NS}><D:sync-token>{escape(token)}"
        "</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/>"
        "</D:prop></D:sync-collection>"
    ).encode()


def calendar_query(start: datetime, end: datetime) -> bytes:
    """RFC 4791 §7.8: the objects with a VEVENT overlapping [start, end) (§9.9, in UTC),
    with their ETags and data."""
    start_utc, end_utc = (t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") for t in (start, end))
    return (
        f"{_HEAD}<C:calendar-query {_NS}><D:prop><D:getetag/><C:calendar-data/>"
        '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter '
        f'name="VEVENT"><C:time-range start="{start_utc}" end="{end_utc}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    ).encode()


def uid_query(uid: str) -> bytes:
    """RFC 4791 §7.8, §9.7.5: the objects whose VEVENT's UID contains ``uid`` (text-match
    is a substring match: callers compare the UID they get), with ETags and data."""
    return (
        f"{_HEAD}<C:calendar-query {_NS}><D:prop><D:getetag/><C:calendar-data/>"
        '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter '
        'name="VEVENT"><C:prop-filter name="UID"><C:text-match collation="i;octet">'
        f"{escape(uid)}</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter>"
        "</C:filter></C:calendar-query>"
    ).encode()


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


class NotFound(CalendarError):
    """The collection answered 404."""


class DavClient:
    """One provider's WebDAV requests, over a session opened on first use.

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
        self._session: niquests.Session | None = None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

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

    def session(self) -> niquests.Session:
        if self._session is None:
            import niquests

            self._session = niquests.Session()
            self._session.headers["User-Agent"] = USER_AGENT
            for adapter in self._session.adapters.values():
                if isinstance(adapter, niquests.adapters.HTTPAdapter):
                    # No idle_conn_watch_task thread per pool (urllib3-future's watcher of
                    # idle connections, which pings HTTP/2 and HTTP/3 peers): with a
                    # session per calendar it was a thread per calendar (issue 15). A kept
                    # connection is still checked when it is next taken from the pool.
                    adapter.poolmanager.connection_pool_kw["background_watch_delay"] = None
            username, password = self.credentials()
            if username is not None and password is not None:
                # Basic from the first request spares a 401 round trip; a server that
                # asks for Digest only gets Digest (see send).
                self._session.auth = niquests.auth.HTTPBasicAuth(username, password)
        return self._session

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        import niquests

        def attempt() -> Reply:
            session = self.session()
            response = session.request(
                method,
                url,
                data=body or None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
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
                and isinstance(session.auth, niquests.auth.HTTPBasicAuth)
            ):
                basic = session.auth
                session.auth = niquests.auth.HTTPDigestAuth(
                    _text(basic.username), _text(basic.password)
                )
                return attempt()
            reply = Reply(response.status_code or 0, response.headers, response.content or b"")
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
        except niquests.exceptions.RequestException as exc:
            kind = TransientError if self.classify(exc) else CalendarError
            raise kind(self.calendar_id, self.describe(), _network(exc)) from None
        if reply.status == 401:
            self.close()  # the next poll reads the password again: it may be fixed by then
            raise self.refused()
        return reply

    def calendars(self) -> list[tuple[str, str]]:
        """(URL, display name) of each of the account's calendars, found through
        python-caldav (RFC 4791 §6.2.1)."""
        import niquests
        from caldav.davclient import DAVClient
        from caldav.lib import error as dav_error

        username, password = self.credentials()
        client = DAVClient(
            url=self.url,
            username=username,
            password=password,
            timeout=math.ceil(self.timeout),
            headers={"User-Agent": USER_AGENT},
            enable_rfc6764=False,
        )
        try:
            return with_retries(
                lambda: [(str(c.url), _display_name(c)) for c in client.get_calendars()],
                classify=self.classify,
                sleep=self.context().sleep,
            )
        except dav_error.AuthorizationError as exc:
            if getattr(exc, "status", 401) == 403:
                raise CalendarError(self.calendar_id, self.describe(), _FORBIDDEN) from None
            raise self.refused() from None
        except (dav_error.DAVError, niquests.exceptions.RequestException) as exc:
            kind = TransientError if self.classify(exc) else CalendarError
            why = type(exc).__name__ if isinstance(exc, dav_error.DAVError) else _network(exc)
            raise kind(
                self.calendar_id, self.describe(), f"cannot find the account's calendars ({why})"
            ) from None
        finally:
            client.close()

    def privileges(self, url: str) -> list[str] | None:
        """The local names of the privileges in ``url``'s DAV:current-user-privilege-set
        (RFC 3744 §5.4: each DAV:privilege holds one), in the server's order; None when
        the server does not report the property."""
        reply = self.send("PROPFIND", url, PRIVILEGE_PROPS, {"Depth": "0", **XML})
        found = members(self.multistatus(reply, url))
        element = found[0][1].get(f"{DAV}current-user-privilege-set") if found else None
        if element is None:
            return None
        return [
            held.tag.rpartition("}")[2]
            for privilege in element.findall(f"{DAV}privilege")
            for held in privilege
        ]

    def classify(self, exc: BaseException) -> RetryVerdict | None:
        from caldav.lib import error as dav_error
        from niquests import exceptions

        if isinstance(exc, _Busy):
            return RetryVerdict(
                parse_retry_after(exc.args[0].headers.get("Retry-After"), self.context().clock)
            )
        if isinstance(exc, dav_error.RateLimitError):
            return RetryVerdict(exc.retry_after_seconds)
        if isinstance(
            exc, (exceptions.ConnectionError, exceptions.Timeout, exceptions.ChunkedEncodingError)
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


def members(root: ElementTree.Element) -> list[tuple[str, dict[str, ElementTree.Element]]]:
    """(href, properties) of each DAV:response (RFC 4918 §14.16, §14.24); a response or
    propstat whose status is not 200 contributes nothing."""
    found = []
    for response in root.findall(f"{DAV}response"):
        if _status(response.findtext(f"{DAV}status")) not in (None, 200):
            continue
        props = {
            prop.tag: prop
            for propstat in response.findall(f"{DAV}propstat")
            if _status(propstat.findtext(f"{DAV}status")) in (None, 200)
            for prop in propstat.findall(f"{DAV}prop/*")
        }
        found.append(((response.findtext(f"{DAV}href") or "").strip(), props))
    return found


def own_status(root: ElementTree.Element, url: str) -> int | None:
    """The status a multistatus gives the requested resource itself, when it has a
    DAV:response of its own with one: 404 (gone), 507 (RFC 6578 §3.6: the reply was cut
    short), a refused precondition, …; None when it has none."""
    path = unquote(urlsplit(url).path).rstrip("/")
    for response in root.findall(f"{DAV}response"):
        href = unquote(urlsplit((response.findtext(f"{DAV}href") or "").strip()).path)
        if href.rstrip("/") == path:
            status = _status(response.findtext(f"{DAV}status"))
            if status is not None:
                return status
    return None


def _status(line: str | None) -> int | None:
    match = re.match(r"\s*HTTP/\S+\s+(\d{3})", line or "")
    return int(match.group(1)) if match else None


def text(element: ElementTree.Element | None) -> str | None:
    return element.text.strip() if element is not None and element.text else None


def _network(exc: BaseException) -> str:
    """What went wrong on the wire, without the URL."""
    from niquests import exceptions

    if isinstance(exc, exceptions.Timeout):
        return "the server did not answer in time"
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return f"cannot reach the server ({match.group(1).strip() if match else type(exc).__name__})"


def _display_name(calendar: Any) -> str:
    """A calendar's display name (the synchronous client never answers a coroutine)."""
    name = calendar.get_display_name()
    return name if isinstance(name, str) else ""


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def redact(url: str) -> str:
    """A URL without credentials, query or fragment."""
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
