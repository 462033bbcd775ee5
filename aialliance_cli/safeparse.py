"""Bounded parsing of YAML and JSON that users hand to aia (profiles, result files, model configs).

Every YAML or JSON document that comes from outside aia is read through here, so that a
hostile file costs at most a bounded amount of time and memory and always ends in a
``BadInputError`` (exit 2) with a message, never a ``RecursionError`` or ``MemoryError``:

- nesting deeper than ``MAX_DEPTH`` levels is refused (also when aliases build it);
- YAML aliases (``*name``) may add at most ``MAX_ALIAS_NODES`` nodes to a document in
  total, so a "billion laughs" file is refused after reading its few hundred bytes;
- a recursive alias (``&a [*a]``) is refused;
- numbers too long to convert (Python refuses integers of more than 4300 digits) are
  refused with the line they are on.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from aialliance_cli.errors import BadInputError

# re-exported: reading small files lives in smallfile.py, which needs no YAML
from aialliance_cli.smallfile import MAX_TEXT_BYTES, read_small_bytes, read_small_text  # noqa: F401

MAX_DEPTH = 64  # levels of nested mappings and lists (a profile needs fewer than 10)
MAX_ALIAS_NODES = 10_000  # nodes that aliases may add to one YAML document, in total


class ParseLimitError(BadInputError):
    """A document is beyond what aia reads (too deep, too many alias expansions)."""


class YamlLimitError(ComposerError):
    """Raised while composing a YAML document that exceeds a bound; carries the mark."""


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with bounded nesting and alias expansion."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlLimitError(
                    None,
                    None,
                    f"nesting deeper than {MAX_DEPTH} levels is not read",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # Stop at the scanner: past this depth PyYAML's simple-key bookkeeping is quadratic.
        if self.flow_level >= MAX_DEPTH:
            raise YamlLimitError(
                None,
                None,
                f"nesting deeper than {MAX_DEPTH} levels is not read",
                self.get_mark(),
            )
        super().fetch_flow_collection_start(token_class)

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            check_expansion(node)
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # int('9' * 5000), a bad timestamp
            raise ConstructorError(
                None, None, f"cannot read the value ({_first_line(exc)})", node.start_mark
            ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).split(";")[0].splitlines()
    return text[0] if text else type(exc).__name__


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_expansion(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases expand too much, nest too deep, or loop.

    Linear in the number of distinct nodes: sizes and depths are memoised per node, so a
    billion-laughs document is measured, not expanded.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    cap = 10**12  # sizes beyond this are all "too many"; keeps the integers small
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = min(cap, 1 + sum(size[id(k)] for k in kids))
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            visiting.discard(key)
            if depth[key] > MAX_DEPTH:
                raise YamlLimitError(
                    None,
                    None,
                    f"aliases nest the document deeper than {MAX_DEPTH} levels",
                    node.start_mark,
                )
            continue
        if key in size:
            continue
        if key in visiting:
            raise YamlLimitError(
                None, None, "an alias refers to a node that contains it", node.start_mark
            )
        visiting.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node))
    added = size[id(root)] - len(size)
    if added > MAX_ALIAS_NODES:
        raise YamlLimitError(
            None,
            None,
            f"aliases expand to {added if added < cap else 'more than 10^12'} nodes; "
            f"aia reads at most {MAX_ALIAS_NODES:,} nodes added by aliases",
            root.start_mark,
        )


def load_yaml(text: str, what: str) -> Any:
    """Parse one YAML document safely and within bounds; ``what`` names it in messages."""
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        cls = ParseLimitError if isinstance(exc, YamlLimitError) else BadInputError
        raise cls(f"{what} is not readable YAML: {problem}{where}.") from None
    except yaml.YAMLError as exc:
        raise BadInputError(f"{what} is not valid YAML: {exc}.") from None
    finally:
        loader.dispose()


def bounded_json(text: str | bytes, what: str) -> Any:
    """``json.loads`` within bounds: syntax errors stay ``json.JSONDecodeError`` (for callers
    with their own message); depth and number limits are ``BadInputError`` naming ``what``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise ParseLimitError(
            f"{what} nests deeper than {MAX_DEPTH} levels; aia does not read it."
        ) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise BadInputError(f"{what} is not readable JSON: {_first_line(exc)}.") from None
    if json_depth(data) > MAX_DEPTH:
        raise ParseLimitError(f"{what} nests deeper than {MAX_DEPTH} levels; aia does not read it.")
    return data


def loads_json(text: str | bytes, what: str) -> Any:
    """Parse JSON within bounds; ``BadInputError`` (exit 2) names ``what`` on any problem."""
    try:
        return bounded_json(text, what)
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None


def json_depth(data: Any, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of parsed JSON (scalars are 0), counted without recursion.

    Stops counting once ``limit`` is passed: the answer is then ``limit + 1``.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        level += 1
        if level > limit:
            return limit + 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest
