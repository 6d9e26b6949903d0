"""Every test here is marked ``reliability`` (seeded crashes, injected faults, canary
privacy, property tests): the slowest group. ``pytest -m "not reliability"`` skips it while
working; CI always runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.reliability)
