"""``provider: outlook``: a Microsoft 365 / Outlook calendar through Microsoft Graph.

Reading is a calendarView delta round (https://learn.microsoft.com/graph/delta-query-events):
the first listing pages through the window, later ones fetch only what changed since the
stored ``@odata.deltaLink``, so an unchanged calendar costs one request. Writes go in JSON
batches of up to 20 (outlook_http), each create carrying a transactionId derived from
the buffer's identity so that a retried create never makes a second event.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from caldaemon.errors import CalendarError, Error, RemoteGone, TransientError, WriteConflict
from caldaemon.model import Create, Delete, Event, Remote, Update, Window, Write, WriteResult
from caldaemon.providers.base import BatchProvider, Listing, ProviderContext, token_fields
from caldaemon.providers.outlook import mapping
from caldaemon.providers.outlook.auth import TokenSource, describe, graph_endpoint_of
from caldaemon.providers.outlook.http import (
    MAX_BATCH,
    BatchReply,
    GraphClient,
    GraphSession,
    error_code,
    error_text,
    json_of,
    retryable_status,
)

if TYPE_CHECKING:
    import requests

    from caldaemon.providers.outlook.settings import OutlookCalendar

# Delta answers for a state token Graph no longer has: start over with a full listing.
_RESYNC_CODES = {"syncstatenotfound", "resyncrequired", "syncstateinvalid"}


class _Resync(Exception):
    """The delta link expired (410 Gone, or syncStateNotFound / resyncRequired)."""


class OutlookProvider(BatchProvider):
    batch = True
    batch_size = MAX_BATCH
    #: Events per delta page (``Prefer: odata.maxpagesize``).
    page_size = 200
    config: OutlookCalendar

    def __init__(self, config: OutlookCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        self.endpoint = graph_endpoint_of(config)
        self.session = GraphSession(config.ca_file, config.timeout.total_seconds())
        self.tokens = TokenSource(config, context.clinician, context.state_dir, self.session)
        self.client = GraphClient(
            endpoint=self.endpoint,
            calendar=config.id,
            where=self.describe(),
            session=self.session,
            token=lambda force: self.tokens.token(force),
            mailbox=self.tokens.mailbox,
            sleep=context.sleep,
            clock=context.clock,
        )
        user = config.user
        self.mailbox_path = "/me" if user == "me" else f"/users/{quote(user, safe='@')}"
        # "/calendar" (the primary) or "/calendars/{id}" once the configured one is found.
        self._calendar_path: str | None = None if config.calendar else "/calendar"

    def describe(self) -> str:
        return describe(self.config)

    def close(self) -> None:
        self.session.close()

    # -- the calendar ----------------------------------------------------------------------

    def _source(self) -> str:
        """What a stored token was made for; a changed config makes it worthless."""
        return f"{self.endpoint}{self.mailbox_path}|{self.config.calendar or ''}"

    def _calendar(self) -> str:
        if self._calendar_path is None:
            self._calendar_path = f"/calendars/{quote(self._resolve(), safe='')}"
        return self._calendar_path

    def _resolve(self) -> str:
        """The id of the configured calendar, given by id or by display name."""
        wanted = str(self.config.calendar)
        url: str | None = f"{self.endpoint}{self.mailbox_path}/calendars"
        params: dict[str, str] | None = {"$select": "id,name"}
        names: list[str] = []
        while url:
            body = self._ok(self.client.send("GET", url, params=params, headers=_prefer()))
            for calendar in body.get("value") or ():
                name = str(calendar.get("name", ""))
                if calendar.get("id") == wanted or name.casefold() == wanted.casefold():
                    return str(calendar["id"])
                names.append(name)
            url, params = body.get("@odata.nextLink"), None
        raise CalendarError(
            self.id,
            self.describe(),
            f"no calendar named '{wanted}' in this mailbox (it has: {', '.join(names) or 'none'})",
        )

    def check(self) -> str:
        """The calendar's display name (``caldaemon auth outlook`` shows it)."""
        url = f"{self.endpoint}{self.mailbox_path}{self._calendar()}"
        return str(self._ok(self.client.send("GET", url, headers=_prefer())).get("name", ""))

    def _ok(self, response: requests.Response) -> dict[str, Any]:
        body = json_of(response)
        if 200 <= response.status_code < 300 and isinstance(body, dict):
            return body
        reason = "Microsoft Graph answered " + error_text(response.status_code, body)
        if response.status_code == 403 and self.config.user != "me":
            reason += " (is this mailbox in the app's application access policy?)"
        raise CalendarError(self.id, self.describe(), reason)

    # -- reading ---------------------------------------------------------------------------

    def changes(self, window: Window, token: str | None) -> Listing:
        state = token_fields(token)
        if state.get("source") == self._source() and isinstance(state.get("delta"), str):
            if self._calendar_path is None and isinstance(state.get("calendar"), str):
                self._calendar_path = state["calendar"]
            try:
                return self._round(state["delta"], None, full=False)
            except _Resync:
                self.context.log.info(
                    "%s: the delta link expired; listing again in full", self.describe()
                )
        url = f"{self.endpoint}{self.mailbox_path}{self._calendar()}/calendarView/delta"
        params = {
            "startDateTime": _utc(window.start),
            "endDateTime": _utc(window.end),
            "$expand": mapping.OWNER_EXPAND,
        }
        try:
            return self._round(url, params, full=True)
        except _Resync:
            raise TransientError(
                self.id,
                self.describe(),
                "Microsoft Graph lost the state of a new listing; trying again next cycle",
            ) from None

    def _round(self, url: str, params: dict[str, str] | None, *, full: bool) -> Listing:
        """Follow @odata.nextLink to the @odata.deltaLink; the whole link is the token."""
        events: dict[str, Event] = {}
        removed: dict[str, None] = {}
        lookups: list[str] = []
        warnings: list[str] = []
        while True:
            response = self.client.send("GET", url, params=params, headers=_prefer(self.page_size))
            body = json_of(response)
            if response.status_code == 410 or error_code(body).lower() in _RESYNC_CODES:
                raise _Resync
            body = self._ok(response)
            for item in body.get("value") or ():
                event_id = str(item.get("id", ""))
                if "@removed" in item:
                    events.pop(event_id, None)
                    removed[event_id] = None
                    continue
                removed.pop(event_id, None)
                try:
                    events[event_id] = mapping.event_from_graph(item, self.id, self.context.tz)
                except mapping.MappingError as exc:
                    warnings.append(f"{self.describe()}: an event was skipped: {exc}")
                    continue
                if mapping.needs_owner_lookup(item):
                    lookups.append(event_id)
            if body.get("@odata.nextLink"):
                url, params = str(body["@odata.nextLink"]), None
                continue
            delta = body.get("@odata.deltaLink")
            if not isinstance(delta, str):
                raise TransientError(
                    self.id, self.describe(), "Microsoft Graph ended a listing without a delta link"
                )
            break
        self._find_owners(events, [i for i in lookups if i in events])
        token = json.dumps(
            {"source": self._source(), "calendar": self._calendar_path, "delta": delta}
        )
        return Listing(
            events=tuple(events.values()),
            removed=() if full else tuple(removed),
            token=token,
            full=full,
            warnings=tuple(warnings),
        )

    def _find_owners(self, events: dict[str, Event], ids: list[str]) -> None:
        """Events with our category whose extended properties did not come with the
        listing (a server that ignored $expand on delta): read the property itself."""
        if not ids:
            return
        query = f"$select=id,categories&$expand={quote(mapping.OWNER_EXPAND, safe='$(),=')}"
        replies = self.client.batch(
            [
                {"method": "GET", "url": f"{self.mailbox_path}/events/{quote(i, safe='')}?{query}"}
                for i in ids
            ]
        )
        for event_id, reply in zip(ids, replies, strict=True):
            body = reply.body if reply.status == 200 and isinstance(reply.body, Mapping) else {}
            owner = mapping.owner_property(body) if mapping.has_owner_category(body) else None
            events[event_id] = dataclasses.replace(events[event_id], owner=owner)

    # -- writing ---------------------------------------------------------------------------

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """All writes in JSON batches; one result per write, in order."""
        results: list[WriteResult | None] = [None] * len(writes)
        items: list[dict[str, Any]] = []
        sent: list[int] = []
        for index, write in enumerate(writes):
            if not isinstance(write, Create) and not write.remote.etag:
                # Without an etag we cannot prove the event is as we left it.
                results[index] = WriteResult(write, error=WriteConflict(self.id, write.remote.id))
                continue
            items.append(self._item(write))
            sent.append(index)
        for index, reply in zip(sent, self.client.batch(items) if items else [], strict=True):
            results[index] = self._result(writes[index], reply)
        return [r for r in results if r is not None]

    def _item(self, write: Write) -> dict[str, Any]:
        headers = _prefer()
        if isinstance(write, Create):
            return {
                "method": "POST",
                "url": f"{self.mailbox_path}{self._calendar()}/events",
                "headers": headers,
                "body": mapping.create_body(write.buffer, write.identity),
            }
        url = f"{self.mailbox_path}/events/{quote(write.remote.id, safe='')}"
        # If-Match: Graph refuses with 412 when the event changed since we wrote it.
        headers["If-Match"] = str(write.remote.etag)
        if isinstance(write, Update):
            return {
                "method": "PATCH",
                "url": url,
                "headers": headers,
                "body": mapping.buffer_fields(write.buffer),
            }
        return {"method": "DELETE", "url": url, "headers": headers}

    def _result(self, write: Write, reply: BatchReply) -> WriteResult:
        body = reply.body if isinstance(reply.body, Mapping) else {}
        if 200 <= reply.status < 300:
            if isinstance(write, Delete):
                return WriteResult(write)
            return WriteResult(write, remote=Remote(str(body.get("id")), mapping.etag_of(body)))
        if not isinstance(write, Create) and reply.status == 404:
            return WriteResult(write, error=RemoteGone(self.id, write.remote.id))
        if isinstance(write, Update) and reply.status == 412:
            return self._settle(write)
        if isinstance(write, Delete) and reply.status == 412:
            return WriteResult(write, error=WriteConflict(self.id, write.remote.id))
        kind = TransientError if retryable_status(reply.status) else CalendarError
        error: Error = kind(
            self.id, self.describe(), "Microsoft Graph answered " + error_text(reply.status, body)
        )
        return WriteResult(write, error=error)

    def _settle(self, write: Update) -> WriteResult:
        """412 on an update: either the user changed the event (a conflict), or an earlier
        attempt of this very update landed and only its answer was lost."""
        url = f"{self.endpoint}{self.mailbox_path}/events/{quote(write.remote.id, safe='')}"
        response = self.client.send(
            "GET", url, params={"$expand": mapping.OWNER_EXPAND}, headers=_prefer()
        )
        body = json_of(response)
        if response.status_code == 404:
            return WriteResult(write, error=RemoteGone(self.id, write.remote.id))
        if (
            response.status_code == 200
            and isinstance(body, Mapping)
            and mapping.matches_buffer(body, write.buffer, write.identity)
        ):
            return WriteResult(write, remote=Remote(write.remote.id, mapping.etag_of(body)))
        return WriteResult(write, error=WriteConflict(self.id, write.remote.id))


def _prefer(page_size: int | None = None) -> dict[str, str]:
    """Times in UTC, bodies as text, immutable ids (ids that survive moves between
    folders, https://learn.microsoft.com/graph/outlook-immutable-id)."""
    preferences = [
        'outlook.timezone="UTC"',
        'outlook.body-content-type="text"',
        'IdType="ImmutableId"',
    ]
    if page_size:
        preferences.insert(0, f"odata.maxpagesize={page_size}")
    return {"Prefer": ", ".join(preferences)}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
