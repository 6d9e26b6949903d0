"""``validate`` warns (exit 0) about what is valid but will surprise (DESIGN.md §12): a
calendar file that does not exist yet, and a relative path, which the loader reads
against the config file's folder, so moving the file moves what it points to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from caldaemon import config
from caldaemon.cli import main

CALENDAR = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"


def write(folder: Path, practice: str, buffers: str, *, extra: str = "") -> Path:
    path = folder / "config.yaml"
    path.write_text(
        "timezone: America/Toronto\n"
        "clinicians:\n"
        "  - id: lee\n"
        "    rules: standard\n"
        "    calendars:\n"
        f"      - {{id: practice, provider: ics, path: '{practice}'}}\n"
        f"      - {{id: buffers, provider: ics, path: '{buffers}'}}\n"
        "    buffers_to: buffers\n"
        "rule_sets:\n"
        "  standard: {max_sessions_per_day: 6}\n" + extra
    )
    return path


def validate(path: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, ["validate", "--config", str(path), *extra])


def test_a_config_with_full_paths_to_existing_files_has_no_warning(tmp_path: Path) -> None:
    (tmp_path / "practice.ics").write_text(CALENDAR)
    (tmp_path / "buffers.ics").write_text(CALENDAR)
    path = write(tmp_path, str(tmp_path / "practice.ics"), str(tmp_path / "buffers.ics"))
    result = validate(path)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith(f"{path}: ok\n")


def test_a_relative_path_is_named_with_what_it_resolves_to_and_that_moving_breaks_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "practice.ics").write_text(CALENDAR)
    (tmp_path / "buffers.ics").write_text(CALENDAR)
    path = write(tmp_path, "cal/practice.ics", str(tmp_path / "buffers.ics"))
    result = validate(path)
    assert result.exit_code == 0
    resolved = config.load(path).clinicians[0].calendars[0].path  # what the loader reads
    assert resolved == tmp_path / "cal" / "practice.ics"
    assert result.stderr == (
        f"warning: {path}:6: clinicians[0].calendars[0].path: 'cal/practice.ics' is relative "
        f"to the config file's folder, so it means {resolved}; if the config file moves, it "
        "points elsewhere (a full path keeps it)\n"
    )


def test_the_folder_is_the_config_files_real_one_when_it_is_a_symlink(tmp_path: Path) -> None:
    real, elsewhere = tmp_path / "dotfiles", tmp_path / "home"
    real.mkdir()
    elsewhere.mkdir()
    (real / "practice.ics").write_text(CALENDAR)
    write(real, "practice.ics", str(real / "buffers.ics"))
    (elsewhere / "config.yaml").symlink_to(real / "config.yaml")
    result = validate(elsewhere / "config.yaml")
    assert f"so it means {real / 'practice.ics'};" in result.stderr
    assert str(elsewhere / "practice.ics") not in result.stderr


def test_missing_calendar_files_are_warned_about_with_what_happens_next(tmp_path: Path) -> None:
    path = write(tmp_path, str(tmp_path / "practice.ics"), str(tmp_path / "new" / "buffers.ics"))
    result = validate(path)
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"warning: {path}:6: clinicians[0].calendars[0].path: {tmp_path / 'practice.ics'} "
        "does not exist yet; until it does, the calendar cannot be read and check exits 2",
        f"warning: {path}:7: clinicians[0].calendars[1].path: "
        f"{tmp_path / 'new' / 'buffers.ics'} does not exist yet; caldaemon creates it when it "
        "places the first buffer",
    ]
    # What the warning says of the calendar that is read: check cannot read it.
    check = CliRunner().invoke(main, ["check", "--config", str(path), "--now", "2026-11-30T08:00"])
    assert check.exit_code == 2


def test_state_dir_and_other_file_keys_are_checked_but_relative_secrets_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "practice.ics").write_text(CALENDAR)
    extra = (
        "daemon: {state_dir: state}\n"
        "notices:\n"
        "  email:\n"
        "    from: caldaemon@example.org\n"
        "    smtp: {host: smtp.example.org, username: u, password_file: smtp-password}\n"
    )
    path = write(tmp_path, "~/practice.ics", str(tmp_path / "practice.ics"), extra=extra)
    result = validate(path)
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    # ~ is a full path; the password file is meant relative (systemd's LoadCredential=).
    assert [line.split(": ")[2] for line in lines] == [
        "clinicians[0].calendars[0].path",
        "daemon.state_dir",
    ]
    assert f"{tmp_path / 'home' / 'practice.ics'} does not exist yet" in lines[0]
    assert f"so it means {tmp_path / 'state'};" in lines[1]


def test_validate_json_lists_warnings_beside_an_ok(tmp_path: Path) -> None:
    (tmp_path / "practice.ics").write_text(CALENDAR)
    path = write(tmp_path, "practice.ics", str(tmp_path / "practice.ics"))
    result = validate(path, "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["problems"] == []
    [warning] = summary["warnings"]
    assert warning["file"] == str(path) and warning["line"] == 6
    assert warning["path"] == "clinicians[0].calendars[0].path"
    assert warning["message"].startswith("'practice.ics' is relative to the config file's folder")
