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
the list filters listed in ``google_listing.list_events``, ETag preconditions, batch,
OAuth refresh_token / authorization_code / jwt-bearer grants, fault injection.

The world as it is (DESIGN.md §8), on by default, each with its source where it is
modelled: insert with an existing id, a deleted event's included → 409; update or patch
of a deleted (cancelled) event → 403; a stale If-Match → 412 ``conditionNotMet``;
deleting a deleted event → 410 (google_store.py); sync tokens expire → 410
``fullSyncRequired`` (google_listing.py, lifetime :attr:`sync_token_lifetime` on the
fake's ``clock``); an incremental sync of a touched open-ended series returns its
instances for decades (google_listing.py); batches of at most 50 (google_batch.py);
``visibility``/``transparency`` outside their enums → 400, and ``eventType`` cannot
change, "fromGmail" cannot be created, out of office is timed and on primary calendars
only (google_event.py; :func:`google_event.out_of_office` is the UI's own such event).
Injected by tests, since they are triggered by what a whole account does:
:meth:`exceed_usage_limits` (403 ``quotaExceeded``: the calendar is read-only for hours),
:meth:`loop_paging`, :meth:`expire_sync_tokens`, :meth:`inject` (faults).

Recurrence: RRULE (any rule dateutil parses; DAILY/WEEKLY with COUNT, UNTIL,
INTERVAL and BYDAY are tested), EXDATE and RDATE (date, UTC or TZID values);
expansion stops at 1000 instances per series. Stored exceptions (events whose
``recurringEventId`` names a recurring event) override the generated instance
with the same id. Not supported: events.instances/import/move/quickAdd/watch,
calendarList, ACLs, the ``timeZone`` list parameter beyond echoing it in the
response, ``maxAttendees``, ``eventTypes`` and fields selectors.

This module holds the server and its public API; the rest lives in
google_common.py (requests, faults, errors), google_event.py (times,
recurrence, validation), google_store.py (calendars and writes),
google_listing.py (events.list and sync), google_oauth.py (token endpoint),
google_batch.py (batch wire format) and http.py (the HTTP server).
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote
from zoneinfo import ZoneInfo

from .google_batch import serve_batch
from .google_common import (
    ApiError,
    Fault,
    RecordedRequest,
    etag_in,
    fault_reply,
    json_body,
    json_reply,
    new_event_id,
    not_found,
)
from .google_event import moment
from .google_listing import list_events
from .google_oauth import TokenEndpoint
from .google_store import Calendar, Store
from .http import FAULT_KINDS, Answer, FaultQueue, Incoming, LocalServer, Reply, RequestLog

__all__ = ["Fault", "GoogleCalendarServer", "RecordedRequest"]

_LOG = logging.getLogger(__name__)
_EVENTS_PATH = re.compile(
    r"^/(?:calendar/v3/)?calendars/(?P<calendar>[^/]+)/events(?:/(?P<event>[^/]+))?/?$"
)
_BATCH_PATH = re.compile(r"^/batch(?:/calendar/v3)?/?$")
_TOKEN_PATH = "/token"
_WWW_AUTHENTICATE = 'Bearer realm="https://accounts.google.com/"'


class GoogleCalendarServer:
    """Threaded HTTP fake of Calendar API v3 + OAuth token endpoint on 127.0.0.1.

    ``primary_email`` is the owner of the "primary" calendar (and an alias for it);
    any other calendar's owner email is its id.
    """

    def __init__(
        self,
        *,
        max_batch: int = 50,
        page_size_cap: int = 2500,
        primary_email: str = "clinician@example.com",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock`` is the fake's time (the real time unless given): what sync tokens
        age by, and what ends a read-only spell; no test needs to wait for either."""
        self.max_batch = max_batch
        self.page_size_cap = page_size_cap
        self.latency: float = 0.0
        self.require_auth: bool = True
        self.valid_access_tokens: set[str] = set()
        self._lock = threading.RLock()
        self._log: RequestLog[RecordedRequest] = RequestLog(self._lock)
        self._store = Store(primary_email, clock or (lambda: datetime.now(UTC)))
        self.sync_token_lifetime = timedelta(days=1)
        self._faults: FaultQueue[Fault] = FaultQueue(self._lock)
        self._oauth = TokenEndpoint(self._lock)
        self._http = LocalServer(self._respond, name="fake-google-calendar")

    # lifecycle

    def start(self) -> Self:
        if not self._http.running:
            self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL; pass as ``client_options={"api_endpoint": url}``."""
        if not self._http.running:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._http.port}/"

    @property
    def batch_url(self) -> str:
        return self.url + "batch/calendar/v3"

    @property
    def token_url(self) -> str:
        return self.url + "token"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, batch parts included (the live list, in arrival order)."""
        return self._log.entries

    # seeding and inspection

    @contextmanager
    def _seeding(self) -> Iterator[Store]:
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
            self._store.calendars.setdefault(key, Calendar(key, calendar_id)).time_zone = time_zone

    def put_event(self, calendar_id: str, resource: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace an event as the user would in Google's UI; returns the stored copy.

        Missing start/end are inherited from the event being replaced, so a
        generated instance can be overridden with just ``{"id": ..., "status": "cancelled"}``.
        """
        with self._seeding() as store:
            cal = store.calendar(calendar_id)
            event_id = resource.get("id") or self._derived_id(resource)
            existing = store.resolve(cal, event_id)
            inherited = {
                key: existing[key] for key in ("start", "end") if existing and key in existing
            }
            merged = inherited | resource
            return store.write(cal, event_id, merged, existing)

    @staticmethod
    def _derived_id(resource: dict[str, Any]) -> str:
        original, master = resource.get("originalStartTime"), resource.get("recurringEventId")
        if not (master and isinstance(original, dict)):
            return new_event_id()
        if "date" in original:
            return f"{master}_{original['date'].replace('-', '')}"
        return f"{master}_{moment(original, 'UTC'):%Y%m%dT%H%M%SZ}"

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
            return [
                copy.deepcopy(event)
                for event in stored
                if include_cancelled or event.get("status") != "cancelled"
            ]

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        """A stored event or generated recurring instance, cancelled ones included."""
        with self._seeding() as store:
            return store.resolve(store.calendar(calendar_id), event_id)

    def clear_requests(self) -> None:
        self._log.clear()

    def expire_sync_tokens(self) -> None:
        """Invalidate every sync token issued so far (next use -> 410 fullSyncRequired)."""
        with self._lock:
            self._store.sync_tokens = dict.fromkeys(self._store.sync_tokens)

    @property
    def sync_token_lifetime(self) -> timedelta | None:
        """How long a sync token is honoured (None: for ever). Google documents that tokens
        expire, not when ("Sometimes sync tokens are invalidated by the server", sync
        guide); a day here, so that a daemon test whose clock moves on a day meets a 410."""
        return self._store.sync_token_lifetime

    @sync_token_lifetime.setter
    def sync_token_lifetime(self, lifetime: timedelta | None) -> None:
        with self._lock:
            self._store.sync_token_lifetime = lifetime

    def exceed_usage_limits(
        self, calendar_id: str = "primary", duration: timedelta = timedelta(hours=3)
    ) -> None:
        """Put a calendar in the read-only mode of "Calendar usage limits exceeded": every
        write through the API answers 403 ``quotaExceeded`` (domain usageLimits) until
        ``duration`` has passed on the fake's clock ("for hours", RESEARCH.md; the Errors
        guide's 403 usage limits). Reads still work; inject a Fault with reason
        ``quotaExceeded`` for a read refused the same way."""
        with self._seeding() as store:
            store.calendar(calendar_id).read_only_until = store.clock() + duration

    def share(self, calendar_id: str, role: str) -> None:
        """Set the account's role on a calendar (owner, writer, reader, freeBusyReader), as
        its owner sharing it would; events.list reports it as ``accessRole``, and a reader
        or freeBusyReader's writes are refused (403 requiredAccessLevel, Store.check_role)."""
        with self._seeding() as store:
            store.calendar(calendar_id).access_role = role

    def loop_paging(self, pages: int = 1000, *, fresh_tokens: bool = False) -> None:
        """A misbehaving server (injected): the next ``pages`` answers to a pageToken name
        the page just served as the next one again, under the same token or, with
        ``fresh_tokens``, under a new token each time (the same page over and over)."""
        with self._lock:
            self._store.looping_pages = pages
            self._store.looping_fresh_tokens = fresh_tokens

    def inject(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in injection order, first match wins."""
        if fault.kind not in FAULT_KINDS or fault.times < 1:
            raise ValueError(f"invalid fault {fault!r}")
        self._faults.add(replace(fault))

    # OAuth

    def issue_refresh_token(self) -> str:
        return self._oauth.issue_refresh_token()

    def revoke_refresh_token(self, token: str) -> None:
        """Revoke a refresh token and the access tokens minted from it."""
        self._oauth.revoke_refresh_token(token)

    def expire_access_tokens(self) -> None:
        """Forget every access token issued by the token endpoint (next use -> 401)."""
        self._oauth.expire_access_tokens()

    # request handling

    def _respond(self, incoming: Incoming) -> Answer:
        query = parse_qs(incoming.query, keep_blank_values=True)
        headers = incoming.headers(join_repeated=False)
        request = RecordedRequest(incoming.method, incoming.path, query, headers, incoming.body)
        reply, fault = self._serve(request)
        return Answer(reply, truncate=fault is not None and fault.kind == "truncate")

    def _serve(self, request: RecordedRequest) -> tuple[Reply | None, Fault | None]:
        """Answer a top-level request; a None reply means 'reset the connection'."""
        self._log.record(request)
        if self.latency > 0:
            self._http.sleep(self.latency)
        endpoint = "token" if request.path == _TOKEN_PATH else "calendar"
        fault = self._take_fault(request, endpoint)
        if fault is not None and fault.kind == "reset":
            return None, fault
        if fault is not None and fault.kind == "hang":
            self._http.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            reply = fault_reply(fault, endpoint)
        elif endpoint == "token":
            reply = self._guarded(self._oauth.handle, request)
        elif _BATCH_PATH.match(request.path):
            reply = self._guarded(self._batch, request)
        else:
            reply = self._guarded(self._api, request)
        request.status = reply.status
        return reply, fault

    def _guarded(
        self, handler: Callable[[RecordedRequest], Reply], request: RecordedRequest
    ) -> Reply:
        try:
            return handler(request)
        except ApiError as err:
            return err.reply()
        except Exception:  # a bug in the fake must still answer, as Google's 500
            _LOG.exception("fake Google Calendar failed on %s %s", request.method, request.path)
            return ApiError(500, "backendError", "Backend Error").reply()

    def _take_fault(self, request: RecordedRequest, endpoint: str) -> Fault | None:
        return self._faults.take(lambda fault: fault.applies_to(request, endpoint))

    def _authorize(self, request: RecordedRequest) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            known = self._oauth.knows(token) or token in self.valid_access_tokens
        if self.require_auth and (scheme.lower() != "bearer" or not known):
            raise ApiError(
                401,
                "authError",
                "Invalid Credentials",
                location="Authorization",
                location_type="header",
                headers={"WWW-Authenticate": _WWW_AUTHENTICATE},
            )

    def _api(self, request: RecordedRequest) -> Reply:
        found = _EVENTS_PATH.match(request.path)
        if found is None:
            raise not_found()
        self._authorize(request)
        send_updates = request.param("sendUpdates")
        if send_updates not in (None, "all", "externalOnly", "none"):
            raise ApiError(
                400, "invalid", f"Invalid value '{send_updates}'.", location="sendUpdates"
            )
        calendar_id = unquote(found["calendar"])
        event_id = unquote(found["event"]) if found["event"] else None
        if_match, method, store = request.headers.get("if-match"), request.method, self._store
        with self._lock:
            if event_id is None and method == "GET":
                listing = list_events(store, calendar_id, request.query, self.page_size_cap)
                return json_reply(200, listing)
            if event_id is None and method == "POST":
                event = store.insert(calendar_id, json_body(request))
            elif event_id is not None and method == "GET":
                event = store.require(store.calendar(calendar_id), event_id, None)
                none_match = request.headers.get("if-none-match")
                if none_match is not None and etag_in(none_match, event["etag"]):
                    return Reply(304, (("ETag", event["etag"]),))
            elif event_id is not None and method == "PUT":
                event = store.update(calendar_id, event_id, json_body(request), if_match)
            elif event_id is not None and method == "PATCH":
                event = store.patch(calendar_id, event_id, json_body(request), if_match)
            elif event_id is not None and method == "DELETE":
                store.delete(calendar_id, event_id, if_match)
                return Reply(204)
            else:
                raise not_found()
        return json_reply(200, event, {"ETag": event["etag"]})

    def _batch(self, request: RecordedRequest) -> Reply:
        return serve_batch(request, self.max_batch, self._batch_part)

    def _batch_part(self, sub: RecordedRequest) -> Reply:
        self._log.record(sub)
        fault = self._take_fault(sub, "calendar")
        if fault is not None and fault.kind == "hang":
            self._http.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            return fault_reply(fault, "calendar")
        return self._guarded(self._api, sub)
