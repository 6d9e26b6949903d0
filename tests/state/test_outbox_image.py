"""The outbox carries a notice's picture (state schema 5, for the weekly report): kept
while the notice waits, dropped with its text once delivered; a state of schema 4 is
upgraded with its queued notices intact."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from caldaemon.state import SCHEMA_VERSION, State
from caldaemon.state.schema import MIGRATIONS

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def queue(state: State, message_id: str, image: bytes | None) -> None:
    with state.transaction() as tables:
        tables.outbox.queue(
            message_id=message_id,
            clinician="lee",
            recipient="lee@example.org",
            subject="caldaemon: your week of Mon 30 Nov (everything fits)",
            text="text",
            html="<p>html</p>",
            now=NOW,
            not_before=NOW,
            image=image,
        )


def test_a_picture_waits_with_its_notice_and_goes_once_it_is_sent(tmp_path: Path) -> None:
    state = State(tmp_path / "state.sqlite3")
    queue(state, "<week@caldaemon>", PNG)
    queue(state, "<week@caldaemon>", b"another picture")  # the same Message-ID: ignored
    with state.read() as tables:
        [due] = tables.outbox.due(NOW)
        assert tables.outbox.has("<week@caldaemon>")
        assert not tables.outbox.has("<other@caldaemon>")
    assert due.image == PNG
    with state.transaction() as tables:
        tables.outbox.sent("<week@caldaemon>", NOW + timedelta(minutes=1))
    with state.read() as tables:
        [sent] = tables.outbox.all()
    assert sent.image is None and sent.text == "" and sent.status == "sent"
    state.close()


def test_a_state_of_schema_4_is_upgraded_with_its_queued_notices(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    for migration in MIGRATIONS[:4]:
        db.executescript(migration)
    db.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    db.execute(
        "INSERT INTO outbox (message_id, clinician, recipient, subject, text, html, created, "
        "not_before) VALUES ('<old@caldaemon>', 'lee', 'lee@example.org', 's', 't', 'h', "
        "'2026-11-30T11:00:00+00:00', '2026-11-30T11:00:00+00:00')"
    )
    db.commit()
    db.close()
    state = State(path)
    assert state.schema_version() == SCHEMA_VERSION >= 5
    with state.read() as tables:
        [old] = tables.outbox.due(NOW)
    assert (old.message_id, old.text, old.image) == ("<old@caldaemon>", "t", None)
    state.close()
