"""What only a PostgreSQL state does: the password comes from its file and never shows; a
server that refuses is a clear message; instances that start together migrate once; a
database from a newer caldaemon is refused; a dropped connection is opened again; validate
refuses a password in the URL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from caldaemon.errors import ConfigError
from caldaemon.state import SCHEMA_VERSION, State, StateError
from caldaemon.state.pool import Pool, PoolExhausted
from caldaemon.state.postgres import PostgresLocation, to_psycopg, translate_ddl
from tests.state.postgres import Postgres
from tests.support import NOW, make_settings

psycopg = pytest.importorskip("psycopg")


def test_parameters_and_percent_signs_are_translated_outside_literals() -> None:
    sql = "SELECT * FROM t WHERE a=? AND b=:name AND c LIKE '50%?' AND d='it''s :x'"
    assert to_psycopg(sql) == (
        "SELECT * FROM t WHERE a=%s AND b=%(name)s AND c LIKE '50%%?' AND d='it''s :x'"
    )


def test_the_schema_is_translated_for_postgresql() -> None:
    ddl = "CREATE TABLE t (end TEXT NOT NULL, image BLOB); CREATE INDEX t_by_end ON t (end)"
    assert translate_ddl(ddl) == (
        'CREATE TABLE t ("end" TEXT COLLATE "C" NOT NULL, image BYTEA); '
        'CREATE INDEX t_by_end ON t ("end")'
    )


def test_the_password_comes_from_its_file_and_a_wrong_one_never_shows(
    postgres: Postgres, tmp_path
) -> None:
    location = postgres.location(postgres.create_database())
    State(location).close()  # the right password, from state_password_file
    wrong = tmp_path / "wrong"
    wrong.write_text("Hunter2-canary\n")
    with pytest.raises(StateError) as refused:
        State(replace(location, password_file=wrong))
    message = str(refused.value)
    assert "cannot connect" in message and "password authentication failed" in message
    assert "Hunter2-canary" not in message and postgres.password not in message
    assert message.startswith("postgresql://caldaemon@/test_")  # no query, no password


def test_the_password_can_come_from_the_environment(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = postgres.location(postgres.create_database())
    monkeypatch.setenv("CALDAEMON_TEST_STATE_PASSWORD", postgres.password)
    state = State(
        replace(location, password_file=None, password_env="CALDAEMON_TEST_STATE_PASSWORD")
    )
    assert state.schema_version() == SCHEMA_VERSION


def test_instances_starting_together_migrate_once(postgres: Postgres) -> None:
    location = postgres.location(postgres.create_database())
    with ThreadPoolExecutor(6) as pool:
        states = list(pool.map(lambda _: State(location), range(6)))
    assert {state.schema_version() for state in states} == {SCHEMA_VERSION}
    with states[0].transaction() as tables:
        tables.problems.add("k", "m", NOW)
    with states[5].read() as tables:
        assert tables.problems.keys() == ["k"]


def test_a_database_from_a_newer_caldaemon_is_refused(postgres: Postgres) -> None:
    name = postgres.create_database()
    State(postgres.location(name)).close()
    with psycopg.connect(postgres.url(name), password=postgres.password, autocommit=True) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    for read_only in (False, True):
        with pytest.raises(StateError, match=r"written by a newer caldaemon \(schema 99\)"):
            State(postgres.location(name), read_only=read_only)


def test_a_dropped_connection_is_opened_again_for_the_next_transaction(
    postgres: Postgres,
) -> None:
    name = postgres.create_database()
    state = State(postgres.location(name))
    with psycopg.connect(postgres.url(name), password=postgres.password, autocommit=True) as db:
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    with pytest.raises(StateError), state.transaction() as tables:
        tables.problems.add("lost", "m", NOW)  # the server went away under this one
    with state.transaction() as tables:
        tables.problems.add("k", "m", NOW)
    with state.read() as tables:
        assert tables.problems.keys() == ["k"]


@pytest.mark.parametrize(
    ("daemon", "says"),
    [
        ({"state": "postgresql://lee:Hunter2-canary@db/caldaemon"}, "the URL holds a password"),
        ({"state": "postgresql://lee@db/caldaemon?password=Hunter2-canary"}, "holds a password"),
        ({"state": "mysql://lee@db/caldaemon"}, "is not a postgresql:// URL"),
        ({"state_password_env": "PGPASSWORD"}, "a state password is for a PostgreSQL"),
        (
            {
                "state": "postgresql://lee@db/c",
                "state_password_env": "A",
                "state_password_file": "f",
            },
            "use one of 'state_password_file' or 'state_password_env', not both",
        ),
    ],
)
def test_validate_refuses_a_password_in_the_url_and_keys_that_do_not_fit(
    daemon: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        make_settings({}, daemon=daemon)
    message = str(refused.value)
    assert says in message and "daemon" in message and "test-config.yaml:" in message
    assert "Hunter2-canary" not in message


def test_the_state_url_and_its_password_keys_make_a_postgresql_location(tmp_path) -> None:
    settings = make_settings(
        {},
        daemon={
            "state": "postgresql://caldaemon@db.example.org/caldaemon?sslmode=verify-full",
            "state_password_env": "CALDAEMON_STATE_PASSWORD",
        },
    )
    location = settings.state_location
    assert isinstance(location, PostgresLocation) and settings.has_state
    assert location.password_env == "CALDAEMON_STATE_PASSWORD"
    assert str(location) == "postgresql://caldaemon@db.example.org/caldaemon"  # no query


def test_a_thread_reads_while_another_is_inside_a_transaction(postgres: Postgres) -> None:
    # One connection for every thread made each wait for the others' round trips (issue
    # 15); now a thread's read does not wait for another thread's open transaction.
    state = State(postgres.location(postgres.create_database()))
    with state.transaction() as tables:
        tables.problems.add("before", "m", NOW)
    inside, done = threading.Event(), threading.Event()

    def writer() -> None:
        with state.transaction() as tables:
            tables.problems.add("during", "m", NOW)
            inside.set()
            assert done.wait(30)

    def reader() -> list[str]:
        with state.read() as tables:
            return tables.problems.keys()

    with ThreadPoolExecutor(2) as pool:
        writing = pool.submit(writer)
        assert inside.wait(30)
        # Not what is uncommitted; and not after the writer (it waits for this read).
        assert pool.submit(reader).result(timeout=20) == ["before"]
        done.set()
        writing.result(timeout=30)
    with state.read() as tables:
        assert tables.problems.keys() == ["before", "during"]
    state.close()


def test_a_read_inside_a_transaction_sees_its_own_writes(postgres: Postgres) -> None:
    state = State(postgres.location(postgres.create_database()))
    with state.transaction() as tables:
        tables.problems.add("mine", "m", NOW)
        with state.read() as same:
            assert same.problems.keys() == ["mine"]
    state.close()


def test_a_thread_waits_no_longer_than_its_deadline_for_a_connection(
    postgres: Postgres,
) -> None:
    state = State(postgres.location(postgres.create_database()))
    first = state.db
    pool = Pool(first, lambda: first, lambda db: db, size=1, wait=0)
    with pool.lend(), ThreadPoolExecutor(1) as other:
        waiting = other.submit(lambda: pool.lend().__enter__())
        with pytest.raises(PoolExhausted, match="no free connection"):
            waiting.result(timeout=30)
    state.close()
