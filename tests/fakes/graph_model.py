"""The store of the fake Microsoft Graph: mailboxes, calendars, events and their properties.

Event resource: https://learn.microsoft.com/graph/api/resources/event
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal

from .graph_common import GraphError
from .graph_time import check_all_day, check_recurrence, check_write_zone, dtz_to_aware
from .graph_world import WorldRules, every
from .identity_model import User

__all__ = [
    "SEEDABLE",
    "WRITABLE",
    "Calendar",
    "Change",
    "Instance",
    "Mailbox",
    "Occurrence",
    "StoredEvent",
    "View",
    "apply_props",
    "default_props",
    "derived_change_key",
    "etag_matches",
    "new_change_key",
    "new_id",
    "note_change",
    "note_reads",
    "occurrence_id",
    "parse_occurrence_id",
    "validate_event",
]

_SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
# "sensitivity": "Possible values are: normal, personal, private, and confidential" (event
# resource, https://learn.microsoft.com/graph/api/resources/event).
_SENSITIVITY = ("normal", "personal", "private", "confidential")
_RESPONSES = (
    "none",
    "organizer",
    "tentativelyAccepted",
    "accepted",
    "declined",
    "notResponded",
)
# Writable through the API (POST/PATCH).  Anything else that is not read-only
# is rejected the way Graph's OData reader does.
WRITABLE = frozenset(
    {
        "subject",
        "body",
        "start",
        "end",
        "isAllDay",
        "showAs",
        "categories",
        "transactionId",
        "isReminderOn",
        "reminderMinutesBeforeStart",
        "attendees",
        "location",
        "locations",
        "importance",
        "sensitivity",
        "recurrence",
        "singleValueExtendedProperties",
        "allowNewTimeProposals",
        "hideAttendees",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "responseRequested",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "organizer",
    }
)
# Read-only: ignored when written through the API.  Seeding (put_event) may
# set the ones in SEEDABLE to mimic meetings organised by someone else.
_READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "type",
        "seriesMasterId",
        "iCalUId",
        "bodyPreview",
        "hasAttachments",
        "isOrganizer",
        "webLink",
        "onlineMeeting",
        "onlineMeetingUrl",
        "isDraft",
        "isCancelled",
        "responseStatus",
        "originalStart",
        "uid",
    }
)
SEEDABLE = frozenset({"isCancelled", "responseStatus", "isOrganizer", "iCalUId"})
_EXTENDED_ID = re.compile(
    r"^(String|Integer|Boolean|SystemTime|Binary|Double|Float|Long|Short|Guid|"
    r"Currency|Object|CLSID)\s+(\{[0-9a-f-]{36}\}\s+(Name|Id)\s+\S.*|0x[0-9a-f]{1,4})$",
    re.IGNORECASE,
)
_OCCURRENCE_PREFIX = "AAMkO"


def new_id() -> str:
    return "AAMkA" + secrets.token_urlsafe(33)


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(18)).decode("ascii")


def derived_change_key(*parts: str) -> str:
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).digest()
    return base64.b64encode(digest[:18]).decode("ascii")


def occurrence_id(master_id: str, original: date) -> str:
    raw = f"{master_id}|{original.isoformat()}".encode("ascii")
    return _OCCURRENCE_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_occurrence_id(event_id: str) -> tuple[str, date] | None:
    if not event_id.startswith(_OCCURRENCE_PREFIX):
        return None
    encoded = event_id[len(_OCCURRENCE_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("ascii")
        master_id, _, day = raw.rpartition("|")
        return master_id, date.fromisoformat(day)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def etag_matches(if_match: str, change_key: str) -> bool:
    for candidate in if_match.split(","):
        value = candidate.strip()
        if value == "*":
            return True
        if value.removeprefix("W/").strip('"') == change_key:
            return True
    return False


@dataclass
class Calendar:
    id: str
    name: str
    is_default: bool
    change_key: str = field(default_factory=new_change_key)
    # False for a calendar shared with the user to view only (rendered as ``canEdit``).
    can_edit: bool = True


@dataclass
class Occurrence:
    """Per-occurrence state kept on a series master (Outlook stores exceptions there)."""

    overrides: dict[str, Any]
    extended: dict[str, tuple[str, str]]
    change_key: str
    modified: datetime


@dataclass
class StoredEvent:
    id: str
    calendar_id: str
    props: dict[str, Any]
    extended: dict[str, tuple[str, str]]  # lower-cased property id -> (id, value)
    created: datetime
    modified: datetime
    change_key: str
    exceptions: dict[date, Occurrence] = field(default_factory=dict)
    cancelled: set[date] = field(default_factory=set)
    # The canonical body of the POST that created it: a repeated transactionId with the
    # same body answers this event, with another body ErrorDuplicateTransactionId.
    create_body: str | None = None

    @property
    def is_series_master(self) -> bool:
        return bool(self.props.get("recurrence"))


@dataclass(frozen=True)
class Instance:
    """An event as seen by a reader: a single instance, master, occurrence or exception."""

    id: str
    kind: Literal["singleInstance", "seriesMaster", "occurrence", "exception"]
    event: StoredEvent
    props: Mapping[str, Any]
    extended: Mapping[str, tuple[str, str]]
    start: datetime
    end: datetime
    change_key: str
    modified: datetime
    original: date | None = None  # an occurrence's date in its series


@dataclass(frozen=True)
class Change:
    """One change to an event (its slot after the change, or before a deletion), which
    delta rounds look back on for their @removed entries."""

    seq: int
    event_id: str
    start: datetime
    end: datetime
    deleted: bool


@dataclass
class Mailbox:
    user: User
    rules: WorldRules = field(default_factory=WorldRules)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    events: dict[str, StoredEvent] = field(default_factory=dict)
    # DELETE is a soft delete (RESEARCH.md, "Microsoft Graph"): the event leaves every
    # view but keeps its transactionId, and seeding it again under its id restores it.
    deleted: dict[str, StoredEvent] = field(default_factory=dict)
    # Ids whose deletion delta rounds never report (WorldRules.unreported_delete_every).
    unreported: set[str] = field(default_factory=set)
    log: list[Change] = field(default_factory=list)
    seq: int = 0
    # Counters behind the schedules of WorldRules.
    reads: int = 0
    conditional_writes: int = 0
    deletions: int = 0
    continuations: int = 0
    duplicate_answers: int = 0

    @property
    def default_calendar(self) -> Calendar:
        return next(c for c in self.calendars.values() if c.is_default)


@dataclass(frozen=True)
class View:
    """How to render events for one request."""

    zone_name: str = "UTC"
    zone: tzinfo = UTC
    expand: frozenset[str] | None = None  # None: no extended properties; empty: all
    select: frozenset[str] | None = None


def note_change(mailbox: Mailbox, instance: Instance, *, deleted: bool = False) -> None:
    """Remember a change for later delta rounds; a deletion counts toward the schedule of
    deletions delta never reports."""
    mailbox.seq += 1
    mailbox.log.append(Change(mailbox.seq, instance.id, instance.start, instance.end, deleted))
    if deleted:
        mailbox.deletions += 1
        if every(mailbox.rules.unreported_delete_every, mailbox.deletions):
            mailbox.unreported.add(instance.id)


def note_reads(mailbox: Mailbox, instances: Sequence[Instance]) -> None:
    """Count a read request that returned events; on the drift schedule the first of
    them gets a new changeKey right after it was read, with no edit
    (microsoft-graph-docs-contrib #2856)."""
    if not instances:
        return
    mailbox.reads += 1
    if every(mailbox.rules.drift_every, mailbox.reads):
        instances[0].event.change_key = new_change_key()


# -- properties -------------------------------------------------------------------


def default_props(user: User) -> dict[str, Any]:
    return {
        "subject": "",
        "body": {"contentType": "html", "content": ""},
        "start": None,
        "end": None,
        "isAllDay": False,
        "showAs": "busy",
        "categories": [],
        "transactionId": None,
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 15,
        "attendees": [],
        "location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown"},
        "locations": [],
        "importance": "normal",
        "sensitivity": "normal",
        "recurrence": None,
        "allowNewTimeProposals": True,
        "hideAttendees": False,
        "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown",
        "responseRequested": True,
        "originalStartTimeZone": None,
        "originalEndTimeZone": None,
        "organizer": {"emailAddress": {"name": user.display_name, "address": user.upn}},
        "isOrganizer": True,
        "isCancelled": False,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
    }


