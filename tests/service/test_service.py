"""`caldaemon run` as a real process: sd_notify READY/STATUS, reload with a good and a
broken config, SIGTERM in the middle of a cycle."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime

import pytest

from tests import state_view
from tests.service.workspace import Session, Workspace
from tests.support import TZ

MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)


class NotifySocket:
    """What systemd would receive on $NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="cdn")  # AF_UNIX paths must stay short
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(30)
        self.seen: list[str] = []

    def wait_for(self, predicate: Callable[[str], bool]) -> str:
        while True:
            message = self.sock.recv(4096).decode()
            self.seen.append(message)
            if predicate(message):
                return message

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def ws(tmp_path):
    w = Workspace(tmp_path, sessions=[Session("s1@practice", MON_10)])
    w.write_config()
    w.write_practice()
    return w


def start(ws: Workspace, notify: NotifySocket) -> subprocess.Popen[str]:
    env = {**os.environ, "NOTIFY_SOCKET": notify.path}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caldaemon",
            "-v",
            "run",
            "--config",
            str(ws.config),
            "--now",
            "2026-11-30T08:00",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ready_reload_good_and_broken_config_then_sigterm_exits_0(ws):
    notify = NotifySocket()
    proc = start(ws, notify)
    try:
        ready = notify.wait_for(lambda m: "READY=1" in m)
        assert "STATUS=1 clinician, last cycle" in ready

        good = ws.config.read_text()
        ws.config.write_text(good.replace("rules: standard", "rules: standrd"))
        proc.send_signal(signal.SIGHUP)
        notify.wait_for(lambda m: "RELOADING=1" in m)
        notify.wait_for(lambda m: "READY=1" in m)
        assert proc.poll() is None  # the old config keeps running

        ws.config.write_text(good.replace("name: Dr. Lee", "name: Dr. Sam Lee"))
        proc.send_signal(signal.SIGHUP)
        notify.wait_for(lambda m: "RELOADING=1" in m)
        notify.wait_for(lambda m: "READY=1" in m)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    log = proc.stderr.read()
    assert "the new config is not valid; still running the previous one" in log
    assert "no rule set named 'standrd'" in log
    assert "config reloaded: 1 clinician(s)" in log
    assert "Traceback" not in log
    # The broken config was also reported to the admin, once.
    with state_view.tables(ws.state_dir) as tables:
        subjects = [notice.subject for notice in tables.outbox.all()]
    assert sum("config" in s.lower() for s in subjects) == 1


class _SlowFeed(http.server.BaseHTTPRequestHandler):
    """A feed that answers only when the test lets it: a cycle stuck in the middle."""

    arrived = threading.Event()
    release = threading.Event()
    body = b""

    def do_GET(self) -> None:
        type(self).arrived.set()
        type(self).release.wait(30)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_sigterm_mid_cycle_finishes_the_cycle_then_exits_0(ws):
    _SlowFeed.body = ws.practice.read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowFeed)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/lee.ics"
    ws.config.write_text(
        ws.config.read_text().replace(
            "{id: practice, provider: ics, path: practice.ics}",
            f"{{id: practice, provider: ics, url: '{url}'}}",
        )
    )
    notify = NotifySocket()
    proc = start(ws, notify)
    try:
        notify.wait_for(lambda m: "READY=1" in m)
        assert _SlowFeed.arrived.wait(30)
        proc.send_signal(signal.SIGTERM)
        notify.wait_for(lambda m: "STOPPING=1" in m)
        _SlowFeed.release.set()
        assert proc.wait(timeout=30) == 0
    finally:
        _SlowFeed.release.set()
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
        notify.close()
    with state_view.tables(ws.state_dir) as tables:
        practice = tables.calendars.get("lee", "practice")
        buffers = tables.buffers.counts()
    assert practice is not None and practice.last_success is not None  # completed, not cut off
    assert buffers.get("active") == 1
