"""Fake Microsoft Graph v1.0: the calendar, mail and batching subset caldaemon uses.

Served under ``/v1.0`` for ``/me/...`` (delegated tokens) and ``/users/{id|upn}/...``:

* ``GET  calendars``, ``calendars/{id}``, ``calendar``
* ``GET|POST  [calendar|calendars/{id}]/events``;
  ``GET|PATCH|DELETE  [calendar|calendars/{id}]/events/{id}``; ``events/{id}/instances``
* ``GET  [calendar|calendars/{id}]/calendarView`` and ``.../calendarView/delta``
* ``POST sendMail`` and ``POST /v1.0/$batch``

Events are stored the way they were written (``start``/``end`` in their own
``timeZone``) and rendered per request in the zone asked for with
``Prefer: outlook.timezone`` (UTC otherwise, as Graph does).  Series masters
carrying a Graph ``recurrence`` (daily, weekly, absolute/relative monthly and
yearly patterns; endDate, noEnd and numbered ranges) are expanded into
``occurrence``/``exception`` instances by calendarView, its delta and
``instances``; PATCH/DELETE of an occurrence id turns it into an exception or
cancels it.  All ids are immutable, so ``Prefer: IdType="ImmutableId"`` needs
no special handling.

Reference: https://learn.microsoft.com/graph/api/resources/event and the
pages cited next to the behaviour they describe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .microsoft_identity import AccessGrant, Identity, Reply, User

GRAPH_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
NOT_FOUND_MESSAGE = "The specified object was not found in the store."
# Outlook's answer to a stale If-Match (observed; not in the reference docs).
CONFLICT_MESSAGE = (
    "The send or update operation could not be performed because the change key "
    "passed in the request does not match the current change key for the item."
)
# Windows zone names Graph accepts alongside IANA ones (a common subset).
_WINDOWS_ZONES = {
    "utc": "UTC",
    "coordinated universal time": "UTC",
    "gmt standard time": "Europe/London",
    "greenwich standard time": "Atlantic/Reykjavik",
    "w. europe standard time": "Europe/Berlin",
    "romance standard time": "Europe/Paris",
    "central europe standard time": "Europe/Budapest",
    "e. europe standard time": "Europe/Chisinau",
    "eastern standard time": "America/New_York",
    "central standard time": "America/Chicago",
    "mountain standard time": "America/Denver",
    "pacific standard time": "America/Los_Angeles",
    "india standard time": "Asia/Kolkata",
    "china standard time": "Asia/Shanghai",
    "tokyo standard time": "Asia/Tokyo",
    "aus eastern standard time": "Australia/Sydney",
    "new zealand standard time": "Pacific/Auckland",
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEXES = ("first", "second", "third", "fourth", "last")
_SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
_RESPONSES = (
    "none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded",
)
# Writable through the API (POST/PATCH).  Anything else that is not read-only
# is rejected the way Graph's OData reader does.
_WRITABLE = frozenset({
    "subject", "body", "start", "end", "isAllDay", "showAs", "categories",
    "transactionId", "isReminderOn", "reminderMinutesBeforeStart", "attendees",
    "location", "locations", "importance", "sensitivity", "recurrence",
    "singleValueExtendedProperties", "allowNewTimeProposals", "hideAttendees",
    "isOnlineMeeting", "onlineMeetingProvider", "responseRequested",
    "originalStartTimeZone", "originalEndTimeZone", "organizer",
})
# Read-only: ignored when written through the API.  Seeding (put_event) may
# set the ones in _SEEDABLE to mimic meetings organised by someone else.
_READ_ONLY = frozenset({
    "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "type",
    "seriesMasterId", "iCalUId", "bodyPreview", "hasAttachments", "isOrganizer",
    "webLink", "onlineMeeting", "onlineMeetingUrl", "isDraft", "isCancelled",
    "responseStatus", "originalStart", "uid",
})
_SEEDABLE = frozenset({"isCancelled", "responseStatus", "isOrganizer", "iCalUId"})
_EXTENDED_ID = re.compile(
    r"^(String|Integer|Boolean|SystemTime|Binary|Double|Float|Long|Short|Guid|"
    r"Currency|Object|CLSID)\s+(\{[0-9a-f-]{36}\}\s+(Name|Id)\s+\S.*|0x[0-9a-f]{1,4})$",
    re.IGNORECASE,
)
_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_OCCURRENCE_PREFIX = "AAMkO"
# (item id, method, target "/v1.0/...", headers, body, run) -> reply; lets the
# server record each batch item and inject per-item faults around ``run``.
JsonObject = dict[str, Any]
BatchHook = Callable[[str, str, str, Mapping[str, str], bytes, Callable[[], Reply]], Reply]


class GraphError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = tuple(headers)


def graph_error_reply(
    status: int,
    code: str,
    message: str,
    request_headers: Mapping[str, str],
    headers: Sequence[tuple[str, str]] = (),
) -> Reply:
    """Graph's error envelope, see https://learn.microsoft.com/graph/errors."""
    request_id = str(uuid.uuid4())
    client_request_id = request_headers.get("client-request-id", request_id)
    payload = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    tracing = (("request-id", request_id), ("client-request-id", client_request_id))
    return Reply.json(status, payload, (*tracing, *headers), GRAPH_JSON)


# -- time helpers -------------------------------------------------------------------


def resolve_zone(name: str) -> tzinfo | None:
    """A tzinfo for a Windows or IANA zone name, or None if unknown."""
    key = _WINDOWS_ZONES.get(name.strip().lower(), name.strip())
    if key.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_datetime(value: str) -> tuple[datetime, tzinfo | None]:
    """Parse Graph's ``2026-11-30T14:00:00.0000000`` (7 fractional digits, no zone)."""
    # A "+" offset arrives as a space when a client forgot to percent-encode it.
    match = _DATETIME.match(value.strip().replace(" ", "+"))
    if match is None:
        raise ValueError(value)
    day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    parsed = datetime.combine(
        date.fromisoformat(day), time(int(hour or 0), int(minute or 0), int(second or 0), micro)
    )
    zone: tzinfo | None = None
    if offset == "Z":
        zone = UTC
    elif offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return parsed, zone


def format_local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond:06d}0"


def format_instant(moment: datetime) -> str:
    return format_local(moment.astimezone(UTC)) + "Z"


