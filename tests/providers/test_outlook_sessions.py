"""Outlook calendars share their HTTP session (issue 15): one session and one connection
pool for every calendar with the same CA and timeout, where there used to be one of each
per calendar (and, under urllib3-future, which caldaemon's CalDAV provider used to pull
in, an ``idle_conn_watch_task`` thread per pool); the mailboxes of one app share its
token."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from caldaemon.providers.base import ProviderContext
from caldaemon.providers.outlook.provider import OutlookProvider
from caldaemon.providers.outlook.settings import OutlookCalendar
from tests.fakes.microsoft import MicrosoftServer
from tests.providers.contract import TZ, WINDOW

CLIENT = "caldaemon-practice"
SECRET = "practice-app-secret"


class Practice:
    """One app registered by the practice's IT (client credentials), a mailbox per
    calendar."""

    def __init__(self, server: MicrosoftServer, root: Path) -> None:
        self.server = server
        self.root = root
        server.register_client(CLIENT, secret=SECRET)
        self.secret = root / "graph-secret"
        self.secret.write_text(SECRET + "\n")
        self.secret.chmod(0o600)
        self.providers: list[OutlookProvider] = []

    def calendar(self, timeout: timedelta = timedelta(seconds=10)) -> OutlookProvider:
        """A new mailbox and a provider on its calendar, which has listed it once."""
        user = f"c{len(self.providers):04d}@contoso.example"
        self.server.add_user(user)
        config = OutlookCalendar(
            provider="outlook",
            id="work",
            tenant=self.server.tenant,
            client_id=CLIENT,
            user=user,
            auth="client_credentials",
            client_secret_file=self.secret,
            authority=self.server.authority,
            graph_endpoint=self.server.graph_url,
            ca_file=Path(self.server.ca_path),
            timeout=timeout,
        )
        context = ProviderContext(user, TZ, self.root, frozenset(), buffers_to="work")
        provider = OutlookProvider(config, context)
        provider.changes(WINDOW, None)
        self.providers.append(provider)
        return provider

    def close(self) -> None:
        for provider in self.providers:
            provider.close()


@pytest.fixture
def practice(tmp_path: Path) -> Iterator[Practice]:
    with MicrosoftServer() as server:
        practice = Practice(server, tmp_path)
        yield practice
        practice.close()


def test_the_process_threads_do_not_grow_with_the_outlook_calendars(practice: Practice) -> None:
    before = threading.active_count()
    while len(practice.providers) < 20:
        practice.calendar()
    at_20 = threading.active_count()
    while len(practice.providers) < 200:
        practice.calendar()
    at_200 = threading.active_count()
    # One session per calendar ran a watcher thread per calendar (and the fake a handler
    # thread per kept-alive connection): 360 more threads at 200 calendars than at 20.
    # The fake's handler threads for the connections of the moment may differ by one.
    assert at_200 <= at_20 + 1
    assert at_20 - before <= 4


def test_calendars_share_a_session_per_ca_and_timeout(practice: Practice) -> None:
    first, second = practice.calendar(), practice.calendar()
    slower = practice.calendar(timeout=timedelta(seconds=30))
    assert first.session is second.session
    assert slower.session is not first.session


def test_a_closed_calendar_leaves_the_shared_session_working_for_the_others(
    practice: Practice,
) -> None:
    first, second = practice.calendar(), practice.calendar()
    first.close()
    listing = second.changes(WINDOW, None)
    assert listing.full and listing.events == ()
    assert second.session is practice.calendar().session


def test_the_shared_session_keeps_no_cookie_from_one_calendar_for_another(
    practice: Practice,
) -> None:
    session = practice.calendar().session
    # As the identity platform sets on token answers (fpc, stsservicecookie).
    for host in ("login.microsoftonline.com", "graph.microsoft.com", "127.0.0.1"):
        cookie = requests.cookies.create_cookie("fpc", "tenant-a", domain=host)
        request = urllib.request.Request(f"https://{host}/token")
        assert not session.cookies.get_policy().set_ok(cookie, request)
    assert len(session.cookies) == 0


def _token_requests(server: MicrosoftServer) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/oauth2/v2.0/token"))


def test_the_mailboxes_of_one_app_share_its_token(practice: Practice) -> None:
    for _ in range(20):
        practice.calendar()
    # An app-only token is the app's, whichever mailbox it reads: one for twenty.
    assert _token_requests(practice.server) == 1


def test_an_expired_app_token_is_replaced_once_for_all_its_mailboxes(
    practice: Practice,
) -> None:
    providers = [practice.calendar() for _ in range(20)]
    practice.server.expire_access_tokens()
    practice.server.clear_requests()
    for provider in providers:
        assert provider.changes(WINDOW, None).full
    # The first mailbox refused gets a new token; the others find it already replaced.
    assert _token_requests(practice.server) == 1


def test_another_secret_for_the_same_app_is_another_sign_in(practice: Practice) -> None:
    practice.calendar()
    practice.secret.write_text("rotated-secret\n")
    practice.server.register_client(CLIENT, secret="rotated-secret")
    practice.server.clear_requests()
    practice.calendar()
    assert _token_requests(practice.server) == 1
