"""The state file: private permissions, WAL, a schema version that migrates forward and
refuses a newer one with a clear message."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from caldaemon.state import SCHEMA_VERSION, State, StateError
from caldaemon.state.schema import MIGRATIONS
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


def test_a_zero_length_state_file_is_refused_never_silently_started_afresh(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"")
    for read_only in (False, True):
        with pytest.raises(StateError, match="the state file is empty; move it away"):
            State(path, read_only=read_only)
    assert path.read_bytes() == b""


def test_a_new_state_file_is_created_at_the_current_schema(tmp_path):
    path = tmp_path / "state.sqlite3"
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


def test_a_full_disk_fails_the_transaction_with_a_clear_message(tmp_path):
    state = State(tmp_path / "state.sqlite3")
    state.db.execute("PRAGMA max_page_count=1")  # what a full disk looks like to SQLite
    with pytest.raises(StateError, match="the disk is full"), state.transaction() as tables:
        for n in range(200):
            tables.problems.add(f"k{n}", "m" * 500, NOW)
    state.close()


def test_a_state_that_cannot_be_written_fails_with_a_clear_message(tmp_path):
    state = State(tmp_path / "state.sqlite3")
    state.db.execute("PRAGMA query_only=1")  # as a read-only file behaves
    with pytest.raises(StateError, match="cannot be written"), state.transaction() as tables:
        tables.problems.add("k", "m", NOW)
    state.close()


def test_a_corrupt_state_is_refused_for_reading_too(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="cannot be used"):
        State(path, read_only=True)


def test_an_older_state_is_read_upgraded_in_memory_and_left_as_it_is(tmp_path):
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)  # a file as the previous caldaemon (schema 2) left it
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        + "".join(MIGRATIONS[:2])
        + "INSERT INTO meta VALUES ('schema_version', '2');"
    )
    db.commit()
    db.close()
    reader = State(path, read_only=True)
    with reader.read() as tables:
        assert tables.marks.of("lee") == {}
    reader.close()
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone() == ("2",)
