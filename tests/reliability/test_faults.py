"""Faults on both API servers (DESIGN.md §5, §8): 429 with Retry-After, 5xx, timeouts,
connection resets and truncated bodies, on listings and on writes (whole batches and
parts inside them), during full daemon cycles.

Three clinicians share one daemon: Gale on the Google Calendar fake, Otto on the
Microsoft Graph fake, Ivy on .ics files. Before the faulted cycle each of them moves one
session, cancels one and books one, so that cycle lists changes and sends a batch with a
create, an update and a delete. Then:

- nothing is lost: once the fault is over the calendars hold exactly the buffers the
  sessions want, none twice, and no event of the user's changed;
- retries are bounded: the server saw at most the retry policy's attempts for the faulted
  call, and the waits went through the injected sleep (Retry-After exactly as sent);
- the others are unaffected: in the very same round they finish their cycles, with their
  buffers in place and nothing waited.

The daemon runs in this process with a recorded sleep (``worlds.RecordingProviders``), so
no test waits for a Retry-After; a timeout costs the client's configured 1 s once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon.errors import TransientError
from caldaemon.retry import RetryPolicy
from tests.fakes.google_calendar import Fault as GoogleFault
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
from tests.fakes.microsoft import Fault as GraphFault
from tests.reliability.worlds import (
    Appointment,
    GoogleUser,
    GraphUser,
    IcsFile,
    Sleeps,
    Span,
    StateView,
    at,
    clinician_ics_yaml,
    clinician_yaml,
    daemon_with_sleeps,
    file_buffers,
    file_span,
    google_buffers,
    google_span,
    google_yaml,
    graph_buffers,
    graph_span,
    notice_problems,
    outlook_yaml,
    sign_in_outlook,
    write_config,
    write_google_credentials,
)

ATTEMPTS = RetryPolicy().attempts
GROUNDING = timedelta(minutes=15)
HANG = 2.5  # seconds a "hang" fault stalls; the clients' timeout is 1 s


class FaultWorld:
    def __init__(
        self, root: Path, google: GoogleCalendarServer, microsoft: MicrosoftServer
    ) -> None:
        self.google_server, self.microsoft = google, microsoft
        self.state_dir = root / "state"
        write_google_credentials(google, root, self.state_dir, "gale", "work")
        self.gale = GoogleUser(google)
        self.otto = GraphUser(microsoft, DEFAULT_USER)
        self.ivy = IcsFile(root / "ivy-practice.ics")
        self.ivy_buffers = IcsFile(root / "ivy-buffers.ics")
        self.config = write_config(
            root / "config.yaml",
            [
                clinician_yaml("gale", [google_yaml(google, "1s")], "work"),
                clinician_yaml("otto", [outlook_yaml(microsoft, "1s")], "work"),
                clinician_ics_yaml("ivy", "ivy-practice.ics", "ivy-buffers.ics"),
            ],
        )
        sign_in_outlook(microsoft, self.config, "otto", "work", DEFAULT_USER)
        self.sleeps = Sleeps()
        self.now = at(0, "07:00")
        self.daemon = daemon_with_sleeps(self.config, lambda: self.now, self.sleeps)
        self.state = StateView(self.state_dir / "state.sqlite3")
        for who in ("gale", "otto", "ivy"):
            for number, (day, slot) in enumerate([(0, "10:30"), (0, "13:30"), (1, "09:00")]):
                self.put(who, Appointment(f"{who}{number}x", at(day, slot)))
        self.ivy.save()

    def put(self, who: str, appointment: Appointment) -> None:
        if who == "gale":
            self.gale.put(appointment)
        elif who == "otto":
            self.otto.put(appointment)
        else:
            self.ivy.appointments[appointment.uid] = appointment

    def appointments(self, who: str) -> dict[str, Appointment]:
        return {"gale": self.gale, "otto": self.otto, "ivy": self.ivy}[who].appointments

    def reschedule(self) -> None:
        """Each clinician moves a session, cancels one and books one."""
        for who in ("gale", "otto", "ivy"):
            first, _, third = self.appointments(who).values()
            self.put(who, replace(first, start=at(0, "15:00")))
            self.put(who, replace(third, cancelled=True))
            self.put(who, Appointment(f"{who}3x", at(2, "10:30")))
        self.ivy.save()

    def cycle(self) -> dict[str, Any]:
        self.now += timedelta(minutes=2)
        return {r.clinician: r for r in self.daemon.once()}

    # -- checks ------------------------------------------------------------------------

    def wanted(self, who: str) -> list[Span]:
        return sorted(
            (a.end, a.end + GROUNDING, "Grounding time")
            for a in self.appointments(who).values()
            if not a.cancelled and a.end > self.now
        )

    def placed(self, who: str) -> list[Span]:
        if who == "gale":
            spans = [google_span(e) for e in google_buffers(self.gale).values()]
        elif who == "otto":
            spans = [graph_span(e) for e in graph_buffers(self.otto).values()]
        else:
            spans = [file_span(b) for b in file_buffers(self.ivy_buffers).values()]
        return sorted(spans)

    def converged(self, who: str) -> None:
        assert self.placed(who) == self.wanted(who), who
        recorded = self.state.statuses(who)
        # 'deleted' are buffers caldaemon itself removed, kept so they can return.
        recorded.pop("deleted", None)
        assert recorded == {"active": len(self.wanted(who))}, who

    def untouched(self) -> None:
        problems = self.gale.problems() + self.otto.problems() + self.ivy.problems()
        problems += self.ivy_buffers.problems()
        assert problems == []

    def close(self) -> None:
        self.daemon.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[FaultWorld]:
    with (
        GoogleCalendarServer(primary_email="gale@example.org") as google,
        MicrosoftServer() as microsoft,
    ):
        world = FaultWorld(tmp_path, google, microsoft)
        yield world
        world.close()


# -- what the faulted clinician's server saw -------------------------------------------


def google_lists(world: FaultWorld) -> int:
    return sum(
        r.method == "GET" and r.path.endswith("/events") and not r.batch_part
        for r in world.google_server.requests
    )


def google_batches(world: FaultWorld) -> int:
    return sum(
        r.method == "POST" and "/batch" in r.path and not r.batch_part
        for r in world.google_server.requests
    )


def google_inserts(world: FaultWorld) -> int:
    return sum(r.batch_part and r.method == "POST" for r in world.google_server.requests)


def graph_lists(world: FaultWorld) -> int:
    return sum(
        r.method == "GET" and "/calendarView/delta" in r.path and not r.batch_part
        for r in world.microsoft.requests
    )


def graph_batches(world: FaultWorld) -> int:
    return sum(r.method == "POST" and r.path == "/v1.0/$batch" for r in world.microsoft.requests)


def graph_inserts(world: FaultWorld) -> int:
    return sum(r.batch_part and r.method == "POST" for r in world.microsoft.requests)


@dataclass(frozen=True)
class Case:
    """A fault on one server's calls: what to inject, which calls it hits, how many of
    them the server must see in the faulted cycle, and the waits that go with them
    (exact values for Retry-After; None: that many backoff waits of our own)."""

    name: str
    who: str  # the clinician whose server fails: gale (Google) or otto (Graph)
    inject: Callable[[FaultWorld], None]
    calls: Callable[[FaultWorld], int]
    seen: int
    waits: tuple[float, ...] | None = None
    lasts: bool = False  # outlasts every retry: the cycle gives up on it
    backoffs: int | None = None  # our own waits, when not one per repeated call
    # (created, updated, deleted) in the faulted cycle, when the fault does not outlast
    # the retries. A delete that landed before its answer was lost comes back as gone
    # on the retry: done, but not counted as done by this cycle.
    done: tuple[int, int, int] = (1, 1, 1)

    @property
    def retried(self) -> int:
        return self.seen - 1 if self.backoffs is None else self.backoffs

    def __str__(self) -> str:
        return self.name


def google(*faults: GoogleFault) -> Callable[[FaultWorld], None]:
    def inject(world: FaultWorld) -> None:
        for fault in faults:
            world.google_server.inject(fault)

    return inject


def graph(*faults: GraphFault) -> Callable[[FaultWorld], None]:
    def inject(world: FaultWorld) -> None:
        for fault in faults:
            world.microsoft.inject(fault)

    return inject


LIST = dict(method="GET", path_contains="/events", batch_part=False)
BATCH = dict(path_contains="/batch", batch_part=False)
DELTA = "GET /calendarView/delta"
GRAPH_BATCH = "POST /v1.0/$batch"


def _graph_insert(request: Any) -> bool:
    return request.method == "POST"


CASES = [
    # Google Calendar API: the incremental listing ...
    Case(
        "google-list-429-retry-after",
        "gale",
        google(GoogleFault(status=429, retry_after=2, **LIST)),
        google_lists,
        2,
        (2.0,),
    ),
    Case(
        "google-list-503", "gale", google(GoogleFault(status=503, times=2, **LIST)), google_lists, 3
    ),
    Case(
        "google-list-timeout",
        "gale",
        google(GoogleFault(kind="hang", delay=HANG, **LIST)),
        google_lists,
        2,
    ),
    Case("google-list-reset", "gale", google(GoogleFault(kind="reset", **LIST)), google_lists, 2),
    Case(
        "google-list-truncated",
        "gale",
        google(GoogleFault(kind="truncate", **LIST)),
        google_lists,
        2,
    ),
    Case(
        "google-list-503-outlasting-retries",
        "gale",
        google(GoogleFault(status=503, times=ATTEMPTS, **LIST)),
        google_lists,
        ATTEMPTS,
        lasts=True,
    ),
    # ... and the batch of writes, whole or in part.
    Case(
        "google-batch-part-429-retry-after",
        "gale",
        google(GoogleFault(status=429, retry_after=3, batch_part=True)),
        google_batches,
        2,
        (3.0,),
    ),
    Case("google-batch-503", "gale", google(GoogleFault(status=503, **BATCH)), google_batches, 2),
    Case(
        "google-batch-timeout",
        "gale",
        google(GoogleFault(kind="hang", delay=HANG, **BATCH)),
        google_batches,
        2,
    ),
    Case(
        "google-batch-reset", "gale", google(GoogleFault(kind="reset", **BATCH)), google_batches, 2
    ),
    Case(
        "google-batch-truncated",
        "gale",
        google(GoogleFault(kind="truncate", **BATCH)),
        google_batches,
        3,
        backoffs=1,
        done=(1, 1, 0),
    ),  # 409/412 looked up in a batch
    Case(
        "google-batch-503-outlasting-retries",
        "gale",
        google(GoogleFault(status=503, times=ATTEMPTS, **BATCH)),
        google_batches,
        ATTEMPTS,
        lasts=True,
    ),
    Case(
        "google-batch-part-503-outlasting-retries",
        "gale",
        google(GoogleFault(status=503, times=ATTEMPTS, batch_part=True, method="POST")),
        google_inserts,
        ATTEMPTS,
        lasts=True,
    ),
    # Throttled both ways, whole batches then its insert: one budget for the call.
    Case(
        "google-batch-throttled-whole-and-parts",
        "gale",
        google(
            GoogleFault(status=429, retry_after=1, times=2, **BATCH),
            GoogleFault(
                status=429, retry_after=1, times=ATTEMPTS - 2, batch_part=True, method="POST"
            ),
        ),
        google_batches,
        ATTEMPTS,
        (1.0,) * (ATTEMPTS - 1),
        lasts=True,
    ),
    # Microsoft Graph: the delta listing ...
    Case(
        "graph-list-429-retry-after",
        "otto",
        graph(GraphFault(status=429, retry_after=2, match=DELTA)),
        graph_lists,
        2,
        (2.0,),
    ),
    Case(
        "graph-list-503",
        "otto",
        graph(GraphFault(status=503, times=2, match=DELTA)),
        graph_lists,
        3,
    ),
    Case(
        "graph-list-timeout",
        "otto",
        graph(GraphFault(kind="hang", delay=HANG, match=DELTA)),
        graph_lists,
        2,
    ),
    Case("graph-list-reset", "otto", graph(GraphFault(kind="reset", match=DELTA)), graph_lists, 2),
    Case(
        "graph-list-truncated",
        "otto",
        graph(GraphFault(kind="truncate", match=DELTA)),
        graph_lists,
        2,
    ),
    Case(
        "graph-list-503-outlasting-retries",
        "otto",
        graph(GraphFault(status=503, times=ATTEMPTS, match=DELTA)),
        graph_lists,
        ATTEMPTS,
        lasts=True,
    ),
    # ... and $batch, whole or item by item.
    Case(
        "graph-batch-item-429-retry-after",
        "otto",
        graph(GraphFault(status=429, retry_after=3, in_batch=True)),
        graph_batches,
        2,
        (3.0,),
    ),
    Case(
        "graph-batch-503",
        "otto",
        graph(GraphFault(status=503, match=GRAPH_BATCH)),
        graph_batches,
        2,
    ),
    Case(
        "graph-batch-timeout",
        "otto",
        graph(GraphFault(kind="hang", delay=HANG, match=GRAPH_BATCH)),
        graph_batches,
        2,
    ),
    Case(
        "graph-batch-reset",
        "otto",
        graph(GraphFault(kind="reset", match=GRAPH_BATCH)),
        graph_batches,
        2,
    ),
    Case(
        "graph-batch-truncated",
        "otto",
        graph(GraphFault(kind="truncate", match=GRAPH_BATCH)),
        graph_batches,
        2,
        done=(1, 1, 0),
    ),
    Case(
        "graph-batch-503-outlasting-retries",
        "otto",
        graph(GraphFault(status=503, times=ATTEMPTS, match=GRAPH_BATCH)),
        graph_batches,
        ATTEMPTS,
        lasts=True,
    ),
    Case(
        "graph-batch-item-503-outlasting-retries",
        "otto",
        graph(GraphFault(status=503, times=ATTEMPTS, in_batch=True, match=_graph_insert)),
        graph_inserts,
        ATTEMPTS,
        lasts=True,
    ),
    # Throttled both ways, as Graph does under load: still one budget for the call.
    Case(
        "graph-batch-throttled-whole-and-items",
        "otto",
        graph(
            GraphFault(status=429, retry_after=1, times=2, match=GRAPH_BATCH),
            GraphFault(status=429, retry_after=1, times=None, in_batch=True, match=_graph_insert),
        ),
        graph_batches,
        ATTEMPTS,
        (1.0,) * (ATTEMPTS - 1),
        lasts=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_fault_is_retried_within_bounds_loses_nothing_and_spares_the_others(
    world: FaultWorld, case: Case
) -> None:
    first = world.cycle()
    assert all(r.ok and r.created == 3 for r in first.values()), first
    for who in ("gale", "otto", "ivy"):
        world.converged(who)
    world.reschedule()
    world.google_server.clear_requests()
    world.microsoft.clear_requests()
    case.inject(world)

    reports = world.cycle()

    # Retries bounded, and every wait went through the injected sleep.
    assert case.calls(world) == case.seen
    waits = world.sleeps.of(case.who)
    if case.waits is not None:
        assert tuple(waits) == case.waits
    else:
        assert len(waits) == case.retried
        policy = RetryPolicy()
        assert all(0 <= w <= min(policy.cap, policy.base * 2**n) for n, w in enumerate(waits))
    # The others finished their cycles in the same round, waiting for nothing.
    others = [w for w in ("gale", "otto", "ivy") if w != case.who]
    for who in others:
        report = reports[who]
        assert report.ok and (report.created, report.updated, report.deleted) == (1, 1, 1)
        world.converged(who)
        assert world.sleeps.of(who) == []
    failed = reports[case.who]
    if not case.lasts:
        assert failed.ok and (failed.created, failed.updated, failed.deleted) == case.done
    elif case.calls in (google_lists, graph_lists):
        [error] = failed.calendar_errors
        assert isinstance(error, TransientError) and error.calendar == "work"
        assert (failed.created, failed.updated, failed.deleted) == (0, 0, 0)
    world.untouched()

    # Once the fault is over, the next cycle converges: nothing lost, nothing doubled.
    world.microsoft.clear_faults()
    again = world.cycle()
    assert all(r.ok for r in again.values()), again
    for who in ("gale", "otto", "ivy"):
        world.converged(who)
    world.untouched()
    settled = world.cycle()
    assert all((r.created, r.updated, r.deleted) == (0, 0, 0) for r in settled.values())
    assert world.state.integrity() == "ok"
    assert notice_problems(world.state, world.state_dir, world.now) == []
