"""Privacy on every provider (DESIGN.md §7): a canary client name in the title,
description, location and attendee names of every event, on an .ics file, Google
Calendar, Outlook (Graph) and CalDAV (a real Radicale), never reaches caldaemon's state
(the SQLite file with its -wal and -shm, tokens), its logs (-vv, and Python logging in
this process), its notices (Maildir files and outbox rows, privacy: redacted by default),
the buffers it writes on each provider, or the benchmarks' output.

Four clinicians, one per provider, each with two high-intensity sessions on Monday (over
their limit of one: a notice) and one on Tuesday; cycles place buffers, then move, then
cancel sessions, so creates, updates, deletes, new and resolved notices all happen."""

from __future__ import annotations

import json
import logging
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from caldaemon.service.daemon import Daemon
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
from tests.providers.radicale_server import PASSWORD, USER, Radicale, radicale_server
from tests.reliability.worlds import (
    ROOT,
    Appointment,
    GoogleUser,
    GraphUser,
    IcsFile,
    StateView,
    at,
    caldav_yaml,
    clinician_ics_yaml,
    clinician_yaml,
    command,
    files_under,
    google_yaml,
    leaks,
    maildir_messages,
    outlook_yaml,
    sign_in_outlook,
    vevent,
    write_config,
    write_google_credentials,
)

SLOTS = [(0, "10:30"), (0, "13:30"), (1, "09:00")]


class CaldavUser:
    """The clinician's own CalDAV app: PUTs and DELETEs objects over plain HTTP."""

    def __init__(self, server: Radicale) -> None:
        self.server = server
        self.collection = server.make_calendar("Work")
        self.appointments: dict[str, Appointment] = {}

    def href(self, uid: str) -> str:
        return f"{self.collection}{uid}.ics"

    def put(self, a: Appointment) -> None:
        self.appointments[a.uid] = a
        if a.cancelled:
            self.server.delete(self.href(a.uid))
            return
        self.server.put(
            self.href(a.uid),
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
            "PRODID:-//user//app//EN\r\n" + vevent(a) + "END:VCALENDAR\r\n",
        )

    def objects(self) -> list[str]:
        return [self.server.get(h).body.decode() for h in self.server.hrefs(self.collection)]


class PrivacyWorld:
    def __init__(
        self,
        root: Path,
        google: GoogleCalendarServer,
        microsoft: MicrosoftServer,
        radicale: Radicale,
    ) -> None:
        self.root = root
        self.state_dir = root / "state"
        write_google_credentials(google, root, self.state_dir, "gale", "work")
        (root / "caldav-password").write_text(PASSWORD + "\n")
        self.gale = GoogleUser(google)
        self.otto = GraphUser(microsoft, DEFAULT_USER)
        self.cara = CaldavUser(radicale)
        self.ines = IcsFile(root / "ines-practice.ics")
        self.ines_buffers = IcsFile(root / "ines-buffers.ics")
        self.config = write_config(
            root / "config.yaml",
            [
                clinician_ics_yaml("ines", "ines-practice.ics", "ines-buffers.ics"),
                clinician_yaml("gale", [google_yaml(google)], "work"),
                clinician_yaml("otto", [outlook_yaml(microsoft)], "work"),
                clinician_yaml(
                    "cara", [caldav_yaml(radicale.base + self.cara.collection, USER)], "work"
                ),
            ],
        )
        sign_in_outlook(microsoft, self.config, "otto", "work", DEFAULT_USER)
        self.users: dict[str, Any] = {
            "ines": self.ines,
            "gale": self.gale,
            "otto": self.otto,
            "cara": self.cara,
        }
        for who in self.users:
            for number, (day, slot) in enumerate(SLOTS):
                self.put(who, Appointment(f"{who}{number}x", at(day, slot), tag="#heavy"))
        self.ines.save()

    def put(self, who: str, a: Appointment) -> None:
        user = self.users[who]
        if isinstance(user, IcsFile):
            user.appointments[a.uid] = a
            user.save()
        else:
            user.put(a)

    def change(self, kind: str) -> None:
        for who, user in self.users.items():
            first, second, _ = list(user.appointments.values())[:3]
            if kind == "move":
                self.put(who, replace(first, start=at(0, "15:00")))
            elif kind == "cancel":
                self.put(who, replace(second, cancelled=True))
            else:
                self.put(who, Appointment(f"{who}9x", at(0, "12:00"), tag="[heavy]"))

    def buffers(self) -> dict[str, list[str]]:
        """Everything caldaemon wrote on each provider, as text."""
        return {
            "ines": self.ines_buffers.caldaemon_blocks(),
            "gale": [json.dumps(e) for e in self.gale.buffers()],
            "otto": [json.dumps(e) for e in self.otto.buffers()],
            "cara": [o for o in self.cara.objects() if "X-CALDAEMON-BUFFER" in o],
        }


