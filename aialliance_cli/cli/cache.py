"""`aia cache`: the exported and downloaded models aia keeps."""

from __future__ import annotations

from typing import Annotated

import typer

from aialliance_cli.cli.output import handles_errors

app = typer.Typer(
    rich_markup_mode=None, help="List or clear the model cache.", no_args_is_help=True
)


@app.command("list")
@handles_errors
def list_(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List cached models (exports and downloads) with their source and size."""
    from aialliance_cli.models.cache import list_cache
    from aialliance_cli.paths import user_dirs

    entries = list_cache()
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(
            {
                "root": str(user_dirs().models),
                "entries": [
                    {
                        "key": e.key,
                        "path": str(e.path),
                        "source": e.source,
                        "created": e.created,
                        "size_bytes": e.size_bytes,
                    }
                    for e in entries
                ],
            }
        )
        return
    from aialliance_cli.cli.output import fmt_bytes, show, table

    rows = [(e.key, _describe(e.source), fmt_bytes(e.size_bytes), str(e.created)) for e in entries]
    total = sum(e.size_bytes or 0 for e in entries)
    show(
        table(
            f"Model cache: {user_dirs().models}",
            ["key", "source", "size", "created"],
            rows,
            caption=f"{len(entries)} entries, {fmt_bytes(total)}",
        )
    )


def _describe(source: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in source.items() if v not in (None, "", {}))[:80]


@app.command("clear")
@handles_errors
def clear(
    keys: Annotated[list[str] | None, typer.Argument(help="Keys to remove (default: all).")] = None,
) -> None:
    """Remove cached models (all, or the given keys)."""
    from aialliance_cli.cli.output import fmt_bytes, info
    from aialliance_cli.models.cache import clear_cache

    freed = clear_cache(list(keys) if keys else None)
    info(f"freed {fmt_bytes(freed)}")
