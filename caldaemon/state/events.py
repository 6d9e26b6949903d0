"""``events``: the cache of normalized events. It keeps ids, times and the inputs of
classification (known tags, colour, a title-match bit) with the kind and level they gave,
never a title, description, location or attendee (DESIGN.md §7).

The past stays for ``daemon.keep_history`` (``caldaemon hours``, DESIGN.md §11): a full
listing replaces only what its window covers, and of that not the past events a calendar
stopped showing before its first event (feeds that forget the past); see
:meth:`Events.replace_listed`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from caldaemon.model import Event, Window
from caldaemon.state.convert import iso, parse_iso
from caldaemon.state.dialect import Connection, Row, upsert


@dataclass(frozen=True)
class Cached:
    """An event as the cache keeps it: the tags that mean something in the config, and
    whether its title matched ``sessions.title_matches`` (the title itself is dropped;
    of a marked event, the digest of its content is kept instead)."""

    event: Event
    tags: frozenset[str] = frozenset()
    title_matches: bool | None = None
    title_rules: tuple[int, ...] | None = None
    # How the event was classified when it was stored, without marks (they are applied
    # when it is read): what history keeps once the title that decided it is gone.
    kind: str | None = None
    level: str | None = None


@dataclass(frozen=True)
class Recorded:
    """A cached event with the kind and level it was stored with (None: stored before
    they were kept)."""

    event: Event
    kind: str | None
    level: str | None


_COLUMNS = (
    "clinician",
    "calendar",
    "id",
    "start",
    "end",
    "all_day",
    "tags",
    "color",
    "cancelled",
    "busy",
    "declined",
    "owner",
    "series",
    "etag",
    "title_matches",
    "marked",
    "digest",
    "title_rules",
    "out_of_office",
    "kind",
    "level",
)
_STORE = upsert("events", _COLUMNS, ("clinician", "calendar", "id"))


def _event(row: Row) -> Event:
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
        out_of_office=bool(row["out_of_office"]),
    )


class Events:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def overlapping(self, clinician: str, window: Window) -> list[Event]:
        """Every cached event of a clinician that overlaps ``window``."""
        rows = self.db.execute(
            'SELECT * FROM events WHERE clinician=? AND start<? AND "end">=?',
            (clinician, iso(window.end), iso(window.start)),
        )
        return [_event(row) for row in rows]

    def recorded(self, clinician: str, window: Window) -> list[Recorded]:
        """Every cached event of a clinician that overlaps ``window``, with its kind."""
        rows = self.db.execute(
            'SELECT * FROM events WHERE clinician=? AND start<? AND "end">?',
            (clinician, iso(window.end), iso(window.start)),
        )
        return [Recorded(_event(row), row["kind"], row["level"]) for row in rows]

    def ids(self, clinician: str, calendar: str, window: Window) -> set[str]:
        """The ids of one calendar's cached events in ``window``."""
        rows = self.db.execute(
            'SELECT id FROM events WHERE clinician=? AND calendar=? AND start<? AND "end">=?',
            (clinician, calendar, iso(window.end), iso(window.start)),
        )
        return {row[0] for row in rows}

    def store(self, clinician: str, items: Iterable[Cached]) -> None:
        """Add or replace events (by clinician, calendar and id)."""
        self.db.executemany(
            _STORE,
            (_row(clinician, item) for item in items),
        )

    def replace_listed(
        self, clinician: str, calendar: str, window: Window, past_kept_until: datetime
    ) -> None:
        """Before a full listing of ``window`` is stored: forget what it covers. Not the
        past before it (a listing that starts later never erases history), nor the past
        events of users that ended by ``past_kept_until`` (the sync gives the earlier of
        now and the listing's first event: a feed that shows only what is to come dropped
        them, it did not delete them). caldaemon's own blocks go as before."""
        self.db.execute(
            'DELETE FROM events WHERE clinician=? AND calendar=? AND "end">? '
            'AND NOT (owner IS NULL AND marked=0 AND "end"<=?)',
            (clinician, calendar, iso(window.start), iso(past_kept_until)),
        )

    def remove(self, clinician: str, calendar: str, ids: Iterable[str]) -> None:
        self.db.executemany(
            "DELETE FROM events WHERE clinician=? AND calendar=? AND id=?",
            ((clinician, calendar, event_id) for event_id in ids),
        )

    def drop_ended_before(self, clinician: str, calendar: str, moment: datetime) -> None:
        """Forget a calendar's events that ended before ``moment``."""
        self.db.execute(
            'DELETE FROM events WHERE clinician=? AND calendar=? AND "end"<?',
            (clinician, calendar, iso(moment)),
        )

    def prune_ended(self, clinician: str, before: datetime) -> None:
        """Forget a clinician's events that ended before ``before``, on every calendar
        (one since removed from the config too): history is bounded."""
        self.db.execute(
            'DELETE FROM events WHERE clinician=? AND "end"<?', (clinician, iso(before))
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
        "out_of_office": int(event.out_of_office),
        "kind": item.kind,
        "level": item.level,
    }
