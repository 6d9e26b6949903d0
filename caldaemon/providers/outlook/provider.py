"""``provider: outlook``: a Microsoft 365 / Outlook calendar through Microsoft Graph.

Reading is a calendarView delta round (https://learn.microsoft.com/graph/delta-query-events):
the first listing pages through the window, later ones fetch only what changed since the
stored ``@odata.deltaLink``, so an unchanged calendar costs one request. Graph as it is
(RESEARCH.md, "Microsoft Graph") shapes the rest:

* delta refuses ``$expand``/``$select``/``$filter``, so owner markers (a single-value
  extended property) are read by separate GETs of the events carrying our category,
  batched; a marker is read once per event id and kept in the token. When that look-up
  fails the whole listing fails (:class:`TransientError`): a listing with unknown owners
  would read our buffers as the user's.
* ``@removed`` also comes for ids never listed or outside the window, and a round's order
  is not guaranteed: removals of ids never listed are dropped, and an id both listed and
  removed in one round is read again to learn which is true.
* a refused delta link (410, ``syncStateNotFound``, ``resyncRequired``) means a full
  listing; rounds have a page cap and loop detection (:mod:`.sync`); some deletions are
  never reported, so a full listing is made every ``full_listing_every`` (7 days).

Writes are in :mod:`.writes`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from caldaemon.errors import CalendarError, TransientError
from caldaemon.model import Event, Window
from caldaemon.providers.base import Listing, ProviderContext, WriteAccess
from caldaemon.providers.outlook import mapping
from caldaemon.providers.outlook.auth import TokenSource, describe, graph_endpoint_of
from caldaemon.providers.outlook.http import (
    MAX_BATCH,
    GraphClient,
    error_code,
    error_text,
    json_of,
)
from caldaemon.providers.outlook.session import shared_session
from caldaemon.providers.outlook.sync import (
    Marker,
    PagingError,
    Round,
    SyncState,
    key_of,
    read_round,
)
from caldaemon.providers.outlook.writes import GraphWrites, prefer

if TYPE_CHECKING:
    from collections.abc import Mapping

    import requests

    from caldaemon.providers.outlook.settings import OutlookCalendar

# Delta answers for a state token Graph no longer has: start over with a full listing.
_RESYNC_CODES = {"syncstatenotfound", "resyncrequired", "syncstateinvalid"}


class _Resync(Exception):
    """The delta link expired (410 Gone, or syncStateNotFound / resyncRequired)."""


class OutlookProvider(GraphWrites):
    batch = True
    batch_size = MAX_BATCH
    #: Events per delta page asked for (``Prefer: odata.maxpagesize``; Graph may ignore it).
    page_size = 200
    #: Pages one round may take before it is given up for this cycle.
    max_pages = 1000
    config: OutlookCalendar

    def __init__(self, config: OutlookCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        self.endpoint = graph_endpoint_of(config)
        self.session = shared_session(config.ca_file, config.timeout.total_seconds())
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
        """Nothing to release: the session is shared with the other calendars on the same
        CA and timeout (:func:`~caldaemon.providers.outlook.session.shared_session`), and
        goes when the last of them does."""

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
            body = self._ok(self.client.send("GET", url, params=params, headers=prefer()))
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
        return str(self._ok(self.client.send("GET", url, headers=prefer())).get("name", ""))

    def write_access(self) -> WriteAccess:
        """The calendar's ``canEdit`` ("true if the user can write to the calendar,
        false otherwise"; Graph calendar resource): false for a calendar shared with
        view-only permission."""
        url = f"{self.endpoint}{self.mailbox_path}{self._calendar()}"
        can_edit = self._ok(self.client.send("GET", url, headers=prefer())).get("canEdit")
        if not isinstance(can_edit, bool):
            return WriteAccess(None, "Microsoft Graph did not say canEdit")
        return WriteAccess(can_edit, f"canEdit {str(can_edit).lower()}")

    def renew_authorization(self) -> str:
        """A new access token now: msal refreshes from its cache (delegated) or asks with
        the app's own credentials (app-only), never a cached access token."""
        self.tokens.token(force=True)
        if self.tokens.app_only:
            return f"Microsoft issued a token to the app {self.config.client_id}"
        return "Microsoft issued a new access token from the stored sign-in"

    def _ok(self, response: requests.Response) -> dict[str, Any]:
        body = json_of(response)
        if 200 <= response.status_code < 300 and isinstance(body, dict):
            return body
        reason = "Microsoft Graph answered " + error_text(response.status_code, body)
        if response.status_code == 403 and self.config.user != "me":
            reason += " (is this mailbox in the app's application access policy?)"
        raise CalendarError(self.id, self.describe(), reason)

    def _transient(self, reason: str) -> TransientError:
        return TransientError(self.id, self.describe(), f"{reason}; trying again next cycle")

    # -- reading ---------------------------------------------------------------------------

    def changes(self, window: Window, token: str | None) -> Listing:
        state = SyncState.load(token, self._source())
        now = self.context.clock()
        if state is not None and state.calendar and self._calendar_path is None:
            self._calendar_path = state.calendar
        if state is not None and state.delta and not self._full_listing_due(state, now):
            try:
                return self._listing(window, state.delta, None, state, now)
            except _Resync:
                self.context.log.info(
                    "%s: the delta link expired; listing again in full", self.describe()
                )
            except PagingError as exc:
                # A delta link that loops would fail every cycle: start afresh instead.
                self.context.log.warning("%s: %s; listing again in full", self.describe(), exc)
        url = f"{self.endpoint}{self.mailbox_path}{self._calendar()}/calendarView/delta"
        # No $expand, $select or $filter: delta refuses them (docs "event: delta").
        params = {"startDateTime": _utc(window.start), "endDateTime": _utc(window.end)}
        # Markers never change under an id: those already read stay good for a full listing.
        markers = state.markers if state is not None else {}
        for _attempt in range(2):
            try:
                return self._listing(window, url, params, None, now, markers)
            except _Resync:
                # The round's own page links expired before it ended: start it over once.
                continue
            except PagingError as exc:
                raise self._transient(str(exc)) from None
        raise self._transient("Microsoft Graph lost the state of a new listing")

    def _full_listing_due(self, state: SyncState, now: float) -> bool:
        """Delta never reports some deletions: a full listing now and then repairs them.
        A clock that stepped back makes one due too, rather than none for a long while."""
        every = self.config.full_listing_every.total_seconds()
        return state.full_at is None or not 0 <= now - state.full_at < every

    def _listing(
        self,
        window: Window,
        url: str,
        params: dict[str, str] | None,
        previous: SyncState | None,
        now: float,
        markers: Mapping[str, Marker] | None = None,
    ) -> Listing:
        """One round, its owner look-ups, and the token that continues from it; an
        incremental one when ``previous`` is given."""
        round_ = read_round(self._page, url, params, max_pages=self.max_pages)
        full = previous is None
        known = set() if previous is None else set(previous.known)
        cache = dict(previous.markers if previous is not None else markers or {})
        events, present, gone, warnings = self._resolve_round(round_, window, known, cache)
        if full:
            known = {key_of(i) for i in present}
            removed: tuple[str, ...] = ()
        else:
            known = (known - {key_of(i) for i in gone}) | {key_of(i) for i in present}
            removed = tuple(sorted(gone))
        state = SyncState(
            source=self._source(),
            calendar=self._calendar_path,
            delta=round_.delta,
            full_at=now if full else (previous.full_at if previous is not None else now),
            known=known,
            markers={k: v for k, v in cache.items() if k in known},
        )
        # Kept in memory too: a full listing the core asks for comes without a token.
        self._markers = dict(state.markers)
        return Listing(
            events=tuple(events),
            removed=removed,
            token=state.dump(),
            full=full,
            warnings=tuple(warnings),
        )

    def _page(self, url: str, params: Mapping[str, str] | None) -> Mapping[str, Any]:
        response = self.client.send("GET", url, params=params, headers=prefer(self.page_size))
        body = json_of(response)
        if response.status_code == 410 or error_code(body).lower() in _RESYNC_CODES:
            raise _Resync
        return self._ok(response)

    def _resolve_round(
        self,
        round_: Round,
        window: Window,
        known: set[str],
        cache: dict[str, Marker],
    ) -> tuple[list[Event], set[str], set[str], list[str]]:
        """The round's events with their owners, the ids of every event it showed in the
        window (those skipped as unreadable too), the ids it removed that were listed
        before, and warnings. Reads (in batches) the markers not known yet and the events
        the round both listed and removed; ``cache`` gains the markers read."""
        for key, known_marker in self._markers.items():
            cache.setdefault(key, known_marker)
        lookups = [
            i
            for i, item in round_.entries.items()
            if mapping.has_owner_category(item) and key_of(i) not in cache
        ]
        fetched = self._fetch_events([*lookups, *sorted(round_.conflicted)])
        gone = {i for i in round_.removed if key_of(i) in known}
        present: set[str] = set()
        events: list[Event] = []
        warnings: list[str] = []
        candidates = [*round_.entries.items(), *((i, {}) for i in sorted(round_.conflicted))]
        for event_id, listed in candidates:
            item: dict[str, Any] = listed
            if event_id in fetched:
                current = fetched[event_id]
                if current is None:  # deleted since the round listed it
                    if key_of(event_id) in known:
                        gone.add(event_id)
                    continue
                if mapping.has_owner_category(current):
                    cache[key_of(event_id)] = _marker_of(current)
                if event_id in round_.conflicted:
                    item = current
            marker, transaction = cache.get(key_of(event_id), (None, None))
            try:
                event = mapping.event_from_graph(
                    item, self.id, self.context.tz, marker=marker, transaction=transaction
                )
            except mapping.MappingError as exc:
                present.add(event_id)
                warnings.append(f"{self.describe()}: an event was skipped: {exc}")
                continue
            if event_id in round_.conflicted and not window.overlaps(event.start, event.end):
                if key_of(event_id) in known:
                    gone.add(event_id)
                continue
            present.add(event_id)
            events.append(event)
        return events, present, gone, warnings

    def _fetch_events(self, ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """The events ``ids`` as they are now, with our extended property (None: gone),
        read in batches. Anything else than found or gone fails the listing: a partial
        read must not decide whose an event is."""
        if not ids:
            return {}
        query = f"$expand={quote(mapping.OWNER_EXPAND, safe='$(),=')}"
        replies = self.client.batch(
            [
                {
                    "method": "GET",
                    "url": f"{self.mailbox_path}/events/{quote(i, safe='')}?{query}",
                    "headers": prefer(),
                }
                for i in ids
            ]
        )
        found: dict[str, dict[str, Any] | None] = {}
        for event_id, reply in zip(ids, replies, strict=True):
            if reply.status == 404:
                found[event_id] = None
            elif reply.status == 200 and isinstance(reply.body, dict):
                found[event_id] = reply.body
            else:
                raise self._transient(
                    "reading who owns an event failed: Microsoft Graph answered "
                    + error_text(reply.status, reply.body)
                )
        return found


def _marker_of(resource: Mapping[str, Any]) -> Marker:
    transaction = resource.get("transactionId")
    return (
        mapping.owner_property(resource),
        str(transaction) if isinstance(transaction, str) and transaction else None,
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
