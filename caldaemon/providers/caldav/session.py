"""The caldav provider's sessions: one requests session per server account, shared by
the account's calendars (issue 15: a session per calendar was a connection pool, and
under urllib3-future a thread, per calendar)."""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from caldaemon.providers.base import POOL_SIZE, USER_AGENT

if TYPE_CHECKING:
    import requests.auth

    from caldaemon.providers.caldav.settings import CaldavCalendar


class Account:
    """What the calendars of one server account share: a session (its connection pools,
    its cookies) and the credentials, read once and read again after the server refuses
    them.

    One session per calendar meant a connection pool per calendar (issue 15); shared,
    connections follow the hosts and worker threads. requests does not document a
    Session as thread-safe (psf/requests#2766, closed with no known problem left); what
    threads share here is safe: the session is not changed once made (credentials go on
    each request, never on the session), urllib3's pools lock their own state and the
    cookie jar locks too. HTTPDigestAuth keeps its per-request state per thread."""

    def __init__(self) -> None:
        import requests.adapters  # imported at first use, as the other providers' clients

        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE)
        if _watches_idle_connections():
            adapter.poolmanager.connection_pool_kw["background_watch_delay"] = None
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.lock = threading.Lock()
        self.auth: requests.auth.AuthBase | None = None
        self.loaded = False
        weakref.finalize(self, self.session.close)


@functools.cache
def _watches_idle_connections() -> bool:
    """Whether the urllib3 under requests is urllib3-future, whose pools each start an
    ``idle_conn_watch_task`` thread unless told not to: a thread per account (issue 15).
    caldaemon no longer needs it (it came with niquests, through caldav), but pip leaves
    it installed when caldaemon is upgraded in place, and it replaces urllib3's files."""
    import urllib3

    init = urllib3.HTTPConnectionPool.__init__
    return "background_watch_delay" in inspect.signature(init).parameters


_accounts: weakref.WeakValueDictionary[tuple[str | None, ...], Account] = (
    weakref.WeakValueDictionary()
)
_accounts_lock = threading.Lock()


def account_of(config: CaldavCalendar, url: str) -> Account:
    """The account of ``config`` (server, user, where its password is kept), shared with
    every calendar of the same account for as long as one of them is open."""
    parts = urlsplit(url)
    key = (
        f"{parts.scheme}://{parts.netloc}".lower(),
        config.username,
        str(config.password_file) if config.password_file else None,
        config.password_env,
    )
    with _accounts_lock:
        account = _accounts.get(key)
        if account is None:
            account = _accounts[key] = Account()
        return account
