"""``events``: the cache of normalized events. It keeps ids, times and the inputs of
classification (known tags, colour, a title-match bit), never a title, description,
location or attendee (DESIGN.md §7)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from caldaemon.model import Event, Window
from caldaemon.state.convert import iso, parse_iso


@dataclass(frozen=True)
class Cached:
    """An event as the cache keeps it: the tags that mean something in the config, and
    whether its title matched ``sessions.title_matches`` (the title itself is dropped;
    of a marked event, the digest of its content is kept instead)."""

    event: Event
    tags: frozenset[str] = frozenset()
    title_matches: bool | None = None
    title_rules: tuple[int, ...] | None = None


_COLUMNS = (
    "clinician, calendar, id, start, end, all_day, tags, color, cancelled, busy, declined, "
    "owner, series, etag, title_matches, marked, digest, title_rules"
)


def _event(row: sqlite3.Row) -> Event:
    return Event(
        calendar=row["calendar"],
        id=row["id"],
        start=parse_iso(row["start"]),
        end=parse_iso(row["end"]),
        all_day=bool(row["all_day"]),
        categories=tuple(json.loads(row["tags"])),
        color=row["color"],
        cancelled=bool(row["cancelled"]),
        busy=bool(row["busy"]),
        declined=bool(row["declined"]),
        owner=row["owner"],
        series=row["series"],
        etag=row["etag"],
        title_matches=None if row["title_matches"] is None else bool(row["title_matches"]),
        marked=bool(row["marked"]),
        digest=row["digest"],
        title_rules=None if row["title_rules"] is None else tuple(json.loads(row["title_rules"])),
    )


class Events:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def overlapping(self, clinician: str, window: Window) -> list[Event]:
        """Every cached event of a clinician that overlaps ``window``."""
        rows = self.db.execute(
            "SELECT * FROM events WHERE clinician=? AND start<? AND end>=?",
            (clinician, iso(window.end), iso(window.start)),
        )
        return [_event(row) for row in rows]

    def ids(self, clinician: str, calendar: str, window: Window) -> set[str]:
        """The ids of one calendar's cached events in ``window``."""
        rows = self.db.execute(
            "SELECT id FROM events WHERE clinician=? AND calendar=? AND start<? AND end>=?",
            (clinician, calendar, iso(window.end), iso(window.start)),
        )
        return {row[0] for row in rows}

    def store(self, clinician: str, items: Iterable[Cached]) -> None:
        """Add or replace events (by clinician, calendar and id)."""
        self.db.executemany(
            f"INSERT OR REPLACE INTO events ({_COLUMNS}) VALUES "
            "(:clinician, :calendar, :id, :start, :end, :all_day, :tags, :color, :cancelled, "
            ":busy, :declined, :owner, :series, :etag, :title_matches, :marked, :digest, "
            ":title_rules)",
            (_row(clinician, item) for item in items),
        )

    def clear(self, clinician: str, calendar: str) -> None:
        """Forget a calendar's events (before a full listing is stored)."""
        self.db.execute(
            "DELETE FROM events WHERE clinician=? AND calendar=?", (clinician, calendar)
        )

    def remove(self, clinician: str, calendar: str, ids: Iterable[str]) -> None:
        self.db.executemany(
            "DELETE FROM events WHERE clinician=? AND calendar=? AND id=?",
            ((clinician, calendar, event_id) for event_id in ids),
        )

    def drop_ended_before(self, clinician: str, calendar: str, moment: datetime) -> None:
        """Forget a calendar's events that ended before ``moment``."""
        self.db.execute(
            "DELETE FROM events WHERE clinician=? AND calendar=? AND end<?",
            (clinician, calendar, iso(moment)),
        )


def _row(clinician: str, item: Cached) -> dict[str, object]:
    event = item.event
    return {
        "clinician": clinician,
        "calendar": event.calendar,
        "id": event.id,
        "start": iso(event.start),
        "end": iso(event.end),
        "all_day": int(event.all_day),
        "tags": json.dumps(sorted(item.tags)),
        "color": event.color,
        "cancelled": int(event.cancelled),
        "busy": int(event.busy),
        "declined": int(event.declined),
        "owner": event.owner,
        "series": event.series,
        "etag": event.etag,
        "title_matches": None if item.title_matches is None else int(item.title_matches),
        "marked": int(event.marked or event.owner is not None),
        "digest": event.content if event.marked or event.owner is not None else None,
        "title_rules": None if item.title_rules is None else json.dumps(list(item.title_rules)),
    }
