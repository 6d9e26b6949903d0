"""caldaemon's own buffer VEVENTs: their UID, their content and the etag that tells
whether the user edited one (RFC 5545 §3.6.1).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time

import icalendar

from caldaemon.model import Buffer
from caldaemon.providers.base import BUFFER_DESCRIPTION, OWNER_PROPERTY

PRODID = "-//caldaemon//caldaemon//EN"


def buffer_etag(component: icalendar.Component) -> str:
    """What identifies a buffer's content: changes when the user edits time or text.
    Times count as instants, so reading a file with X-WR-TIMEZONE (which turns UTC
    times into local ones) gives the same etag as the raw block."""
    parts = []
    for name in (
        "DTSTART",
        "DTEND",
        "SUMMARY",
        "DESCRIPTION",
        "TRANSP",
        "STATUS",
        "LOCATION",
        "CATEGORIES",
    ):
        prop = component.get(name)
        value = None if isinstance(prop, icalendar.vBroken) else getattr(prop, "dt", None)
        if isinstance(value, datetime) and value.tzinfo is not None:
            parts.append(value.astimezone(UTC).isoformat())
        else:
            parts.append(prop.to_ical().decode() if hasattr(prop, "to_ical") else str(prop or ""))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def buffer_uid(identity: str) -> str:
    return f"caldaemon-{identity}@caldaemon"


def buffer_component(buffer: Buffer, identity: str, stamp: datetime) -> icalendar.Event:
    """A buffer or hold VEVENT: busy, private, no alarm, no attendee, nothing from the
    session. An all-day hold is written with DATE values (RFC 5545 §3.3.4), the days it
    covers in the clinician's zone (its start and end are their local midnights)."""
    vevent = icalendar.Event()
    vevent.add("UID", buffer_uid(identity))
    vevent.add("DTSTAMP", stamp.astimezone(UTC))
    if buffer.all_day:
        vevent.add("DTSTART", buffer.start.date())
        vevent.add("DTEND", buffer.end.date())
    else:
        vevent.add("DTSTART", buffer.start.astimezone(UTC))
        vevent.add("DTEND", buffer.end.astimezone(UTC))
    vevent.add("SUMMARY", buffer.title)
    vevent.add("DESCRIPTION", BUFFER_DESCRIPTION)
    vevent.add("TRANSP", "OPAQUE")
    # RFC 5545 §3.8.1.3: colleagues who share the calendar see only that it is busy.
    vevent.add("CLASS", "PRIVATE")
    vevent.add("STATUS", "CONFIRMED")
    vevent.add(OWNER_PROPERTY, identity)
    return vevent


def block_ended(component: icalendar.Component, now: datetime) -> bool:
    """Whether a block of ours ended before ``now``: an earlier life of its buffer, history
    (a DATE end counts from that day's midnight in UTC, early enough for this)."""
    end = getattr(component.get("DTEND"), "dt", None)
    if isinstance(end, datetime):
        return (end if end.tzinfo else end.replace(tzinfo=UTC)) <= now
    if isinstance(end, date):
        return datetime.combine(end, time(), UTC) <= now
    return False
