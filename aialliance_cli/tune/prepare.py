"""The model file a precision runs: the target's own, a cached quantization, or a profile variant.

Quantized models are made once from the base model and kept in the model cache
(models/variants.py keys them by the base model, the method, its options and the
ONNX Runtime version), so a second `aia tune`, `aia run` or `aia bench` reuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from aialliance_cli.errors import BadInputError

VARIANT_PREFIX = "variant:"


def _quiet(_: str) -> None:
    pass


def is_cached(target: Any, precision: str) -> bool:
    """True when the precision's model exists already (no time to spend making it)."""
    from aialliance_cli.tune.space import PRECISIONS

    if precision.startswith(VARIANT_PREFIX) or precision not in PRECISIONS:
        return True
    q = PRECISIONS[precision].quantize
    if q is None:
        return True
    if q["method"] in ("dynamic", "fp16"):
        from aialliance_cli.models import cache
        from aialliance_cli.models.variants import _options, variant_key

        spec = _spec(q)
        key, _ = variant_key(target, spec.quantize, _options(spec))
        return cache.lookup(key) is not None
    return False


def _spec(q: dict[str, Any]) -> Any:
    return SimpleNamespace(
        quantize=q["method"],
        weight_type=q.get("weight_type"),
        per_channel=q.get("per_channel", False),
        model=None,
    )


def prepared_target(target: Any, precision: str, status: Callable[[str], None] = _quiet) -> Any:
    """A copy of ``target`` whose model computes in ``precision`` (made and cached once)."""
    from aialliance_cli.tune.space import PRECISIONS

    if precision.startswith(VARIANT_PREFIX):
        from aialliance_cli.models.variants import resolve_variant

        return resolve_variant(target, precision[len(VARIANT_PREFIX) :], status)
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision '{precision}'")
    q = PRECISIONS[precision].quantize
    if q is None:
        return target
    if q["method"] == "static":
        return _static(target, status)
    from aialliance_cli.models.variants import _quantized

    out = _quantized(target, precision, _spec(q), status)
    out.model_info["precision"] = precision
    return out


def _static(target: Any, status: Callable[[str], None]) -> Any:
    """int8 static QDQ from aia's quantizer (aialliance_cli.tune.quantize)."""
    try:
        from aialliance_cli.tune import quantize as Q
    except ImportError as exc:
        raise BadInputError(
            "int8-static needs aia's quantizer (aia quantize), which this build lacks"
        ) from exc
    fn = getattr(Q, "prepared_target", None) or getattr(Q, "quantize_target", None)
    if fn is None:
        raise BadInputError("int8-static needs aia's quantizer (aia quantize), not found")
    return fn(target, "static", status=status)
