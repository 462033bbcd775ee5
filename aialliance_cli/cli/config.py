"""Turn the config file into Click's ``default_map``, checking every key against the CLI."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError


def default_map(group: Any, ctx: Any, data: dict[str, Any], path: Path) -> dict:
    """``{command: {param_name: value}}`` (nested for groups) from the config's tables."""
    return _for_group(group, ctx, data, path, prefix="")


def _for_group(group: Any, ctx: Any, data: dict, path: Path, prefix: str) -> dict:
    out: dict[str, Any] = {}
    names = group.list_commands(ctx)
    for key, table in data.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise BadInputError(
                f"the config file {path} has a table [{where}], but aia has no command "
                f"'{where.replace('.', ' ')}'{_close(key, names)}; tables are named after "
                "commands, e.g. [bench] or [cache.clear]"
            )
        if not isinstance(table, dict):
            raise BadInputError(
                f"the config file {path}: '{where}' must be a table ([{where}]) of option "
                f"values, got {table!r}"
            )
        cmd = group.get_command(ctx, key)
        if hasattr(cmd, "list_commands"):  # a group: its tables nest ([cache.clear])
            out[key] = _for_group(cmd, ctx, table, path, prefix=f"{where}.")
        else:
            out[key] = _for_command(cmd, table, path, where)
    return out


def _for_command(cmd: Any, table: dict, path: Path, where: str) -> dict:
    by_flag: dict[str, Any] = {}
    for p in cmd.params:
        if getattr(p, "param_type_name", None) != "option":
            continue
        for opt in [*p.opts, *p.secondary_opts]:
            if opt.startswith("--"):
                by_flag[opt[2:]] = p
    out: dict[str, Any] = {}
    for key, value in table.items():
        flag = str(key).replace("_", "-")
        param = by_flag.get(flag)
        if param is None or param.name is None:
            raise BadInputError(
                f"the config file {path}: [{where}] has '{key}', which is not an option of "
                f"aia {where.replace('.', ' ')}{_close(flag, list(by_flag))}"
            )
        if param.multiple and not isinstance(value, list):
            value = [value]
        if isinstance(value, (dict, list)) and not param.multiple:
            raise BadInputError(
                f"the config file {path}: [{where}] {key} must be a single value, got {value!r}"
            )
        out[param.name] = value
    return out


def _close(word: str, choices: list[str]) -> str:
    hits = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{hits[0]}'?)" if hits else ""
