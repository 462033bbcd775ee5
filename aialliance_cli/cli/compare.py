"""`aia compare`: compare benchmark results across machines, EPs and settings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli.cli import options as o
from aialliance_cli.cli.output import handles_errors

VERDICT_STYLES = {
    "faster": "bold green",
    "slower": "bold red",
    "within noise": "dim",
    "baseline": "bold cyan",
    "no baseline": "yellow",
    "no data": "yellow",
    "failed": "red",
    "outputs differ": "bold red",
}


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)


@handles_errors
def compare(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Result files (JSON Lines written by `aia bench --out`).", show_default=False
        ),
    ],
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="What to compare against: a result file, a machine "
            "(hostname or CPU model), an EP (cpu, openvino, CUDAExecutionProvider, "
            "...) or an environment. Default: the first file (or first record).",
        ),
    ] = None,
    fail_if_slower: Annotated[
        float | None,
        typer.Option(
            "--fail-if-slower",
            metavar="PCT",
            help="Exit 3 when a configuration is "
            "slower than its baseline by more than PCT % and outside the noise.",
        ),
    ] = None,
    json_: o.Json = False,
    csv_: Annotated[
        bool, typer.Option("--csv", help="Print CSV (columns: docs/results.md).")
    ] = False,
    plot: Annotated[
        bool, typer.Option("--plot", help="Draw a bar chart of throughput in the terminal.")
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write a self-contained offline HTML report here."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Table columns, a comma list of machine, ep, config, p50, p99, rate, ratio, "
            "agreement, verdict (default: as many as fit the terminal).",
        ),
    ] = None,
) -> None:
    """Compare results across machines, EPs and settings; gate on regressions."""
    from aialliance_cli.cli.output import info, warn
    from aialliance_cli.errors import BadInputError, UnavailableError
    from aialliance_cli.results.compare import compare as compare_results
    from aialliance_cli.results.compare import load_many, regressions

    if json_ and csv_:
        raise BadInputError("give either --json or --csv, not both")
    from aialliance_cli.cli.output import parse_columns

    chosen = parse_columns(columns)
    known = ("machine", "ep", "config", "p50", "p99", "rate", "ratio", "agreement", "verdict")
    if chosen and any(k not in known for k in chosen):
        bad = ", ".join(k for k in chosen if k not in known)
        raise BadInputError(f"--columns: unknown column(s) {bad}; choose from {', '.join(known)}")
    if fail_if_slower is not None and not fail_if_slower >= 0:
        raise BadInputError(f"--fail-if-slower takes a percentage >= 0, got {fail_if_slower}")
    records, skipped = load_many(files)
    for msg in skipped:
        warn(f"skipped {msg}")
    if not records:
        raise BadInputError(
            f"no usable results in {', '.join(map(str, files))}"
            + (f" ({len(skipped)} line(s) skipped, see the warnings above)" if skipped else "")
            + "; write some with `aia bench --out FILE.jsonl`"
        )
    table = compare_results(records, baseline)
    for msg in table.skipped:
        warn(f"skipped {msg}")
    failed = regressions(table, fail_if_slower) if fail_if_slower is not None else []

    if json_:
        from aialliance_cli.cli.output import print_json

        data = table.to_dict()
        data["skipped"] = [*skipped, *table.skipped]
        if fail_if_slower is not None:
            data["gate"] = {
                "fail_if_slower_pct": fail_if_slower,
                "failed": bool(failed),
                "regressions": [r.to_dict() for r in failed],
            }
        print_json(data)
    elif csv_:
        from aialliance_cli.cli.output import clean_stdout
        from aialliance_cli.results.tabular import write_csv

        write_csv(
            [table.records[r.index] for r in table.rows],
            clean_stdout(),
            extra=[
                {
                    "compare_verdict": r.verdict,
                    "compare_ratio": r.ratio,
                    "compare_change_pct": r.change_pct,
                    "compare_baseline": r.baseline,
                }
                for r in table.rows
            ],
        )
        sys.stdout.flush()
    else:
        render_table(table, columns=chosen)
    if plot:
        render_plot(table, stderr=json_ or csv_)
    if html is not None:
        from aialliance_cli.results.html import render_html, write_html

        write_html(
            html,
            render_html(
                table,
                notes=[f"skipped {m}" for m in skipped],
                sources=[str(f) for f in files],
            ),
        )
        info(f"wrote {html}")
    if failed:
        lines = "; ".join(
            f"{r.group}: {r.config} is {r.change_pct:.1f}% slower than {r.baseline}" for r in failed
        )
        raise UnavailableError(
            f"{len(failed)} configuration(s) slower than the baseline by more than "
            f"{fail_if_slower:g}% (outside the noise): {lines}"
        )


def _agreement(agreement: dict[str, Any] | None) -> str:
    """The --check-outputs agreement in a cell: ``cosine 0.9935 ok`` / ``... < 0.99``."""
    if not agreement:
        return "-"
    from aialliance_cli.tune.accuracy import agreement_text

    text = agreement_text(agreement)
    if agreement.get("passed") is False:
        return f"{text} < {agreement.get('min_accuracy')}"
    return f"{text} ok" if agreement.get("passed") else text


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}" if abs(x) >= 0.01 or x == 0 else f"{x:.4f}"


def _one_per_machine(rows: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for r in rows:
        seen.setdefault(r.machine, r)
    return list(seen.values())


def render_table(table: Any, columns: list[str] | None = None) -> None:
    """One table per profile, verdicts coloured, fitted to the terminal (80 when piped)."""
    from rich.text import Text

    from aialliance_cli.cli.output import Column, clean, fitted_table, show
    from aialliance_cli.results.compare import arrow, machine_names

    base = table.baseline if table.baseline is not None else "first file / first record"
    names = machine_names(table.rows)
    for group in table.groups:
        rows = table.group_rows(group)
        caption = (
            f"baseline: {base} ({table.baseline_kind}); ratio = the baseline's median time "
            "per sample / this one's: ↑ faster (> 1), ↓ slower (< 1); samples/s at the "
            "median, as the ratio; verdicts from the medians' 95% CIs"
            + "".join(
                f"; {names[r.machine]}: {r.cpu_model or '?'}"
                for r in _one_per_machine(rows)
                if names[r.machine] != r.machine
            )
        )
        checked = any(r.agreement for r in rows)
        several = len({r.machine for r in rows}) > 1
        cols = [
            Column("machine", "machine", 1 if several else 5, numeric=False),
            Column("ep", "EP", 0, numeric=False),
            Column("config", "config", 0, numeric=False),
            Column("p50", "p50 ms", 0),
            Column("p99", "p99 ms", 6),
            Column("rate", "samples/s", 2),
            Column("ratio", "ratio", 0),
            *((Column("agreement", "agreement", 3, numeric=False),) if checked else ()),
            Column("verdict", "verdict", 0, numeric=False),
        ]
        cells = []
        for r in rows:
            ratio = (
                f"{r.ratio:.2f}x {arrow(r.ratio)}"
                if r.ratio is not None
                else ("-" if r.verdict == "baseline" else "n/a")
            )
            cells.append(
                [
                    names[r.machine],
                    r.ep_short,
                    r.settings,
                    _fmt(r.p50),
                    _fmt(r.p99),
                    _fmt(r.rate_p50, 1),
                    ratio,
                    *((_agreement(r.agreement),) if checked else ()),
                    Text(clean(r.verdict), style=VERDICT_STYLES.get(r.verdict, "")),
                ]
            )
        chosen = [k for k in columns or () if k in {c.key for c in cols}]  # agreement may be absent
        t = fitted_table(group, cols, cells, chosen=chosen or None, caption=caption)
        t.title_style = "bold"
        show(t)


def render_plot(table: Any, *, stderr: bool = False) -> None:
    """Recorded throughput per configuration as unicode bars, one block per profile."""
    from rich.console import Console
    from rich.text import Text

    from aialliance_cli.cli.output import clean
    from aialliance_cli.cli.output import markup_safe as escape
    from aialliance_cli.results.compare import arrow, short_labels

    console = Console(stderr=stderr, soft_wrap=False)
    width = max(20, min(console.width, 160))
    for group in table.groups:
        rows = [r for r in table.group_rows(group) if r.rate_p50 is not None]
        console.print(Text(f"{clean(group)}: samples/s at the median (as the ratio)", style="bold"))
        if not rows:
            console.print("  (no throughput recorded)")
            continue
        labels = short_labels(rows)
        label_w = min(max(len(s) for s in labels), width // 2)
        values = [
            _fmt(r.rate_p50, 1) + (f" {arrow(r.ratio)}" if r.ratio is not None else "")
            for r in rows
        ]
        value_w = max(len(v) for v in values)
        bar_w = max(5, width - label_w - value_w - 6)
        vmax = max(r.rate_p50 for r in rows) or 1.0
        for r, label, value in zip(rows, labels, values, strict=True):
            eighths = round(bar_w * 8 * r.rate_p50 / vmax)
            bar = "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]
            if len(label) > label_w:
                label = label[: label_w - 1] + "…"
            # Bars show the rate at the median, the one the ratio and verdict use.
            style = "cyan" if r.verdict == "baseline" else VERDICT_STYLES.get(r.verdict, "green")
            console.print(
                f"  {escape(label.ljust(label_w))} [{style}]{bar or '▏'}[/] {value}",
                highlight=False,
            )
        console.print()