def _dtz_to_aware(value: Any, field_name: str) -> datetime:
    if not isinstance(value, Mapping) or not isinstance(value.get("dateTime"), str):
        raise GraphError(
            400, "ErrorInvalidRequest", f"'{field_name}' must be a dateTimeTimeZone object."
        )
    zone_name = value.get("timeZone") or "UTC"
    zone = resolve_zone(zone_name)
    if zone is None:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is "
            f"not supported: '{zone_name}'.",
        )
    try:
        local, offset = _parse_datetime(value["dateTime"])
    except ValueError as exc:
        raise GraphError(
            400, "ErrorInvalidRequest", f"Cannot convert '{value['dateTime']}' to a date/time."
        ) from exc
    if offset is not None:
        return local.replace(tzinfo=offset).astimezone(zone)
    return local.replace(tzinfo=zone)


def _window_bound(query: Mapping[str, str], name: str) -> tuple[datetime, str]:
    raw = query.get(name.lower())
    if not raw:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        local, offset = _parse_datetime(raw)
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidParameter", f"Invalid {name}: '{raw}'.") from exc
    # Values without an offset are UTC; Prefer: outlook.timezone does not apply
    # to them (https://learn.microsoft.com/graph/api/user-list-calendarview).
    return local.replace(tzinfo=offset or UTC), raw


# -- store ----------------------------------------------------------------------------


def _new_id() -> str:
    return "AAMkA" + secrets.token_urlsafe(33)


def _new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(18)).decode("ascii")


def _derived_change_key(*parts: str) -> str:
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).digest()
    return base64.b64encode(digest[:18]).decode("ascii")


