"""The base Provider's write loop: once the service is found unreachable, the remaining
writes of the cycle are not tried (each would wait out the same outage: five failed
creates once took 52 s of one cycle)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from caldaemon.errors import TransientError
from caldaemon.model import Buffer, Create, Remote, Window
from caldaemon.providers.base import Listing, Provider, ProviderContext, WriteAccess
from caldaemon.providers.memory import MemoryCalendar
from tests.support import TZ


class Unreachable(Provider):
    """A calendar whose server went down: every create fails after its own retries."""

    def __init__(self) -> None:
        config = MemoryCalendar(provider="memory", id="work", store="unused")
        super().__init__(config, ProviderContext("lee", TZ, Path("/nonexistent")))
        self.attempts = 0

    def describe(self) -> str:
        return "a calendar whose server is down"

    def changes(self, window: Window, token: str | None) -> Listing:
        raise TransientError(self.id, self.describe(), "connection refused")

    def write_access(self) -> WriteAccess:
        raise TransientError(self.id, self.describe(), "connection refused")

    def create(self, buffer: Buffer, identity: str) -> Remote:
        self.attempts += 1
        raise TransientError(self.id, self.describe(), "connection refused")


def test_after_one_write_finds_the_server_down_the_rest_are_not_tried() -> None:
    start = datetime(2026, 11, 30, 10, 50, tzinfo=TZ)
    buffers = [
        Buffer(
            "lee",
            "work",
            start + timedelta(days=d),
            start + timedelta(days=d, minutes=15),
            "Grounding time",
            f"work/s{d}",
            "high",
        )
        for d in range(5)
    ]
    provider = Unreachable()
    results = provider.apply([Create(b, b.identity) for b in buffers])
    assert provider.attempts == 1
    assert [type(r.error) for r in results] == [TransientError] * 5
