"""`aia run`: run a model once on the chosen EP and show what came out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli import interrupts
from aialliance_cli.cli import options as o
from aialliance_cli.cli.genbench import Engine, Exporter, Precision, gen_options
from aialliance_cli.cli.output import handles_errors


@handles_errors
def run(
    target: o.Target = None,
    ep: o.Ep = None,
    threads: o.Threads = None,
    batch: o.Batch = None,
    dim: o.Dims = None,
    variant: Annotated[
        str | None,
        typer.Option(
            "--variant",
            help="A precision variant of the profile's model: base or a name from its "
            "variants: section.",
        ),
    ] = None,
    text: o.Text = None,
    input: o.InputFiles = None,
    save: Annotated[
        Path | None, typer.Option("--save", help="Save the outputs to an .npz file.")
    ] = None,
    json_: o.Json = False,
    strict: o.Strict = False,
    allow_network: o.AllowNetwork = False,
    allow_custom_ops: o.AllowCustomOps = False,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="Text-generation profiles: the prompt.")
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option("--max-new-tokens", help="Text-generation profiles: tokens to generate."),
    ] = None,
    random_weights: Annotated[
        bool,
        typer.Option(
            "--random-weights",
            help="Text-generation profiles: build the architecture with random weights "
            "(no download; the text is meaningless, the timings are real).",
        ),
    ] = False,
    no_tuned: o.NoTuned = False,
    min_accuracy: Annotated[
        float | None,
        typer.Option(
            "--min-accuracy",
            help="With several EPs (--ep A,B): the agreement each must reach with the fp32 "
            "CPU run (0-1; default per task, e.g. cosine 0.99 for sentence embeddings).",
        ),
    ] = None,
    engine: Engine = None,
    precision: Precision = None,
    exporter: Exporter = None,
) -> None:
    """Run a profile or ONNX model once and print its outputs and the EP that ran it."""

    from aialliance_cli.runtime.textgen import is_text_generation

    if save is not None and save.is_dir():
        from aialliance_cli.errors import BadInputError

        raise BadInputError(f"--save {save} is a directory; give a file name such as out.npz")

    if is_text_generation(target):
        if variant is not None:
            from aialliance_cli.errors import BadInputError

            raise BadInputError("--variant does not apply to text-generation profiles")
        o.check_positive("--max-new-tokens", max_new_tokens)
        _run_generation(
            target,
            prompt,
            max_new_tokens,
            random_weights,
            ep,
            threads,
            strict,
            allow_network,
            json_,
            gen_options(engine, precision, exporter),
        )
        return
    given = [
        k
        for k, v in (("--engine", engine), ("--precision", precision), ("--exporter", exporter))
        if v is not None
    ]
    if given:
        from aialliance_cli.errors import BadInputError

        raise BadInputError(
            f"{', '.join(given)} apply to text-generation profiles only "
            f"({target or 'the default profile'} is not one)"
        )

    from aialliance_cli.cli.output import info, spinner, warn_all
    from aialliance_cli.runtime.api import Overrides
    from aialliance_cli.runtime.api import run as run_model

    o.check_positive("--batch", batch)
    o.check_positive("--threads", threads, zero_ok=True)
    dims = o.parse_dims(dim)
    batch = o.merge_batch(batch, dims)
    ov = Overrides(
        ep=ep,
        threads=threads,
        batch=batch,
        dims=dims,
        text=o.read_text(text),
        input_files=tuple(input or ()),
        strict=strict,
        allow_custom_ops=allow_custom_ops,
        variant=variant,
    )
    if (ep and "," in ep) or min_accuracy is not None:
        _run_eps(target, ov, ep, min_accuracy, save, json_, allow_network)
        return
    with spinner("preparing", enabled=not json_) as update:
        from aialliance_cli.runtime.api import prepare_target
        from aialliance_cli.tune.apply import apply_tuned

        tgt = prepare_target(target, allow_network=allow_network, status=update)
        tuned = None
        if not no_tuned:
            given = {"--ep": ep, "--threads": threads, "--batch": batch, "--variant": variant}
            tuned = apply_tuned(tgt, ov, given=given, here_only=True, status=update)
            tgt, ov = tuned.target, tuned.overrides
        out = run_model(tgt, ov, status=update, allow_network=allow_network)
    if save is not None:
        arrays = dict(out.outputs)
        if out.embedding is not None:  # the pooled sentence embedding beside the raw outputs
            arrays["pooled_embedding" if "embedding" in arrays else "embedding"] = out.embedding
        save = _save_outputs(save, arrays)
    data = out.result.to_dict()
    warn_all(out.result.warnings)
    if tuned is not None and (tuned.record is not None or tuned.notes):
        data["tuned"] = tuned.result_record()
        for note in tuned.notes:
            info(note)
        if tuned.record is not None:
            info(tuned.record.summary_line())
    if json_:
        from aialliance_cli.cli.output import print_json

        if out.embedding is not None:
            data["embedding"] = out.embedding.tolist()
        print_json(data)
        return
    _render(out, data)
    if save is not None:
        info(f"outputs saved to {save}")


def _run_eps(
    target: Any,
    ov: Any,
    ep: str | None,
    min_accuracy: float | None,
    save: Path | None,
    json_: bool,
    allow_network: bool,
) -> None:
    """--ep A,B: one run per EP on the same inputs, each compared with the fp32 CPU run."""
    from dataclasses import replace

    from aialliance_cli.cli.output import print_json, show, spinner, table, warn_all
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.providers.catalogue import short_name
    from aialliance_cli.runtime.api import prepare_target
    from aialliance_cli.runtime.sweep import ALL, parse_ep_list
    from aialliance_cli.tune.accuracy import agreement_text, check_min_accuracy, run_eps

    check_min_accuracy(min_accuracy)
    if not ep or "," not in ep:
        raise BadInputError("--min-accuracy applies with several EPs: --ep A,B")
    eps = parse_ep_list(ep) or []
    if ALL in eps:
        raise BadInputError("aia run takes a list of EPs, not 'all'; name them: --ep cpu,openvino")
    if save is not None:
        raise BadInputError("--save takes the outputs of one EP; give a single --ep with it")
    with spinner("preparing", enabled=not json_) as update:
        tgt = prepare_target(target, allow_network=allow_network, status=update)
        runs = run_eps(
            tgt,
            replace(ov, ep=None),
            eps,
            min_accuracy=min_accuracy,
            status=update,
            allow_network=allow_network,
        )
    for r in runs:
        warn_all(r.output.result.warnings, prefix=f"{r.ep}: ")
    if json_:
        print_json([r.output.result.to_dict() for r in runs])
        return
    rows = []
    for r in runs:
        a = r.agreement
        verdict = {True: "same", False: "DIFFERS", None: "not compared"}[a.get("passed")]
        rows.append(
            (
                short_name(r.ep),
                short_name(str(r.output.result.ep.get("name"))),
                f"{r.output.result.metrics['latency_ms']:.2f}",
                agreement_text(a),
                verdict,
            )
        )
    threshold = runs[0].agreement.get("min_accuracy") if runs else None
    show(
        table(
            f"{tgt.name}: outputs against the fp32 model on the CPU EP (min {threshold})",
            ["asked", "ran on", "latency ms", "agreement", "verdict"],
            rows,
        )
    )


def _save_outputs(save: Path, outputs: dict[str, Any]) -> Path:
    """Write exactly to ``save`` (numpy would append .npz to other names); refuse folders."""
    import numpy as np

    from aialliance_cli.errors import BadInputError

    if save.is_dir():
        raise BadInputError(f"--save {save} is a directory; give a file name such as out.npz")
    try:
        save.parent.mkdir(parents=True, exist_ok=True)
        with open(save, "wb") as f:
            np.savez(f, **outputs)
    except OSError as exc:
        raise BadInputError(f"cannot save outputs to {save}: {exc.strerror or exc}") from exc
    return save


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
    windows = data["metrics"].get("windows")
    dims = data["settings"].get("dims") or {}
    at = f" at {' '.join(f'{k}={v}' for k, v in dims.items())}" if dims else ""
    caption = (
        f"ran on {ep['name']} ({ep.get('device') or 'default device'}){at} in "
        f"{data['metrics']['latency_ms']:.2f} ms"
        + (f" ({windows} windows in order, state carried)" if windows else "")
        + f"; session built in {data['metrics']['session_create_s']:.2f} s"
    )
    if data["settings"].get("preprocess"):
        files = ", ".join(data["settings"].get("input_files") or [])
        caption += f"\ninput: {files} ({data['settings']['preprocess']})"
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


def _run_generation(
    target, prompt, max_new_tokens, random_weights, ep, threads, strict, allow_network, json_, opts
) -> None:
    """Stream generated text token by token, then the figures (TTFT, decode tokens/s)."""
    import sys

    from aialliance_cli.cli.output import show, spinner, table, warn_all
    from aialliance_cli.runtime.api import Overrides
    from aialliance_cli.runtime.textgen import generate_text, prepare_generation

    ov = Overrides(ep=ep, threads=threads, strict=strict)
    with spinner("preparing", enabled=not json_) as update:
        p = prepare_generation(
            target,
            ov,
            random_weights=random_weights,
            allow_network=allow_network,
            status=update,
            options=opts,
        )

    shown = _VisibleStream(sys.stdout)
    out, result = generate_text(
        p, prompt, max_new_tokens=max_new_tokens, on_token=None if json_ else shown.write
    )
    data = result.to_dict()
    if json_:
        from aialliance_cli.cli.output import print_json

        warn_all(data["warnings"])
        print_json(data)
    else:
        if not shown.wrote:
            ids = data.get("token_ids") or []
            head = " ".join(str(i) for i in ids[:32]) + (" ..." if len(ids) > 32 else "")
            sys.stdout.write(
                f"[{len(ids)} tokens generated; they decode to no printable text. "
                f"Token ids: {head or 'none'}]"
            )
        sys.stdout.write("\n")
        warn_all(data["warnings"])
        m = data["metrics"]
        ttft = "n/a" if m["ttft_ms"] is None else f"{m['ttft_ms']:.1f} ms"
        decode = m["decode_tokens_per_s"]
        rows = [
            ("EP", data["ep"]["name"]),
            ("engine", f"{p.engine} ({p.export.exporter} {p.export.precision})"),
            ("prompt tokens", str(m["n_prompt_tokens"])),
            ("tokens generated", str(m["n_generated"])),
            ("time to first token", ttft),
            ("decode", "n/a" if decode is None else f"{decode:.1f} tokens/s"),
            ("end to end", f"{m['e2e_ms']:.1f} ms"),
            ("stopped by", m["stop_reason"]),
        ]
        show(table(f"{data['profile']['name']}: generation", ["", ""], rows))
    if out.interrupted:
        raise typer.Exit(interrupts.exit_code())


def printable(text: str) -> bool:
    """True when ``text`` shows something on a terminal (not only blanks or control codes)."""
    return any(ch.isprintable() and not ch.isspace() for ch in text)


class _VisibleStream:
    """Streams generated text, holding back blanks until something printable comes.

    Random weights often produce only newlines or special tokens; the caller then prints
    the token ids instead of a screen of blank lines.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.pending = ""
        self.wrote = False

    def write(self, event: Any) -> None:
        self.pending += event.text
        if printable(self.pending):
            text = self.pending
            if not self.wrote:  # the blanks and control codes before the first visible text
                text = text[next(i for i, ch in enumerate(text) if printable(ch)) :]
            from aialliance_cli.cli.output import clean

            self.stream.write(clean(text))  # model output: untrusted
            self.stream.flush()
            self.pending = ""
            self.wrote = True
