"""``provider: google``: one Google calendar, through an OAuth client or a service account."""

from __future__ import annotations

from typing import Literal

from caldaemon.fields import FilePath, Name, SecretPath
from caldaemon.providers.settings import CalendarSettings


class GoogleCalendar(CalendarSettings):
    provider: Literal["google"]
    """google: a Google calendar."""
    calendar: Name = "primary"
    """The calendar's id (primary: your main calendar)."""
    credentials: SecretPath
    """The OAuth client file (from the Google Cloud console; sign in once with `caldaemon auth
    google`) or a service account's key file. A relative path is under $CREDENTIALS_DIRECTORY
    when set, else relative to this file."""
    subject: str | None = None
    """With a service account: the user it acts for (domain-wide delegation)."""
    token: FilePath | None = None
    """Where the sign-in is kept (default: under state_dir/tokens)."""
    api_endpoint: str | None = None
    """Another server that speaks the Google Calendar API (default: Google's)."""
