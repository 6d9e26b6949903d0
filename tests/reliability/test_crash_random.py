"""Crash safety (DESIGN.md §5–§6): over many seeded rounds the user changes their
calendars, ``caldaemon run --once`` is started as a real process and dies at a random
point of its cycle (SIGKILL after a random delay, or an armed fail point), and a restarted
daemon then completes the cycle. After every round: no duplicate buffer, every event
caldaemon does not own exactly as the user left it, nothing before now touched, the
buffers the rules want (and only those) on the calendars, no notice lost, and the state
database intact.

Two clinicians cover both writable kinds of calendar: Lee's sessions are on Google (the
local Calendar API fake) and in an .ics practice file, buffers go to Google; Kim's
sessions are in an .ics practice file, buffers go to an .ics file in which Kim also keeps
a lunch break of their own. The whole run is fixed by ``SEED``; a failure names its round.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import subprocess
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon import config
from caldaemon.providers.google.mapping import event_id
from caldaemon.providers.ics.mapping import buffer_uid
from caldaemon.service.daemon import Daemon
from caldaemon.service.read import check
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
from tests.reliability.worlds import (
    ROOT,
    Appointment,
    GoogleUser,
    GraphUser,
    IcsFile,
    Span,
    StateView,
    at,
    clinician_ics_yaml,
    clinician_yaml,
    command,
    file_buffers,
    file_span,
    google_buffers,
    google_resource,
    google_span,
    google_yaml,
    graph_buffers,
    graph_span,
    notice_problems,
    outlook_yaml,
    run_once,
    sign_in_outlook,
    write_config,
    write_google_credentials,
)

SEED = 20261130
ROUNDS = 20
FAIL_POINTS = ["before-write", "after-write", "after-commit", "before-delivery", "after-send"]
SLOTS = ["09:00", "10:30", "12:00", "13:30", "15:00", "16:10"]  # 16:10 ends after hours
TAGS = ["#heavy", "#heavy", "[heavy]", "", "#light"]
EMAIL = "lee@example.org"


class Source:
    """One place the user keeps sessions: Lee's Google calendar or an .ics practice file."""

    def __init__(self, name: str, store: GoogleUser | IcsFile, prefix: str) -> None:
        self.name, self.store, self.prefix = name, store, prefix
        self.dirty = False

    def live(self, after: datetime) -> list[Appointment]:
        return [a for a in self.store.appointments.values() if not a.cancelled and a.start > after]

    def put(self, appointment: Appointment) -> None:
        if isinstance(self.store, GoogleUser):
            self.store.put(appointment)
        else:
            self.store.appointments[appointment.uid] = appointment
            self.dirty = True

    def drop(self, appointment: Appointment, rng: random.Random) -> None:
        """Cancel: Google deletes; a practice system either marks it or leaves it out."""
        if isinstance(self.store, IcsFile) and rng.random() < 0.5:
            del self.store.appointments[appointment.uid]
            self.dirty = True
        else:
            self.put(replace(appointment, cancelled=True))

    def flush(self) -> None:
        if self.dirty:
            assert isinstance(self.store, IcsFile)
            self.store.save()
            self.dirty = False