def _occurrence_id(master_id: str, original: date) -> str:
    raw = f"{master_id}|{original.isoformat()}".encode("ascii")
    return _OCCURRENCE_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _parse_occurrence_id(event_id: str) -> tuple[str, date] | None:
    if not event_id.startswith(_OCCURRENCE_PREFIX):
        return None
    encoded = event_id[len(_OCCURRENCE_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("ascii")
        master_id, _, day = raw.rpartition("|")
        return master_id, date.fromisoformat(day)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _etag_matches(if_match: str, change_key: str) -> bool:
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
    change_key: str = field(default_factory=_new_change_key)


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


@dataclass
class Mailbox:
    user: User
    calendars: dict[str, Calendar] = field(default_factory=dict)
    events: dict[str, StoredEvent] = field(default_factory=dict)

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


@dataclass
class DeltaRound:
    owner_oid: str
    calendar_id: str
    start: datetime
    end: datetime
    restart_query: dict[str, str]
    expand: frozenset[str] | None
    snapshot: dict[str, str]  # instance id -> change key the next round diffs against
    pending: list[tuple[str, bool]]  # (instance id, removed) still to page out
    is_delta_link: bool
    generation: int


@dataclass(frozen=True)
class GraphRequest:
    method: str
    path: str  # after "/v1.0", e.g. "/me/calendarView/delta"
    query: Mapping[str, str]  # keys lower-cased, "$" kept
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes

    @property
    def segments(self) -> list[str]:
        return [unquote(s) for s in self.path.strip("/").split("/") if s]

    def json_body(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise GraphError(
                400, "BadRequest", "Unable to read JSON request payload. Please ensure "
                "Content-Type header is set and payload is of valid JSON format."
            ) from exc
        if not isinstance(payload, dict):
            raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
        return payload

    def preferences(self) -> dict[str, str]:
        prefs: dict[str, str] = {}
        for item in self.headers.get("prefer", "").split(","):
            name, _, value = item.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = value.strip().strip('"')
        return prefs


# -- the service ------------------------------------------------------------------------


class Graph:
    """State and request handling of the fake Graph service."""

    def __init__(self, identity: Identity, lock: threading.RLock, max_batch: int) -> None:
        self.identity = identity
        self.base_url = ""  # "https://localhost:PORT/v1.0", set when the server starts
        self.max_batch = max_batch
        self.delta_expired_status = 410
        self.default_page_size = 10
        self.sent_mail: list[dict[str, Any]] = []
        self._lock = lock
        self._mailboxes: dict[str, Mailbox] = {}
        self._delta_rounds: dict[str, DeltaRound] = {}
        self._delta_generation = 0

    # -- seeding / inspection (caller holds the lock) ---------------------------------

    def add_mailbox(self, user: User) -> None:
        mailbox = Mailbox(user)
        calendar = Calendar(_new_id(), "Calendar", True)
        mailbox.calendars[calendar.id] = calendar
        self._mailboxes[user.oid] = mailbox

    def add_calendar(self, user: User, name: str, default: bool) -> str:
        mailbox = self._mailboxes[user.oid]
        calendar = Calendar(_new_id(), name, False)
        if default:
            for existing in mailbox.calendars.values():
                existing.is_default = False
            calendar.is_default = True
        mailbox.calendars[calendar.id] = calendar
        return calendar.id

    def put_event(
        self, user: User, calendar_id: str | None, resource: Mapping[str, Any]
    ) -> JsonObject:
        mailbox = self._mailboxes[user.oid]
        calendar = self._calendar(mailbox, calendar_id)
        event_id = resource.get("id")
        if isinstance(event_id, str) and (parsed := _parse_occurrence_id(event_id)):
            self._update(mailbox, event_id, resource, None, seeding=True)
            master = mailbox.events[parsed[0]]
            return self._render(self._instance_at(master, parsed[1]), View(expand=frozenset()))
        if isinstance(event_id, str) and event_id in mailbox.events:
            existing = mailbox.events[event_id]
            stored = self._build_event(mailbox, existing.calendar_id, resource, seeding=True)
            stored.id, stored.created = existing.id, existing.created
            # An edit in Outlook keeps what the user cannot see or change there.
            for hidden in ("transactionId", "iCalUId"):
                if hidden not in resource:
                    stored.props[hidden] = existing.props[hidden]
            if "singleValueExtendedProperties" not in resource:
                stored.extended = dict(existing.extended)
            if stored.props.get("recurrence") == existing.props.get("recurrence"):
                stored.exceptions, stored.cancelled = existing.exceptions, existing.cancelled
            mailbox.events[existing.id] = stored
        else:
            stored = self._build_event(mailbox, calendar.id, resource, seeding=True)
            if isinstance(event_id, str) and event_id:
                stored.id = event_id
            mailbox.events[stored.id] = stored
        return self._render(self._instance_of(stored), View(expand=frozenset()))

    def delete_event(self, user: User, event_id: str) -> None:
        self._delete(self._mailboxes[user.oid], event_id, None)

    def list_events(self, user: User, calendar_id: str | None) -> list[JsonObject]:
        mailbox = self._mailboxes[user.oid]
        stored = sorted(mailbox.events.values(), key=lambda e: e.created)
        return [
            self._render(self._instance_of(e), View(expand=frozenset()))
            for e in stored
            if calendar_id is None or e.calendar_id == calendar_id
        ]

    def expire_delta_tokens(self) -> None:
        self._delta_generation += 1

    # -- HTTP ------------------------------------------------------------------------

    def handle(self, request: GraphRequest, batch_hook: BatchHook) -> Reply:
        """Answer a request under /v1.0.  Takes the lock per (sub-)request."""
        try:
            if [s.lower() for s in request.segments] == ["$batch"]:
                if request.method != "POST":
                    raise GraphError(405, "BadRequest", "Only POST is supported for $batch.")
                return self._batch(request, batch_hook)
            return self.dispatch(request)
        except GraphError as exc:
            return _error_reply(exc, request)

    def dispatch(self, request: GraphRequest) -> Reply:
        try:
            with self._lock:
                grant = self._authenticate(request)
                status, payload, headers = self._route(request, grant)
        except GraphError as exc:
            return _error_reply(exc, request)
        request_id = str(uuid.uuid4())
        tracing = (
            ("request-id", request_id),
            ("client-request-id", request.headers.get("client-request-id", request_id)),
        )
        if payload is None:
            return Reply(status, (*tracing, *headers))
        return Reply.json(status, payload, (*tracing, *headers), GRAPH_JSON)

    def _authenticate(self, request: GraphRequest) -> AccessGrant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            outcome: AccessGrant | str = "Access token is empty."
        else:
            outcome = self.identity.validate_access_token(token.strip())
        if isinstance(outcome, str):
            challenge = (
                'Bearer realm="", authorization_uri="'
                f'{self.identity.base_url}/common/oauth2/authorize", client_id="'
                '00000003-0000-0000-c000-000000000000"'
            )
            raise GraphError(
                401, "InvalidAuthenticationToken", outcome, (("WWW-Authenticate", challenge),)
            )
        return outcome

    def _route(
        self, request: GraphRequest, grant: AccessGrant
    ) -> tuple[int, Any, tuple[tuple[str, str], ...]]:
        segments = request.segments
        lowered = [s.lower() for s in segments]
        if lowered[:1] == ["me"]:
            if grant.app_only:
                raise GraphError(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
            mailbox = self._mailboxes[grant.user_oid or ""]
            rest = segments[1:]
        elif lowered[:1] == ["users"] and len(segments) >= 2:
            user = self.identity.find_user(segments[1])
            if user is None or user.oid not in self._mailboxes:
                raise GraphError(
                    404, "ErrorInvalidUser", f"The requested user '{segments[1]}' is invalid."
                )
            if not grant.app_only and user.oid != grant.user_oid:
                raise GraphError(
                    403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
                )
            mailbox = self._mailboxes[user.oid]
            rest = segments[2:]
        else:
            first = segments[0] if segments else ""
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{first}'.")
        return self._route_mailbox(request, grant, mailbox, rest)

    def _route_mailbox(
        self,
        request: GraphRequest,
        grant: AccessGrant,
        mailbox: Mailbox,
        rest: list[str],
    ) -> tuple[int, Any, tuple[tuple[str, str], ...]]:
        method = request.method
        names = [s.lower() for s in rest]
        if not rest:
            _require_method(method, "GET")
            return 200, self._user_resource(mailbox.user), ()
        if names == ["sendmail"]:
            _require_method(method, "POST")
            _require_permission(grant, "Mail.Send")
            self._send_mail(mailbox, request)
            return 202, None, ()
        if names == ["calendars"]:
            _require_method(method, "GET")
            _require_permission(grant, "Calendars.Read", "Calendars.ReadWrite")
            calendars = [self._calendar_resource(mailbox, c) for c in mailbox.calendars.values()]
            context = f"{self.base_url}/$metadata#users('{mailbox.user.oid}')/calendars"
            return 200, {"@odata.context": context, "value": calendars}, ()
        calendar: Calendar | None = None
        if names[:1] == ["calendar"]:
            calendar, tail = mailbox.default_calendar, rest[1:]
        elif names[:1] == ["calendars"]:
            calendar, tail = self._calendar(mailbox, rest[1]), rest[2:]
        else:
            tail = rest
        tail_names = [s.lower() for s in tail]
        if not tail and calendar is not None:
            _require_method(method, "GET")
            _require_permission(grant, "Calendars.Read", "Calendars.ReadWrite")
            return 200, self._calendar_resource(mailbox, calendar), ()
        if method == "GET":
            _require_permission(grant, "Calendars.Read", "Calendars.ReadWrite")
        else:
            _require_permission(grant, "Calendars.ReadWrite")
        if tail_names == ["events"]:
            if method == "POST":
                target = calendar or mailbox.default_calendar
                return self._create(mailbox, target, request)
            _require_method(method, "GET")
            listed = self._list_events(mailbox, calendar or mailbox.default_calendar, request)
            return 200, listed, ()
        if len(tail) in (2, 3) and tail_names[0] == "events":
            event_id = tail[1]
            self._check_calendar(mailbox, calendar, event_id)
            if len(tail) == 3:
                if tail_names[2] != "instances":
                    raise _unknown_segment(tail[2])
                _require_method(method, "GET")
                return 200, self._instances(mailbox, event_id, request), ()
            applied = self._preference_headers(request, None)
            if method == "GET":
                view = self._view(request)
                rendered = self._render(self._resolve(mailbox, event_id), view)
                return 200, _select(rendered, view), applied
            if method == "PATCH":
                body = request.json_body()
                instance = self._update(mailbox, event_id, body, request.headers.get("if-match"))
                return 200, self._render(instance, self._view(request)), applied
            if method == "DELETE":
                self._delete(mailbox, event_id, request.headers.get("if-match"))
                return 204, None, ()
            raise _method_not_allowed(method)
        if tail_names == ["calendarview"]:
            _require_method(method, "GET")
            return self._calendar_view(mailbox, calendar or mailbox.default_calendar, request)
        if tail_names in (["calendarview", "delta"], ["calendarview", "delta()"]):
            _require_method(method, "GET")
            return self._delta(mailbox, calendar or mailbox.default_calendar, request)
        raise _unknown_segment(tail[0] if tail else rest[-1])

    # -- resources -------------------------------------------------------------------

    def _user_resource(self, user: User) -> dict[str, Any]:
        return {
            "@odata.context": f"{self.base_url}/$metadata#users/$entity",
            "id": user.oid,
            "displayName": user.display_name,
            "userPrincipalName": user.upn,
            "mail": user.upn,
        }

    def _calendar_resource(self, mailbox: Mailbox, calendar: Calendar) -> dict[str, Any]:
        return {
            "id": calendar.id,
            "name": calendar.name,
            "color": "auto",
            "hexColor": "",
            "isDefaultCalendar": calendar.is_default,
            "changeKey": calendar.change_key,
            "canShare": True,
            "canViewPrivateItems": True,
            "canEdit": True,
            "isRemovable": not calendar.is_default,
            "isTallyingResponses": True,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "owner": {"name": mailbox.user.display_name, "address": mailbox.user.upn},
        }

    def _calendar(self, mailbox: Mailbox, calendar_id: str | None) -> Calendar:
        if calendar_id is None:
            return mailbox.default_calendar
        calendar = mailbox.calendars.get(calendar_id)
        if calendar is None:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
        return calendar

    def _check_calendar(self, mailbox: Mailbox, calendar: Calendar | None, event_id: str) -> None:
        if calendar is None:
            return
        parsed = _parse_occurrence_id(event_id)
        stored = mailbox.events.get(parsed[0] if parsed else event_id)
        if stored is not None and stored.calendar_id != calendar.id:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)

    # -- event mutation ---------------------------------------------------------------

    def _create(
        self, mailbox: Mailbox, calendar: Calendar, request: GraphRequest
    ) -> tuple[int, Any, tuple[tuple[str, str], ...]]:
        body = request.json_body()
        applied = self._preference_headers(request, None)
        transaction_id = body.get("transactionId")
        if transaction_id:
            # transactionId lets a client retry a create without duplicating the
            # event (https://learn.microsoft.com/graph/api/resources/event).  The
            # docs do not specify the retry's answer; we return the event the
            # first POST created, as that POST would have, with 201.
            for existing in mailbox.events.values():
                if existing.props.get("transactionId") == transaction_id:
                    instance = self._instance_of(existing)
                    return 201, self._render(instance, self._view(request)), applied
        stored = self._build_event(mailbox, calendar.id, body, seeding=False)
        mailbox.events[stored.id] = stored
        return 201, self._render(self._instance_of(stored), self._view(request)), applied

    def _build_event(
        self, mailbox: Mailbox, calendar_id: str, body: Mapping[str, Any], *, seeding: bool
    ) -> StoredEvent:
        now = datetime.now(UTC)
        props = _default_props(mailbox.user)
        extended: dict[str, tuple[str, str]] = {}
        _apply_props(props, extended, body, seeding=seeding, creating=True)
        _validate_event(props, is_exception=False)
        return StoredEvent(
            id=_new_id(),
            calendar_id=calendar_id,
            props=props,
            extended=extended,
            created=now,
            modified=now,
            change_key=_new_change_key(),
        )

    def _update(
        self,
        mailbox: Mailbox,
        event_id: str,
        body: Mapping[str, Any],
        if_match: str | None,
        *,
        seeding: bool = False,
    ) -> Instance:
        instance = self._resolve(mailbox, event_id)
        if if_match is not None and not _etag_matches(if_match, instance.change_key):
            raise GraphError(412, "ErrorIrresolvableConflict", CONFLICT_MESSAGE)
        stored = instance.event
        if "transactionId" in body and body["transactionId"] != stored.props.get("transactionId"):
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "transactionId cannot be changed after the event is created.",
            )
        now = datetime.now(UTC)
        if instance.original is not None:
            if body.get("recurrence"):
                raise GraphError(
                    400, "ErrorInvalidRequest", "An occurrence cannot have its own recurrence."
                )
            original = instance.original
            state = stored.exceptions.get(original) or Occurrence({}, {}, "", now)
            merged = dict(instance.props)
            extended = dict(instance.extended)
            _apply_props(merged, extended, body, seeding=seeding, creating=False)
            _validate_event(merged, is_exception=True)
            patched = {
                k for k in body
                if k in _WRITABLE - {"singleValueExtendedProperties", "transactionId"}
                or (seeding and k in _SEEDABLE)
            }
            state.overrides = {k: merged[k] for k in set(state.overrides) | patched}
            state.extended = {k: v for k, v in extended.items() if stored.extended.get(k) != v}
            state.change_key = _new_change_key()
            state.modified = now
            stored.exceptions[original] = state
            return self._instance_at(stored, original)
        props = dict(stored.props)
        extended = dict(stored.extended)
        _apply_props(props, extended, body, seeding=seeding, creating=False)
        _validate_event(props, is_exception=False)
        if bool(props.get("recurrence")) != bool(stored.props.get("recurrence")):
            # Turning a single event into a series (or back) re-creates the instances.
            stored.exceptions.clear()
            stored.cancelled.clear()
        stored.props, stored.extended = props, extended
        stored.change_key, stored.modified = _new_change_key(), now
        return self._instance_of(stored)

    def _delete(self, mailbox: Mailbox, event_id: str, if_match: str | None) -> None:
        instance = self._resolve(mailbox, event_id)
        if if_match is not None and not _etag_matches(if_match, instance.change_key):
            raise GraphError(412, "ErrorIrresolvableConflict", CONFLICT_MESSAGE)
        if instance.original is not None:
            instance.event.exceptions.pop(instance.original, None)
            instance.event.cancelled.add(instance.original)
            instance.event.modified = datetime.now(UTC)
            return
        del mailbox.events[instance.event.id]

    def _send_mail(self, mailbox: Mailbox, request: GraphRequest) -> None:
        body = request.json_body()
        message = body.get("message")
        if not isinstance(message, dict):
            raise GraphError(400, "ErrorInvalidRequest", "The 'message' parameter is required.")
        recipients = [
            *message.get("toRecipients", []),
            *message.get("ccRecipients", []),
            *message.get("bccRecipients", []),
        ]
        if not recipients:
            raise GraphError(
                400,
                "ErrorInvalidRecipients",
                "At least one recipient isn't valid., A message can't be sent because it "
                "contains no recipients.",
            )
        self.sent_mail.append({
            "from": mailbox.user.upn,
            "message": message,
            "saveToSentItems": body.get("saveToSentItems", True),
            "sentDateTime": format_instant(datetime.now(UTC)),
        })

    # -- reading ------------------------------------------------------------------------

    def _instance_of(self, stored: StoredEvent) -> Instance:
        kind: Literal["singleInstance", "seriesMaster"] = (
            "seriesMaster" if stored.is_series_master else "singleInstance"
        )
        return Instance(
            id=stored.id,
            kind=kind,
            event=stored,
            props=stored.props,
            extended=stored.extended,
            start=_dtz_to_aware(stored.props["start"], "start"),
            end=_dtz_to_aware(stored.props["end"], "end"),
            change_key=stored.change_key,
            modified=stored.modified,
        )

    def _occurrence(self, master: StoredEvent, original: date) -> Instance:
        start = _dtz_to_aware(master.props["start"], "start")
        duration = _dtz_to_aware(master.props["end"], "end") - start
        zone = start.tzinfo or UTC
        occurrence_start = datetime.combine(original, start.time(), zone)
        occurrence_end = (occurrence_start + duration).astimezone(zone)
        props: dict[str, Any] = {
            **master.props,
            "start": {
                "dateTime": format_local(occurrence_start),
                "timeZone": master.props["start"]["timeZone"],
            },
            "end": {
                "dateTime": format_local(occurrence_end),
                "timeZone": master.props["end"]["timeZone"],
            },
        }
        kind: Literal["occurrence", "exception"] = "occurrence"
        extended = master.extended
        change_key = _derived_change_key(master.change_key, original.isoformat())
        modified = master.modified
        state = master.exceptions.get(original)
        if state is not None:
            kind = "exception"
            props.update(state.overrides)
            extended = {**master.extended, **state.extended}
            change_key = _derived_change_key(change_key, state.change_key)
            modified = max(modified, state.modified)
        props["recurrence"] = None
        return Instance(
            id=_occurrence_id(master.id, original),
            kind=kind,
            event=master,
            props=props,
            extended=extended,
            start=_dtz_to_aware(props["start"], "start"),
            end=_dtz_to_aware(props["end"], "end"),
            change_key=change_key,
            modified=modified,
            original=original,
        )

    def _instance_at(self, master: StoredEvent, original: date) -> Instance:
        if original in master.cancelled or original not in set(_series_dates(master, original)):
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
        return self._occurrence(master, original)

    def _resolve(self, mailbox: Mailbox, event_id: str) -> Instance:
        parsed = _parse_occurrence_id(event_id)
        if parsed is not None:
            master = mailbox.events.get(parsed[0])
            if master is None or not master.is_series_master:
                raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
            return self._instance_at(master, parsed[1])
        stored = mailbox.events.get(event_id)
        if stored is None:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
        return self._instance_of(stored)

    def _expand(self, stored: StoredEvent, start: datetime, end: datetime) -> Iterator[Instance]:
        """Instances of one stored event overlapping [start, end)."""
        if not stored.is_series_master:
            instance = self._instance_of(stored)
            if _overlaps(instance, start, end):
                yield instance
            return
        for original in _series_dates(stored, (end + timedelta(days=1)).date()):
            if original in stored.cancelled:
                continue
            instance = self._occurrence(stored, original)
            if _overlaps(instance, start, end):
                yield instance

    def _window(
        self, mailbox: Mailbox, calendar: Calendar, start: datetime, end: datetime
    ) -> dict[str, Instance]:
        instances = [
            instance
            for stored in mailbox.events.values()
            if stored.calendar_id == calendar.id
            for instance in self._expand(stored, start, end)
        ]
        instances.sort(key=lambda i: (i.start, i.id))
        return {i.id: i for i in instances}

    def _view(self, request: GraphRequest, *, allow_select: bool = True) -> View:
        zone_name = request.preferences().get("outlook.timezone", "UTC")
        zone = resolve_zone(zone_name)
        if zone is None:
            zone_name, zone = "UTC", UTC
        expand = _parse_expand(request.query.get("$expand"))
        select = None
        if allow_select and request.query.get("$select"):
            select = frozenset(s.strip() for s in request.query["$select"].split(",") if s.strip())
        return View(zone_name, zone, expand, select)

    def _preference_headers(
        self, request: GraphRequest, page_size: int | None
    ) -> tuple[tuple[str, str], ...]:
        prefs = request.preferences()
        applied = []
        if "outlook.timezone" in prefs and resolve_zone(prefs["outlook.timezone"]) is not None:
            applied.append(f'outlook.timezone="{prefs["outlook.timezone"]}"')
        if page_size is not None and "odata.maxpagesize" in prefs:
            applied.append(f"odata.maxpagesize={page_size}")
        return (("Preference-Applied", ", ".join(applied)),) if applied else ()

    def _page_size(self, request: GraphRequest) -> int:
        raw = request.preferences().get("odata.maxpagesize") or request.query.get("$top")
        if raw is None:
            return self.default_page_size
        try:
            size = int(raw)
        except ValueError as exc:
            raise GraphError(400, "BadRequest", f"Invalid page size '{raw}'.") from exc
        if size < 1:
            raise GraphError(400, "BadRequest", f"Invalid page size '{raw}'.")
        return size

    def _render(self, instance: Instance, view: View) -> dict[str, Any]:
        props = instance.props
        stored = instance.event
        out: dict[str, Any] = {
            "@odata.etag": f'W/"{instance.change_key}"',
            "id": instance.id,
            "createdDateTime": format_instant(stored.created),
            "lastModifiedDateTime": format_instant(instance.modified),
            "changeKey": instance.change_key,
            "categories": list(props["categories"] or []),
        }
        if props.get("transactionId") and instance.kind in ("singleInstance", "seriesMaster"):
            # "only returned in a response payload if an app has set it"
            out["transactionId"] = props["transactionId"]
        body = props["body"] or {}
        out.update({
            "originalStartTimeZone": props["originalStartTimeZone"] or props["start"]["timeZone"],
            "originalEndTimeZone": props["originalEndTimeZone"] or props["end"]["timeZone"],
            "iCalUId": props["iCalUId"],
            "reminderMinutesBeforeStart": props["reminderMinutesBeforeStart"],
            "isReminderOn": props["isReminderOn"],
            "hasAttachments": False,
            "subject": props["subject"],
            "bodyPreview": re.sub(r"<[^>]+>", "", str(body.get("content", ""))).strip()[:255],
            "importance": props["importance"],
            "sensitivity": props["sensitivity"],
            "isAllDay": props["isAllDay"],
            "isCancelled": props["isCancelled"],
            "isOrganizer": props["isOrganizer"],
            "responseRequested": props["responseRequested"],
            "seriesMasterId": stored.id if instance.kind in ("occurrence", "exception") else None,
            "showAs": props["showAs"],
            "type": instance.kind,
            "webLink": f"https://outlook.office365.com/owa/?itemid={quote(instance.id)}&path=/calendar/item",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": props["isOnlineMeeting"],
            "onlineMeetingProvider": props["onlineMeetingProvider"],
            "allowNewTimeProposals": props["allowNewTimeProposals"],
            "isDraft": False,
            "hideAttendees": props["hideAttendees"],
            "responseStatus": dict(props["responseStatus"] or {}),
            "body": dict(body),
            "start": self._render_time(instance, instance.start, view),
            "end": self._render_time(instance, instance.end, view),
            "location": props["location"],
            "locations": list(props["locations"] or []),
            "recurrence": props["recurrence"] if instance.kind == "seriesMaster" else None,
            "attendees": list(props["attendees"] or []),
            "organizer": props["organizer"],
            "onlineMeeting": None,
        })
        if view.expand is not None:
            matched = [
                {"id": prop_id, "value": value}
                for key, (prop_id, value) in instance.extended.items()
                if not view.expand or key in view.expand
            ]
            if matched:
                out["singleValueExtendedProperties"] = matched
        return out

    @staticmethod
    def _render_time(instance: Instance, moment: datetime, view: View) -> dict[str, str]:
        if instance.props["isAllDay"]:
            # All-day events are floating dates: keep the wall-clock midnight.
            return {"dateTime": format_local(moment), "timeZone": view.zone_name}
        return {"dateTime": format_local(moment.astimezone(view.zone)), "timeZone": view.zone_name}

    def _list_events(
        self, mailbox: Mailbox, calendar: Calendar, request: GraphRequest
    ) -> JsonObject:
        view = self._view(request)
        predicate = _parse_list_filter(request.query.get("$filter"))
        stored = sorted(
            (e for e in mailbox.events.values() if e.calendar_id == calendar.id),
            key=lambda e: e.created,
        )
        instances = [self._instance_of(e) for e in stored]
        instances = [i for i in instances if predicate(i)]
        return self._plain_page(request, view, instances)

    def _instances(self, mailbox: Mailbox, event_id: str, request: GraphRequest) -> JsonObject:
        stored = mailbox.events.get(event_id)
        if stored is None:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
        start, _ = _window_bound(request.query, "startDateTime")
        end, _ = _window_bound(request.query, "endDateTime")
        instances = list(self._expand(stored, start, end)) if stored.is_series_master else []
        return self._plain_page(request, self._view(request), instances)

    def _calendar_view(
        self, mailbox: Mailbox, calendar: Calendar, request: GraphRequest
    ) -> tuple[int, Any, tuple[tuple[str, str], ...]]:
        start, _ = _window_bound(request.query, "startDateTime")
        end, _ = _window_bound(request.query, "endDateTime")
        instances = list(self._window(mailbox, calendar, start, end).values())
        payload = self._plain_page(request, self._view(request), instances)
        return 200, payload, self._preference_headers(request, self._page_size(request))

    def _plain_page(
        self, request: GraphRequest, view: View, instances: list[Instance]
    ) -> JsonObject:
        """Stateless paging with $skip, as Graph does for non-delta collections."""
        size = self._page_size(request)
        try:
            skip = int(request.query.get("$skip", "0"))
        except ValueError as exc:
            raise GraphError(400, "BadRequest", "Invalid $skip.") from exc
        page = instances[skip:skip + size]
        payload: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#Collection(event)",
            "value": [_select(self._render(i, view), view) for i in page],
        }
        if skip + size < len(instances):
            query = {_query_key(k): v for k, v in request.query.items() if k != "$skip"}
            query["$skip"] = str(skip + size)
            payload["@odata.nextLink"] = f"{self.base_url}{request.path}?{_encode(query)}"
        return payload

    # -- delta --------------------------------------------------------------------------

    def _delta(
        self, mailbox: Mailbox, calendar: Calendar, request: GraphRequest
    ) -> tuple[int, Any, tuple[tuple[str, str], ...]]:
        """calendarView delta, https://learn.microsoft.com/graph/delta-query-events.

        State tokens are opaque: ``$skiptoken`` continues a round, ``$deltatoken``
        starts the next one and returns only what changed since the round that
        issued it (changed instances in full, vanished ones as ``@removed``).
        """
        page_size = self._page_size(request)
        view = self._view(request, allow_select=False)
        token = request.query.get("$deltatoken") or request.query.get("$skiptoken")
        if token is None:
            start, start_raw = _window_bound(request.query, "startDateTime")
            end, end_raw = _window_bound(request.query, "endDateTime")
            restart = {"startDateTime": start_raw, "endDateTime": end_raw}
            if request.query.get("$expand"):
                restart["$expand"] = request.query["$expand"]
            current = self._window(mailbox, calendar, start, end)
            round_ = DeltaRound(
                owner_oid=mailbox.user.oid,
                calendar_id=calendar.id,
                start=start,
                end=end,
                restart_query=restart,
                expand=view.expand,
                snapshot={i: inst.change_key for i, inst in current.items()},
                pending=[(i, False) for i in current],
                is_delta_link=False,
                generation=self._delta_generation,
            )
        else:
            previous = self._delta_rounds.get(token)
            if previous is None or previous.owner_oid != mailbox.user.oid or (
                previous.calendar_id != calendar.id
            ):
                raise self._sync_state_not_found(request, None)
            if previous.is_delta_link and previous.generation != self._delta_generation:
                raise self._sync_state_not_found(request, previous)
            current = self._window(mailbox, calendar, previous.start, previous.end)
            round_ = replace(previous, pending=list(previous.pending))
            if previous.is_delta_link:
                changed = [
                    (i, False) for i, inst in current.items()
                    if previous.snapshot.get(i) != inst.change_key
                ]
                removed = [(i, True) for i in previous.snapshot if i not in current]
                round_.pending = changed + removed
                round_.snapshot = {i: inst.change_key for i, inst in current.items()}
            view = View(view.zone_name, view.zone, round_.expand)
        page, round_.pending = round_.pending[:page_size], round_.pending[page_size:]
        values: list[dict[str, Any]] = []
        for instance_id, was_removed in page:
            instance = current.get(instance_id)
            if was_removed or instance is None:
                values.append({
                    "@odata.type": "#microsoft.graph.event",
                    "id": instance_id,
                    "@removed": {"reason": "deleted"},
                })
            else:
                values.append(self._render(instance, view))
        new_token = secrets.token_urlsafe(32)
        round_.is_delta_link = not round_.pending
        round_.generation = self._delta_generation
        self._delta_rounds[new_token] = round_
        payload: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#Collection(event)",
        }
        if round_.pending:
            payload["@odata.nextLink"] = f"{self.base_url}{request.path}?$skiptoken={new_token}"
        else:
            payload["@odata.deltaLink"] = f"{self.base_url}{request.path}?$deltatoken={new_token}"
        payload["value"] = values
        return 200, payload, self._preference_headers(request, page_size)

    def _sync_state_not_found(self, request: GraphRequest, round_: DeltaRound | None) -> GraphError:
        # An expired or unknown state token means "start over with a full sync".
        # Outlook answers 410 Gone, sometimes with a Location to restart from;
        # directory resources answer 400 (see delta_expired_status).
        message = (
            "The sync state generation is not found. The delta token is expired and data "
            "must be synchronized again."
        )
        headers: tuple[tuple[str, str], ...] = ()
        if round_ is not None and self.delta_expired_status == 410:
            restart = f"{self.base_url}{request.path}?{_encode(round_.restart_query)}"
            headers = (("Location", restart),)
        return GraphError(self.delta_expired_status, "syncStateNotFound", message, headers)

    # -- $batch -------------------------------------------------------------------------

    def _batch(self, request: GraphRequest, hook: BatchHook) -> Reply:
        """JSON batching, https://learn.microsoft.com/graph/json-batching.

        Items run in order (dependsOn is honoured; an item whose dependency
        failed gets 424).  Responses are listed in request order; real Graph may
        reorder them, so clients must match on ``id``.
        """
        with self._lock:
            self._authenticate(request)
        payload = request.json_body()
        items = payload.get("requests")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        if len(items) > self.max_batch:
            raise GraphError(
                400,
                "BadRequest",
                f"The number of batch request steps ({len(items)}) exceeds the maximum of "
                f"{self.max_batch}.",
            )
        seen: set[str] = set()
        for item in items:
            item_id = item.get("id")
            complete = isinstance(item_id, str) and item.get("method") and item.get("url")
            if not (complete and item_id):
                raise GraphError(400, "BadRequest", "Each batch request needs id, method and url.")
            if item_id in seen:
                raise GraphError(400, "BadRequest", f"Batch request id '{item_id}' is not unique.")
            depends = item.get("dependsOn") or []
            if not isinstance(depends, list) or any(d not in seen for d in depends):
                raise GraphError(
                    400,
                    "BadRequest",
                    f"dependsOn of request '{item_id}' must name earlier requests.",
                )
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            if "body" in item and "content-type" not in headers:
                raise GraphError(
                    400,
                    "BadRequest",
                    f"Write request id : {item_id} does not contain Content-Type header or body.",
                )
            seen.add(item_id)
        statuses: dict[str, int] = {}
        responses: list[dict[str, Any]] = []
        for item in items:
            reply = self._batch_item(request, item, statuses, hook)
            statuses[item["id"]] = reply.status
            entry: dict[str, Any] = {"id": item["id"], "status": reply.status}
            entry["headers"] = dict(reply.headers)
            if reply.body:
                entry["body"] = json.loads(reply.body)
            responses.append(entry)
        return Reply.json(200, {"responses": responses}, (), GRAPH_JSON)

    def _batch_item(
        self,
        outer: GraphRequest,
        item: Mapping[str, Any],
        statuses: Mapping[str, int],
        hook: BatchHook,
    ) -> Reply:
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        if any(statuses.get(d, 424) >= 400 for d in item.get("dependsOn") or []):
            return graph_error_reply(
                424, "FailedDependency", "Dependent request failed.", headers
            )
        # Sub-requests run with the batch's own credentials.
        headers.setdefault("authorization", outer.headers.get("authorization", ""))
        url = str(item["url"])
        if "://" in url:
            return graph_error_reply(
                400, "BadRequest", "Batch request URLs must be relative to the version.", headers
            )
        path, _, query_string = url.lstrip("/").partition("?")
        body = item.get("body")
        raw_body = b"" if body is None else (
            json.dumps(body).encode("utf-8") if not isinstance(body, str) else body.encode("utf-8")
        )
        method = str(item["method"]).upper()
        sub = GraphRequest(method, "/" + path, parse_query(query_string), headers, raw_body)
        target = f"/v1.0/{path}" + (f"?{query_string}" if query_string else "")

        def run() -> Reply:
            if [s.lower() for s in sub.segments] == ["$batch"]:
                return graph_error_reply(400, "BadRequest", "Batches cannot be nested.", headers)
            return self.dispatch(sub)

        return hook(str(item["id"]), method, target, headers, raw_body, run)


