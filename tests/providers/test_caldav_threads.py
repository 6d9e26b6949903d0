"""CalDAV calendars add no thread each (issue 15). The calendars of one account share
one requests session (caldaemon.providers.caldav.http); before, each calendar had a
session of its own under niquests, and urllib3-future, which niquests runs on, started
an ``idle_conn_watch_task`` thread for each session's pool."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.providers.contract import WINDOW
from tests.providers.radicale_server import radicale_server
from tests.providers.test_contract_caldav import CaldavBackend


def test_the_process_threads_do_not_grow_with_the_caldav_calendars(tmp_path: Path) -> None:
    with radicale_server() as server:
        backend = CaldavBackend(server, tmp_path)
        providers = [backend.provider()]
        providers[0].changes(WINDOW, None)
        at_1 = threading.active_count()
        while len(providers) < 50:
            provider = backend.provider()
            provider.changes(WINDOW, None)
            providers.append(provider)
        at_50 = threading.active_count()
        for provider in providers:
            provider.close()
    # A thread per calendar made this 49 more; the server's handler threads for the
    # connections of the moment may differ by one or two.
    assert at_50 <= at_1 + 2
