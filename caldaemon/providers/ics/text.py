"""What an event says (RFC 5545 §3.8.1), read once per VEVENT: all the occurrences of a
recurring event share it. Titles and descriptions stay in memory; the core decides what
of them may go anywhere (DESIGN.md §7)."""

from __future__ import annotations

import icalendar

from caldaemon.providers.base import OWNER_PROPERTY
from caldaemon.providers.ics.mapping import buffer_etag


class EventText:
    """What an event says, read once per VEVENT (all its occurrences share it)."""

    __slots__ = (
        "busy",
        "cancelled",
        "categories",
        "color",
        "declined",
        "description",
        "etag",
        "marker",
        "out_of_office",
        "title",
    )

    def __init__(self, vevent: icalendar.Component, cancelled: bool, declined: bool) -> None:
        self.title = str(vevent.get("SUMMARY", ""))
        self.description = str(vevent.get("DESCRIPTION", ""))
        self.categories = categories(vevent)
        self.color = str(vevent["COLOR"]).lower() if "COLOR" in vevent else None
        # RFC 5545 §3.8.1.11 STATUS, §3.8.2.7 TRANSP (default OPAQUE: busy).
        self.cancelled = cancelled or str(vevent.get("STATUS", "")).upper() == "CANCELLED"
        self.busy = str(vevent.get("TRANSP", "OPAQUE")).upper() != "TRANSPARENT"
        self.declined = declined
        # Outlook's own busy status in exports (MS-OXCICAL 2.1.3.1.1.20.2): OOF is away.
        status = str(vevent.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper()
        self.out_of_office = status == "OOF"
        marker = vevent.get(OWNER_PROPERTY)
        self.marker = str(marker) if marker is not None else None
        self.etag = buffer_etag(vevent) if marker is not None else None


def declined(vevent: icalendar.Component, self_addresses: frozenset[str]) -> bool:
    """Whether one of the clinician's addresses (lower case) declined the event: its
    ATTENDEE with PARTSTAT=DECLINED (RFC 5545 §3.2.12)."""
    if not self_addresses:
        return False
    attendees = vevent.get("ATTENDEE", [])
    for attendee in attendees if isinstance(attendees, list) else [attendees]:
        address = str(attendee).lower().removeprefix("mailto:")
        partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper()
        if address in self_addresses and partstat == "DECLINED":
            return True
    return False


def categories(vevent: icalendar.Component) -> tuple[str, ...]:
    found: list[str] = []
    values = vevent.get("CATEGORIES", [])
    for value in values if isinstance(values, list) else [values]:
        cats = getattr(value, "cats", None)
        found.extend(str(c) for c in (cats if cats is not None else str(value).split(",")))
    return tuple(c.strip() for c in found if str(c).strip())
