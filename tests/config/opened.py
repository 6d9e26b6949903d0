"""Which files a piece of code opens, seen through Python's audit hooks (PEP 578: every
``open()`` raises the ``open`` event with its path): how a test tells that a file was read
once without replacing anything inside caldaemon."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_watching: list[list[str]] = []


def _record(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _watching and isinstance(args[0], str | bytes | os.PathLike):
        for opened in _watching:
            opened.append(os.fsdecode(args[0]))


_hooked = False


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """The paths opened (by any thread) while the block runs."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_record)  # a hook cannot be removed: one for the whole session
        _hooked = True
    opened: list[str] = []
    _watching.append(opened)
    try:
        yield opened
    finally:
        _watching.remove(opened)


def times_opened(opened: list[str], path: Path) -> int:
    return sum(1 for name in opened if Path(name).resolve() == path.resolve())
