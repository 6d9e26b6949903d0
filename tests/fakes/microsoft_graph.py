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

This module holds the state and the routing; the resources live in
graph_common.py (requests, errors), graph_time.py (zones, recurrence),
graph_model.py (the store), graph_read.py (instances, rendering),
graph_events.py (events, calendarView), graph_delta.py, graph_batch.py and
graph_mailbox.py (user, calendars, sendMail).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from .graph_batch import run_batch
from .graph_common import (
    CONFLICT_MESSAGE,
    GRAPH_JSON,
    NOT_FOUND_MESSAGE,
    BatchHook,
    GraphError,
    GraphRequest,
    JsonObject,
    Routed,
    error_reply,
    graph_error_reply,
    method_not_allowed,
    parse_query,
    require_method,
    require_permission,
    unknown_segment,
)
from .graph_delta import DeltaRound, DeltaTokens
from .graph_events import (
    Paging,
    build_event,
    calendar_view,
    check_can_edit,
    create_event,
    delete_instance,
    list_events,
    series_instances,
    update_event,
)
from .graph_mailbox import addressed_mailbox, calendar_resource, send_mail, user_resource
from .graph_model import (
    Calendar,
    Instance,
    Mailbox,
    Occurrence,
    StoredEvent,
    View,
    new_change_key,
    new_id,
    note_change,
    note_reads,
    parse_occurrence_id,
)
from .graph_read import (
    instance_at,
    instance_of,
    preference_headers,
    render,
    request_view,
    resolve,
    select,
)
from .graph_time import format_instant, format_local, resolve_zone
from .graph_world import WorldRules
from .http import Reply
from .identity_model import AccessGrant, User
from .microsoft_identity import Identity

__all__ = [
    "CONFLICT_MESSAGE",
    "GRAPH_JSON",
    "NOT_FOUND_MESSAGE",
    "AccessGrant",
    "BatchHook",
    "Calendar",
    "DeltaRound",
    "Graph",
    "GraphError",
    "GraphRequest",
    "Identity",
    "Instance",
    "JsonObject",
    "Mailbox",
    "Occurrence",
    "Reply",
    "StoredEvent",
    "User",
    "View",
    "format_instant",
    "format_local",
    "graph_error_reply",
    "parse_query",
    "resolve_zone",
]


