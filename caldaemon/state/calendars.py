"""``calendars``: per calendar, the sync token and the window it covers, what the cached
classification inputs were built from (``vocabulary``), since when the cache holds its
history (``history_from``), and how the last reads went."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from caldaemon.model import Window
from caldaemon.state.convert import iso, optional_iso, parse_iso
from caldaemon.state.dialect import Connection, Row


@dataclass(frozen=True)
class CalendarState:
    clinician: str
    calendar: str
    token: str | None
    window: Window | None
    vocabulary: str | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failing_since: datetime | None
    # Why reading is paused (an authorization that a person must renew), or None.
    paused: str | None
    # Listings in a row that came back empty where events were known.
    empty_reads: int
    # Since when the cache holds every event of this calendar as a listing last showed
    # it, without a gap, up to ``last_success`` (``caldaemon hours``, DESIGN.md §11).
    history_from: datetime | None = None


def _calendar(row: Row) -> CalendarState:
    start, end = row["window_start"], row["window_end"]
    return CalendarState(
        clinician=row["clinician"],
        calendar=row["calendar"],
        token=row["token"],
        window=Window(parse_iso(start), parse_iso(end)) if start and end else None,
        vocabulary=row["vocabulary"],
        last_success=optional_iso(row["last_success"]),
        last_error=row["last_error"],
        last_error_at=optional_iso(row["last_error_at"]),
        failing_since=optional_iso(row["failing_since"]),
        paused=row["paused"],
        empty_reads=row["empty_reads"],
        history_from=optional_iso(row["history_from"]),
    )


class Calendars:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def get(self, clinician: str, calendar: str) -> CalendarState | None:
        row = self.db.execute(
            "SELECT * FROM calendars WHERE clinician=? AND calendar=?", (clinician, calendar)
        ).fetchone()
        return _calendar(row) if row else None

    def all(self) -> list[CalendarState]:
        rows = self.db.execute("SELECT * FROM calendars ORDER BY clinician, calendar")
        return [_calendar(row) for row in rows]

    def _ensure(self, clinician: str, calendar: str) -> None:
        self.db.execute(
            "INSERT INTO calendars (clinician, calendar) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (clinician, calendar),
        )

    def record_success(
        self,
        clinician: str,
        calendar: str,
        *,
        token: str | None,
        window: Window,
        vocabulary: str,
        now: datetime,
        history_from: datetime | None = None,
    ) -> None:
        """A listing was stored: its token and window, and since when the cache holds the
        calendar's history (None: the window's start); errors and pauses are over."""
        self._ensure(clinician, calendar)
        self.db.execute(
            "UPDATE calendars SET token=?, window_start=?, window_end=?, vocabulary=?, "
            "last_success=?, last_error=NULL, failing_since=NULL, paused=NULL, empty_reads=0, "
            "history_from=? WHERE clinician=? AND calendar=?",
            (
                token,
                iso(window.start),
                iso(window.end),
                vocabulary,
                iso(now),
                iso(history_from or window.start),
                clinician,
                calendar,
            ),
        )

    def record_failure(
        self, clinician: str, calendar: str, *, error: str, paused: str | None, now: datetime
    ) -> None:
        """A read failed; ``paused`` says why reading stops until a person acts."""
        self._ensure(clinician, calendar)
        self.db.execute(
            "UPDATE calendars SET last_error=?, last_error_at=?, "
            "failing_since=COALESCE(failing_since, ?), paused=? WHERE clinician=? AND calendar=?",
            (error, iso(now), iso(now), paused, clinician, calendar),
        )

    def record_empty_read(self, clinician: str, calendar: str) -> None:
        self.db.execute(
            "UPDATE calendars SET empty_reads=empty_reads+1 WHERE clinician=? AND calendar=?",
            (clinician, calendar),
        )

    def resume(self, clinician: str, calendar: str) -> None:
        """A person signed in again: read the calendar from the next cycle."""
        self.db.execute(
            "UPDATE calendars SET paused=NULL, last_error_at=NULL WHERE clinician=? AND calendar=?",
            (clinician, calendar),
        )

    def resume_all(self) -> None:
        """The config changed (a fixed authorization, perhaps): try every calendar again."""
        self.db.execute("UPDATE calendars SET paused=NULL")
