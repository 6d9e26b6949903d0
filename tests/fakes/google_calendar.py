"""Local fake of Google Calendar API v3 and Google's OAuth 2.0 token endpoint.

Faithful enough that code written against the real ``google-api-python-client``
and ``google-auth`` libraries can be exercised end to end over HTTP.
Calendar API reference: https://developers.google.com/calendar/api/v3/reference/events
Sync guide: https://developers.google.com/calendar/api/guides/sync
Errors guide: https://developers.google.com/calendar/api/guides/errors

``build(..., client_options={"api_endpoint": server.url})`` makes the client
send ``/calendars/...`` (the endpoint replaces rootUrl *and* servicePath), while
Google's own paths are ``/calendar/v3/calendars/...``; both are served.
``service.new_batch_http_request()`` always targets Google's rootUrl, so batches
must be built as ``BatchHttpRequest(callback=..., batch_uri=server.batch_url)``.

Supported: events list/get/insert/update/patch/delete, sync and page tokens,
the list filters listed in ``_Store.list_events``, ETag preconditions, batch,
OAuth refresh_token / authorization_code / jwt-bearer grants, fault injection.
Recurrence: RRULE (any rule dateutil parses; DAILY/WEEKLY with COUNT, UNTIL,
INTERVAL and BYDAY are tested), EXDATE and RDATE (date, UTC or TZID values);
expansion stops at 1000 instances per series. Stored exceptions (events whose
``recurringEventId`` names a recurring event) override the generated instance
with the same id. Not supported: events.instances/import/move/quickAdd/watch,
calendarList, ACLs, the ``timeZone`` list parameter beyond echoing it in the
response, ``maxAttendees``, ``eventTypes`` and fields selectors.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import secrets
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule

from .google_batch import parse_batch, render_batch

__all__ = ["Fault", "GoogleCalendarServer", "RecordedRequest"]

JSON = dict[str, Any]
_LOG = logging.getLogger(__name__)
_UTC = UTC
_DEFAULT_SCOPE = "https://www.googleapis.com/auth/calendar"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_ETAG_BASE = 3_400_000_000_000_000
_MAX_INSTANCES = 1000
# Event ids: "characters allowed in the ID are those used in base32hex encoding,
# i.e. lowercase letters a-v and digits 0-9 ... the length of the ID must be
# between 5 and 1024 characters" (Events resource, ``id``).
_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
_EVENTS_PATH = re.compile(
    r"^/(?:calendar/v3/)?calendars/(?P<calendar>[^/]+)/events(?:/(?P<event>[^/]+))?/?$"
)
_BATCH_PATH = re.compile(r"^/batch(?:/calendar/v3)?/?$")
_TOKEN_PATH = "/token"
_WWW_AUTHENTICATE = 'Bearer realm="https://accounts.google.com/"'
# events.list: these "cannot be specified together with nextSyncToken".
_SYNC_INCOMPATIBLE = ("iCalUID", "orderBy", "privateExtendedProperty", "q",
                      "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin")
_SERVER_FIELDS = (
    "kind", "etag", "created", "updated", "htmlLink", "creator", "organizer", "sequence",
)
# Best-effort google.rpc.Code names; Calendar clients key on errors[].reason.
_CANONICAL = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
              404: "NOT_FOUND", 409: "ALREADY_EXISTS", 410: "FAILED_PRECONDITION",
              412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
              503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_FAULT_REASONS = {401: "authError", 403: "rateLimitExceeded", 429: "rateLimitExceeded"}
_REASON_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "backendError": "Backend Error",
    "authError": "Invalid Credentials",
}
_USAGE_LIMITS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)


@dataclass
class RecordedRequest:
    """One request as the fake saw it (batch sub-requests have ``batch_part=True``).

    ``headers`` keys are lower-case; batch parts carry the outer request's
    headers merged under their own, which is how Google applies them.
    ``status`` is what was answered, ``None`` for a reset connection.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    batch_part: bool = False
    status: int | None = None

    def param(self, name: str) -> str | None:
        """Last value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        """The body decoded as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    """A failure to inject into the next ``times`` matching requests.

    kind: ``status`` answers ``status`` with Google's error JSON (default reason
    per status, e.g. 403/429 -> rateLimitExceeded, 5xx -> backendError) and an
    optional Retry-After; ``reset`` aborts the TCP connection (RST) without
    processing the request; ``truncate`` processes the request, then sends the
    headers and half the body and closes; ``hang`` waits ``delay`` seconds, then
    answers normally. Filters: ``method``, ``path_contains``, ``batch_part``
    (None = both top-level and batch sub-requests), ``match`` predicate, and
    ``endpoint`` ("calendar" = Calendar and batch requests, "token", or "any").
    ``reset``/``truncate`` never match a batch sub-request.
    """

    status: int = 503
    reason: str | None = None
    message: str | None = None
    retry_after: int | None = None
    kind: Literal["status", "reset", "truncate", "hang"] = "status"
    delay: float = 0.0
    method: str | None = None
    path_contains: str | None = None
    batch_part: bool | None = None
    match: Callable[[RecordedRequest], bool] | None = None
    endpoint: Literal["calendar", "token", "any"] = "calendar"
    times: int = 1

    def applies_to(self, request: RecordedRequest, endpoint: str) -> bool:
        """Whether this fault matches ``request`` sent to ``endpoint``."""
        if self.endpoint not in ("any", endpoint):
            return False
        if request.batch_part and self.kind in ("reset", "truncate"):
            return False
        if self.batch_part is not None and self.batch_part != request.batch_part:
            return False
        if self.method is not None and self.method.upper() != request.method:
            return False
        if self.path_contains is not None and self.path_contains not in request.path:
            return False
        return self.match is None or self.match(request)


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
                  json.dumps(payload).encode())


