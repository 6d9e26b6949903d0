"""One process per state folder: a second ``run`` exits 2 naming the holder; read-only
commands never need the lock; a crashed holder leaves nothing that blocks a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from caldaemon.state.lock import StateLock, StateLocked
from tests.service.workspace import Session, Workspace
from tests.support import TZ


def test_a_second_holder_in_this_process_is_refused_naming_the_first(tmp_path: Path) -> None:
    first = StateLock(tmp_path)
    first.acquire()
    with pytest.raises(StateLocked, match=rf"pid {os.getpid()}"):
        StateLock(tmp_path).acquire()
    first.release()
    again = StateLock(tmp_path)
    again.acquire()  # released: free again
    again.release()


def run(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "caldaemon", *args, "--config", str(ws.config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "America/Toronto"},
        check=False,
    )


def test_a_second_run_exits_2_naming_the_holder_and_read_only_commands_still_work(
    tmp_path: Path,
) -> None:
    from datetime import datetime

    ws = Workspace(tmp_path, sessions=[Session("s1", datetime(2026, 11, 30, 10, 0, tzinfo=TZ))])
    ws.write_config()
    ws.write_practice()
    holder = StateLock(ws.state_dir)
    holder.acquire()
    try:
        refused = run(ws, "run", "--once", "--now", "2026-11-30T08:00")
        assert refused.returncode == 2, refused.stderr
        assert f"in use by another caldaemon (pid {os.getpid()})" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert not ws.buffers.exists()  # it wrote nothing
        checked = run(ws, "check", "--now", "2026-11-30T08:00")
        assert checked.returncode in (0, 1), checked.stderr
        assert run(ws, "status").returncode == 0
        dry = run(ws, "run", "--once", "--dry-run", "--now", "2026-11-30T08:00")
        assert dry.returncode == 0, dry.stderr
    finally:
        holder.release()
    assert run(ws, "run", "--once", "--now", "2026-11-30T08:00").returncode == 0


def test_a_holder_killed_without_cleanup_does_not_block_the_next_run(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from caldaemon.state.lock import "
            "StateLock; StateLock(Path(sys.argv[1])).acquire(); print('held', flush=True); "
            "sys.stdin.read()",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(StateLocked):
        StateLock(tmp_path).acquire()
    holder.kill()
    holder.wait(timeout=30)
    lock = StateLock(tmp_path)
    lock.acquire()  # the lock file is still there; the lock is not
    lock.release()
