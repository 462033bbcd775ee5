"""`aia bench`: benchmark a profile or ONNX model on the chosen EP(s)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli.cli import options as o
from aialliance_cli.cli.output import handles_errors


@handles_errors
def bench(
    target: o.Target = None,
    ep: o.Ep = None,
    threads: o.Threads = None,
    batch: o.Batch = None,
    dim: o.Dims = None,
    warmup: Annotated[int | None, typer.Option("--warmup", help="Warm-up runs, not measured.")]
    = None,
    iterations: Annotated[
        int | None, typer.Option("--iterations", "-n", help="Measured runs.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Measure for this many seconds instead.")
    ] = None,
    json_: o.Json = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Append one JSON line per configuration here.")
    ] = None,
    strict: o.Strict = False,
    text: o.Text = None,
    input: o.InputFiles = None,
    same_input: Annotated[
        bool, typer.Option("--same-input", help="Feed one input set every time (no rotation).")
    ] = False,
    allow_network: o.AllowNetwork = False,
    allow_custom_ops: o.AllowCustomOps = False,
) -> None:
    """Benchmark latency, throughput, memory and CPU use; `--out` keeps the results."""
    from aialliance_cli.cli.output import progress_bar, spinner, warn
    from aialliance_cli.runtime.api import Overrides
    from aialliance_cli.runtime.api import bench as bench_model

    o.check_positive("--batch", batch)
    o.check_positive("--threads", threads, zero_ok=True)
    o.check_positive("--warmup", warmup, zero_ok=True)
    o.check_positive("--iterations", iterations)
    o.check_positive("--duration", duration)
    if iterations is not None and duration is not None:
        from aialliance_cli.errors import BadInputError

        raise BadInputError("give either --iterations or --duration, not both")
    ov = Overrides(
        ep=ep, threads=threads, batch=batch, dims=o.parse_dims(dim), warmup=warmup,
        iterations=iterations, duration_s=duration, text=text, input_files=tuple(input or ()),
        strict=strict, input_sets=1 if same_input else 4, allow_custom_ops=allow_custom_ops,
    )
    with spinner("preparing", enabled=not json_) as update:
        from aialliance_cli.runtime.api import open_session, prepare_target

        tgt = prepare_target(target, allow_network=allow_network, status=update)
        prepared = open_session(tgt, ov, status=update)
    with progress_bar(f"bench {tgt.name} on {prepared.built.ep}", enabled=not json_) as prog:
        result = bench_model(overrides=ov, prepared=prepared, progress=prog)
    data = result.result.to_dict()
    if out is not None:
        from aialliance_cli.results.store import append_jsonl

        append_jsonl(out, [data])
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(data)
    else:
        for w in data["warnings"]:
            warn(w)
        render_bench([data])
    if data["status"] == "interrupted":
        raise typer.Exit(130)


def render_bench(results: list[dict[str, Any]]) -> None:
    """One table, one column per configuration."""
    from aialliance_cli.cli.output import fmt_bytes, fmt_num, show, table

    def lat(r: dict[str, Any], key: str) -> str:
        return fmt_num(r["metrics"].get("latency_ms", {}).get(key))

    rows: list[tuple[str, ...]] = []
    spec = [
        ("EP", lambda r: r["ep"]["name"]),
        ("device", lambda r: str(r["ep"].get("device") or "")),
        ("threads", lambda r: str(r["settings"]["intra_op_threads"] or "auto")),
        ("batch", lambda r: str(r["settings"]["batch"])),
        ("iterations", lambda r: str(r["metrics"]["iterations"])),
        ("latency min (ms)", lambda r: lat(r, "min")),
        ("latency mean (ms)", lambda r: lat(r, "mean")),
        ("latency p50 (ms)", lambda r: lat(r, "p50")),
        ("latency p90 (ms)", lambda r: lat(r, "p90")),
        ("latency p95 (ms)", lambda r: lat(r, "p95")),
        ("latency p99 (ms)", lambda r: lat(r, "p99")),
        ("latency max (ms)", lambda r: lat(r, "max")),
        ("latency std (ms)", lambda r: lat(r, "std")),
        ("throughput (inf/s)", lambda r: fmt_num(r["metrics"].get("throughput_per_s"), 1)),
        ("throughput (samples/s)", lambda r: fmt_num(r["metrics"].get("samples_per_s"), 1)),
        ("session creation (s)", lambda r: fmt_num(r["metrics"].get("session_create_s"), 3)),
        ("memory added by session", lambda r: fmt_bytes(r["metrics"].get("session_memory_bytes"))),
        ("peak resident memory", lambda r: fmt_bytes(r["metrics"].get("peak_rss_bytes"))),
        ("CPU utilisation", lambda r: _cpu(r)),
    ]
    for label, fn in spec:
        rows.append((label, *(fn(r) for r in results)))
    names = [f"{r['profile']['name']}" for r in results]
    cols = ["metric", *names]
    placement = [r["ep"].get("placement", {}).get("summary") for r in results]
    caption = "; ".join(p for p in placement if p) or None
    show(table("aia bench", cols, rows, caption=caption))


def _cpu(r: dict[str, Any]) -> str:
    m = r["metrics"]
    if m.get("cpu_percent") is None:
        return "n/a"
    return f"{m['cpu_percent']:.0f}% of a core ({m['cpu_percent_of_machine']:.0f}% of the machine)"