class ApiError(Exception):
    """A Calendar API error, rendered in Google's JSON error format."""

    def __init__(self, code: int, reason: str, message: str, *, domain: str = "global",
                 location: str | None = None, location_type: str = "parameter",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.domain = code, reason, message, domain
        self.location, self.location_type, self.headers = location, location_type, headers or {}

    def reply(self) -> _Reply:
        detail = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location is not None:
            detail |= {"locationType": self.location_type, "location": self.location}
        error = {"code": self.code, "message": self.message, "errors": [detail],
                 "status": _CANONICAL.get(self.code, "UNKNOWN")}
        return _json_reply(self.code, {"error": error}, self.headers)


def _not_found() -> ApiError:
    return ApiError(404, "notFound", "Not Found")


def _new_event_id() -> str:
    return "".join(secrets.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(26))


# --- time and recurrence --------------------------------------------------------

def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _parse_query_time(value: str, name: str) -> datetime:
    """events.list timeMin/timeMax/updatedMin: "RFC3339 timestamp with mandatory time zone
    offset"."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(400, "badRequest", "Bad Request", location=name)
    return parsed.astimezone(_UTC)


def _moment(when: JSON, cal_tz: str) -> datetime:
    """Instant of an EventDateTime; all-day dates start at midnight in the calendar's zone."""
    if "date" in when:
        day = date.fromisoformat(when["date"])
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(cal_tz)).astimezone(_UTC)
    moment = datetime.fromisoformat(when["dateTime"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(when.get("timeZone") or cal_tz))
    return moment.astimezone(_UTC)


def _span(event: JSON, cal_tz: str) -> tuple[datetime, datetime]:
    return _moment(event["start"], cal_tz), _moment(event["end"], cal_tz)


_UNTIL = re.compile(r"UNTIL=(\d{8})(?:T(\d{6})(Z?))?", re.IGNORECASE)


def _floating_rule(rule: str, tz: ZoneInfo) -> str:
    """Rewrite UNTIL as floating local time: dateutil refuses UTC UNTIL with a floating DTSTART."""
    def fix(found: re.Match[str]) -> str:
        day, clock, utc = found.groups()
        if clock is None:
            return f"UNTIL={day}T235959"
        if not utc:
            return found.group(0)
        moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=_UTC).astimezone(tz)
        return f"UNTIL={moment:%Y%m%dT%H%M%S}"
    return _UNTIL.sub(fix, rule)


def _floating_stamp(stamp: str, params: list[str], tz: ZoneInfo, first: datetime) -> datetime:
    """An EXDATE/RDATE value as floating local time in the series' zone."""
    stamp = stamp.strip()
    if len(stamp) == 8:
        return datetime.combine(datetime.strptime(stamp, "%Y%m%d").date(), first.time())
    moment = datetime.strptime(stamp.rstrip("Zz"), "%Y%m%dT%H%M%S")
    if stamp[-1] in "Zz":
        return moment.replace(tzinfo=_UTC).astimezone(tz).replace(tzinfo=None)
    tzid = next((p.split("=", 1)[1] for p in params if p.upper().startswith("TZID=")), None)
    if tzid is None:
        return moment
    return moment.replace(tzinfo=ZoneInfo(tzid)).astimezone(tz).replace(tzinfo=None)


def _expand(
    master: JSON, cal_tz: str, until: datetime | None, limit: int = _MAX_INSTANCES
) -> list[JSON]:
    """Generated instances of a recurring event starting before ``until``.

    Expansion runs in the event's own time zone so wall-clock times survive DST.
    Instance ids follow Google: ``{id}_{YYYYMMDDTHHMMSSZ}`` (UTC start) for timed
    events and ``{id}_{YYYYMMDD}`` for all-day events.
    """
    start, end = master["start"], master["end"]
    all_day = "date" in start
    tz = ZoneInfo(cal_tz if all_day else start.get("timeZone") or cal_tz)
    if all_day:
        first = datetime.fromisoformat(start["date"])
        length = date.fromisoformat(end["date"]) - date.fromisoformat(start["date"])
    else:
        begin, finish = _span(master, cal_tz)
        first, length = begin.astimezone(tz).replace(tzinfo=None), finish - begin
    rules = rrule.rruleset()
    for line in master.get("recurrence") or []:
        head, _, value = line.partition(":")
        name, *params = head.strip().split(";")
        if name.upper() == "RRULE":
            rules.rrule(rrule.rrulestr(_floating_rule(value, tz), dtstart=first))
        elif name.upper() in ("EXDATE", "RDATE"):
            add = rules.exdate if name.upper() == "EXDATE" else rules.rdate
            for stamp in value.split(","):
                add(_floating_stamp(stamp, params, tz, first))
        else:
            raise ValueError(f"unsupported recurrence line {line!r}")
    instances: list[JSON] = []
    for local in rules:
        if len(instances) >= limit or (until is not None and local.replace(tzinfo=tz) >= until):
            break
        instance = {key: value for key, value in master.items() if key != "recurrence"}
        if all_day:
            suffix = f"{local:%Y%m%d}"
            instance["start"] = {"date": local.date().isoformat()}
            instance["end"] = {"date": (local.date() + length).isoformat()}
        else:
            begin = local.replace(tzinfo=tz)
            suffix = f"{begin.astimezone(_UTC):%Y%m%dT%H%M%SZ}"
            end_tz = end.get("timeZone") or tz.key
            finish = (begin + length).astimezone(ZoneInfo(end_tz))
            instance["start"] = {"dateTime": _rfc3339(begin),
                                 "timeZone": start.get("timeZone") or tz.key}
            instance["end"] = {"dateTime": _rfc3339(finish), "timeZone": end_tz}
        instance |= {"id": f"{master['id']}_{suffix}", "recurringEventId": master["id"],
                     "originalStartTime": dict(instance["start"])}
        instances.append(instance)
    return instances


