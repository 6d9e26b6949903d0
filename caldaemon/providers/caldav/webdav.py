"""The WebDAV and CalDAV vocabulary the caldav provider speaks: the XML bodies of the
requests it sends, and reading the multistatus replies it gets (RFC 4918 §13).

No I/O here: :mod:`caldaemon.providers.caldav.http` sends the bodies and hands the
replies back.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

DAV, CALDAV, CS = "{DAV:}", "{urn:ietf:params:xml:ns:caldav}", "{http://calendarserver.org/ns/}"
XML = {"Content-Type": "application/xml; charset=utf-8"}
ICS = {"Content-Type": "text/calendar; charset=utf-8"}
_HEAD = '<?xml version="1.0" encoding="utf-8"?>'
_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'


def _propfind(props: str, namespaces: str = _NS) -> bytes:
    return f"{_HEAD}<D:propfind {namespaces}><D:prop>{props}</D:prop></D:propfind>".encode()


#: PROPFIND for what tells a calendar collection and its version apart.
VERSION_PROPS = _propfind(
    "<D:resourcetype/><D:sync-token/><CS:getctag/>",
    f'{_NS} xmlns:CS="http://calendarserver.org/ns/"',
)
#: PROPFIND for what the logged-in user may do (RFC 3744 §5.4).
PRIVILEGE_PROPS = _propfind("<D:current-user-privilege-set/>")
GETETAG_PROPS = _propfind("<D:getetag/>")
#: PROPFIND for the logged-in user's principal (RFC 5397 §3).
PRINCIPAL_PROPS = _propfind("<D:current-user-principal/>")
#: PROPFIND for where a principal's calendars live (RFC 4791 §6.2.1).
HOME_PROPS = _propfind("<C:calendar-home-set/>")
#: PROPFIND (Depth: 1) of a calendar home: which members are calendars, what they are
#: called (RFC 4918 §15.2) and which components they take (RFC 4791 §5.2.3).
COLLECTION_PROPS = _propfind(
    "<D:resourcetype/><D:displayname/><C:supported-calendar-component-set/>"
)


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
        found.append((href_of(response), props))
    return found


def own_status(root: ElementTree.Element, url: str) -> int | None:
    """The status a multistatus gives the requested resource itself, when it has a
    DAV:response of its own with one: 404 (gone), 507 (RFC 6578 §3.6: the reply was cut
    short), a refused precondition, …; None when it has none."""
    for response in root.findall(f"{DAV}response"):
        if same_path(href_of(response), url):
            status = _status(response.findtext(f"{DAV}status"))
            if status is not None:
                return status
    return None


def href_of(response: ElementTree.Element) -> str:
    return (response.findtext(f"{DAV}href") or "").strip()


def same_path(href: str, url: str) -> bool:
    """Whether ``href`` (a path or a URL) names the resource at ``url``: servers write
    hrefs with or without the trailing slash of a collection and percent-encoded or not."""
    return unquote(urlsplit(href).path).rstrip("/") == unquote(urlsplit(url).path).rstrip("/")


def hrefs(element: ElementTree.Element | None) -> list[str]:
    """The DAV:href values inside a property (RFC 4918 §14.7), in order."""
    if element is None:
        return []
    return [h.text.strip() for h in element.iter(f"{DAV}href") if h.text and h.text.strip()]


def _status(line: str | None) -> int | None:
    match = re.match(r"\s*HTTP/\S+\s+(\d{3})", line or "")
    return int(match.group(1)) if match else None


def text(element: ElementTree.Element | None) -> str | None:
    return element.text.strip() if element is not None and element.text else None
