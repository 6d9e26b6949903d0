"""HTTP to Google Calendar API v3 for the google provider: one httplib2 connection pool
per thread shared by every calendar, one Calendar events collection per process, batches
("Sending batch requests", https://developers.google.com/calendar/api/guides/batch) and
caldaemon's own retries.

Errors follow "Handle API errors" (https://developers.google.com/calendar/api/guides/errors):
rate limits, 5xx and broken connections are retried; other 4xx are not, ``quotaExceeded``
never is (:class:`~caldaemon.errors.CalendarPaused`), and what still fails becomes a
:class:`~caldaemon.errors.CalendarError` naming the calendar.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any, TypeVar

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from caldaemon.errors import AuthorizationError, CalendarError, CalendarPaused, TransientError
from caldaemon.providers.google.mapping import error_reasons
from caldaemon.retry import RetryPolicy, RetryVerdict, parse_retry_after, with_retries

if TYPE_CHECKING:
    from caldaemon.providers.base import ProviderContext
    from caldaemon.providers.google import auth as google_auth
    from caldaemon.providers.google.settings import GoogleCalendar

T = TypeVar("T")
GOOGLE_BATCH_URI = "https://www.googleapis.com/batch/calendar/v3"
# "Handle API errors": 403 with these reasons, like 429, means "slow down".
RATE_LIMITED = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
# "Calendar usage limits exceeded": the calendar is read-only for hours, and retrying only
# prolongs it (RESEARCH.md, "Google Calendar API v3"; "Handle API errors", 403 usage
# limits). Never retried: the calendar is paused (CalendarPaused).
USAGE_LIMITS = "quotaExceeded"
# A write to a calendar the account may only read (accessRole reader or freeBusyReader):
# 403 requiredAccessLevel, "You need to have writer access to this calendar."
# (spatie/laravel-google-calendar #95). Retrying cannot help until a person shares the
# calendar for writing: the calendar is paused (CalendarPaused) as for usage limits.
NO_WRITE_ACCESS = "requiredAccessLevel"
# Timeouts, resets, truncated bodies (http.client.IncompleteRead), a failed token request.
TRANSPORT_ERRORS = (
    TimeoutError,
    ConnectionError,
    http.client.HTTPException,
    httplib2.HttpLib2Error,
    TransportError,
)


# httplib2 is not thread-safe ("Thread safety", google-api-python-client): each worker
# thread has its own connection pools, shared by all the calendars it serves, so a
# thousand calendars on 32 threads hold 32 pools, not 32,000.
_THREAD = threading.local()


def thread_http(timeout: float) -> httplib2.Http:
    """This thread's Http for requests with ``timeout`` (one pool per distinct timeout)."""
    pools: dict[float, httplib2.Http] = _THREAD.__dict__.setdefault("pools", {})
    if timeout not in pools:
        pools[timeout] = httplib2.Http(timeout=timeout)
    return pools[timeout]


# The Calendar API v3 discovery document, shipped with caldaemon so that building the
# client needs no discovery fetch and none of google-api-python-client's 611 bundled
# documents (issue 15). A byte-for-byte copy of
# googleapiclient/discovery_cache/documents/calendar.v3.json from google-api-python-client
# 2.202.0, "revision": "20261030". To refresh it, copy that file from a newer release.
DISCOVERY_DOCUMENT = "calendar-v3.json"


@functools.lru_cache(maxsize=1)
def calendar_discovery() -> dict[str, Any]:
    """The shipped discovery document, parsed once per process."""
    text = files(__package__).joinpath(DISCOVERY_DOCUMENT).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


