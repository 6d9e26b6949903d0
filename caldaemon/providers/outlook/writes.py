"""Writing buffers to an Outlook calendar: JSON batches of up to 20 writes
(https://learn.microsoft.com/graph/json-batching), each create carrying a transactionId
derived from its written identity so that a retried create never makes a second event.

Graph as it is (RESEARCH.md, "Microsoft Graph"):

* If-Match answers 412 when the changeKey changed, and changeKeys change without edits;
  412 is a :class:`WriteConflict` (the core compares content on its next read), unless a
  re-read shows an update whose answer was lost had already landed.
* ``DELETE`` is soft and the event keeps its transactionId: a create reusing it with
  another body answers 400 ``ErrorDuplicateTransactionId``, sometimes naming the event in
  ``@event.existingEventId``. The event holding the transactionId is adopted (its Remote
  is the answer) if it is alive: the one named, else the one the calendar's events show
  with our marker and that transactionId (an earlier create whose answer was lost).
  Otherwise it was deleted: the answer is :class:`RemoteGone` and the core writes the
  buffer's next generation under a new transactionId.
* Every block is busy and private (``sensitivity: private``); a hold on a day off is an
  all-day event whose midnights are named in the clinician's Windows zone, since writes
  refuse most IANA names (:func:`~caldaemon.providers.outlook.mapping.block_times`).
* Once a batch fails for good on an outage (:class:`TransientError` after its retries),
  the later batches are not sent: each would wait out the same outage.
* A calendar the account may only view (``canEdit`` false) refuses every write with 403
  ``ErrorAccessDenied`` (RogerSelwyn/MS365-Calendar #53): the calendar is paused
  (:class:`CalendarPaused`) until a person grants edit rights or names another
  buffers_to, and the later writes are not sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from caldaemon.errors import (
    CalendarError,
    CalendarPaused,
    Error,
    RemoteGone,
    TransientError,
    WriteConflict,
)
from caldaemon.model import Create, Delete, Remote, Update, Write, WriteResult
from caldaemon.providers.base import BatchProvider, ProviderContext
from caldaemon.providers.outlook import mapping
from caldaemon.providers.outlook.http import (
    MAX_BATCH,
    BatchReply,
    GraphClient,
    error_code,
    error_text,
    json_of,
    retryable_status,
)
from caldaemon.providers.outlook.sync import Marker, key_of

if TYPE_CHECKING:
    from caldaemon.providers.outlook.settings import OutlookCalendar

# What stops the later batches: an outage (after its retries) or a calendar that refuses
# writes until a person acts.
_STOPPING = (TransientError, CalendarPaused)


class GraphWrites(BatchProvider):
    """The writing half of :class:`~caldaemon.providers.outlook.provider.OutlookProvider`."""

    client: GraphClient
    endpoint: str
    mailbox_path: str
    config: OutlookCalendar

    def __init__(self, config: OutlookCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        # Markers known to this process, by key_of(id): those of the last listing's events
        # and of the events created or adopted since. Reading our own buffers back needs
        # no look-up, and memory stays bounded by the window.
        self._markers: dict[str, Marker] = {}

    def _calendar(self) -> str:
        raise NotImplementedError

    def _remember(self, event_id: str, marker: Marker) -> None:
        self._markers[key_of(event_id)] = marker

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """All writes in JSON batches; one result per write, in order."""
        results: dict[int, WriteResult] = {}
        sendable: list[int] = []
        for index, write in enumerate(writes):
            if not isinstance(write, Create) and not write.remote.etag:
                # Without an etag we cannot prove the event is as we left it.
                results[index] = WriteResult(write, error=WriteConflict(self.id, write.remote.id))
            else:
                sendable.append(index)
        outage: Error | None = None
        adopt: dict[int, str | None] = {}
        for offset in range(0, len(sendable), MAX_BATCH):
            chunk = sendable[offset : offset + MAX_BATCH]
            if outage is None:
                outage = self._send(writes, chunk, results, adopt)
            else:
                results.update({i: WriteResult(writes[i], error=outage) for i in chunk})
        if adopt:
            self._adopt(writes, adopt, results, outage)
        return [results[i] for i in range(len(writes))]

    def _send(
        self,
        writes: Sequence[Write],
        chunk: list[int],
        results: dict[int, WriteResult],
        adopt: dict[int, str | None],
    ) -> Error | None:
        """One batch; returns the outage that stops the later batches, if one did."""
        try:
            replies = self.client.batch([self._item(writes[i]) for i in chunk])
        except CalendarError as exc:
            results.update({i: WriteResult(writes[i], error=exc) for i in chunk})
            return exc if isinstance(exc, _STOPPING) else None
        outage: Error | None = None
        for index, reply in zip(chunk, replies, strict=True):
            if isinstance(writes[index], Create) and _duplicate_transaction(reply):
                adopt[index] = _named_event(reply)
                continue
            results[index] = self._result(writes[index], reply)
            if isinstance(results[index].error, _STOPPING):
                outage = outage or results[index].error
        return outage

    def _item(self, write: Write) -> dict[str, Any]:
        headers = prefer()
        if isinstance(write, Create):
            return {
                "method": "POST",
                "url": f"{self.mailbox_path}{self._calendar()}/events",
                "headers": headers,
                "body": mapping.create_body(write.buffer, write.identity, self.context.tz),
            }
        url = f"{self.mailbox_path}/events/{quote(write.remote.id, safe='')}"
        # If-Match: Graph refuses with 412 when the event changed since we wrote it.
        headers["If-Match"] = str(write.remote.etag)
        if isinstance(write, Update):
            return {
                "method": "PATCH",
                "url": url,
                "headers": headers,
                "body": mapping.buffer_fields(write.buffer, self.context.tz),
            }
        return {"method": "DELETE", "url": url, "headers": headers}

    def _result(self, write: Write, reply: BatchReply) -> WriteResult:
        body = reply.body if isinstance(reply.body, Mapping) else {}
        if 200 <= reply.status < 300:
            if isinstance(write, Delete):
                return WriteResult(write)
            remote = Remote(str(body.get("id")), mapping.etag_of(body))
            if isinstance(write, Create):
                self._remember(remote.id, (write.identity, mapping.transaction_id(write.identity)))
            return WriteResult(write, remote=remote)
        if not isinstance(write, Create) and reply.status == 404:
            return WriteResult(write, error=RemoteGone(self.id, write.remote.id))
        if isinstance(write, Update) and reply.status == 412 and reply.resent:
            return self._settle(write)
        if isinstance(write, Update) and reply.status == 412:
            # A user's edit, or Graph's own changeKey drift or spurious 412: the core
            # tells them apart by content on its next read.
            return WriteResult(write, error=WriteConflict(self.id, write.remote.id))
        if isinstance(write, Delete) and reply.status == 412:
            return WriteResult(write, error=WriteConflict(self.id, write.remote.id))
        if reply.status == 403:
            return WriteResult(write, error=self._refused(reply.status, body))
        kind = TransientError if retryable_status(reply.status) else CalendarError
        error: Error = kind(
            self.id, self.describe(), "Microsoft Graph answered " + error_text(reply.status, body)
        )
        return WriteResult(write, error=error)

    def _refused(self, status: int, body: Mapping[str, Any]) -> CalendarPaused:
        return CalendarPaused(
            self.id,
            self.describe(),
            f"this account may not change the calendar (Microsoft Graph answered "
            f"{error_text(status, body)}); buffers_to needs a calendar it can edit: ask its "
            "owner to share it with edit rights, or name another calendar in buffers_to",
        )

    def _settle(self, write: Update) -> WriteResult:
        """412 on an update sent more than once: the user changed the event, Graph changed
        its changeKey on its own, or an earlier attempt of this very update landed and
        only its answer was lost. Only the last is a success; the core tells the other
        two apart by content."""
        url = f"{self.endpoint}{self.mailbox_path}/events/{quote(write.remote.id, safe='')}"
        try:
            response = self.client.send(
                "GET", url, params={"$expand": mapping.OWNER_EXPAND}, headers=prefer()
            )
        except CalendarError as exc:
            return WriteResult(write, error=exc)
        body = json_of(response)
        if response.status_code == 404:
            return WriteResult(write, error=RemoteGone(self.id, write.remote.id))
        if (
            response.status_code == 200
            and isinstance(body, Mapping)
            and mapping.matches_buffer(body, write.buffer, write.identity, self.context.tz)
        ):
            return WriteResult(write, remote=Remote(write.remote.id, mapping.etag_of(body)))
        return WriteResult(write, error=WriteConflict(self.id, write.remote.id))

    def _adopt(
        self,
        writes: Sequence[Write],
        adopt: dict[int, str | None],
        results: dict[int, WriteResult],
        outage: Error | None,
    ) -> None:
        """Creates refused as duplicates: the event holding their transactionId is the
        answer if it is alive and holds what the create writes (else it is an earlier life
        of the buffer, and the answer is "gone"). Read to be sure (a soft-deleted event keeps its
        transactionId too, and must not be taken for a live buffer): the named event, or
        the calendar's events carrying our marker with this identity."""
        indexes = sorted(adopt)
        if outage is not None:
            results.update({i: WriteResult(writes[i], error=outage) for i in indexes})
            return
        creates = {i: w for i in indexes if isinstance(w := writes[i], Create)}
        try:
            replies = self.client.batch([self._holder_query(creates[i], adopt[i]) for i in indexes])
        except CalendarError as exc:
            results.update({i: WriteResult(writes[i], error=exc) for i in indexes})
            return
        for index, reply in zip(indexes, replies, strict=True):
            write = creates[index]
            body = reply.body if isinstance(reply.body, Mapping) else {}
            if reply.status not in (200, 404):
                kind = TransientError if retryable_status(reply.status) else CalendarError
                reason = "Microsoft Graph answered " + error_text(reply.status, body)
                results[index] = WriteResult(write, error=kind(self.id, self.describe(), reason))
                continue
            transaction = mapping.transaction_id(write.identity)
            named = adopt[index]
            found = (
                ([body] if named else list(body.get("value") or ())) if reply.status == 200 else []
            )
            holder = next((e for e in found if _holds(e, transaction, named)), None)
            if holder is None:
                results[index] = WriteResult(write, error=RemoteGone(self.id, named or transaction))
                continue
            if _earlier_life(holder, write, self.context):
                # Ours, not what this create writes, and over: an earlier life of the
                # buffer (its record pruned). The core writes the next generation.
                results[index] = WriteResult(write, error=RemoteGone(self.id, transaction))
                continue
            remote = Remote(str(holder.get("id")), mapping.etag_of(holder))
            self._remember(
                remote.id, (mapping.owner_property(holder) or write.identity, transaction)
            )
            results[index] = WriteResult(write, remote=remote)

    def _holder_query(self, write: Create, named: str | None) -> dict[str, Any]:
        """The GET that finds the event holding a create's transactionId."""
        expand = quote(mapping.OWNER_EXPAND, safe="$(),=")
        if named:
            url = f"{self.mailbox_path}/events/{quote(named, safe='')}?$expand={expand}"
        else:
            # Filtering on a single-value extended property is documented for events
            # (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
            wanted = (
                f"singleValueExtendedProperties/Any(ep: ep/id eq '{mapping.OWNER_PROPERTY_ID}' "
                f"and ep/value eq '{write.identity}')"
            )
            url = (
                f"{self.mailbox_path}{self._calendar()}/events?$filter={quote(wanted, safe='')}"
                "&$select=id,transactionId,start,end,isAllDay,subject,categories"
                f"&$expand={expand}"
            )
        return {"method": "GET", "url": url, "headers": prefer()}


def _earlier_life(holder: Mapping[str, Any], write: Create, context: ProviderContext) -> bool:
    if mapping.matches_buffer(holder, write.buffer, write.identity, context.tz):
        return False
    try:
        finish = mapping.parse_datetime(holder.get("end"))
    except mapping.MappingError:
        return False
    return finish <= context.now()


def _duplicate_transaction(reply: BatchReply) -> bool:
    return reply.status == 400 and error_code(reply.body) == "ErrorDuplicateTransactionId"


def _holds(event: Any, transaction: str, named: str | None) -> bool:
    """Whether ``event`` holds ``transaction``; Graph shows a transactionId only when it
    was set, so the event Graph itself named may come without one."""
    if not isinstance(event, Mapping):
        return False
    found = event.get("transactionId")
    return found == transaction or (named is not None and found is None)


def _named_event(reply: BatchReply) -> str | None:
    """The event a create refused as a duplicate names, if it names one."""
    error = reply.body.get("error") if isinstance(reply.body, Mapping) else None
    existing = error.get("@event.existingEventId") if isinstance(error, Mapping) else None
    return str(existing) if isinstance(existing, str) and existing else None


def prefer(page_size: int | None = None) -> dict[str, str]:
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
