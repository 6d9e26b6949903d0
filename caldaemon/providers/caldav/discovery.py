"""Finding an account's calendars on a CalDAV server, for a calendar configured by
display name (or not named at all: the account's first calendar).

The steps are the ones RFC 6764 §6 gives a client that knows only a server and a user:

1. the context path: ``/.well-known/caldav`` (RFC 6764 §5, which servers redirect to
   their DAV root), asked only when the configured URL is a bare host; otherwise, or
   when the server does not know it, the configured URL itself;
2. the user's principal: its DAV:current-user-principal (RFC 5397 §3); a server without
   the property is taken to have the configured URL as the principal;
3. the principal's CALDAV:calendar-home-set (RFC 4791 §6.2.1), one URL or several;
4. the home's members (PROPFIND, Depth: 1) whose DAV:resourcetype holds CALDAV:calendar
   and whose CALDAV:supported-calendar-component-set, when there is one, names VEVENT
   (RFC 4791 §5.2.3: without it a calendar takes every component): a task list is not
   where appointments are.

Each reply is bounded (MAX_DISCOVERY_BYTES) and each step follows at most
:data:`~caldaemon.providers.caldav.http.MAX_REDIRECTS` redirects.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from caldaemon.errors import CalendarError
from caldaemon.providers.caldav.http import DavClient, NotFound, Reply, redact, slash
from caldaemon.providers.caldav.webdav import (
    CALDAV,
    COLLECTION_PROPS,
    DAV,
    HOME_PROPS,
    PRINCIPAL_PROPS,
    XML,
    hrefs,
    members,
    same_path,
    text,
)

# A discovery reply holds a few properties per calendar: 4 MiB is tens of thousands of
# calendars, far past any account, and still a bound on what a broken server can send.
MAX_DISCOVERY_BYTES = 4 * 1024 * 1024
WELL_KNOWN = "/.well-known/caldav"


@dataclass(frozen=True)
class Found:
    """A calendar of the account: its collection's URL and display name ("" when none)."""

    url: str
    name: str


def calendar_named(dav: DavClient, name: str | None) -> str:
    """The URL of the account's calendar whose display name is ``name`` (compared
    without case), or of its first calendar when ``name`` is None. A name no calendar
    has, or that two have, is an error that says what the account holds."""
    found = find_calendars(dav)
    named = [f for f in found if name is None or f.name.casefold() == name.casefold()]
    if name is not None and len(named) > 1:
        urls = ", ".join(redact(f.url) for f in named)
        raise CalendarError(
            dav.calendar_id,
            dav.describe(),
            f"{len(named)} calendars are named {name!r} ({urls}); put the URL of the one "
            "meant in 'calendar'",
        )
    if named:
        return slash(named[0].url)
    names = ", ".join(repr(f.name) for f in found if f.name) or "none"
    raise CalendarError(
        dav.calendar_id,
        dav.describe(),
        f"no calendar named {name!r} (found: {names})" if name else "the account has no calendars",
    )


def find_calendars(dav: DavClient) -> list[Found]:
    """The account's calendars that may hold events, in the server's order."""
    principal = None
    if urlsplit(dav.url).path in ("", "/"):
        principal = _principal(dav, urljoin(dav.url, WELL_KNOWN), well_known=True)
    if principal is None:
        principal = _principal(dav, dav.url, well_known=False) or dav.url
    found: list[Found] = []
    for home in _homes(dav, principal):
        found.extend(f for f in _calendars(dav, home) if f.url not in {g.url for g in found})
    return found


def _propfind(dav: DavClient, url: str, body: bytes, depth: str) -> tuple[str, Reply]:
    return dav.follow("PROPFIND", url, body, {"Depth": depth, **XML}, max_bytes=MAX_DISCOVERY_BYTES)


def _principal(dav: DavClient, url: str, *, well_known: bool) -> str | None:
    """The principal's URL as ``url`` reports it; None when the server has no
    DAV:current-user-principal or, for the well-known URL, does not answer it as a
    WebDAV resource (RFC 6764 §6: then the configured URL is tried)."""
    where, reply = _propfind(dav, url, PRINCIPAL_PROPS, "0")
    if well_known and reply.status != 207:
        return None
    try:
        root = dav.multistatus(reply, where)
    except NotFound:
        if well_known:  # Xandikos answers 207 with a 404 inside
            return None
        raise
    for _, props in members(root):
        for href in hrefs(props.get(f"{DAV}current-user-principal")):
            return urljoin(where, href)
    return None


def _homes(dav: DavClient, principal: str) -> list[str]:
    """The principal's calendar homes; the principal itself when it names none (a
    server that keeps calendars under the principal and does not say so)."""
    where, reply = _propfind(dav, principal, HOME_PROPS, "0")
    homes = [
        urljoin(where, href)
        for _, props in members(dav.multistatus(reply, where))
        for href in hrefs(props.get(f"{CALDAV}calendar-home-set"))
    ]
    return homes or [where]


def _calendars(dav: DavClient, home: str) -> list[Found]:
    where, reply = _propfind(dav, home, COLLECTION_PROPS, "1")
    found = []
    for href, props in members(dav.multistatus(reply, where)):
        kind = props.get(f"{DAV}resourcetype")
        if same_path(href, where) or kind is None or kind.find(f"{CALDAV}calendar") is None:
            continue
        components = props.get(f"{CALDAV}supported-calendar-component-set")
        if components is not None and not any(
            (comp.get("name") or "").upper() == "VEVENT" for comp in components
        ):
            continue
        found.append(Found(slash(urljoin(where, href)), text(props.get(f"{DAV}displayname")) or ""))
    return found
