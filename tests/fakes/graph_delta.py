"""calendarView delta in the fake Microsoft Graph, as unkind as the real one.

Reference: https://learn.microsoft.com/graph/delta-query-events; what clients meet beyond
it is in graph_world.py and RESEARCH.md ("Microsoft Graph").
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .graph_common import GraphError, GraphRequest, Routed, encode
from .graph_events import Paging
from .graph_model import Calendar, Instance, Mailbox, View, note_reads, parse_occurrence_id
from .graph_read import preference_headers, render, request_view, requested_page_size, window
from .graph_time import window_bound
from .graph_world import every

__all__ = ["REFUSED_OPTIONS", "DeltaRound", "DeltaTokens"]

# "event: delta" (v1.0) does not support these; sent anyway, Graph answers 400 "Parsing
# OData Select and Expand failed" (msgraph-sdk-dotnet #2678) or 500 (microsoft-graph-docs
# #2270).
REFUSED_OPTIONS = ("$expand", "$select", "$filter", "$orderby", "$search")


@dataclass
class DeltaRound:
    owner_oid: str
    calendar_id: str
    start: datetime
    end: datetime
    restart_query: dict[str, str]
    snapshot: dict[str, str]  # instance id -> change key the next round diffs against
    pending: list[tuple[str, bool]]  # (instance id, removed) still to page out
    is_delta_link: bool
    generation: int
    seq: int  # the mailbox's change counter when the snapshot was taken
    rounds: int = 0  # incremental rounds since the full one that started the chain


@dataclass
class DeltaTokens:
    """The rounds behind every state token issued; ``expire()`` outdates all deltaLinks."""

    rounds: dict[str, DeltaRound] = field(default_factory=dict)
    generation: int = 0
    # Set by a test: every continuation page repeats the previous one, with the same
    # nextLink, forever (the loops reported in msgraph-sdk-dotnet #3070, #3082). Off by
    # default: a loop makes the calendar unreadable until it stops.
    looping: bool = False

    def expire(self) -> None:
        self.generation += 1

    def query(
        self,
        mailbox: Mailbox,
        calendar: Calendar,
        request: GraphRequest,
        paging: Paging,
        expired_status: int,
    ) -> Routed:
        """calendarView delta, https://learn.microsoft.com/graph/delta-query-events.

        State tokens are opaque: ``$skiptoken`` continues a round, ``$deltatoken``
        starts the next one and returns only what changed since the round that
        issued it (changed instances in full, vanished ones as ``@removed``).
        """
        token = request.query.get("$deltatoken") or request.query.get("$skiptoken")
        refused = [o for o in REFUSED_OPTIONS if o in request.query]
        if refused:
            raise GraphError(
                400,
                "BadRequest",
                f"Parsing OData Select and Expand failed: {refused[0]} is not supported on delta.",
            )
        view = _plain_view(request)
        if token is None:
            round_, current = self._first(mailbox, calendar, request)
        else:
            previous = self.rounds.get(token)
            if (
                previous is None
                or previous.owner_oid != mailbox.user.oid
                or (previous.calendar_id != calendar.id)
            ):
                raise _sync_state_not_found(request, None, paging, expired_status)
            if previous.is_delta_link and (
                previous.generation != self.generation
                or (
                    mailbox.rules.delta_rounds is not None
                    and previous.rounds >= mailbox.rules.delta_rounds
                )
            ):
                raise _sync_state_not_found(request, previous, paging, expired_status)
            if "$skiptoken" in request.query:
                _fail_mid_round(mailbox)
                if self.looping:
                    return self._repeat(previous, token, mailbox, calendar, request, paging)
            current = window(mailbox, calendar, previous.start, previous.end)
            round_ = replace(previous, pending=list(previous.pending))
            if previous.is_delta_link:
                round_.rounds += 1
                _next_round(round_, previous, mailbox, current)
        return self._page(round_, current, mailbox, request, view, paging)

    def _first(
        self, mailbox: Mailbox, calendar: Calendar, request: GraphRequest
    ) -> tuple[DeltaRound, dict[str, Instance]]:
        start, start_raw = window_bound(request.query, "startDateTime")
        end, end_raw = window_bound(request.query, "endDateTime")
        current = window(mailbox, calendar, start, end)
        round_ = DeltaRound(
            owner_oid=mailbox.user.oid,
            calendar_id=calendar.id,
            start=start,
            end=end,
            restart_query={"startDateTime": start_raw, "endDateTime": end_raw},
            snapshot={i: inst.change_key for i, inst in current.items()},
            pending=[(i, False) for i in current],
            is_delta_link=False,
            generation=self.generation,
            seq=mailbox.seq,
        )
        return round_, current

    def _page(
        self,
        round_: DeltaRound,
        current: dict[str, Instance],
        mailbox: Mailbox,
        request: GraphRequest,
        view: View,
        paging: Paging,
    ) -> Routed:
        asked = requested_page_size(request, paging.default_size)
        cap = mailbox.rules.series_page_cap
        series = any(i.original is not None for i in current.values())
        page_size = min(asked, cap) if cap is not None and series else asked
        page, round_.pending = round_.pending[:page_size], round_.pending[page_size:]
        values: list[dict[str, Any]] = []
        shown: list[Instance] = []
        for instance_id, was_removed in page:
            instance = current.get(instance_id)
            if was_removed or instance is None:
                values.append(_removed(instance_id))
            else:
                values.append(render(instance, view))
                shown.append(instance)
        note_reads(mailbox, shown)
        new_token = secrets.token_urlsafe(32)
        round_.is_delta_link = not round_.pending
        round_.generation = self.generation
        self.rounds[new_token] = round_
        payload: dict[str, Any] = {
            "@odata.context": f"{paging.base_url}/$metadata#Collection(event)",
        }
        if round_.pending:
            payload["@odata.nextLink"] = f"{paging.base_url}{request.path}?$skiptoken={new_token}"
        else:
            payload["@odata.deltaLink"] = f"{paging.base_url}{request.path}?$deltatoken={new_token}"
        payload["value"] = values
        # Preference-Applied names a page size only when it was honoured.
        honoured = page_size if page_size == asked else None
        return 200, payload, preference_headers(request, honoured)

    def _repeat(
        self,
        previous: DeltaRound,
        token: str,
        mailbox: Mailbox,
        calendar: Calendar,
        request: GraphRequest,
        paging: Paging,
    ) -> Routed:
        """A looping chain: the page before this link again, and this very link."""
        current = window(mailbox, calendar, previous.start, previous.end)
        view = _plain_view(request)
        shown = list(current)[: paging.default_size]
        payload = {
            "@odata.context": f"{paging.base_url}/$metadata#Collection(event)",
            "@odata.nextLink": f"{paging.base_url}{request.path}?$skiptoken={token}",
            "value": [render(current[i], view) for i in shown],
        }
        return 200, payload, ()


def _plain_view(request: GraphRequest) -> View:
    """Delta renders no extended properties: they cannot be expanded there."""
    view = request_view(request, allow_select=False)
    return View(view.zone_name, view.zone, None)


def _next_round(
    round_: DeltaRound, previous: DeltaRound, mailbox: Mailbox, current: dict[str, Instance]
) -> None:
    """What an incremental round pages out: changed instances, then vanished ones (less
    the deletions delta never reports, which stay in the snapshot so that no later round
    reports them either), then stale @removed entries, out of order."""
    changed = [
        (i, False) for i, inst in current.items() if previous.snapshot.get(i) != inst.change_key
    ]
    snapshot = {i: inst.change_key for i, inst in current.items()}
    removed: list[tuple[str, bool]] = []
    for instance_id, change_key in previous.snapshot.items():
        if instance_id in current:
            continue
        if _unreported(mailbox, instance_id):
            snapshot[instance_id] = change_key
        else:
            removed.append((instance_id, True))
    stale = (
        _stale_removals(previous, mailbox, {i for i, _ in removed})
        if mailbox.rules.stale_removals
        else []
    )
    round_.pending = changed + removed + stale
    round_.snapshot = snapshot
    round_.seq = mailbox.seq


def _stale_removals(
    previous: DeltaRound, mailbox: Mailbox, reported: set[str]
) -> list[tuple[str, bool]]:
    """@removed for events changed outside the window and for events deleted before any
    round saw them (docs "delta-query-overview"; microsoft-graph-docs #11728, #5301)."""
    stale: dict[str, None] = {}
    for change in mailbox.log:
        if change.seq <= previous.seq or change.event_id in reported:
            continue
        if _unreported(mailbox, change.event_id):
            continue
        outside = not (change.start < previous.end and change.end > previous.start)
        never_seen = change.deleted and change.event_id not in previous.snapshot
        if outside or never_seen:
            stale[change.event_id] = None
    return [(i, True) for i in stale]


def _unreported(mailbox: Mailbox, instance_id: str) -> bool:
    parsed = parse_occurrence_id(instance_id)
    return instance_id in mailbox.unreported or (
        parsed is not None and parsed[0] in mailbox.unreported
    )


def _fail_mid_round(mailbox: Mailbox) -> None:
    """503/504 in the middle of a round (msgraph-sdk-dotnet #3070, #3082, #1568), before
    anything is paged out: the same link works when sent again."""
    mailbox.continuations += 1
    if not every(mailbox.rules.mid_round_failure_every, mailbox.continuations):
        return
    period = mailbox.rules.mid_round_failure_every or 1
    if (mailbox.continuations // period) % 2:
        raise GraphError(
            503,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
            (("Retry-After", "1"),),
        )
    raise GraphError(504, "GatewayTimeout", "The gateway timed out.")


def _removed(instance_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": instance_id,
        "@removed": {"reason": "deleted"},
    }


def _sync_state_not_found(
    request: GraphRequest, round_: DeltaRound | None, paging: Paging, expired_status: int
) -> GraphError:
    # An expired or unknown state token means "start over with a full sync"
    # (microsoft-graph-docs #2350). Outlook answers 410 Gone, sometimes with a Location
    # to restart from; directory resources answer 400 (see delta_expired_status).
    message = (
        "The sync state generation is not found. The delta token is expired and data "
        "must be synchronized again."
    )
    headers: tuple[tuple[str, str], ...] = ()
    if round_ is not None and expired_status == 410:
        restart = f"{paging.base_url}{request.path}?{encode(round_.restart_query)}"
        headers = (("Location", restart),)
    return GraphError(expired_status, "syncStateNotFound", message, headers)
