"""A violation read back from state is the one that was judged (schema 7): its subject and
phrase are kept, so its fingerprint is the stored one and a session's boundaries make one
line, as ``check`` words them. A state of schema 6 is upgraded with its violations; a row
recorded before keeps its stored fingerprint and stands alone until it is seen again.
On SQLite and PostgreSQL alike (``location``)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

from caldaemon.core.facts import facts
from caldaemon.model import Violation
from caldaemon.state import SCHEMA_VERSION, State
from caldaemon.state.convert import iso
from caldaemon.state.db import Location
from caldaemon.state.dialect import Connection, SqliteConnection
from caldaemon.state.postgres import PostgresLocation, connect
from caldaemon.state.schema import MIGRATIONS
from tests.support import MONDAY, NOW, TZ, evaluate, make_settings, session

RULES = {
    "working_hours": {"mon-fri": "09:00-17:00"},
    "level_limits": {"high": {"max_per_day": 1, "latest_start": "15:00"}},
}
MERGED = (
    "Tue 1 Dec, 16:30–17:20: outside your hours (09:00–17:00) and after 15:00 for "
    "high-intensity work"
)


def late_session_violations() -> list[Violation]:
    """A high-intensity session outside hours and after 15:00: two boundaries, one line."""
    late = session(MONDAY + timedelta(days=1), "16:30", "17:20", "#heavy")
    found = evaluate(make_settings(RULES), [late]).violations
    assert sorted(v.rule for v in found) == ["level_limits.latest_start", "working_hours"]
    assert [f.line for f in facts(found, TZ)] == [MERGED]
    return found


def test_a_recorded_violation_reads_back_with_its_fingerprint_subject_and_phrase(
    location: Location,
) -> None:
    judged = late_session_violations()
    state = State(location)
    with state.transaction() as tables:
        for violation in judged:
            tables.violations.seen(violation, NOW)
    with state.read() as tables:
        records = sorted(tables.violations.all_open(), key=lambda r: r.violation.rule)
        also = tables.violations.open_from("lee", MONDAY)
    state.close()
    by_rule = {v.rule: v for v in judged}
    assert [r.violation.rule for r in records] == sorted(by_rule)
    for record in records:
        violation = by_rule[record.violation.rule]
        assert record.fingerprint == violation.fingerprint
        assert record.violation.fingerprint == record.fingerprint
        assert (record.violation.subject, record.violation.phrase) == (
            violation.subject,
            violation.phrase,
        )
        assert record.violation.subject.startswith("work/") and record.violation.phrase
    read_back = [r.violation for r in also]
    assert [f.line for f in facts(read_back, TZ)] == [MERGED]


def test_a_phrase_that_changes_is_rewritten_on_the_same_row(location: Location) -> None:
    # A count that grows is the same violation (its subject is the day): the row is kept
    # and says the new count.
    heavy = [
        session(MONDAY, f"{hour}:00", f"{hour}:50", "#heavy", id=f"h{hour}") for hour in (9, 11)
    ]
    [two] = evaluate(make_settings(RULES), heavy).violations
    third = session(MONDAY, "13:00", "13:50", "#heavy", id="h13")
    [three] = evaluate(make_settings(RULES), [*heavy, third]).violations
    assert two.fingerprint == three.fingerprint and two.phrase != three.phrase
    state = State(location)
    with state.transaction() as tables:
        tables.violations.seen(two, NOW)
        tables.violations.seen(three, NOW + timedelta(minutes=5))
    with state.read() as tables:
        [record] = tables.violations.all_open()
    state.close()
    assert record.violation.phrase == three.phrase and record.first_seen == NOW


def _connect(location: Location) -> Connection:
    if isinstance(location, PostgresLocation):
        return connect(location, read_only=False)
    location.parent.mkdir(parents=True, exist_ok=True)
    return SqliteConnection(sqlite3.connect(location))


def _schema_6_with(location: Location, violations: list[Violation], notified: bool) -> None:
    """A state as caldaemon left it at schema 6, its violations written as it wrote them
    (the fingerprint kept, the subject and phrase not)."""
    db = _connect(location)
    db.begin()
    db.run_ddl("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    for migration in MIGRATIONS[:6]:
        for statement in migration.split(";"):
            if statement.strip():
                db.run_ddl(statement)
    db.execute("INSERT INTO meta VALUES ('schema_version', '6')")
    for v in violations:
        db.execute(
            'INSERT INTO violations (clinician, fingerprint, rule, severity, date, start, "end", '
            "message, events, level, kind, first_seen, last_seen, last_notified, accepted) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                v.clinician,
                v.fingerprint,
                v.rule,
                v.severity.value,
                v.date.isoformat(),
                iso(v.start),
                iso(v.end),
                v.message,
                json.dumps(list(v.events)),
                v.level,
                v.kind,
                iso(NOW),
                iso(NOW),
                iso(NOW) if notified else None,
            ),
        )
    db.commit()
    db.close()


def test_a_state_of_schema_6_is_upgraded_and_its_old_rows_stand_alone_keeping_their_fingerprint(
    location: Location,
) -> None:
    judged = late_session_violations()
    _schema_6_with(location, judged, notified=False)
    state = State(location)
    assert state.schema_version() == SCHEMA_VERSION >= 7
    with state.read() as tables:
        old = tables.violations.open_from("lee", MONDAY)
    assert {r.fingerprint for r in old} == {v.fingerprint for v in judged}
    for record in old:
        assert record.violation.fingerprint == record.fingerprint
        assert (record.violation.subject, record.violation.phrase) == ("", "")
    # Their session unknown, each says its own message (caldaemon.core.facts, 016782a).
    lines = [f.line for f in facts([r.violation for r in old], TZ)]
    assert sorted(lines) == sorted(v.message for v in judged)

    # Seen again by the next cycle: the same rows, now with what they are about.
    with state.transaction() as tables:
        for violation in judged:
            tables.violations.seen(violation, NOW + timedelta(minutes=5))
    with state.read() as tables:
        again = tables.violations.open_from("lee", MONDAY)
    state.close()
    assert {r.fingerprint for r in again} == {v.fingerprint for v in judged}
    assert {r.first_seen for r in again} == {NOW}
    assert all(r.violation.subject for r in again)
    assert [f.line for f in facts([r.violation for r in again], TZ)] == [MERGED]


def test_an_old_row_that_resolved_before_the_upgrade_is_still_announced_by_its_fingerprint(
    location: Location,
) -> None:
    judged = late_session_violations()
    _schema_6_with(location, judged, notified=True)
    state = State(location)
    resolved_at = NOW + timedelta(minutes=5)
    with state.transaction() as tables:
        tables.violations.resolve("lee", [v.fingerprint for v in judged], resolved_at)
    with state.read() as tables:
        resolved = tables.violations.resolved_unannounced("lee", NOW, MONDAY)
    with state.transaction() as tables:
        tables.violations.notified(
            "lee", resolved_at, resolutions=[r.fingerprint for r in resolved]
        )
    with state.read() as tables:
        assert tables.violations.resolved_unannounced("lee", NOW, MONDAY) == []
    state.close()
    assert sorted(r.violation.fingerprint for r in resolved) == sorted(
        v.fingerprint for v in judged
    )


def test_a_reader_of_a_state_of_schema_6_sees_its_violations_and_leaves_it_at_6(
    location: Location,
) -> None:
    # ``status`` before the daemon has upgraded the state: an upgraded copy is read.
    judged = late_session_violations()
    _schema_6_with(location, judged, notified=False)
    reader = State(location, read_only=True)
    with reader.read() as tables:
        old = tables.violations.all_open()
    reader.close()
    assert sorted(r.violation.fingerprint for r in old) == sorted(v.fingerprint for v in judged)
    again = State(location, read_only=True)
    assert again.found_version == 6
    again.close()
