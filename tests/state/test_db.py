"""The state file: private permissions, WAL, a schema version that migrates forward and
refuses a newer one with a clear message."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from caldaemon.state import SCHEMA_VERSION, State, StateError
from tests.support import NOW


def test_state_is_private_and_in_wal_mode(tmp_path):
    state = State(tmp_path / "state" / "state.sqlite3")
    with state.transaction() as tables:
        tables.problems.add("k", "m", NOW)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for path in (tmp_path / "state").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert state.journal_mode() == "wal"
    state.close()


def test_an_empty_file_is_migrated_to_the_current_schema(tmp_path):
    path = tmp_path / "state.sqlite3"
    sqlite3.connect(path).close()
    state = State(path)
    assert state.schema_version() == SCHEMA_VERSION
    assert set(state.dump()) >= {
        "calendars",
        "events",
        "buffers",
        "violations",
        "outbox",
        "problems",
    }
    state.close()
    State(path).close()  # opening again is a no-op


def test_a_state_from_a_newer_caldaemon_is_refused_clearly(tmp_path):
    path = tmp_path / "state.sqlite3"
    State(path).close()
    db = sqlite3.connect(path)  # a file as a future caldaemon would leave it
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    newer = r"state.sqlite3: written by a newer caldaemon \(schema 99\)"
    with pytest.raises(StateError, match=newer):
        State(path)


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="the state database cannot be used"):
        State(path)