class Unbound:
    """The http the shared events collection is built with. Its requests are sent with
    their own calendar's credentials (``execute(http=...)``, or ``request.http`` set
    before a batch); one sent without would reach this and fail, never go out under
    another calendar's credentials or none."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a Calendar request was sent without its calendar's credentials")


class EventsCollections:
    """The events collections of Calendar API v3 in this process: one per API endpoint
    (Google's, or a test server's), each built once and shared by every calendar and
    thread.

    Building one is most of the CPU of an unchanged poll: ``service.events()`` makes a
    new Resource at each call, with every method and its docstring made afresh from the
    discovery document (issue 15's profile: 3.5 ms of CPU per request, 31.5 % of the
    steady state at 1,000 calendars). A collection keeps no state between calls: each
    method call makes a new HttpRequest from its arguments, which is safe across threads.
    The requests it makes carry no credentials (see :class:`Unbound`)."""

    # Endpoints kept: Google's, and a few test servers'; the oldest goes first.
    LIMIT = 16

    def __init__(self) -> None:
        self._built: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def get(self, api_endpoint: str | None) -> Any:
        with self._lock:
            if api_endpoint not in self._built:
                if len(self._built) >= self.LIMIT:
                    del self._built[next(iter(self._built))]
                self._built[api_endpoint] = _build_events(api_endpoint)
            return self._built[api_endpoint]

    def clear(self) -> None:
        with self._lock:
            self._built.clear()


def _build_events(api_endpoint: str | None) -> Any:
    options = {"api_endpoint": api_endpoint.rstrip("/") + "/"} if api_endpoint else None
    service = build_from_document(calendar_discovery(), http=Unbound(), client_options=options)
    return service.events()


EVENTS = EventsCollections()


class SyncTokenExpired(CalendarError):
    """410 on a listing with a sync token: "wipe the store and perform a full sync"."""


class _PartsToRetry(Exception):
    """Some parts of a batch failed in a way worth retrying; only those are sent again."""

    def __init__(self, delay: float | None) -> None:
        super().__init__("batch parts to retry")
        self.delay = delay


@dataclass(frozen=True)
class Answer:
    """One batch part's outcome: the decoded resource, or the part's HTTP error."""

    resource: dict[str, Any] | None
    error: HttpError | None


class _Batch(BatchHttpRequest):
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


class CalendarClient:
    """One provider's requests to Calendar API v3.

    Errors name the provider's calendar (``calendar_id``, ``describe()``). ``context()``
    is asked for the provider's context at each use rather than once, so a context
    swapped in later (another clock or sleep) is the one that counts."""

    def __init__(
        self,
        config: GoogleCalendar,
        *,
        calendar_id: str,
        describe: Callable[[], str],
        auth: google_auth.Authorization,
        log: logging.Logger,
        context: Callable[[], ProviderContext],
    ) -> None:
        self.config = config
        self.calendar_id = calendar_id
        self.describe = describe
        self.auth = auth
        self.log = log
        self.context = context
        self.policy = RetryPolicy()
        self.rng = random.Random()

    def http(self) -> google_auth_httplib2.AuthorizedHttp:
        """This calendar's credentials over this thread's connection pool."""
        credentials, _ = self.auth.credentials()
        return google_auth_httplib2.AuthorizedHttp(
            credentials, http=thread_http(self.config.timeout.total_seconds())
        )

    def events(self) -> Any:
        """The events collection the requests are built from (shared by the process:
        opening a provider costs no I/O and no build). Its requests are sent with
        :meth:`execute` or :meth:`send`, which give them this calendar's credentials."""
        return EVENTS.get(self.config.api_endpoint)

    def execute(self, request: HttpRequest) -> Any:
        return request.execute(http=self.http())

    def close(self) -> None:
        """Nothing of this calendar's to release: the events collection and the
        connection pools are the process's, the credentials the provider's."""

    def _batch_uri(self) -> str:
        # service.new_batch_http_request() ignores api_endpoint, so the URI is set here.
        endpoint = self.config.api_endpoint
        return endpoint.rstrip("/") + "/batch/calendar/v3" if endpoint else GOOGLE_BATCH_URI

    # -- errors and retries --------------------------------------------------------------

    def _retryable(self, error: HttpError | None) -> bool:
        return error is not None and self.verdict(error) is not None

    def _verdict_of(self, error: HttpError | None) -> RetryVerdict | None:
        return None if error is None else self.verdict(error)

    def verdict(self, exc: BaseException) -> RetryVerdict | None:
        if isinstance(exc, _PartsToRetry):
            return RetryVerdict(exc.delay)
        if isinstance(exc, HttpError):
            status = exc.resp.status
            if USAGE_LIMITS in error_reasons(exc.content):
                return None
            if (
                status == 429
                or status >= 500
                or (status == 403 and error_reasons(exc.content) & RATE_LIMITED)
            ):
                return RetryVerdict(
                    parse_retry_after(exc.resp.get("retry-after"), self.context().clock)
                )
            return None
        return RetryVerdict() if isinstance(exc, TRANSPORT_ERRORS) else None

    def _on_retry(self, exc: BaseException, delay: float) -> None:
        self.log.info("%s: %s; trying again in %.1f s", self.describe(), describe_error(exc), delay)
        if isinstance(exc, TRANSPORT_ERRORS):
            # httplib2 would reuse the broken keep-alive connection.
            thread_http(self.config.timeout.total_seconds()).close()

    def retrying(self, operation: Callable[[], T]) -> T:
        """``operation`` with our retries; what still fails becomes a CalendarError."""
        try:
            return with_retries(
                operation,
                classify=self.verdict,
                policy=self.policy,
                sleep=self.context().sleep,
                rng=self.rng,
                on_retry=self._on_retry,
            )
        except (RefreshError, HttpError, *TRANSPORT_ERRORS) as exc:
            raise self.failure(exc) from None
        finally:
            self.auth.save_refreshed()

    def failure(self, exc: BaseException) -> CalendarError:
        where = self.describe()
        if isinstance(exc, RefreshError):
            return self.auth.refused(exc)
        if not isinstance(exc, HttpError):
            return TransientError(
                self.calendar_id, where, f"cannot reach Google Calendar ({describe_error(exc)})"
            )
        status = exc.resp.status
        if status == 401:
            self.auth.forget()
            return AuthorizationError(
                self.calendar_id,
                where,
                "Google no longer accepts the stored authorization",
                self.auth.command,
            )
        if status == 410:
            return SyncTokenExpired(self.calendar_id, where, "the sync token expired")
        if USAGE_LIMITS in error_reasons(exc.content):
            return CalendarPaused(
                self.calendar_id,
                where,
                "Google Calendar's usage limits were exceeded (quotaExceeded), which keeps "
                "the calendar read-only for some hours",
            )
        if NO_WRITE_ACCESS in error_reasons(exc.content):
            return CalendarPaused(
                self.calendar_id,
                where,
                f"this account may only read calendar '{self.config.calendar}' (Google "
                f"answered {describe_error(exc)}); buffers_to needs a calendar it may change: "
                "share it with 'Make changes to events', or name another calendar in buffers_to",
            )
        if self.verdict(exc) is not None:
            return TransientError(
                self.calendar_id, where, f"Google Calendar answered {describe_error(exc)}"
            )
        if status == 404:
            return CalendarError(
                self.calendar_id,
                where,
                f"calendar '{self.config.calendar}' "
                "was not found, or is not shared with this account",
            )
        return CalendarError(
            self.calendar_id, where, f"Google Calendar answered {describe_error(exc)}"
        )

    # -- batches -------------------------------------------------------------------------

    def send(
        self, makers: Mapping[int, Callable[[], HttpRequest]], batch_size: int
    ) -> dict[int, Answer]:
        """Send requests as batches of ≤ ``batch_size``. Parts that fail with a retryable
        error, and whole batches that do, are sent again with backoff until the retries
        run out; such parts then keep their last error."""
        answers: dict[int, Answer] = {}
        pending = list(makers)

        def attempt() -> None:
            nonlocal pending
            retry: list[int] = []
            while pending:
                chunk = pending[:batch_size]
                got: dict[int, Answer] = {}
                try:
                    self._execute_batch({key: makers[key] for key in chunk}, got)
                except BaseException:
                    pending = retry + pending  # the whole batch goes again
                    raise
                answers.update(got)
                retry += [key for key in chunk if self._retryable(got[key].error)]
                pending = pending[batch_size:]
            pending = retry
            if retry:
                verdicts = [self._verdict_of(answers[key].error) for key in retry]
                delays = [v.delay for v in verdicts if v is not None and v.delay is not None]
                raise _PartsToRetry(max(delays) if delays else None)

        if pending:
            # Parts still failing once the retries run out keep their last error.
            with contextlib.suppress(_PartsToRetry):
                self.retrying(attempt)
        return answers

    def _execute_batch(
        self, makers: Mapping[int, Callable[[], HttpRequest]], got: dict[int, Answer]
    ) -> None:
        def collect(request_id: str, resource: Any, error: HttpError | None) -> None:
            got[int(request_id)] = Answer(resource, error)

        authorized = self.http()
        refresh = google_auth_httplib2.Request(authorized.http)
        if not authorized.credentials.valid:
            authorized.credentials.refresh(refresh)  # with our timeout, not the batch's
        batch = _Batch(refresh, callback=collect, batch_uri=self._batch_uri())
        for key, make in makers.items():
            request = make()
            # Each part carries this calendar's credentials, as it would had the request
            # been built with them (BatchHttpRequest reads them from request.http).
            request.http = authorized
            batch.add(request, request_id=str(key))
        batch.execute(http=authorized)


def describe_error(exc: BaseException) -> str:
    """An error for messages and logs: status, Google's message and reasons; never a URL
    (it may carry a sync token) nor a credential."""
    if isinstance(exc, HttpError):
        reasons = ", ".join(sorted(error_reasons(exc.content)))
        text = f"{exc.resp.status} {exc.reason or ''}".strip()
        return f"{text} ({reasons})" if reasons else text
    return type(exc).__name__
