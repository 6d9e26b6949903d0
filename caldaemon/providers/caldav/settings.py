"""``provider: caldav``: one calendar on a CalDAV server (RFC 4791)."""

from __future__ import annotations

from typing import Literal

from caldaemon.fields import Name, SecretPath
from caldaemon.providers.settings import CalendarSettings


class CaldavCalendar(CalendarSettings):
    provider: Literal["caldav"]
    url: Name
    calendar: str | None = None
    username: str | None = None
    password_file: SecretPath | None = None
    password_env: str | None = None
