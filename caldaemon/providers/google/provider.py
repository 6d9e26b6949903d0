"""``provider: google``: Google Calendar API v3 through google-api-python-client.

Reading follows "Synchronize resources efficiently"
(https://developers.google.com/calendar/api/guides/sync): a full listing of the window
with ``singleEvents=true``, every page followed, and the last page's ``nextSyncToken``
kept; later listings send that token with the same parameters minus the ones the API
forbids with it. Writing sends caldaemon's buffers in batches ("Sending batch requests",
https://developers.google.com/calendar/api/guides/batch) with deterministic ids and
``If-Match``. Errors follow "Handle API errors"
(https://developers.google.com/calendar/api/guides/errors): rate limits, 5xx and broken
connections are retried by caldaemon's own retry layer; other 4xx are not, and
``quotaExceeded`` pauses the calendar. Connections, batches, retries and errors are in
:mod:`caldaemon.providers.google.http`, paging in :mod:`caldaemon.providers.google.listing`.

The service as it is (RESEARCH.md, "Google Calendar API v3"): a deleted event keeps its
id for good (insert answers 409) and cannot be updated back to life (403), so a buffer
that comes back after caldaemon deleted it is written under its next generation's id.

Every block is written busy and private; a hold on a day off is an all-day event dated
where the clinician is (:func:`~caldaemon.providers.google.mapping.buffer_body`). Out of
office (``eventType: outOfOffice``) is read into ``Event.out_of_office``; Google keeps
whole days of it as timed spans from midnight to midnight, never as dates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import google_auth_httplib2
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from caldaemon.errors import (
    CalendarError,
    CalendarPaused,
    Error,
    RemoteGone,
    TransientError,
    WriteConflict,
)
from caldaemon.model import Create, Delete, Remote, Update, Window, Write, WriteResult
from caldaemon.providers.base import BatchProvider, Listing, ProviderContext, WriteAccess
from caldaemon.providers.google import auth as google_auth
from caldaemon.providers.google.http import (
    GOOGLE_BATCH_URI,
    RATE_LIMITED,
    TRANSPORT_ERRORS,
    Answer,
    CalendarClient,
    SyncTokenExpired,
    describe_error,
)
from caldaemon.providers.google.listing import (
    MAX_PAGES,
    PAGE_SIZE,
    Collected,
    PagingRunaway,
    read_pages,
)
from caldaemon.providers.google.mapping import (
    buffer_body,
    ended,
    event_id,
    owner_of,
    read_token,
    rfc3339,
    same_buffer,
    write_token,
)

if TYPE_CHECKING:
    from caldaemon.providers.google.settings import GoogleCalendar
    from caldaemon.retry import RetryPolicy

# Re-exported so that imports of these from this module keep working.
__all__ = [
    "GOOGLE_BATCH_URI",
    "MAX_PAGES",
    "PAGE_SIZE",
    "RATE_LIMITED",
    "TRANSPORT_ERRORS",
    "GoogleProvider",
]
# What ends a write round: the calendar is refusing (paused) or unreachable; each write
# still to send would meet the same answer (or wait out the same outage) again.
_STOPPING = (CalendarPaused, TransientError)
# Access roles that may write events (events reference, accessRole).
_WRITERS = frozenset({"owner", "writer"})


class GoogleProvider(BatchProvider):
    batch = True
    batch_size = 50  # "You're limited to 50 calls in a single batch request."
    config: GoogleCalendar

    def __init__(self, config: GoogleCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        # Write access (and the calendar.events scope) only where buffers go.
        self.read_only = context.buffers_to != config.id
        self.log = context.log.getChild("google")
        self.auth = google_auth.Authorization(
            config,
            clinician_id=context.clinician,
            state_dir=context.state_dir,
            buffers_to=context.buffers_to,
            source=self.describe(),
            log=self.log,
        )
        self.client = CalendarClient(
            config,
            calendar_id=self.id,
            describe=self.describe,
            auth=self.auth,
            log=self.log,
            context=lambda: self.context,
        )

    def describe(self) -> str:
        if self.config.subject:
            who = f"service account acting as {self.config.subject}"
        else:
            path = google_auth.token_path(
                self.config, self.context.state_dir, self.context.clinician
            )
            who = f"token …/{path.name}"
        return f"Google Calendar '{self.config.calendar}' ({who})"

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy of every request (the client holds it)."""
        return self.client.policy

    @policy.setter
    def policy(self, policy: RetryPolicy) -> None:
        self.client.policy = policy

    # -- reading -------------------------------------------------------------------------

    def changes(self, window: Window, token: str | None) -> Listing:
        sync_token = read_token(token, self.config.calendar)
        if sync_token is not None:
            try:
                return self._listing(window, syncToken=sync_token)
            except SyncTokenExpired:
                # "Sometimes sync tokens are invalidated by the server ... the client
                # should clear its storage and perform a full sync".
                self.log.info(
                    "%s: the sync token expired; reading the window again", self.describe()
                )
            except PagingRunaway as exc:
                # The listing since the token ran away (a series exploded past the page
                # cap, or the server looped): the window alone is bounded, and gives a
                # new token that does not lead back here.
                self.log.warning("%s; reading the window again", exc)
        return self._listing(window, timeMin=rfc3339(window.start), timeMax=rfc3339(window.end))

    def _params(self) -> dict[str, Any]:
        """The parameters of every listing. Incremental syncs send exactly these plus
        ``syncToken``: events.list forbids timeMin/timeMax with a sync token (and
        showDeleted=false too: deletions are always in an incremental result), so the
        window goes only into full listings."""
        return {"calendarId": self.config.calendar, "singleEvents": True, "maxResults": PAGE_SIZE}

    def _listing(self, window: Window, **extra: Any) -> Listing:
        """One listing, every page read and reduced to the window as it arrives."""
        incremental = "syncToken" in extra
        collected = Collected(
            window,
            incremental,
            self.id,
            self.context.tz,
            self.context.self_addresses,
            self.describe,
        )

        def fetch(page_token: str | None) -> dict[str, Any]:
            params = self._params() | extra | ({"pageToken": page_token} if page_token else {})
            page: dict[str, Any] = self.client.retrying(functools.partial(self._list_page, params))
            return page

        sync = read_pages(fetch, collected.take, calendar=self.id, source=self.describe())
        return Listing(
            events=tuple(collected.events),
            removed=tuple(collected.removed),
            token=write_token(self.config.calendar, sync),
            full=not incremental,
            warnings=collected.all_warnings(),
        )

    # -- checking (caldaemon doctor) ------------------------------------------------------

    def write_access(self) -> WriteAccess:
        """The ``accessRole`` events.list reports for the calendar ("The user's access role
        for this calendar": none, freeBusyReader, reader, writer or owner; events
        reference). calendarList.get says the same but needs a calendar-list scope, which
        caldaemon never asks for (least privilege: :mod:`.auth`)."""

        def ask() -> dict[str, Any]:
            request = self.client.events().list(
                calendarId=self.config.calendar, maxResults=1, fields="accessRole"
            )
            page: dict[str, Any] = self.client.execute(request)
            return page

        role = str(self.client.retrying(ask).get("accessRole") or "")
        if not role:
            return WriteAccess(None, "Google did not say the access role")
        return WriteAccess(role in _WRITERS, f"accessRole {role}")

    def renew_authorization(self) -> str:
        """A new access token from Google's token endpoint, as google-auth gets one when
        the old expires: the refresh token (or the service account's signed assertion)
        is what this tries."""

        def refresh() -> None:
            authorized = self.client.http()  # this thread's pool, with our timeout
            request = google_auth_httplib2.Request(authorized.http)
            authorized.credentials.refresh(request)

        self.client.retrying(refresh)
        if self.config.subject:
            return f"Google issued a token for the service account acting as {self.config.subject}"
        return "Google issued a new access token from the stored refresh token"

    def _list_page(self, params: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = self.client.execute(self.client.events().list(**params))
        return page

    # -- writing -------------------------------------------------------------------------

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """All writes in batches of ≤ 50. An insert refused with 409 and an update or
        delete refused with 412 (or 403) are looked up (one more batch) to tell our own
        earlier write, whose reply was lost, from the user's change or deletion.

        Once the calendar is paused (``quotaExceeded``) or unreachable, the writes not
        yet sent get that error without being sent."""
        if self.read_only:
            raise CalendarError(
                self.id,
                self.describe(),
                "caldaemon writes only to the clinician's buffers_to calendar",
            )
        results: dict[int, WriteResult] = {}
        makers: dict[int, Callable[[], HttpRequest]] = {}
        for key, write in enumerate(writes):
            if not isinstance(write, Create) and write.remote.etag is None:
                results[key] = WriteResult(write, error=WriteConflict(self.id, write.remote.id))
            else:
                makers[key] = self._request_for(write)
        refusals: dict[int, HttpError] = {}
        stop: Error | None = None
        keys = list(makers)
        for offset in range(0, len(keys), self.batch_size):
            chunk = {key: makers[key] for key in keys[offset : offset + self.batch_size]}
            answers = self._send(chunk, stop)
            for key, answer in answers.items():
                if isinstance(answer, Error):
                    results[key] = WriteResult(writes[key], error=answer)
                    stop = stop or answer
                    continue
                outcome = self._outcome(writes[key], answer)
                if isinstance(outcome, WriteResult):
                    results[key] = outcome
                    if isinstance(outcome.error, _STOPPING):
                        stop = stop or outcome.error
                else:
                    refusals[key] = outcome
        # A paused calendar is read-only: looking up is still allowed. An unreachable
        # one would only wait out the outage once more.
        lookups = {key: self._lookup(_remote_id(writes[key])) for key in refusals}
        found = self._send(lookups, stop if isinstance(stop, TransientError) else None)
        for key, answer in found.items():
            write = writes[key]
            if isinstance(answer, Error):
                results[key] = WriteResult(write, error=answer)
            else:
                results[key] = self._reconcile(write, answer, refusals[key])
        return [results[key] for key in range(len(writes))]

    def _send(
        self, makers: dict[int, Callable[[], HttpRequest]], stop: Error | None
    ) -> dict[int, Answer | Error]:
        """Each request's answer, or the error that stands for it: ``stop`` (nothing is
        sent), or the pause or outage that failed the whole batch."""
        if stop is not None or not makers:
            return dict.fromkeys(makers, stop) if stop is not None else {}
        try:
            return dict(self.client.send(makers, self.batch_size))
        except _STOPPING as exc:
            return dict.fromkeys(makers, exc)

    def _outcome(self, write: Write, answer: Answer) -> WriteResult | HttpError:
        """The result of one write's answer, or the refusal to look up."""
        error = answer.error
        if error is None:
            resource = answer.resource or {}
            remote = (
                None if isinstance(write, Delete) else Remote(resource["id"], resource.get("etag"))
            )
            return WriteResult(write, remote=remote)
        status = error.resp.status
        if isinstance(write, Create):
            # 409: the id exists: our own earlier insert, or a deleted event's id.
            return error if status == 409 else WriteResult(write, error=self._part_error(error))
        if status in (404, 410):
            return WriteResult(write, error=RemoteGone(self.id, _remote_id(write)))
        if status == 412:
            return error  # changed since we saw it: by the user, or by our own lost reply
        failure = self._part_error(error)
        if status == 403 and not isinstance(failure, _STOPPING):
            # Updating a deleted (cancelled) event answers 403 (google-api-ruby-client
            # #1811): a look-up tells that from a calendar that refuses us.
            return error
        return WriteResult(write, error=failure)

    def _request_for(self, write: Write) -> Callable[[], HttpRequest]:
        """Makes the request for ``write`` anew for each attempt. Updates and deletes
        carry If-Match: they apply only to the version we last saw (else 412)."""
        calendar = self.config.calendar

        def request() -> HttpRequest:
            events = self.client.events()
            if isinstance(write, Create):
                return events.insert(
                    calendarId=calendar,
                    sendUpdates="none",
                    body=buffer_body(write.buffer, write.identity, self.context.tz),
                )
            if isinstance(write, Update):
                built = events.update(
                    calendarId=calendar,
                    eventId=write.remote.id,
                    sendUpdates="none",
                    body=buffer_body(write.buffer, write.identity, self.context.tz),
                )
            else:
                built = events.delete(
                    calendarId=calendar, eventId=write.remote.id, sendUpdates="none"
                )
            built.headers["If-Match"] = write.remote.etag
            return built

        return request

    def _lookup(self, remote_id: str) -> Callable[[], HttpRequest]:
        return lambda: self.client.events().get(calendarId=self.config.calendar, eventId=remote_id)

    def _reconcile(self, write: Write, answer: Answer, refusal: HttpError) -> WriteResult:
        """A refused write, after looking its event up."""
        remote_id = _remote_id(write)
        if answer.error is not None:
            if answer.error.resp.status in (404, 410):
                return WriteResult(write, error=RemoteGone(self.id, remote_id))
            return WriteResult(write, error=self._part_error(answer.error))
        resource = answer.resource or {}
        if resource.get("status") == "cancelled":
            # Deleted (by the user, or by our own earlier delete): never brought back. For
            # a create the core moves on to the buffer's next generation (a new id).
            return WriteResult(write, error=RemoteGone(self.id, remote_id))
        if refusal.resp.status == 403:
            return WriteResult(write, error=self._part_error(refusal))  # alive: refused
        remote = Remote(remote_id, resource.get("etag"))
        if isinstance(write, Create) and owner_of(resource) == write.identity:
            now = self.context.now()
            if not same_buffer(resource, write.buffer, write.identity, self.context.tz) and (
                ended(resource, now)
            ):
                # Ours, not what this create writes, and over: an earlier life of the
                # buffer (its record pruned). The core writes the next generation.
                return WriteResult(write, error=RemoteGone(self.id, remote_id))
            return WriteResult(write, remote=remote)  # an earlier create of ours landed
        if isinstance(write, Update) and same_buffer(
            resource, write.buffer, write.identity, self.context.tz
        ):
            return WriteResult(write, remote=remote)  # our update landed, its reply was lost
        return WriteResult(write, error=WriteConflict(self.id, remote_id))

    def _part_error(self, error: HttpError) -> Error:
        failure = self.client.failure(error)
        if isinstance(failure, _STOPPING):
            return failure
        return CalendarError(
            self.id, self.describe(), f"Google Calendar refused the write: {describe_error(error)}"
        )

    def close(self) -> None:
        self.client.close()
        self.auth.forget()


def _remote_id(write: Write) -> str:
    return event_id(write.identity) if isinstance(write, Create) else write.remote.id
