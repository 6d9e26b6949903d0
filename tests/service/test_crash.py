"""The process dies at chosen points of a cycle (as SIGKILL would: no cleanup); a rerun
converges with no duplicate buffer and no lost notice."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from tests import state_view
from tests.service.workspace import Session, Workspace
from tests.support import TZ

MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
POINTS = ["before-write", "after-write", "after-commit", "before-delivery", "after-send"]


def run_once(ws: Workspace, now: str, failpoint: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CALDAEMON_FAILPOINT"}
    if failpoint:
        env["CALDAEMON_FAILPOINT"] = failpoint
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "caldaemon",
            "run",
            "--once",
            "--config",
            str(ws.config),
            "--now",
            now,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def notices(ws: Workspace) -> list[email.message.Message]:
    folder = ws.state_dir / "notices"
    files = (
        [p for sub in ("new", "cur") for p in (folder / sub).glob("*")] if folder.exists() else []
    )
    return [email.message_from_bytes(p.read_bytes()) for p in files]


@pytest.mark.parametrize("failpoint", POINTS)
def test_a_rerun_after_a_crash_converges(tmp_path, failpoint):
    ws = Workspace(
        tmp_path,
        sessions=[
            Session("s1@practice", MON_10),
            Session("s2@practice", MON_10 + timedelta(hours=2)),
            Session("s3@practice", MON_10 + timedelta(days=1)),
        ],
    )
    ws.write_config()
    ws.write_practice()
    crashed = run_once(ws, "2026-11-30T08:00", failpoint)
    assert crashed.returncode == 137, crashed.stderr
    again = run_once(ws, "2026-11-30T08:01")
    assert again.returncode == 0, again.stderr

    uids = re.findall(r"^UID:(caldaemon-.*)$", ws.buffers.read_text(), re.M)
    assert len(uids) == 3 and len(set(uids)) == 3  # no duplicate buffer
    with state_view.opened(ws.state_dir) as state, state.read() as tables:
        assert tables.buffers.counts() == {"active": 3}
        assert state.integrity() == "ok"
        assert not set(tables.outbox.counts()) - {"sent"}

    # Two heavy sessions on Monday break max_per_day: 1; the notice arrives exactly once.
    delivered = notices(ws)
    assert len(delivered) == 1
    assert "2 high-intensity sessions on Mon 30 Nov; your limit is 1" in delivered[0].as_string()

    third = run_once(ws, "2026-11-30T08:02")
    assert third.returncode == 0 and len(notices(ws)) == 1
    assert len(re.findall(r"^UID:caldaemon-", ws.buffers.read_text(), re.M)) == 3
