"""`aia run`: run a model once on the chosen EP and show what came out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli.cli import options as o
from aialliance_cli.cli.output import handles_errors


@handles_errors
def run(
    target: o.Target = None,
    ep: o.Ep = None,
    threads: o.Threads = None,
    batch: o.Batch = None,
    dim: o.Dims = None,
    text: o.Text = None,
    input: o.InputFiles = None,
    save: Annotated[
        Path | None, typer.Option("--save", help="Save the outputs to an .npz file.")
    ] = None,
    json_: o.Json = False,
    strict: o.Strict = False,
    allow_network: o.AllowNetwork = False,
    allow_custom_ops: o.AllowCustomOps = False,
) -> None:
    """Run a profile or ONNX model once and print its outputs and the EP that ran it."""
    import numpy as np

    from aialliance_cli.cli.output import info, spinner, warn
    from aialliance_cli.runtime.api import Overrides
    from aialliance_cli.runtime.api import run as run_model

    o.check_positive("--batch", batch)
    o.check_positive("--threads", threads, zero_ok=True)
    ov = Overrides(
        ep=ep,
        threads=threads,
        batch=batch,
        dims=o.parse_dims(dim),
        text=text,
        input_files=tuple(input or ()),
        strict=strict,
        allow_custom_ops=allow_custom_ops,
    )
    with spinner("preparing", enabled=not json_) as update:
        out = run_model(target, ov, status=update, allow_network=allow_network)
    if save is not None:
        try:
            save.parent.mkdir(parents=True, exist_ok=True)
            np.savez(save, **out.outputs)
        except OSError as exc:
            from aialliance_cli.errors import BadInputError

            raise BadInputError(f"cannot save outputs to {save}: {exc.strerror}") from exc
    data = out.result.to_dict()
    if json_:
        from aialliance_cli.cli.output import print_json

        if out.embedding is not None:
            data["embedding"] = out.embedding.tolist()
        print_json(data)
        return
    for w in out.result.warnings:
        warn(w)
    _render(out, data)
    if save is not None:
        info(f"outputs saved to {save}")


def _render(out: Any, data: dict[str, Any]) -> None:
    import numpy as np

    from aialliance_cli.cli.output import show, table

    ep = data["ep"]
    rows = []
    for name, s in data["metrics"]["outputs"].items():
        summary = (
            f"min {s['min']:.4g}  max {s['max']:.4g}  mean {s['mean']:.4g}  std {s['std']:.4g}"
            if "mean" in s
            else ""
        )
        rows.append((name, "×".join(map(str, s["shape"])), s["dtype"], summary))
    caption = (
        f"ran on {ep['name']} ({ep.get('device') or 'default device'}) in "
        f"{data['metrics']['latency_ms']:.2f} ms; session built in "
        f"{data['metrics']['session_create_s']:.2f} s"
    )
    placement = ep.get("placement", {}).get("summary")
    if placement:
        caption += f"\nplacement: {placement}"
    show(
        table(
            f"{data['profile']['name']}: outputs",
            ["output", "shape", "dtype", "summary"],
            rows,
            caption=caption,
        )
    )
    if out.embedding is not None:
        emb = out.embedding
        head = np.array2string(emb[0][:8], precision=4, separator=", ")
        norms = ", ".join(f"{n:.4f}" for n in np.linalg.norm(emb, axis=-1))
        show(f"pooled embedding: dim {emb.shape[-1]}, norm {norms}, first values {head[:-1]}, ...]")
