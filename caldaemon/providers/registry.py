"""The one registry of calendar providers: for each, its name in the config, the model of
its settings and where its implementation lives. The config schema, its checks and the
CLI read it; implementations are imported only when a calendar uses them.

Adding a provider: a sub-package with its settings model and its Provider class (see
:mod:`.base`), and its line in :data:`PROVIDERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from caldaemon.providers.base import Provider, ProviderContext
from caldaemon.providers.caldav.settings import CaldavCalendar
from caldaemon.providers.google.settings import GoogleCalendar
from caldaemon.providers.ics.settings import IcsCalendar
from caldaemon.providers.memory import MemoryCalendar
from caldaemon.providers.outlook.settings import OutlookCalendar
from caldaemon.providers.settings import CalendarSettings


@dataclass(frozen=True)
class ProviderKind:
    """One provider: its name in the config (``provider:``), the model of its calendar
    settings, and where its implementation lives (imported only when used)."""

    name: str
    settings: type[CalendarSettings]
    implementation: str  # "module:Class"
    # Offered to clinicians (in messages and docs); the memory provider is for tests.
    listed: bool = True

    def open(self, settings: CalendarSettings, context: ProviderContext) -> Provider:
        module, _, name = self.implementation.partition(":")
        cls = getattr(import_module(module), name)
        provider: Provider = cls(settings, context)
        return provider


PROVIDERS: dict[str, ProviderKind] = {
    kind.name: kind
    for kind in (
        ProviderKind(
            "google", GoogleCalendar, "caldaemon.providers.google.provider:GoogleProvider"
        ),
        ProviderKind(
            "outlook", OutlookCalendar, "caldaemon.providers.outlook.provider:OutlookProvider"
        ),
        ProviderKind("ics", IcsCalendar, "caldaemon.providers.ics.provider:IcsProvider"),
        ProviderKind(
            "caldav", CaldavCalendar, "caldaemon.providers.caldav.provider:CaldavProvider"
        ),
        ProviderKind(
            "memory", MemoryCalendar, "caldaemon.providers.memory:MemoryProvider", listed=False
        ),
    )
}


def open_provider(settings: CalendarSettings, context: ProviderContext) -> Provider:
    return PROVIDERS[settings.provider].open(settings, context)
