"""`aia tune`: search the fastest settings this machine allows, check accuracy, remember them."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from aialliance_cli.cli import options as o
from aialliance_cli.cli.output import handles_errors


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)


@handles_errors
def tune(
    target: o.Target = None,
    budget: Annotated[
        float,
        typer.Option("--budget", help="Seconds the whole search may take."),
    ] = 180.0,
    objective: Annotated[
        str,
        typer.Option("--objective", help="latency (ms per inference) or throughput (samples/s)."),
    ] = "latency",
    ep: Annotated[
        str | None,
        typer.Option(
            "--ep",
            help="Only these EPs (comma list): cpu, openvino, ...; default: every EP usable "
            "here and in registered environments.",
        ),
    ] = None,
    threads: Annotated[
        str | None,
        typer.Option("--threads", help="Only these intra-op thread counts (comma list; 0: ORT's)."),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="Only these precisions (comma list): fp32, int8-dynamic, int8-dynamic-tensor, "
            "int8-dynamic-u8, int8-static, bf16, fp16, variant:NAME (a variant of the profile).",
        ),
    ] = None,
    min_accuracy: Annotated[
        float | None,
        typer.Option(
            "--min-accuracy",
            help="Reject candidates scoring below this against the fp32 CPU reference, in "
            "(0, 1]. Default per task: mean cosine 0.99 for embeddings, top-1 agreement 0.95 "
            "for classifiers, 1 - max relative error 0.99 otherwise.",
        ),
    ] = None,
    show_: Annotated[
        bool,
        typer.Option("--show", help="List the tuned records (of TARGET if given) and exit."),
    ] = False,
    clear: Annotated[
        bool,
        typer.Option("--clear", help="Delete the tuned records (of TARGET if given) and exit."),
    ] = False,
    no_save: Annotated[
        bool, typer.Option("--no-save", help="Do not remember the winner for run and bench.")
    ] = False,
    json_: o.Json = False,
    allow_network: o.AllowNetwork = False,
) -> None:
    """Find the fastest configuration of a model on this machine; run and bench then use it."""
    started = time.monotonic()
    from aialliance_cli.errors import BadInputError

    if show_ and clear:
        raise BadInputError("choose one of --show and --clear")
    if show_:
        _show(target, json_)
        return
    if clear:
        _clear(target, json_)
        return
    from aialliance_cli.runtime.sweep import parse_ep_list, parse_int_list
    from aialliance_cli.tune.search import TuneSettings, check_settings
    from aialliance_cli.tune.space import parse_precisions

    eps = parse_ep_list(ep)
    if eps and "all" in eps:
        eps = None
    settings = TuneSettings(
        budget_s=budget,
        objective=objective.strip().lower(),
        eps=eps,
        threads=parse_int_list("--threads", threads, zero_ok=True),
        precisions=parse_precisions(precision),
        min_accuracy=min_accuracy,
        save=not no_save,
    )
    check_settings(settings)  # bad values exit 2 before the model is even resolved
    from aialliance_cli.runtime.textgen import is_text_generation

    if is_text_generation(target):
        raise BadInputError(
            f"{target} is a text-generation profile; aia tune searches single-inference "
            "models (tune its decoder's settings with aia bench --threads, docs/generation.md)"
        )
    from aialliance_cli.cli.output import info, spinner, warn
    from aialliance_cli.runtime.api import prepare_target
    from aialliance_cli.tune.search import tune as run_tune

    with spinner("preparing", enabled=not json_) as update:
        tgt = prepare_target(target, allow_network=allow_network, status=update)

    def on_event(ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "note":
            warn(ev["message"])
        elif json_:
            return
        elif kind == "trial":
            left = max(0.0, ev.get("time_left") or 0.0)
            info(f"[{ev['index']}] {left:.0f} s left: {ev['stage']}: {ev['label']}")
        elif kind == "trial-done":
            if ev["status"] == "ok":
                acc = ""
                if ev.get("accuracy") is not None:
                    verdict = "ok" if ev.get("accepted") else "REJECTED"
                    acc = f", accuracy {ev['accuracy']:.4f} {verdict}"
                info(f"    p50 {_ms(ev.get('p50_ms'))}{acc}")
            else:
                info(f"    {ev['status']}: {ev.get('error')}")

    outcome = run_tune(tgt, settings, on_event=on_event, started=started)
    for note in outcome.notes:
        warn(note)
    data = outcome.to_dict()
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(data)
    else:
        _render(outcome)
    if outcome.interrupted:
        from aialliance_cli import interrupts

        raise typer.Exit(interrupts.exit_code())  # 130, 143 or 129
    if outcome.winner is None:
        raise typer.Exit(1)


def _ms(x: float | None) -> str:
    from aialliance_cli.cli.output import fmt_num

    return "n/a" if x is None else f"{fmt_num(x)} ms"


def _speed(x: float | None, verdict: str | None) -> str:
    if x is None:
        return ""
    return f"{x:.2f}x ({verdict})" if verdict else f"{x:.2f}x"


def _render(outcome: Any) -> None:
    from aialliance_cli.cli.output import fmt_num, info, show, table

    unit = "ms" if outcome.objective == "latency" else "ms/sample"
    # The plan's column only when the plan is not ORT's default itself.
    plan_col = outcome.plan is not None and outcome.plan is not outcome.default
    rows = []
    for i, r in enumerate(outcome.rows, 1):
        st = r.stats or {}
        ci = st.get("median_ci95")
        p50 = fmt_num(st.get("p50")) if st else ""
        if ci:
            p50 += f" [{fmt_num(ci[0])}, {fmt_num(ci[1])}]"
        acc = r.accuracy or {}
        if acc.get("metric") == "reference":
            acc_text = "reference"
        elif "value" in acc:
            acc_text = f"{acc['value']:.4f}"
        else:
            acc_text = acc.get("error", "")
        status = r.status if r.status != "failed" else f"failed: {_short(r.error or '')}"
        row = [
            str(i),
            r.candidate.label(),
            p50,
            _speed(r.speedup_default, r.verdict_default),
        ]
        if plan_col:
            row.append(_speed(r.speedup_plan, r.verdict_plan))
        row += [acc_text, ", ".join([status, *r.roles])]
        rows.append(tuple(row))
    caption = (
        f"{outcome.trials} trials in {outcome.elapsed_s:.0f} s of a {outcome.budget_s:g} s budget; "
        f"accuracy: {outcome.accuracy_metric} vs fp32 on the CPU EP, minimum "
        f"{outcome.min_accuracy:g}; [95% interval of the median]"
        + ("" if plan_col else "; aia's plan is ORT's default here")
    )
    columns = ["#", "configuration", f"p50 {unit}", "vs ORT default"]
    if plan_col:
        columns.append("vs aia plan")
    columns += ["accuracy", "status"]
    show(table(f"aia tune: {outcome.target} ({outcome.objective})", columns, rows, caption=caption))
    w = outcome.winner
    if w is not None:
        show(
            f"winner: {w.candidate.label()}: p50 {fmt_num(w.p50)} {unit}, "
            f"{_speed(w.speedup_default, w.verdict_default)} over ORT's default"
        )
    load = outcome.load or {}
    if load.get("busy"):
        info(
            f"machine load before tuning: {load.get('cpu_busy_percent', 0):.0f}% of the CPUs "
            f"(load average {load.get('loadavg_1m') or 0:.1f}); recorded with the winner"
        )
    if outcome.interrupted:
        info("interrupted: the table covers what was measured; no record was written")
    if outcome.record_path:
        info(f"remembered in {outcome.record_path}; aia run and aia bench use it (--no-tuned: not)")


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _records_of(target: str | None) -> list[Any]:
    from aialliance_cli.tune.records import list_records

    recs = [r for _, r in list_records()]
    if target is None:
        return recs
    name = _target_name(target)
    return [r for r in recs if r.target in (target, name)]


def _target_name(target: str) -> str:
    from pathlib import Path

    if target.lower().endswith((".onnx", ".ort")):
        return Path(target).stem
    try:
        from aialliance_cli.profiles import load_profile

        return load_profile(target).profile.name
    except Exception:
        return target


def _show(target: str | None, json_: bool) -> None:
    from aialliance_cli.hardware import detect
    from aialliance_cli.tune.records import fingerprint_id, hardware_fingerprint, ort_build

    inv = detect()
    here_fp, here_ort = fingerprint_id(hardware_fingerprint(inv)), ort_build(inv)
    recs = _records_of(target)

    def applies(r: Any) -> bool:
        return r.fingerprint_id == here_fp and r.onnxruntime == here_ort

    if json_:
        from aialliance_cli.cli.output import print_json

        print_json([{**r.to_dict(), "key": r.key, "applies_here": applies(r)} for r in recs])
        return
    from aialliance_cli.cli.output import info, show, table

    if not recs:
        info("no tuned records" + (f" for {target}" if target else "") + "; make one: aia tune")
        return
    rows = [
        (
            r.target,
            r.objective,
            r.date(),
            r.label,
            _speed(r.speedup_default, r.verdict_default),
            "yes" if applies(r) else "no (other machine or ORT build)",
            r.onnxruntime,
        )
        for r in recs
    ]
    show(
        table(
            "tuned records",
            ["target", "objective", "tuned", "winner", "vs ORT default", "applies here", "ORT"],
            rows,
        )
    )


def _clear(target: str | None, json_: bool) -> None:
    from aialliance_cli.tune.records import clear_records

    n = clear_records(_target_name(target) if target else None)
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json({"removed": n})
        return
    from aialliance_cli.cli.output import info

    info(f"removed {n} tuned record{'s' if n != 1 else ''}")
