"""What the outlook provider's tests share: providers on one signed-in calendar of the local
identity + Graph server, their sleeps recorded and their clock set by the test, and the
user's events seeded through the server's own API."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from caldaemon.model import Buffer
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.outlook.provider import OutlookProvider
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer, RecordedRequest
from tests.providers.contract import MONDAY_10, SELF, TZ, buffer
from tests.providers.test_contract_outlook import outlook_config, sign_in

# Monday 30 Nov 2026, 08:00, the provider clock's start: before the test buffers (a buffer
# whose slot has passed is history to a create, not a lost answer to adopt).
CLOCK_START = datetime(2026, 11, 30, 8, tzinfo=TZ).timestamp()


class Harness:
    """Providers on one signed-in calendar, with their sleeps recorded and one clock."""

    def __init__(self, server: MicrosoftServer, state_dir: Path, **config: Any) -> None:
        self.server = server
        self.state_dir = state_dir
        self.config = outlook_config(server, **config)
        self.sleeps: list[float] = []
        self.opened: list[OutlookProvider] = []
        self.now = CLOCK_START

    def sign_in(self, scopes: list[str] | None = None) -> Path:
        return sign_in(self.server, self.config, self.state_dir, scopes=scopes)

    def provider(self) -> OutlookProvider:
        context = ProviderContext(
            "lee",
            TZ,
            self.state_dir,
            frozenset({SELF}),
            buffers_to="work",
            clock=lambda: self.now,
            sleep=self.sleeps.append,
        )
        provider = OutlookProvider(self.config, context)
        self.opened.append(provider)
        return provider

    def advance(self, delta: timedelta) -> None:
        self.now += delta.total_seconds()

    def graph_requests(
        self, method: str | None = None, *, parts: bool = False
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.server.requests
            if r.path.startswith("/v1.0")
            and r.batch_part == parts
            and (method is None or r.method == method)
        ]

    def close(self) -> None:
        for provider in self.opened:
            provider.close()


def seed(
    server: MicrosoftServer, count: int, *, calendar: str | None = None, day: int = 1
) -> list[dict[str, Any]]:
    """``count`` sessions of 50 minutes on the hour from 09:00 UTC, on December ``day``
    (several days when there are more than fit in one)."""
    events = []
    for n in range(count):
        when = f"2026-12-{day + n // 12:02d}T{9 + n % 12:02d}"
        events.append(
            server.put_event(
                DEFAULT_USER,
                calendar,
                {
                    "subject": f"Session {n} #heavy",
                    "start": {"dateTime": f"{when}:00:00", "timeZone": "UTC"},
                    "end": {"dateTime": f"{when}:50:00", "timeZone": "UTC"},
                },
            )
        )
    return events


def buffers(count: int) -> list[Buffer]:
    return [buffer(start=MONDAY_10 + timedelta(hours=n), after=f"work/s{n}") for n in range(count)]


def stored(server: MicrosoftServer, event_id: str) -> dict[str, Any]:
    [event] = [e for e in server.events(DEFAULT_USER) if e["id"] == event_id]
    return event