class CrashWorld:
    def __init__(self, root: Path, server: GoogleCalendarServer) -> None:
        self.root, self.server = root, server
        self.state_dir = root / "state"
        write_google_credentials(server, root, self.state_dir, "lee", "work")
        self.google = GoogleUser(server)
        self.lee_file = IcsFile(root / "lee-practice.ics")
        self.kim_file = IcsFile(root / "kim-practice.ics")
        self.kim_buffers = IcsFile(
            root / "kim-buffers.ics",
            [Appointment("lunch@kim", at(1, "12:00"), 30, tag="", label="Lunch with")],
        )
        self.sources = [
            Source("lee google", self.google, "leeg"),
            Source("lee practice.ics", self.lee_file, "lee-p-"),
            Source("kim practice.ics", self.kim_file, "kim-p-"),
        ]
        self.numbers = itertools.count()
        self.config = write_config(
            root / "config.yaml",
            [
                clinician_yaml(
                    "lee",
                    [
                        google_yaml(server),
                        "{id: practice, provider: ics, path: lee-practice.ics}",
                    ],
                    "work",
                ),
                clinician_ics_yaml("kim", "kim-practice.ics", "kim-buffers.ics"),
            ],
        )
        self.state = StateView(self.state_dir / "state.sqlite3")
        start = at(0, "07:00")
        for source in self.sources:
            for day, slot in [(0, "10:30"), (0, "13:30"), (1, "09:00"), (2, "15:00")]:
                self.add(source, at(day, slot), "#heavy")
            source.flush()
        self.kim_buffers.save()
        assert start < min(a.start for s in self.sources for a in s.live(start))

    def add(self, source: Source, start: datetime, tag: str) -> None:
        suffix = "@ehr" if isinstance(source.store, IcsFile) else ""
        source.put(Appointment(f"{source.prefix}{next(self.numbers)}{suffix}", start, tag=tag))

    def mutate(self, rng: random.Random, now: datetime) -> list[str]:
        """What a user does between two polls: move, cancel or book a few sessions."""
        done = []

        def slot() -> datetime:
            while True:
                moment = at(rng.randrange(10), rng.choice(SLOTS))
                if moment > now + timedelta(hours=1):
                    return moment

        for _ in range(rng.randint(1, 3)):
            source = rng.choice(self.sources)
            live = source.live(now + timedelta(minutes=30))
            action = rng.choice(["move", "move", "cancel", "book", "book"])
            if action == "move" and live:
                chosen = rng.choice(live)
                source.put(replace(chosen, start=slot()))
                done.append(f"move {chosen.uid}")
            elif action == "cancel" and len(live) > 2:
                # Two sessions always stay: a calendar that suddenly reads empty is
                # deliberately not believed the first time (the empty-read guard).
                chosen = rng.choice(live)
                source.drop(chosen, rng)
                done.append(f"cancel {chosen.uid}")
            else:
                self.add(source, slot(), rng.choice(TAGS))
                done.append(f"book on {source.name}")
        if rng.random() < 0.2:  # Kim moves the lunch break kept in the buffers file
            lunch = self.kim_buffers.appointments["lunch@kim"]
            self.kim_buffers.appointments["lunch@kim"] = replace(lunch, start=slot())
            self.kim_buffers.save()
            done.append("move Kim's lunch")
        for source in self.sources:
            source.flush()
        return done

    # -- what must hold after every completed cycle -----------------------------------

    def google_buffers(self) -> dict[str, dict[str, Any]]:
        return google_buffers(self.google)

    def file_buffers(self) -> dict[str, str]:
        return file_buffers(self.kim_buffers)

    def past(self, now: datetime) -> dict[str, Any]:
        """Caldaemon's buffers that begin before ``now``: nobody may touch them now."""
        snapshot: dict[str, Any] = {}
        for identity, event in self.google_buffers().items():
            if google_span(event)[0] < now:
                snapshot["google " + identity] = event
        for identity, block in self.file_buffers().items():
            if file_span(block)[0] < now:
                snapshot["file " + identity] = block
        return snapshot

    def check(self, now: datetime, before: dict[str, Any]) -> None:
        assert self.state.integrity() == "ok"
        # Ownership and uniqueness: what carries our marker is exactly what state records.
        google = self.google_buffers()
        assert {i: e["id"] for i, e in google.items()} == self.state.active_buffers("lee", "work")
        assert all(e["id"] == event_id(i) for i, e in google.items())
        in_file = self.file_buffers()
        assert {i: buffer_uid(i) for i in in_file} == self.state.active_buffers("kim", "buffers")
        unsettled = [
            b
            for b in self.state.buffers()
            if b.status not in ("active", "deleted") or b.pending is not None
        ]
        assert unsettled == []
        # The user's own events: byte for byte as they wrote them.
        problems = self.google.problems() + self.lee_file.problems()
        problems += self.kim_file.problems() + self.kim_buffers.problems()
        assert problems == []
        # Nothing before now was created, changed or deleted.
        assert {k: v for k, v in self.past(now).items() if k in before} == before
        # The buffers the rules want from now on, and no others.
        wanted = {
            a.clinician.id: {
                b.identity: (b.start, b.end, b.title)
                for b in a.evaluation.buffers
                if b.start >= now
            }
            for a in check(config.load(self.config), now)
        }
        placed_google = {i: google_span(e) for i, e in google.items()}
        placed_file = {i: file_span(b) for i, b in in_file.items()}
        assert {i: s for i, s in placed_google.items() if s[0] >= now} == wanted["lee"]
        assert {i: s for i, s in placed_file.items() if s[0] >= now} == wanted["kim"]
        # No notice lost.
        assert notice_problems(self.state, self.state_dir, now) == []


