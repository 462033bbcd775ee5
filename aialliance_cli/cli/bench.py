"""`aia bench`: benchmark a profile or ONNX model; list-valued options sweep configurations."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli.cli import options as o
from aialliance_cli.cli.genbench import Engine, Exporter, Precision, gen_options
from aialliance_cli.cli.output import handles_errors

_LG = "LoadGen (with --scenario)"
_GEN = "Text generation (text-generation profiles)"


@handles_errors
def bench(
    target: o.Target = None,
    ep: o.SweepEps = None,
    threads: o.SweepThreads = None,
    batch: o.SweepBatch = None,
    dim: o.SweepDims = None,
    variant: o.Variants = None,
    warmup: o.Warmup = None,
    iterations: o.Iterations = None,
    duration: o.Duration = None,
    min_time: Annotated[
        float | None,
        typer.Option(
            "--min-time",
            help="Measure at least this many seconds as well as the count, whichever is "
            "longer (default 10 s with the profile's count; -n N alone: exactly N; 0: none).",
        ),
    ] = None,
    json_: o.Json = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Append one JSON line per configuration here, each as soon as it finishes "
            "('-': JSON Lines on stdout instead of the table).",
        ),
    ] = None,
    strict: o.Strict = False,
    text: o.Text = None,
    input: o.InputFiles = None,
    input_dir: Annotated[
        Path | None,
        typer.Option(
            "--input-dir",
            help="A folder of real inputs (images, audio, .npy/.npz): one input set per file "
            "(per window for windowed audio), rotated through while measuring.",
        ),
    ] = None,
    same_input: o.SameInput = False,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help="Run an MLPerf LoadGen scenario instead of the plain "
            "loop: single-stream, multi-stream, server or offline.",
        ),
    ] = None,
    target_qps: Annotated[
        float | None,
        typer.Option(
            "--target-qps",
            rich_help_panel=_LG,
            help="server: the Poisson arrival rate; offline: the expected QPS "
            "(default: calibrated).",
        ),
    ] = None,
    target_latency_ms: Annotated[
        float | None,
        typer.Option(
            "--target-latency-ms",
            rich_help_panel=_LG,
            help="server: the p99 latency bound (default 100); single/multi-stream: "
            "the expected latency (default: calibrated).",
        ),
    ] = None,
    min_duration: Annotated[
        float | None,
        typer.Option(
            "--min-duration",
            rich_help_panel=_LG,
            help="Seconds LoadGen must run at least (default 10).",
        ),
    ] = None,
    min_queries: Annotated[
        int | None,
        typer.Option(
            "--min-queries", rich_help_panel=_LG, help="Queries LoadGen must issue at least."
        ),
    ] = None,
    samples_per_query: Annotated[
        int | None,
        typer.Option(
            "--samples-per-query",
            rich_help_panel=_LG,
            help="multi-stream: samples per query (default 8).",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Seconds one configuration may take (its worker is "
            "stopped and it fails after that).",
        ),
    ] = 600.0,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="Measure a single configuration in this process "
            "instead of a fresh worker process.",
        ),
    ] = False,
    min_coverage: o.MinCoverage = None,
    check_outputs: Annotated[
        bool,
        typer.Option(
            "--check-outputs",
            help="Also run 16 distinct inputs through every configuration and compare its "
            "outputs with the fp32 model on the CPU EP (recorded as 'agreement').",
        ),
    ] = False,
    min_accuracy: Annotated[
        float | None,
        typer.Option(
            "--min-accuracy",
            help="With --check-outputs: the agreement a configuration must reach (0-1; "
            "default per task, e.g. cosine 0.99 for sentence embeddings).",
        ),
    ] = None,
    until_stable: Annotated[
        float | None,
        typer.Option(
            "--until-stable",
            help="Keep measuring (up to --duration, default 60 s) until the 95% interval "
            "of the median is within this percent.",
        ),
    ] = None,
    csv: Annotated[
        bool, typer.Option("--csv", help="Print the results as CSV (docs/results.md).")
    ] = False,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Table columns, a comma list (ep,threads,batch,p50,ci,inf_s,...; "
            "docs/commands.md). Default: as many as fit the terminal.",
        ),
    ] = None,
    allow_network: o.AllowNetwork = False,
    allow_custom_ops: o.AllowCustomOps = False,
    prompt_len: Annotated[
        str | None,
        typer.Option("--prompt-len", rich_help_panel=_GEN, help="Prompt lengths: 128,512."),
    ] = None,
    gen_len: Annotated[
        str | None,
        typer.Option("--gen-len", rich_help_panel=_GEN, help="Generated lengths: 32,128."),
    ] = None,
    md: Annotated[
        bool,
        typer.Option(
            "--md", rich_help_panel=_GEN, help="Print a llama-bench style markdown table."
        ),
    ] = False,
    random_weights: Annotated[
        bool,
        typer.Option(
            "--random-weights",
            rich_help_panel=_GEN,
            help="Build the architecture with random weights (no download; marked in results).",
        ),
    ] = False,
    no_tuned: o.NoTuned = False,
    engine: Engine = None,
    precision: Precision = None,
    exporter: Exporter = None,
) -> None:
    """Benchmark latency, throughput, memory and CPU use, one configuration or a sweep."""
    from aialliance_cli.cli.output import spinner
    from aialliance_cli.errors import BadInputError, they
    from aialliance_cli.runtime import sweep as S
    from aialliance_cli.runtime.api import Overrides, bench_settings, prepare_target
    from aialliance_cli.runtime.textgen import is_text_generation

    stream = out is not None and str(out) == "-"  # JSON Lines on stdout, one per configuration
    if stream:
        if json_ or csv:
            raise BadInputError("--out - prints JSON Lines on stdout: not with --json or --csv")
        if is_text_generation(target):
            raise BadInputError("--out - is for plain benches; text-generation bench: --json")
        out = None
    if out is not None:
        from aialliance_cli.results.store import check_writable

        check_writable(out)  # before anything is measured
    if json_ and csv:
        raise BadInputError("choose one of --json and --csv")
    from aialliance_cli.cli.benchtable import check_columns
    from aialliance_cli.cli.output import parse_columns

    if is_text_generation(target):
        from aialliance_cli.cli.genbench import bench_generation_cli, check_generation_columns

        gen_columns = check_generation_columns(parse_columns(columns))

        if ep and len(ep) > 1 or (ep and "," in ep[0]):
            raise BadInputError("text-generation bench takes one --ep at a time")
        unsupported = {
            "--dim": dim,
            "--scenario": scenario,
            "--until-stable": until_stable,
            "--duration": duration,
            "--input": input,
            "--input-dir": input_dir,
            "--text": text,
            "--min-coverage": min_coverage,
            "--min-time": min_time,
            "--check-outputs": check_outputs or None,
            "--variant": variant,
        }
        given = [k for k, v in unsupported.items() if v]
        if given:
            raise BadInputError(
                f"{they(given, 'does', 'do')} not apply to text-generation profiles; their "
                "grid is --prompt-len, --gen-len and --batch (docs/generation.md)"
            )
        o.check_positive("--warmup", warmup, zero_ok=True)
        o.check_positive("--iterations", iterations)
        bench_generation_cli(
            target,
            ep=ep[0] if ep else None,
            threads=S.parse_int_list("--threads", threads, zero_ok=True),
            strict=strict,
            allow_network=allow_network,
            random_weights=random_weights,
            prompt_len=prompt_len,
            gen_len=gen_len,
            batch=batch,
            warmup=warmup,
            repetitions=iterations,
            json_=json_,
            md=md,
            csv=csv,
            out=out,
            options=gen_options(engine, precision, exporter),
            columns=gen_columns,
        )
        return
    chosen = check_columns(parse_columns(columns))  # before anything is measured
    gen_only = {
        "--prompt-len": prompt_len,
        "--gen-len": gen_len,
        "--md": md or None,
        "--random-weights": random_weights or None,
        "--engine": engine,
        "--precision": precision,
        "--exporter": exporter,
    }
    given = [k for k, v in gen_only.items() if v is not None]
    if given:
        raise BadInputError(
            f"{they(given, 'applies', 'apply')} to text-generation profiles only "
            f"({target or 'the default profile'} is not one)"
        )
    if until_stable is not None and until_stable <= 0:
        raise BadInputError(f"--until-stable must be a percentage above 0, got {until_stable:g}")

    o.check_positive("--warmup", warmup, zero_ok=True)
    o.check_positive("--iterations", iterations)
    o.check_positive("--duration", duration)
    o.check_positive("--min-time", min_time, zero_ok=True)
    o.check_positive("--timeout", timeout)
    if min_accuracy is not None:  # before anything is planned or printed
        from aialliance_cli.tune.accuracy import check_min_accuracy

        check_min_accuracy(min_accuracy)
    if iterations is not None and duration is not None:
        raise BadInputError("give either --iterations or --duration, not both")
    o.check_percent("--min-coverage", min_coverage)
    sc = _scenario(
        scenario,
        target_qps,
        target_latency_ms,
        min_duration,
        min_queries,
        samples_per_query,
        iterations,
        duration,
    )
    eps = S.parse_ep_list(",".join(ep)) if ep else None
    threads_l = S.parse_int_list("--threads", threads, zero_ok=True)
    batches = S.parse_int_list("--batch", batch)
    dims = S.parse_dim_lists(dim)
    ov = Overrides(
        warmup=warmup,
        iterations=iterations,
        duration_s=duration,
        min_time_s=min_time,
        text=o.read_text(text),
        input_files=tuple(Path(p).expanduser().absolute() for p in input or ()),
        input_dir=str(input_dir.expanduser().absolute()) if input_dir is not None else None,
        strict=strict,
        input_sets=1 if same_input else 4,
        allow_custom_ops=allow_custom_ops,
        min_coverage=min_coverage,
        until_stable=until_stable,
    )
    if not in_process and S.SINGLE_IN_WORKER:
        from aialliance_cli.runtime.launch import prestart_worker

        prestart_worker()  # its Python and ONNX Runtime load while this process prepares
    with spinner("preparing", enabled=not json_) as update:
        from aialliance_cli.envs.registry import list_envs
        from aialliance_cli.hardware import detect

        tgt = prepare_target(target, allow_network=allow_network, status=update)
        base_target = tgt  # the fp32 model that --check-outputs compares with
        stop_rule = bench_settings(tgt, ov)  # bad counts in the profile: exit 2 now
        if sc is None:
            _say_stop_rule(stop_rule)
        from aialliance_cli.models.variants import parse_variants

        variants = parse_variants(tgt, variant)  # unknown names: exit 2 before anything runs
        inventory = detect(disk_cache=True)  # the parent builds no session: cached facts do
        envs = list_envs()
        here = S.current_eps(inventory)
        if eps == [S.ALL]:
            eps = S.all_eps(here, envs)
        tuned = None
        if not no_tuned and sc is None:
            from aialliance_cli.tune.apply import apply_tuned

            given = {"--ep": ep, "--threads": threads, "--batch": batch, "--variant": variant}
            tuned = apply_tuned(tgt, ov, given=given, inventory=inventory, envs=envs, status=update)
            if tuned.record is not None:
                tgt, ov = tuned.target, tuned.overrides
                eps, threads_l = [ov.ep], [ov.threads]  # so that routing finds its environment
                batches = [ov.batch] if ov.batch is not None else batches
            _tuned_notes(tuned, json_)
    points = S.expand(eps, threads_l, batches, dims, variants)
    sweep = len(points) > 1
    if in_process and sweep:
        raise BadInputError(
            "--in-process measures a single configuration; a sweep runs each configuration "
            "in a fresh worker process so that one does not colour the next"
        )
    with spinner("preparing variants", enabled=not json_ and bool(variants)) as update:
        planned = S.plan_sweep(
            tgt,
            ov,
            points,
            here=here,
            envs=envs,
            scenario=sc,
            out=out,
            status=update,
            allow_network=allow_network,
        )
    S.refuse_unavailable(planned)  # exit 3 now, not after the other configurations ran
    reference: Any = contextlib.nullcontext()
    if check_outputs or min_accuracy is not None:
        reference = _reference(base_target, planned, ov, check_outputs, min_accuracy, json_)
    local = in_process or not S.SINGLE_IN_WORKER
    write_failed: list[str] = []  # --out lines that could not be written
    with reference, _Display(enabled=not json_, total=len(planned), sweep=sweep) as display:

        def on_result(i: int, p: S.Planned, result: dict[str, Any]) -> None:
            S.name_asked_ep(result, here)  # a failed default-EP row still says which EP
            if tuned is not None and (tuned.record is not None or tuned.notes):
                result["tuned"] = tuned.result_record()
            if stream:
                import sys

                from aialliance_cli.results.store import dumps

                sys.stdout.write(dumps(result) + "\n")
                sys.stdout.flush()
            if out is not None:
                from aialliance_cli.cli.output import error, warn
                from aialliance_cli.errors import AiaError
                from aialliance_cli.results.store import append_jsonl

                try:
                    append_jsonl(out, [result], warn=warn)
                except AiaError as exc:  # the result is still shown; the sweep goes on
                    error(str(exc))
                    write_failed.append(str(exc))
            display.finished(i, p, result)

        outcome = S.run_sweep(
            planned,
            timeout_s=timeout,
            in_process=local,
            on_start=display.started,
            on_result=on_result,
            on_event=display.event,
            machine=inventory.to_dict(),
        )
    from aialliance_cli.runtime.launch import discard_prestarted

    discard_prestarted()  # a worker started ahead that no configuration took
    if csv:
        from aialliance_cli.cli.output import clean_stdout
        from aialliance_cli.results.tabular import write_csv

        _warn_results(outcome.results, sweep=sweep)
        write_csv(outcome.results, clean_stdout())
    elif stream:
        _warn_results(outcome.results, sweep=sweep)
    else:
        _report(outcome, planned, sweep=sweep, json_=json_, columns=chosen)
    code = outcome.exit_code
    if write_failed and code in (0, 2, 3):
        code = 1  # a result that could not be written to --out is a run-time failure
    if code:
        raise typer.Exit(code)


def _tuned_notes(tuned: Any, json_: bool) -> None:
    from aialliance_cli.cli.output import info

    for note in tuned.notes:
        info(note)
    if tuned.record is not None:
        info(tuned.record.summary_line())


def _reference(
    tgt: Any, planned: list[Any], ov: Any, check: bool, min_accuracy: float | None, json_: bool
) -> Any:
    """--check-outputs: the fp32 CPU reference, computed once, read by every worker."""
    from aialliance_cli.cli.output import spinner
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.tune.accuracy import check_min_accuracy, reference_for_jobs

    check_min_accuracy(min_accuracy)
    if not check:
        raise BadInputError("--min-accuracy applies with --check-outputs")
    ref = reference_for_jobs(tgt, [p.job for p in planned], min_accuracy=min_accuracy, overrides=ov)
    with spinner("computing the fp32 CPU reference", enabled=not json_):
        return ref.compute()  # the sweep's `with` removes its files afterwards


def _say_stop_rule(s: Any) -> None:
    """The header line: how long each configuration measures, and how to change it."""
    from aialliance_cli.cli.output import info

    if s.until_stable_pct is not None:
        return
    if s.duration_s is not None:
        info(f"measuring each configuration for {s.duration_s:g} s after {s.warmup} warm-up runs")
    elif s.min_time_s:
        info(
            f"measuring each configuration for at least {s.iterations} runs and "
            f"{s.min_time_s:g} s, whichever is longer, after {s.warmup} warm-up runs "
            "(-n N: exactly N runs; --min-time S)"
        )
    else:
        info(f"measuring each configuration for {s.iterations} runs after {s.warmup} warm-up runs")


def _scenario(
    name: str | None,
    target_qps: float | None,
    target_latency_ms: float | None,
    min_duration: float | None,
    min_queries: int | None,
    samples_per_query: int | None,
    iterations: int | None,
    duration: float | None,
) -> Any:
    from aialliance_cli.errors import BadInputError, they
    from aialliance_cli.runtime.sweep import ScenarioSettings

    given = {
        "--target-qps": target_qps,
        "--target-latency-ms": target_latency_ms,
        "--min-duration": min_duration,
        "--min-queries": min_queries,
        "--samples-per-query": samples_per_query,
    }
    if name is None:
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise BadInputError(f"{they(extra, 'sets', 'set')} a LoadGen run; add --scenario")
        return None
    from aialliance_cli.runtime.loadgen import normalize_scenario

    scen = normalize_scenario(name)
    for key in ("--target-qps", "--target-latency-ms", "--min-duration"):
        o.check_positive(key, given[key])
    o.check_positive("--min-queries", min_queries)
    o.check_positive("--samples-per-query", samples_per_query)
    if samples_per_query is not None and scen != "multi-stream":
        raise BadInputError(f"--samples-per-query applies to multi-stream only, not {scen}")
    if target_qps is not None and scen not in ("server", "offline"):
        raise BadInputError(f"--target-qps applies to server and offline, not {scen}")
    if iterations is not None or duration is not None:
        raise BadInputError(
            "--iterations and --duration set the plain loop; with --scenario LoadGen decides "
            "when to stop: use --min-duration and --min-queries"
        )
    return ScenarioSettings(
        name=scen,
        target_qps=target_qps,
        target_latency_ms=target_latency_ms,
        min_duration_s=min_duration if min_duration is not None else 10.0,
        min_queries=min_queries,
        samples_per_query=samples_per_query,
    )


class _Display:
    """Progress on stderr: a bar per configuration on a terminal, one line each otherwise."""

    def __init__(self, *, enabled: bool, total: int, sweep: bool) -> None:
        from aialliance_cli.cli.output import is_tty

        self.enabled = enabled
        self.total = total
        self.sweep = sweep
        self.live = enabled and is_tty()
        self.progress: Any = None
        self.task: Any = None
        self.label = ""
        self.ep = ""

    def __enter__(self) -> _Display:
        if self.live:
            from aialliance_cli.cli.output import new_progress

            self.progress = new_progress()
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def _say(self, msg: str) -> None:
        if not self.enabled:
            return
        if self.progress is not None:
            from aialliance_cli.cli.output import markup_safe

            self.progress.console.print(f"[dim]{markup_safe(msg)}[/]", highlight=False)
        else:
            from aialliance_cli.cli.output import info

            info(msg)

    def started(self, i: int, p: Any) -> None:
        self.label = p.label
        where = f" in environment '{p.route.env.name}'" if p.route.env is not None else ""
        if self.progress is not None:
            self.task = self.progress.add_task(
                f"[{i + 1}/{self.total}] {p.label}{where}", total=None
            )
        elif self.sweep:
            self._say(f"[{i + 1}/{self.total}] {p.label}{where}")

    def event(self, ev: dict[str, Any]) -> None:
        if self.progress is None or self.task is None:
            return
        kind = ev.get("event")
        if kind == "progress":
            if "building the session" in self._description():  # the loop has started
                self._label(f"measuring on {self.ep}" if self.ep else "measuring")
            self.progress.update(self.task, completed=ev.get("done"), total=ev.get("total"))
        elif kind == "status":
            self._label(str(ev.get("message")))
        elif kind == "session":  # built: what follows is warm-up and the measured loop
            self.ep = str(ev.get("ep") or "")
            self._label(f"warming up and measuring on {self.ep}")
        elif kind == "measured":
            self._label("computing the statistics")

    def _description(self) -> str:
        task = next((t for t in self.progress.tasks if t.id == self.task), None)
        return task.description if task is not None else ""

    def _label(self, message: str) -> None:
        prefix = self._description().split(": ")[0]
        self.progress.update(self.task, description=f"{prefix}: {message}")

    def finished(self, i: int, p: Any, r: dict[str, Any]) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        if r.get("status") == "ok":
            if self.sweep:
                self._say(f"[{i + 1}/{self.total}] {p.label}: {_headline(r)}")
        else:
            from aialliance_cli.cli.output import error

            who = f"{p.label}: " if self.sweep else ""
            if r.get("status") == "interrupted":
                self._say(f"{who}interrupted; what was measured is kept")
            else:
                from aialliance_cli.cli.output import shorten

                error(f"{who}{shorten(r.get('error') or '')}")


def _headline(r: dict[str, Any]) -> str:
    from aialliance_cli.cli.output import fmt_num

    m = r.get("metrics") or {}
    lg = m.get("loadgen")
    if lg:
        verdict = "VALID" if lg.get("valid") else "INVALID"
        return f"{verdict}, {fmt_num(lg.get('qps'), 1)} samples/s"
    ep = r.get("ep") or {}
    instead = ""
    if ep.get("requested") and ep.get("name") and ep["requested"] != ep["name"]:
        from aialliance_cli.providers.catalogue import short_name

        instead = f" (ran on {short_name(ep['name'])}, not {short_name(ep['requested'])})"
    return f"p50 {fmt_num((m.get('latency_ms') or {}).get('p50'))} ms{instead}"


def _report(
    outcome: Any, planned: list[Any], *, sweep: bool, json_: bool, columns: Any = None
) -> None:
    from aialliance_cli.cli.output import info

    results = outcome.results
    _warn_results(results, sweep=sweep)
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(results)  # always a list, one object per configuration (docs/results.md)
        return
    shown = [r for r in results if r.get("status") != "failed"] if not sweep else results
    if shown:
        render_bench(shown, sweep=sweep, columns=columns)
    logs = sorted(
        {str(Path(r["loadgen_logs"]["dir"]).parent) for r in results if r.get("loadgen_logs")}
    )
    if logs:
        info(f"LoadGen logs: {', '.join(logs)}")
    if outcome.interrupted:
        info(f"interrupted: {len(results)} of {len(planned)} configurations kept")


def _warn_results(results: list[dict[str, Any]], *, sweep: bool) -> None:
    """Every result's warnings on stderr, whatever the output mode."""
    from aialliance_cli.cli.output import warn_all

    for r in results:
        who = f"{(r.get('config') or {}).get('label')}: " if sweep else ""
        warn_all(r.get("warnings"), prefix=who)


def render_bench(
    results: list[dict[str, Any]], *, sweep: bool | None = None, columns: Any = None
) -> None:
    """One row per configuration in a sweep (cli/benchtable.py), one row per metric else."""
    from aialliance_cli.cli.benchtable import render
    from aialliance_cli.cli.output import show

    sweep = len(results) > 1 if sweep is None else sweep
    show(render(results, sweep=sweep, columns=columns))
