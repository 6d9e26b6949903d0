"""``provider: caldav``: one calendar on a CalDAV server (RFC 4791)."""

from __future__ import annotations

from typing import Literal

from caldaemon.fields import Name, SecretPath
from caldaemon.providers.settings import CalendarSettings


class CaldavCalendar(CalendarSettings):
    provider: Literal["caldav"]
    """caldav: a calendar on a CalDAV server (Nextcloud, Radicale, Fastmail, iCloud…)."""
    url: Name
    """The server's or the calendar's URL."""
    calendar: str | None = None
    """The calendar's display name on the server, or its path or URL (default: the calendar
    at url, else the first calendar found there)."""
    username: str | None = None
    """The user name to sign in with."""
    password_file: SecretPath | None = None
    """A file holding the password. A relative path is under $CREDENTIALS_DIRECTORY when set,
    else relative to this file."""
    password_env: str | None = None
    """Or an environment variable holding the password."""
