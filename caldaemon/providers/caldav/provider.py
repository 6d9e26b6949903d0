"""``provider: caldav``: a calendar collection on a CalDAV server (RFC 4791): Nextcloud,
Fastmail, iCloud, Radicale, Baïkal, SOGo, …

A poll first asks whether anything changed, in one request: a sync-collection REPORT
with the collection's sync-token (RFC 6578) or, where the server has none, its getctag
(a CalendarServer extension). Only when something changed is the window read again,
whole: a calendar-query REPORT for the VEVENTs overlapping it (RFC 4791 §7.8, §9.9),
expanded here by :class:`caldaemon.Reader`. Buffers are objects of their own,
written with PUT and DELETE under preconditions (RFC 9110 §13.1), so a user's edit is
never overwritten.

The WebDAV and HTTP side (session, retries, multistatus replies, request bodies, and
python-caldav finding a calendar named by display name or not at all) is in
:mod:`caldaemon.providers.caldav_http`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urljoin

import icalendar

from caldaemon.errors import CalendarError, RemoteGone, WriteConflict
from caldaemon.model import Buffer, Event, Remote, Window
from caldaemon.providers.base import OWNER_PROPERTY, Listing, Provider, ProviderContext
from caldaemon.providers.caldav.http import (
    CALDAV,
    CS,
    DAV,
    GETETAG_PROPS,
    ICS,
    VERSION_PROPS,
    XML,
    DavClient,
    NotFound,
    Reply,
    calendar_query,
    members,
    redact,
    slash,
    sync_collection,
    text,
)
from caldaemon.providers.caldav.settings import CaldavCalendar
from caldaemon.providers.ics.mapping import PRODID, buffer_component, buffer_etag, buffer_uid
from caldaemon.providers.ics.parse import parse
from caldaemon.providers.ics.reader import Reader


@dataclass(frozen=True)
class _Version:
    """A collection at one moment: its sync-token and its ctag."""

    sync: str | None
    ctag: str | None


class CaldavProvider(Provider):
    config: CaldavCalendar
    read_only = False
    batch = False

    def __init__(self, config: CaldavCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        # Credentials never ride in the URL (they would end up in tokens and messages).
        self._url = redact(str(config.url))
        self._fingerprint = hashlib.sha256(
            "\0".join((self._url, str(config.calendar), str(config.username))).encode()
        ).hexdigest()[:16]
        self._dav = DavClient(
            config,
            self._url,
            calendar_id=self.id,
            describe=self.describe,
            context=lambda: self.context,
        )
        self._collection: str | None = None
        self._seen: _Version | None = None  # read while finding the collection
        self._hrefs: dict[str, str] = {}  # UID → URL of the buffers in the last listing

    def describe(self) -> str:
        calendar = self.config.calendar
        if self._named_by_url:
            return redact(urljoin(self._url, calendar))
        return f"{redact(self._url)} calendar {calendar!r}" if calendar else redact(self._url)

    def close(self) -> None:
        self._dav.close()

    @property
    def _named_by_url(self) -> bool:
        calendar = self.config.calendar or ""
        return calendar.startswith("/") or "://" in calendar

    # -- reading -----------------------------------------------------------------------

    def changes(self, window: Window, token: str | None) -> Listing:
        known = _read_token(token, self._fingerprint)
        try:
            if known is None or not known[2].covers(window):
                return self._full(window, None)
            self._collection = self._collection or known[0]
            changed, version = self._changed(known[1])
            if changed:
                return self._full(window, version)
            return Listing((), (), self._token(version, known[2]), full=False)
        except NotFound:
            if self._named_by_url or (
                not self.config.calendar and self._collection in (None, slash(self._url))
            ):
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
            reply = self._dav.send(
                "REPORT", collection, sync_collection(old.sync), {"Depth": "0", **XML}
            )
            if reply.status in (403, 409) and b"valid-sync-token" in reply.body:
                return True, None  # RFC 6578 §3.2: the token expired; read it all again
            root = self._dav.multistatus(reply, collection)
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
            raise CalendarError(
                self.id, self.describe(), f"{redact(collection)} is not a calendar collection"
            )
        source = self.describe()
        reader = Reader(self.id, source, self.context.tz, self.context.self_addresses)
        events: list[Event] = []
        hrefs: dict[str, str] = {}
        for href, etag, data in self._query(collection, window):
            try:
                found = reader.events(parse(data, self.id, source), window)
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
        return Listing(
            tuple(events),
            (),
            self._token(version, window),
            full=True,
            warnings=tuple(reader.warnings),
        )

    def _query(self, collection: str, window: Window) -> list[tuple[str, str | None, bytes]]:
        """(href, ETag, data) of each object with a VEVENT overlapping the window
        (RFC 4791 §7.8 calendar-query; §9.9 time-range, in UTC)."""
        reply = self._dav.send(
            "REPORT", collection, calendar_query(window.start, window.end), {"Depth": "1", **XML}
        )
        found = []
        for href, props in members(self._dav.multistatus(reply, collection)):
            data = text(props.get(f"{CALDAV}calendar-data"))
            if data:
                found.append((href, text(props.get(f"{DAV}getetag")), data.encode()))
        return found

    def _version(self, url: str, probe: bool = False) -> _Version | None:
        """The sync-token and ctag of ``url``; None when it is not a calendar (nor,
        ``probe``, when the server redirects elsewhere: a server's front page)."""
        reply = self._dav.send("PROPFIND", url, VERSION_PROPS, {"Depth": "0", **XML})
        if probe and 300 <= reply.status < 400:
            return None
        found = members(self._dav.multistatus(reply, url))
        props = found[0][1] if found else {}
        kind = props.get(f"{DAV}resourcetype")
        if kind is None or kind.find(f"{CALDAV}calendar") is None:
            return None
        return _Version(text(props.get(f"{DAV}sync-token")), text(props.get(f"{CS}getctag")))

    def _resolve(self) -> str:
        """The collection's URL: configured (``calendar`` as a URL, or ``url`` when it is
        a calendar), or found once through python-caldav (RFC 4791 §6.2.1) by display
        name, else the principal's first calendar."""
        if self._collection is None:
            calendar = self.config.calendar
            if self._named_by_url:
                self._collection = slash(urljoin(self._url, calendar))
            elif not calendar and (seen := self._version(self._url, probe=True)) is not None:
                self._collection, self._seen = slash(self._url), seen
            else:
                self._collection = self._discover(calendar)
        return self._collection

    def _discover(self, name: str | None) -> str:
        found = self._dav.calendars()
        named = [
            url for url, display in found if name is None or display.casefold() == name.casefold()
        ]
        if named:
            return slash(named[0])
        names = ", ".join(repr(d) for _, d in found if d) or "none"
        raise CalendarError(
            self.id,
            self.describe(),
            f"no calendar named {name!r} (found: {names})"
            if name
            else "the account has no calendars",
        )

    def _token(self, version: _Version | None, window: Window) -> str:
        version = version or _Version(None, None)
        return json.dumps(
            {
                "source": self._fingerprint,
                "collection": self._resolve(),
                "sync": version.sync,
                "ctag": version.ctag,
                "window": [window.start.isoformat(), window.end.isoformat()],
            }
        )

    # -- writing -----------------------------------------------------------------------

    def create(self, buffer: Buffer, identity: str) -> Remote:
        uid = buffer_uid(identity)
        href = self._href(uid)
        # If-None-Match: * creates and never replaces (RFC 4791 §5.3.2, RFC 9110 §13.1.2).
        reply = self._dav.send(
            "PUT", href, self._body(buffer, identity), {"If-None-Match": "*", **ICS}
        )
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
        reply = self._dav.send("PUT", href, body, {"If-Match": self._if_match(remote), **ICS})
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
        reply = self._dav.send("DELETE", href, b"", {"If-Match": self._if_match(remote)})
        if reply.status in (404, 412):
            self._current(href, remote)
            raise WriteConflict(self.id, remote.id)
        if reply.status not in (200, 202, 204):
            raise self._failed(reply, "delete")

    def _if_match(self, remote: Remote) -> str:
        if not remote.etag:  # without one nothing proves the user left it alone
            raise WriteConflict(self.id, remote.id)
        return remote.etag

    def _current(self, href: str, remote: Remote) -> Reply:
        """After a 412 (or 404): the object, or RemoteGone (If-Match fails on a missing
        resource too, RFC 9110 §13.1.1)."""
        current = self._get(href)
        if current is None:
            raise RemoteGone(self.id, remote.id)
        return current

    def _href(self, uid: str) -> str:
        return self._hrefs.get(uid) or urljoin(self._resolve(), quote(uid, safe="@") + ".ics")

    def _body(self, buffer: Buffer, identity: str) -> bytes:
        calendar = icalendar.Calendar()
        calendar.add("PRODID", PRODID)
        calendar.add("VERSION", "2.0")
        stamp = datetime.fromtimestamp(self.context.clock(), UTC)
        calendar.add_component(buffer_component(buffer, identity, stamp))
        return bytes(calendar.to_ical())

    def _get(self, href: str) -> Reply | None:
        reply = self._dav.send("GET", href, b"", {"Accept": "text/calendar"})
        if reply.status not in (200, 404):
            raise self._failed(reply, "read")
        return reply if reply.status == 200 else None

    def _etag(self, href: str) -> str | None:
        """DAV:getetag, as a listing shows it, when the PUT reply had no ETag."""
        reply = self._dav.send("PROPFIND", href, GETETAG_PROPS, {"Depth": "0", **XML})
        found = members(self._dav.multistatus(reply, href))
        return text(found[0][1].get(f"{DAV}getetag")) if found else None

    def _failed(self, reply: Reply, what: str) -> CalendarError:
        return CalendarError(
            self.id, self.describe(), f"cannot {what} a buffer: the server answered {reply.status}"
        )


def _ours(data: bytes) -> str | None:
    """What the object holds (buffer_etag) when it is one of our buffers, else None."""
    try:
        vevents = [v for c in parse(data, "", "") for v in c.walk("VEVENT")]
    except CalendarError:
        return None
    owned = len(vevents) == 1 and OWNER_PROPERTY in vevents[0]
    return buffer_etag(vevents[0]) if owned else None


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
