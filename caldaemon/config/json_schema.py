"""The config's JSON Schema (draft 2020-12, DESIGN.md §12), generated from the models in
:mod:`.schema` so that it cannot drift from what the loader takes: each field's docstring
is its description, each value type (:mod:`caldaemon.fields`) brings its pattern, and a
model that refuses unknown keys says ``additionalProperties: false``.

The schema checks what one key can check (types, syntax, known keys); what needs two keys
or the whole file (a tag naming a level, ``rules`` naming a rule set, durations up to a
year) is for ``caldaemon validate``."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from datetime import timedelta
from itertools import pairwise
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from caldaemon.config.schema import Config
from caldaemon.core.rules.registry import SEVERITY_KEYS
from caldaemon.fields import CLOCK_SCHEMA, SPAN_SCHEMA, format_clock, format_duration
from caldaemon.providers.registry import PROVIDERS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "caldaemon configuration"
DESCRIPTION = (
    "caldaemon's config file. This schema checks each key as you type; `caldaemon validate` "
    "checks the whole file, with file:line for every problem."
)


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, writing values the way the config file writes them."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        # "Poll Interval" over poll_interval says nothing the key does not; the
        # description says what it means.
        return False

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        # A duration without a schema of its own (pydantic's would be ISO 8601, "PT2M",
        # which the loader refuses).
        return dict(SPAN_SCHEMA)

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        default = self.get_default_value(schema)
        if isinstance(default, BaseModel):
            # A section's defaults are its keys' defaults, listed with each key.
            json_schema.pop("default", None)
        elif isinstance(default, timedelta):
            json_schema["default"] = format_duration(default)
        elif isinstance(default, int) and json_schema.get("pattern") == CLOCK_SCHEMA["pattern"]:
            json_schema["default"] = format_clock(default)
        return json_schema

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        model = schema["cls"]
        docs = field_docs(model)
        properties = json_schema.get("properties", {})
        for name, field in model.model_fields.items():
            key = field.alias or name
            if name in docs and key in properties:
                properties[key]["description"] = docs[name]
        return json_schema

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        generated = super().generate(schema, mode)
        definitions = generated["$defs"]
        _drop_unlisted_providers(definitions)
        for definition in definitions.values():
            # A model's docstring is written for developers (it cites the design); its
            # keys' descriptions are written for the user.
            definition.pop("description", None)
        _one_line_descriptions(generated)
        rule_set = definitions["RuleSet"]["properties"]
        rule_set["severity"]["propertyNames"] = {"enum": sorted(SEVERITY_KEYS)}
        overrides = definitions["Clinician"]["properties"]["overrides"]
        # Overrides are rule-set keys, merged over the clinician's rule set.
        definitions["Clinician"]["properties"]["overrides"] = {
            "$ref": "#/$defs/RuleSet",
            "description": overrides["description"],
        }
        return {
            "$schema": DIALECT,
            "title": TITLE,
            "description": DESCRIPTION,
            **{k: v for k, v in generated.items() if k != "title"},
        }


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Each field's docstring, the string literal right under it (PEP 257's "attribute
    docstrings"), from the model's source and its bases'."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not issubclass(cls, BaseModel) or cls is BaseModel:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):  # no source (a frozen build): no descriptions
            continue
        definition = ast.parse(source).body[0]
        assert isinstance(definition, ast.ClassDef)
        for statement, after in pairwise(definition.body):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[statement.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _drop_unlisted_providers(definitions: dict[str, Any]) -> None:
    """Calendars offer only the providers a clinician can use (the memory provider is for
    tests; the loader still takes it)."""
    calendars = definitions["Clinician"]["properties"]["calendars"]["items"]
    for kind in PROVIDERS.values():
        if kind.listed:
            continue
        ref = calendars["discriminator"]["mapping"].pop(kind.name)
        calendars["oneOf"].remove({"$ref": ref})
        del definitions[ref.rsplit("/", 1)[1]]


def _one_line_descriptions(node: Any) -> None:
    """Descriptions as one paragraph: a docstring's line breaks are only where it was
    wrapped."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                node[key] = " ".join(value.split())
            else:
                _one_line_descriptions(value)
    elif isinstance(node, list):
        for item in node:
            _one_line_descriptions(item)


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the config file."""
    return Config.model_json_schema(by_alias=True, schema_generator=_Generator)


def render() -> str:
    """The schema as ``caldaemon schema`` prints it and config.schema.json holds it."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"
