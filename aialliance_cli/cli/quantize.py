"""`aia quantize`: a prepared (int8 or fp16) model in the cache, checked against its fp32 base."""

from __future__ import annotations

from typing import Annotated

import typer

from aialliance_cli.cli import options as o
from aialliance_cli.cli.output import handles_errors


@handles_errors
def quantize(
    target: o.Target = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="dynamic (int8 weights, activations at run time), static (int8 QDQ, "
            "calibrated on the profile's inputs) or fp16.",
        ),
    ] = "dynamic",
    per_channel: Annotated[
        bool | None,
        typer.Option(
            "--per-channel/--per-tensor",
            help="One weight scale per output channel, or one per tensor (default: from the "
            "CPU's instruction set; per channel).",
            show_default=False,
        ),
    ] = None,
    weight_type: Annotated[
        str | None,
        typer.Option(
            "--weight-type",
            help="qint8 or quint8 (default: from the CPU's instruction set, as optimum's "
            "presets: quint8 on AVX2 without VNNI, else qint8).",
        ),
    ] = None,
    calibration: Annotated[
        int | None,
        typer.Option(
            "--calibration",
            help="With --method static: how many of the profile's input sets calibrate the "
            "activation ranges (default 32).",
        ),
    ] = None,
    min_accuracy: Annotated[
        float | None,
        typer.Option(
            "--min-accuracy",
            help="Accuracy the model must reach (0-1; default per task: cosine 0.99 for "
            "sentence embeddings, top-1 agreement 0.95 for classifiers, else 1 - relative "
            "error 0.99). Below it aia exits 3; the model stays in the cache.",
        ),
    ] = None,
    samples: Annotated[
        int,
        typer.Option("--samples", help="Distinct input sets the accuracy check runs (16 or more)."),
    ] = 16,
    json_: o.Json = False,
    allow_network: o.AllowNetwork = False,
) -> None:
    """Write an int8 or fp16 version of a model into the cache and check it against fp32."""
    from aialliance_cli.cli.output import print_json, spinner
    from aialliance_cli.errors import UnavailableError
    from aialliance_cli.runtime.textgen import is_text_generation
    from aialliance_cli.tune.quantize import QuantSpec, quantize_target

    if is_text_generation(target):
        from aialliance_cli.errors import BadInputError

        raise BadInputError(
            f"aia quantize prepares single-pass models; {target} is a text-generation profile, "
            "whose int4/int8 models come from its generation engine (docs/generation.md)"
        )
    spec = QuantSpec(
        method.strip().lower(),
        weight_type=weight_type.strip().lower() if weight_type else None,
        per_channel=per_channel,
        calibration=calibration,
    ).validate()
    with spinner("preparing", enabled=not json_) as update:
        report = quantize_target(
            target,
            spec,
            min_accuracy=min_accuracy,
            samples=samples,
            allow_network=allow_network,
            status=update,
        )
    if json_:
        print_json(report.to_dict())
    else:
        _render(report)
    if not report.passed:
        raise UnavailableError(
            f"{report.prepared.spec.describe()} of {report.target.name} reaches "
            f"{_first(report).summary()}, below --min-accuracy {report.min_accuracy}; it is "
            f"kept in the cache at {report.prepared.path}, but aia would reject it"
        )


def register(app: typer.Typer) -> None:
    app.command("quantize")(quantize)


def _first(report):  # noqa: ANN001, ANN202 - the deciding agreement
    return next(iter(report.accuracy.values()))


def _render(report) -> None:  # noqa: ANN001
    from aialliance_cli.cli.output import clean, fmt_bytes, info, show, table

    p = report.prepared
    rows = []
    for kind, agreement in report.accuracy.items():
        decides = kind == next(iter(report.accuracy))
        verdict = ("pass" if agreement.passes(report.min_accuracy) else "FAIL") if decides else ""
        rows.append((kind, str(agreement.samples), agreement.summary(), verdict))
        typer.echo(clean(p.path))
    info(
        f"{p.spec.describe()} ({'from the cache' if p.reused else 'made now'}; ISA preset {p.isa}"
        f"; {fmt_bytes(p.size_bytes)} against {fmt_bytes(p.source_path.stat().st_size)})"
    )
    show(
        table(
            f"Agreement with the fp32 model (CPU EP), min {report.min_accuracy}",
            ["inputs", "n", "accuracy", "verdict"],
            rows,
        )
    )
    entry = p.spec.variant_yaml()
    name = report.variant_name
    if report.target.profile is not None:
        typer.echo(
            clean(
                f"\nTo use it as a variant, add to {report.target.loaded.path}:\n"
                f"  variants:\n    {name}: {entry}\n"
                f"then: aia bench {report.target.profile.name} --variant base,{name}"
            )
        )
    else:
        typer.echo(
            clean(
                f"\nRun it directly (aia bench {p.path}), or write a profile for "
                f"{p.source_path.name} (docs/profiles.md) with\n  variants:\n    {name}: {entry}"
            )
        )
