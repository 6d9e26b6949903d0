"""API efficiency: HTTP requests per poll against the local Google Calendar and Microsoft
Graph servers (DESIGN.md §9: an unchanged poll costs one request per calendar; writes go
in batches of ≤ 50 for Google, ≤ 20 for Graph).

For each service, one clinician has one calendar (also their ``buffers_to``) holding
sixteen weeks of sessions, all within the horizon: three #heavy sessions (each followed by
a 15-minute buffer) and one moderate session on every weekday, 320 sessions and 240
buffers, so that listing the window afresh takes several requests (Google: at most 250
events a page, its documented default, the fake set to return no more, as the API may
return fewer than ``maxResults``; Graph: the fake's pages and the batched look-ups of
owner markers a full listing makes). That is what the unchanged poll's row shows: one
request against the requests a re-list makes. The real daemon runs
(``Daemon.once``) with a fixed clock advanced two minutes per cycle. After the first
cycle (full sync, buffers created) and one that reads its own buffers back:

* an unchanged poll;
* k = 1, 10 and 60 sessions moved by an hour on the server, as the user would (each
  buffer follows its session), then one cycle; the cycle after it is not counted.

Counted: top-level HTTP requests to the calendar API (a batch is one request, its parts
are not counted; token and sign-in endpoints are left out). The target for k changes is
1 + ⌈writes / batch size⌉, writes being the buffers the cycle created, moved or deleted
(from its CycleReport). Beside it, the naive approach with no incremental sync and no
batching: the provider lists the whole window afresh (``list(window, None)``, its pages
counted on the server, right after the measured cycle) plus one request per write.
Deterministic: fixed clock, fixed sessions, no latency, no faults.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from caldaemon.core.assess import window
from caldaemon.model import Window
from caldaemon.providers.base import Provider
from caldaemon.providers.registry import open_provider
from caldaemon.service.cycle import CycleReport
from caldaemon.service.daemon import Daemon
from caldaemon.service.providers import provider_context
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import MicrosoftServer
from tests.support import StepClock

from .servers import (
    TZ,
    GoogleSide,
    GraphSide,
    Session,
    clinician_entry,
    google_resource,
    started_google,
    started_graph,
    weekday_sessions,
    write_config,
)

# A Sunday noon: the four weeks of sessions start the next morning.
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=TZ)
FIRST_DAY = datetime(2026, 11, 30, tzinfo=TZ)
HORIZON = "112d"
WEEKS = 16
GOOGLE_PAGE = 250
SLOTS = [(8, True), (11, True), (14, True), (17, False)]
CHANGES = (1, 10, 60)
CLINICIAN = "lee"
CALENDAR = "work"


class World:
    """One clinician on one service, the daemon, and the user's hand on the calendar.
    Subclasses say how to move a session and which recorded requests are API calls."""

    provider_name = ""
    batch_size = 1

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = StepClock(NOW)
        self.sessions = weekday_sessions(FIRST_DAY, 7 * WEEKS, SLOTS, "bench")
        self.heavy = [s for s in self.sessions if s.heavy]
        self.moved: set[str] = set()
        self.daemon: Daemon | None = None
        self.naive: Provider | None = None

    def start(self, calendar: dict[str, Any]) -> None:
        config = write_config(
            self.root / "config.yaml",
            [clinician_entry(CLINICIAN, calendar)],
            poll_interval="2m",
            horizon=HORIZON,
        )
        self.daemon = Daemon(str(config), clock=self.clock)
        settings = self.daemon.settings
        clinician = settings.clinician(CLINICIAN)
        self.naive = open_provider(
            clinician.calendar(CALENDAR), provider_context(settings, clinician)
        )

    def close(self) -> None:
        if self.naive is not None:
            self.naive.close()
        if self.daemon is not None:
            self.daemon.close()

    # -- the service, as seen from outside ------------------------------------------------

    def api_requests(self) -> int:
        raise NotImplementedError

    def clear_requests(self) -> None:
        raise NotImplementedError

    def place(self, session: Session, start: datetime) -> None:
        raise NotImplementedError

    # -- measuring ------------------------------------------------------------------------

    def cycle(self) -> tuple[CycleReport, int]:
        """One daemon cycle two minutes on; its report and the API requests it made."""
        assert self.daemon is not None
        self.clock.advance()
        self.clear_requests()
        [report] = self.daemon.once()
        if not report.ok:
            raise RuntimeError(f"{self.provider_name}: a calendar failed in the benchmark")
        return report, self.api_requests()

    def full_listing(self) -> tuple[int, int]:
        """Requests for listing the whole window with no token (the naive poll), and the
        events it read."""
        assert self.daemon is not None and self.naive is not None
        clinician = self.daemon.settings.clinician(CLINICIAN)
        start, end = window(clinician, self.clock(), self.daemon.settings.daemon.horizon)
        self.clear_requests()
        listing = self.naive.changes(Window(start, end), None)
        return self.api_requests(), len(listing.events)

    def move(self, k: int) -> None:
        """The first ``k`` heavy sessions go an hour later (or back, if moved before)."""
        for session in self.heavy[:k]:
            if session.key in self.moved:
                self.moved.discard(session.key)
                self.place(session, session.start)
            else:
                self.moved.add(session.key)
                self.place(session, session.start + timedelta(hours=1))

    def rows(self) -> list[dict[str, Any]]:
        first, _ = self.cycle()
        if first.created != len(self.heavy):
            raise RuntimeError(
                f"{self.provider_name}: expected {len(self.heavy)} buffers, placed {first.created}"
            )
        self.cycle()  # reads back its own buffers
        _, unchanged = self.cycle()
        pages, events = self.full_listing()
        rows = [
            self._row(
                f"poll, nothing changed (a re-list reads {events} events in {pages} requests)",
                unchanged,
                0,
                pages,
                "1 per calendar",
                1,
            )
        ]
        for k in CHANGES:
            self.move(k)
            report, requests = self.cycle()
            writes = report.created + report.updated + report.deleted
            target = 1 + math.ceil(writes / self.batch_size)
            rows.append(
                self._row(
                    f"{_count(k, 'session')} moved ({_count(writes, 'buffer write')})",
                    requests,
                    writes,
                    self.full_listing()[0],
                    f"1 + ⌈{writes}/{self.batch_size}⌉ = {target}",
                    target,
                )
            )
            self.cycle()  # reads back its own updates
        return rows

    def _row(
        self, case: str, requests: int, writes: int, listing: int, target: str, target_value: int
    ) -> dict[str, Any]:
        return {
            "provider": self.provider_name,
            "case": case,
            "requests": requests,
            "naive": listing + writes,
            "target": target,
            "target_value": target_value,
        }


class GoogleWorld(World):
    provider_name = "Google"
    batch_size = 50

    def __init__(self, root: Path, server: GoogleCalendarServer) -> None:
        super().__init__(root)
        self.server = server
        side = GoogleSide(server, root)
        self.start(side.calendar(CLINICIAN, CALENDAR, self.sessions, primary=True))

    def api_requests(self) -> int:
        return sum(1 for r in self.server.requests if not r.batch_part and r.path != "/token")

    def clear_requests(self) -> None:
        self.server.clear_requests()

    def place(self, session: Session, start: datetime) -> None:
        self.server.put_event("primary", google_resource(session, start))


class GraphWorld(World):
    provider_name = "Microsoft Graph"
    batch_size = 20

    def __init__(self, root: Path, server: MicrosoftServer) -> None:
        super().__init__(root)
        self.server = server
        self.side = GraphSide(server, root)
        self.start(self.side.calendar(CLINICIAN, CALENDAR, self.sessions))

    def api_requests(self) -> int:
        return sum(
            1 for r in self.server.requests if r.path.startswith("/v1.0") and not r.batch_part
        )

    def clear_requests(self) -> None:
        self.server.clear_requests()

    def place(self, session: Session, start: datetime) -> None:
        self.side.move(CLINICIAN, session, start)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _measure(make: Callable[[Path], World], root: Path) -> list[dict[str, Any]]:
    world = make(root)
    try:
        return world.rows()
    finally:
        world.close()


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="caldaemon-bench-api-") as folder:
        root = Path(folder)
        google = started_google(page_size_cap=GOOGLE_PAGE)
        try:
            rows = _measure(lambda r: GoogleWorld(r, google), root / "google")
        finally:
            google.stop()
        graph = started_graph()
        try:
            rows += _measure(lambda r: GraphWorld(r, graph), root / "graph")
        finally:
            graph.stop()
    return rows
