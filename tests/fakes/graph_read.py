"""Reading events in the fake Microsoft Graph: instances of series, views and rendering.

Events are stored the way they were written and rendered per request in the
zone asked for with ``Prefer: outlook.timezone`` (UTC otherwise, as Graph does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from .graph_common import NOT_FOUND_MESSAGE, GraphError, GraphRequest
from .graph_model import (
    Calendar,
    Instance,
    Mailbox,
    StoredEvent,
    View,
    derived_change_key,
    occurrence_id,
    parse_occurrence_id,
)
from .graph_time import dtz_to_aware, format_instant, format_local, resolve_zone, series_dates

__all__ = [
    "expand_event",
    "instance_at",
    "instance_of",
    "occurrence",
    "parse_list_filter",
    "preference_headers",
    "render",
    "request_view",
    "requested_page_size",
    "resolve",
    "select",
    "window",
]

# -- instances ------------------------------------------------------------------------


def instance_of(stored: StoredEvent) -> Instance:
    kind: Literal["singleInstance", "seriesMaster"] = (
        "seriesMaster" if stored.is_series_master else "singleInstance"
    )
    return Instance(
        id=stored.id,
        kind=kind,
        event=stored,
        props=stored.props,
        extended=stored.extended,
        start=dtz_to_aware(stored.props["start"], "start"),
        end=dtz_to_aware(stored.props["end"], "end"),
        change_key=stored.change_key,
        modified=stored.modified,
    )


def occurrence(master: StoredEvent, original: date) -> Instance:
    start = dtz_to_aware(master.props["start"], "start")
    duration = dtz_to_aware(master.props["end"], "end") - start
    zone = start.tzinfo or UTC
    occurrence_start = datetime.combine(original, start.time(), zone)
    occurrence_end = (occurrence_start + duration).astimezone(zone)
    props: dict[str, Any] = {
        **master.props,
        "start": {
            "dateTime": format_local(occurrence_start),
            "timeZone": master.props["start"]["timeZone"],
        },
        "end": {
            "dateTime": format_local(occurrence_end),
            "timeZone": master.props["end"]["timeZone"],
        },
    }
    kind: Literal["occurrence", "exception"] = "occurrence"
    extended = master.extended
    change_key = derived_change_key(master.change_key, original.isoformat())
    modified = master.modified
    state = master.exceptions.get(original)
    if state is not None:
        kind = "exception"
        props.update(state.overrides)
        extended = {**master.extended, **state.extended}
        change_key = derived_change_key(change_key, state.change_key)
        modified = max(modified, state.modified)
    props["recurrence"] = None
    return Instance(
        id=occurrence_id(master.id, original),
        kind=kind,
        event=master,
        props=props,
        extended=extended,
        start=dtz_to_aware(props["start"], "start"),
        end=dtz_to_aware(props["end"], "end"),
        change_key=change_key,
        modified=modified,
        original=original,
    )


def instance_at(master: StoredEvent, original: date) -> Instance:
    if original in master.cancelled or original not in set(
        series_dates(master.props["recurrence"], original)
    ):
        raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
    return occurrence(master, original)


def resolve(mailbox: Mailbox, event_id: str) -> Instance:
    parsed = parse_occurrence_id(event_id)
    if parsed is not None:
        master = mailbox.events.get(parsed[0])
        if master is None or not master.is_series_master:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
        return instance_at(master, parsed[1])
    stored = mailbox.events.get(event_id)
    if stored is None:
        raise GraphError(404, "ErrorItemNotFound", NOT_FOUND_MESSAGE)
    return instance_of(stored)


def expand_event(stored: StoredEvent, start: datetime, end: datetime) -> Iterator[Instance]:
    """Instances of one stored event overlapping [start, end)."""
    if not stored.is_series_master:
        instance = instance_of(stored)
        if _overlaps(instance, start, end):
            yield instance
        return
    for original in series_dates(stored.props["recurrence"], (end + timedelta(days=1)).date()):
        if original in stored.cancelled:
            continue
        instance = occurrence(stored, original)
        if _overlaps(instance, start, end):
            yield instance


def window(
    mailbox: Mailbox, calendar: Calendar, start: datetime, end: datetime
) -> dict[str, Instance]:
    instances = [
        instance
        for stored in mailbox.events.values()
        if stored.calendar_id == calendar.id
        for instance in expand_event(stored, start, end)
    ]
    instances.sort(key=lambda i: (i.start, i.id))
    return {i.id: i for i in instances}


def _overlaps(instance: Instance, start: datetime, end: datetime) -> bool:
    if instance.start == instance.end:
        return start <= instance.start < end
    return instance.start < end and instance.end > start


# -- views --------------------------------------------------------------------------


def request_view(request: GraphRequest, *, allow_select: bool = True) -> View:
    zone_name = request.preferences().get("outlook.timezone", "UTC")
    zone = resolve_zone(zone_name)
    if zone is None:
        zone_name, zone = "UTC", UTC
    expand = _parse_expand(request.query.get("$expand"))
    select = None
    if allow_select and request.query.get("$select"):
        select = frozenset(s.strip() for s in request.query["$select"].split(",") if s.strip())
    return View(zone_name, zone, expand, select)


def preference_headers(request: GraphRequest, page_size: int | None) -> tuple[tuple[str, str], ...]:
    prefs = request.preferences()
    applied = []
    if "outlook.timezone" in prefs and resolve_zone(prefs["outlook.timezone"]) is not None:
        applied.append(f'outlook.timezone="{prefs["outlook.timezone"]}"')
    if page_size is not None and "odata.maxpagesize" in prefs:
        applied.append(f"odata.maxpagesize={page_size}")
    return (("Preference-Applied", ", ".join(applied)),) if applied else ()


def requested_page_size(request: GraphRequest, default: int) -> int:
    """odata.maxpagesize, else $top, else ``default``."""
    raw = request.preferences().get("odata.maxpagesize") or request.query.get("$top")
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid page size '{raw}'.") from exc
    if size < 1:
        raise GraphError(400, "BadRequest", f"Invalid page size '{raw}'.")
    return size


def _parse_expand(raw: str | None) -> frozenset[str] | None:
    """``singleValueExtendedProperties($filter=id eq '...' [or id eq '...'])``."""
    if not raw:
        return None
    match = re.fullmatch(
        r"\s*singleValueExtendedProperties\s*(?:\(\s*\$filter\s*=\s*(.*)\))?\s*", raw, re.IGNORECASE
    )
    if match is None:
        raise GraphError(
            400,
            "BadRequest",
            f"Parsing OData Select and Expand failed: unsupported $expand '{raw}'.",
        )
    if match.group(1) is None:
        return frozenset()
    ids = []
    for clause in re.split(r"\s+or\s+", match.group(1).strip(), flags=re.IGNORECASE):
        found = re.fullmatch(r"\(?\s*id\s+eq\s+'(.*)'\s*\)?", clause.strip(), re.IGNORECASE)
        if found is None:
            raise GraphError(400, "BadRequest", f"Unsupported $expand filter '{clause}'.")
        ids.append(found.group(1).replace("''", "'").lower())
    return frozenset(ids)


def parse_list_filter(raw: str | None) -> Callable[[Instance], bool]:
    """``singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')``."""
    if not raw:
        return lambda _instance: True
    match = re.fullmatch(
        r"\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'(.*?)'"
        r"(?:\s+and\s+\1/value\s+eq\s+'(.*?)')?\s*\)\s*",
        raw,
        re.IGNORECASE,
    )
    if match is None:
        raise GraphError(400, "BadRequest", f"This fake does not support $filter '{raw}'.")
    prop_id, value = match.group(2).lower(), match.group(3)

    def predicate(instance: Instance) -> bool:
        found = instance.extended.get(prop_id)
        return found is not None and (value is None or found[1] == value)

    return predicate


