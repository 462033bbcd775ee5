"""Turn the config file into Click's ``default_map``, checking every key against the CLI."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError


def default_map(
    group: Any, ctx: Any, data: dict[str, Any], path: Path, known: Sequence[str] = ()
) -> dict:
    """``{command: {param_name: value}}`` (nested for groups) from the config's tables.

    ``known``: every top-level command's name, for the suggestion when a table names
    none (the app may be built with the called command alone)."""
    return _for_group(group, ctx, data, path, prefix="", known=known)


def _for_group(
    group: Any, ctx: Any, data: dict, path: Path, prefix: str, known: Sequence[str] = ()
) -> dict:
    out: dict[str, Any] = {}
    names = group.list_commands(ctx)
    for key, table in data.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise BadInputError(
                f"the config file {path} has a table [{where}], but aia has no command "
                f"'{where.replace('.', ' ')}'{_close(key, [*names, *known])}; tables are "
                "named after commands, e.g. [bench] or [cache.clear]"
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
        source = f"the config file {path}: [{where}] {key} = {value!r}"
        _check_toml_type(param, value, source)
        _check_value(param, value, source)
        out[param.name] = value
    return out


# What a TOML value must be for an option of each Click type (TOML has real types, and
# Click would quietly turn 3.5 into 3 or fail on a number where a path goes).
_TOML_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "a whole number"),
    "integer": ((int,), "a whole number"),
    "integer range": ((int,), "a whole number"),
    "float": ((int, float), "a number"),
    "float range": ((int, float), "a number"),
    "boolean": ((bool,), "true or false"),
    "str": ((str,), "a string"),
    "text": ((str,), "a string"),
    "path": ((str,), "a string (a path)"),
    "choice": ((str,), "a string"),
}


def _check_toml_type(param: Any, value: Any, source: str) -> None:
    kind = _TOML_KINDS.get(str(getattr(getattr(param, "type", None), "name", "")))
    if kind is None:
        return
    types, what = kind
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool) != (bool in types) or not isinstance(item, types):
            flag = next((o for o in param.opts if o.startswith("--")), param.name)
            raise BadInputError(f"{source} is not a valid {flag}: it must be {what}")


def _check_value(param: Any, value: Any, source: str, ctx: Any = None) -> None:
    """Convert as the parser will, so that a bad default names where it came from (exit 2)."""
    try:
        if hasattr(param, "get_runtime_param"):  # Typer's own Click
            param.get_runtime_param().coerce(value, param=param, ctx=ctx)
        else:
            param.type_cast_value(ctx, value)
    except Exception as exc:
        message = getattr(exc, "message", None)
        if not isinstance(message, str) or not hasattr(exc, "format_message"):
            raise  # not a parameter error: a bug to show
        flag = next((o for o in param.opts if o.startswith("--")), param.name)
        raise BadInputError(f"{source} is not a valid {flag}: {message}") from None


def check_env(group: Any, ctx: Any, command: str | None, environ: Any) -> None:
    """Check the ``AIA_<COMMAND>_<OPTION>`` variables of ``command`` (a group: all of its own).

    Click would refuse a bad one with "Invalid value for '--warmup'", which names an
    option the user never typed; this names the variable.
    """
    if command and command in group.list_commands(ctx):
        _check_env(group.get_command(ctx, command), ctx, f"AIA_{command.upper()}", environ)


def _check_env(cmd: Any, ctx: Any, prefix: str, environ: Any) -> None:
    prefix = prefix.replace("-", "_")
    for p in getattr(cmd, "params", ()):
        if getattr(p, "param_type_name", None) != "option" or p.name is None:
            continue
        name = f"{prefix}_{p.name.upper()}"
        if environ.get(name):  # Click ignores an empty variable
            value = environ[name]
            if p.multiple or p.nargs != 1:
                splitter = getattr(
                    getattr(p, "type_descriptor", None), "envvar_list_splitter", None
                )
                value = value.split(splitter) if splitter else value.split()
            _check_value(p, value, f"the environment variable {name}={environ[name]!r}", ctx)
    if hasattr(cmd, "list_commands"):
        for sub in cmd.list_commands(ctx):
            _check_env(cmd.get_command(ctx, sub), ctx, f"{prefix}_{sub.upper()}", environ)


def _close(word: str, choices: list[str]) -> str:
    hits = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{hits[0]}'?)" if hits else ""