# -- helpers -------------------------------------------------------------------------------


def _default_props(user: User) -> dict[str, Any]:
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


def _apply_props(
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
        if key in _READ_ONLY:
            if seeding and key in _SEEDABLE:
                props[key] = value
            continue
        if key not in _WRITABLE:
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


def _validate_event(props: dict[str, Any], *, is_exception: bool) -> None:
    """Check an event's merged properties; normalises start/end to carry a timeZone."""
    if props.get("start") is None or props.get("end") is None:
        raise GraphError(400, "ErrorInvalidRequest", "An event must have a start and an end.")
    start = _dtz_to_aware(props["start"], "start")
    end = _dtz_to_aware(props["end"], "end")
    for name in ("start", "end"):
        props[name] = {
            "dateTime": props[name]["dateTime"],
            "timeZone": props[name].get("timeZone") or "UTC",
        }
    if end < start:
        raise GraphError(
            400, "ErrorInvalidRequest", "The end time of an event can't be before its start time."
        )
    if props.get("isAllDay") and any(
        (t.hour, t.minute, t.second, t.microsecond) != (0, 0, 0, 0) for t in (start, end)
    ):
        # "start and end time must be set to midnight" for all-day events.
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "For an all-day event, the start and end times must be set to midnight.",
        )
    if props.get("showAs") not in _SHOW_AS:
        raise GraphError(
            400,
            "RequestBodyRead",
            f"Cannot convert the literal '{props.get('showAs')}' to the expected type "
            "'microsoft.graph.freeBusyStatus'.",
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
        _check_recurrence(props["recurrence"])


def _check_recurrence(recurrence: Any) -> None:
    pattern = recurrence.get("pattern") if isinstance(recurrence, dict) else None
    range_ = recurrence.get("range") if isinstance(recurrence, dict) else None
    if not isinstance(pattern, dict) or not isinstance(range_, dict):
        raise _bad_recurrence("recurrence needs a pattern and a range.")
    kinds = (
        "daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly",
    )
    if pattern.get("type") not in kinds:
        raise _bad_recurrence(f"Unsupported pattern {pattern.get('type')!r}.")
    if range_.get("type") not in ("endDate", "noEnd", "numbered"):
        raise _bad_recurrence(f"Unsupported range {range_.get('type')!r}.")
    try:
        date.fromisoformat(range_["startDate"])
        if range_["type"] == "endDate":
            date.fromisoformat(range_["endDate"])
        if range_["type"] == "numbered" and int(range_["numberOfOccurrences"]) < 1:
            raise ValueError("numberOfOccurrences")
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad_recurrence(f"Invalid recurrence range: {exc}.") from exc
    needs_days = pattern["type"] in ("weekly", "relativeMonthly", "relativeYearly")
    if needs_days and not pattern.get("daysOfWeek"):
        raise _bad_recurrence("daysOfWeek is required for this pattern.")


def _bad_recurrence(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRecurrence", message)


def _series_dates(master: StoredEvent, until: date) -> Iterator[date]:
    """Original dates of a series' occurrences, up to ``until`` inclusive."""
    recurrence = master.props["recurrence"]
    pattern, range_ = recurrence["pattern"], recurrence["range"]
    first = date.fromisoformat(range_["startDate"])
    last = date.fromisoformat(range_["endDate"]) if range_["type"] == "endDate" else None
    remaining = int(range_["numberOfOccurrences"]) if range_["type"] == "numbered" else None
    for candidate in _pattern_dates(pattern, first):
        if candidate > until or (last is not None and candidate > last):
            return
        if remaining is not None:
            if remaining == 0:
                return
            remaining -= 1
        yield candidate


def _pattern_dates(pattern: Mapping[str, Any], first: date) -> Iterator[date]:
    """Dates matching a Graph recurrencePattern on or after ``first`` (unbounded)."""
    interval = max(int(pattern.get("interval") or 1), 1)
    kind = pattern["type"]
    weekdays = sorted(_WEEKDAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or [])
    if kind == "daily":
        current = first
        while True:
            yield current
            current += timedelta(days=interval)
    elif kind == "weekly":
        week_start_day = _WEEKDAYS.index(str(pattern.get("firstDayOfWeek") or "sunday").lower())
        week = first - timedelta(days=(first.weekday() - week_start_day) % 7)
        offsets = sorted((d - week_start_day) % 7 for d in weekdays)
        while True:
            for offset in offsets:
                candidate = week + timedelta(days=offset)
                if candidate >= first:
                    yield candidate
            week += timedelta(weeks=interval)
    else:
        yearly = kind.endswith("Yearly")
        step = 12 * interval if yearly else interval
        year, month = first.year, (int(pattern["month"]) if yearly else first.month)
        if yearly and date(year, month, 1) < date(first.year, first.month, 1):
            year += 1
        for _ in range(5000):
            in_month = _month_date(pattern, year, month, weekdays)
            if in_month is not None and in_month >= first:
                yield in_month
            month += step
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


def _month_date(
    pattern: Mapping[str, Any], year: int, month: int, weekdays: list[int]
) -> date | None:
    if pattern["type"].startswith("absolute"):
        try:
            return date(year, month, int(pattern["dayOfMonth"]))
        except ValueError:
            return None  # e.g. the 31st in a 30-day month: Outlook skips it
    days = [
        date(year, month, d)
        for d in range(1, 32)
        if _valid_day(year, month, d) and date(year, month, d).weekday() in weekdays
    ]
    index = str(pattern.get("index") or "first").lower()
    position = _INDEXES.index(index)
    if index == "last":
        return days[-1] if days else None
    return days[position] if position < len(days) else None


def _valid_day(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _overlaps(instance: Instance, start: datetime, end: datetime) -> bool:
    if instance.start == instance.end:
        return start <= instance.start < end
    return instance.start < end and instance.end > start


def _parse_expand(raw: str | None) -> frozenset[str] | None:
    """``singleValueExtendedProperties($filter=id eq '...' [or id eq '...'])``."""
    if not raw:
        return None
    match = re.fullmatch(
        r"\s*singleValueExtendedProperties\s*(?:\(\s*\$filter\s*=\s*(.*)\))?\s*", raw, re.IGNORECASE
    )
    if match is None:
        raise GraphError(
            400,
            "BadRequest",
            f"Parsing OData Select and Expand failed: unsupported $expand '{raw}'.",
        )
    if match.group(1) is None:
        return frozenset()
    ids = []
    for clause in re.split(r"\s+or\s+", match.group(1).strip(), flags=re.IGNORECASE):
        found = re.fullmatch(r"\(?\s*id\s+eq\s+'(.*)'\s*\)?", clause.strip(), re.IGNORECASE)
        if found is None:
            raise GraphError(400, "BadRequest", f"Unsupported $expand filter '{clause}'.")
        ids.append(found.group(1).replace("''", "'").lower())
    return frozenset(ids)


def _parse_list_filter(raw: str | None) -> Callable[[Instance], bool]:
    """``singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')``."""
    if not raw:
        return lambda _instance: True
    match = re.fullmatch(
        r"\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'(.*?)'"
        r"(?:\s+and\s+\1/value\s+eq\s+'(.*?)')?\s*\)\s*",
        raw,
        re.IGNORECASE,
    )
    if match is None:
        raise GraphError(400, "BadRequest", f"This fake does not support $filter '{raw}'.")
    prop_id, value = match.group(2).lower(), match.group(3)

    def predicate(instance: Instance) -> bool:
        found = instance.extended.get(prop_id)
        return found is not None and (value is None or found[1] == value)

    return predicate


def _select(rendered: dict[str, Any], view: View) -> dict[str, Any]:
    if not view.select:
        return rendered
    keep = {"@odata.etag", "id", "singleValueExtendedProperties"} | view.select
    return {k: v for k, v in rendered.items() if k in keep}


def parse_query(query_string: str) -> dict[str, str]:
    """Query parameters with lower-cased names (Graph's are case-insensitive)."""
    parsed = parse_qs(query_string, keep_blank_values=True)
    return {k.lower(): v[0] for k, v in parsed.items()}


def _query_key(key: str) -> str:
    known = {"startdatetime": "startDateTime", "enddatetime": "endDateTime"}
    return known.get(key, key)


def _encode(query: Mapping[str, str]) -> str:
    return urlencode(query, safe="$(),'", quote_via=quote)


def _error_reply(exc: GraphError, request: GraphRequest) -> Reply:
    return graph_error_reply(exc.status, exc.code, exc.message, request.headers, exc.headers)


def _require_method(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise _method_not_allowed(method)


def _method_not_allowed(method: str) -> GraphError:
    return GraphError(405, "BadRequest", f"The HTTP method '{method}' is not allowed here.")


def _unknown_segment(segment: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def _require_permission(grant: AccessGrant, *permissions: str) -> None:
    if not grant.allows(*permissions):
        raise GraphError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
