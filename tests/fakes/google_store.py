"""Calendars and events of the fake Google Calendar API, and the writes to them.

Reads that list or sync live in google_listing.py.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .google_common import JSON, ApiError, etag_in, new_event_id, not_found
from .google_event import (
    expand,
    instance_until,
    merge,
    validate_event,
    validate_event_type,
)

__all__ = ["ETAG_BASE", "Calendar", "Listing", "Store", "SyncState"]

ETAG_BASE = 3_400_000_000_000_000
# Event ids: "characters allowed in the ID are those used in base32hex encoding,
# i.e. lowercase letters a-v and digits 0-9 ... the length of the ID must be
# between 5 and 1024 characters" (Events resource, ``id``).
_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
_SERVER_FIELDS = (
    "kind",
    "etag",
    "created",
    "updated",
    "htmlLink",
    "creator",
    "organizer",
    "sequence",
)


@dataclass
class Calendar:
    calendar_id: str
    email: str
    time_zone: str = "UTC"
    updated: str = ""
    events: dict[str, JSON] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    # Until when API writes are refused with 403 quotaExceeded (see Store.check_writable).
    read_only_until: datetime | None = None
    # The account's role on the calendar, as events.list reports it in ``accessRole``.
    access_role: str = "owner"


# The roles that see a calendar but may not change it (CalendarList accessRole: "reader",
# "freeBusyReader"; https://developers.google.com/calendar/api/v3/reference/calendarList).
READ_ONLY_ROLES = frozenset({"reader", "freeBusyReader"})


@dataclass(frozen=True)
class SyncState:
    calendar_id: str
    change: int
    single_events: bool
    issued: datetime


@dataclass(frozen=True)
class Listing:
    calendar: Calendar
    items: list[JSON]
    change: int
    single_events: bool
    time_zone: str


class Store:
    """Calendars, events and tokens. Every method expects the server lock to be held."""

    def __init__(self, primary_email: str, clock: Callable[[], datetime]) -> None:
        self.primary_email = primary_email
        self.clock = clock
        self.calendars = {"primary": Calendar("primary", primary_email)}
        self.change = 0
        self.sync_tokens: dict[str, SyncState | None] = {}
        self.sync_token_lifetime: timedelta | None = None
        self.pages: dict[str, tuple[Listing, int]] = {}
        # Injected paging faults (GoogleCalendarServer.loop_paging): how many more pages
        # answer a token for the page just served, and whether that token is a new one.
        self.looping_pages = 0
        self.looping_fresh_tokens = False
        self._last_stamp = datetime.min.replace(tzinfo=UTC)

    def calendar(self, calendar_id: str) -> Calendar:
        found = self.calendars.get("primary" if calendar_id == self.primary_email else calendar_id)
        if found is None:
            raise not_found()
        return found

    # reads

    def resolve(self, cal: Calendar, event_id: str) -> JSON | None:
        """Copy of a stored event, or of the generated recurring instance with that id."""
        if event_id in cal.events:
            return copy.deepcopy(cal.events[event_id])
        master_id, sep, suffix = event_id.rpartition("_")
        master = cal.events.get(master_id) if sep else None
        until = instance_until(suffix, cal.time_zone)
        if master is None or not master.get("recurrence") or until is None:
            return None
        instances = self.instances(cal, master, until)
        return next((copy.deepcopy(i) for i in instances if i["id"] == event_id), None)

    def is_exception(self, cal: Calendar, event: JSON) -> bool:
        master = cal.events.get(event.get("recurringEventId") or "")
        return master is not None and bool(master.get("recurrence"))

    def instances(self, cal: Calendar, master: JSON, until: datetime | None) -> list[JSON]:
        """Generated instances overlaid with every stored exception of ``master``."""
        by_id = {instance["id"]: instance for instance in expand(master, cal.time_zone, until)}
        by_id.update(
            (event_id, event)
            for event_id, event in cal.events.items()
            if event.get("recurringEventId") == master["id"]
        )
        if master.get("status") == "cancelled":
            return [{**instance, "status": "cancelled"} for instance in by_id.values()]
        return list(by_id.values())

    # writes

    def stamp(self) -> str:
        now = self.clock().astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last_stamp = max(now, self._last_stamp + timedelta(milliseconds=1))
        return self._last_stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def write(self, cal: Calendar, event_id: str, body: JSON, existing: JSON | None) -> JSON:
        """Normalise ``body`` into the stored resource for ``event_id``, validate and commit it."""
        event = copy.deepcopy(body)
        for key in _SERVER_FIELDS:
            event.pop(key, None)
        owner = {"email": cal.email, "self": True}
        eid = base64.urlsafe_b64encode(f"{event_id} {cal.email}".encode()).decode().rstrip("=")
        event |= {
            "kind": "calendar#event",
            "id": event_id,
            "creator": owner,
            "organizer": dict(owner),
            "htmlLink": f"https://www.google.com/calendar/event?eid={eid}",
        }
        event.setdefault("status", "confirmed")
        event.setdefault("reminders", {"useDefault": True})
        # A write that leaves eventType out keeps the type the event has (it cannot change).
        event.setdefault("eventType", (existing or {}).get("eventType", "default"))
        if existing is None:
            sequence = body.get("sequence", 0)
            event["sequence"] = sequence if isinstance(sequence, int) else 0
            ical_uid = body.get("iCalUID")
            event["iCalUID"] = ical_uid if isinstance(ical_uid, str) else f"{event_id}@google.com"
        else:
            event["sequence"] = int(existing.get("sequence", 0)) + 1
            for key in (
                "iCalUID",
                "created",
                "creator",
                "organizer",
                "recurringEventId",
                "originalStartTime",
            ):
                if key in existing:
                    event[key] = copy.deepcopy(existing[key])
        for attendee in event.get("attendees") or []:
            if isinstance(attendee, dict):
                attendee.setdefault("responseStatus", "needsAction")
                if str(attendee.get("email", "")).lower() == cal.email.lower():
                    attendee["self"] = True
        validate_event(event, cal.time_zone)
        validate_event_type(event, existing, primary=cal.calendar_id == "primary")
        self.change += 1
        stamp = self.stamp()
        event["etag"] = f'"{ETAG_BASE + self.change}"'
        event["updated"] = cal.updated = stamp
        event.setdefault("created", stamp)
        cal.events[event_id] = event
        cal.changed[event_id] = self.change
        return copy.deepcopy(event)

    def require(self, cal: Calendar, event_id: str, if_match: str | None) -> JSON:
        """The current event, after checking an If-Match precondition (412 on mismatch)."""
        current = self.resolve(cal, event_id)
        if current is None:
            raise not_found()
        if if_match is not None and not etag_in(if_match, current["etag"]):
            raise ApiError(
                412,
                "conditionNotMet",
                "Precondition Failed",
                location="If-Match",
                location_type="header",
            )
        return current

    def check_writable(self, cal: Calendar) -> None:
        """ "Calendar usage limits exceeded": Google answers 403 ``quotaExceeded`` (domain
        usageLimits) and keeps the calendar read-only for hours; retrying does not help
        (RESEARCH.md, "Google Calendar API v3"; "Handle API errors",
        https://developers.google.com/calendar/api/guides/errors#403_calendar_usage_limits_exceeded).
        Reads still work."""
        until = cal.read_only_until
        if until is not None and self.clock() < until:
            raise ApiError(
                403, "quotaExceeded", "Calendar usage limits exceeded.", domain="usageLimits"
            )

    @staticmethod
    def check_role(cal: Calendar) -> None:
        """A write to a calendar the account may only read answers 403 requiredAccessLevel
        (domain calendar), whatever the event, before anything else is looked at:
        {"domain": "calendar", "reason": "requiredAccessLevel", "message": "You need to
        have writer access to this calendar."} as reported for events.insert
        (spatie/laravel-google-calendar #95, derekantrican/GAS-ICS-Sync #131) and for
        writes in general (phw198/OutlookGoogleCalendarSync #968, inovex/CalendarSync
        #251, all on read-only calendars). Retrying does not help."""
        if cal.access_role in READ_ONLY_ROLES:
            raise ApiError(
                403,
                "requiredAccessLevel",
                "You need to have writer access to this calendar.",
                domain="calendar",
            )

    def insert(self, calendar_id: str, body: JSON) -> JSON:
        cal = self.calendar(calendar_id)
        self.check_role(cal)
        event_id = body.get("id")
        if event_id is None:
            event_id = new_event_id()
        elif not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        elif event_id in cal.events:
            # A client-supplied id that exists answers 409, and so does the id of a deleted
            # event: Google keeps deleted events as cancelled under their id
            # (google-api-python-client #210 and #846; "will eventually disappear", events
            # reference), so a deleted event can never be inserted again under its id.
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        self.check_writable(cal)
        return self.write(cal, event_id, body, None)

    def _alive(self, cal: Calendar, event_id: str, if_match: str | None) -> JSON:
        """The event an update or patch may change: a deleted (cancelled) one answers 403
        Forbidden; it cannot be brought back through the API (google-api-ruby-client #1811:
        insert → 409, then update → 403). The UI's "restore from trash" is
        :meth:`GoogleCalendarServer.put_event`."""
        self.check_role(cal)
        current = self.require(cal, event_id, if_match)
        if current.get("status") == "cancelled":
            raise ApiError(403, "forbidden", "Forbidden")
        self.check_writable(cal)
        return current

    def update(self, calendar_id: str, event_id: str, body: JSON, if_match: str | None) -> JSON:
        cal = self.calendar(calendar_id)
        return self.write(cal, event_id, body, self._alive(cal, event_id, if_match))

    def patch(self, calendar_id: str, event_id: str, body: JSON, if_match: str | None) -> JSON:
        cal = self.calendar(calendar_id)
        current = self._alive(cal, event_id, if_match)
        for key in ("start", "end"):
            change, old = body.get(key), current.get(key)
            if isinstance(change, dict) and isinstance(old, dict):
                # Switching between all-day and timed drops the other representation.
                if "date" in change:
                    old.pop("dateTime", None)
                    old.pop("timeZone", None)
                elif "dateTime" in change:
                    old.pop("date", None)
        return self.write(cal, event_id, merge(current, body), current)

    def delete(self, calendar_id: str, event_id: str, if_match: str | None) -> None:
        cal = self.calendar(calendar_id)
        self.check_role(cal)
        current = self.require(cal, event_id, if_match)
        if current.get("status") == "cancelled":
            # Deleting a deleted event: 410 "Resource has been deleted"
            # (google-api-python-client #210).
            raise ApiError(410, "deleted", "Resource has been deleted")
        self.check_writable(cal)
        self.write(cal, event_id, {**current, "status": "cancelled"}, current)
