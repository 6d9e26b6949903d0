"""``caldaemon run --once`` with a buffers_to calendar the account may only read (Google
accessRole reader, Graph canEdit false), against the fakes, which refuse such writes as
the real services do (403 requiredAccessLevel, 403 ErrorAccessDenied). caldaemon fails
closed: it exits 2 with a message that names the calendar and what to do, without a
traceback; the calendar keeps its contents; and it does not hammer the service (one
batch of writes per run, not one retry after another)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from caldaemon.cli import main
from tests.cli.doctor_support import CANARY
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
from tests.providers.contract import SELF
from tests.providers.test_contract_google import write_client, write_token
from tests.providers.test_contract_outlook import outlook_config, sign_in

NOW = "2026-11-30T08:00:00-05:00"  # a Monday; the sessions are on Tuesday


def config(root: Path, calendar: str) -> Path:
    path = root / "config.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        timezone: America/Toronto
        daemon: {{state_dir: state, horizon: 7d}}
        clinicians:
          - id: lee
            email: lee@example.org
            rules: standard
            calendars:
              - {calendar}
            buffers_to: work
        rule_sets:
          standard:
            working_hours: {{mon-fri: "09:00-17:00"}}
            buffers: [{{after: high, length: 15m, title: Grounding time}}]
        notices: {{quiet_outside_working_hours: false}}
        """)
    )
    return path


def state(root: Path) -> Path:
    (root / "state" / "tokens").mkdir(parents=True, mode=0o700)
    (root / "state").chmod(0o700)
    return root / "state"


def run_once(path: Path) -> Result:
    result = CliRunner().invoke(main, ["run", "--once", "--config", str(path), "--now", NOW])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


# -- Google ----------------------------------------------------------------------------------


@pytest.fixture
def google() -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer(primary_email=SELF) as server:
        yield server


def google_setup(root: Path, server: GoogleCalendarServer) -> Path:
    write_client(root / "google-client.json", server)
    write_token(
        state(root) / "tokens" / "lee-work.google.json", server, server.issue_refresh_token()
    )
    for number, hour in ((1, 10), (2, 13)):
        server.put_event(
            "primary",
            {
                "id": f"session{number}",
                "summary": f"Session with {CANARY} #heavy",
                "start": {"dateTime": f"2026-12-01T{hour}:00:00-05:00"},
                "end": {"dateTime": f"2026-12-01T{hour}:50:00-05:00"},
            },
        )
    return config(
        root,
        "{id: work, provider: google, credentials: google-client.json, "
        f'api_endpoint: "{server.url}", timeout: 5s}}',
    )


def google_batches(server: GoogleCalendarServer) -> int:
    return sum(1 for r in server.requests if r.path == "/batch/calendar/v3")


@pytest.mark.parametrize("role", ["reader", "freeBusyReader"])
def test_a_google_buffers_to_shared_read_only_fails_closed(
    tmp_path: Path, google: GoogleCalendarServer, role: str
) -> None:
    path = google_setup(tmp_path, google)
    google.share("primary", role)
    before = google.events("primary")
    first = run_once(path)
    assert first.exit_code == 2
    assert "Traceback" not in first.output and CANARY not in first.output
    assert "1 failed (Google Calendar 'primary'" in first.output
    assert "this account may only read calendar 'primary'" in first.output
    assert "share it with 'Make changes to events'" in first.output
    assert google.events("primary") == before
    # Two buffers wanted, one batch sent; the calendar is then paused (tried again in an
    # hour), so a second run at the same time sends nothing.
    assert google_batches(google) == 1
    again = run_once(path)
    assert again.exit_code == 2 and "1 failed" in again.output
    assert google_batches(google) == 1
    assert google.events("primary") == before


def test_the_same_google_calendar_shared_to_write_gets_its_buffers(
    tmp_path: Path, google: GoogleCalendarServer
) -> None:
    path = google_setup(tmp_path, google)
    google.share("primary", "writer")
    result = run_once(path)
    assert result.exit_code == 0, result.output
    assert len(google.events("primary")) == 4


# -- Outlook ---------------------------------------------------------------------------------


@pytest.fixture
def microsoft() -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as server:
        yield server


def outlook_setup(root: Path, server: MicrosoftServer, *, can_edit: bool) -> tuple[Path, str]:
    shared = server.add_calendar(DEFAULT_USER, "Shared", can_edit=can_edit)
    for hour in (10, 13):
        server.put_event(
            DEFAULT_USER,
            shared,
            {
                "subject": f"Session with {CANARY} #heavy",
                "start": {"dateTime": f"2026-12-01T{hour}:00:00", "timeZone": "America/Toronto"},
                "end": {"dateTime": f"2026-12-01T{hour}:50:00", "timeZone": "America/Toronto"},
            },
        )
    sign_in(server, outlook_config(server), state(root) / "tokens" / "..")
    entry = (
        f"{{id: work, provider: outlook, tenant: {server.tenant}, "
        f"client_id: {outlook_config(server).client_id}, calendar: Shared, "
        f'authority: "{server.authority}", graph_endpoint: "{server.graph_url}", '
        f'ca_file: "{server.ca_path}", timeout: 10s}}'
    )
    return config(root, entry), shared


def graph_batches(server: MicrosoftServer) -> int:
    return sum(1 for r in server.requests if r.path == "/v1.0/$batch")


def test_an_outlook_buffers_to_shared_to_view_fails_closed(
    tmp_path: Path, microsoft: MicrosoftServer
) -> None:
    path, shared = outlook_setup(tmp_path, microsoft, can_edit=False)
    before = microsoft.events(DEFAULT_USER, shared)
    first = run_once(path)
    assert first.exit_code == 2
    assert "Traceback" not in first.output and CANARY not in first.output
    assert "1 failed (Outlook calendar 'Shared'" in first.output
    assert "this account may not change the calendar" in first.output
    assert "403 ErrorAccessDenied" in first.output
    assert microsoft.events(DEFAULT_USER, shared) == before
    assert graph_batches(microsoft) == 1  # two creates in one $batch; then paused
    again = run_once(path)
    assert again.exit_code == 2 and "1 failed" in again.output
    assert graph_batches(microsoft) == 1
    assert microsoft.events(DEFAULT_USER, shared) == before


def test_the_same_outlook_calendar_shared_to_edit_gets_its_buffers(
    tmp_path: Path, microsoft: MicrosoftServer
) -> None:
    path, shared = outlook_setup(tmp_path, microsoft, can_edit=True)
    result = run_once(path)
    assert result.exit_code == 0, result.output
    assert len(microsoft.events(DEFAULT_USER, shared)) == 4
