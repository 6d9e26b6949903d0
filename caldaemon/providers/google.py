"""``provider: google``: Google Calendar API v3 through google-api-python-client.

Reading follows "Synchronize resources efficiently"
(https://developers.google.com/calendar/api/guides/sync): a full listing of the window
with ``singleEvents=true``, every page followed, and the last page's ``nextSyncToken``
kept; later listings send that token with the same parameters minus the ones the API
forbids with it. Writing sends caldaemon's buffers in batches ("Sending batch requests",
https://developers.google.com/calendar/api/guides/batch) with deterministic ids and
``If-Match``. Errors follow "Handle API errors"
(https://developers.google.com/calendar/api/guides/errors): rate limits, 5xx and broken
connections are retried by caldaemon's own retry layer; other 4xx are not.
"""

from __future__ import annotations

import http.client
import random
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from ..errors import (AuthorizationError, CalendarError, Error, RemoteGone, TransientError,
                      WriteConflict)
from ..model import Buffer, Event
from ..retry import RetryPolicy, RetryVerdict, parse_retry_after, with_retries
from . import google_auth
from .base import (Create, Delete, Listing, Provider, ProviderContext, Remote, Update, Window,
                   Write, WriteResult)
from .google_mapping import (buffer_body, error_reasons, event_from_resource, event_id, owner_of,
                             read_token, rfc3339, same_buffer, write_token)

if TYPE_CHECKING:
    from ..config_schema import GoogleCalendar

T = TypeVar("T")
GOOGLE_BATCH_URI = "https://www.googleapis.com/batch/calendar/v3"
# events.list: "maxResults ... The page size can never be larger than 2500 events".
PAGE_SIZE = 2500
# "Handle API errors": 403 with these reasons, like 429, means "slow down".
RATE_LIMITED = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
# Timeouts, resets, truncated bodies (http.client.IncompleteRead), a failed token request.
TRANSPORT_ERRORS = (TimeoutError, ConnectionError, http.client.HTTPException,
                    httplib2.HttpLib2Error, TransportError)


class _SyncTokenExpired(CalendarError):
    """410 on a listing with a sync token: "wipe the store and perform a full sync"."""


class _PartsToRetry(Exception):
    """Some parts of a batch failed in a way worth retrying; only those are sent again."""

    def __init__(self, delay: float | None) -> None:
        super().__init__("batch parts to retry")
        self.delay = delay


@dataclass(frozen=True)
class _Answer:
    """One batch part's outcome: the decoded resource, or the part's HTTP error."""

    resource: dict[str, Any] | None
    error: HttpError | None