class Graph:
    """State and request handling of the fake Graph service."""

    def __init__(self, identity: Identity, lock: threading.RLock, max_batch: int) -> None:
        self.identity = identity
        self.base_url = ""  # "https://localhost:PORT/v1.0", set when the server starts
        self.max_batch = max_batch
        self.delta_expired_status: Literal[400, 410] = 410
        self.default_page_size = 10
        # What real Graph does to clients, on by default (graph_world.py).
        self.rules = WorldRules()
        self.sent_mail: list[JsonObject] = []
        self._lock = lock
        self._mailboxes: dict[str, Mailbox] = {}
        self._delta = DeltaTokens()

    # -- seeding / inspection (caller holds the lock) ---------------------------------

    def add_mailbox(self, user: User) -> None:
        mailbox = Mailbox(user, self.rules)
        calendar = Calendar(new_id(), "Calendar", True)
        mailbox.calendars[calendar.id] = calendar
        self._mailboxes[user.oid] = mailbox

    def add_calendar(self, user: User, name: str, default: bool, can_edit: bool = True) -> str:
        mailbox = self._mailboxes[user.oid]
        calendar = Calendar(new_id(), name, False, can_edit=can_edit)
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
        if isinstance(event_id, str) and event_id in mailbox.deleted:
            # Restored from Deleted Items: the same event, under its id, comes back.
            mailbox.events[event_id] = mailbox.deleted.pop(event_id)
            mailbox.unreported.discard(event_id)
        if isinstance(event_id, str) and (parsed := parse_occurrence_id(event_id)):
            update_event(mailbox, event_id, resource, None, seeding=True)
            master = mailbox.events[parsed[0]]
            return render(instance_at(master, parsed[1]), View(expand=frozenset()))
        if isinstance(event_id, str) and event_id in mailbox.events:
            existing = mailbox.events[event_id]
            stored = build_event(mailbox, existing.calendar_id, resource, seeding=True)
            stored.id, stored.created = existing.id, existing.created
            stored.create_body = existing.create_body
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
            stored = build_event(mailbox, calendar.id, resource, seeding=True)
            if isinstance(event_id, str) and event_id:
                stored.id = event_id
            mailbox.events[stored.id] = stored
        note_change(mailbox, instance_of(stored))
        return render(instance_of(stored), View(expand=frozenset()))

    def drift_change_key(self, user: User, event_id: str) -> None:
        self._mailboxes[user.oid].events[event_id].change_key = new_change_key()

    def reset_mailbox(self, user: User) -> None:
        old = self._mailboxes[user.oid]
        self._mailboxes[user.oid] = Mailbox(user, self.rules, calendars=old.calendars)

    def delete_event(self, user: User, event_id: str) -> None:
        delete_instance(self._mailboxes[user.oid], event_id, None)

    def list_events(self, user: User, calendar_id: str | None) -> list[JsonObject]:
        mailbox = self._mailboxes[user.oid]
        stored = sorted(mailbox.events.values(), key=lambda e: e.created)
        return [
            render(instance_of(e), View(expand=frozenset()))
            for e in stored
            if calendar_id is None or e.calendar_id == calendar_id
        ]

    def expire_delta_tokens(self) -> None:
        self._delta.expire()

    @property
    def looping_delta(self) -> bool:
        return self._delta.looping

    @looping_delta.setter
    def looping_delta(self, looping: bool) -> None:
        self._delta.looping = looping

    def mailbox_of(self, path: str, headers: Mapping[str, str]) -> str | None:
        """The mailbox a request (its path under /v1.0) works on, for the concurrency
        limit; None when it names none or its token is not valid."""
        with self._lock:
            return addressed_mailbox(self.identity, path, headers)

    # -- HTTP ------------------------------------------------------------------------

    def handle(self, request: GraphRequest, batch_hook: BatchHook) -> Reply:
        """Answer a request under /v1.0.  Takes the lock per (sub-)request."""
        try:
            if [s.lower() for s in request.segments] == ["$batch"]:
                if request.method != "POST":
                    raise GraphError(405, "BadRequest", "Only POST is supported for $batch.")
                with self._lock:
                    self._authenticate(request)
                return run_batch(request, batch_hook, self.max_batch, self.dispatch)
            return self.dispatch(request)
        except GraphError as exc:
            return error_reply(exc, request)

    def dispatch(self, request: GraphRequest) -> Reply:
        try:
            with self._lock:
                grant = self._authenticate(request)
                status, payload, headers = self._route(request, grant)
        except GraphError as exc:
            return error_reply(exc, request)
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

    def _route(self, request: GraphRequest, grant: AccessGrant) -> Routed:
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
    ) -> Routed:
        method = request.method
        names = [s.lower() for s in rest]
        if not rest:
            require_method(method, "GET")
            return 200, user_resource(mailbox.user, self.base_url), ()
        if names == ["sendmail"]:
            require_method(method, "POST")
            require_permission(grant, "Mail.Send")
            send_mail(self.sent_mail, mailbox, request)
            return 202, None, ()
        if names == ["calendars"]:
            require_method(method, "GET")
            require_permission(grant, "Calendars.Read", "Calendars.ReadWrite")
            calendars = [calendar_resource(mailbox, c) for c in mailbox.calendars.values()]
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
            require_method(method, "GET")
            require_permission(grant, "Calendars.Read", "Calendars.ReadWrite")
            return 200, calendar_resource(mailbox, calendar), ()
        if method == "GET":
            require_permission(grant, "Calendars.Read", "Calendars.ReadWrite")
        else:
            require_permission(grant, "Calendars.ReadWrite")
            check_can_edit(mailbox, calendar, tail)
        if tail_names == ["events"]:
            if method == "POST":
                target = calendar or mailbox.default_calendar
                return create_event(mailbox, target, request)
            require_method(method, "GET")
            paging = self._paging()
            listed = list_events(mailbox, calendar or mailbox.default_calendar, request, paging)
            return 200, listed, ()
        if len(tail) in (2, 3) and tail_names[0] == "events":
            event_id = tail[1]
            self._check_calendar(mailbox, calendar, event_id)
            if len(tail) == 3:
                if tail_names[2] != "instances":
                    raise unknown_segment(tail[2])
                require_method(method, "GET")
                return 200, series_instances(mailbox, event_id, request, self._paging()), ()
            applied = preference_headers(request, None)
            if method == "GET":
                view = request_view(request)
                instance = resolve(mailbox, event_id)
                rendered = render(instance, view)
                note_reads(mailbox, [instance])
                return 200, select(rendered, view), applied
            if method == "PATCH":
                body = request.json_body()
                instance = update_event(mailbox, event_id, body, request.headers.get("if-match"))
                return 200, render(instance, request_view(request)), applied
            if method == "DELETE":
                delete_instance(mailbox, event_id, request.headers.get("if-match"))
                return 204, None, ()
            raise method_not_allowed(method)
        if tail_names == ["calendarview"]:
            require_method(method, "GET")
            target = calendar or mailbox.default_calendar
            return calendar_view(mailbox, target, request, self._paging())
        if tail_names in (["calendarview", "delta"], ["calendarview", "delta()"]):
            require_method(method, "GET")
            target = calendar or mailbox.default_calendar
            paging, expired = self._paging(), self.delta_expired_status
            return self._delta.query(mailbox, target, request, paging, expired)
        raise unknown_segment(tail[0] if tail else rest[-1])

    # -- helpers ---------------------------------------------------------------------

    def _paging(self) -> Paging:
        return Paging(self.base_url, self.default_page_size)

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
        parsed = parse_occurrence_id(event_id)
        stored = mailbox.events.get(parsed[0] if parsed else event_id)
        if stored is not None and stored.calendar_id != calendar.id:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
