"""The `aia` Typer app: one module per command group, errors mapped once (cli/output.py).

Built by :func:`make_app`, whole or with just the command a call needs; the console
script is cli/main.py."""

from __future__ import annotations

import os
from typing import Any

import typer
import typer.main

from aialliance_cli import __version__


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aia {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="No progress or informational lines on stderr; data, warnings and errors stay.",
    ),
) -> None:
    """Hardware-aware runs, benchmarks and profiles of open models on ONNX Runtime."""
    from aialliance_cli.cli import output

    output.set_quiet(quiet)
    if ctx.resilient_parsing:  # shell completion: no config, no errors
        return
    try:
        from aialliance_cli.cli.config import check_env, default_map
        from aialliance_cli.config import load_config

        check_env(ctx.command, ctx, ctx.invoked_subcommand, os.environ)
        path, data = load_config()
        if data and ctx.invoked_subcommand is not None:
            # Only this call's command is built (make_app): other commands' tables wait
            # for their own calls.
            here = set(ctx.command.list_commands(ctx))
            data = {k: v for k, v in data.items() if k in here or k not in COMMANDS}
        if data:
            ctx.default_map = default_map(ctx.command, ctx, data, path, COMMANDS)  # type: ignore[arg-type]
    except Exception as exc:
        from aialliance_cli.errors import BadInputError

        if not isinstance(exc, BadInputError):
            raise
        output.error(str(exc))
        raise typer.Exit(2) from None


# The top-level commands, in the order `aia --help` lists them, and the module of each.
COMMANDS = (
    "detect",
    "run",
    "bench",
    "profiles",
    "cache",
    "inspect",
    "profile",
    "compare",
    "env",
    "quantize",
    "samples",
    "tune",
    "fleet",
)


def make_app(only: str | None = None) -> typer.Typer:
    """The `aia` app with every command, or with just ``only`` (one of COMMANDS).

    The console script builds only the command it was asked for: importing and
    converting the other dozen commands' modules and options would cost every call
    (`aia bench -n 1` is scripted hundreds of times). Help, completion and an unknown
    name get the whole app.
    """
    import importlib

    new = typer.Typer(
        rich_markup_mode=None,  # plain help: `aia --help` stays under 0.25 s
        name="aia",
        help="Hardware-aware runs, benchmarks and profiles of open models on ONNX Runtime.",
        no_args_is_help=True,
        add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, pwsh)
        pretty_exceptions_enable=False,
        # AIA_<COMMAND>_<OPTION> environment variables set options (docs/commands.md#defaults).
        context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "AIA"},
    )
    new.callback()(_root)
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"aialliance_cli.cli.{name}")
        if name in ("detect", "run", "bench"):
            new.command(name)(getattr(module, name))
        elif name in ("profiles", "cache"):
            new.add_typer(module.app, name=name)
        else:
            module.register(new)
    return new


def _plain_help(command: Any) -> None:
    """Keep the AIA_* variables out of every option's help line (docs/commands.md lists them)."""
    for p in getattr(command, "params", ()):
        if hasattr(p, "show_envvar"):
            p.show_envvar = False
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def run(args: list[str], argv: list[str] | None) -> None:
    """Build what ``args`` need and run it (cli/main.py handles signals and exit codes)."""
    command = typer.main.get_command(make_app(_only(args)))
    _plain_help(command)
    command(args=argv, prog_name="aia")


def _only(args: list[str]) -> str | None:
    """The one command this call needs, or None for the whole app."""
    if not args or args[0] not in COMMANDS:
        return None  # `aia --help`, `aia -q bench`, a misspelt name (its suggestions)
    if any(k.endswith("_COMPLETE") for k in os.environ):
        return None  # shell completion lists every command
    return args[0]
