"""``provider: google``: Google Calendar API v3 through google-api-python-client.

Reading follows "Synchronize resources efficiently"
(https://developers.google.com/calendar/api/guides/sync): a full listing of the window
with ``singleEvents=true``, every page followed, and the last page's ``nextSyncToken``
kept; later listings send that token with the same parameters minus the ones the API
forbids with it. Writing sends caldaemon's buffers in batches ("Sending batch requests",
https://developers.google.com/calendar/api/guides/batch) with deterministic ids and
``If-Match``. Errors follow "Handle API errors"
(https://developers.google.com/calendar/api/guides/errors): rate limits, 5xx and broken
connections are retried by caldaemon's own retry layer; other 4xx are not. Connections,
batches, retries and errors are in :mod:`caldaemon.providers.google_http`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from caldaemon.errors import CalendarError, Error, RemoteGone, TransientError, WriteConflict
from caldaemon.model import Create, Delete, Event, Remote, Update, Window, Write, WriteResult
from caldaemon.providers.base import BatchProvider, Listing, ProviderContext
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
from caldaemon.providers.google.mapping import (
    buffer_body,
    event_from_resource,
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
__all__ = ["GOOGLE_BATCH_URI", "PAGE_SIZE", "RATE_LIMITED", "TRANSPORT_ERRORS", "GoogleProvider"]
# events.list: "maxResults ... The page size can never be larger than 2500 events".
PAGE_SIZE = 2500


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
                return self._incremental(sync_token)
            except SyncTokenExpired:
                # "Sometimes sync tokens are invalidated by the server ... the client
                # should clear its storage and perform a full sync" (full=True does).
                self.log.info(
                    "%s: the sync token expired; reading the window again", self.describe()
                )
        return self._full(window)

    def _params(self) -> dict[str, Any]:
        """The parameters of every listing. Incremental syncs send exactly these plus
        ``syncToken``: events.list forbids timeMin/timeMax with a sync token (and
        showDeleted=false too: deletions are always in an incremental result), so the
        window goes only into full listings."""
        return {"calendarId": self.config.calendar, "singleEvents": True, "maxResults": PAGE_SIZE}

    def _pages(self, **extra: Any) -> tuple[list[dict[str, Any]], str | None]:
        """Every page; only the last one carries ``nextSyncToken``."""
        items: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            params = self._params() | extra | ({"pageToken": page_token} if page_token else {})
            page: dict[str, Any] = self.client.retrying(functools.partial(self._list_page, params))
            items.extend(page.get("items") or ())
            page_token = page.get("nextPageToken")
            if not page_token:
                return items, page.get("nextSyncToken")

    def _list_page(self, params: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = self.client.execute(self.client.events().list(**params))
        return page

    def _full(self, window: Window) -> Listing:
        items, sync = self._pages(timeMin=rfc3339(window.start), timeMax=rfc3339(window.end))
        events, warnings = self._events([i for i in items if i.get("status") != "cancelled"])
        return Listing(
            events=events,
            removed=(),
            token=write_token(self.config.calendar, sync),
            full=True,
            warnings=warnings,
        )

    def _incremental(self, sync_token: str) -> Listing:
        items, sync = self._pages(syncToken=sync_token)
        # Deleted events come back as stubs: status "cancelled", an id and little else.
        removed = tuple(str(i["id"]) for i in items if i.get("status") == "cancelled")
        events, warnings = self._events([i for i in items if i.get("status") != "cancelled"])
        return Listing(
            events=events,
            removed=removed,
            full=False,
            warnings=warnings,
            token=write_token(self.config.calendar, sync),
        )

    def _events(self, items: list[dict[str, Any]]) -> tuple[tuple[Event, ...], tuple[str, ...]]:
        events, warnings = [], []
        for item in items:
            try:
                events.append(
                    event_from_resource(
                        item,
                        calendar=self.id,
                        tz=self.context.tz,
                        self_addresses=self.context.self_addresses,
                    )
                )
            except (KeyError, TypeError, ValueError):
                warnings.append(
                    f"{self.describe()}: skipped event {item.get('id')}, whose times cannot be read"
                )
        return tuple(events), tuple(warnings)

    # -- writing -------------------------------------------------------------------------

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """All writes in batches of ≤ 50. An insert refused with 409 and an update or
        delete refused with 412 are looked up (one more batch) to tell our own earlier
        write, whose reply was lost, from the user's change."""
        if self.read_only:
            raise CalendarError(
                self.id,
                self.describe(),
                "caldaemon writes only to the clinician's buffers_to calendar",
            )
        makers: dict[int, Callable[[], HttpRequest]] = {}
        results: dict[int, WriteResult] = {}
        for key, write in enumerate(writes):
            if not isinstance(write, Create) and write.remote.etag is None:
                results[key] = WriteResult(write, error=WriteConflict(self.id, write.remote.id))
            else:
                makers[key] = self._request_for(write)
        lookups: dict[int, Callable[[], HttpRequest]] = {}
        for key, answer in self.client.send(makers, self.batch_size).items():
            write, error = writes[key], answer.error
            status = error.resp.status if error is not None else None
            if error is None:
                resource = answer.resource or {}
                results[key] = WriteResult(
                    write,
                    remote=None
                    if isinstance(write, Delete)
                    else Remote(resource["id"], resource.get("etag")),
                )
            elif status == (409 if isinstance(write, Create) else 412):
                lookups[key] = self._lookup(_remote_id(write))
            elif status in (404, 410) and not isinstance(write, Create):
                results[key] = WriteResult(write, error=RemoteGone(self.id, _remote_id(write)))
            else:
                results[key] = WriteResult(write, error=self._part_error(error))
        revivals: dict[int, Callable[[], HttpRequest]] = {}
        for key, answer in self.client.send(lookups, self.batch_size).items():
            write = writes[key]
            resource = answer.resource or {}
            if (
                isinstance(write, Create)
                and write.revive
                and answer.error is None
                and resource.get("status") == "cancelled"
            ):
                revivals[key] = self._revival(write, resource)
            else:
                results[key] = self._reconcile(write, answer)
        for key, answer in self.client.send(revivals, self.batch_size).items():
            write, error = writes[key], answer.error
            if error is None:
                resource = answer.resource or {}
                results[key] = WriteResult(
                    write, remote=Remote(resource["id"], resource.get("etag"))
                )
            elif error.resp.status == 412:
                results[key] = WriteResult(write, error=WriteConflict(self.id, _remote_id(write)))
            else:
                results[key] = WriteResult(write, error=self._part_error(error))
        return [results[key] for key in range(len(writes))]

    def _revival(self, write: Create, cancelled: dict[str, Any]) -> Callable[[], HttpRequest]:
        """Our own deleted buffer still holds its id (Google keeps deleted events as
        cancelled, and insert answers 409): bring it back with an update that sets
        status confirmed, only if it is still the version we saw."""
        body = {**buffer_body(write.buffer, write.identity), "status": "confirmed"}

        def request() -> HttpRequest:
            built = self.client.events().update(
                calendarId=self.config.calendar,
                eventId=cancelled["id"],
                sendUpdates="none",
                body=body,
            )
            built.headers["If-Match"] = cancelled.get("etag")
            return built

        return request

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
                    body=buffer_body(write.buffer, write.identity),
                )
            if isinstance(write, Update):
                built = events.update(
                    calendarId=calendar,
                    eventId=write.remote.id,
                    sendUpdates="none",
                    body=buffer_body(write.buffer, write.identity),
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

    def _reconcile(self, write: Write, answer: Answer) -> WriteResult:
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
        failure = self.client.failure(error)
        if isinstance(failure, TransientError):
            return failure
        return CalendarError(
            self.id, self.describe(), f"Google Calendar refused the write: {describe_error(error)}"
        )

    def close(self) -> None:
        self.client.close()
        self.auth.forget()


def _remote_id(write: Write) -> str:
    return event_id(write.identity) if isinstance(write, Create) else write.remote.id
