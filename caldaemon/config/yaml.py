"""Read YAML keeping where every key came from, and refusing what PyYAML lets slip.

PyYAML keeps the last of two duplicate keys without a word, and resolves YAML 1.1 scalars
that surprise people: ``off`` and ``no`` become booleans, ``09:30`` becomes 570
(sexagesimal), ``2026-11-30`` a date. A config where ``off: day_off`` silently turns into
``False: day_off`` would be a bug in the user's boundaries, so scalars here follow the
YAML 1.2 core schema (true/false, null, decimal numbers) and everything else is a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

Path = tuple[str | int, ...]
_STR = "tag:yaml.org,2002:str"


class _CoreResolver(BaseResolver):
    """YAML 1.2 core schema resolution for plain scalars."""


_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _Refused(yaml.MarkedYAMLError):
    """YAML that is valid but not taken in a config (said as is, without "not valid")."""


class _Refusing(Composer):
    """The composer, refusing anchors and aliases as it goes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        # Anchors and aliases let a few lines expand into gigabytes (ten nested aliases
        # never finished loading): a clinician's config has no need of them.
        event = self.peek_event()  # type: ignore[attr-defined]  # the parser's, mixed in
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(
                problem="anchors and aliases (&name, *name) are not allowed in the config; "
                "write each value out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


class _Loader(Reader, Scanner, Parser, _Refusing, SafeConstructor, _CoreResolver):
    """PyYAML's own scanner and parser, in Python: its error messages are the ones shown."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Refusing.__init__(self)
        SafeConstructor.__init__(self)
        _CoreResolver.__init__(self)


_FastLoader: type | None = None
if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _LibyamlLoader(CParser, _Refusing, SafeConstructor, _CoreResolver):
        """LibYAML's scanner and parser (in C) under the same composer: a platform's
        config of 10,000 clinicians (3.5 MB) took 9.5 s to read in Python, 2 s this way
        (issue 15). A syntax error in a config of up to 1 MB is worded by :class:`_Loader`
        (see :func:`load`), so its messages stay PyYAML's."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Refusing.__init__(self)
            SafeConstructor.__init__(self)
            _CoreResolver.__init__(self)

        def get_single_node(self) -> Any:
            # CParser's own composer (in C) would skip compose_node and its refusal.
            return _Refusing.get_single_node(self)

    _FastLoader = _LibyamlLoader


@dataclass
class Document:
    """Plain data from a YAML file, with the line of every key path."""

    data: Any
    file: str
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[tuple[Path, int | None, str]] = field(default_factory=list)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load(text: str, file: str) -> Document:
    """Parse ``text``; syntax errors and duplicate keys are recorded in ``problems``."""
    doc = Document(data=None, file=file)
    try:
        python = _Loader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters up front
        doc.problems.append(((), None, f"not valid YAML: {str(exc).splitlines()[0]}"))
        return doc
    loader: Any = python
    if _FastLoader is not None:
        loader = _FastLoader(text)
        node = _composed(loader, doc, worded=len(text) > _WORDED_BY_PYTHON)
        if node is _FAILED and not doc.problems:
            loader = python  # a syntax error, worded by PyYAML
    if loader is python:
        node = _composed(python, doc)
    if node is not _FAILED and node is not None:
        doc.data = _convert(node, (), doc, loader)
    return doc


# A syntax error LibYAML finds is worded by PyYAML, reading the file again in Python, up
# to this size (about 2 s); past it LibYAML's own words are shown (the line is the same):
# a platform's 7 MB config with a mistake on its last line took 23 s to read again.
_WORDED_BY_PYTHON = 1024 * 1024
_FAILED: Any = object()


def _composed(loader: Any, doc: Document, *, worded: bool = True) -> Any:
    """The document's node (None for an empty one), or _FAILED with the problem recorded;
    a syntax error is not recorded unless ``worded``."""
    try:
        return loader.get_single_node()
    except _Refused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        doc.problems.append(((), line, str(exc.problem)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        if worded:
            doc.problems.append(((), line, f"not valid YAML: {exc.problem or exc.context}"))
    except yaml.YAMLError as exc:
        if worded:
            doc.problems.append(((), None, f"not valid YAML: {exc}"))
    finally:
        loader.dispose()
    return _FAILED


def _convert(node: yaml.Node, path: Path, doc: Document, loader: _Loader) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = (
                _convert(key_node, path, doc, loader)
                if isinstance(key_node, yaml.ScalarNode)
                else None
            )
            line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int, float, bool)) or key is None:
                doc.problems.append((path, line, "a key must be a plain word or number"))
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                doc.problems.append(
                    (
                        path + (key,),
                        line,
                        f"duplicate key '{key}' (first given on line {first_line[key]})",
                    )
                )
                continue
            first_line[key] = line
            doc.lines[path + (key,)] = line
            out[key] = _convert(value_node, path + (key,), doc, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.lines[path + (index,)] = item.start_mark.line + 1
            items.append(_convert(item, path + (index,), doc, loader))
        return items
    if node.tag == _STR:
        return node.value  # what construct_object gives for it, at a fifth of the cost
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        doc.problems.append((path, node.start_mark.line + 1, str(exc).splitlines()[0]))
        return None
