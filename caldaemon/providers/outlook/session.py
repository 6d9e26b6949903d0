"""The connection to Microsoft Graph: one HTTP session per CA and timeout, shared by
every calendar (and msal app) that uses them, always verifying with the configured CA and
never waiting without a timeout; and the per-mailbox cap on requests in flight. What is
sent over it, retried and batched is :mod:`caldaemon.providers.outlook.http`.

Reference: https://learn.microsoft.com/graph/throttling (Outlook allows an app 4
concurrent requests per mailbox).
"""

from __future__ import annotations

import http.cookiejar
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from caldaemon.providers.base import POOL_SIZE, USER_AGENT

if TYPE_CHECKING:
    from requests.sessions import _Settings

MAX_CONCURRENT_PER_MAILBOX = 4


class MailboxSlots:
    """The requests one mailbox may have in flight. A ``$batch`` takes up to 4 slots:
    Graph sends up to 4 of its items to Outlook at once, so a batch beside other requests
    would exceed the limit and meet 429 MailboxConcurrency
    (https://learn.microsoft.com/graph/json-batching, throttling-limits)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, count: int = 1) -> Iterator[None]:
        count = max(1, min(count, self.size))
        with self._changed:
            # All at once, never piecemeal: two batches holding half each would wait forever.
            self._changed.wait_for(lambda: self.free >= count)
            self.free -= count
        try:
            yield
        finally:
            with self._changed:
                self.free += count
                self._changed.notify_all()


_slots: dict[tuple[str, str], MailboxSlots] = {}
_slots_lock = threading.Lock()


def mailbox_slots(key: tuple[str, str]) -> MailboxSlots:
    """The slots shared by everything in this process that talks to one mailbox
    (``key``: authority and mailbox), whichever provider or mailer it belongs to."""
    with _slots_lock:
        if key not in _slots:
            _slots[key] = MailboxSlots(MAX_CONCURRENT_PER_MAILBOX)
        return _slots[key]


class GraphSession(requests.Session):
    """A session that always verifies with ``ca_file`` when one is configured, and never
    waits without a timeout.

    ``verify`` is passed on every request rather than set on the session: requests lets
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override ``Session.verify`` (psf/requests#3829),
    which would silently ignore the configured CA. msal gets this session as its
    ``http_client``, so sign-in and token refreshes obey the same rule."""

    def __init__(self, ca_file: Path | str | None, timeout: float) -> None:
        super().__init__()
        self.ca_file = str(ca_file) if ca_file else None
        self.timeout = timeout
        self.headers["User-Agent"] = USER_AGENT
        # requests reads the proxy variables again for every request, scanning the whole
        # environment (a fifth of an unchanged Graph poll's CPU, issue 15), and looks for
        # a ~/.netrc whose password would replace the bearer token. A running daemon's
        # environment does not change: the proxies it names for a scheme and host are
        # read once (merge_environment_settings), and no .netrc is read.
        self.trust_env = False
        self._environment_proxies: dict[tuple[str, str], dict[str, str]] = {}

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        text = url.decode() if isinstance(url, bytes) else url or ""
        parts = urlsplit(text)
        key = (parts.scheme, parts.netloc)
        found = self._environment_proxies.get(key)
        if found is None:
            found = self._environment_proxies[key] = dict(
                requests.utils.get_environ_proxies(text, no_proxy=None)
            )
        merged = {**found, **(proxies or {})}
        if verify is True or verify is None:
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
            )
        return super().merge_environment_settings(url, merged, stream, verify, cert)

    def request(  # type: ignore[override]  # requests' own signature has no *args
        self,
        method: str | bytes,
        url: str,
        *args: Any,
        **kwargs: Any,
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.ca_file is not None:
            kwargs["verify"] = self.ca_file
        return super().request(method, url, *args, **kwargs)


_sessions: weakref.WeakValueDictionary[tuple[str | None, float], GraphSession] = (
    weakref.WeakValueDictionary()
)
_sessions_lock = threading.Lock()


def shared_session(ca_file: Path | str | None, timeout: float) -> GraphSession:
    """The session every calendar with this CA and timeout uses (and its msal app), as
    long as one of them is open.

    One session per calendar meant one connection pool per calendar: 1,000 Outlook
    calendars held 1,000 connections, and under urllib3-future (installed as ``urllib3``
    by niquests, which caldaemon needed for CalDAV until issue 15, and left behind by an
    upgrade in place) ran 1,000 ``idle_conn_watch_task`` threads. Shared, the threads and
    connections follow the hosts and worker threads, not the calendars.

    Nothing of one calendar rides along to another: credentials go on each request
    (``GraphClient``, msal), never on the session, and the session keeps no cookies (the
    identity platform sets some on token answers; Graph and the token endpoint need
    none). requests does not document a Session as thread-safe (psf/requests#2766,
    closed with no known problem left); what threads share here is safe: nothing
    changes the session once it is made, urllib3's pool manager and pools lock their
    own state, and the cookie jar, which locks too, keeps nothing."""
    key = (str(ca_file) if ca_file else None, timeout)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = GraphSession(ca_file, timeout)
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            _sessions[key] = session
        return session
