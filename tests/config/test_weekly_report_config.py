"""``notices.weekly_report`` in the config (DESIGN.md §11): optional, a weekday and an
HH:MM clock like ``digest_at``; a wrong value is refused by ``validate`` with its file:line
and key path, as every other key is."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon import config
from caldaemon.cli import main
from tests.config.test_hostile_configs import BASE


def with_weekly(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + f"  weekly_report: {value}\n")
    return path


def test_absent_means_no_weekly_report(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(BASE)
    assert config.load(tmp_path / "config.yaml").notices.weekly_report is None


@pytest.mark.parametrize(
    ("value", "day", "at"),
    [("{}", "mon", 7 * 60), ('{day: Friday, at: "16:30"}', "fri", 16 * 60 + 30)],
)
def test_a_weekday_and_a_time_with_monday_7_by_default(
    tmp_path: Path, value: str, day: str, at: int
) -> None:
    weekly = config.load(with_weekly(tmp_path, value)).notices.weekly_report
    assert weekly is not None and (weekly.day, weekly.at) == (day, at)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{day: someday, at: "07:00"}', "notices.weekly_report.day: 'someday' is not a weekday"),
        ('{day: mon, at: "25:00"}', "notices.weekly_report.at: '25:00' is not a time of day"),
        ('{day: mon, at: "7"}', "notices.weekly_report.at: '7' is not a time of day"),
        ("{day: mon, hour: 7}", "notices.weekly_report.hour"),
        ("monday", "notices.weekly_report"),
    ],
)
def test_a_wrong_value_is_refused_with_its_line(tmp_path: Path, value: str, expected: str) -> None:
    path = with_weekly(tmp_path, value)
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line_number = len(BASE.splitlines()) + 1
    [said] = [line for line in result.output.splitlines() if expected in line]
    assert said.startswith(f"{path}:{line_number}:"), said