@pytest.fixture
def world(tmp_path: Path) -> Iterator[PrivacyWorld]:
    with (
        GoogleCalendarServer(primary_email="gale@example.org") as google,
        MicrosoftServer() as microsoft,
        radicale_server() as radicale,
    ):
        yield PrivacyWorld(tmp_path, google, microsoft, radicale)


def run_logged(world: PrivacyWorld, now: datetime) -> str:
    done = subprocess.run(
        command(world.config, now, "-vv"), capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "failed (" not in done.stdout, done.stdout
    return done.stdout + done.stderr


def test_canary_client_names_reach_no_state_log_notice_or_buffer(
    world: PrivacyWorld, caplog: pytest.LogCaptureFixture
) -> None:
    logs = run_logged(world, at(0, "07:00"))
    world.change("move")
    logs += run_logged(world, at(0, "07:05"))
    world.change("cancel")
    logs += run_logged(world, at(0, "07:10"))
    status = subprocess.run(
        [sys.executable, "-m", "caldaemon", "status", "--config", str(world.config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    logs += status.stdout + status.stderr

    # One more cycle in this process, with every logger at DEBUG; the state files are
    # read while the daemon still holds the database open (its -wal and -shm exist).
    world.change("book")
    caplog.set_level(logging.DEBUG)
    daemon = Daemon(str(world.config), clock=lambda: at(0, "07:15"))
    try:
        reports = daemon.once()
        assert [r.clinician for r in reports if r.ok] == ["ines", "gale", "otto", "cara"]
        state_files = {p: p.read_bytes() for p in files_under(world.state_dir)}
    finally:
        daemon.close()
    logged = caplog.text + "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)

    # The captures are real: every provider was read, buffers written, notices sent.
    for who in world.users:
        assert f"cycle {who}:" in logs and f"cycle {who}:" in logged
    assert "DEBUG" in logs and any(r.levelno == logging.DEBUG for r in caplog.records)
    for moves in (r"\+[1-9]\d* ~\d+ -\d+", r"\+\d+ ~[1-9]\d* -\d+", r"\+\d+ ~\d+ -[1-9]"):
        assert re.search(moves + " buffers", logs), moves  # created, moved, removed
    assert all((r.created, r.violations) == (1, 1) for r in reports), reports
    assert any(p.name == "state.sqlite3-wal" for p in state_files)
    written = world.buffers()
    assert all(len(blocks) >= 2 for blocks in written.values()), written
    state = StateView(world.state_dir / "state.sqlite3")
    outbox = state.outbox()
    notices = maildir_messages(world.state_dir)
    assert {r.clinician for r in outbox} == set(world.users)
    assert len(notices) == len(outbox) and all(r.status == "sent" for r in outbox)

    found = leaks(logs, "the -vv logs") + leaks(logged, "Python logging")
    for path, data in state_files.items():
        found += leaks(data, str(path.relative_to(world.root)))
    for path in files_under(world.state_dir):  # as left after close
        found += leaks(path.read_bytes(), str(path.relative_to(world.root)))
    for row in outbox:
        found += leaks(f"{row.subject}\n{row.text}\n{row.html}", "an outbox row")
    for name, message in notices.items():
        found += leaks(message.as_string(), f"notice {name}")
    for who, blocks in written.items():
        for block in blocks:
            found += leaks(block, f"a buffer of {who}")
    assert found == []
    # The notices say what happened without saying who.
    assert "Client details are left out of this notice on purpose" in "".join(
        m.as_string() for m in notices.values()
    )


def test_benchmark_output_names_no_event() -> None:
    """The benchmarks' generated practice holds no real-looking client names, and what
    they print is figures, never an event's title (the full runs take minutes; the
    start-up benchmark runs caldaemon check on the example calendars)."""
    from benchmarks.practice import clinician_ics

    generated = "".join(clinician_ics(index, random.Random(index))[0] for index in range(3))
    assert leaks(generated, "the generated practice") == []
    titles = set(re.findall(r"^SUMMARY:(.*?)\r?$", generated, re.M))
    for example in (ROOT / "examples").glob("*.ics"):
        titles |= set(re.findall(r"^SUMMARY:(.*?)\r?$", example.read_text(), re.M))
    assert len(titles) > 10
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "startup", "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "| benchmark | figure |" in done.stdout
    printed = done.stdout + done.stderr
    assert [t for t in titles if t.strip() and t in printed] == []
    assert leaks(printed, "the benchmark output") == []