def complete(world: CrashWorld, now: datetime) -> list[Any]:
    """The restarted daemon's cycle, run to the end."""
    daemon = Daemon(str(world.config), clock=lambda: now)
    try:
        reports = daemon.once()
    finally:
        daemon.close()
    assert [(r.clinician, r.calendar_errors) for r in reports] == [("lee", []), ("kim", [])]
    return reports


class Run:
    """``caldaemon run --once`` as a real process, observed from the Google server's side:
    its cycle has begun once its first request arrives there."""

    def __init__(self, world: CrashWorld, now: datetime, env: dict[str, str]) -> None:
        world.server.clear_requests()
        self.server = world.server
        self.process = subprocess.Popen(
            command(world.config, now, "-v"),
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not world.server.requests and self.process.poll() is None:
            assert time.monotonic() < deadline, "the daemon never reached Google"
            time.sleep(0.001)
        self.began = time.monotonic()

    def finish(self, within: float | None = None) -> tuple[bool, str]:
        """Wait for the end, or SIGKILL the process ``within`` seconds after its cycle
        began. Returns whether it was killed, and what it logged."""
        try:
            self.process.wait(
                timeout=None if within is None else max(0.0, self.began + within - time.monotonic())
            )
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGKILL)  # it may just have ended by itself
        _, logged = self.process.communicate(timeout=60)
        assert self.process.returncode in (0, -signal.SIGKILL), logged
        killed = self.process.returncode == -signal.SIGKILL
        return killed, logged

    def requests(self) -> str:
        return ", ".join(
            f"{r.method} {r.path.rsplit('/', 1)[-1]} {r.status}"
            for r in self.server.requests
            if not r.batch_part
        )


