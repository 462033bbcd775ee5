"""`aia env`: Python environments that hold other ONNX Runtime builds, for `aia bench --ep`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli.cli.output import handles_errors

env_app = typer.Typer(
    rich_markup_mode=None,  # plain help: `aia --help` stays under 0.25 s
    help="Register, create, list or remove Python environments with other ONNX Runtime builds.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(env_app, name="env")


def _row(rec: Any) -> dict[str, Any]:
    d = rec.to_dict()
    d["problem"] = rec.problem()
    return d


@env_app.command("list")
@handles_errors
def list_(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the registered environments, their ONNX Runtime build and the EPs they offer."""
    from aialliance_cli.envs.registry import list_envs, registry_path

    envs = list_envs()
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json({"registry": str(registry_path()), "envs": [_row(e) for e in envs]})
        return
    from aialliance_cli.cli.output import info, show, table, warn
    from aialliance_cli.providers.catalogue import short_name

    if not envs:
        info(
            "no environments registered; add one with `aia env add NAME --python PATH` or "
            "`aia env create NAME --package onnxruntime-openvino`"
        )
        return
    rows = [
        (
            e.name,
            f"{e.distribution} {e.onnxruntime}",
            ", ".join(short_name(p) for p in e.providers),
            e.python,
            "created by aia" if e.managed else "added",
        )
        for e in envs
    ]
    show(
        table(
            f"Environments ({registry_path()})",
            ["name", "ONNX Runtime", "EPs", "python", "origin"],
            rows,
        )
    )
    for e in envs:
        problem = e.problem()
        if problem:
            warn(problem)


@env_app.command("add")
@handles_errors
def add(
    name: Annotated[str, typer.Argument(help="A name for the environment.")],
    python: Annotated[
        str, typer.Option("--python", help="Its Python interpreter (or its folder).")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Re-probe and replace an environment of that name.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Register an existing Python that has an ONNX Runtime build (probed by running it)."""
    from aialliance_cli.envs.registry import add_env

    rec = add_env(name, python, replace=replace)
    _done(rec, json_, "registered")


@env_app.command("create")
@handles_errors
def create(
    name: Annotated[str, typer.Argument(help="A name for the environment.")],
    package: Annotated[
        str,
        typer.Option(
            "--package", help="The ONNX Runtime build to install, e.g. onnxruntime-openvino."
        ),
    ],
    version: Annotated[
        str | None, typer.Option("--version", help="Its version (default: the newest pip finds).")
    ] = None,
    python: Annotated[
        Path | None,
        typer.Option("--python", help="The interpreter that makes the venv (default: aia's)."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make a venv in aia's data dir, pip install the build and what aia's worker needs."""
    from aialliance_cli.cli.output import clean, is_tty, stderr_console
    from aialliance_cli.envs.registry import create_env

    console = stderr_console()
    verbose = not json_

    def progress(line: str) -> None:
        if verbose and (is_tty() or line.startswith(("$", "creating", "Successfully"))):
            console.print(clean(line), highlight=False, markup=False, style="dim")

    rec = create_env(name, package, version, progress=progress, python=python)
    _done(rec, json_, "created")


@env_app.command("remove")
@handles_errors
def remove(name: Annotated[str, typer.Argument(help="The environment to remove.")]) -> None:
    """Unregister an environment (and delete its folder if `aia env create` made it)."""
    from aialliance_cli.cli.output import info, warn
    from aialliance_cli.envs.registry import unregister_env

    done = unregister_env(name)
    gone = f"; deleted {done.deleted}" if done.deleted else ""
    info(f"removed environment '{done.record.name}' from the registry{gone}")
    if done.kept:
        warn(f"the environment's folder was not deleted: {done.kept}")


def _done(rec: Any, json_: bool, verb: str) -> None:
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(_row(rec))
        return
    from aialliance_cli.cli.output import info, warn
    from aialliance_cli.providers.catalogue import short_name

    eps = ", ".join(short_name(p) for p in rec.providers)
    info(
        f"{verb} environment '{rec.name}': {rec.distribution} {rec.onnxruntime} "
        f"({eps}) at {rec.python}"
    )
    for note in rec.notes:
        warn(note)
    problem = rec.problem()
    if problem:
        warn(problem)
