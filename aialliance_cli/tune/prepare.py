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
    from aialliance_cli.models import cache
    from aialliance_cli.models.variants import quant_spec
    from aialliance_cli.tune.quantize import (
        FeedsReader,
        calibration_inputs,
        file_sha256,
        prepared_key,
    )

    spec = quant_spec(_spec(q)).resolved()
    digest = None
    if q["method"] == "static":
        # Its key holds the calibration inputs' digest: making them (the profile's
        # sentences through its tokenizer, about a second) is what making the model
        # would start with anyway.
        try:
            digest = FeedsReader(calibration_inputs(target, spec.calibration)).digest
        except Exception:
            return False  # making it will say what is wrong, in its own trial
    key, _ = prepared_key(file_sha256(target.model_path), spec, digest, target.name)
    return cache.lookup(key) is not None


def _spec(q: dict[str, Any]) -> Any:
    return SimpleNamespace(
        quantize=q["method"],
        weight_type=q.get("weight_type"),
        per_channel=q.get("per_channel"),
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
    from aialliance_cli.models.variants import _quantized

    out = _quantized(target, precision, _spec(q), status)
    out.model_info["precision"] = precision
    return out
