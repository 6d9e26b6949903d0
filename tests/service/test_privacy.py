"""A client's name in every event (title, description, location) never reaches caldaemon's
state, logs, notices or buffers."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

from tests.service.workspace import CANARY, Session, Workspace
from tests.support import TZ

MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)


def test_canary_client_name_never_leaves_the_calendar(tmp_path):
    ws = Workspace(
        tmp_path,
        sessions=[
            Session("s1@practice", MON_10),
            Session("s2@practice", MON_10 + timedelta(hours=1)),
            Session("s3@practice", MON_10 + timedelta(days=1), title=f"{CANARY} [heavy] intake"),
        ],
    )
    ws.write_config()
    ws.write_practice()
    logs = "".join(run_once(ws, f"2026-11-30T09:0{minute}") for minute in range(3))
    ws.sessions[0].start += timedelta(hours=3)  # a move: buffers and violations change
    ws.write_practice()
    logs += run_once(ws, "2026-11-30T09:10")

    assert "buffer" in logs.lower()  # the logs were really captured
    assert CANARY not in logs
    needles = [CANARY.encode(), CANARY.split()[0].encode(), b"Quixote"]
    written = [p for p in ws.state_dir.rglob("*") if p.is_file()] + [ws.buffers]
    assert any(p.suffix == ".sqlite3" for p in written)
    assert any("notices" in p.parts for p in written)
    for path in written:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} found in {path}"


def run_once(ws: Workspace, now: str) -> str:
    """`caldaemon -vv run --once` as a process; its whole output."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "caldaemon",
            "-vv",
            "run",
            "--once",
            "--config",
            str(ws.config),
            "--now",
            now,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout + run.stderr
