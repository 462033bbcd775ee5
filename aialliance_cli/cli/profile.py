"""`aia profile`: per-operator times from ONNX Runtime's profiler, on one EP or side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli import interrupts
from aialliance_cli.cli import options as o
from aialliance_cli.cli.output import handles_errors

_MAX_OP_TYPES = 25

Eps = Annotated[
    list[str] | None,
    typer.Option(
        "--ep",
        help="Execution provider to profile (repeatable, or a comma list: --ep cpu,openvino); "
        "two or more are compared side by side. Default: the first of the plan.",
    ),
]


@handles_errors
def profile(
    target: o.Target = None,
    ep: Eps = None,
    warmup: Annotated[
        int | None, typer.Option("--warmup", help="Warm-up runs, not counted (default 5).")
    ] = None,
    iterations: Annotated[
        int | None, typer.Option("--iterations", "-n", help="Profiled runs (default 20).")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="How many of the slowest nodes to list.")] = 10,
    trace: Annotated[
        Path | None,
        typer.Option(
            "--trace",
            help="Copy ONNX Runtime's Chrome trace here (open it in Perfetto); with "
            "several EPs, one file per EP named FILE-<ep>.json.",
        ),
    ] = None,
    json_: o.Json = False,
    min_coverage: o.MinCoverage = None,
    threads: o.Threads = None,
    batch: o.Batch = None,
    dim: o.Dims = None,
    strict: o.Strict = False,
    allow_network: o.AllowNetwork = False,
    allow_custom_ops: o.AllowCustomOps = False,
) -> None:
    """Profile per operator: where the time goes, achieved GFLOP/s, and where each node ran."""
    from aialliance_cli.cli.output import info, progress_bar, shorten, spinner, warn, warn_all
    from aialliance_cli.runtime.api import Overrides
    from aialliance_cli.runtime.oprun import profile as profile_model

    o.check_positive("--batch", batch)
    o.check_positive("--threads", threads, zero_ok=True)
    o.check_positive("--warmup", warmup, zero_ok=True)
    o.check_positive("--iterations", iterations)
    o.check_positive("--top", top)
    o.check_percent("--min-coverage", min_coverage)
    eps = [e.strip() for item in ep or [] for e in item.split(",") if e.strip()]
    ov = Overrides(
        threads=threads,
        batch=batch,
        dims=o.parse_dims(dim),
        warmup=warmup,
        iterations=iterations,
        strict=strict,
        allow_custom_ops=allow_custom_ops,
        min_coverage=min_coverage,
    )
    with (
        spinner("preparing", enabled=not json_) as update,
        progress_bar("profiling", enabled=not json_) as prog,
    ):
        run = profile_model(
            target,
            eps,
            ov,
            top=top,
            trace=trace,
            status=update,
            progress=prog,
            allow_network=allow_network,
        )
    for ep_name, why in run.skipped:
        warn(f"{ep_name} skipped: {shorten(why)}")
    for p in run.profiles:
        warn_all(p.result.warnings)
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(run.to_dict())
    else:
        for p in run.profiles:
            env = p.result.extra.get("environment")
            if env:
                info(
                    f"{_short(p.ep)} ran in environment '{env['name']}' "
                    f"({env.get('distribution')} {env.get('onnxruntime')}, {env['python']})"
                )
            render_profile(p, top)
        by_ep = {p.ep: p for p in run.profiles}
        for a, b, rows in run.comparisons:
            render_comparison(by_ep[a], by_ep[b], rows)
        for p in run.profiles:
            if p.trace_path is not None:
                info(
                    f"trace of {p.ep} written to {p.trace_path} (open it in "
                    "https://ui.perfetto.dev or chrome://tracing)"
                )
    if run.interrupted:
        raise typer.Exit(interrupts.exit_code())


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)


def _short(ep: str) -> str:
    return ep.removesuffix("ExecutionProvider")


def _ms(us: float | None) -> str:
    return "n/a" if us is None else f"{us / 1e3:.3f}"


def render_profile(p: Any, top: int) -> None:
    from aialliance_cli.cli.inspect import fmt_flops, right_table
    from aialliance_cli.cli.output import show

    prof = p.profile
    runs = max(prof.runs, 1)
    name = p.result.profile["name"]
    title = (
        f"aia profile: {name} on {_short(p.ep)}: {prof.runs} runs after {p.warmup_done} "
        f"warm-up, {_ms(prof.run_us_mean)} ms per run"
    )
    rows = [
        (
            s.op_type,
            _short(s.ep),
            _ms(s.total_us / runs),
            f"{s.share * 100:.1f}%",
            f"{s.calls / runs:g}",
            f"{s.mean_us:.1f}",
        )
        for s in prof.by_op_type[:_MAX_OP_TYPES]
    ]
    rest = prof.by_op_type[_MAX_OP_TYPES:]
    if rest:
        rows.append(
            (
                f"{len(rest)} more op types",
                "",
                _ms(sum(s.total_us for s in rest) / runs),
                f"{sum(s.share for s in rest) * 100:.1f}%",
                "",
                "",
            )
        )
    caption = "share: of the kernel time; calls and times per run"
    if any(s.op_type in ("If", "Loop", "Scan") for s in prof.by_op_type):
        caption += (
            "; If/Loop/Scan: their own time only (their subgraphs' nodes are listed as "
            "themselves, so nothing counts twice)"
        )
    compiled = sorted({_short(n.ep) for n in prof.by_node if n.name.startswith(f"{n.ep}_")})
    if compiled:
        caption += (
            f". {', '.join(compiled)} compiled the graph into subgraphs: ONNX Runtime's "
            "profiler sees one kernel per subgraph, not the ops inside it"
        )
    show(
        right_table(
            title,
            ["op type", "EP", "ms/run", "share", "calls/run", "µs/call"],
            rows,
            right=(2, 3, 4, 5),
            caption=caption,
        )
    )
    node_rows = [
        (n.name, n.op_type, _short(n.ep), _ms(n.total_us / runs), f"{n.share * 100:.1f}%")
        for n in prof.top_nodes(top)
    ]
    show(
        right_table(
            f"Slowest nodes (top {len(node_rows)})",
            ["node", "op type", "EP", "ms/run", "share"],
            node_rows,
            right=(3, 4),
        )
    )
    run_us = prof.run_us_mean
    overhead = prof.session_overhead_us / runs

    def pct(us: float) -> str:
        return f" ({us / run_us * 100:.1f}% of a run)" if run_us else ""

    lines = [
        ("run (model_run)", f"{_ms(run_us)} ms"),
        ("kernels", f"{_ms(prof.kernel_us_total / runs)} ms{pct(prof.kernel_us_total / runs)}"),
        ("session overhead outside kernels", f"{_ms(overhead)} ms{pct(overhead)}"),
        ("device copies (Memcpy)", f"{_ms(prof.memcpy_us / runs)} ms"),
        *(
            (f"kernel time on {_short(e)}", f"{_ms(us / runs)} ms")
            for e, us in prof.us_by_ep.items()
        ),
    ]
    from aialliance_cli.analysis.flops import CONTROL_FLOW_NOTE, work_in_subgraphs

    if work_in_subgraphs(p.flops):
        lines.append(("work", CONTROL_FLOW_NOTE))
    elif p.flops is not None and p.flops.total:
        rate = p.model_gflops_per_s
        lines.append(
            (
                "work",
                f"{fmt_flops(p.flops.total)} per run"
                + (f", {rate:.3g} GFLOP/s over the kernel time" if rate else ""),
            )
        )
    if p.placement is not None:
        lines.append(("placement", p.placement_line()))
    show(right_table("Per run", ["", ""], lines, header=False))
    if p.achieved:
        heavy = p.achieved[:top]
        ach_rows = [
            (
                r.op_type,
                _short(r.ep),
                f"{r.flops_per_run / 1e9:.3g}",
                _ms(r.us_per_run),
                f"{r.gflops_per_s:.3g}" if r.gflops_per_s is not None else "n/a",
            )
            for r in heavy
        ]
        matched = p.flops_matched_share
        caption = "FLOPs counted at the run's dims (1 multiply-add = 2 FLOPs)"
        if matched is not None and matched < 0.995:
            caption += (
                f"; {matched * 100:.1f}% of the FLOPs matched profiled nodes "
                "(the rest were fused into nodes named after others)"
            )
        show(
            right_table(
                "Achieved GFLOP/s of the heaviest op types",
                ["op type", "EP", "GFLOP/run", "ms/run", "GFLOP/s"],
                ach_rows,
                right=(2, 3, 4),
                caption=caption,
            )
        )


def _compiled_eps(p: Any) -> set[str]:
    """EPs that ran compiled subgraphs (ORT names their nodes ``<EP>_<subgraph>``)."""
    return {n.ep for n in p.profile.by_node if n.name.startswith(f"{n.ep}_")}


def render_comparison(a: Any, b: Any, rows: list[Any]) -> None:
    """Per op type side by side; ``a`` and ``b`` are the two EpProfiles."""
    from aialliance_cli.cli.inspect import right_table
    from aialliance_cli.cli.output import show

    sa, sb = _short(a.ep), _short(b.ep)
    ka = a.profile.kernel_us_total / max(a.profile.runs, 1)
    kb = b.profile.kernel_us_total / max(b.profile.runs, 1)
    out = [
        (
            "all kernels",
            _ms(ka),
            _ms(kb),
            f"{ka / kb:.2f}x" if kb else "",
            "",
            "",
            "faster" if kb and ka / kb > 1.05 else "slower" if kb and ka / kb < 0.95 else "",
        )
    ]
    compiled_a, compiled_b = _compiled_eps(a), _compiled_eps(b)
    for r in rows:
        if r.a_us_per_run is None or r.b_us_per_run is None:
            here, there = (r.a_eps, compiled_b) if r.b_us_per_run is None else (r.b_eps, compiled_a)
            if set(here) & (compiled_a | compiled_b):
                note = "compiled subgraph"
            elif there:
                note = f"in {', '.join(_short(e) for e in sorted(there))} subgraph"
            else:
                note = f"only on {sa if r.b_us_per_run is None else sb} (fused differently)"
        else:
            note = "faster" if r.speedup > 1.05 else "slower" if r.speedup < 0.95 else "same"
        if b.ep != "CPUExecutionProvider" and "CPUExecutionProvider" in r.b_eps:
            note += f"; fell back to CPU on {sb}"
        out.append(
            (
                r.op_type,
                _ms(r.a_us_per_run) if r.a_us_per_run is not None else "",
                _ms(r.b_us_per_run) if r.b_us_per_run is not None else "",
                f"{r.speedup:.2f}x" if r.speedup is not None else "",
                ", ".join(_short(e) for e in r.a_eps),
                ", ".join(_short(e) for e in r.b_eps),
                note,
            )
        )
    show(
        right_table(
            f"{sa} vs {sb}: kernel time per run by op type",
            ["op type", f"{sa} ms", f"{sb} ms", "speedup", f"EP ({sa})", f"EP ({sb})", ""],
            out,
            right=(1, 2, 3),
            caption=f"speedup = {sa} time / {sb} time",
        )
    )
