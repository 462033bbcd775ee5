"""`aia fleet detect|bench`: aia's detection and benchmarks on every node of a Ray cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli.cli import options as o
from aialliance_cli.cli.output import handles_errors

app = typer.Typer(
    help="Detect and benchmark every node of a Ray cluster (docs/fleet.md).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="fleet")


_C = "Cluster"
Address = Annotated[
    str | None,
    typer.Option(
        "--address",
        rich_help_panel=_C,
        help="The Ray cluster: auto, HOST:PORT (the head's GCS port) or ray://HOST:10001. "
        "Default: the RAY_ADDRESS environment variable.",
    ),
]
Local = Annotated[
    int | None,
    typer.Option(
        "--local",
        metavar="N",
        rich_help_panel=_C,
        help="Start a throw-away Ray cluster of N nodes on this machine instead (torn down "
        "at exit): try the fleet commands without other machines.",
    ),
]
Nodes = Annotated[
    list[str] | None,
    typer.Option(
        "--nodes",
        rich_help_panel=_C,
        help="Only these nodes: ids (a unique prefix of 6+ characters) or names, comma "
        "separated or repeated. Default: every alive node.",
    ),
]
Select = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        rich_help_panel=_C,
        help="Only nodes with this label (KEY=VALUE) or resource (GPU; RESOURCE=N for at "
        "least N); repeat to require several.",
    ),
]


@contextlib.contextmanager
def _cluster(address: str | None, local: int | None) -> Iterator[Any]:
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.fleet import connect as C

    if local is not None and address is not None:
        raise BadInputError("give either --address or --local N, not both")
    if local is not None:
        if local < 1:
            raise BadInputError(
                f"--local {local}: a local cluster needs at least 1 node (--local 3 starts three)"
            )
        from aialliance_cli.cli.output import info
        from aialliance_cli.limits import check

        check("--local", local)  # nodes on this one machine: at most 4 x its cores
        info(f"starting a local Ray cluster of {local} node(s) on this machine")
        with C.local_cluster(local) as conn:
            info(f"local Ray cluster up in {conn.startup_s:.1f} s")
            yield conn
        return
    conn = C.connect(address)
    try:
        yield conn
    finally:
        C.disconnect()


def _chosen(nodes_opt: list[str] | None, select: list[str] | None) -> list[Any]:
    from aialliance_cli.fleet.nodes import list_nodes, select_nodes

    return select_nodes(list_nodes(), nodes_opt, select)


@app.command("detect")
@handles_errors
def detect(
    address: Address = None,
    local: Local = None,
    nodes: Nodes = None,
    select: Select = None,
    json_: o.Json = False,
    diff: Annotated[
        bool,
        typer.Option("--diff", help="Show only the facts where nodes differ, with what it means."),
    ] = False,
) -> None:
    """Every node's inventory and EP plan, found by aia's own detection on that node."""
    from aialliance_cli.fleet.run import fleet_detect
    from aialliance_cli.hardware.diff import diff_machines

    with _cluster(address, local) as conn:
        chosen = _chosen(nodes, select)
        answers = fleet_detect(chosen)
    docs = [(n.name, d) for n, d, _ in answers if d is not None]
    failed = [(n, why) for n, d, why in answers if d is None]
    if json_:
        from aialliance_cli.cli.output import print_json

        out: dict[str, Any] = {
            "schema": "aia.fleet-detect/1",
            "cluster": conn.address,
            "nodes": [{"node": n.to_dict(), **(d or {}), "error": why} for n, d, why in answers],
        }
        if diff:
            out["diff"] = diff_machines(docs).to_dict()
        print_json(out)
    else:
        _render_nodes(answers, diff=diff)
    if failed:
        from aialliance_cli.cli.output import error

        for n, why in failed:
            error(f"{n.name}: {why}")
        raise typer.Exit(1)


def _isa_tags(features: Any) -> str:
    f = set(features or [])
    tags = [
        ("avx2", "avx2" in f),
        ("avx512", "avx512f" in f),
        ("vnni", any("vnni" in x for x in f)),
        ("bf16", any("bf16" in x for x in f)),
        ("fp16", "avx512_fp16" in f),
        ("amx", any(x.startswith("amx") for x in f)),
        ("neon", "neon" in f or "asimd" in f),
        ("sve", any(x.startswith("sve") for x in f)),
    ]
    return " ".join(t for t, present in tags if present) or "-"


def _render_nodes(answers: list[Any], *, diff: bool) -> None:
    from aialliance_cli.cli.detect import render_diff
    from aialliance_cli.cli.output import fmt_bytes, info, show, table
    from aialliance_cli.hardware.diff import diff_machines

    rows = []
    unusable: dict[tuple[str, str], list[str]] = {}
    for n, d, why in answers:
        if d is None:
            rows.append((n.name, n.node_id[:8], n.host, f"no answer: {why}", "", "", "", "", ""))
            continue
        inv, plan = d.get("inventory") or {}, d.get("plan") or {}
        cpu, sw = inv.get("cpu") or {}, inv.get("software") or {}
        accs = ", ".join(a.get("name") or "?" for a in inv.get("accelerators") or []) or "-"
        choices = plan.get("choices") or []
        ep = (choices[0].get("short") or choices[0].get("ep")) if choices else "-"
        for u in plan.get("unlocks") or []:
            key = (str(u.get("device")), str(u.get("pip") or u.get("url") or ""))
            unusable.setdefault(key, []).append(n.name)
        rows.append(
            (
                n.name,
                n.node_id[:8],
                inv.get("hostname") or n.host,
                str(cpu.get("model_name")),
                _isa_tags(cpu.get("features")),
                f"{cpu.get('physical_cores')}/{cpu.get('logical_cores')}",
                fmt_bytes((inv.get("memory") or {}).get("total_bytes")),
                accs,
                f"{ep} (ORT {sw.get('ort_version')})",
            )
        )
    show(
        table(
            f"Fleet: {len(answers)} node(s)",
            ["node", "id", "host", "CPU", "ISA", "cores", "memory", "accelerators", "EP (ORT)"],
            rows,
        )
    )
    from aialliance_cli import __version__

    for n, d, _ in answers:
        theirs = ((d or {}).get("runtime") or {}).get("aia_version")
        if theirs and theirs != __version__:
            from aialliance_cli.cli.output import warn

            warn(f"{n.name} runs aia {theirs}, this driver aia {__version__}: install one version")
    for (device, fix), names in unusable.items():
        who = "every node" if len(names) == len(answers) > 1 else ", ".join(names)
        info(f"{who}: {device} present but not usable yet; to unlock: {fix or 'see aia detect'}")
    docs = [(n.name, d) for n, d, _ in answers if d is not None]
    if diff and len(docs) > 1:
        render_diff(diff_machines(docs), only_differences=True)


# ----------------------------------------------------------------------------- bench


@app.command("bench")
@handles_errors
def bench(
    target: o.Target = None,
    address: Address = None,
    local: Local = None,
    nodes: Nodes = None,
    select: Select = None,
    ep: Annotated[
        list[str] | None,
        typer.Option(
            "--ep",
            help="Force these EP(s) on every node (a comma list sweeps them; 'all' = every "
            "EP usable on each node). Default: each node's own plan.",
        ),
    ] = None,
    threads: o.SweepThreads = None,
    batch: o.SweepBatch = None,
    dim: o.SweepDims = None,
    variant: o.Variants = None,
    warmup: o.Warmup = None,
    iterations: o.Iterations = None,
    duration: o.Duration = None,
    same_input: o.SameInput = False,
    strict: o.Strict = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Append each node's results here (JSON Lines) as it finishes."),
    ] = None,
    json_: o.Json = False,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            metavar="NODE",
            help="Compare every node with this one (id, prefix or name). Default: the first.",
        ),
    ] = None,
    ship_model: Annotated[
        bool,
        typer.Option(
            "--ship-model",
            help="Resolve the model here and send its ONNX file to every node through "
            "Ray's object store (checked by sha256), instead of each node resolving it.",
        ),
    ] = False,
    node_timeout: Annotated[
        float,
        typer.Option(
            "--node-timeout", help="Seconds one node's benchmarks may take before it is failed."
        ),
    ] = 1800.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds one configuration may take on a node.")
    ] = 600.0,
    allow_network: o.AllowNetwork = False,
    allow_custom_ops: o.AllowCustomOps = False,
    no_tuned: o.NoTuned = False,
) -> None:
    """Benchmark a profile or model on every node; one node per machine at a time."""
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.runtime import sweep as S

    o.check_positive("--warmup", warmup, zero_ok=True)
    o.check_positive("--iterations", iterations)
    o.check_positive("--duration", duration)
    o.check_positive("--node-timeout", node_timeout)
    o.check_positive("--timeout", timeout)
    if iterations is not None and duration is not None:
        raise BadInputError("give either --iterations or --duration, not both")
    if out is not None:
        from aialliance_cli.results.store import check_writable

        check_writable(out)
    from aialliance_cli.runtime.textgen import is_text_generation

    if is_text_generation(target):
        raise BadInputError(
            f"{target} is a text-generation profile; `aia fleet bench` runs the plain "
            "benchmark loop. Run `aia bench` on each machine for generation (docs/fleet.md)"
        )
    from aialliance_cli.fleet import spec as fleet_spec

    spec = fleet_spec.bench_spec(
        target,
        eps=S.parse_ep_list(",".join(ep)) if ep else None,
        # Each node checks --threads against its own cores; this machine's say nothing.
        threads=S.parse_int_list("--threads", threads, zero_ok=True, bound=_node_threads_bound()),
        batches=S.parse_int_list("--batch", batch),
        dims=S.parse_dim_lists(dim),
        variant=variant,
        warmup=warmup,
        iterations=iterations,
        duration=duration,
        strict=strict,
        same_input=same_input,
        allow_network=allow_network,
        allow_custom_ops=allow_custom_ops,
        timeout=timeout,
        no_tuned=no_tuned,
    )
    model_bytes = fleet_spec.ship_model(spec, target, allow_network) if ship_model else None
    with _cluster(address, local) as conn:
        outcome = _bench_on_cluster(
            conn, spec, model_bytes, nodes, select, out, json_, baseline, node_timeout
        )
    _report(outcome, json_=json_, baseline=baseline)
    code = outcome.exit_code
    if code:
        raise typer.Exit(code)


def _node_threads_bound() -> Any:
    from aialliance_cli.limits import Bound

    return Bound(0, 65536, low_ok=True, integer=True)


def _bench_on_cluster(
    conn: Any,
    spec: dict[str, Any],
    model_bytes: bytes | None,
    nodes_opt: list[str] | None,
    select: list[str] | None,
    out: Path | None,
    json_: bool,
    baseline: str | None,
    node_timeout: float,
) -> Any:
    import ray

    from aialliance_cli.cli.output import info
    from aialliance_cli.fleet.nodes import find_node, machine_groups
    from aialliance_cli.fleet.run import fleet_bench

    chosen = _chosen(nodes_opt, select)
    if baseline is not None:
        from aialliance_cli.errors import BadInputError

        try:
            find_node(chosen, baseline)  # a wrong name fails before anything runs
        except BadInputError as exc:
            raise BadInputError(str(exc).replace("--nodes:", "--baseline:", 1)) from None
    groups = machine_groups(chosen, local=conn.local)
    for g in groups:
        if len(g) > 1:
            where = "this machine (--local)" if conn.local else f"one machine ({g[0].host})"
            info(
                f"{', '.join(n.name for n in g)} share {where}: benchmarked one after the "
                "other, never at once"
            )
    model_ref = ray.put(model_bytes) if model_bytes is not None else None
    with _Progress(len(chosen), enabled=True) as progress:

        def on_event(kind: str, outcome: Any) -> None:
            if kind != "running" and out is not None and outcome.results:
                from aialliance_cli.results.store import append_jsonl

                append_jsonl(out, outcome.results)
            progress.update(kind, outcome)

        return fleet_bench(
            chosen,
            groups,
            spec,
            cluster=conn.address,
            local=conn.local,
            model=model_ref,
            node_timeout_s=node_timeout,
            on_event=on_event,
        )


class _Progress:
    """Nodes done / running / failed on stderr: a bar on a terminal, a line per change else."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        from aialliance_cli.cli.output import is_tty

        self.total = total
        self.enabled = enabled
        self.counts = {"running": 0, "ok": 0, "failed": 0, "interrupted": 0}
        self.live = enabled and is_tty()
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> _Progress:
        if self.live:
            from aialliance_cli.cli.output import new_progress

            self.progress = new_progress(refresh_per_second=1)  # a node measures meanwhile
            self.progress.__enter__()
            self.task = self.progress.add_task(self._line(), total=self.total)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def _line(self) -> str:
        c = self.counts
        return (
            f"fleet: {c['ok']} done, {c['running']} running, "
            f"{c['failed'] + c['interrupted']} failed of {self.total}"
        )

    def update(self, kind: str, outcome: Any) -> None:
        if kind == "running":
            self.counts["running"] += 1
        else:
            self.counts["running"] -= 1
            self.counts[kind if kind in self.counts else "failed"] += 1
        node = outcome.node.name
        if kind == "running":
            msg = f"{node}: running"
        elif kind == "ok":
            msg = f"{node}: done in {outcome.seconds:.1f} s, " + _headline(outcome.results)
        else:
            msg = f"{node}: {kind}: {outcome.reason or 'no reason given'}"
        msg += f" [{self._line()[len('fleet: ') :]}]"
        if not self.enabled:
            return
        if self.progress is not None:
            from aialliance_cli.cli.output import markup_safe

            done = self.counts["ok"] + self.counts["failed"] + self.counts["interrupted"]
            self.progress.update(self.task, completed=done, description=self._line())
            self.progress.console.print(f"[dim]{markup_safe(msg)}[/]", highlight=False)
        elif kind in ("ok", "running"):
            from aialliance_cli.cli.output import info

            info(msg)
        else:
            from aialliance_cli.cli.output import error

            error(msg)


