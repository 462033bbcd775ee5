"""Precision variants of a profile's model: ``base``, another source, or a quantization.

A profile's ``variants:`` section names them (``int8: {quantize: dynamic}``).
Quantized variants are made from the resolved base ONNX file with ONNX
Runtime's own tools and kept in the model cache, keyed by the base model's
identity, the method, its options and the ONNX Runtime version, so a second
resolve reuses the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError, ModelError
from aialliance_cli.models import cache

BASE = "base"
ALL = "all"
_FORMAT = 1  # bump when the way aia quantizes changes, to invalidate old entries


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


def _options(spec: Any) -> dict[str, Any]:
    if spec.quantize == "dynamic":
        return {"weight_type": spec.weight_type or "qint8", "per_channel": bool(spec.per_channel)}
    return {"keep_io_types": True}


def variant_key(target: Any, method: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The cache key of a quantized variant and the identity it hashes."""
    import onnxruntime

    base = target.model_info.get("cache_key") or f"sha256:{_sha256(Path(target.model_path))}"
    identity = {
        "name": f"{target.name}-{method}",
        "base": base,
        "method": method,
        "options": options,
        "onnxruntime": onnxruntime.__version__,
        "format": _FORMAT,
    }
    return cache.cache_key("variant", identity), identity


def _quantized(target: Any, name: str, spec: Any, status: Any) -> Any:
    method = spec.quantize
    options = _options(spec)
    key, identity = variant_key(target, method, options)
    entry = cache.lookup(key)
    if entry is None:
        status(f"making variant {name} ({_describe(method, options)}) of {target.model_path.name}")

        def fill(tmp: Path) -> None:
            try:
                if method == "dynamic":
                    _quantize_dynamic(Path(target.model_path), tmp / cache.MODEL_FILE, options)
                else:
                    _to_fp16(Path(target.model_path), tmp / cache.MODEL_FILE)
            except Exception as exc:
                raise ModelError(
                    f"cannot make variant '{name}' ({_describe(method, options)}) of "
                    f"{target.model_path}: {str(exc).strip() or type(exc).__name__}"
                ) from exc

        entry = cache.store(key, {"kind": "variant", **identity}, fill)
    path = entry.model_path.absolute()
    return replace(
        target,
        model_path=path,
        model_info={
            "path": str(path),
            "source": f"{_describe(method, options)} of {target.model_info.get('source', 'file')}",
            "cache_key": key,
            "variant": name,
            "base": dict(target.model_info),
        },
    )


def _describe(method: str, options: dict[str, Any]) -> str:
    if method == "dynamic":
        per = " per channel" if options.get("per_channel") else ""
        return f"dynamic quantization, {options['weight_type']} weights{per}"
    return "float16 weights and ops, float32 inputs and outputs"


def _has_external_data(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def _quantize_dynamic(src: Path, dest: Path, options: dict[str, Any]) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}[options["weight_type"]]
    # The quantizer logs advice ("consider pre-processing") on the root logger; aia's
    # output stays its own. Failures still raise.
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(
            src,
            dest,
            weight_type=weight,
            per_channel=bool(options.get("per_channel")),
            use_external_data_format=_has_external_data(src),
        )
    finally:
        logging.disable(before)


def _to_fp16(src: Path, dest: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    converted = convert_float_to_float16(model, keep_io_types=True)
    big = converted.ByteSize() > 1_800_000_000  # protobuf's 2 GiB limit
    onnx.save(converted, str(dest), save_as_external_data=big)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
