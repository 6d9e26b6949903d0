"""Reading a state folder in tests, through the state package's own methods (never SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from caldaemon.state import State, Tables


@contextmanager
def opened(state_dir: Path) -> Iterator[State]:
    """The state of ``state_dir``, opened read-only beside whatever else has it open."""
    state = State(Path(state_dir) / "state.sqlite3", read_only=True)
    try:
        yield state
    finally:
        state.close()


@contextmanager
def tables(state_dir: Path) -> Iterator[Tables]:
    with opened(state_dir) as state, state.read() as found:
        yield found


def dump_text(state_dir: Path) -> str:
    """Everything the state holds, as one string (to look for what must not be there)."""
    with opened(state_dir) as state:
        return repr(state.dump())
