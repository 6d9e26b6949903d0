"""The schema where it is meant to work: in an editor's YAML support (yaml-language-server,
which VS Code's YAML extension runs), reached through config.example.yaml's first line.
The example has no problem; a mistyped key and a duration the loader would refuse are
marked on their lines in words; a key shows its description when pointed at."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.yaml_editor import yaml_editor

ROOT = Path(__file__).resolve().parents[2]


def copy_example(folder: Path, change: tuple[str, str] | None = None) -> Path:
    shutil.copy(ROOT / "config.schema.json", folder / "config.schema.json")
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    if change is not None:
        assert change[0] in text
        text = text.replace(change[0], change[1], 1)
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    """0-based, as the Language Server Protocol counts."""
    return next(i for i, line in enumerate(path.read_text().splitlines()) if text in line)


def test_the_example_has_no_problem_in_the_editor(tmp_path: Path) -> None:
    path = copy_example(tmp_path)
    with yaml_editor(tmp_path) as editor:
        assert editor.open(path) == []


def test_a_mistyped_key_and_a_bad_duration_are_marked_on_their_lines(tmp_path: Path) -> None:
    path = copy_example(tmp_path, ("  horizon: 14d\n", "  horizon: 2 weeks\n  horizons: 14d\n"))
    with yaml_editor(tmp_path) as editor:
        problems = editor.open(path)
    marked = sorted((p["range"]["start"]["line"], p["message"]) for p in problems)
    assert marked == [
        (
            line_of(path, "horizon: 2 weeks"),
            "a duration longer than nothing, like 15m, 1h30m or 14d",
        ),
        (line_of(path, "horizons: 14d"), "Property horizons is not allowed."),
    ]


def test_pointing_at_a_key_shows_what_it_means(tmp_path: Path) -> None:
    path = copy_example(tmp_path)
    with yaml_editor(tmp_path) as editor:
        editor.open(path)
        shown = editor.hover(path, line_of(path, "max_deletes_per_cycle:"), 4)
    assert "at most this many buffers are removed in one round" in shown
