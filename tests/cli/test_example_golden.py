"""The example week as a clinician reads it, pinned as golden files: ``check``'s human
output and the notice ``run --once`` writes (its plain-text part). One fact per line,
accepted exceptions apart, protected time and shortened buffers (DESIGN.md §10).

After an intended change of wording, rewrite them with
``CALDAEMON_UPDATE_GOLDEN=1 python -m pytest tests/cli/test_example_golden.py`` and read
the diff as the clinician would."""

from __future__ import annotations

import mailbox
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = "2026-11-30T08:00"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    config = tmp_path / "config.example.yaml"
    shutil.copy(ROOT / "config.example.yaml", config)
    return config


def matches_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CALDAEMON_UPDATE_GOLDEN"):
        path.write_text(actual)
    assert actual == path.read_text()


def test_check_of_the_example_week_reads_as_the_golden_file(example: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--config", str(example), "--now", NOW])
    assert result.exit_code == 1, result.output
    matches_golden("example_check.txt", result.stdout)


def test_the_example_weeks_notice_reads_as_the_golden_file(example: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--config", str(example), "--once", "--now", NOW])
    assert result.exit_code == 0, result.output
    box = mailbox.Maildir(example.parent / ".caldaemon-example/state/notices", create=False)
    # The example also mails the weekly report (notices.weekly_report): not this notice.
    [message] = [m for m in box if not str(m["Subject"]).startswith("caldaemon: your week")]
    [text] = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    body = text.get_payload(decode=True).decode()
    matches_golden("example_notice.txt", f"Subject: {message['Subject']}\n\n{body}")
