"""Three ``caldaemon run`` processes on one PostgreSQL state share six clinicians (issue
15): each runs cycles only for the clinicians it leases; one is SIGKILLed in the middle of
a round, and the others take its clinicians over once its leases run out. Every clinician
keeps being polled (seen in the state, waited for with a deadline, never a fixed sleep),
no buffer is made twice, and no notice is delivered twice.

The processes run on the real clock from a pinned start (``run --now``); the sessions
are placed from that start, so nothing depends on today's date."""

from __future__ import annotations

import email
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from caldaemon.state import State
from caldaemon.state.postgres import PostgresLocation
from tests.service.shared_world import CLINICIANS, START, practice, sessions, write_world
from tests.state.postgres import Postgres, start_postgres

DEADLINE = 150.0  # seconds to wait for what the processes should do (takeover ≤ 40 s)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    yield server
    server.stop()


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE:.0f} s: {what}")
        time.sleep(0.5)


def polled(location: PostgresLocation) -> dict[str, datetime]:
    """When each clinician's practice calendar was last read (the services' clock)."""
    state = State(location, read_only=True)
    try:
        with state.read() as tables:
            return {
                c.clinician: c.last_success
                for c in tables.calendars.all()
                if c.calendar == "practice" and c.last_success is not None
            }
    finally:
        state.close()


def holders(location: PostgresLocation) -> dict[str, str]:
    state = State(location, read_only=True)
    try:
        with state.read() as tables:
            return tables.leases.holders()
    finally:
        state.close()


def buffer_uids(root: Path, clinician: str) -> list[str]:
    path = root / clinician / "buffers.ics"
    text = path.read_text() if path.exists() else ""
    return [
        line.split(":", 1)[1].strip()
        for block in text.split("BEGIN:VEVENT")[1:]
        for line in block.splitlines()
        if line.startswith("UID:")
    ]


def delivered(root: Path) -> list[email.message.Message]:
    folder = root / "state" / "notices"
    files = [*folder.glob("new/*"), *folder.glob("cur/*")]
    return [email.message_from_bytes(path.read_bytes()) for path in files]


def test_three_instances_share_the_clinicians_and_survive_one_killed_mid_round(
    tmp_path: Path, postgres: Postgres
) -> None:
    location = postgres.location(postgres.create_database())
    config = write_world(tmp_path, location)
    command = [sys.executable, "-m", "caldaemon", "run", "--config", str(config)]
    command += ["--now", START.isoformat()]
    processes = [
        subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    try:
        wait_for("every clinician polled", lambda: set(polled(location)) == set(CLINICIANS))
        wait_for(
            "the clinicians shared by all three",
            lambda: len({h.split(":")[1] for h in holders(location).values() if h}) == 3,
        )
        # A new session for everyone: the next round writes a buffer for each clinician.
        for clinician in CLINICIANS:
            (tmp_path / clinician / "practice.ics").write_text(practice(sessions([2, 3])))
        victim = processes[0]
        mine = [c for c, h in holders(location).items() if h.split(":")[1] == str(victim.pid)]
        assert mine, "the victim holds no clinician"
        before = polled(location)
        # Killed as soon as it has begun the new round: one of its clinicians polled again.
        wait_for(
            "the victim's next round",
            lambda: any(polled(location)[c] > before[c] for c in mine),
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = max(polled(location).values())
        wait_for(
            "every clinician polled after the kill, the victim's by the others",
            lambda: all(polled(location).get(c, killed_at) > killed_at for c in CLINICIANS),
        )
        now_held = holders(location)
        assert all(h and h.split(":")[1] != str(victim.pid) for h in now_held.values())
        for clinician in CLINICIANS:
            wait_for(
                f"{clinician}'s two buffers",
                lambda c=clinician: len(buffer_uids(tmp_path, c)) >= 4,
            )
        wait_for("a notice for each clinician", lambda: len(delivered(tmp_path)) >= 6)
    finally:
        for process in processes[1:]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        exits = [process.wait(timeout=60) for process in processes[1:]]
        errors = [process.stderr.read() if process.stderr else "" for process in processes]
    assert exits == [0, 0], errors
    for clinician in CLINICIANS:
        uids = buffer_uids(tmp_path, clinician)
        # Tuesday's two sessions, day 2 and day 3: one buffer each, none twice.
        assert len(uids) == len(set(uids)) == 4, (clinician, uids)
    messages = delivered(tmp_path)
    ids = Counter(message["Message-ID"] for message in messages)
    assert ids and max(ids.values()) == 1, ids
    assert sorted(message["To"] for message in messages) == sorted(
        f"{c}@example.org" for c in CLINICIANS
    )
