"""What the tests of ``caldaemon doctor`` share: a config folder with one clinician, the
command run on it, and its check lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon.cli import main

CHECK_NETWORK = "check the network and that the service is up, then run caldaemon doctor again"
CANARY = "Zebulon Quixote-Marchetti"
SESSION = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:s1@t\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20261201T150000Z\r\nDTEND:20261201T155000Z\r\n"
    f"SUMMARY:Session with {CANARY}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


class Setup:
    """A config folder: one clinician, the calendars given as YAML flow mappings, a
    private state folder (not made unless asked), notices as given."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"

    def make_state(self) -> Path:
        self.state.mkdir(mode=0o700, exist_ok=True)
        (self.state / "tokens").mkdir(mode=0o700, exist_ok=True)
        return self.state

    def write(self, calendars: list[str], *, buffers_to: str = "work", notices: str = "") -> Path:
        listed = "\n".join(f"      - {c}" for c in calendars)
        text = (
            textwrap.dedent("""\
            timezone: America/Toronto
            daemon: {state_dir: state}
            clinicians:
              - id: lee
                email: lee@example.org
                rules: standard
                calendars:
            """)
            + listed
            + textwrap.dedent(f"""
                buffers_to: {buffers_to}
            rule_sets:
              standard: {{}}
            """)
        )
        path = self.root / "config.yaml"
        path.write_text(text + notices)
        return path

    def doctor(self, *extra: str) -> tuple[int, list[str], str]:
        """Exit code, the check lines, and everything printed."""
        result = CliRunner().invoke(
            main, ["doctor", "--config", str(self.root / "config.yaml"), *extra]
        )
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        lines = [line for line in result.output.splitlines() if line[:1] in ("✓", "✗")]
        return result.exit_code, lines, result.output


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def line(lines: list[str], subject: str) -> str:
    [found] = [x for x in lines if x[2:].startswith(f"{subject}:")]
    return found
