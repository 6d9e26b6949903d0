"""The wording of config problems: pydantic's errors become plain sentences with file:line
and key path, and an unknown key gets a "did you mean" from every key the schema knows."""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel

from caldaemon.config import yaml
from caldaemon.config.schema import Config
from caldaemon.errors import Problem
from caldaemon.providers.registry import PROVIDERS

_SECRET_KEYS = {"password", "client_secret", "secret", "api_key", "refresh_token"}
_TYPE_NAMES = {
    "int": "a whole number",
    "bool": "true or false",
    "string": "text",
    "list": "a list",
    "dict": "a mapping of keys to values",
    "model": "a mapping of keys to values",
    "model_attributes": "a mapping of keys to values",
    "tuple": "a list",
    "float": "a number",
    "path": "a file path",
}


class Problems:
    """Every problem of one config file, collected so that all are reported at once."""

    def __init__(self, doc: yaml.Document) -> None:
        self.doc = doc
        self.items: list[Problem] = []
        self._seen: set[Problem] = set()  # a list search made 10,000 problems quadratic

    def add(self, path: yaml.Path, message: str, *, line: int | None = None) -> None:
        if line is None:
            line = self.doc.line_of(path)
        problem = Problem(self.doc.file, line, yaml.format_path(path), message)
        if problem not in self._seen:
            self._seen.add(problem)
            self.items.append(problem)

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=lambda p: (p.line or 0, p.path))

    def add_pydantic(self, error: Any, prefix: yaml.Path) -> None:
        loc = _data_path(self.doc.data, prefix + tuple(error["loc"]))
        kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
        if kind == "extra_forbidden":
            self.add(loc, unknown_key(str(loc[-1])))
        elif kind == "missing":
            self.add(loc[:-1], f"missing required key '{loc[-1]}'")
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            names = [kind.name for kind in PROVIDERS.values() if kind.listed]
            choices = ", ".join(names[:-1]) + f" or {names[-1]}"
            if kind == "union_tag_not_found":
                self.add(loc, f"missing required key 'provider' ({choices})")
            else:
                self.add(
                    loc + ("provider",), f"{ctx.get('tag')!r} is not a provider: use {choices}"
                )
        else:
            self.add(loc, _describe(kind, value, ctx, error["msg"]))


def _data_path(data: Any, loc: tuple[Any, ...]) -> yaml.Path:
    """Drop the discriminator tags, validator names and ``[key]`` markers pydantic puts
    into ``loc``."""
    out: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif (
            last
            and isinstance(node, dict)
            and isinstance(part, str)
            and not part.startswith(("function-", "nullable"))
            and part != "[key]"
        ):
            out.append(part)
    return tuple(out)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


@cache
def known_keys() -> tuple[str, ...]:
    """Every key of every section of the schema (aliases included)."""
    keys: set[str] = set()
    pending: list[type[BaseModel]] = [Config]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            keys.add(field.alias or name)
            pending.extend(_models_in(field.annotation))
    return tuple(sorted(keys))


def unknown_key(key: str) -> str:
    if key.lower() in _SECRET_KEYS:
        return (
            f"unknown key '{key}': secrets never sit in the config; "
            f"use {key}_file (a file holding it) or {key}_env (an environment variable)"
        )
    close = difflib.get_close_matches(key, known_keys(), n=1, cutoff=0.75)
    return f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")


def _describe(kind: str, value: Any, ctx: dict[str, Any], fallback: str) -> str:
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    for suffix in ("_type", "_parsing"):
        if kind.endswith(suffix) and kind[: -len(suffix)] in _TYPE_NAMES:
            return f"{shown} is not {_TYPE_NAMES[kind[: -len(suffix)]]}"
    if kind == "literal_error":
        return f"{shown} is not allowed here: use {ctx.get('expected')}"
    if kind in ("greater_than_equal", "less_than_equal"):
        word = "at least" if kind == "greater_than_equal" else "at most"
        return f"{shown} must be {word} {ctx.get('ge', ctx.get('le'))}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    return str(fallback).removeprefix("Value error, ")
