"""``provider: caldav``: a calendar collection on a CalDAV server (RFC 4791): Nextcloud,
Fastmail, iCloud, Radicale, Baïkal, SOGo, …

A poll first asks whether anything changed, in one request: a sync-collection REPORT
with the collection's sync-token (RFC 6578) or, where the server has none, its getctag
(a CalendarServer extension). Only when something changed is the window read again,
whole: a calendar-query REPORT for the VEVENTs overlapping it (RFC 4791 §7.8, §9.9),
expanded by :class:`~caldaemon.providers.ics.reader.Reader`. Buffers are objects of
their own, written with PUT and DELETE under preconditions (RFC 9110 §13.1), so a
user's edit is never overwritten.

A stored sync-token the server refuses in any form (Radicale 403, Xandikos 412, both
with ``<DAV:valid-sync-token/>``; any 4xx from others) or a sync reply cut short (RFC
6578 §3.6) costs a full listing, never a stuck calendar. No continuation is followed:
any change means the whole window is read again, so there is no chain that could loop;
a listing cut short is never taken for the whole window. An owner marker binds only to
the object caldaemon's write of it made: the event is ``owner`` only when its UID is
``buffer_uid(marker)``, else merely ``marked``.

Beside this module: the HTTP side (retries, bounds) in
:mod:`~caldaemon.providers.caldav.http`, over the account's shared session of
:mod:`~caldaemon.providers.caldav.session`; the request bodies and multistatus replies in
:mod:`~caldaemon.providers.caldav.webdav`; finding a calendar named by display name (or
not at all) in :mod:`~caldaemon.providers.caldav.discovery`; the stored sync token in
:mod:`~caldaemon.providers.caldav.tokens`; the objects written and how a marker binds,
in :mod:`~caldaemon.providers.caldav.objects`.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from urllib.parse import quote, urljoin

import icalendar

from caldaemon.errors import CalendarError, RemoteGone, TransientError, WriteConflict
from caldaemon.model import Buffer, Event, Remote, Window
from caldaemon.providers.base import Listing, Provider, ProviderContext, WriteAccess
from caldaemon.providers.caldav.discovery import calendar_named
from caldaemon.providers.caldav.http import DavClient, NotFound, Reply, redact, slash
from caldaemon.providers.caldav.objects import bind, bound_to, object_body, uids
from caldaemon.providers.caldav.settings import CaldavCalendar
from caldaemon.providers.caldav.tokens import Version, make_token, read_token, refused
from caldaemon.providers.caldav.webdav import (
    CALDAV,
    CS,
    DAV,
    GETETAG_PROPS,
    ICS,
    PRIVILEGE_PROPS,
    VERSION_PROPS,
    XML,
    calendar_query,
    members,
    own_status,
    sync_collection,
    text,
    uid_query,
)
from caldaemon.providers.ics.mapping import (
    block_ended,
    buffer_component,
    buffer_etag,
    buffer_uid,
)
from caldaemon.providers.ics.parse import parse
from caldaemon.providers.ics.reader import Reader

# Privileges that let caldaemon write buffers: DAV:bind adds them and DAV:write-content
# changes them, both within DAV:write and DAV:all (RFC 3744 §3.1-§3.3, §3.9); a server
# granting only one of the two (Radicale's write share grants write-content) still lets
# caldaemon write there.
_WRITING = frozenset({"all", "write", "write-content", "bind"})


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
        self._seen: Version | None = None  # read while finding the collection
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
        known = read_token(token, self._fingerprint)
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

    def _changed(self, old: Version) -> tuple[bool, Version | None]:
        """Whether the collection changed since ``old``, asked in one request; and the
        version seen (None: unknown, the full listing asks for it)."""
        collection = self._resolve()
        if old.sync:
            # RFC 6578 §3.2 (Depth: 0): the members changed since the token and a new
            # token; a reply without members means nothing changed.
            reply = self._dav.send(
                "REPORT", collection, sync_collection(old.sync), {"Depth": "0", **XML}
            )
            if refused(reply):
                return True, None
            root = self._dav.multistatus(reply, collection)
            if own_status(root, collection) not in (None, 200):
                # 507: cut short (RFC 6578 §3.6), its token names part of the changes;
                # any other: the token refused inside the multistatus. Read it all.
                return True, None
            token = (root.findtext(f"{DAV}sync-token") or "").strip()
            version = Version(token, None) if token else None
            return bool(root.findall(f"{DAV}response")) or version is None, version
        if old.ctag:
            version = self._version(collection)
            return version is None or version.ctag != old.ctag, version
        return True, None

    def _full(self, window: Window, version: Version | None) -> Listing:
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
        for number, (href, etag, data) in enumerate(self._query(collection, window), 1):
            try:
                found = reader.events(parse(data, self.id, source), window)
            except Exception as exc:  # one object never stops the others
                reason = exc.reason if isinstance(exc, CalendarError) else type(exc).__name__
                # Named by its place in the listing: its path and UID are often made from
                # the appointment's text (DESIGN.md §7).
                reader.note(f"skipped object {number} of the calendar: {reason}")
                continue
            for event in map(bind, found):
                if event.owner is not None:
                    # A buffer's etag is its object's ETag, which any edit changes
                    # (RFC 9110 §8.8.3): our writes send it back as If-Match.
                    event = replace(event, etag=etag)
                    hrefs[event.id] = urljoin(collection, href)
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
        root = self._dav.multistatus(reply, collection)
        if own_status(root, collection) == 507:
            # A listing the server cut short (RFC 4918 §11.5, as RFC 6578 §3.6 shows
            # it) must never pass for the whole window: its absent events would look
            # deleted. Nothing pages a calendar-query; try again next poll.
            raise TransientError(self.id, self.describe(), "the server cut the listing short (507)")
        found = []
        for href, props in members(root):
            data = text(props.get(f"{CALDAV}calendar-data"))
            if data:
                found.append((href, text(props.get(f"{DAV}getetag")), data.encode()))
        return found

    def _version(self, url: str, probe: bool = False) -> Version | None:
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
        return Version(text(props.get(f"{DAV}sync-token")), text(props.get(f"{CS}getctag")))

    def _resolve(self) -> str:
        """The collection's URL: configured (``calendar`` as a URL, or ``url`` when it is
        a calendar), or found once by display name, else the account's first calendar
        (:mod:`~caldaemon.providers.caldav.discovery`)."""
        if self._collection is None:
            calendar = self.config.calendar
            if self._named_by_url:
                self._collection = slash(urljoin(self._url, calendar))
            elif not calendar and (seen := self._version(self._url, probe=True)) is not None:
                self._collection, self._seen = slash(self._url), seen
            else:
                self._collection = calendar_named(self._dav, calendar)
        return self._collection

    def _token(self, version: Version | None, window: Window) -> str:
        return make_token(self._fingerprint, self._resolve(), version, window)

    def write_access(self) -> WriteAccess:
        """The collection's privileges for the logged-in user (RFC 3744 §5.4)."""
        held = self._privileges(self._resolve())
        if held is None:
            return WriteAccess(None, "the server does not report privileges (RFC 3744)")
        return WriteAccess(bool(_WRITING & set(held)), f"privileges: {', '.join(held) or 'none'}")

    def _privileges(self, url: str) -> list[str] | None:
        """The local names of the privileges in ``url``'s DAV:current-user-privilege-set
        (RFC 3744 §5.4: each DAV:privilege holds one), in the server's order; None when
        the server does not report the property."""
        reply = self._dav.send("PROPFIND", url, PRIVILEGE_PROPS, {"Depth": "0", **XML})
        found = members(self._dav.multistatus(reply, url))
        element = found[0][1].get(f"{DAV}current-user-privilege-set") if found else None
        if element is None:
            return None
        return [
            held.tag.rpartition("}")[2]
            for privilege in element.findall(f"{DAV}privilege")
            for held in privilege
        ]

    # -- writing -----------------------------------------------------------------------

    def create(self, buffer: Buffer, identity: str) -> Remote:
        uid = buffer_uid(identity)
        href = self._href(uid)
        # If-None-Match: * creates and never replaces (RFC 4791 §5.3.2, RFC 9110 §13.1.2).
        reply = self._dav.send(
            "PUT",
            href,
            object_body(self._component(buffer, identity)),
            {"If-None-Match": "*", **ICS},
        )
        if reply.status in (200, 201, 204):
            return Remote(uid, reply.etag or self._etag(href))
        if reply.status not in (403, 409, 412):
            raise self._failed(reply, "create")
        # 412: an object is at href. 403/409 (Radicale) or 412 (Xandikos) with
        # no-uid-conflict: one at another href holds the UID (RFC 4791 §5.3.2.1), which
        # neither server names, so it is looked up.
        held = self._holder(href, uid)
        if held is None:
            raise self._failed(reply, "create")
        where, etag, data = held
        master = bound_to(data, identity)
        if master is None:
            raise WriteConflict(self.id, uid)  # the user's object: never replaced
        if str(master.get("STATUS", "")).upper() == "CANCELLED":
            raise RemoteGone(self.id, uid)  # the next generation gets a new UID
        now = self.context.now()
        if buffer_etag(master) != buffer_etag(self._component(buffer, identity)) and (
            block_ended(master, now)
        ):
            # Ours, not what this create writes, and over: an earlier life of the buffer
            # (its record pruned). The next generation gets a new UID.
            raise RemoteGone(self.id, uid)
        # Ours, alive and as written: an earlier create got through but its reply was lost.
        self._hrefs[uid] = where
        return Remote(uid, etag or self._etag(where))

    def update(self, remote: Remote, buffer: Buffer, identity: str) -> Remote:
        href = self._href(remote.id)
        component = self._component(buffer, identity)
        reply = self._dav.send(
            "PUT", href, object_body(component), {"If-Match": self._if_match(remote), **ICS}
        )
        if reply.status in (200, 201, 204):
            return Remote(remote.id, reply.etag or self._etag(href))
        if reply.status in (404, 410):
            raise RemoteGone(self.id, remote.id)
        if reply.status == 412:
            current = self._current(href, remote)
            master = bound_to(current.body, identity)
            if master is not None and buffer_etag(master) == buffer_etag(component):
                # An update repeated after its reply was lost: it is done.
                return Remote(remote.id, current.etag or self._etag(href))
            raise WriteConflict(self.id, remote.id)
        raise self._failed(reply, "update")

    def delete(self, remote: Remote) -> None:
        href = self._href(remote.id)
        reply = self._dav.send("DELETE", href, b"", {"If-Match": self._if_match(remote)})
        if reply.status in (404, 410):
            raise RemoteGone(self.id, remote.id)
        if reply.status == 412:
            self._current(href, remote)
            raise WriteConflict(self.id, remote.id)
        if reply.status not in (200, 202, 204):
            raise self._failed(reply, "delete")

    def _if_match(self, remote: Remote) -> str:
        if not remote.etag:  # without one nothing proves the user left it alone
            raise WriteConflict(self.id, remote.id)
        return remote.etag

    def _current(self, href: str, remote: Remote) -> Reply:
        """After a 412: the object, or RemoteGone (If-Match fails on a missing resource
        too, RFC 9110 §13.1.1: Radicale and Xandikos answer a PUT so with 412)."""
        current = self._get(href)
        if current is None:
            raise RemoteGone(self.id, remote.id)
        return current

    def _holder(self, href: str, uid: str) -> tuple[str, str | None, bytes] | None:
        """(href, ETag, data) of the object holding ``uid``: at ``href``, else found by
        a calendar-query on its UID; None when there is none."""
        current = self._get(href)
        if current is not None:
            return href, current.etag, current.body
        collection = self._resolve()
        reply = self._dav.send("REPORT", collection, uid_query(uid), {"Depth": "1", **XML})
        for found, props in members(self._dav.multistatus(reply, collection)):
            data = (text(props.get(f"{CALDAV}calendar-data")) or "").encode()
            if uid in uids(data):  # text-match matches substrings too
                return urljoin(collection, found), text(props.get(f"{DAV}getetag")), data
        return None

    def _href(self, uid: str) -> str:
        return self._hrefs.get(uid) or urljoin(self._resolve(), quote(uid, safe="@") + ".ics")

    def _component(self, buffer: Buffer, identity: str) -> icalendar.Event:
        stamp = self.context.now()
        return buffer_component(buffer, identity, stamp)

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