class _Batch(BatchHttpRequest):  # type: ignore[misc]
    """A batch whose token refresh after a part's 401 goes through an Http with our
    timeout (the library's own uses a new ``httplib2.Http()`` without one)."""

    def __init__(self, refresh: google_auth_httplib2.Request, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._refresh_request = refresh

    def _refresh_and_apply_credentials(self, request: HttpRequest, http: Any) -> None:
        credentials = http.credentials
        if id(credentials) not in self._refreshed_credentials:
            credentials.refresh(self._refresh_request)
            self._refreshed_credentials[id(credentials)] = 1


class GoogleProvider(Provider):
    batch = True
    batch_size = 50  # "You're limited to 50 calls in a single batch request."
    config: GoogleCalendar

    def __init__(self, config: GoogleCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        # Write access (and the calendar.events scope) only where buffers go.
        self.read_only = context.buffers_to != config.id  # type: ignore[misc]
        self.policy = RetryPolicy()
        self.log = context.log.getChild("google")
        self.auth = google_auth.Authorization(
            config, clinician_id=context.clinician, state_dir=context.state_dir,
            buffers_to=context.buffers_to, source=self.describe(), log=self.log)
        self._rng = random.Random()
        self._local = threading.local()
        self._lock = threading.Lock()
        # Every thread's Http, to close them; a finished thread's goes with it.
        self._connections: weakref.WeakSet[httplib2.Http] = weakref.WeakSet()

    def describe(self) -> str:
        if self.config.subject:
            who = f"service account acting as {self.config.subject}"
        else:
            path = google_auth.token_path(self.config, self.context.state_dir,
                                          self.context.clinician)
            who = f"token …/{path.name}"
        return f"Google Calendar '{self.config.calendar}' ({who})"

    def _local_service(self) -> threading.local:
        """This thread's Http, AuthorizedHttp and Calendar service. httplib2 is not
        thread-safe: one Http per thread (google-api-python-client, "Thread safety").
        Built on first use, so opening a provider costs no I/O."""
        credentials, generation = self.auth.credentials()
        local = self._local
        if getattr(local, "generation", None) != generation:
            local.http = httplib2.Http(timeout=self.config.timeout.total_seconds())
            local.authorized = google_auth_httplib2.AuthorizedHttp(credentials, http=local.http)
            endpoint = self.config.api_endpoint
            options = {"api_endpoint": endpoint.rstrip("/") + "/"} if endpoint else None
            # static_discovery: the discovery document shipped with the library, no fetch.
            local.service = build("calendar", "v3", http=local.authorized, static_discovery=True,
                                  cache_discovery=False, client_options=options)
            local.generation = generation
            with self._lock:
                self._connections.add(local.http)
        return local

    def _events_api(self) -> Any:
        return self._local_service().service.events()

    def _batch_uri(self) -> str:
        # service.new_batch_http_request() ignores api_endpoint, so the URI is set here.
        endpoint = self.config.api_endpoint
        return endpoint.rstrip("/") + "/batch/calendar/v3" if endpoint else GOOGLE_BATCH_URI

    # -- errors and retries --------------------------------------------------------------

    def _verdict(self, exc: BaseException) -> RetryVerdict | None:
        if isinstance(exc, _PartsToRetry):
            return RetryVerdict(exc.delay)
        if isinstance(exc, HttpError):
            status = exc.resp.status
            if status == 429 or status >= 500 or (
                    status == 403 and error_reasons(exc.content) & RATE_LIMITED):
                return RetryVerdict(parse_retry_after(exc.resp.get("retry-after"),
                                                      self.context.clock))
            return None
        return RetryVerdict() if isinstance(exc, TRANSPORT_ERRORS) else None

    def _on_retry(self, exc: BaseException, delay: float) -> None:
        self.log.info("%s: %s; trying again in %.1f s", self.describe(), _what(exc), delay)
        http = getattr(self._local, "http", None)
        if http is not None and isinstance(exc, TRANSPORT_ERRORS):
            http.close()  # httplib2 would reuse the broken keep-alive connection

    def _retrying(self, operation: Callable[[], T]) -> T:
        """``operation`` with our retries; what still fails becomes a CalendarError."""
        try:
            return with_retries(operation, classify=self._verdict, policy=self.policy,
                                sleep=self.context.sleep, rng=self._rng, on_retry=self._on_retry)
        except (RefreshError, HttpError, *TRANSPORT_ERRORS) as exc:
            raise self._failure(exc) from None
        finally:
            self.auth.save_refreshed()

    def _failure(self, exc: BaseException) -> CalendarError:
        where = self.describe()
        if isinstance(exc, RefreshError):
            return self.auth.refused(exc)
        if not isinstance(exc, HttpError):
            return TransientError(self.id, where, f"cannot reach Google Calendar ({_what(exc)})")
        status = exc.resp.status
        if status == 401:
            self.auth.forget()
            return AuthorizationError(self.id, where, "Google no longer accepts the stored "
                                      "authorization", self.auth.command)
        if status == 410:
            return _SyncTokenExpired(self.id, where, "the sync token expired")
        if self._verdict(exc) is not None:
            return TransientError(self.id, where, f"Google Calendar answered {_what(exc)}")
        if status == 404:
            return CalendarError(self.id, where, f"calendar '{self.config.calendar}' was not "
                                 "found, or is not shared with this account")
        return CalendarError(self.id, where, f"Google Calendar answered {_what(exc)}")

    # -- reading -------------------------------------------------------------------------

    def list(self, window: Window, token: str | None) -> Listing:
        sync_token = read_token(token, self.config.calendar)
        if sync_token is not None:
            try:
                return self._incremental(sync_token)
            except _SyncTokenExpired:
                # "Sometimes sync tokens are invalidated by the server ... the client
                # should clear its storage and perform a full sync" (full=True does).
                self.log.info("%s: the sync token expired; reading the window again",
                              self.describe())
        return self._full(window)

    def _params(self) -> dict[str, Any]:
        """The parameters of every listing. Incremental syncs send exactly these plus
        ``syncToken``: events.list forbids timeMin/timeMax with a sync token (and
        showDeleted=false too: deletions are always in an incremental result), so the
        window goes only into full listings."""
        return {"calendarId": self.config.calendar, "singleEvents": True,
                "maxResults": PAGE_SIZE}

    def _pages(self, **extra: Any) -> tuple[list[dict[str, Any]], str | None]:
        """Every page; only the last one carries ``nextSyncToken``."""
        items: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            params = self._params() | extra | ({"pageToken": page_token} if page_token else {})
            page = self._retrying(lambda: self._events_api().list(**params).execute())
            items.extend(page.get("items") or ())
            page_token = page.get("nextPageToken")
            if not page_token:
                return items, page.get("nextSyncToken")

    def _full(self, window: Window) -> Listing:
        items, sync = self._pages(timeMin=rfc3339(window.start), timeMax=rfc3339(window.end))
        events, warnings = self._events([i for i in items if i.get("status") != "cancelled"])
        return Listing(events=events, removed=(), token=write_token(self.config.calendar, sync),
                       full=True, warnings=warnings)

    def _incremental(self, sync_token: str) -> Listing:
        items, sync = self._pages(syncToken=sync_token)
        # Deleted events come back as stubs: status "cancelled", an id and little else.
        removed = tuple(str(i["id"]) for i in items if i.get("status") == "cancelled")
        events, warnings = self._events([i for i in items if i.get("status") != "cancelled"])
        return Listing(events=events, removed=removed, full=False, warnings=warnings,
                       token=write_token(self.config.calendar, sync))

    def _events(self, items: list[dict[str, Any]]) -> tuple[tuple[Event, ...], tuple[str, ...]]:
        events, warnings = [], []
        for item in items:
            try:
                events.append(event_from_resource(item, calendar=self.id, tz=self.context.tz,
                                                  self_addresses=self.context.self_addresses))
            except (KeyError, TypeError, ValueError):
                warnings.append(f"{self.describe()}: skipped event {item.get('id')}, whose "
                                "times cannot be read")
        return tuple(events), tuple(warnings)

    # -- writing -------------------------------------------------------------------------

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """All writes in batches of ≤ 50. An insert refused with 409 and an update or
        delete refused with 412 are looked up (one more batch) to tell our own earlier
        write, whose reply was lost, from the user's change."""
        if self.read_only:
            raise CalendarError(self.id, self.describe(), "caldaemon writes only to the "
                                "clinician's buffers_to calendar")
        makers: dict[int, Callable[[], HttpRequest]] = {}
        results: dict[int, WriteResult] = {}
        for key, write in enumerate(writes):
            if not isinstance(write, Create) and write.remote.etag is None:
                results[key] = WriteResult(write, error=WriteConflict(self.id, write.remote.id))
            else:
                makers[key] = self._request_for(write)
        lookups: dict[int, Callable[[], HttpRequest]] = {}
        for key, answer in self._send(makers).items():
            write, error = writes[key], answer.error
            status = error.resp.status if error is not None else None
            if error is None:
                resource = answer.resource or {}
                results[key] = WriteResult(write, remote=None if isinstance(write, Delete) else
                                           Remote(resource["id"], resource.get("etag")))
            elif status == (409 if isinstance(write, Create) else 412):
                lookups[key] = self._lookup(_remote_id(write))
            elif status in (404, 410) and not isinstance(write, Create):
                results[key] = WriteResult(write, error=RemoteGone(self.id, _remote_id(write)))
            else:
                results[key] = WriteResult(write, error=self._part_error(error))
        for key, answer in self._send(lookups).items():
            results[key] = self._reconcile(writes[key], answer)
        return [results[key] for key in range(len(writes))]

    def _request_for(self, write: Write) -> Callable[[], HttpRequest]:
        """Makes the request for ``write`` anew for each attempt. Updates and deletes
        carry If-Match: they apply only to the version we last saw (else 412)."""
        calendar = self.config.calendar

        def request() -> HttpRequest:
            events = self._events_api()
            if isinstance(write, Create):
                return events.insert(calendarId=calendar, sendUpdates="none",
                                     body=buffer_body(write.buffer, write.identity))
            if isinstance(write, Update):
                built = events.update(calendarId=calendar, eventId=write.remote.id,
                                      sendUpdates="none",
                                      body=buffer_body(write.buffer, write.identity))
            else:
                built = events.delete(calendarId=calendar, eventId=write.remote.id,
                                      sendUpdates="none")
            built.headers["If-Match"] = write.remote.etag
            return built
        return request

    def _lookup(self, remote_id: str) -> Callable[[], HttpRequest]:
        return lambda: self._events_api().get(calendarId=self.config.calendar, eventId=remote_id)

    def _reconcile(self, write: Write, answer: _Answer) -> WriteResult:
        remote_id = _remote_id(write)
        if answer.error is not None:
            if answer.error.resp.status in (404, 410):
                return WriteResult(write, error=RemoteGone(self.id, remote_id))
            return WriteResult(write, error=self._part_error(answer.error))
        resource = answer.resource or {}
        if resource.get("status") == "cancelled":
            # The user deleted it (or our own earlier delete landed): never put back.
            return WriteResult(write, error=RemoteGone(self.id, remote_id))
        remote = Remote(remote_id, resource.get("etag"))
        if isinstance(write, Create) and owner_of(resource) == write.identity:
            return WriteResult(write, remote=remote)  # an earlier create that landed
        if isinstance(write, Update) and same_buffer(resource, write.buffer, write.identity):
            return WriteResult(write, remote=remote)  # our update landed, its reply was lost
        return WriteResult(write, error=WriteConflict(self.id, remote_id))

    def _part_error(self, error: HttpError) -> Error:
        failure = self._failure(error)
        return failure if isinstance(failure, TransientError) else CalendarError(
            self.id, self.describe(), f"Google Calendar refused the write: {_what(error)}")

    def _send(self, makers: Mapping[int, Callable[[], HttpRequest]]) -> dict[int, _Answer]:
        """Send requests as batches of ≤ 50. Parts that fail with a retryable error, and
        whole batches that do, are sent again with backoff until the retries run out;
        such parts then keep their last error."""
        answers: dict[int, _Answer] = {}
        pending = list(makers)

        def attempt() -> None:
            nonlocal pending
            retry: list[int] = []
            while pending:
                chunk, got = pending[:self.batch_size], {}
                try:
                    self._execute_batch({key: makers[key] for key in chunk}, got)
                except BaseException:
                    pending = retry + pending  # the whole batch goes again
                    raise
                answers.update(got)
                retry += [key for key in chunk if got[key].error is not None
                          and self._verdict(got[key].error) is not None]
                pending = pending[self.batch_size:]
            pending = retry
            if retry:
                verdicts = [self._verdict(answers[key].error) for key in retry]
                delays = [v.delay for v in verdicts if v is not None and v.delay is not None]
                raise _PartsToRetry(max(delays) if delays else None)

        if pending:
            try:
                self._retrying(attempt)
            except _PartsToRetry:
                pass
        return answers

    def _execute_batch(self, makers: Mapping[int, Callable[[], HttpRequest]],
                       got: dict[int, _Answer]) -> None:
        def collect(request_id: str, resource: Any, error: HttpError | None) -> None:
            got[int(request_id)] = _Answer(resource, error)

        local = self._local_service()
        refresh = google_auth_httplib2.Request(local.http)
        if not local.authorized.credentials.valid:
            local.authorized.credentials.refresh(refresh)  # with our timeout, not the batch's
        batch = _Batch(refresh, callback=collect, batch_uri=self._batch_uri())
        for key, make in makers.items():
            batch.add(make(), request_id=str(key))
        batch.execute(http=local.authorized)

    def create(self, buffer: Buffer, identity: str) -> Remote:
        return _unwrap(self.apply([Create(buffer, identity)])[0])

    def update(self, remote: Remote, buffer: Buffer, identity: str) -> Remote:
        return _unwrap(self.apply([Update(buffer, identity, remote)])[0])

    def delete(self, remote: Remote) -> None:
        _unwrap(self.apply([Delete("", remote)])[0])

    def close(self) -> None:
        with self._lock:
            for connection in list(self._connections):
                connection.close()
            self._connections.clear()
        self.auth.forget()


def _remote_id(write: Write) -> str:
    return event_id(write.identity) if isinstance(write, Create) else write.remote.id


def _what(exc: BaseException) -> str:
    """An error for messages and logs: status, Google's message and reasons; never a URL
    (it may carry a sync token) nor a credential."""
    if isinstance(exc, HttpError):
        reasons = ", ".join(sorted(error_reasons(exc.content)))
        text = f"{exc.resp.status} {exc.reason or ''}".strip()
        return f"{text} ({reasons})" if reasons else text
    return type(exc).__name__


def _unwrap(result: WriteResult) -> Remote:
    if result.error is not None:
        raise result.error
    return result.remote or Remote("", None)
