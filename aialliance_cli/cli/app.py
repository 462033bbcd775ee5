"""The `aia` command: one Typer app, one module per command group, errors mapped once."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
import typer.main

from aialliance_cli import __version__

app = typer.Typer(
    rich_markup_mode=None,  # plain help: `aia --help` stays under 0.25 s
    name="aia",
    help="Hardware-aware runs, benchmarks and profiles of open models on ONNX Runtime.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, pwsh)
    pretty_exceptions_enable=False,
    # AIA_<COMMAND>_<OPTION> environment variables set options (docs/commands.md#defaults).
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "AIA"},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aia {__version__}")
        raise typer.Exit()


@app.callback()
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
        if data:
            ctx.default_map = default_map(ctx.command, ctx, data, path)  # type: ignore[arg-type]
    except Exception as exc:
        from aialliance_cli.errors import BadInputError

        if not isinstance(exc, BadInputError):
            raise
        output.error(str(exc))
        raise typer.Exit(2) from None


def _register() -> None:
    from aialliance_cli.cli import bench, cache, detect, profiles, run

    app.command("detect")(detect.detect)
    app.command("run")(run.run)
    app.command("bench")(bench.bench)
    app.add_typer(profiles.app, name="profiles")
    app.add_typer(cache.app, name="cache")
    import importlib

    for name in ("inspect", "profile", "compare", "env", "quantize", "samples", "tune", "fleet"):
        try:
            module = importlib.import_module(f"aialliance_cli.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"aialliance_cli.cli.{name}":
                raise  # a broken import inside the module must show, not hide the command
            continue
        module.register(app)


_register()


def _plain_help(command: Any) -> None:
    """Keep the AIA_* variables out of every option's help line (docs/commands.md lists them)."""
    for p in getattr(command, "params", ()):
        if hasattr(p, "show_envvar"):
            p.show_envvar = False
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (commands map their own errors; see output.handles_errors)."""
    from aialliance_cli import interrupts

    interrupts.install()  # SIGTERM and SIGHUP stop aia like Ctrl-C: results kept, 143 / 129
    _head_start(sys.argv[1:] if argv is None else argv)
    try:
        command = typer.main.get_command(app)
        _plain_help(command)
        command(args=argv, prog_name="aia")
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted\n")
        interrupts.exit_now(interrupts.exit_code())
        sys.exit(interrupts.exit_code())
    except SystemExit as exc:
        # A LoadGen stopped by a signal may still be in its own threads: do not wait.
        interrupts.exit_now(exc.code if isinstance(exc.code, int) else int(exc.code is not None))
        raise


def _head_start(argv: list[str]) -> None:
    """`aia bench` measures in a worker: start it before the commands are even loaded, so
    that its Python, numpy, ONNX Runtime and the machine's inventory load meanwhile. A
    worker no configuration takes is ended at exit (runtime/launch.py)."""
    if not argv or argv[0] != "bench" or {"--in-process", "-h", "--help"} & set(argv):
        return
    from aialliance_cli.runtime.launch import prestart_worker

    prestart_worker()