def test_sigkill_at_random_points_never_duplicates_loses_or_touches_what_is_not_ours(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    env = {k: v for k, v in os.environ.items() if k != "CALDAEMON_FAILPOINT"}
    with GoogleCalendarServer(primary_email=EMAIL) as server:
        world = CrashWorld(tmp_path, server)
        now = at(0, "07:00")
        clean = Run(world, now, env)
        clean.finish()
        cycle = time.monotonic() - clean.began  # its cycle, from first request to exit
        world.check(now, {})
        assert len(world.google_buffers()) == 8 and len(world.file_buffers()) == 4
        outcomes: list[str] = []
        for number in range(1, ROUNDS + 1):
            now += timedelta(minutes=rng.choice([10, 20, 30, 45]))
            changes = world.mutate(rng, now)
            before = world.past(now)
            if rng.random() < 0.35:
                point = rng.choice(FAIL_POINTS)
                run = run_once(world.config, now, "-v", env=env | {"CALDAEMON_FAILPOINT": point})
                assert run.returncode in (0, 137), run.stderr
                how = f"fail point {point}" + (" (not reached)" if run.returncode == 0 else "")
                logged, sent = run.stderr, ""
            else:
                delay = rng.uniform(0, cycle)
                interrupted = Run(world, now, env)
                killed, logged = interrupted.finish(within=delay)
                how = f"SIGKILL {delay:.3f} s into the cycle" if killed else "not interrupted"
                sent = interrupted.requests()
            outcomes.append(how)
            context = (
                f"round {number} (seed {SEED}) at {now:%a %H:%M}: {changes}; {how}; "
                f"Google saw: {sent}; the interrupted run logged:\n{logged}"
            )
            complete(world, now + timedelta(minutes=1))
            try:
                world.check(now + timedelta(minutes=1), before)
            except AssertionError as exc:
                raise AssertionError(f"{context}\n{exc}") from exc

        # A further cycle has nothing left to do: no write, no notice.
        notices = len(world.state.outbox())
        reports = complete(world, now + timedelta(minutes=2))
        assert [(r.created, r.updated, r.deleted) for r in reports] == [(0, 0, 0)] * 2
        assert len(world.state.outbox()) == notices
        # The rounds really interrupted cycles, in both ways.
        assert sum("SIGKILL" in o for o in outcomes) >= ROUNDS // 3, outcomes
        assert sum(o.startswith("fail point") and "not reached" not in o for o in outcomes) >= 2, (
            outcomes
        )


@pytest.mark.parametrize("where", ["google", "graph", "ics"])
def test_a_session_cancelled_then_restored_gets_its_buffer_back(tmp_path: Path, where: str) -> None:
    """Caldaemon deletes the buffer of a cancelled session; when the user restores that
    very session (Google's Undo or Trash keeps its event id; a practice system exports
    the UID again) the rules want the buffer again, and nobody but caldaemon ever
    deleted it: it must come back, on every writable kind of calendar."""
    session = Appointment("restored1", at(1, "10:30"))
    other = Appointment("kept1", at(2, "10:30"))
    now = at(0, "07:00")

    def cycle() -> Any:
        nonlocal now
        now += timedelta(minutes=5)
        daemon = Daemon(str(config_path), clock=lambda: now)  # a restarted daemon each time
        try:
            [report] = daemon.once()
        finally:
            daemon.close()
        assert report.ok
        return report

    with contextlib.ExitStack() as stack:
        if where == "google":
            server = stack.enter_context(GoogleCalendarServer(primary_email=EMAIL))
            write_google_credentials(server, tmp_path, tmp_path / "state", "lee", "work")
            user: Any = GoogleUser(server)
            calendar = google_yaml(server)
            config_path = write_config(
                tmp_path / "config.yaml", [clinician_yaml("lee", [calendar], "work")]
            )
        elif where == "graph":
            microsoft = stack.enter_context(MicrosoftServer())
            user = GraphUser(microsoft, DEFAULT_USER)
            calendar = outlook_yaml(microsoft)
            config_path = write_config(
                tmp_path / "config.yaml", [clinician_yaml("lee", [calendar], "work")]
            )
            sign_in_outlook(microsoft, config_path, "lee", "work", DEFAULT_USER)
        else:
            user = IcsFile(tmp_path / "practice.ics")
            buffers = IcsFile(tmp_path / "buffers.ics")
            config_path = write_config(
                tmp_path / "config.yaml", [clinician_ics_yaml("lee", "practice.ics", "buffers.ics")]
            )

        def placed() -> list[Span]:
            if where == "google":
                return sorted(google_span(e) for e in google_buffers(user).values())
            if where == "graph":
                return sorted(graph_span(e) for e in graph_buffers(user).values())
            return sorted(file_span(b) for b in file_buffers(buffers).values())

        def put(appointment: Appointment) -> None:
            if isinstance(user, IcsFile):
                user.appointments[appointment.uid] = appointment
                user.save()
            else:
                user.put(appointment)

        def wanted(*sessions: Appointment) -> list[Span]:
            return sorted(
                (s.end, s.end + timedelta(minutes=15), "Grounding time") for s in sessions
            )

        put(session)
        put(other)
        assert cycle().created == 2 and placed() == wanted(session, other)
        put(replace(session, cancelled=True))
        assert cycle().deleted == 1 and placed() == wanted(other)
        if where == "google":  # restored from the Trash: the same event, confirmed again
            server.put_event("primary", {**google_resource(session), "status": "confirmed"})
        else:
            put(session)
        cycle()
        assert placed() == wanted(session, other)
        statuses = StateView(tmp_path / "state" / "state.sqlite3").statuses()
        assert statuses == {"active": 2}  # revived, not user_deleted
