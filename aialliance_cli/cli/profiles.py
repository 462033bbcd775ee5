"""`aia profiles`: list, show and validate profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aialliance_cli.cli.output import handles_errors

app = typer.Typer(
    rich_markup_mode=None, help="List, show and validate profiles.", no_args_is_help=True
)


@app.command("list")
@handles_errors
def list_(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    columns_: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Table columns, a comma list of name, task, origin, description, path "
            "(default: as many as fit the terminal).",
        ),
    ] = None,
) -> None:
    """List the profiles on the search path (./profiles, user config, bundled)."""
    from aialliance_cli.profiles import DEFAULT_PROFILE, list_profiles

    entries = list_profiles()
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(
            [
                {
                    "name": e.name,
                    "path": str(e.path),
                    "origin": e.origin,
                    "task": e.task,
                    "description": e.description,
                    "default": e.name == DEFAULT_PROFILE,
                }
                for e in entries
            ]
        )
        return
    from aialliance_cli.cli.output import Column, fitted_table, parse_columns, show

    rows = [
        (
            e.name + (" *" if e.name == DEFAULT_PROFILE else ""),
            e.task or "",
            e.origin,
            " ".join((e.description or "").split()),
            str(e.path),
        )
        for e in entries
    ]
    columns = [
        Column("name", "name", 0, numeric=False),
        Column("task", "task", 1, numeric=False),
        Column("origin", "origin", 3, numeric=False),
        Column("description", "description", 2, numeric=False, shrink=True),
        Column("path", "path", 4, numeric=False, shrink=True),
    ]
    table = fitted_table(
        "Profiles", columns, rows, chosen=parse_columns(columns_), caption="* the default profile"
    )
    show(table)


@app.command("show")
@handles_errors
def show_(
    name: Annotated[str, typer.Argument(help="Profile name or file.")],
    json_: Annotated[
        bool, typer.Option("--json", help="Print the validated profile as JSON.")
    ] = False,
) -> None:
    """Print a profile (its YAML, or the validated fields as JSON)."""
    from aialliance_cli.profiles import load_profile

    loaded = load_profile(name)
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(
            {
                "name": loaded.profile.name,
                "path": str(loaded.path),
                "origin": loaded.origin,
                "sha256": loaded.sha256,
                "profile": loaded.profile.model_dump(mode="json", exclude_none=True, by_alias=True),
            }
        )
        return
    import sys

    from aialliance_cli.cli.output import clean, info, show

    info(f"{loaded.path} ({loaded.origin})")
    if not sys.stdout.isatty():  # the file as it is, for `> copy.yaml`
        sys.stdout.write(loaded.text)
        return
    from rich.syntax import Syntax

    show(Syntax(clean(loaded.text), "yaml", theme="ansi_dark", background_color="default"))


@app.command("validate")
@handles_errors
def validate(
    files: Annotated[list[Path], typer.Argument(help="Profile files to check.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check profile files against the schema; exit 2 if any is invalid."""
    from aialliance_cli.profiles import validate_files

    outcomes = validate_files(files)
    bad = [(p, e) for p, e in outcomes if e is not None]
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(
            [
                {"path": str(p), "valid": e is None, "error": None if e is None else str(e)}
                for p, e in outcomes
            ]
        )
    else:
        from aialliance_cli.cli.output import error, markup_safe, stderr_console

        for p, e in outcomes:
            if e is None:
                stderr_console().print(f"[green]ok[/] {markup_safe(p)}", highlight=False)
            else:
                error(str(e))
    if bad:
        raise typer.Exit(2)