def select(rendered: dict[str, Any], view: View) -> dict[str, Any]:
    if not view.select:
        return rendered
    keep = {"@odata.etag", "id", "singleValueExtendedProperties"} | view.select
    return {k: v for k, v in rendered.items() if k in keep}


# -- rendering ----------------------------------------------------------------------


def render(instance: Instance, view: View) -> dict[str, Any]:
    props = instance.props
    stored = instance.event
    out: dict[str, Any] = {
        "@odata.etag": f'W/"{instance.change_key}"',
        "id": instance.id,
        "createdDateTime": format_instant(stored.created),
        "lastModifiedDateTime": format_instant(instance.modified),
        "changeKey": instance.change_key,
        "categories": list(props["categories"] or []),
    }
    if props.get("transactionId") and instance.kind in ("singleInstance", "seriesMaster"):
        # "only returned in a response payload if an app has set it"
        out["transactionId"] = props["transactionId"]
    body = props["body"] or {}
    out.update(
        {
            "originalStartTimeZone": props["originalStartTimeZone"] or props["start"]["timeZone"],
            "originalEndTimeZone": props["originalEndTimeZone"] or props["end"]["timeZone"],
            "iCalUId": props["iCalUId"],
            "reminderMinutesBeforeStart": props["reminderMinutesBeforeStart"],
            "isReminderOn": props["isReminderOn"],
            "hasAttachments": False,
            "subject": props["subject"],
            "bodyPreview": re.sub(r"<[^>]+>", "", str(body.get("content", ""))).strip()[:255],
            "importance": props["importance"],
            "sensitivity": props["sensitivity"],
            "isAllDay": props["isAllDay"],
            "isCancelled": props["isCancelled"],
            "isOrganizer": props["isOrganizer"],
            "responseRequested": props["responseRequested"],
            "seriesMasterId": stored.id if instance.kind in ("occurrence", "exception") else None,
            "showAs": props["showAs"],
            "type": instance.kind,
            "webLink": f"https://outlook.office365.com/owa/?itemid={quote(instance.id)}&path=/calendar/item",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": props["isOnlineMeeting"],
            "onlineMeetingProvider": props["onlineMeetingProvider"],
            "allowNewTimeProposals": props["allowNewTimeProposals"],
            "isDraft": False,
            "hideAttendees": props["hideAttendees"],
            "responseStatus": dict(props["responseStatus"] or {}),
            "body": dict(body),
            "start": _render_time(instance, instance.start, view),
            "end": _render_time(instance, instance.end, view),
            "location": props["location"],
            "locations": list(props["locations"] or []),
            "recurrence": props["recurrence"] if instance.kind == "seriesMaster" else None,
            "attendees": list(props["attendees"] or []),
            "organizer": props["organizer"],
            "onlineMeeting": None,
        }
    )
    if view.expand is not None:
        matched = [
            {"id": prop_id, "value": value}
            for key, (prop_id, value) in instance.extended.items()
            if not view.expand or key in view.expand
        ]
        if matched:
            out["singleValueExtendedProperties"] = matched
    return out


def _render_time(instance: Instance, moment: datetime, view: View) -> dict[str, str]:
    if instance.props["isAllDay"]:
        # All-day events are floating dates: keep the wall-clock midnight.
        return {"dateTime": format_local(moment), "timeZone": view.zone_name}
    return {"dateTime": format_local(moment.astimezone(view.zone)), "timeZone": view.zone_name}