def _instance_until(suffix: str, cal_tz: str) -> datetime | None:
    """Expansion bound that is just past the instance named by an id suffix."""
    try:
        if len(suffix) == 16:
            moment = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=_UTC)
            return moment + timedelta(seconds=1)
        if len(suffix) == 8:
            day = datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=ZoneInfo(cal_tz))
            return day + timedelta(days=1)
    except ValueError:
        return None
    return None


def _validate_event(event: JSON, cal_tz: str) -> None:
    """Reject resources Google rejects; messages follow Google's where known."""
    all_day: list[bool] = []
    for key in ("start", "end"):
        when = event.get(key)
        if not isinstance(when, dict) or ("date" in when) == ("dateTime" in when):
            raise ApiError(400, "required", f"Missing {key} time.")
        try:
            if "date" in when:
                date.fromisoformat(when["date"])
            elif (datetime.fromisoformat(when["dateTime"]).tzinfo is None
                  and not when.get("timeZone")):
                raise ApiError(400, "required", f"Missing time zone definition for {key} time.")
            if when.get("timeZone"):
                ZoneInfo(when["timeZone"])
        except (TypeError, ValueError, KeyError, ZoneInfoNotFoundError) as exc:
            raise ApiError(400, "invalid", f"Invalid {key} time.") from exc
        all_day.append("date" in when)
    if all_day[0] != all_day[1]:
        raise ApiError(400, "invalid", "Start and end must both be dates or both be date-times.")
    begin, finish = _span(event, cal_tz)
    if finish < begin or (all_day[0] and finish == begin):
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.",
                       domain="calendar")
    recurrence = event.get("recurrence")
    if recurrence is not None:
        if not isinstance(recurrence, list) or not all(isinstance(r, str) for r in recurrence):
            raise ApiError(400, "invalid", "Invalid recurrence rule.")
        if not all_day[0] and not event["start"].get("timeZone"):
            raise ApiError(400, "required", "Missing time zone definition for start time.")
        try:
            _expand(event, cal_tz, None, limit=1)
        except (TypeError, ValueError, KeyError) as exc:
            raise ApiError(400, "invalid", "Invalid recurrence rule.") from exc
    attendees = event.get("attendees", [])
    if not isinstance(attendees, list) or not all(
        isinstance(attendee, dict) and attendee.get("email") for attendee in attendees
    ):
        raise ApiError(400, "required", "Missing attendee email.")


def _merge(target: JSON, patch: JSON) -> JSON:
    """Patch semantics: objects merge, arrays and scalars replace, null clears.

    https://developers.google.com/calendar/api/guides/performance#patch
    """
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _stub(event: JSON) -> JSON:
    """Deleted events carry only id (and, for instances, recurringEventId/originalStartTime)."""
    stub = {"kind": "calendar#event", "etag": event["etag"], "id": event["id"],
            "status": "cancelled"}
    for key in ("recurringEventId", "originalStartTime"):
        if key in event:
            stub[key] = copy.deepcopy(event[key])
    return stub


def _render(event: JSON) -> JSON:
    return _stub(event) if event.get("status") == "cancelled" else copy.deepcopy(event)


def _search_text(event: JSON) -> str:
    people = [event.get("organizer") or {}, *(event.get("attendees") or [])]
    words = [event.get(k, "") for k in ("summary", "description", "location")]
    words += [str(p.get(k, "")) for p in people for k in ("email", "displayName")]
    return " ".join(str(w) for w in words).casefold()


# --- store ----------------------------------------------------------------------

@dataclass
class _Calendar:
    calendar_id: str
    email: str
    time_zone: str = "UTC"
    updated: str = ""
    events: dict[str, JSON] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _SyncState:
    calendar_id: str
    change: int
    single_events: bool


@dataclass(frozen=True)
class _Listing:
    calendar: _Calendar
    items: list[JSON]
    change: int
    single_events: bool
    time_zone: str


@dataclass(frozen=True)
class _Filters:
    time_min: datetime | None
    time_max: datetime | None
    updated_min: datetime | None
    terms: tuple[str, ...]
    ical_uid: str | None
    properties: tuple[tuple[str, str, str], ...]


