"""The `aia` command: one Typer app, one module per command group, errors mapped once."""

from __future__ import annotations

import sys

import typer

from aialliance_cli import __version__

app = typer.Typer(
    rich_markup_mode=None,  # plain help: `aia --help` stays under 0.25 s
    name="aia",
    help="Hardware-aware runs, benchmarks and profiles of open models on ONNX Runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aia {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Hardware-aware runs, benchmarks and profiles of open models on ONNX Runtime."""


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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (commands map their own errors; see output.handles_errors)."""
    from aialliance_cli import interrupts

    interrupts.install()  # SIGTERM and SIGHUP stop aia like Ctrl-C: results kept, 143 / 129
    try:
        app(args=argv, prog_name="aia")
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted\n")
        sys.exit(interrupts.exit_code())
