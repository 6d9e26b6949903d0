"""The calendar objects of the caldav provider: the one it writes for a buffer, and how
an owner marker binds to the object that carries it (DESIGN.md §5)."""

from __future__ import annotations

from dataclasses import replace

import icalendar

from caldaemon.errors import CalendarError
from caldaemon.model import Event
from caldaemon.providers.base import OWNER_PROPERTY
from caldaemon.providers.ics.mapping import PRODID, buffer_uid
from caldaemon.providers.ics.parse import parse


def object_body(component: icalendar.Event) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add_component(component)
    return bytes(calendar.to_ical())


def bind(event: Event) -> Event:
    """An event whose marker is bound to it (its id is the UID caldaemon's write of that
    identity makes) keeps ``owner``; one whose marker is not (a copy the user made under
    a new UID, or an occurrence of a series, which caldaemon never writes) is ``marked``
    with no owner: the user's, never touched (DESIGN.md §5). The shared reader binds the
    same way; this holds whichever reader is in use."""
    if event.owner is None:
        return event
    bound = event.id == buffer_uid(event.owner)
    return replace(event, owner=event.owner if bound else None, marked=True)


def bound_to(data: bytes, identity: str) -> icalendar.Component | None:
    """The object's VEVENT when the object is bound to ``identity``: its UID is
    ``buffer_uid(identity)`` and its marker names ``identity``; else None."""
    try:
        vevents = [v for c in parse(data, "", "") for v in c.walk("VEVENT")]
    except CalendarError:
        return None
    masters = [v for v in vevents if "RECURRENCE-ID" not in v]
    if len(masters) != 1:
        return None
    [master] = masters
    uid, marker = str(master.get("UID", "")), master.get(OWNER_PROPERTY)
    return master if uid == buffer_uid(identity) and str(marker) == identity else None


def uids(data: bytes) -> set[str]:
    """The UIDs of an object's VEVENTs (none when it cannot be read)."""
    try:
        return {str(v.get("UID", "")) for c in parse(data, "", "") for v in c.walk("VEVENT")}
    except CalendarError:
        return set()
