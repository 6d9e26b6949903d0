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

    class _LibyamlLoader(CParser, SafeConstructor, _CoreResolver):
        """LibYAML's scanner and parser (in C), whose events :func:`_built` turns into
        data as :func:`_convert` would from the composer's nodes, without the nodes: a
        platform's config of 10,000 clinicians (3.5 MB) took 9.5 s to read in Python
        (issue 15). A syntax error in a config of up to 1 MB is worded by :class:`_Loader`
        (see :func:`load`), so its messages stay PyYAML's."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            _CoreResolver.__init__(self)

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
    try:
        return _parsed(text, file)
    except RecursionError:
        # PyYAML's composer, _convert and _value recurse once per level: a thousand
        # nested brackets exhaust Python's stack, a config needs fewer than ten levels.
        doc = Document(data=None, file=file)
        doc.problems.append(
            ((), None, "the config nests lists or mappings hundreds deep; is this the right file?")
        )
        return doc


def _parsed(text: str, file: str) -> Document:
    doc = Document(data=None, file=file)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters up front
        doc.problems.append(((), None, f"not valid YAML: {str(exc).splitlines()[0]}"))
        return doc
    if _FastLoader is not None and _read_in_c(text, doc):
        return doc
    try:
        node = loader.get_single_node()
    except _Refused as exc:
        doc.problems.append(_refusal(exc))
        return doc
    except yaml.MarkedYAMLError as exc:
        doc.problems.append(_syntax(exc))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(((), None, f"not valid YAML: {exc}"))
        return doc
    finally:
        loader.dispose()
    if node is not None:
        doc.data = _convert(node, (), doc, loader)
    return doc


# A syntax error LibYAML finds is worded by PyYAML, reading the file again in Python, up
# to this size (about 2 s); past it LibYAML's own words are shown (the line is the same):
# a platform's 7 MB config with a mistake on its last line took 23 s to read again.
_WORDED_BY_PYTHON = 1024 * 1024


def _read_in_c(text: str, doc: Document) -> bool:
    """Read ``text`` with LibYAML into ``doc``; False (``doc`` left empty) when the
    Python loader must read it: a syntax error it is to word, or an explicit merge key."""
    assert _FastLoader is not None
    loader = _FastLoader(text)
    try:
        doc.data = _built(loader, doc)
        return True
    except (_Refused, _Merge, yaml.YAMLError) as exc:
        doc.data, doc.lines, doc.problems = None, {}, []
        if isinstance(exc, _Refused):
            doc.problems.append(_refusal(exc))
            return True
        if isinstance(exc, yaml.MarkedYAMLError) and len(text) > _WORDED_BY_PYTHON:
            doc.problems.append(_syntax(exc))
            return True
        return False
    finally:
        loader.dispose()


def _refusal(exc: _Refused) -> tuple[Path, int | None, str]:
    return (), exc.problem_mark.line + 1 if exc.problem_mark else None, str(exc.problem)


def _syntax(exc: yaml.MarkedYAMLError) -> tuple[Path, int | None, str]:
    mark = exc.problem_mark or exc.context_mark
    return (), mark.line + 1 if mark else None, f"not valid YAML: {exc.problem or exc.context}"


class _Merge(Exception):
    """An explicit merge key (``!!merge``): left to the composer's flatten_mapping."""


_MERGE = "tag:yaml.org,2002:merge"


def _built(loader: Any, doc: Document) -> Any:
    """The document's data from the parser's events, with its lines and problems in
    ``doc``: what the composer (:class:`_Refusing`) and :func:`_convert` make of the same
    events, without a node (and two marks) per value first: ``config.load`` of 10,000
    clinicians peaked at 223 MB and took 1.60 s of CPU through nodes, 130 MB and 1.24 s
    this way (benchmarks/config_load.py; issue 15)."""
    loader.get_event()  # StreamStartEvent
    data = None
    if not loader.check_event(yaml.StreamEndEvent):
        loader.get_event()  # DocumentStartEvent
        data = _value(loader, (), doc, keep=True)
        loader.get_event()  # DocumentEndEvent
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        raise yaml.composer.ComposerError(
            "expected a single document in the stream",
            None,
            "but found another document",
            event.start_mark,
        )
    return data


def _value(loader: Any, path: Path, doc: Document, *, keep: bool) -> Any:
    """The next value; with ``keep`` False it is only read past (a duplicate key's value,
    a key that is not a scalar): nothing of it is recorded, as :func:`_convert` skips it."""
    event: Any = loader.get_event()
    if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
        raise _Refused(
            problem="anchors and aliases (&name, *name) are not allowed in the config; "
            "write each value out",
            problem_mark=event.start_mark,
        )
    start: Any = event.start_mark  # LibYAML's marks, which the stubs do not know
    if keep:
        doc.lines.setdefault(path, start.line + 1)
    if isinstance(event, yaml.ScalarEvent):
        tag = event.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR:
            return event.value
        node = yaml.ScalarNode(tag, event.value, start, start, event.style)
        try:
            return loader.construct_object(node, deep=True)
        except Exception as exc:  # see _unreadable
            if keep:
                doc.problems.append((path, start.line + 1, _unreadable(node, exc)))
            return None
    if isinstance(event, yaml.SequenceStartEvent):
        items: list[Any] = []
        while not loader.check_event(yaml.SequenceEndEvent):
            here = (*path, len(items))
            if keep:
                doc.lines[here] = loader.peek_event().start_mark.line + 1
            items.append(_value(loader, here, doc, keep=keep))
        loader.get_event()
        return items
    out: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    while not loader.check_event(yaml.MappingEndEvent):
        key_event = loader.peek_event()
        if keep and getattr(key_event, "tag", None) == _MERGE:
            raise _Merge
        line = key_event.start_mark.line + 1
        scalar = isinstance(key_event, yaml.ScalarEvent)
        key = _value(loader, path, doc, keep=keep and scalar)
        if not scalar or not isinstance(key, (str, int, float, bool)) or key is None:
            if keep:
                doc.problems.append((path, line, "a key must be a plain word or number"))
            _value(loader, path, doc, keep=False)
            continue
        key = str(key) if not isinstance(key, str) else key
        if key in out:
            if keep:
                message = f"duplicate key '{key}' (first given on line {first_line[key]})"
                doc.problems.append(((*path, key), line, message))
            _value(loader, path, doc, keep=False)
            continue
        first_line[key] = line
        if keep:
            doc.lines[(*path, key)] = line
        out[key] = _value(loader, (*path, key), doc, keep=keep)
    loader.get_event()
    return out


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
    except Exception as exc:  # see _unreadable
        doc.problems.append((path, node.start_mark.line + 1, _unreadable(node, exc)))
        return None


def _unreadable(node: yaml.Node, exc: Exception) -> str:
    """Why a scalar with an explicit tag cannot be read: PyYAML's words, or ours for a
    value its constructor chokes on, which raises whatever the value makes it raise
    (``!!int x`` ValueError, ``!!bool maybe`` KeyError, ``!!timestamp x`` AttributeError;
    each was a traceback)."""
    if isinstance(exc, yaml.YAMLError):
        return str(exc).splitlines()[0]
    return f"{node.value!r} cannot be read as {node.tag.rsplit(':', 1)[-1]}"
