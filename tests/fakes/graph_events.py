"""Events in the fake Microsoft Graph: create, update, delete, list, instances, calendarView.

PATCH/DELETE of an occurrence id turns it into an exception or cancels it.
Reference: https://learn.microsoft.com/graph/api/resources/event
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .graph_common import (
    CONFLICT_MESSAGE,
    NOT_FOUND_MESSAGE,
    GraphError,
    GraphRequest,
    JsonObject,
    Routed,
    encode,
    query_key,
)
from .graph_model import (
    SEEDABLE,
    WRITABLE,
    Calendar,
    Instance,
    Mailbox,
    Occurrence,
    StoredEvent,
    View,
    apply_props,
    default_props,
    etag_matches,
    new_change_key,
    new_id,
    note_change,
    note_reads,
    parse_occurrence_id,
    validate_event,
)
from .graph_read import (
    expand_event,
    instance_at,
    instance_of,
    parse_list_filter,
    preference_headers,
    render,
    request_view,
    requested_page_size,
    resolve,
    select,
    window,
)
from .graph_time import window_bound
from .graph_world import canonical, every

__all__ = [
    "DUPLICATE_TRANSACTION_MESSAGE",
    "Paging",
    "build_event",
    "calendar_view",
    "check_can_edit",
    "create_event",
    "delete_instance",
    "list_events",
    "series_instances",
    "update_event",
]


@dataclass(frozen=True)
class Paging:
    """Where collection links point, and the page size when the client asks for none."""

    base_url: str  # "https://localhost:PORT/v1.0"
    default_size: int


# What Graph answers a transactionId already used by another create (as reported by
# clients; RESEARCH.md, "Microsoft Graph").
DUPLICATE_TRANSACTION_MESSAGE = (
    "Your request can't be completed. The TransactionId specified in the request has "
    "already been used to create a different event."
)


# -- changes --------------------------------------------------------------------------


def check_can_edit(mailbox: Mailbox, calendar: Calendar | None, tail: list[str]) -> None:
    """A write (POST, PATCH, DELETE) to a calendar the user may only view (``canEdit``
    false: shared with them to read) answers 403 ErrorAccessDenied "Access is denied.
    Check credentials and try again.", as Graph does for creates and updates without
    write access (RogerSelwyn/MS365-Calendar #53; msgraph-sdk-java #830); ``canEdit`` is
    "true if the user can write to the calendar" (calendar resource). The target is the
    calendar in the path, else the event's, else the default calendar."""
    if calendar is None and len(tail) >= 2:
        parsed = parse_occurrence_id(tail[1])
        stored = mailbox.events.get(parsed[0] if parsed else tail[1])
        calendar = mailbox.calendars.get(stored.calendar_id) if stored else None
    if not (calendar or mailbox.default_calendar).can_edit:
        raise GraphError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )


def create_event(mailbox: Mailbox, calendar: Calendar, request: GraphRequest) -> Routed:
    body = request.json_body()
    applied = preference_headers(request, None)
    transaction_id = body.get("transactionId")
    if transaction_id:
        existing = _with_transaction(mailbox, str(transaction_id))
        if existing is not None:
            return (*_repeated_create(mailbox, existing, body, request), applied)
    stored = build_event(mailbox, calendar.id, body, seeding=False)
    stored.create_body = canonical(body)
    mailbox.events[stored.id] = stored
    note_change(mailbox, instance_of(stored))
    return 201, render(instance_of(stored), request_view(request)), applied


def _with_transaction(mailbox: Mailbox, transaction_id: str) -> StoredEvent | None:
    """The event, live or soft-deleted, that a transactionId created: DELETE keeps it."""
    for existing in (*mailbox.events.values(), *mailbox.deleted.values()):
        if existing.props.get("transactionId") == transaction_id:
            return existing
    return None


def _repeated_create(
    mailbox: Mailbox, existing: StoredEvent, body: Mapping[str, Any], request: GraphRequest
) -> tuple[int, Any]:
    """A transactionId used before (RESEARCH.md, "Microsoft Graph"): the same body answers
    the event the first POST made, even one deleted since (DELETE is soft); another body
    is refused with 400 ErrorDuplicateTransactionId, sometimes naming the event."""
    if existing.create_body == canonical(body):
        return 201, render(instance_of(existing), request_view(request))
    mailbox.duplicate_answers += 1
    named = every(mailbox.rules.existing_id_every, mailbox.duplicate_answers + 1)
    extra = {"@event.existingEventId": existing.id} if named else None
    raise GraphError(400, "ErrorDuplicateTransactionId", DUPLICATE_TRANSACTION_MESSAGE, extra=extra)


def build_event(
    mailbox: Mailbox, calendar_id: str, body: Mapping[str, Any], *, seeding: bool
) -> StoredEvent:
    now = datetime.now(UTC)
    props = default_props(mailbox.user)
    extended: dict[str, tuple[str, str]] = {}
    apply_props(props, extended, body, seeding=seeding, creating=True)
    validate_event(props, is_exception=False)
    return StoredEvent(
        id=new_id(),
        calendar_id=calendar_id,
        props=props,
        extended=extended,
        created=now,
        modified=now,
        change_key=new_change_key(),
    )


