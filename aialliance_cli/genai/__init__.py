"""Text generation on ONNX Runtime: export, KV-cache decode loop, benchmarks.

The profile's ``generation:`` section is :class:`GenerationSpec`; it is also the
settings object that :meth:`aialliance_cli.genai.generate.Generator.generate`
takes. Heavy modules (onnxruntime, transformers, optimum) load only inside the
functions of the submodules that need them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from aialliance_cli.errors import BadInputError

__all__ = ["GenerationSpec", "GenBenchSpec", "make_settings", "validation_message"]

# absurd values (2**70 tokens) are refused at load time; aialliance_cli/limits.py has the table
PosInt = Annotated[StrictInt, Field(gt=0, le=2**31 - 1)]
NonNegInt = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]


def _number(value: Any) -> Any:
    # YAML `temperature: 1` is an int; accept it, but never a string or a boolean.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return float(value)


def _str_list(value: Any) -> Any:
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


def _int_list(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


def _config_values(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of transformers config keys to values")
    if "model_type" not in value:
        raise ValueError("must name model_type (e.g. llama, gpt2) besides the sizes")
    return value


PosIntList = Annotated[tuple[PosInt, ...], BeforeValidator(_int_list), Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenBenchSpec(_Strict):
    """The grid ``aia bench`` measures: every (batch, prompt length, gen length)."""

    prompt_lens: PosIntList = (128,)
    gen_lens: PosIntList = (32,)
    batches: PosIntList = (1,)
    warmup: NonNegInt = 1
    repetitions: PosInt = 3


class GenerationSpec(_Strict):
    """Settings of text generation (the profile's ``generation:`` section).

    ``top_k: 0`` and ``top_p: 1.0`` switch those filters off; ``seed: null``
    samples differently on every run. ``architecture`` is a transformers config
    (``model_type`` plus sizes) used by ``--random-weights`` when the real
    weights are not at hand.
    """

    max_new_tokens: PosInt = 128
    do_sample: StrictBool = False
    seed: NonNegInt | None = None
    temperature: Annotated[
        float, BeforeValidator(_number), Field(gt=0, le=1e6, allow_inf_nan=False)
    ] = 1.0
    top_k: NonNegInt = 0
    top_p: Annotated[float, BeforeValidator(_number), Field(gt=0, le=1, allow_inf_nan=False)] = 1.0
    stop: Annotated[tuple[NonEmptyStr, ...], BeforeValidator(_str_list)] = ()
    prompts: Annotated[tuple[NonEmptyStr, ...], BeforeValidator(_str_list)] = ()
    chat_template: StrictBool = False
    architecture: Annotated[dict[str, Any] | None, BeforeValidator(_config_values)] = None
    # How the decoder is made and run (docs/generation.md): the model builder's fused graph
    # (auto: when available, else optimum), its precision and int4/int8 block size and
    # accuracy level, and the engine that runs it (aia's loop or ONNX Runtime GenAI's).
    exporter: Literal["auto", "builder", "optimum"] = "auto"
    precision: Literal["fp32", "fp16", "bf16", "int4", "int8"] = "fp32"
    block_size: Literal[16, 32, 64, 128, 256] = 32
    accuracy_level: Annotated[StrictInt, Field(ge=0, le=4)] | None = None
    engine: Literal["aia", "genai"] = "aia"
    spinning: StrictBool = True
    bench: GenBenchSpec = Field(default_factory=GenBenchSpec)


def validation_message(exc: ValidationError, *, prefix: str = "generation") -> str:
    """One readable line per problem: ``generation.top_p: must be <= 1 (got 1.5)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = err["msg"]
        for lead in ("Value error, ", "Input should be "):
            if msg.startswith(lead):
                msg = ("must be " if lead == "Input should be " else "") + msg[len(lead) :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        tail = "" if err["type"] in ("extra_forbidden", "missing") else f" (got {got!r})"
        lines.append(f"{loc}: {msg}{tail}")
    return "; ".join(lines)


def make_settings(
    base: GenerationSpec | Mapping[str, Any] | None = None,
    *,
    source: str = "generation settings",
    **overrides: Any,
) -> GenerationSpec:
    """Validate ``base`` (a spec or a mapping) with ``overrides`` applied (None = keep).

    Raises BadInputError naming ``source`` and each bad key and value.
    """
    if isinstance(base, GenerationSpec) or getattr(type(base), "__aia_view__", False):
        # a spec, or its view from a cached profile (profiles/view.py)
        data: dict[str, Any] = base.model_dump(exclude_unset=True)
    else:
        data = dict(base or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return GenerationSpec.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(
            f"{source}: {validation_message(exc)}.",
            hint="temperature must be > 0, top_k >= 0, 0 < top_p <= 1, max_new_tokens >= 1.",
        ) from None
