"""``caldaemon doctor`` with the state on PostgreSQL (issue 15): the database answers
read-only with the password from its file, or the check fails saying what to do, and the
password is never shown. Against a real throwaway PostgreSQL (tests/state/postgres.py;
skipped with the reason where it cannot run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caldaemon.state import State
from caldaemon.state.schema import SCHEMA_VERSION
from tests.cli.doctor_support import Setup, line
from tests.state.postgres import Postgres, start_postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    yield server
    server.stop()


def write(setup: Setup, url: str, password_file: Path) -> None:
    setup.make_state()
    (setup.root / "config.yaml").write_text(
        f"""timezone: America/Toronto
daemon: {{state_dir: state, state: "{url}", state_password_file: {password_file}}}
clinicians:
  - id: lee
    email: lee@example.org
    rules: standard
    calendars:
      - {{id: work, provider: ics, path: work.ics}}
    buffers_to: work
rule_sets:
  standard: {{}}
"""
    )


def test_a_new_database_answers_and_the_daemon_will_make_its_tables(
    tmp_path: Path, postgres: Postgres
) -> None:
    setup = Setup(tmp_path)
    write(setup, postgres.url(postgres.create_database()), postgres.password_file)
    code, lines, output = setup.doctor()
    assert code == 0, output
    assert "the daemon creates its tables" in line(lines, "state")
    assert postgres.password not in output


def test_a_database_the_daemon_made_shows_its_schema(tmp_path: Path, postgres: Postgres) -> None:
    setup = Setup(tmp_path)
    database = postgres.create_database()
    State(postgres.location(database)).close()
    write(setup, postgres.url(database), postgres.password_file)
    code, lines, output = setup.doctor()
    assert code == 0, output
    assert line(lines, "state").endswith(f"answers (schema {SCHEMA_VERSION})")
    assert "?host=" not in output  # the URL is shown without its query


def test_a_wrong_password_fails_the_state_check_without_showing_it(
    tmp_path: Path, postgres: Postgres
) -> None:
    setup = Setup(tmp_path)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password-7c1e")
    write(setup, postgres.url(postgres.create_database()), wrong)
    code, lines, output = setup.doctor()
    assert code == 2
    assert line(lines, "state").startswith("✗ state:")
    assert "daemon.state_password_file" in output
    assert "not-the-password-7c1e" not in output and postgres.password not in output
