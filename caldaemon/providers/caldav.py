"""``provider: caldav``: a calendar collection on a CalDAV server (RFC 4791): Nextcloud,
Fastmail, iCloud, Radicale, Baïkal, SOGo, …

A poll first asks whether anything changed, in one request: a sync-collection REPORT
with the collection's sync-token (RFC 6578) or, where the server has none, its getctag
(a CalendarServer extension). Only when something changed is the window read again,
whole: a calendar-query REPORT for the VEVENTs overlapping it (RFC 4791 §7.8, §9.9),
expanded here by :class:`caldaemon.ical.Reader`. Buffers are objects of their own,
written with PUT and DELETE under preconditions (RFC 9110 §13.1), so a user's edit is
never overwritten.

python-caldav finds the calendar when the configuration names it by display name or not
at all (principal, calendar-home-set); the rest is plain WebDAV over niquests (the HTTP
client python-caldav uses), so every request, its timeout and its retries are ours.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .. import ical
from ..config import secret
from ..errors import (
    AuthorizationError,
    CalendarError,
    ConfigError,
    RemoteGone,
    TransientError,
    WriteConflict,
)
from ..model import Buffer, Event
from ..retry import RetryVerdict, parse_retry_after, with_retries
from .base import OWNER_PROPERTY, Listing, Provider, ProviderContext, Remote, Window

if TYPE_CHECKING:
    import niquests

USER_AGENT = "caldaemon (+https://github.com/caldaemon/caldaemon)"
DAV, CALDAV, CS = "{DAV:}", "{urn:ietf:params:xml:ns:caldav}", "{http://calendarserver.org/ns/}"
_XML = {"Content-Type": "application/xml; charset=utf-8"}
_ICS = {"Content-Type": "text/calendar; charset=utf-8"}
_HEAD = '<?xml version="1.0" encoding="utf-8"?>'
_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'
_PROPS = (f'{_HEAD}<D:propfind {_NS} xmlns:CS="http://calendarserver.org/ns/"><D:prop>'
          "<D:resourcetype/><D:sync-token/><CS:getctag/></D:prop></D:propfind>").encode()
_GETETAG = f"{_HEAD}<D:propfind {_NS}><D:prop><D:getetag/></D:prop></D:propfind>".encode()
_FORBIDDEN = "the server does not let this user read the calendar (403)"


@dataclass(frozen=True)
class _Reply:
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


class _NotFound(CalendarError):
    """The collection answered 404."""


@dataclass(frozen=True)
class _Version:
    """A collection at one moment: its sync-token and its ctag."""

    sync: str | None
    ctag: str | None


class CaldavProvider(Provider):
    read_only = False
    batch = False

    def __init__(self, config: Any, context: ProviderContext) -> None:
        super().__init__(config, context)
        # Credentials never ride in the URL (they would end up in tokens and messages).
        self._url = _redact(str(config.url))
        self._fingerprint = hashlib.sha256("\0".join(
            (self._url, str(config.calendar), str(config.username))).encode()).hexdigest()[:16]
        self._timeout = config.timeout.total_seconds()
        self._session: niquests.Session | None = None
        self._collection: str | None = None
        self._seen: _Version | None = None  # read while finding the collection
        self._hrefs: dict[str, str] = {}  # UID → URL of the buffers in the last listing

    def describe(self) -> str:
        calendar = self.config.calendar
        if self._named_by_url:
            return _redact(urljoin(self._url, calendar))
        return f"{_redact(self._url)} calendar {calendar!r}" if calendar else _redact(self._url)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    @property
    def _named_by_url(self) -> bool:
        calendar = self.config.calendar or ""
        return calendar.startswith("/") or "://" in calendar

    # -- reading -----------------------------------------------------------------------

    def list(self, window: Window, token: str | None) -> Listing:
        known = _read_token(token, self._fingerprint)
        try:
            if known is None or not known[2].covers(window):
                return self._full(window, None)
            self._collection = self._collection or known[0]
            changed, version = self._changed(known[1])
            if changed:
                return self._full(window, version)
            return Listing((), (), self._token(version, known[2]), full=False)
        except _NotFound:
            if self._named_by_url or (not self.config.calendar and self._collection in (
                    None, _slash(self._url))):
                raise
            self._collection = None  # a calendar found by name has moved: look again
            return self._full(window, None)

    def _changed(self, old: _Version) -> tuple[bool, _Version | None]:
        """Whether the collection changed since ``old``, asked in one request; and the
        version seen (None: unknown, the full listing asks for it)."""
        collection = self._resolve()
        if old.sync:
            # RFC 6578 §3.2 (Depth: 0): the members changed since the token and a new
            # token; a reply without members means nothing changed.
            body = (f"{_HEAD}<D:sync-collection {_NS}><D:sync-token>{escape(old.sync)}"
                    "</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/>"
                    "</D:prop></D:sync-collection>")
            reply = self._send("REPORT", collection, body.encode(), {"Depth": "0", **_XML})
            if reply.status in (403, 409) and b"valid-sync-token" in reply.body:
                return True, None  # RFC 6578 §3.2: the token expired; read it all again
            root = self._multistatus(reply, collection)
            token = (root.findtext(f"{DAV}sync-token") or "").strip()
            version = _Version(token, None) if token else None
            return bool(root.findall(f"{DAV}response")) or version is None, version
        if old.ctag:
            version = self._version(collection)
            return version is None or version.ctag != old.ctag, version
        return True, None

    def _full(self, window: Window, version: _Version | None) -> Listing:
        collection = self._resolve()
        # The version is read before the events: a change made in between is seen by
        # the next poll rather than missed.
        version = version or self._seen or self._version(collection)
        self._seen = None
        if version is None:
            raise CalendarError(self.id, self.describe(),
                                f"{_redact(collection)} is not a calendar collection")
        source = self.describe()
        reader = ical.Reader(self.id, source, self.context.tz, self.context.self_addresses)
        events: list[Event] = []
        hrefs: dict[str, str] = {}
        for href, etag, data in self._query(collection, window):
            try:
                found = reader.events(ical.parse(data, self.id, source), window)
            except Exception as exc:  # one object never stops the others
                reason = exc.reason if isinstance(exc, CalendarError) else type(exc).__name__
                uid = re.search(rb"(?m)^UID[;:]([^\r\n]{1,120})", data)
                named = f" (UID {uid.group(1).decode(errors='replace')})" if uid else ""
                reader.note(f"skipped object {unquote(href)}{named}: {reason}")
                continue
            for event in found:
                if event.owner is not None:
                    # A buffer's etag is its object's ETag, which any edit changes
                    # (RFC 9110 §8.8.3): our writes send it back as If-Match.
                    event = replace(event, etag=etag)
                    hrefs[event.series or event.id] = urljoin(collection, href)
                events.append(event)
        self._hrefs = hrefs
        return Listing(tuple(events), (), self._token(version, window), full=True,
                       warnings=tuple(reader.warnings))

    def _query(self, collection: str, window: Window) -> list[tuple[str, str | None, bytes]]:
        """(href, ETag, data) of each object with a VEVENT overlapping the window
        (RFC 4791 §7.8 calendar-query; §9.9 time-range, in UTC)."""
        start, end = (t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
                      for t in (window.start, window.end))
        body = (f"{_HEAD}<C:calendar-query {_NS}><D:prop><D:getetag/><C:calendar-data/>"
                '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter '
                f'name="VEVENT"><C:time-range start="{start}" end="{end}"/></C:comp-filter>'
                "</C:comp-filter></C:filter></C:calendar-query>")
        reply = self._send("REPORT", collection, body.encode(), {"Depth": "1", **_XML})
        found = []
        for href, props in _members(self._multistatus(reply, collection)):
            data = _text(props.get(f"{CALDAV}calendar-data"))
            if data:
                found.append((href, _text(props.get(f"{DAV}getetag")), data.encode()))
        return found

    def _version(self, url: str, probe: bool = False) -> _Version | None:
        """The sync-token and ctag of ``url``; None when it is not a calendar (nor,
        ``probe``, when the server redirects elsewhere: a server's front page)."""
        reply = self._send("PROPFIND", url, _PROPS, {"Depth": "0", **_XML})
        if probe and 300 <= reply.status < 400:
            return None
        members = _members(self._multistatus(reply, url))
        props = members[0][1] if members else {}
        kind = props.get(f"{DAV}resourcetype")
        if kind is None or kind.find(f"{CALDAV}calendar") is None:
            return None
        return _Version(_text(props.get(f"{DAV}sync-token")), _text(props.get(f"{CS}getctag")))

    def _resolve(self) -> str:
        """The collection's URL: configured (``calendar`` as a URL, or ``url`` when it is
        a calendar), or found once through python-caldav (RFC 4791 §6.2.1) by display
        name, else the principal's first calendar."""
        if self._collection is None:
            calendar = self.config.calendar
            if self._named_by_url:
                self._collection = _slash(urljoin(self._url, calendar))
            elif not calendar and (seen := self._version(self._url, probe=True)) is not None:
                self._collection, self._seen = _slash(self._url), seen
            else:
                self._collection = self._discover(calendar)
        return self._collection

    def _discover(self, name: str | None) -> str:
        import caldav
        import niquests
        from caldav.lib import error as dav_error

        username, password = self._credentials()
        client = caldav.DAVClient(url=self._url, username=username, password=password,
                                  timeout=self._timeout, headers={"User-Agent": USER_AGENT},
                                  enable_rfc6764=False)
        try:
            found = with_retries(lambda: [(str(c.url), c.get_display_name() or "")
                                          for c in client.get_calendars()],
                                 classify=self._classify, sleep=self.context.sleep)
        except dav_error.AuthorizationError as exc:
            if getattr(exc, "status", 401) == 403:
                raise CalendarError(self.id, self.describe(), _FORBIDDEN) from None
            raise self._refused() from None
        except (dav_error.DAVError, niquests.exceptions.RequestException) as exc:
            kind = TransientError if self._classify(exc) else CalendarError
            why = type(exc).__name__ if isinstance(exc, dav_error.DAVError) else _network(exc)
            raise kind(self.id, self.describe(),
                       f"cannot find the account's calendars ({why})") from None
        finally:
            client.close()
        named = [url for url, display in found if name is None
                 or display.casefold() == name.casefold()]
        if named:
            return _slash(named[0])
        names = ", ".join(repr(d) for _, d in found if d) or "none"
        raise CalendarError(self.id, self.describe(), f"no calendar named {name!r} (found: "
                            f"{names})" if name else "the account has no calendars")

    def _token(self, version: _Version | None, window: Window) -> str:
        version = version or _Version(None, None)
        return json.dumps({"source": self._fingerprint, "collection": self._resolve(),
                           "sync": version.sync, "ctag": version.ctag,
                           "window": [window.start.isoformat(), window.end.isoformat()]})

    # -- writing -----------------------------------------------------------------------

    def create(self, buffer: Buffer, identity: str) -> Remote:
        uid = ical.buffer_uid(identity)
        href = self._href(uid)
        # If-None-Match: * creates and never replaces (RFC 4791 §5.3.2, RFC 9110 §13.1.2).
        reply = self._send("PUT", href, self._body(buffer, identity),
                           {"If-None-Match": "*", **_ICS})
        if reply.status in (200, 201, 204):
            return Remote(uid, reply.etag or self._etag(href))
        if reply.status == 412:
            # It exists: ours when an earlier create got through but its reply was lost.
            current = self._get(href)
            if current is not None and _ours(current.body):
                return Remote(uid, current.etag or self._etag(href))
        if reply.status in (403, 409, 412):
            raise WriteConflict(self.id, uid)  # 403/409: RFC 4791 §5.3.2.1 no-uid-conflict
        raise self._failed(reply, "create")

    def update(self, remote: Remote, buffer: Buffer, identity: str) -> Remote:
        href = self._href(remote.id)
        body = self._body(buffer, identity)
        reply = self._send("PUT", href, body, {"If-Match": self._if_match(remote), **_ICS})
        if reply.status in (200, 201, 204):
            return Remote(remote.id, reply.etag or self._etag(href))
        if reply.status in (404, 412):
            current = self._current(href, remote)
            if _ours(current.body) == _ours(body):
                # An update repeated after its reply was lost: it is done.
                return Remote(remote.id, current.etag or self._etag(href))
            raise WriteConflict(self.id, remote.id)
        raise self._failed(reply, "update")

    def delete(self, remote: Remote) -> None:
        href = self._href(remote.id)
        reply = self._send("DELETE", href, b"", {"If-Match": self._if_match(remote)})
        if reply.status in (404, 412):
            self._current(href, remote)
            raise WriteConflict(self.id, remote.id)
        if reply.status not in (200, 202, 204):
            raise self._failed(reply, "delete")

    def _if_match(self, remote: Remote) -> str:
        if not remote.etag:  # without one nothing proves the user left it alone
            raise WriteConflict(self.id, remote.id)
        return remote.etag

    def _current(self, href: str, remote: Remote) -> _Reply:
        """After a 412 (or 404): the object, or RemoteGone (If-Match fails on a missing
        resource too, RFC 9110 §13.1.1)."""
        current = self._get(href)
        if current is None:
            raise RemoteGone(self.id, remote.id)
        return current

    def _href(self, uid: str) -> str:
        return self._hrefs.get(uid) or urljoin(self._resolve(), quote(uid, safe="@") + ".ics")

    def _body(self, buffer: Buffer, identity: str) -> bytes:
        calendar = ical.icalendar.Calendar()
        calendar.add("PRODID", ical.PRODID)
        calendar.add("VERSION", "2.0")
        stamp = datetime.fromtimestamp(self.context.clock(), UTC)
        calendar.add_component(ical.buffer_component(buffer, identity, stamp))
        return bytes(calendar.to_ical())

    def _get(self, href: str) -> _Reply | None:
        reply = self._send("GET", href, b"", {"Accept": "text/calendar"})
        if reply.status not in (200, 404):
            raise self._failed(reply, "read")
        return reply if reply.status == 200 else None

    def _etag(self, href: str) -> str | None:
        """DAV:getetag, as a listing shows it, when the PUT reply had no ETag."""
        reply = self._send("PROPFIND", href, _GETETAG, {"Depth": "0", **_XML})
        members = _members(self._multistatus(reply, href))
        return _text(members[0][1].get(f"{DAV}getetag")) if members else None

    def _failed(self, reply: _Reply, what: str) -> CalendarError:
        return CalendarError(self.id, self.describe(),
                             f"cannot {what} a buffer: the server answered {reply.status}")

    # -- HTTP ----------------------------------------------------------------------------

    def _credentials(self) -> tuple[str | None, str | None]:
        try:
            password = secret(self.config.password_file, self.config.password_env,
                              what="the CalDAV password")
        except ConfigError as exc:
            raise CalendarError(self.id, self.describe(), exc.problems[0].message) from None
        return self.config.username, password

    def _client(self) -> niquests.Session:
        if self._session is None:
            import niquests

            self._session = niquests.Session()
            self._session.headers["User-Agent"] = USER_AGENT
            username, password = self._credentials()
            if username is not None and password is not None:
                # Basic from the first request spares a 401 round trip; a server that
                # asks for Digest only gets Digest (see _send).
                self._session.auth = niquests.auth.HTTPBasicAuth(username, password)
        return self._session

    def _send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> _Reply:
        import niquests

        def attempt() -> _Reply:
            session = self._client()
            response = session.request(method, url, data=body or None, headers=headers,
                                       timeout=self._timeout, allow_redirects=False)
            offered = {s.lower() for s in re.findall(r"(?:^|,)\s*(Basic|Digest)\b", response
                       .headers.get("WWW-Authenticate", ""), re.IGNORECASE)}
            if (response.status_code == 401 and offered == {"digest"}
                    and isinstance(session.auth, niquests.auth.HTTPBasicAuth)):
                session.auth = niquests.auth.HTTPDigestAuth(session.auth.username,
                                                            session.auth.password)
                return attempt()
            reply = _Reply(response.status_code or 0, response.headers, response.content or b"")
            # 501: the server does not do this at all; asking again cannot help.
            if reply.status in (408, 429) or (reply.status >= 500 and reply.status != 501):
                raise _Busy(reply)
            return reply

        try:
            reply = with_retries(attempt, classify=self._classify, sleep=self.context.sleep)
        except _Busy as exc:
            raise TransientError(self.id, self.describe(), f"the server answered "
                                 f"{exc.args[0].status}; trying again next poll") from None
        except niquests.exceptions.RequestException as exc:
            kind = TransientError if self._classify(exc) else CalendarError
            raise kind(self.id, self.describe(), _network(exc)) from None
        if reply.status == 401:
            self.close()  # the next poll reads the password again: it may be fixed by then
            raise self._refused()
        return reply

    def _classify(self, exc: BaseException) -> RetryVerdict | None:
        from caldav.lib import error as dav_error
        from niquests import exceptions

        if isinstance(exc, _Busy):
            return RetryVerdict(parse_retry_after(exc.args[0].headers.get("Retry-After"),
                                                  self.context.clock))
        if isinstance(exc, dav_error.RateLimitError):
            return RetryVerdict(exc.retry_after_seconds)
        if isinstance(exc, (exceptions.ConnectionError, exceptions.Timeout,
                            exceptions.ChunkedEncodingError)):
            return RetryVerdict()
        return None

    def _multistatus(self, reply: _Reply, url: str) -> ElementTree.Element:
        """A 207 reply's XML (RFC 4918 §13); CalendarError for anything else."""
        if reply.status == 404:
            raise _NotFound(self.id, self.describe(), f"{_redact(url)} does not exist (404)")
        if reply.status == 403:
            raise CalendarError(self.id, self.describe(), _FORBIDDEN)
        if 300 <= reply.status < 400:
            location = _redact(urljoin(url, reply.headers.get("Location", "")))
            raise CalendarError(self.id, self.describe(), f"the server redirects to "
                                f"{location}; put that URL in the configuration")
        if reply.status != 207:
            raise CalendarError(self.id, self.describe(),
                                f"the server answered {reply.status} to a WebDAV request")
        try:
            return ElementTree.fromstring(reply.body)
        except ElementTree.ParseError as exc:
            raise CalendarError(self.id, self.describe(),
                                f"the server's reply is not XML ({exc})") from None

    def _refused(self) -> AuthorizationError:
        who = f"user {self.config.username!r}" if self.config.username else "no username"
        return AuthorizationError(
            self.id, self.describe(), f"the server refused the login ({who}, HTTP 401); "
            f"check 'username' and 'password_file' (or 'password_env') of calendar {self.id!r}",
            f"caldaemon check --clinician {self.context.clinician}")


def _members(root: ElementTree.Element) -> list[tuple[str, dict[str, ElementTree.Element]]]:
    """(href, properties) of each DAV:response (RFC 4918 §14.16, §14.24); a response or
    propstat whose status is not 200 contributes nothing."""
    found = []
    for response in root.findall(f"{DAV}response"):
        if _status(response.findtext(f"{DAV}status")) not in (None, 200):
            continue
        props = {prop.tag: prop for propstat in response.findall(f"{DAV}propstat")
                 if _status(propstat.findtext(f"{DAV}status")) in (None, 200)
                 for prop in propstat.findall(f"{DAV}prop/*")}
        found.append(((response.findtext(f"{DAV}href") or "").strip(), props))
    return found


def _status(line: str | None) -> int | None:
    match = re.match(r"\s*HTTP/\S+\s+(\d{3})", line or "")
    return int(match.group(1)) if match else None


def _text(element: ElementTree.Element | None) -> str | None:
    return element.text.strip() if element is not None and element.text else None


def _ours(data: bytes) -> str | None:
    """What the object holds (ical.buffer_etag) when it is one of our buffers, else None."""
    try:
        vevents = [v for c in ical.parse(data, "", "") for v in c.walk("VEVENT")]
    except CalendarError:
        return None
    owned = len(vevents) == 1 and OWNER_PROPERTY in vevents[0]
    return ical.buffer_etag(vevents[0]) if owned else None


def _network(exc: BaseException) -> str:
    """What went wrong on the wire, without the URL."""
    from niquests import exceptions

    if isinstance(exc, exceptions.Timeout):
        return "the server did not answer in time"
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return f"cannot reach the server ({match.group(1).strip() if match else type(exc).__name__})"


def _redact(url: str) -> str:
    """A URL without credentials, query or fragment."""
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _read_token(token: str | None, fingerprint: str) -> tuple[str, _Version, Window] | None:
    """(collection, version, window) from a token of this configuration; None for no
    token, another configuration's or one we cannot read: that costs a full listing."""
    try:
        data = json.loads(token or "null")
        if data["source"] != fingerprint:
            return None
        start, end = (datetime.fromisoformat(t) for t in data["window"])
        return str(data["collection"]), _Version(data["sync"], data["ctag"]), Window(start, end)
    except (KeyError, TypeError, ValueError):
        return None
