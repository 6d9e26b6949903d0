"""Runs too long for ``python -m benchmarks`` (the scale runs at 5,000 and 10,000
calendars, several processes on PostgreSQL: a quarter of an hour each), kept with the
machine they ran on and how busy it was: ``python -m benchmarks.scale … --record`` writes
one file in benchmarks/runs/, and RESULTS.md shows every file there."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "runs"


def machine() -> str:
    cores = os.cpu_count() or 0
    return (
        f"Python {platform.python_version()} on {platform.machine()} {platform.system()}, "
        f"{cores} cores"
    )


def load() -> str:
    """The load averages over 1, 5 and 15 minutes (how busy the machine was)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def record(name: str, command: str, started: datetime, load_before: str, text: str) -> Path:
    """Keep one run's figures as ``runs/<name>.md`` (replacing an older run of the same
    name)."""
    FOLDER.mkdir(exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    path = FOLDER / f"{slug}.md"
    path.write_text(
        f"### {name}\n\n"
        f"`{command}`, {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC, {machine()}; load "
        f"average (1/5/15 min) {load_before} at the start, {load()} at the end.\n\n"
        f"{text.rstrip()}\n"
    )
    return path


def recorded() -> list[str]:
    """Every kept run, in the order of their names."""
    if not FOLDER.is_dir():
        return []
    return [p.read_text().rstrip() for p in sorted(FOLDER.glob("*.md"))]
