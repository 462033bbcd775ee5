"""Validate profile text: safe YAML, the strict pydantic schema, errors naming file, line,
column and key. Imported only when a profile is not in the validated-profile cache
(profiles/view.py), or to check one (``aia profiles validate``).
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from aialliance_cli.errors import ProfileError
from aialliance_cli.profiles.loader import display_path
from aialliance_cli.profiles.schema import SCHEMA_ID, Profile, did_you_mean
from aialliance_cli.safeparse import BoundedSafeLoader, YamlLimitError

KeyPath = tuple[Any, ...]


def parse_profile(text: str, path: str | Path = "<profile>") -> Profile:
    """Validate profile text; ``path`` only names the file in messages."""
    shown = display_path(path)
    data, positions = _parse_yaml(text, shown)
    if data is None:
        raise ProfileError(
            f"Profile {shown} is empty; it needs at least 'name' and 'model' "
            "(see docs/profiles.md)."
        )
    if not isinstance(data, dict):
        raise ProfileError(
            f"Profile {shown} must be a mapping of keys (name: ..., model: ...), "
            f"got a {_yaml_kind(data)} ({Path(shown).name}:1:1)."
        )
    schema = data.get("schema", SCHEMA_ID)
    if schema != SCHEMA_ID:
        raise ProfileError(
            f"Profile {shown} declares schema {schema!r}, which this aia does not read; "
            f"it reads {SCHEMA_ID} "
            f"({_where(Path(shown).name, positions, ('schema',), value=True)})."
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        # the paragraph names the full path once; each location uses the short file name
        message = _format_errors(exc, Path(shown).name, positions, data)
        raise ProfileError(
            message.replace(f"Profile {Path(shown).name}", f"Profile {shown}", 1)
        ) from None


# --- YAML with positions ---------------------------------------------------------------------


class _MarkLoader(BoundedSafeLoader):
    """SafeLoader that lets us compose nodes ourselves, keeping line and column of each key."""


# (key mark, value mark) per key path; marks are 1-based (line, column)
Positions = dict[KeyPath, tuple[tuple[int, int] | None, tuple[int, int]]]


def _mark(m: yaml.Mark) -> tuple[int, int]:
    return (m.line + 1, m.column + 1)


def _parse_yaml(text: str, shown: str) -> tuple[Any, Positions]:
    loader = _MarkLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
        positions: Positions = {(): (None, _mark(node.start_mark))}
        _walk(loader, node, (), positions, shown)
        return data, positions
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        short = Path(shown).name
        where = f"{short}:{mark.line + 1}:{mark.column + 1}" if mark else short
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if isinstance(exc, YamlLimitError):
            raise ProfileError(f"Profile {shown} is refused: {problem} ({where}).") from None
        raise ProfileError(f"Profile {shown} is not valid YAML: {problem} ({where}).") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"Profile {shown} is not valid YAML: {exc}.") from None
    finally:
        loader.dispose()


def _walk(
    loader: _MarkLoader, node: yaml.Node, path: KeyPath, positions: Positions, shown: str
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the constructor refuses unhashable keys already
            if key in seen:
                line, col = _mark(key_node.start_mark)
                where = _path_str(path) or "the profile"
                raise ProfileError(
                    f"Profile {shown}: duplicate key '{key}' in {where} "
                    f"({Path(shown).name}:{line}:{col}); "
                    f"it is first given at line {seen[key][0]}."
                )
            seen[key] = _mark(key_node.start_mark)
            sub = (*path, key)
            positions[sub] = (_mark(key_node.start_mark), _mark(value_node.start_mark))
            _walk(loader, value_node, sub, positions, shown)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, i)
            positions[sub] = (None, _mark(item.start_mark))
            _walk(loader, item, sub, positions, shown)


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


# --- turning pydantic errors into one paragraph ------------------------------------------------

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}
_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _path_str(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[KeyPath, bool]:
    """Keep the parts of a pydantic loc found in the data; say if it ended on a dict key."""
    path: list[Any] = []
    node = data
    is_key = False
    for part in loc:
        if part == "[key]":
            is_key = True
            break
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and 0 <= part < len(node)
        ):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_tag(part):
            path.append(part)  # a missing or unknown key: the last real part
            node = None
        # anything else is a pydantic tag (a union member, a validator name): skip it
    return tuple(path), is_key


def _is_tag(part: str) -> bool:
    return bool(re.match(r"^(function-|json-or-python|lax-|strict-|nullable|tagged-union)", part))


def _where(shown: str, positions: Positions, path: KeyPath, *, value: bool) -> str:
    probe = path
    while probe not in positions and probe:
        probe = probe[:-1]
    key_mark, value_mark = positions.get(probe, (None, (1, 1)))
    line, col = value_mark if (value or key_mark is None) else key_mark
    return f"{shown}:{line}:{col}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    """The schema model that the mapping at ``path`` is validated against."""
    current: Any = Profile
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part), None
            )
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, tuple, list):
            args = typing.get_args(current)
            current = args[-1] if typing.get_origin(current) is dict else args[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _one_error(
    err: Any, shown: str, positions: Positions, data: Any
) -> tuple[str, tuple[int, int]]:
    kind = err["type"]
    path, is_key = _data_path(err["loc"], data)
    name = _path_str(path) or "the profile"
    got = err.get("input")
    ctx = err.get("ctx") or {}

    if kind == "extra_forbidden":
        parent, key = path[:-1], path[-1] if path else "?"
        model = _model_at(parent)
        hint = did_you_mean(key, _field_names(model)) if model else ""
        where_in = f"in {_path_str(parent)}" if parent else "at the top level"
        where = _where(shown, positions, path, value=False)
        message = f"unknown key '{key}' {where_in} ({where}){hint}"
    elif kind == "missing":
        parent, key = path[:-1], path[-1] if path else "?"
        where = _where(shown, positions, parent, value=False)
        owner = _path_str(parent) or "the profile"
        message = f"{owner} is missing the required key '{key}' ({where})"
    elif is_key:
        where = _where(shown, positions, path, value=False)
        owner = _path_str(path[:-1]) or "the profile"
        key = path[-1] if path else "?"
        message = f"{owner} has a bad key {key!r}: {_clean(err['msg'])} ({where})"
    elif kind in _EXPECTED:
        where = _where(shown, positions, path, value=True)
        message = f"{name} must be {_EXPECTED[kind]}, got {_short(got)} ({where})"
        if kind == "string_type" and isinstance(got, (int, float, bool)):
            message += "; YAML read it as a number or boolean, put it in quotes"
    elif kind == "literal_error":
        where = _where(shown, positions, path, value=True)
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = did_you_mean(got, choices) if isinstance(got, str) else ""
        message = f"{name} must be one of {', '.join(choices)}; got {_short(got)} ({where}){hint}"
    elif kind in _BOUNDS:
        where = _where(shown, positions, path, value=True)
        limit = next(iter(ctx.values()), "?")
        message = f"{name} must be {_BOUNDS[kind]} {limit}, got {_short(got)} ({where})"
    elif kind == "string_pattern_mismatch":
        where = _where(shown, positions, path, value=True)
        message = (
            f"{name} may hold only lowercase letters, digits, '.', '_' and '-', "
            f"got {_short(got)} ({where})"
        )
    elif kind == "string_too_short":
        where = _where(shown, positions, path, value=True)
        message = f"{name} must not be empty ({where})"
    elif kind in ("value_error", "assertion_error"):
        # a field check points at the value; a whole-section check points at the section's key
        is_section = isinstance(got, dict)
        where = _where(shown, positions, path, value=not is_section)
        message = f"{name}: {_clean(err['msg'])} ({where})"
    else:
        where = _where(shown, positions, path, value=True)
        message = f"{name}: {_clean(err['msg'])}, got {_short(got)} ({where})"
    line, col = (int(x) for x in where.rsplit(":", 2)[1:])
    return message, (line, col)


def _clean(msg: str) -> str:
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    return msg[:1].lower() + msg[1:] if msg[:2] != msg[:2].upper() else msg


def _format_errors(exc: ValidationError, shown: str, positions: Positions, data: Any) -> str:
    found: list[tuple[tuple[int, int], str]] = []
    for err in exc.errors(include_url=False):
        message, at = _one_error(err, shown, positions, data)
        if message not in (m for _, m in found):
            found.append((at, message))
    found.sort(key=lambda item: item[0])
    messages = [m for _, m in found]
    if len(messages) == 1:
        return _sentence(f"Profile {shown}: {messages[0]}")
    more = f"; and {len(messages) - 5} more" if len(messages) > 5 else ""
    listed = "; ".join(m.rstrip(".") for m in messages[:5])
    return _sentence(f"Profile {shown} has {len(messages)} problems: {listed}{more}")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."
