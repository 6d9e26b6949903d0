"""The config's JSON Schema (``caldaemon schema``, config.schema.json): generated from the
models, so the shipped file is what the command prints; every key explained; a value
written as the loader reads it; every config the tests load is valid under it, and keys
that the loader refuses on their own are refused by it too.

After an intended change of the models, rewrite config.schema.json with
``CALDAEMON_UPDATE_GOLDEN=1 python -m pytest tests/config/test_json_schema.py``."""

from __future__ import annotations

import ast
import json
import os
import textwrap
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from caldaemon import config
from caldaemon.config import yaml
from caldaemon.config.json_schema import render
from caldaemon.errors import ConfigError
from tests.config.test_config import GOOD
from tests.config.test_hostile_configs import BASE
from tests.reliability.worlds import clinician_ics_yaml, write_config
from tests.service.test_notices import smtp_notices
from tests.service.workspace import Workspace
from tests.support import config_text

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config.schema.json"


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SHIPPED.read_text(encoding="utf-8"))
    return loaded


def errors(text: str) -> list[str]:
    """What the schema says about a config, read as caldaemon reads YAML (1.2 core: an
    unquoted ``off`` stays text)."""
    doc = yaml.load(textwrap.dedent(text), "config.yaml")
    assert not doc.problems, doc.problems
    found = Draft202012Validator(schema()).iter_errors(doc.data)
    return [f"{e.json_path}: {e.message}" for e in found]


def test_the_shipped_schema_is_what_caldaemon_schema_prints() -> None:
    if os.environ.get("CALDAEMON_UPDATE_GOLDEN"):
        SHIPPED.write_text(render(), encoding="utf-8")
    assert render() == SHIPPED.read_text(encoding="utf-8"), (
        "config.schema.json is stale: CALDAEMON_UPDATE_GOLDEN=1 python -m pytest "
        "tests/config/test_json_schema.py"
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_example_points_editors_to_the_shipped_schema() -> None:
    first = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./config.schema.json"
    assert (ROOT / first.split("=", 1)[1]).resolve() == SHIPPED


def _objects(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema with properties, by where it is."""
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _objects(item, f"{where}/{index}")


def test_every_key_has_a_description_and_every_section_refuses_unknown_keys() -> None:
    sections = list(_objects(schema(), "#"))
    assert len(sections) >= 15
    for where, section in sections:
        assert section.get("additionalProperties") is False, where
        for key, value in section["properties"].items():
            assert len(value.get("description", "")) > 10, f"{where}: {key}"


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _branch(node: dict[str, Any], value: Any) -> dict[str, Any]:
    """The schema that applies to ``value``: through references, a union's branch for
    its type, a calendar's provider."""
    node = _resolve(node)
    for union in ("anyOf", "oneOf"):
        if union in node:
            branches = [_resolve(b) for b in node[union]]
            if isinstance(value, dict) and "provider" in value:
                return next(
                    b
                    for b in branches
                    if b["properties"]["provider"].get("const") == value["provider"]
                )
            wanted = (
                "object"
                if isinstance(value, dict)
                else "array"
                if isinstance(value, list)
                else None
            )
            return next((b for b in branches if b.get("type") == wanted), node)
    return node


def _undescribed(node: dict[str, Any], value: Any, where: str) -> Iterator[str]:
    node = _branch(node, value)
    if isinstance(value, dict) and "properties" in node:
        for key, item in value.items():
            child = node["properties"].get(key)
            if child is None or not child.get("description"):
                yield f"{where}.{key}"
            else:
                yield from _undescribed(child, item, f"{where}.{key}")
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
        for key, item in value.items():  # names chosen by the user: levels, rule sets
            yield from _undescribed(node["additionalProperties"], item, f"{where}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            yield from _undescribed(node["items"], item, f"{where}[{index}]")


def test_every_key_the_example_writes_is_explained_by_the_schema() -> None:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, "config.example.yaml").data
    assert list(_undescribed(schema(), data, "$")) == []


def test_every_default_is_written_as_the_config_writes_it() -> None:
    # pydantic would write a duration's default as ISO 8601 ("PT2M") and a time of day as
    # minutes (450): neither is what the loader reads.
    checked = 0
    for where, section in _objects(schema(), "#"):
        for key, value in section["properties"].items():
            if value.get("default") is None:
                continue
            property_schema = {"$defs": schema()["$defs"], **value}
            found = list(Draft202012Validator(property_schema).iter_errors(value["default"]))
            assert found == [], f"{where}: {key}: {found[0].message}"
            checked += 1
    assert checked >= 40
    daemon = schema()["$defs"]["Daemon"]["properties"]
    assert daemon["poll_interval"]["default"] == "2m"
    assert schema()["$defs"]["Notices"]["properties"]["digest_at"]["default"] == "07:30"


# -- every config the tests load ------------------------------------------------------------


def _constant_configs(folder: Path) -> Iterator[tuple[str, str]]:
    """Whole configs written as plain strings in the tests, those the loader takes (the
    rest are pieces, templates filled at run time, or refused on purpose)."""
    for file in sorted((ROOT / "tests").rglob("*.py")):
        if file == Path(__file__).resolve():
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = textwrap.dedent(node.value)
                if "clinicians:" not in text:
                    continue
                try:
                    config.parse(text, folder / "config.yaml")
                except ConfigError:
                    continue
                yield f"{file.relative_to(ROOT)}:{node.lineno}", text


EVERY_RULE = {
    "week_starts": "Monday",
    "working_hours": {
        "mon-thu": "09:00-17:00",
        "fri": ["09:00-12:00", "13:00-24:00"],
        "sat,sun": [],
    },
    "days_off": ["sun"],
    "max_work_days_per_week": 5,
    "max_sessions_per_day": 6,
    "max_sessions_per_week": 22,
    "level_limits": {"high": {"max_per_day": 2, "max_per_week": 8, "latest_start": "15:00"}},
    "breaks": {"after_sessions": 3, "min_break": "0m"},
    "no_back_to_back": {"level": "high", "min_gap": "1h"},
    "max_daily_load": 10,
    "buffers": [
        {
            "after": "high",
            "length": "15m",
            "title": "Grounding",
            "fit": "shrink",
            "min_length": "10m",
        },
        {"before": "moderate", "length": "10m"},
    ],
    "cadence": [
        {"kind": "supervision", "every": "2w"},
        {"kind": "personal", "hours": 1.5, "per": "30d"},
    ],
    "double_booked": True,
    "protect": {"full_days": True, "full_weeks": True, "days_off": False, "title": "Unavailable"},
    "severity": {"max_daily_load": "warning", "level_limits": "warning"},
}


def _helper_configs(root: Path) -> Iterator[tuple[str, str]]:
    workspace = Workspace(root / "workspace")
    workspace.root.mkdir()
    workspace.write_config()
    yield "tests/service/workspace.py", workspace.config.read_text()
    server = SimpleNamespace(port=2525, ca_file=str(root / "ca.pem"))
    workspace.notices = smtp_notices(server, mode="digest")  # type: ignore[arg-type]
    workspace.write_config()
    yield "tests/service/test_notices.py smtp_notices", workspace.config.read_text()
    world = write_config(root / "world.yaml", [clinician_ics_yaml("lee", "p.ics", "b.ics")])
    yield "tests/reliability/worlds.py", world.read_text()
    yield "tests/support.py config_text", config_text({"max_sessions_per_day": 6})
    yield (
        "tests/support.py config_text, every rule",
        config_text(
            EVERY_RULE,
            clinician={"timezone": "Europe/Berlin", "overrides": {"max_sessions_per_day": 5}},
            daemon={"poll_interval": "30s", "dry_run": True, "keep_history": "0d"},
            notices={"mode": "digest", "digest_at": "7:05", "privacy": "minimal"},
        ),
    )


def test_every_config_the_tests_load_is_valid_under_the_schema(tmp_path: Path) -> None:
    # The memory provider's configs (tests/service/test_cycle_memory.py, the state
    # machine's world) are left out: the schema offers clinicians only real providers.
    configs = [
        ("config.example.yaml", (ROOT / "config.example.yaml").read_text(encoding="utf-8")),
        ("tests/config/test_hostile_configs.py BASE", BASE),
        *_constant_configs(tmp_path),
        *_helper_configs(tmp_path),
    ]
    assert len(configs) >= 10
    for name, text in configs:
        config.parse(text, tmp_path / "config.yaml")  # the loader takes it
        assert errors(text) == [], name


# (a config the loader refuses for one key alone, the key the schema names)
REFUSED = [
    (GOOD + "notices: {repeat_after: 7d, repeat_every: 1d}\n", "$.notices"),
    (GOOD + "daemon: {horizon: 4 weeks}\n", "$.daemon.horizon"),
    (GOOD + "daemon: {horizon: 0d}\n", "$.daemon.horizon"),
    (GOOD + "daemon: {horizon: PT2M}\n", "$.daemon.horizon"),
    (GOOD + "notices: {digest_at: '24:00'}\n", "$.notices.digest_at"),
    (GOOD + "    week_starts: funday\n", "$.rule_sets.standard.week_starts"),
    (GOOD + "    working_hours: {mon-fri: 9-5}\n", "$.rule_sets.standard.working_hours"),
    (GOOD + "    days_off: [saturday, funday]\n", "$.rule_sets.standard.days_off[1]"),
    (
        GOOD + "    cadence: [{kind: supervisor, every: 14d}]\n",
        "$.rule_sets.standard.cadence[0].kind",
    ),
    (GOOD + "    severity: {max_session: warning}\n", "$.rule_sets.standard.severity"),
    (GOOD.replace("path: work.ics", "path: work.ics, colour: red"), "$.clinicians[0].calendars[0]"),
    (GOOD.replace("id: lee", "id: lee smith"), "$.clinicians[0].id"),
    (GOOD.replace("provider: ics", "provider: memory, store: x"), "$.clinicians[0].calendars[0]"),
]


@pytest.mark.parametrize(("text", "where"), REFUSED)
def test_a_key_the_loader_refuses_on_its_own_is_refused_by_the_schema(
    text: str, where: str
) -> None:
    if "provider: memory" not in text:
        with pytest.raises(ConfigError):
            config.parse(text, Path("config.yaml"))
    found = errors(text)
    assert found and all(e.startswith(where) for e in found), found
