"""The provider contract against the memory provider: a calendar held in the process,
changed by its user through the store, never through the provider."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from caldaemon.model import Event
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.memory import MemoryCalendar, MemoryProvider, MemoryStore
from tests.providers.contract import TZ, ProviderContract, UserEvent

_names = count()


class MemoryBackend:
    read_only = False

    def __init__(self) -> None:
        self.name = f"contract-{next(_names)}"
        self.store = MemoryStore.named(self.name)

    def provider(self) -> MemoryProvider:
        config = MemoryCalendar(provider="memory", id="work", store=self.name)
        context = ProviderContext("lee", TZ, Path("/nonexistent"), buffers_to="work")
        return MemoryProvider(config, context)

    def add(self, event: UserEvent) -> str:
        self.store.put(
            Event(
                calendar="work",
                id=event.uid,
                start=event.start,
                end=event.end,
                all_day=event.all_day,
                title=event.title,
                categories=event.categories,
                cancelled=event.cancelled,
                busy=not event.transparent,
                declined=event.declined,
            )
        )
        return event.uid

    def change(self, event_id: str, event: UserEvent) -> None:
        self.add(dataclasses.replace(event, uid=event_id))

    def remove(self, event_id: str) -> None:
        self.store.remove(event_id)

    def edit_title(self, event_id: str, title: str) -> None:
        event = self.store.get(event_id)
        assert event is not None
        self.store.put(dataclasses.replace(event, title=title))

    def count_with_title(self, title: str) -> int:
        return sum(e.title == title for e in self.store.all())


class TestMemory(ProviderContract):
    @pytest.fixture
    def backend(self) -> Iterator[MemoryBackend]:
        backend = MemoryBackend()
        yield backend
        MemoryStore.forget(backend.name)