def _param(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _flag(params: dict[str, list[str]], name: str) -> bool:
    raw = _param(params, name)
    if raw is None or raw.lower() == "false":
        return False
    if raw.lower() == "true":
        return True
    raise ApiError(400, "invalid", f"Invalid boolean value: '{raw}'.", location=name)


class _Store:
    """Calendars, events and tokens. Every method expects the server lock to be held."""

    def __init__(self, primary_email: str) -> None:
        self.primary_email = primary_email
        self.calendars = {"primary": _Calendar("primary", primary_email)}
        self.change = 0
        self.sync_tokens: dict[str, _SyncState | None] = {}
        self.pages: dict[str, tuple[_Listing, int]] = {}
        self._last_stamp = datetime.min.replace(tzinfo=_UTC)

    def calendar(self, calendar_id: str) -> _Calendar:
        found = self.calendars.get("primary" if calendar_id == self.primary_email else calendar_id)
        if found is None:
            raise _not_found()
        return found

    # reads

    def resolve(self, cal: _Calendar, event_id: str) -> JSON | None:
        """Copy of a stored event, or of the generated recurring instance with that id."""
        if event_id in cal.events:
            return copy.deepcopy(cal.events[event_id])
        master_id, sep, suffix = event_id.rpartition("_")
        master = cal.events.get(master_id) if sep else None
        until = _instance_until(suffix, cal.time_zone)
        if master is None or not master.get("recurrence") or until is None:
            return None
        instances = self._instances(cal, master, until)
        return next((copy.deepcopy(i) for i in instances if i["id"] == event_id), None)

    def _is_exception(self, cal: _Calendar, event: JSON) -> bool:
        master = cal.events.get(event.get("recurringEventId") or "")
        return master is not None and bool(master.get("recurrence"))

    def _instances(self, cal: _Calendar, master: JSON, until: datetime | None) -> list[JSON]:
        """Generated instances overlaid with every stored exception of ``master``."""
        by_id = {instance["id"]: instance for instance in _expand(master, cal.time_zone, until)}
        by_id.update((event_id, event) for event_id, event in cal.events.items()
                     if event.get("recurringEventId") == master["id"])
        if master.get("status") == "cancelled":
            return [{**instance, "status": "cancelled"} for instance in by_id.values()]
        return list(by_id.values())

    def list_events(self, calendar_id: str, params: dict[str, list[str]], cap: int) -> JSON:
        """events.list (https://developers.google.com/calendar/api/v3/reference/events/list).

        Honoured: timeMin, timeMax, singleEvents, maxResults (capped at ``cap``),
        pageToken, syncToken, showDeleted, orderBy, q (every word must occur in
        summary, description, location, organizer or attendees), iCalUID,
        private/sharedExtendedProperty (repeatable, all must match), updatedMin.
        timeZone is only echoed. Page tokens page through a snapshot taken when
        the listing started; its sync token covers changes made after that.
        """
        cal = self.calendar(calendar_id)
        single, show_deleted = _flag(params, "singleEvents"), _flag(params, "showDeleted")
        raw_size = _param(params, "maxResults") or "250"
        if not raw_size.isdigit() or int(raw_size) < 1:
            raise ApiError(400, "invalid", f"Invalid value '{raw_size}'. Values must be within "
                           "the range: [1, 2500]", location="maxResults")
        page_size = min(int(raw_size), cap)
        sync_token = _param(params, "syncToken")
        if sync_token is not None:
            clashing = [name for name in _SYNC_INCOMPATIBLE if name in params]
            if clashing:
                raise ApiError(400, "invalid", f"The parameter {clashing[0]} cannot be used "
                               "together with syncToken.", location=clashing[0])
        order_by = _param(params, "orderBy")
        if order_by not in (None, "startTime", "updated"):
            raise ApiError(400, "invalid", f"Invalid value '{order_by}'.", location="orderBy")
        if order_by == "startTime" and not single:
            raise ApiError(400, "badRequest",
                           "The requested ordering is not available for the particular query.")
        times = {name: _parse_query_time(value, name)
                 for name in ("timeMin", "timeMax", "updatedMin")
                 if (value := _param(params, name))}
        if "timeMin" in times and "timeMax" in times and times["timeMax"] <= times["timeMin"]:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.",
                           domain="calendar", location="timeMax")
        page_token = _param(params, "pageToken")
        if page_token is not None:
            entry = self.pages.get(page_token)
            if entry is None or entry[0].calendar is not cal:
                raise ApiError(400, "invalid", "Invalid page token value.", location="pageToken")
            return self._page(*entry, page_size)
        if sync_token is not None:
            items = self._changes(cal, sync_token, single)
        else:
            properties: list[tuple[str, str, str]] = []
            for scope in ("private", "shared"):
                for pair in params.get(f"{scope}ExtendedProperty", []):
                    key, sep, value = pair.partition("=")
                    if not sep:
                        raise ApiError(400, "invalid",
                                       f"Invalid extended property filter: '{pair}'.",
                                       location=f"{scope}ExtendedProperty")
                    properties.append((scope, key, value))
            terms = tuple((_param(params, "q") or "").casefold().split())
            filters = _Filters(times.get("timeMin"), times.get("timeMax"), times.get("updatedMin"),
                               terms, _param(params, "iCalUID"), tuple(properties))
            items = self._full(cal, single, show_deleted, filters, order_by)
        time_zone = _param(params, "timeZone") or cal.time_zone
        listing = _Listing(cal, items, self.change, single, time_zone)
        return self._page(listing, 0, page_size)

    def _full(self, cal: _Calendar, single: bool, show_deleted: bool, flt: _Filters,
              order_by: str | None) -> list[JSON]:
        chosen: list[JSON] = []
        for event in cal.events.values():
            if single and self._is_exception(cal, event):
                continue  # listed through its recurring event's expansion
            expanded = single and bool(event.get("recurrence"))
            for item in self._instances(cal, event, flt.time_max) if expanded else [event]:
                if (self._visible(cal, item, single, show_deleted, flt)
                        and self._accepts(cal, item, single, flt)):
                    chosen.append(item)
        if order_by == "startTime":
            chosen.sort(key=lambda item: _span(item, cal.time_zone)[0])
        elif order_by == "updated":
            chosen.sort(key=lambda item: str(item["updated"]))
        return [_render(item) for item in chosen]

    def _visible(self, cal: _Calendar, item: JSON, single: bool, show_deleted: bool,
                 flt: _Filters) -> bool:
        """showDeleted semantics from the events.list reference.

        Deleted events are hidden unless showDeleted, or updatedMin is given
        ("entries deleted since this time will always be included"); cancelled
        instances of a live recurring event are still included "if showDeleted
        and singleEvents are both False".
        """
        if item.get("status") != "cancelled" or show_deleted or flt.updated_min is not None:
            return True
        return (not single and self._is_exception(cal, item)
                and cal.events[item["recurringEventId"]].get("status") != "cancelled")

    def _accepts(self, cal: _Calendar, item: JSON, single: bool, flt: _Filters) -> bool:
        if flt.ical_uid is not None and item.get("iCalUID") != flt.ical_uid:
            return False
        updated = datetime.fromisoformat(item["updated"])
        if flt.updated_min is not None and updated < flt.updated_min:
            return False
        extended = item.get("extendedProperties") or {}
        for scope, key, value in flt.properties:
            if (extended.get(scope) or {}).get(key) != value:
                return False
        if flt.terms and not all(term in _search_text(item) for term in flt.terms):
            return False
        if flt.time_min is None and flt.time_max is None:
            return True
        # timeMin bounds an event's end and timeMax its start, both exclusive.
        recurring = not single and bool(item.get("recurrence"))
        occurrences = _expand(item, cal.time_zone, flt.time_max) if recurring else [item]
        return any((flt.time_min is None or end > flt.time_min)
                   and (flt.time_max is None or begin < flt.time_max)
                   for begin, end in (_span(o, cal.time_zone) for o in occurrences))

    def _changes(self, cal: _Calendar, sync_token: str, single: bool) -> list[JSON]:
        """Incremental sync: everything changed since the token, without time bounds."""
        if sync_token not in self.sync_tokens:
            raise ApiError(400, "invalid", "Invalid sync token value.", location="syncToken")
        state = self.sync_tokens[sync_token]
        if state is None or state.calendar_id != cal.calendar_id:
            raise ApiError(410, "fullSyncRequired",
                           "Sync token is no longer valid, a full sync is required.",
                           domain="calendar", location="syncToken")
        if state.single_events != single:
            raise ApiError(400, "invalid", "singleEvents must have the value used by the full sync "
                           "that issued the sync token.", location="singleEvents")
        items: list[JSON] = []
        seen: set[str] = set()
        for event_id, _ in sorted(cal.changed.items(), key=lambda pair: pair[1]):
            if cal.changed[event_id] <= state.change:
                continue
            event = cal.events[event_id]
            expanded = single and bool(event.get("recurrence"))
            for item in self._instances(cal, event, None) if expanded else [event]:
                if item["id"] not in seen:
                    seen.add(item["id"])
                    items.append(_render(item))
        return items

    def _page(self, listing: _Listing, offset: int, size: int) -> JSON:
        """One page; only the last page of a listing carries nextSyncToken."""
        cal = listing.calendar
        body: JSON = {
            "kind": "calendar#events", "etag": f'"{_ETAG_BASE + listing.change}"',
            "summary": cal.email, "description": "", "updated": cal.updated or self._stamp(),
            "timeZone": listing.time_zone, "accessRole": "owner", "defaultReminders": [],
            "items": listing.items[offset:offset + size],
        }
        token = secrets.token_urlsafe(24)
        if offset + size < len(listing.items):
            self.pages[token] = (listing, offset + size)
            body["nextPageToken"] = token
        else:
            state = _SyncState(cal.calendar_id, listing.change, listing.single_events)
            self.sync_tokens[token] = state
            body["nextSyncToken"] = token
        return body

    # writes

    def _stamp(self) -> str:
        now = datetime.now(_UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last_stamp = max(now, self._last_stamp + timedelta(milliseconds=1))
        return self._last_stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def write(self, cal: _Calendar, event_id: str, body: JSON, existing: JSON | None) -> JSON:
        """Normalise ``body`` into the stored resource for ``event_id``, validate and commit it."""
        event = copy.deepcopy(body)
        for key in _SERVER_FIELDS:
            event.pop(key, None)
        owner = {"email": cal.email, "self": True}
        eid = base64.urlsafe_b64encode(f"{event_id} {cal.email}".encode()).decode().rstrip("=")
        event |= {"kind": "calendar#event", "id": event_id, "creator": owner,
                  "organizer": dict(owner),
                  "htmlLink": f"https://www.google.com/calendar/event?eid={eid}"}
        event.setdefault("status", "confirmed")
        event.setdefault("reminders", {"useDefault": True})
        event.setdefault("eventType", "default")
        if existing is None:
            sequence = body.get("sequence", 0)
            event["sequence"] = sequence if isinstance(sequence, int) else 0
            ical_uid = body.get("iCalUID")
            event["iCalUID"] = ical_uid if isinstance(ical_uid, str) else f"{event_id}@google.com"
        else:
            event["sequence"] = int(existing.get("sequence", 0)) + 1
            for key in ("iCalUID", "created", "creator", "organizer", "recurringEventId",
                        "originalStartTime"):
                if key in existing:
                    event[key] = copy.deepcopy(existing[key])
        for attendee in event.get("attendees") or []:
            if isinstance(attendee, dict):
                attendee.setdefault("responseStatus", "needsAction")
                if str(attendee.get("email", "")).lower() == cal.email.lower():
                    attendee["self"] = True
        _validate_event(event, cal.time_zone)
        self.change += 1
        stamp = self._stamp()
        event["etag"] = f'"{_ETAG_BASE + self.change}"'
        event["updated"] = cal.updated = stamp
        event.setdefault("created", stamp)
        cal.events[event_id] = event
        cal.changed[event_id] = self.change
        return copy.deepcopy(event)

    def require(self, cal: _Calendar, event_id: str, if_match: str | None) -> JSON:
        """The current event, after checking an If-Match precondition (412 on mismatch)."""
        current = self.resolve(cal, event_id)
        if current is None:
            raise _not_found()
        if if_match is not None and not _etag_in(if_match, current["etag"]):
            raise ApiError(412, "conditionNotMet", "Precondition Failed", location="If-Match",
                           location_type="header")
        return current

    def insert(self, calendar_id: str, body: JSON) -> JSON:
        cal = self.calendar(calendar_id)
        event_id = body.get("id")
        if event_id is None:
            event_id = _new_event_id()
        elif not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        elif event_id in cal.events:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        return self.write(cal, event_id, body, None)

    def update(self, calendar_id: str, event_id: str, body: JSON, if_match: str | None) -> JSON:
        cal = self.calendar(calendar_id)
        return self.write(cal, event_id, body, self.require(cal, event_id, if_match))

    def patch(self, calendar_id: str, event_id: str, body: JSON, if_match: str | None) -> JSON:
        cal = self.calendar(calendar_id)
        current = self.require(cal, event_id, if_match)
        for key in ("start", "end"):
            change, old = body.get(key), current.get(key)
            if isinstance(change, dict) and isinstance(old, dict):
                # Switching between all-day and timed drops the other representation.
                if "date" in change:
                    old.pop("dateTime", None)
                    old.pop("timeZone", None)
                elif "dateTime" in change:
                    old.pop("date", None)
        return self.write(cal, event_id, _merge(current, body), current)

    def delete(self, calendar_id: str, event_id: str, if_match: str | None) -> None:
        cal = self.calendar(calendar_id)
        current = self.require(cal, event_id, if_match)
        if current.get("status") == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        self.write(cal, event_id, {**current, "status": "cancelled"}, current)


def _etag_in(header: str, etag: str) -> bool:
    """If-Match / If-None-Match: '*' or a comma-separated list of (possibly weak) tags."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def _json_body(request: RecordedRequest) -> JSON:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    return body


# --- server ---------------------------------------------------------------------

class GoogleCalendarServer:
    """Threaded HTTP fake of Calendar API v3 + OAuth token endpoint on 127.0.0.1.

    ``primary_email`` is the owner of the "primary" calendar (and an alias for it);
    any other calendar's owner email is its id.
    """

    def __init__(self, *, max_batch: int = 50, page_size_cap: int = 2500,
                 primary_email: str = "clinician@example.com") -> None:
        self.max_batch = max_batch
        self.page_size_cap = page_size_cap
        self.latency: float = 0.0
        self.require_auth: bool = True
        self.valid_access_tokens: set[str] = set()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._store = _Store(primary_email)
        self._faults: list[Fault] = []
        self._refresh_tokens: set[str] = set()
        # access token -> the refresh token it was minted from (None for service accounts)
        self._access_tokens: dict[str, str | None] = {}
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> Self:
        if self._httpd is None:
            self._stopping.clear()
            self._httpd = _HTTPServer(self)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                name="fake-google-calendar", daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()  # wakes 'hang' faults and latency sleeps
        httpd.shutdown()
        httpd.close_open_connections()
        httpd.server_close()
        thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL; pass as ``client_options={"api_endpoint": url}``."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    @property
    def batch_url(self) -> str:
        return self.url + "batch/calendar/v3"

    @property
    def token_url(self) -> str:
        return self.url + "token"

    # seeding and inspection

    @contextmanager
    def _seeding(self) -> Iterator[_Store]:
        with self._lock:
            try:
                yield self._store
            except ApiError as err:
                raise (KeyError if err.code == 404 else ValueError)(err.message) from err

    def add_calendar(self, calendar_id: str, *, time_zone: str = "UTC") -> None:
        """Create a calendar owned by ``calendar_id`` (or set the time zone of an existing one)."""
        ZoneInfo(time_zone)
        with self._lock:
            key = "primary" if calendar_id == self._store.primary_email else calendar_id
            self._store.calendars.setdefault(key, _Calendar(key, calendar_id)).time_zone = time_zone

    def put_event(self, calendar_id: str, resource: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace an event as the user would in Google's UI; returns the stored copy.

        Missing start/end are inherited from the event being replaced, so a
        generated instance can be overridden with just ``{"id": ..., "status": "cancelled"}``.
        """
        with self._seeding() as store:
            cal = store.calendar(calendar_id)
            event_id = resource.get("id") or self._derived_id(resource)
            existing = store.resolve(cal, event_id)
            inherited = {key: existing[key] for key in ("start", "end")
                         if existing and key in existing}
            merged = inherited | resource
            return store.write(cal, event_id, merged, existing)

    @staticmethod
    def _derived_id(resource: dict[str, Any]) -> str:
        original, master = resource.get("originalStartTime"), resource.get("recurringEventId")
        if not (master and isinstance(original, dict)):
            return _new_event_id()
        if "date" in original:
            return f"{master}_{original['date'].replace('-', '')}"
        return f"{master}_{_moment(original, 'UTC'):%Y%m%dT%H%M%SZ}"

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete as the user would: the event becomes a cancelled stub for sync.

        Deleting an already deleted event is a no-op; an unknown one raises KeyError.
        """
        with self._seeding() as store:
            cal = store.calendar(calendar_id)
            current = store.require(cal, event_id, None)
            if current.get("status") != "cancelled":
                store.write(cal, event_id, {**current, "status": "cancelled"}, current)

    def events(self, calendar_id: str, include_cancelled: bool = False) -> list[dict[str, Any]]:
        """Stored events (recurring events unexpanded, exceptions included)."""
        with self._seeding() as store:
            stored = store.calendar(calendar_id).events.values()
            return [copy.deepcopy(event) for event in stored
                    if include_cancelled or event.get("status") != "cancelled"]

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        """A stored event or generated recurring instance, cancelled ones included."""
        with self._seeding() as store:
            return store.resolve(store.calendar(calendar_id), event_id)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def expire_sync_tokens(self) -> None:
        """Invalidate every sync token issued so far (next use -> 410 fullSyncRequired)."""
        with self._lock:
            self._store.sync_tokens = dict.fromkeys(self._store.sync_tokens)

    def inject(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in injection order, first match wins."""
        if fault.kind not in ("status", "reset", "truncate", "hang") or fault.times < 1:
            raise ValueError(f"invalid fault {fault!r}")
        with self._lock:
            self._faults.append(replace(fault))

    # OAuth

    def issue_refresh_token(self) -> str:
        token = "1//fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens.add(token)
        return token

    def revoke_refresh_token(self, token: str) -> None:
        """Revoke a refresh token and the access tokens minted from it."""
        with self._lock:
            self._refresh_tokens.discard(token)
            self._access_tokens = {a: r for a, r in self._access_tokens.items() if r != token}

    def expire_access_tokens(self) -> None:
        """Forget every access token issued by the token endpoint (next use -> 401)."""
        with self._lock:
            self._access_tokens.clear()

    # request handling

    def _serve(self, request: RecordedRequest) -> tuple[_Reply | None, Fault | None]:
        """Answer a top-level request; a None reply means 'reset the connection'."""
        with self._lock:
            self.requests.append(request)
        if self.latency > 0:
            self._stopping.wait(self.latency)
        endpoint = "token" if request.path == _TOKEN_PATH else "calendar"
        fault = self._take_fault(request, endpoint)
        if fault is not None and fault.kind == "reset":
            return None, fault
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.delay)
        if fault is not None and fault.kind == "status":
            reply = self._fault_reply(fault, endpoint)
        elif endpoint == "token":
            reply = self._guarded(self._token, request)
        elif _BATCH_PATH.match(request.path):
            reply = self._guarded(self._batch, request)
        else:
            reply = self._guarded(self._api, request)
        request.status = reply.status
        return reply, fault

    def _guarded(self, handler: Callable[[RecordedRequest], _Reply],
                 request: RecordedRequest) -> _Reply:
        try:
            return handler(request)
        except ApiError as err:
            return err.reply()
        except Exception:  # a bug in the fake must still answer, as Google's 500
            _LOG.exception("fake Google Calendar failed on %s %s", request.method, request.path)
            return ApiError(500, "backendError", "Backend Error").reply()

    def _take_fault(self, request: RecordedRequest, endpoint: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.applies_to(request, endpoint):
                    fault.times -= 1
                    if fault.times == 0:
                        del self._faults[index]
                    return fault
        return None

    def _fault_reply(self, fault: Fault, endpoint: str) -> _Reply:
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        phrase = HTTPStatus(fault.status).phrase
        if endpoint == "token":
            oauth_error = {"error": fault.reason or "internal_failure",
                           "error_description": fault.message or phrase}
            return _json_reply(fault.status, oauth_error, headers)
        reason = fault.reason or _FAULT_REASONS.get(fault.status, "backendError")
        message = fault.message or _REASON_MESSAGES.get(reason, phrase)
        domain = "usageLimits" if reason in _USAGE_LIMITS else "global"
        return ApiError(fault.status, reason, message, domain=domain, headers=headers).reply()

    def _authorize(self, request: RecordedRequest) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            known = token in self._access_tokens or token in self.valid_access_tokens
        if self.require_auth and (scheme.lower() != "bearer" or not known):
            raise ApiError(401, "authError", "Invalid Credentials", location="Authorization",
                           location_type="header",
                           headers={"WWW-Authenticate": _WWW_AUTHENTICATE})

    def _api(self, request: RecordedRequest) -> _Reply:
        found = _EVENTS_PATH.match(request.path)
        if found is None:
            raise _not_found()
        self._authorize(request)
        send_updates = request.param("sendUpdates")
        if send_updates not in (None, "all", "externalOnly", "none"):
            raise ApiError(400, "invalid", f"Invalid value '{send_updates}'.",
                           location="sendUpdates")
        calendar_id = unquote(found["calendar"])
        event_id = unquote(found["event"]) if found["event"] else None
        if_match, method, store = request.headers.get("if-match"), request.method, self._store
        with self._lock:
            if event_id is None and method == "GET":
                listing = store.list_events(calendar_id, request.query, self.page_size_cap)
                return _json_reply(200, listing)
            if event_id is None and method == "POST":
                event = store.insert(calendar_id, _json_body(request))
            elif event_id is not None and method == "GET":
                event = store.require(store.calendar(calendar_id), event_id, None)
                none_match = request.headers.get("if-none-match")
                if none_match is not None and _etag_in(none_match, event["etag"]):
                    return _Reply(304, {"ETag": event["etag"]}, b"")
            elif event_id is not None and method == "PUT":
                event = store.update(calendar_id, event_id, _json_body(request), if_match)
            elif event_id is not None and method == "PATCH":
                event = store.patch(calendar_id, event_id, _json_body(request), if_match)
            elif event_id is not None and method == "DELETE":
                store.delete(calendar_id, event_id, if_match)
                return _Reply(204, {}, b"")
            else:
                raise _not_found()
        return _json_reply(200, event, {"ETag": event["etag"]})

    def _batch(self, request: RecordedRequest) -> _Reply:
        """https://developers.google.com/calendar/api/guides/batch

        "You're limited to 50 calls in a single batch request." Outer headers
        other than Content-* apply to every part unless the part overrides them.
        """
        if request.method != "POST":
            raise _not_found()
        try:
            parts = parse_batch(request.headers.get("content-type", ""), request.body)
        except ValueError as exc:
            raise ApiError(400, "badRequest", f"Invalid batch request: {exc}") from exc
        if not parts or len(parts) > self.max_batch:
            raise ApiError(400, "invalid", "A batch request must contain between 1 and "
                           f"{self.max_batch} requests; got {len(parts)}.")
        inherited = {k: v for k, v in request.headers.items() if not k.startswith("content-")}
        responses: list[tuple[str, int, dict[str, str], bytes]] = []
        for part in parts:
            target = urlsplit(part.target)
            query = parse_qs(target.query, keep_blank_values=True)
            sub = RecordedRequest(part.method, target.path, query, inherited | part.headers,
                                  part.body, batch_part=True)
            with self._lock:
                self.requests.append(sub)
            fault = self._take_fault(sub, "calendar")
            if fault is not None and fault.kind == "hang":
                self._stopping.wait(fault.delay)
            if fault is not None and fault.kind == "status":
                reply = self._fault_reply(fault, "calendar")
            else:
                reply = self._guarded(self._api, sub)
            sub.status = reply.status
            responses.append((part.response_content_id, reply.status, reply.headers, reply.body))
        content_type, body = render_batch(responses)
        return _Reply(200, {"Content-Type": content_type}, body)

    def _token(self, request: RecordedRequest) -> _Reply:
        """OAuth 2.0 token endpoint (RFC 6749 section 5 responses, Google's error strings)."""
        fields = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        form = {name: values[-1] for name, values in fields.items()}
        grant = form.get("grant_type", "")
        if request.method != "POST" or not grant:
            return _oauth_error(400, "invalid_request", "Required parameter is missing: grant_type")
        if grant in ("refresh_token", "authorization_code") and not self._client_id(request, form):
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        scope = form.get("scope") or _DEFAULT_SCOPE
        with self._lock:
            if grant == "refresh_token":
                parent = form.get("refresh_token", "")
                if parent not in self._refresh_tokens:
                    return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
                return self._grant(scope, parent)
            if grant == "authorization_code":
                if not form.get("code"):
                    return _oauth_error(400, "invalid_request", "Missing required parameter: code")
                fresh = "1//fake-" + secrets.token_urlsafe(24)
                self._refresh_tokens.add(fresh)
                return self._grant(scope, fresh, refresh_token=fresh)
        if grant == _JWT_BEARER:
            claims = _jwt_claims(form.get("assertion", ""))
            if claims is None:
                return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
            with self._lock:
                return self._grant(str(claims.get("scope") or scope), None)
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _grant(self, scope: str, parent: str | None, **extra: str) -> _Reply:
        access = "ya29.fake-" + secrets.token_urlsafe(24)
        self._access_tokens[access] = parent
        payload = {"access_token": access, "expires_in": 3599, "scope": scope,
                   "token_type": "Bearer", **extra}
        return _json_reply(200, payload, {"Cache-Control": "no-store"})

    @staticmethod
    def _client_id(request: RecordedRequest, form: dict[str, str]) -> str | None:
        """client_id from the form body or from HTTP Basic client auth (RFC 6749 section 2.3.1)."""
        if form.get("client_id"):
            return form["client_id"]
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            return base64.b64decode(encoded).decode().partition(":")[0] or None
        except ValueError:
            return None


def _oauth_error(status: int, error: str, description: str) -> _Reply:
    return _json_reply(status, {"error": error, "error_description": description})


def _jwt_claims(assertion: str) -> JSON | None:
    """Claims of a structurally valid JWT (signatures are not checked)."""
    segments = assertion.split(".")
    if len(segments) != 3 or not all(segments):
        return None
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
                          for segment in segments[:2])
    except ValueError:
        return None
    return claims if isinstance(header, dict) and isinstance(claims, dict) else None


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks open connections so stop() can close idle keep-alives."""

    daemon_threads = True

    def __init__(self, fake: GoogleCalendarServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with suppress(OSError):  # the client may have closed it already
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping connections are expected; other errors (a raising Fault.match) not."""
        level = logging.DEBUG if isinstance(sys.exc_info()[1], OSError) else logging.ERROR
        _LOG.log(level, "connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httplib2 expects
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        length = self.headers.get("Content-Length", "0")
        body = self.rfile.read(int(length)) if length.isdigit() and int(length) > 0 else b""
        target = urlsplit(self.path)
        query = parse_qs(target.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = RecordedRequest(self.command, target.path, query, headers, body)
        reply, fault = self.server.fake._serve(request)
        try:
            if reply is None:
                self._reset()
            else:
                self._send(reply, truncate=fault is not None and fault.kind == "truncate")
        except OSError:
            self.close_connection = True  # the client gave up, e.g. timed out during a 'hang'

    def _send(self, reply: _Reply, *, truncate: bool) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Content-Length", str(len(reply.body) + 512))
        elif reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
        self.wfile.flush()
        self.close_connection = self.close_connection or truncate

    def _reset(self) -> None:
        """Abort with RST: SO_LINGER 0, then drop every reference so close() happens now."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