def update_event(
    mailbox: Mailbox,
    event_id: str,
    body: Mapping[str, Any],
    if_match: str | None,
    *,
    seeding: bool = False,
) -> Instance:
    instance = resolve(mailbox, event_id)
    check_if_match(mailbox, if_match, instance.change_key)
    stored = instance.event
    if "transactionId" in body and body["transactionId"] != stored.props.get("transactionId"):
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "transactionId cannot be changed after the event is created.",
        )
    now = datetime.now(UTC)
    if instance.original is not None:
        if body.get("recurrence"):
            raise GraphError(
                400, "ErrorInvalidRequest", "An occurrence cannot have its own recurrence."
            )
        original = instance.original
        state = stored.exceptions.get(original) or Occurrence({}, {}, "", now)
        merged = dict(instance.props)
        extended = dict(instance.extended)
        apply_props(merged, extended, body, seeding=seeding, creating=False)
        validate_event(merged, is_exception=True)
        patched = {
            k
            for k in body
            if k in WRITABLE - {"singleValueExtendedProperties", "transactionId"}
            or (seeding and k in SEEDABLE)
        }
        state.overrides = {k: merged[k] for k in set(state.overrides) | patched}
        state.extended = {k: v for k, v in extended.items() if stored.extended.get(k) != v}
        state.change_key = new_change_key()
        state.modified = now
        stored.exceptions[original] = state
        changed = instance_at(stored, original)
        note_change(mailbox, changed)
        return changed
    props = dict(stored.props)
    extended = dict(stored.extended)
    apply_props(props, extended, body, seeding=seeding, creating=False)
    validate_event(props, is_exception=False)
    if bool(props.get("recurrence")) != bool(stored.props.get("recurrence")):
        # Turning a single event into a series (or back) re-creates the instances.
        stored.exceptions.clear()
        stored.cancelled.clear()
    stored.props, stored.extended = props, extended
    stored.change_key, stored.modified = new_change_key(), now
    note_change(mailbox, instance_of(stored))
    return instance_of(stored)


def check_if_match(mailbox: Mailbox, if_match: str | None, change_key: str) -> None:
    """If-Match: 412 when stale, and now and then although it matched (a spurious 412
    ErrorIrresolvableConflict, reported in analogdotnow/Analog PR #475)."""
    if if_match is None:
        return
    if not etag_matches(if_match, change_key):
        raise GraphError(412, "ErrorIrresolvableConflict", CONFLICT_MESSAGE)
    mailbox.conditional_writes += 1
    if every(mailbox.rules.spurious_412_every, mailbox.conditional_writes):
        raise GraphError(412, "ErrorIrresolvableConflict", CONFLICT_MESSAGE)


def delete_instance(mailbox: Mailbox, event_id: str, if_match: str | None) -> None:
    instance = resolve(mailbox, event_id)
    check_if_match(mailbox, if_match, instance.change_key)
    note_change(mailbox, instance, deleted=True)
    if instance.original is not None:
        instance.event.exceptions.pop(instance.original, None)
        instance.event.cancelled.add(instance.original)
        instance.event.modified = datetime.now(UTC)
        return
    # A soft delete: gone from every view, its transactionId still taken.
    mailbox.deleted[instance.event.id] = mailbox.events.pop(instance.event.id)


# -- listing ------------------------------------------------------------------------


def list_events(
    mailbox: Mailbox, calendar: Calendar, request: GraphRequest, paging: Paging
) -> JsonObject:
    view = request_view(request)
    predicate = parse_list_filter(request.query.get("$filter"))
    stored = sorted(
        (e for e in mailbox.events.values() if e.calendar_id == calendar.id),
        key=lambda e: e.created,
    )
    instances = [instance_of(e) for e in stored]
    instances = [i for i in instances if predicate(i)]
    return _plain_page(mailbox, request, view, instances, paging)


def series_instances(
    mailbox: Mailbox, event_id: str, request: GraphRequest, paging: Paging
) -> JsonObject:
    stored = mailbox.events.get(event_id)
    if stored is None:
        raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
    start, _ = window_bound(request.query, "startDateTime")
    end, _ = window_bound(request.query, "endDateTime")
    instances = list(expand_event(stored, start, end)) if stored.is_series_master else []
    return _plain_page(mailbox, request, request_view(request), instances, paging)


def calendar_view(
    mailbox: Mailbox, calendar: Calendar, request: GraphRequest, paging: Paging
) -> Routed:
    start, _ = window_bound(request.query, "startDateTime")
    end, _ = window_bound(request.query, "endDateTime")
    instances = list(window(mailbox, calendar, start, end).values())
    payload = _plain_page(mailbox, request, request_view(request), instances, paging)
    return (
        200,
        payload,
        preference_headers(request, requested_page_size(request, paging.default_size)),
    )


def _plain_page(
    mailbox: Mailbox,
    request: GraphRequest,
    view: View,
    instances: list[Instance],
    paging: Paging,
) -> JsonObject:
    """Stateless paging with $skip, as Graph does for non-delta collections."""
    size = requested_page_size(request, paging.default_size)
    try:
        skip = int(request.query.get("$skip", "0"))
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Invalid $skip.") from exc
    page = instances[skip : skip + size]
    payload: dict[str, Any] = {
        "@odata.context": f"{paging.base_url}/$metadata#Collection(event)",
        "value": [select(render(i, view), view) for i in page],
    }
    note_reads(mailbox, page)
    if skip + size < len(instances):
        query = {query_key(k): v for k, v in request.query.items() if k != "$skip"}
        query["$skip"] = str(skip + size)
        payload["@odata.nextLink"] = f"{paging.base_url}{request.path}?{encode(query)}"
    return payload
