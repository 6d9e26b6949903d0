"""``caldaemon check --jobs N`` judges clinicians in N processes and prints exactly what
one process prints: the same bytes on stdout and stderr, the same exit code, also when a
process stops on an error. Run as a command (the processes are forked: never from the
test runner's own process, whose threads a fork would copy mid-step)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.practice import write_practice

NOW = "2026-01-05T08:00:00-05:00"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="--jobs forks, which it does on Linux only"
)


def run_check(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "caldaemon", "check", "--config", str(config), "--now", NOW]
        + list(options),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def six_clinicians(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config, _ = write_practice(tmp_path_factory.mktemp("practice"), clinicians=6)
    return config


@pytest.mark.parametrize("output", [[], ["--json"]], ids=["text", "json"])
def test_three_processes_print_what_one_prints(six_clinicians: Path, output: list[str]) -> None:
    alone = run_check(six_clinicians, "--jobs", "1", *output)
    shared = run_check(six_clinicians, "--jobs", "3", *output)
    assert alone.returncode == 1  # the practice crosses boundaries
    assert (shared.returncode, shared.stdout, shared.stderr) == (
        alone.returncode,
        alone.stdout,
        alone.stderr,
    )
    # Every clinician is in it, in config order.
    shown = [f"c{n}" for n in range(6)]
    if output:
        assert all(f'"clinician": "{c}"' in alone.stdout for c in shown)
    else:
        heads = [line.split(":")[0] for line in alone.stdout.splitlines() if line[:1] == "c"]
        assert heads == shown


def test_a_calendar_that_cannot_be_read_exits_2_whatever_the_processes(
    six_clinicians: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    text = six_clinicians.read_text().replace("path: clinician4.ics", "path: missing.ics")
    config.write_text(text.replace("path: clinician", f"path: {six_clinicians.parent}/clinician"))
    alone = run_check(config, "--jobs", "1")
    shared = run_check(config, "--jobs", "2")
    assert alone.returncode == 2
    assert "missing.ics" in alone.stderr
    assert (shared.returncode, shared.stdout, shared.stderr) == (
        alone.returncode,
        alone.stdout,
        alone.stderr,
    )


def test_an_error_in_one_process_is_said_as_one_process_says_it(
    six_clinicians: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "broken"
    config, _ = write_practice(folder, clinicians=4)
    (folder / "state").mkdir(mode=0o700)
    (folder / "state" / "state.sqlite3").write_bytes(b"not a database at all" * 100)
    alone = run_check(config, "--jobs", "1")
    shared = run_check(config, "--jobs", "2")
    assert alone.returncode == 2
    assert "the state database cannot be used" in alone.stderr
    assert "Traceback" not in shared.stderr
    assert (shared.returncode, shared.stdout, shared.stderr) == (
        alone.returncode,
        alone.stdout,
        alone.stderr,
    )
