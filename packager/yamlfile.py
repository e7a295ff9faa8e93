"""YAML files people write (regions.yaml, ladder and title files): errors name file:line: field.

One loader remembers the line of every mapping key, and one `Reader` gives typed access to the
fields with errors like ``regions.yaml:14: cdns[1].base_url: must be http(s)``, so a CI log (or a
localization vendor's title file) points at the exact mistake. Every reader of such a file uses
these two; none parses YAML its own way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from packager.durations import parse_duration
from packager.errors import InputError
from packager.files import read_text


class LineMapping(dict[str, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line: int = 0
    lines: dict[str, int]

    @classmethod
    def at(cls, line: int, **values: Any) -> LineMapping:
        """A mapping made in code (a shorthand expanded), placed at `line` of the file."""
        made = cls(**values)
        made.line, made.lines = line, {}
        return made


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineMapping:
    result = LineMapping.at(node.start_mark.line + 1)
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if str(key) in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[str(key)] = loader.construct_object(value_node, deep=True)
        result.lines[str(key)] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path, what: str) -> LineMapping:
    """The top-level mapping of a YAML file (a SafeLoader: no tags run code); unreadable,
    empty or non-UTF-8 files (packager/files.read_text), YAML syntax errors and a non-mapping
    top level are InputErrors naming the file (and line)."""
    text = read_text(path, what)
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{path}{line}: not valid YAML ({problem})") from exc
    if not isinstance(doc, LineMapping):
        raise InputError(f"{path}:1: {what}: top level must be a mapping")
    return doc


class Reader:
    """Typed field access with errors that carry file, line and dotted field name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: LineMapping, key: str | None, name: str, message: str) -> InputError:
        line = where.lines.get(key, where.line) if key is not None else where.line
        return InputError(f"{self.path}:{line}: {name}: {message}")

    def mapping(self, parent: LineMapping, key: str, name: str,
                required: bool = True) -> LineMapping:
        value = parent.get(key)
        if key not in parent and not required:
            return LineMapping.at(parent.line)
        if not isinstance(value, LineMapping):  # a key with nothing under it is a cut-off file
            what = ("missing" if key not in parent else "is empty" if value is None
                    else f"must be a mapping, got {value!r}")
            raise self.fail(parent, key, name, what)
        return value

    def items(self, parent: LineMapping, key: str, name: str,
              shorthand: str | None = None, required: bool = True) -> list[LineMapping]:
        """A list of mappings; with `shorthand`, a bare string item stands for {shorthand: it}."""
        value = parent.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not value:
            raise self.fail(parent, key, name, "must be a non-empty list")
        out: list[LineMapping] = []
        for i, raw in enumerate(value):
            item = raw
            if isinstance(raw, str) and shorthand is not None:
                item = LineMapping.at(parent.lines.get(key, parent.line), **{shorthand: raw})
            if not isinstance(item, LineMapping):
                raise self.fail(parent, key, f"{name}[{i}]", f"must be a mapping, got {item!r}")
            out.append(item)
        return out

    def text(self, m: LineMapping, key: str, name: str, default: str | None = None) -> str:
        value = m.get(key, default)
        if not isinstance(value, str) or not value.strip():
            what = "missing" if key not in m else f"must be a non-empty string, got {value!r}"
            raise self.fail(m, key, f"{name}.{key}", what)
        return value.strip()

    def pattern(self, m: LineMapping, key: str, name: str, pattern: re.Pattern[str]) -> str:
        value = self.text(m, key, name)
        if not pattern.match(value):
            raise self.fail(m, key, f"{name}.{key}", f"{value!r} must match {pattern.pattern}")
        return value

    def number(self, m: LineMapping, key: str, name: str, default: float | None,
               low: float, high: float = float("inf"), integer: bool = False) -> float:
        value = m.get(key, default)
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            kind = "an integer" if integer else "a number"
            what = "missing" if key not in m else f"must be {kind}, got {value!r}"
            raise self.fail(m, key, f"{name}.{key}", what)
        assert isinstance(value, int | float)
        if not low <= value <= high:
            raise self.fail(m, key, f"{name}.{key}", f"must be in [{low}, {high}], got {value}")
        return float(value)

    def flag(self, m: LineMapping, key: str, name: str, default: bool) -> bool:
        value = m.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(m, key, f"{name}.{key}", f"must be true or false, got {value!r}")
        return value

    def duration(self, m: LineMapping, key: str, name: str,
                 default: float | None) -> float | None:
        """A duration with its unit (packager/durations.py), > 0."""
        value = m.get(key)
        if value is None:
            return default
        return parse_duration(value, f"{self.path}:{m.lines.get(key, m.line)}: {name}.{key}")

    def choice(self, m: LineMapping, key: str, name: str, choices: tuple[str, ...],
               default: str) -> str:
        value = m.get(key, default)
        if value not in choices:
            raise self.fail(m, key, f"{name}.{key}", f"must be one of {', '.join(choices)}, "
                            f"got {value!r}")
        return str(value)

    def unknown(self, m: LineMapping, name: str, allowed: set[str]) -> None:
        for key in m:
            if key not in allowed:
                raise self.fail(m, key, f"{name}.{key}" if name else key,
                                f"unknown field (allowed: {', '.join(sorted(allowed))})")
