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
    import sys

    from aialliance_cli.cli.output import clean, fmt_bytes, info

    total = sum(e.size_bytes or 0 for e in entries)
    info(f"model cache {user_dirs().models}: {len(entries)} entries, {fmt_bytes(total)}")
    # One block per entry, the key alone on its line: it copy-pastes whole at any width.
    for e in entries:
        sys.stdout.write(
            f"{clean(e.key)}\n    {clean(describe_source(e.source))}\n"
            f"    {fmt_bytes(e.size_bytes)}, created {e.created}\n"
        )
    sys.stdout.flush()


def describe_source(source: dict) -> str:
    """A cache entry's source in words: where the model came from and how it was made."""
    kind = source.get("kind")
    if kind == "huggingface":
        if source.get("package"):
            where = f"package {source['package']}"
            if source.get("package_path"):
                where += f", folder {source['package_path']}"
        elif source.get("id"):
            where = f"hub {source['id']}"
            if source.get("revision") not in (None, "main"):
                where += f" @ {source['revision']}"
        else:
            where = f"folder {source.get('path')}"
        task = f", task {source['task']}" if source.get("task") else ""
        return f"Hugging Face model from {where}, exported to ONNX with optimum{task}"
    if kind == "url":
        return f"downloaded from {source.get('url')}"
    if kind == "variant":
        opts = ", ".join(f"{k}={v}" for k, v in (source.get("options") or {}).items())
        how = f"{source.get('method')} quantization" + (f" ({opts})" if opts else "")
        return f"variant {source.get('name')}: {how} of {source.get('base')}"
    if kind == "prepared":  # aialliance_cli/tune/quantize.py
        from aialliance_cli.tune.quantize import QuantSpec

        try:
            how = QuantSpec(**(source.get("spec") or {})).describe()
        except TypeError:
            how = str(source.get("spec"))
        sha = str(source.get("source_sha256") or "")[:12]
        return (
            f"{how} of {source.get('source_path')} (sha256 {sha}...), ONNX Runtime "
            f"{source.get('onnxruntime')}, ISA preset {source.get('isa')}"
        )
    if kind == "text-generation export":
        return f"text-generation export of {source.get('source')} (task {source.get('task')})"
    return ", ".join(f"{k}={v}" for k, v in source.items() if v not in (None, "", {}))


@app.command("clear")
@handles_errors
def clear(
    keys: Annotated[list[str] | None, typer.Argument(help="Keys to remove (default: all).")] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Clear the whole cache without asking.")
    ] = False,
    family: Annotated[
        bool,
        typer.Option(
            "--family",
            help="Let a KEY that names a family of entries (genai) remove every entry in it.",
        ),
    ] = False,
) -> None:
    """Remove cached models (the given keys, or all after a confirmation)."""
    from aialliance_cli.cli.output import fmt_bytes, info
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.models.cache import clear_cache, list_cache

    if not keys and not yes:
        entries = list_cache()
        if not entries:
            info("the model cache is empty")
            return
        size = fmt_bytes(sum(e.size_bytes or 0 for e in entries))
        if not _stdin_is_tty():
            raise BadInputError(
                f"aia cache clear without keys removes all {len(entries)} entries ({size}); "
                "add --yes to confirm when not at a terminal, or name the keys to remove"
            )
        if not typer.confirm(f"Remove all {len(entries)} cached models ({size})?", err=True):
            info("nothing removed")
            return
    freed = clear_cache(list(keys) if keys else None, family=family)
    info(f"freed {fmt_bytes(freed)}")


def _stdin_is_tty() -> bool:
    import sys

    return sys.stdin is not None and sys.stdin.isatty()
