"""CalDAV calendars add no thread each (issue 15). The calendars of one account share
one requests session (caldaemon/providers/caldav/session.py); before, each calendar had
a session of its own under niquests, and urllib3-future, which niquests runs on, started
an ``idle_conn_watch_task`` thread for each session's pool. caldaemon no longer installs
urllib3-future, but an install upgraded in place keeps it (and it stands in for urllib3
under requests): with 50 accounts, this checks that their sessions start no watcher
either wherever it is still installed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.providers.contract import WINDOW
from tests.providers.radicale_server import PASSWORD, radicale_server
from tests.providers.test_contract_caldav import CaldavBackend


@pytest.mark.parametrize("accounts", [1, 50])
def test_the_process_threads_do_not_grow_with_the_caldav_calendars(
    tmp_path: Path, accounts: int
) -> None:
    with radicale_server() as server:
        backend = CaldavBackend(server, tmp_path)
        providers = []
        for number in range(50):
            # Another password file is another account (another session).
            secret = tmp_path / f"password-{number % accounts}"
            secret.write_text(PASSWORD)
            collection = server.make_calendar(f"Calendar {number}")
            provider = backend.provider(url=server.base + collection, password_file=secret)
            provider.changes(WINDOW, None)
            providers.append(provider)
            if number == 0:
                at_1 = threading.active_count()
        at_50 = threading.active_count()
        for provider in providers:
            provider.close()
    # A thread per calendar or account made this 49 more; the server's handler threads
    # for the connections of the moment may differ by one or two.
    assert at_50 <= at_1 + 2