def apply_props(
    props: dict[str, Any],
    extended: dict[str, tuple[str, str]],
    body: Mapping[str, Any],
    *,
    seeding: bool,
    creating: bool,
) -> None:
    for key, value in body.items():
        if key.startswith("@odata.") or key == "id":
            continue
        if key == "singleValueExtendedProperties":
            for prop in _extended_properties(value):
                extended[prop[0].lower()] = prop
            continue
        if key == "transactionId" and not creating:
            continue
        if key in ("start", "end") and not seeding:
            check_write_zone(value)
        if key in _READ_ONLY:
            if seeding and key in SEEDABLE:
                props[key] = value
            continue
        if key not in WRITABLE:
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{key}' does not exist on type 'microsoft.graph.event'. Make "
                "sure to only use property names that are defined by the type or mark the "
                "type as open type.",
            )
        props[key] = value


def _extended_properties(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise GraphError(400, "RequestBodyRead", "singleValueExtendedProperties must be an array.")
    result = []
    for prop in value:
        prop_id = prop.get("id") if isinstance(prop, dict) else None
        if not isinstance(prop_id, str) or not _EXTENDED_ID.match(prop_id.strip()):
            raise GraphError(
                400, "ErrorInvalidProperty", f"The extended property id '{prop_id}' is malformed."
            )
        result.append((prop_id.strip(), str(prop.get("value", ""))))
    return result


def validate_event(props: dict[str, Any], *, is_exception: bool) -> None:
    """Check an event's merged properties; normalises start/end to carry a timeZone."""
    if props.get("start") is None or props.get("end") is None:
        raise GraphError(400, "ErrorInvalidRequest", "An event must have a start and an end.")
    start = dtz_to_aware(props["start"], "start")
    end = dtz_to_aware(props["end"], "end")
    for name in ("start", "end"):
        props[name] = {
            "dateTime": props[name]["dateTime"],
            "timeZone": props[name].get("timeZone") or "UTC",
        }
    if end < start:
        raise GraphError(
            400, "ErrorInvalidRequest", "The end time of an event can't be before its start time."
        )
    if props.get("isAllDay"):
        check_all_day(props["start"], props["end"], start, end)
    if props.get("showAs") not in _SHOW_AS:
        raise GraphError(
            400,
            "RequestBodyRead",
            f"Cannot convert the literal '{props.get('showAs')}' to the expected type "
            "'microsoft.graph.freeBusyStatus'.",
        )
    if props.get("sensitivity") not in _SENSITIVITY:
        raise GraphError(
            400,
            "RequestBodyRead",
            f"Cannot convert the literal '{props.get('sensitivity')}' to the expected type "
            "'microsoft.graph.sensitivity'.",
        )
    response = props.get("responseStatus") or {}
    if response.get("response") not in _RESPONSES:
        raise GraphError(
            400, "RequestBodyRead", f"Invalid responseStatus '{response.get('response')}'."
        )
    body = props.get("body") or {}
    if str(body.get("contentType", "html")).lower() not in ("text", "html"):
        raise GraphError(400, "RequestBodyRead", "body.contentType must be 'text' or 'html'.")
    if props.get("recurrence") and not is_exception:
        check_recurrence(props["recurrence"])
