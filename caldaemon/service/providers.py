"""Provider instances for the daemon and the commands: what a provider gets from around it
(:class:`~caldaemon.providers.base.ProviderContext`), and a pool that keeps one instance per
calendar across cycles (connections, token caches)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.providers.base import Provider, ProviderContext
from caldaemon.providers.registry import open_provider


def provider_context(
    settings: Settings,
    clinician: ClinicianSettings,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> ProviderContext:
    """What a provider needs; ``clock`` is the service's (one clock for everything, so a
    test that moves the daemon's time moves the providers' too)."""
    return ProviderContext(
        clinician=clinician.id,
        tz=clinician.tz,
        state_dir=settings.daemon.state_dir,
        self_addresses=frozenset([clinician.email] if clinician.email else []),
        buffers_to=clinician.buffers_to,
        clock=clock,
        sleep=sleep,
    )


class Providers:
    """Provider instances kept across cycles, per calendar."""

    def __init__(
        self,
        settings: Settings,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self._open: dict[tuple[str, str], Provider] = {}
        self._lock = threading.Lock()

    def get(self, clinician: ClinicianSettings, calendar_id: str) -> Provider:
        key = (clinician.id, calendar_id)
        with self._lock:
            if key not in self._open:
                self._open[key] = open_provider(
                    clinician.calendar(calendar_id),
                    provider_context(self.settings, clinician, self.sleep, self.clock),
                )
            return self._open[key]

    def close(self) -> None:
        with self._lock:
            for provider in self._open.values():
                provider.close()
            self._open.clear()
