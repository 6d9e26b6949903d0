"""What every calendar entry of the config has, whatever its provider. Each provider's
``settings.py`` extends it with its own keys; the registry in :mod:`.base` names them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, Literal

from caldaemon.fields import Duration, Id, Strict

# A problem found in a calendar's raw YAML: the key path under the calendar, and a sentence.
RawProblem = tuple[tuple[str, ...], str]


class CalendarSettings(Strict):
    provider: str
    """Where the calendar lives: google, outlook, ics or caldav."""
    id: Id
    """A short name for this calendar, used by buffers_to, classification rules and messages."""
    use: Literal["sessions", "busy"] = "sessions"
    """sessions (the default): its events can be client sessions; busy: it only blocks time and
    never holds sessions."""
    timeout: Duration = timedelta(seconds=30)
    """How long one request to this calendar may take in all."""

    @classmethod
    def problems(cls, raw: Mapping[str, Any]) -> Iterator[RawProblem]:
        """Problems between keys that the schema cannot see (one key needs another)."""
        return iter(())

    @classmethod
    def read_only(cls, raw: Mapping[str, Any]) -> bool:
        """Whether a calendar written like ``raw`` can never receive buffers."""
        return False
