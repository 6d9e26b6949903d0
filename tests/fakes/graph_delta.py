"""calendarView delta in the fake Microsoft Graph.

Reference: https://learn.microsoft.com/graph/delta-query-events
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .graph_common import GraphError, GraphRequest, Routed, encode
from .graph_events import Paging
from .graph_model import Calendar, Mailbox, View
from .graph_read import (
    preference_headers,
    render,
    request_view,
    requested_page_size,
    window,
)
from .graph_time import window_bound

__all__ = ["DeltaRound", "DeltaTokens"]


@dataclass
class DeltaRound:
    owner_oid: str
    calendar_id: str
    start: datetime
    end: datetime
    restart_query: dict[str, str]
    expand: frozenset[str] | None
    snapshot: dict[str, str]  # instance id -> change key the next round diffs against
    pending: list[tuple[str, bool]]  # (instance id, removed) still to page out
    is_delta_link: bool
    generation: int


@dataclass
class DeltaTokens:
    """The rounds behind every state token issued; ``expire()`` outdates all deltaLinks."""

    rounds: dict[str, DeltaRound] = field(default_factory=dict)
    generation: int = 0

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
        page_size = requested_page_size(request, paging.default_size)
        view = request_view(request, allow_select=False)
        token = request.query.get("$deltatoken") or request.query.get("$skiptoken")
        if token is None:
            start, start_raw = window_bound(request.query, "startDateTime")
            end, end_raw = window_bound(request.query, "endDateTime")
            restart = {"startDateTime": start_raw, "endDateTime": end_raw}
            if request.query.get("$expand"):
                restart["$expand"] = request.query["$expand"]
            current = window(mailbox, calendar, start, end)
            round_ = DeltaRound(
                owner_oid=mailbox.user.oid,
                calendar_id=calendar.id,
                start=start,
                end=end,
                restart_query=restart,
                expand=view.expand,
                snapshot={i: inst.change_key for i, inst in current.items()},
                pending=[(i, False) for i in current],
                is_delta_link=False,
                generation=self.generation,
            )
        else:
            previous = self.rounds.get(token)
            if (
                previous is None
                or previous.owner_oid != mailbox.user.oid
                or (previous.calendar_id != calendar.id)
            ):
                raise _sync_state_not_found(request, None, paging, expired_status)
            if previous.is_delta_link and previous.generation != self.generation:
                raise _sync_state_not_found(request, previous, paging, expired_status)
            current = window(mailbox, calendar, previous.start, previous.end)
            round_ = replace(previous, pending=list(previous.pending))
            if previous.is_delta_link:
                changed = [
                    (i, False)
                    for i, inst in current.items()
                    if previous.snapshot.get(i) != inst.change_key
                ]
                removed = [(i, True) for i in previous.snapshot if i not in current]
                round_.pending = changed + removed
                round_.snapshot = {i: inst.change_key for i, inst in current.items()}
            view = View(view.zone_name, view.zone, round_.expand)
        page, round_.pending = round_.pending[:page_size], round_.pending[page_size:]
        values: list[dict[str, Any]] = []
        for instance_id, was_removed in page:
            instance = current.get(instance_id)
            if was_removed or instance is None:
                values.append(
                    {
                        "@odata.type": "#microsoft.graph.event",
                        "id": instance_id,
                        "@removed": {"reason": "deleted"},
                    }
                )
            else:
                values.append(render(instance, view))
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
        return 200, payload, preference_headers(request, page_size)


def _sync_state_not_found(
    request: GraphRequest, round_: DeltaRound | None, paging: Paging, expired_status: int
) -> GraphError:
    # An expired or unknown state token means "start over with a full sync".
    # Outlook answers 410 Gone, sometimes with a Location to restart from;
    # directory resources answer 400 (see delta_expired_status).
    message = (
        "The sync state generation is not found. The delta token is expired and data "
        "must be synchronized again."
    )
    headers: tuple[tuple[str, str], ...] = ()
    if round_ is not None and expired_status == 410:
        restart = f"{paging.base_url}{request.path}?{encode(round_.restart_query)}"
        headers = (("Location", restart),)
    return GraphError(expired_status, "syncStateNotFound", message, headers)
