"""Precision variants of a profile's model: ``base``, another source, or a quantization.

A profile's ``variants:`` section names them (``int8: {quantize: dynamic}``).
Quantized variants are prepared from the resolved base ONNX file by
:mod:`aialliance_cli.tune.quantize` and kept in the model cache, keyed by the
base file's sha256, the resolved options, the calibration inputs and the ONNX
Runtime version, so a second resolve reuses the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aialliance_cli.errors import BadInputError, ModelError

BASE = "base"
ALL = "all"


def _quiet(_: str) -> None:
    pass


def variant_names(target: Any) -> list[str]:
    """``base`` then the profile's variants; a bare model file has none."""
    prof = target.profile
    if prof is None:
        return []
    return [BASE, *(getattr(prof, "variants", None) or {})]


def parse_variants(target: Any, text: str | None) -> list[str] | None:
    """``"base,int8"`` or ``"all"`` -> variant names checked against the target's profile.

    None stays None (no variant dimension). A bare model file or an unknown name
    raises BadInputError naming the profile's variants.
    """
    if text is None:
        return None
    items = [t.strip() for t in str(text).split(",")]
    if any(not t for t in items):
        raise BadInputError(f"--variant expects a name or a comma-separated list, got '{text}'")
    known = variant_names(target)
    if not known:
        raise BadInputError(
            f"--variant: variants come from a profile's variants: section, and "
            f"{target.model_path} is a bare model file; write a profile for it (docs/profiles.md)"
        )
    if ALL in items:
        if len(items) > 1:
            raise BadInputError("--variant all already means every variant; give it alone")
        return known
    out: list[str] = []
    for name in items:
        if name not in known:
            from aialliance_cli.profiles.schema import did_you_mean

            raise BadInputError(
                f"--variant: profile {target.profile.name} has no variant '{name}'"
                f"{did_you_mean(name, known)}. Its variants: {', '.join(known)}"
                + ("" if len(known) > 1 else " (add a variants: section, docs/profiles.md)")
            )
        if name not in out:
            out.append(name)
    return out


def resolve_variant(
    target: Any,
    name: str,
    status: Callable[[str], None] = _quiet,
    *,
    allow_network: bool = False,
) -> Any:
    """A copy of ``target`` whose model is variant ``name``; ``model_info["variant"]`` says which.

    ``base`` is the target's own model. Quantized variants are built once from
    the base file and cached; ``model:`` variants resolve like the top-level key
    (paths relative to the profile's folder).
    """
    if name == ALL or "," in name:
        raise BadInputError(f"resolve_variant takes one variant name, got '{name}'")
    parse_variants(target, name)  # unknown names and bare files: one clear message
    if name == BASE:
        return replace(target, model_info={**target.model_info, "variant": BASE})
    spec = target.profile.variants[name]
    if spec.model is not None:
        return _from_source(target, name, spec, status, allow_network)
    return _quantized(target, name, spec, status)


def _from_source(target: Any, name: str, spec: Any, status: Any, allow_network: bool) -> Any:
    from aialliance_cli.models.onnxfile import check_onnx_file
    from aialliance_cli.models.sources import ModelSpec, resolve_model

    src = ModelSpec.from_mapping(spec.model.model_dump(exclude_none=True))
    resolved = resolve_model(
        src, target.loaded.directory, allow_network=allow_network, progress=status
    )
    check_onnx_file(resolved.path)
    path = resolved.path.absolute()
    return replace(
        target,
        model_path=path,
        tokenizer_dir=resolved.tokenizer_dir or target.tokenizer_dir,
        model_info={
            "path": str(path),
            "source": resolved.description,
            "cache_key": resolved.cache_key,
            "variant": name,
        },
    )


def quant_spec(spec: Any) -> Any:
    """The tune.quantize.QuantSpec of a profile's ``quantize:`` variant (options left at None
    are filled from this machine's ISA preset)."""
    from aialliance_cli.tune.quantize import QuantSpec

    return QuantSpec(
        spec.quantize,
        weight_type=spec.weight_type,
        per_channel=spec.per_channel,
        calibration=getattr(spec, "calibration", None),
    ).validate()


def _quantized(target: Any, name: str, spec: Any, status: Any) -> Any:
    """Prepared once by aialliance_cli.tune.quantize and kept in the model cache."""
    from aialliance_cli.tune.quantize import calibration_inputs, prepare

    qspec = quant_spec(spec)
    calibration = None
    if qspec.method == "static":
        calibration = calibration_inputs(target, qspec.resolved().calibration)
    try:
        prepared = prepare(
            target.model_path,
            qspec,
            calibration=calibration,
            name=target.name,
            status=lambda msg: status(f"making variant {name}: {msg}"),
        )
    except ModelError as exc:
        raise ModelError(f"cannot make variant '{name}': {exc}") from exc
    path = prepared.path
    return replace(
        target,
        model_path=path,
        model_info={
            "path": str(path),
            "source": f"{prepared.spec.describe()} of {target.model_info.get('source', 'file')}",
            "cache_key": prepared.cache_key,
            "sha256": prepared.sha256,
            "variant": name,
            "quantization": {**prepared.spec.to_dict(), "isa": prepared.isa},
            "base": dict(target.model_info),
        },
    )
