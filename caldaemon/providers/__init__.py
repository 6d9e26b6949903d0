"""Calendar providers, one module each, imported only when a calendar uses them (a
check of ICS files never pays for Google's or Microsoft's client libraries)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import Provider, ProviderContext

_MODULES = {
    "ics": ("ics", "IcsProvider"),
    "google": ("google", "GoogleProvider"),
    "outlook": ("outlook", "OutlookProvider"),
    "caldav": ("caldav", "CaldavProvider"),
}


def open_provider(config: Any, context: ProviderContext) -> Provider:
    module, name = _MODULES[config.provider]
    cls = getattr(import_module(f"{__name__}.{module}"), name)
    provider: Provider = cls(config, context)
    return provider
