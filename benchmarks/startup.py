"""Start-up: ``caldaemon --help`` and ``caldaemon check`` on the example, as new processes:
wall time (best of several runs) and how many modules each imports."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Counts the modules loaded by the time the command exits.
_COUNTING = (
    "import atexit, sys; atexit.register(lambda: sys.stderr.write("
    "f'\\nMODULES {len(sys.modules)}\\n')); "
    "sys.argv = ['caldaemon'] + sys.argv[1:]; "
    "from caldaemon.cli import main; main()"
)


def _measure(args: list[str], runs: int) -> tuple[float, int]:
    best = float("inf")
    modules = 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _COUNTING, *args], capture_output=True, text=True, cwd=ROOT
        )
        best = min(best, time.perf_counter() - started)
        for line in done.stderr.splitlines():
            if line.startswith("MODULES "):
                modules = int(line.split()[1])
    return best, modules


def run(runs: int = 5) -> dict[str, Any]:
    baseline, baseline_modules = _measure_python(runs)
    help_s, help_modules = _measure(["--help"], runs)
    check_s, check_modules = _measure(
        ["check", "--config", str(ROOT / "config.example.yaml"), "--now", "2026-11-30T08:00"], runs
    )
    return {
        "python_s": baseline,
        "python_modules": baseline_modules,
        "help_s": help_s,
        "help_modules": help_modules,
        "check_s": check_s,
        "check_modules": check_modules,
    }


def _measure_python(runs: int) -> tuple[float, int]:
    best = float("inf")
    modules = 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", "import sys; print(len(sys.modules))"],
            capture_output=True,
            text=True,
        )
        best = min(best, time.perf_counter() - started)
        modules = int(done.stdout.strip())
    return best, modules
