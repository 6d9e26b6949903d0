"""``caldaemon schema [--output F]`` (DESIGN.md §12): the config's JSON Schema, printed or
written where an editor's ``# yaml-language-server: $schema=`` line can point to it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from jsonschema import Draft202012Validator

from caldaemon.cli import main
from caldaemon.config import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_schema_prints_the_schema_shipped_beside_the_example() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (ROOT / "config.schema.json").read_text(encoding="utf-8")
    printed = json.loads(result.stdout)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(printed["required"]) == {"clinicians", "rule_sets"}


def test_schema_output_writes_the_file_in_a_new_folder_and_says_the_line_to_add(
    tmp_path: Path,
) -> None:
    target = tmp_path / "config" / "caldaemon" / "config.schema.json"
    result = CliRunner().invoke(main, ["schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"wrote {target}",
        f"first line of the config: # yaml-language-server: $schema={target}",
    ]
    written = json.loads(target.read_text(encoding="utf-8"))
    example = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    data = yaml.load(example, "config.example.yaml").data
    assert list(Draft202012Validator(written).iter_errors(data)) == []


def test_schema_output_into_a_file_that_is_no_folder_is_a_message_not_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "taken").write_text("")
    result = CliRunner().invoke(main, ["schema", "--output", str(tmp_path / "taken" / "s.json")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cannot write {tmp_path / 'taken' / 's.json'}: ")
    assert "Traceback" not in result.output
