"""A local TLS server faking the Microsoft identity platform and Microsoft Graph.

Usage::

    with MicrosoftServer() as server:
        app = msal.PublicClientApplication(
            "client-id",
            authority=server.authority,
            instance_discovery=False,  # MSAL would otherwise call login.microsoftonline.com
            verify=server.ca_path,
        )
        requests.get(f"{server.graph_url}/me/calendars", verify=server.ca_path, ...)

The identity side lives in :mod:`microsoft_identity`, Graph in
:mod:`microsoft_graph`; this module owns the thread-safe public API and the
recording of requests and fault injection (shapes in :mod:`microsoft_recording`),
on the HTTP server of :mod:`http`.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import unquote

from .graph_world import MailboxGate, WorldRules, mailbox_full
from .http import Answer, FaultQueue, Incoming, LocalServer, Reply, RequestLog
from .microsoft_graph import Graph, GraphError, GraphRequest, JsonObject
from .microsoft_identity import (
    APPLICATION_PERMISSIONS,
    DEFAULT_DELEGATED_PERMISSIONS,
    Identity,
    User,
)
from .microsoft_recording import Fault, FaultKind, RecordedRequest, fault_reply

__all__ = [
    "DEFAULT_USER",
    "Fault",
    "FaultKind",
    "MicrosoftServer",
    "RecordedRequest",
    "WorldRules",
]

DEFAULT_USER = "clinician@contoso.example"
_log = logging.getLogger(__name__)


class MicrosoftServer:
    """Fake login.microsoftonline.com + graph.microsoft.com on one local TLS port."""

    def __init__(self, *, tenant: str = "contoso-tenant-id", max_batch: int = 20) -> None:
        self.tenant = tenant
        self.latency = 0.0
        self.default_user = DEFAULT_USER
        self.ca_path = ""
        self.url = ""
        self._lock = threading.RLock()
        self._identity = Identity(tenant, self._lock)
        self._graph = Graph(self._identity, self._lock, max_batch)
        self._faults: FaultQueue[Fault] = FaultQueue(self._lock)
        self._gate = MailboxGate(self._graph.rules, self._graph.mailbox_of)
        self._log: RequestLog[RecordedRequest] = RequestLog(self._lock)
        self._http = LocalServer(
            self._respond,
            name="fake-microsoft",
            tls=True,
            server_version="FakeMicrosoft/1.0",
            idle_timeout=30,
        )
        self.add_user(DEFAULT_USER)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        self._http.start()
        self.ca_path = self._http.ca_path
        self.url = f"https://localhost:{self._http.port}"
        self._identity.base_url = self.url
        self._graph.base_url = self.graph_url
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start() if not self._http.running else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.tenant}"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    # -- knobs -----------------------------------------------------------------------

    @property
    def access_token_lifetime(self) -> int:
        return self._identity.access_token_lifetime

    @access_token_lifetime.setter
    def access_token_lifetime(self, seconds: int) -> None:
        with self._lock:
            self._identity.access_token_lifetime = seconds

    @property
    def device_code_lifetime(self) -> int:
        return self._identity.device_code_lifetime

    @device_code_lifetime.setter
    def device_code_lifetime(self, seconds: int) -> None:
        with self._lock:
            self._identity.device_code_lifetime = seconds

    @property
    def delta_expired_status(self) -> Literal[400, 410]:
        """Status of an expired deltaLink: 410 (with Location) or 400."""
        return self._graph.delta_expired_status

    @delta_expired_status.setter
    def delta_expired_status(self, status: Literal[400, 410]) -> None:
        if status not in (400, 410):
            raise ValueError("delta_expired_status must be 400 or 410")
        with self._lock:
            self._graph.delta_expired_status = status

    @property
    def default_page_size(self) -> int:
        """Page size of collections when the client sends no odata.maxpagesize/$top."""
        return self._graph.default_page_size

    @default_page_size.setter
    def default_page_size(self, size: int) -> None:
        with self._lock:
            self._graph.default_page_size = size

    @property
    def rules(self) -> WorldRules:
        """The schedules of what real Graph does to clients (graph_world.py), on by
        default; a test that pins one exact exchange may switch one off."""
        return self._graph.rules

    @property
    def looping_delta(self) -> bool:
        """While set, delta continuation pages repeat themselves under the same nextLink."""
        return self._graph.looping_delta

    @looping_delta.setter
    def looping_delta(self, looping: bool) -> None:
        with self._lock:
            self._graph.looping_delta = looping

    # -- identity ------------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        certificate: str | bytes | None = None,
        name: str | None = None,
    ) -> None:
        """Register an app; with a secret and/or PEM certificate it is confidential.

        Unregistered client ids are accepted as public clients.  A confidential
        client must authenticate on every token request (client_secret in the
        body or HTTP Basic, or a client_assertion JWT; the assertion's signature
        is checked only when a certificate was registered).
        """
        with self._lock:
            self._identity.register_client(client_id, secret, certificate, name)

    def add_user(self, upn: str, *, user_id: str | None = None) -> str:
        """Add a user with a mailbox holding a default calendar; returns the object id."""
        with self._lock:
            user = self._identity.add_user(upn, user_id)
            self._graph.add_mailbox(user)
            return user.oid

    def user_id(self, user: str | None = None) -> str:
        with self._lock:
            return self._user(user).oid

    def approve_device_code(self, user: str | None = None, *, user_code: str | None = None) -> None:
        """Sign ``user`` in on the device-code page (the latest pending code by default)."""
        with self._lock:
            self._identity.approve_device_code(self._user(user), user_code)

    def decline_device_code(self, *, user_code: str | None = None) -> None:
        with self._lock:
            self._identity.decline_device_code(user_code)

    def revoke_refresh_tokens(
        self, user: str | None = None, *, error_code: Literal[50173, 70008] = 50173
    ) -> None:
        """Invalidate the user's refresh tokens: AADSTS50173 (revoked) or 70008 (expired)."""
        with self._lock:
            self._identity.revoke_refresh_tokens(self._user(user), error_code)

    def revoke_consent(self, client_id: str) -> None:
        """Refreshing then fails with AADSTS65001 until a device code is approved again."""
        with self._lock:
            self._identity.revoke_consent(client_id)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now rejected by Graph with 401."""
        with self._lock:
            self._identity.expire_access_tokens()

    def mint_access_token(
        self,
        user: str | None = None,
        *,
        client_id: str = "fake-test-client",
        scopes: Iterable[str] = DEFAULT_DELEGATED_PERMISSIONS,
        app_only: bool = False,
    ) -> str:
        """A Graph access token without going through MSAL (for Graph-only tests)."""
        with self._lock:
            if app_only:
                return self._identity.mint_access_token(client_id, None, APPLICATION_PERMISSIONS)
            return self._identity.mint_access_token(client_id, self._user(user), tuple(scopes))

    # -- graph store ----------------------------------------------------------------------

    def add_calendar(
        self, user: str, name: str, *, default: bool = False, can_edit: bool = True
    ) -> str:
        """A calendar in ``user``'s mailbox; ``can_edit`` False: one shared with them to
        view only (Graph reports ``canEdit: false`` and refuses writes with 403)."""
        with self._lock:
            return self._graph.add_calendar(self._user(user), name, default, can_edit)

    def put_event(
        self, user: str, calendar_id: str | None, resource: Mapping[str, Any]
    ) -> JsonObject:
        """Insert or replace an event as the user would in Outlook.

        ``resource`` uses Graph's shape.  With an existing ``id`` the event is
        replaced (new change key); with an occurrence id it becomes an
        exception; otherwise it is inserted (under the given ``id`` if any).
        Unlike the API, seeding may set ``isCancelled``, ``responseStatus``,
        ``isOrganizer`` and ``iCalUId``.  ``calendar_id=None``: default calendar.
        Returns the event as Graph renders it (UTC, all extended properties).
        """
        with self._lock:
            try:
                return self._graph.put_event(self._user(user), calendar_id, resource)
            except GraphError as exc:
                raise (KeyError if exc.status == 404 else ValueError)(exc.message) from exc

    def delete_event(self, user: str, event_id: str) -> None:
        """Delete an event or series; an occurrence id cancels that occurrence."""
        with self._lock:
            try:
                self._graph.delete_event(self._user(user), event_id)
            except GraphError as exc:
                raise KeyError(exc.message) from exc

    def drift_change_key(self, user: str, event_id: str) -> None:
        """Renew an event's changeKey with no edit, as Graph does on its own (what the
        schedule of WorldRules.drift_every does after reads)."""
        with self._lock:
            self._graph.drift_change_key(self._user(user), event_id)

    def reset_mailbox(self, user: str | None = None) -> None:
        """Make the user's mailbox as new: no events, live or soft-deleted, and the
        schedules of graph_world starting over (a test's clean slate, not a Graph API)."""
        with self._lock:
            self._graph.reset_mailbox(self._user(user))

    def events(self, user: str, calendar_id: str | None = None) -> list[JsonObject]:
        """Stored events (single instances and series masters) in creation order.

        ``calendar_id=None`` lists every calendar of the mailbox.
        """
        with self._lock:
            return self._graph.list_events(self._user(user), calendar_id)

    @property
    def sent_mail(self) -> list[JsonObject]:
        """Copies of what was posted to sendMail: {"from", "message", "saveToSentItems", ...}."""
        with self._lock:
            return [dict(m) for m in self._graph.sent_mail]

    def expire_delta_tokens(self) -> None:
        """Every deltaLink issued so far now answers ``delta_expired_status``."""
        with self._lock:
            self._graph.expire_delta_tokens()

    # -- recording and faults -------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    def inject(self, fault: Fault) -> None:
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- internals ------------------------------------------------------------------------

    def _user(self, key: str | None) -> User:
        return self._identity.user(key or self.default_user)

    def _respond(self, incoming: Incoming) -> Answer:
        headers = incoming.headers(join_repeated=True)
        record = RecordedRequest(
            incoming.method, incoming.path, incoming.query, headers, incoming.body
        )
        self._record(record)
        fault, reply = self._answer(record)
        if reply is not None:
            record.status = reply.status
        return Answer(reply, truncate=fault is not None and fault.kind == "truncate")

    def _record(self, request: RecordedRequest) -> None:
        self._log.record(request)

    def _take_fault(self, request: RecordedRequest, *, in_batch: bool) -> Fault | None:
        return self._faults.take(lambda f: f.in_batch == in_batch and f.matches(request))

    def _answer(self, request: RecordedRequest) -> tuple[Fault | None, Reply | None]:
        """The reply to a top-level request, and the fault (if any) shaping it."""
        fault: Fault | None = None
        try:
            fault = self._take_fault(request, in_batch=False)
            if fault is not None and fault.kind == "reset":
                return fault, None
            # A hang or latency stalls the answer on its way to the client; it holds no
            # slot of the mailbox: clients wait for Retry-After with an injected sleep, so
            # a stall counted as work would throttle their retries for ever.
            if fault is not None and fault.kind == "hang":
                self._http.sleep(fault.delay)
            if self.latency:
                self._http.sleep(self.latency)
            if fault is not None and fault.kind == "status":
                return fault, fault_reply(fault, request, self._identity)
            return fault, self._gate.admit(
                request.path, request.headers, request.json, lambda: self._dispatch(request)
            )
        except Exception:  # a bug in the fake or a fault predicate: answer 500
            _log.exception("fake Microsoft server failed on %s %s", request.method, request.path)
            return fault, Reply.json(
                500, {"error": {"code": "FakeServerBug", "message": traceback.format_exc()}}
            )

    def _dispatch(self, request: RecordedRequest) -> Reply:
        if request.path == "/v1.0" or request.path.startswith("/v1.0/"):
            graph_request = GraphRequest(
                request.method,
                request.path[len("/v1.0") :] or "/",
                request.query,
                request.headers,
                request.body,
            )
            return self._graph.handle(graph_request, self._batch_item)
        segments = [unquote(s) for s in request.path.split("/") if s]
        with self._lock:
            reply = self._identity.handle(request.method, segments, request.headers, request.body)
        if reply is None:
            return Reply.json(404, {"error": "not_found", "error_description": request.path})
        return reply

    def _batch_item(
        self,
        item_id: str,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        run: Callable[[], Reply],
    ) -> Reply:
        path, _, query_string = target.partition("?")
        record = RecordedRequest(
            method, path, query_string, dict(headers), body, batch_part=True, batch_id=item_id
        )
        self._record(record)
        fault = self._take_fault(record, in_batch=True)
        if self._gate.refused(item_id):
            reply = mailbox_full(headers)
        elif fault is not None and fault.kind == "status":
            reply = fault_reply(fault, record, self._identity)
        else:
            if fault is not None:
                self._http.sleep(fault.delay)
            reply = run()
        record.status = reply.status
        return reply
