"""`aia bench` for text-generation profiles: TTFT, prefill and decode tokens/s per grid point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

_GEN = "Text generation (text-generation profiles)"

Engine = Annotated[
    str | None,
    typer.Option(
        "--engine",
        rich_help_panel=_GEN,
        help="Who runs the decode loop: aia (its own, IO-bound KV cache) or genai "
        "(ONNX Runtime GenAI's generator). Default: generation.engine, else aia.",
    ),
]
Precision = Annotated[
    str | None,
    typer.Option(
        "--precision",
        rich_help_panel=_GEN,
        help="Weights of the built decoder: fp32, int4 or int8 (CPU), fp16 or bf16 (GPU EPs). "
        "Default: generation.precision, else fp32.",
    ),
]
Exporter = Annotated[
    str | None,
    typer.Option(
        "--exporter",
        rich_help_panel=_GEN,
        help="auto (ONNX Runtime GenAI's model builder when available, else optimum), "
        "builder or optimum. Default: generation.exporter, else auto.",
    ),
]


def gen_options(engine: str | None, precision: str | None, exporter: str | None) -> Any:
    """The generation choices, checked: a bad value is exit 2 naming the option."""
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.runtime.textgen import GenOptions

    for name, value, allowed in (
        ("--engine", engine, ("aia", "genai")),
        ("--precision", precision, ("fp32", "fp16", "bf16", "int4", "int8")),
        ("--exporter", exporter, ("auto", "builder", "optimum")),
    ):
        if value is not None and value not in allowed:
            raise BadInputError(f"{name} must be one of {', '.join(allowed)}; got '{value}'")
    return GenOptions(engine=engine, precision=precision, exporter=exporter)


def parse_int_list(name: str, value: str | None) -> list[int] | None:
    """'128,512' -> [128, 512]; each a positive integer, else exit 2 naming the option."""
    if value is None:
        return None
    from aialliance_cli.errors import BadInputError

    out = []
    for part in str(value).split(","):
        part = part.strip()
        try:
            n = int(part)
        except ValueError:
            raise BadInputError(
                f"{name} expects positive integers like 128,512; got '{part}'"
            ) from None
        if n <= 0:
            raise BadInputError(f"{name} expects positive integers; got {n}")
        from aialliance_cli.limits import check

        check(name, n)  # the option's upper bound (aialliance_cli/limits.py)
        out.append(n)
    return out


def bench_generation_cli(
    target: str,
    *,
    ep: str | None,
    threads: list[int] | int | None,
    strict: bool,
    allow_network: bool,
    random_weights: bool,
    prompt_len: str | None,
    gen_len: str | None,
    batch: str | None,
    warmup: int | None,
    repetitions: int | None,
    json_: bool,
    md: bool,
    out: Path | None,
    options: Any = None,
    csv: bool = False,
    columns: list[str] | None = None,
) -> None:
    """The grid (--prompt-len x --gen-len x --batch) for each --threads value, as llama-bench.

    Each thread count builds its own session; rows and records come in --threads order.
    """
    from aialliance_cli import interrupts
    from aialliance_cli.cli.output import print_json, show, spinner, warn_all
    from aialliance_cli.runtime.api import Overrides
    from aialliance_cli.runtime.textgen import bench_text, prepare_generation

    prompt_lens = parse_int_list("--prompt-len", prompt_len)
    gen_lens = parse_int_list("--gen-len", gen_len)
    batches = parse_int_list("--batch", batch)
    thread_list: list[int | None] = (
        [None] if threads is None else [threads] if isinstance(threads, int) else list(threads)
    )
    quiet = json_ or csv
    rows: list[Any] = []
    records: list[dict[str, Any]] = []
    for t in thread_list:
        ov = Overrides(ep=ep, threads=t, strict=strict)
        with spinner("preparing", enabled=not quiet) as update:
            p = prepare_generation(
                target,
                ov,
                random_weights=random_weights,
                allow_network=allow_network,
                status=update,
                options=options,
            )
        with spinner("generating", enabled=not quiet):
            t_rows, results = bench_text(
                p,
                prompt_lens=prompt_lens,
                gen_lens=gen_lens,
                batches=batches,
                warmup=warmup,
                repetitions=repetitions,
            )
        t_records = [r.to_dict() for r in results]
        if out is not None:  # each thread count's points as soon as they are measured
            from aialliance_cli.results.store import append_jsonl

            append_jsonl(out, t_records)
        rows += t_rows
        records += t_records
        if any(r["status"] == "interrupted" for r in t_records):
            break
    warn_all(w for r in records for w in r["warnings"])
    if json_:
        print_json(records)
    elif csv:
        import sys

        from aialliance_cli.results.tabular import generation_csv_extra, write_csv

        write_csv(records, sys.stdout, extra=generation_csv_extra(records))
    elif md:
        from aialliance_cli.cli.output import clean
        from aialliance_cli.genai.bench import to_markdown

        typer.echo(clean(to_markdown(rows)))
    else:
        from aialliance_cli.cli.benchtable import ep_label
        from aialliance_cli.cli.output import fitted_table

        random = " (random weights)" if random_weights else ""
        with_threads = len(thread_list) > 1 or bool(columns and "threads" in columns)
        show(
            fitted_table(
                f"aia bench: {p.target.name}{random}, text generation",
                _columns(records, threads=with_threads),
                [_row(r, threads=with_threads) for r in records],
                chosen=columns,
                caption=f"EP {ep_label(records[0]) if records else '?'}; engine {p.engine}; "
                f"{p.export.exporter} {p.export.precision}; "
                "t/s = tokens per second; per-token = decode step latency",
            )
        )
    if any(r["status"] == "interrupted" for r in records):
        raise typer.Exit(interrupts.exit_code())


def _col(key: str, header: str, priority: int) -> Any:
    from aialliance_cli.cli.output import Column

    return Column(key, header, priority)


_COLUMNS = [
    _col("batch", "batch", 1),
    _col("prompt", "prompt tokens", 0),
    _col("gen", "gen tokens", 0),
    _col("ttft", "TTFT p50 ms", 1),
    _col("prefill", "prefill t/s", 0),
    _col("decode", "decode t/s", 0),
    _col("per_token", "per-token p50 ms", 2),
    _col("p90", "per-token p90 ms", 5),
    _col("p99", "per-token p99 ms", 4),
    _col("e2e", "e2e p50 ms", 3),
    _col("rss", "peak MiB", 4),
]


def _columns(records: list[dict[str, Any]], *, threads: bool = False) -> list[Any]:
    return [_col("threads", "threads", 1), *_COLUMNS] if threads else _COLUMNS


GENERATION_COLUMN_KEYS = ("threads", *(c.key for c in _COLUMNS))


def check_generation_columns(columns: list[str] | None) -> list[str] | None:
    """``--columns`` keys of the text-generation table, checked (exit 2 naming the known ones)."""
    from aialliance_cli.cli.benchtable import check_columns

    return check_columns(columns, GENERATION_COLUMN_KEYS, "a text-generation table")


def _row(r: dict[str, Any], *, threads: bool = False) -> list[str]:
    m, s = r["metrics"], r["settings"]
    if threads:
        return [str(s.get("intra_op_threads")), *_row(r)]

    def stat(key: str, field: str) -> str:
        v = (m.get(key) or {}).get(field)
        return "n/a" if v is None else f"{v:.1f}"

    return [
        str(s["batch"]),
        str(s["prompt_len"]),
        str(s["gen_len"]),
        stat("ttft_ms", "p50"),
        stat("prefill_tokens_per_s", "mean"),
        stat("decode_tokens_per_s", "mean"),
        stat("per_token_ms", "p50"),
        stat("per_token_ms", "p90"),
        stat("per_token_ms", "p99"),
        stat("e2e_ms", "p50"),
        "n/a" if m.get("peak_rss_bytes") is None else f"{m['peak_rss_bytes'] / 2**20:.0f}",
    ]
