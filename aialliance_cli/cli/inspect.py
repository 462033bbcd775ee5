"""`aia inspect`: what an ONNX model holds and how much work it is, without a session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from aialliance_cli.cli import options as o
from aialliance_cli.cli.output import handles_errors

_MAX_UNRESOLVED = 10


@handles_errors
def inspect(
    target: o.Target = None,
    dim: o.Dims = None,
    json_: o.Json = False,
    allow_network: o.AllowNetwork = False,
) -> None:
    """Show a model's inputs, outputs, weights, op types and FLOPs (no session is built)."""
    from aialliance_cli.cli.output import print_json, spinner
    from aialliance_cli.runtime.api import prepare_target
    from aialliance_cli.runtime.oprun import inspect_target

    dims = o.parse_dims(dim)
    with spinner("preparing", enabled=not json_) as update:
        tgt = prepare_target(target, allow_network=allow_network, status=update)
        summary = inspect_target(tgt, dims)
    _warn_incomplete(summary)
    if json_:
        print_json({"target": tgt.name, **summary.to_dict()})
        return
    render_summary(tgt.name, summary)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)


def _warn_incomplete(s: Any) -> None:
    from aialliance_cli.cli.output import warn

    if s.unknown_dims:
        names = ", ".join(s.unknown_dims)
        how = " ".join(f"--dim {d}=VALUE" for d in s.unknown_dims)
        warn(
            f"dimension(s) {names} have no value, so the FLOP count is incomplete; give them "
            f"with {how}"
        )
    elif s.unresolved:
        warn(f"{len(s.unresolved)} node(s) could not be counted; see 'unresolved' below")


def fmt_count(n: int | float | None) -> str:
    """1234567 -> '1.23 M' (k, M, G, T)."""
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("", " k", " M", " G", " T"):
        if abs(value) < 1000 or unit == " T":
            return f"{value:.0f}{unit}" if not unit else f"{value:.3g}{unit}"
        value /= 1000
    return str(n)


def fmt_flops(n: int | float | None) -> str:
    """36 -> '36 FLOP', 1.2e9 -> '1.2 GFLOP' (never '36FLOP')."""
    text = fmt_count(n)
    return text if text == "n/a" else text + ("FLOP" if text[-1].isalpha() else " FLOP")


def _shape(shape: Sequence[Any] | None, dims: dict[str, int]) -> str:
    if shape is None:
        return "?"
    parts = []
    for d in shape:
        if isinstance(d, str):
            parts.append(f"{d}={dims[d]}" if d in dims else d)
        else:
            parts.append("?" if d is None else str(d))
    return "[" + ", ".join(parts) + "]"


def right_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: Sequence[int] = (),
    caption: str | None = None,
    header: bool = True,
) -> Any:
    """output.table (it escapes markup and control codes) with number columns on the right."""
    from aialliance_cli.cli.output import table

    t = table(title, columns, rows, caption=caption or None)
    t.show_header = header
    for i in right:
        t.columns[i].justify = "right"
    return t


def render_summary(name: str, s: Any) -> None:
    from aialliance_cli.cli.output import fmt_bytes, show

    opsets = ", ".join(f"{d} {v}" for d, v in s.opset_imports.items())
    producer = f"{s.producer_name} {s.producer_version}".strip() or "unknown"
    rows = [
        ("file", s.path),
        ("opset", opsets),
        ("IR version", str(s.ir_version)),
        ("producer", producer),
        (
            "parameters",
            f"{fmt_count(s.parameter_count)} ({s.parameter_count:,} elements, "
            f"{fmt_bytes(s.parameter_bytes)})",
        ),
        ("nodes", f"{s.node_count:,}"),
        ("external data files", ", ".join(s.external_data_files) or "none"),
        ("custom domains", ", ".join(s.custom_domains) or "none"),
        ("ONNX Runtime contrib domains", ", ".join(s.contrib_domains) or "none"),
        ("dims", ", ".join(f"{k}={v}" for k, v in s.dims.items()) or "none given"),
    ]
    show(right_table(f"aia inspect: {name}", ["", ""], rows, header=False))
    io_rows = [("input", t.name, t.dtype, _shape(t.shape, s.dims)) for t in s.inputs]
    io_rows += [("output", t.name, t.dtype, _shape(t.shape, s.dims)) for t in s.outputs]
    show(right_table("Inputs and outputs", ["", "name", "dtype", "shape"], io_rows))
    show(
        right_table(
            "Nodes by op type",
            ["op type", "nodes"],
            [(op, f"{n:,}") for op, n in s.nodes_by_op_type.items()],
            right=(1,),
        )
    )
    total = s.flops_total
    flop_rows = [
        (op, fmt_count(f), f"{f / total * 100:.1f}%" if total else "n/a")
        for op, f in s.flops_by_op_type.items()
        if f
    ]
    caption = f"total {fmt_flops(total)} per run (1 multiply-add = 2 FLOPs)"
    if s.unknown_dims:
        caption += "; incomplete: " + ", ".join(s.unknown_dims) + " without a value"
    show(
        right_table(
            "FLOPs by op type",
            ["op type", "FLOPs", "share"],
            flop_rows,
            right=(1, 2),
            caption=caption,
        )
    )
    if s.unknown_dims or s.unresolved:
        rows = [(d, f"--dim {d}=VALUE") for d in s.unknown_dims]
        shown = list(s.unresolved[:_MAX_UNRESOLVED])
        rows += [("", line) for line in shown]
        if len(s.unresolved) > len(shown):
            rows.append(("", f"... and {len(s.unresolved) - len(shown)} more (see --json)"))
        show(
            right_table(
                "Unresolved: how to give the missing dimensions",
                ["dimension", "give it with / node not counted"],
                rows,
            )
        )
