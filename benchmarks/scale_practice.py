"""The practice of benchmarks/scale.py: one clinician per calendar, alternately on the
local Google and Graph fakes (50 ms per request), each with a week of sessions, and a
person's hand moving them; its config names a PostgreSQL state when one is given."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.state.cluster import Postgres

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

LATENCY = 0.05
POLL = "1m"
SLOTS = [(10, True), (15, False)]


@dataclass
class Practice:
    """The fakes, every calendar's sessions, and a person's hand on them: ``days`` of
    weekday sessions from next Monday (or from tomorrow, ``next_week=False``), each
    request delayed ``latency`` seconds on the server."""

    folder: Path
    calendars: int
    latency: float = LATENCY
    days: int = 7
    horizon: str = "14d"
    next_week: bool = True
    google: Any = None
    graph: Any = None
    google_side: GoogleSide | None = None
    graph_side: GraphSide | None = None
    sessions: list[Session] = field(default_factory=list)
    moved: set[tuple[int, str]] = field(default_factory=set)
    changes: int = 0

    def seed(self, postgres: Postgres | None) -> Path:
        self.google = started_google(latency=self.latency)
        self.graph = started_graph(latency=self.latency)
        self.google_side = GoogleSide(self.google, self.folder / "google")
        self.graph_side = GraphSide(self.graph, self.folder / "graph")
        today = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        first = today + timedelta(days=7 - today.weekday() if self.next_week else 1)
        self.sessions = weekday_sessions(first, self.days, SLOTS, "s")
        clinicians = []
        for index in range(self.calendars):
            name = name_of(index)
            if index % 2 == 0:
                entry = self.google_side.calendar(name, "work", self.sessions)
            else:
                entry = self.graph_side.calendar(name, "work", self.sessions)
            clinicians.append(clinician_entry(name, entry))
        shared = None
        if postgres is not None:
            shared = {
                "state": postgres.url(postgres.create_database()),
                "state_password_file": str(postgres.password_file),
            }
        return write_config(
            self.folder / "config.yaml",
            clinicians,
            poll_interval=POLL,
            horizon=self.horizon,
            daemon=shared,
        )

    def change(self, index: int, rng: random.Random) -> None:
        """Move one of the calendar's heavy sessions by an hour (or back)."""
        assert self.google_side is not None and self.graph_side is not None
        session = rng.choice([s for s in self.sessions if s.heavy])
        key = (index, session.key)
        start = session.start if key in self.moved else session.start + timedelta(hours=1)
        self.moved.symmetric_difference_update({key})
        self.move(index, session, start)
        self.changes += 1

    def move(self, index: int, session: Session, start: datetime) -> None:
        """The calendar's owner drags ``session`` to ``start``."""
        assert self.graph_side is not None
        if index % 2 == 0:
            self.google.put_event(
                f"{name_of(index)}@bench.example", google_resource(session, start)
            )
        else:
            self.graph_side.move(name_of(index), session, start)

    def expire_sign_ins(self) -> None:
        self.google.expire_access_tokens()
        self.graph.expire_access_tokens()

    def stop(self) -> None:
        for server in (self.google, self.graph):
            if server is not None:
                server.stop()


def name_of(index: int) -> str:
    return f"c{index:05d}"