def _headline(results: list[dict[str, Any]]) -> str:
    from aialliance_cli.cli.output import fmt_num

    parts = []
    for r in results:
        p50 = ((r.get("metrics") or {}).get("latency_ms") or {}).get("p50")
        ep = (r.get("ep") or {}).get("name") or "?"
        parts.append(f"{ep} p50 {fmt_num(p50)} ms")
    return "; ".join(parts)


def _report(outcome: Any, *, json_: bool, baseline: str | None) -> None:
    from aialliance_cli.cli.output import info, warn

    results = outcome.results
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(results)
    sweep = len(results) > len(outcome.nodes)
    for r in results:
        who = ((r.get("fleet") or {}).get("node_name") or "?") + ": "
        if sweep and (r.get("config") or {}).get("label"):
            who += f"{r['config']['label']}: "
        for w in r.get("warnings") or []:
            warn(who + w)
    if not json_:
        usable = [r for r in results if r.get("status") == "ok"]
        if usable:
            from aialliance_cli.cli.compare import render_table
            from aialliance_cli.results.compare import compare

            base = _base_name(results, baseline) if baseline else None
            if base is None:
                base = (usable[0].get("fleet") or {}).get("node_name")
            render_table(compare(results, baseline=base))
    done = sum(1 for n in outcome.nodes if n.status == "ok")
    failed = [n for n in outcome.nodes if n.status in ("failed", "interrupted")]
    skipped = [n for n in outcome.nodes if n.status == "pending"]
    summary = f"{done} of {len(outcome.nodes)} node(s) ok"
    if failed:
        summary += f", {len(failed)} failed ({', '.join(n.node.name for n in failed)})"
    if skipped:
        summary += f", {len(skipped)} not run (interrupted)"
    info(summary)


def _base_name(results: list[dict[str, Any]], baseline: str) -> str | None:
    for r in results:
        f = r.get("fleet") or {}
        if baseline in (f.get("node_id"), f.get("node_name")) or (
            len(baseline) >= 6 and str(f.get("node_id", "")).startswith(baseline)
        ):
            return f.get("node_name")
    return None
