"""``provider: google``: one Google calendar, through an OAuth client or a service account."""

from __future__ import annotations

from typing import Literal

from caldaemon.fields import FilePath, Name, SecretPath
from caldaemon.providers.settings import CalendarSettings


class GoogleCalendar(CalendarSettings):
    provider: Literal["google"]
    calendar: Name = "primary"
    credentials: SecretPath
    subject: str | None = None
    token: FilePath | None = None
    api_endpoint: str | None = None
