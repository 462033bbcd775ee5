"""The profile schema (``aia.profile/1``): strict pydantic models of a model run.

Profiles are data. Every model refuses unknown keys and is frozen. Types are
strict (YAML ``"10"`` is not an integer) so that a typo never silently becomes
a different number. Validation here is structural: whether files exist and
models load is checked by ``aialliance_cli.models`` and the runtime.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from aialliance_cli.errors import did_you_mean
from aialliance_cli.genai import GenerationSpec
from aialliance_cli.limits import MAX_DIM, MAX_ITERATIONS, MAX_WARMUP, WEEK_S
from aialliance_cli.profiles.view import (
    BASE_VARIANT,
    InputsSpecMethods,
    ModelSpecMethods,
    ProfileMethods,
    TensorSpecMethods,
    TextInputMethods,
)

SCHEMA_ID = "aia.profile/1"

Task = Literal[
    "sentence-embedding",
    "feature-extraction",
    "text-classification",
    "text-generation",
    "image",
    "audio",
    "generic",
]
Synthesize = Literal["random", "zeros", "ones", "range"]
DType = Literal[
    "float32",
    "float16",
    "bfloat16",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
]
GraphOptimizationLevel = Literal["disable", "basic", "extended", "layout", "all"]
ExecutionMode = Literal["sequential", "parallel"]
Pooling = Literal["none", "mean", "cls"]

# The bounds are those of the matching command-line options (aialliance_cli/limits.py).
NonNegInt = Annotated[StrictInt, Field(ge=0, le=MAX_DIM)]
PosInt = Annotated[StrictInt, Field(gt=0, le=MAX_DIM)]
FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]
Threads = Annotated[StrictInt, Field(ge=0, le=65536)]  # and 4 x the cores, checked at run time
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]

_NAME_RE = r"^[a-z0-9._-]+$"  # pydantic (Rust regex): "$" is the very end, not before "\n"
_DEVICE_KEY_RE = re.compile(r"^[a-z0-9]+-(cpu|gpu|npu)$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# Used only while aialliance_cli.providers.catalogue is not importable: the
# canonical ONNX Runtime EP names, so a typo is still caught at load time.
_FALLBACK_EPS = (
    "CPUExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "NvTensorRTRTXExecutionProvider",
    "OpenVINOExecutionProvider",
    "DmlExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "QNNExecutionProvider",
    "CoreMLExecutionProvider",
    "XnnpackExecutionProvider",
    "WebGpuExecutionProvider",
    "VitisAIExecutionProvider",
    "DnnlExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
    "CANNExecutionProvider",
    "NnapiExecutionProvider",
    "AzureExecutionProvider",
)
_FALLBACK_ALIASES = {
    "trt": "TensorrtExecutionProvider",
    "tensorrt-rtx": "NvTensorRTRTXExecutionProvider",
    "nv-tensorrt-rtx": "NvTensorRTRTXExecutionProvider",
    "dml": "DmlExecutionProvider",
    "directml": "DmlExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
    "vitisai": "VitisAIExecutionProvider",
    "onednn": "DnnlExecutionProvider",
}


def _fallback_resolve(name: str) -> str:
    table = {ep.lower(): ep for ep in _FALLBACK_EPS}
    table.update({ep[: -len("ExecutionProvider")].lower(): ep for ep in _FALLBACK_EPS})
    table.update(_FALLBACK_ALIASES)
    found = table.get(name.lower())
    if found is None:
        short = sorted(k for k in table if not k.endswith("executionprovider"))
        raise ValueError(f"unknown execution provider '{name}'{did_you_mean(name.lower(), short)}")
    return found


def check_ep_name(name: Any) -> Any:
    """Refuse an execution-provider name that aia does not know (the name is kept as written)."""
    if not isinstance(name, str):
        return name  # the str type check reports it
    try:  # the catalogue is another module's contract; import lazily so profiles stay light
        from aialliance_cli.providers.catalogue import resolve_ep_name
    except ImportError:
        _fallback_resolve(name)
        return name
    try:
        resolve_ep_name(name)
    except Exception as exc:  # any refusal becomes one clean validation message
        text = getattr(exc, "message", None) or str(exc) or f"unknown execution provider '{name}'"
        raise ValueError(text.rstrip(".")) from None
    return name


EPName = Annotated[NonEmptyStr, BeforeValidator(check_ep_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _relative_resource(value: str, what: str) -> str:
    if value.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", value):
        raise ValueError(f"{what} must be a path inside the package, got '{value}'")
    return value


# --- model sources ---------------------------------------------------------------------------


class PackageResource(_Strict):
    """A file or folder inside an installed Python package (located without importing it)."""

    name: NonEmptyStr
    path: NonEmptyStr

    @field_validator("name")
    @classmethod
    def _module_name(cls, v: str) -> str:
        if not _MODULE_RE.fullmatch(v):
            raise ValueError(
                f"'{v}' is not a Python package name (the import name, e.g. silero_vad)"
            )
        return v

    @field_validator("path")
    @classmethod
    def _inside(cls, v: str) -> str:
        return _relative_resource(v, "path")


class PackageFolder(PackageResource):
    """A model folder inside an installed package; no path means the package's own folder."""

    path: NonEmptyStr | None = None  # type: ignore[assignment]

    @field_validator("path")
    @classmethod
    def _inside(cls, v: str | None) -> str | None:
        return None if v is None else _relative_resource(v, "path")


class HuggingFaceSource(_Strict):
    """A transformers model exported to ONNX with optimum: by hub id, local dir or package dir."""

    id: NonEmptyStr | None = None
    path: NonEmptyStr | None = None
    package: PackageFolder | None = None
    revision: NonEmptyStr = "main"
    task: NonEmptyStr | None = None
    opset: Annotated[StrictInt, Field(ge=7, le=30)] | None = None

    @model_validator(mode="after")
    def _one_location(self) -> HuggingFaceSource:
        given = [k for k in ("id", "path", "package") if getattr(self, k) is not None]
        if len(given) != 1:
            got = "none" if not given else ", ".join(given)
            raise ValueError(f"give exactly one of id, path or package (got {got})")
        return self


class UrlSource(_Strict):
    """An ONNX file downloaded once (only when the user allows network) and checked by hash."""

    url: NonEmptyStr
    sha256: NonEmptyStr

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError(f"url must start with https:// or http://, got '{v}'")
        return v

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _SHA256_RE.fullmatch(v):
            raise ValueError(f"sha256 must be 64 hexadecimal characters, got '{v}'")
        return v.lower()


def _model_shorthand(value: Any) -> Any:
    # `model: model.onnx` is the common case; spell it out for the strict model.
    return {"file": value} if isinstance(value, str) else value


class ModelSpec(ModelSpecMethods, _Strict):
    """Where the ONNX model comes from: exactly one source key."""

    file: NonEmptyStr | None = None
    package: PackageResource | None = None
    huggingface: HuggingFaceSource | None = None
    url: UrlSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        given = self.sources()
        if len(given) != 1:
            got = "none" if not given else f"{len(given)}: " + ", ".join(given)
            raise ValueError(
                f"give exactly one model source (file, package, huggingface or url), got {got}"
            )
        return self


# --- inputs ----------------------------------------------------------------------------------


def _text_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("must be a string or a non-empty list of strings")


class TextInput(TextInputMethods, _Strict):
    """Token ids made from text by the model's tokenizer."""

    value: Annotated[str | tuple[str, ...], BeforeValidator(_text_value)]
    tokenizer: NonEmptyStr | None = None
    max_length: PosInt | None = None


def _shape(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("must be a list of positive integers or dimension names")
    for item in value:
        ok_int = isinstance(item, int) and not isinstance(item, bool) and 0 < item <= MAX_DIM
        ok_name = isinstance(item, str) and item != ""
        if not (ok_int or ok_name):
            raise ValueError(
                f"must be a list of integers from 1 to {MAX_DIM} or dimension names, "
                f"got {item!r} in it"
            )
    return tuple(value)


def _tensor_value(value: Any) -> Any:
    def ok(v: Any) -> bool:
        if isinstance(v, list):
            return all(ok(x) for x in v)
        return isinstance(v, (int, float, bool))

    if not ok(value):
        raise ValueError("must be a number, a boolean, or a (nested) list of them")
    return value


class TensorSpec(TensorSpecMethods, _Strict):
    """How to make one input tensor: synthesize it, give its value, or read it from a file."""

    synthesize: Synthesize | None = None
    value: Annotated[Any, BeforeValidator(_tensor_value)] = None
    file: NonEmptyStr | None = None
    key: NonEmptyStr | None = None
    dtype: DType | None = None
    shape: Annotated[tuple[int | str, ...] | None, BeforeValidator(_shape)] = None
    low: FiniteFloat | None = None
    high: FiniteFloat | None = None
    seed: NonNegInt | None = None

    @model_validator(mode="after")
    def _one_way(self) -> TensorSpec:
        given = [k for k in ("synthesize", "value", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            got = "none" if not given else ", ".join(given)
            raise ValueError(f"give exactly one of synthesize, value or file (got {got})")
        if self.synthesize is None:
            extra = [k for k in ("low", "high", "seed") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply with synthesize")
        if self.key is not None and self.file is None:
            raise ValueError("key only applies with file")
        if self.file is not None:
            if not self.file.endswith((".npy", ".npz")):
                raise ValueError(f"file must be a .npy or .npz file, got '{self.file}'")
            if self.shape is not None:
                raise ValueError("shape does not apply with file (the file gives it)")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be less than high ({self.high})")
        return self


class ImageResize(_Strict):
    """How a decoded image is brought to the model's size."""

    # stretch: to height x width; letterbox: scaled to fit, padded with ``fill``;
    # limit: scaled so that the shorter (limit: min) or longer (max) side is ``side``
    # (min: only ever up, max: only ever down), as PaddleOCR's detectors do; none: as is.
    mode: Literal["stretch", "letterbox", "limit", "none"] = "stretch"
    height: PosInt | None = None
    width: PosInt | None = None
    side: PosInt | None = None
    limit: Literal["min", "max"] = "min"
    multiple: PosInt = 1  # round each side to a multiple of this (after scaling)
    fill: Annotated[StrictInt, Field(ge=0, le=255)] = 114
    interpolation: Literal["bilinear", "nearest", "bicubic", "area"] = "bilinear"

    @model_validator(mode="after")
    def _sizes(self) -> ImageResize:
        if self.mode in ("stretch", "letterbox") and (self.height is None or self.width is None):
            raise ValueError(f"mode {self.mode} needs height and width")
        if self.mode == "limit" and self.side is None:
            raise ValueError("mode limit needs side (the length of the limited side)")
        return self


def _floats3(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return tuple(float(v) for v in value)
    raise ValueError("must be a number or a list of numbers (one per channel)")


class ImagePreprocess(_Strict):
    """An image file (--input photo.jpg) made into the model's input tensor."""

    input: NonEmptyStr | None = None  # the model input it feeds (default: the 4-D one)
    library: Literal["pillow", "opencv"] = "pillow"  # which library resizes (Pillow decodes)
    color: Literal["rgb", "bgr", "gray"] = "rgb"
    resize: ImageResize | None = None
    layout: Literal["nchw", "nhwc"] = "nchw"
    scale: StrictFloat = 1.0 / 255.0  # applied to the 0-255 pixel values first
    mean: Annotated[tuple[float, ...], BeforeValidator(_floats3)] = (0.0,)
    std: Annotated[tuple[float, ...], BeforeValidator(_floats3)] = (1.0,)
    dtype: Literal["float32", "float16", "uint8"] = "float32"

    @model_validator(mode="after")
    def _channels(self) -> ImagePreprocess:
        channels = 1 if self.color == "gray" else 3
        for key in ("mean", "std"):
            n = len(getattr(self, key))
            if n not in (1, channels):
                raise ValueError(f"{key} has {n} values; give 1 or {channels} (one per channel)")
        if any(v == 0 for v in self.std):
            raise ValueError("std values must not be 0")
        return self


class AudioPreprocess(_Strict):
    """An audio file (--input speech.wav) decoded, made mono, resampled and cut in windows."""

    input: NonEmptyStr | None = None  # the model input it feeds (default: the float input)
    sample_rate: PosInt
    window: PosInt | None = None  # samples per model call (None: the whole clip at once)
    context: NonNegInt = 0  # samples of the previous window put in front of each window
    # Recurrent state carried from one window to the next by `aia run`: input -> output.
    state: dict[NonEmptyStr, NonEmptyStr] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _windowed(self) -> AudioPreprocess:
        if self.window is None and (self.context or self.state):
            raise ValueError("context and state only apply with window")
        return self


class InputsSpec(InputsSpecMethods, _Strict):
    """Values of symbolic dimensions, text to tokenize, and per-input tensor specs."""

    dims: dict[NonEmptyStr, PosInt] = Field(default_factory=dict)
    text: TextInput | None = None
    tensors: dict[NonEmptyStr, TensorSpec] = Field(default_factory=dict)
    image: ImagePreprocess | None = None
    audio: AudioPreprocess | None = None

    @model_validator(mode="after")
    def _shape_names_known(self) -> InputsSpec:
        for name, spec in self.tensors.items():
            for item in spec.shape or ():
                if isinstance(item, str) and item not in self.dims:
                    raise ValueError(
                        f"tensors.{name}.shape names dimension '{item}', which is not in dims"
                        f"{did_you_mean(item, self.dims)}"
                    )
        return self


# --- providers, session, bench, output -----------------------------------------------------------


def _option_values(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    for k, v in value.items():
        if not isinstance(v, (str, int, float, bool)):
            raise ValueError(f"option '{k}' must be a string, number or boolean, got {v!r}")
    return value


ProviderOptions = Annotated[dict[str, str | int | float | bool], BeforeValidator(_option_values)]


class ProvidersSpec(_Strict):
    """EP preferences: order, exclusions, per-EP options, and per-device choices."""

    prefer: tuple[EPName, ...] = ()
    exclude: tuple[EPName, ...] = ()
    options: dict[EPName, ProviderOptions] = Field(default_factory=dict)
    devices: dict[NonEmptyStr, EPName] = Field(default_factory=dict)

    @field_validator("devices")
    @classmethod
    def _device_keys(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not _DEVICE_KEY_RE.fullmatch(key):
                raise ValueError(
                    f"device key '{key}' must look like <vendor>-<cpu|gpu|npu>, e.g. intel-gpu"
                )
        return v


def _config_entries(value: Any) -> Any:
    # ORT session config entries are strings; accept YAML scalars and spell them as ORT does.
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if isinstance(v, bool):
            v = "1" if v else "0"
        elif isinstance(v, (int, float)):
            v = str(v)
        elif not isinstance(v, str):
            raise ValueError(f"entry '{k}' must be a string, number or boolean, got {v!r}")
        out[k] = v
    return out


class SessionSpec(_Strict):
    """ONNX Runtime session options."""

    intra_op_threads: Threads = 0
    inter_op_threads: Threads = 0
    graph_optimization_level: GraphOptimizationLevel = "all"
    execution_mode: ExecutionMode = "sequential"
    config: Annotated[dict[NonEmptyStr, str], BeforeValidator(_config_entries)] = Field(
        default_factory=dict
    )


class BenchSpec(_Strict):
    """Benchmark loop: warm-up runs, then a fixed count or a fixed duration."""

    warmup: Annotated[StrictInt, Field(ge=0, le=MAX_WARMUP)] = 10
    iterations: Annotated[StrictInt, Field(gt=0, le=MAX_ITERATIONS)] = 100
    duration_s: Annotated[FiniteFloat, Field(gt=0, le=WEEK_S)] | None = None
    # With iterations: measure at least this many seconds too (default 10; 0: exactly N).
    min_time_s: Annotated[FiniteFloat, Field(ge=0, le=WEEK_S)] | None = None
    min_coverage: Annotated[FiniteFloat, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _count_or_duration(self) -> BenchSpec:
        if "iterations" in self.model_fields_set and self.duration_s is not None:
            raise ValueError("give iterations or duration_s, not both")
        if self.min_time_s is not None and self.duration_s is not None:
            raise ValueError("min_time_s applies with iterations, not with duration_s")
        return self


class OutputSpec(_Strict):
    """Post-processing of the outputs (sentence embeddings)."""

    pooling: Pooling = "mean"
    normalize: StrictBool = True
    embedding_output: NonEmptyStr | None = None


# --- precision variants ----------------------------------------------------------------------

_VARIANT_RE = re.compile(r"^[a-z0-9_-]+$")
QuantizeMethod = Literal["dynamic", "static", "fp16"]
WeightType = Literal["qint8", "quint8"]


class VariantSpec(_Strict):
    """Another precision of the model: its own source, or a quantization of the base model."""

    model: Annotated[ModelSpec, BeforeValidator(_model_shorthand)] | None = None
    quantize: QuantizeMethod | None = None
    weight_type: WeightType | None = None
    per_channel: StrictBool | None = None
    calibration: Annotated[StrictInt, Field(ge=1, le=10_000)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> VariantSpec:
        if (self.model is None) == (self.quantize is None):
            got = "both" if self.model is not None else "neither"
            raise ValueError(f"give exactly one of model or quantize (got {got})")
        extra = [k for k in ("weight_type", "per_channel") if getattr(self, k) is not None]
        if extra and self.quantize not in ("dynamic", "static"):
            raise ValueError(
                f"{', '.join(extra)} only {'applies' if len(extra) == 1 else 'apply'} with "
                "quantize: dynamic or static"
            )
        if self.calibration is not None and self.quantize != "static":
            raise ValueError("calibration only applies with quantize: static")
        return self


# --- the profile -------------------------------------------------------------------------------


class Profile(ProfileMethods, _Strict):
    """One model run: the model, its inputs, EP preferences, session, bench and output settings."""

    schema_: Literal["aia.profile/1"] = Field(SCHEMA_ID, alias="schema")
    name: Annotated[StrictStr, Field(pattern=_NAME_RE)]
    description: StrictStr | None = None
    task: Task = "generic"
    model: Annotated[ModelSpec, BeforeValidator(_model_shorthand)]
    inputs: InputsSpec = Field(default_factory=InputsSpec)
    providers: ProvidersSpec = Field(default_factory=ProvidersSpec)
    session: SessionSpec = Field(default_factory=SessionSpec)
    bench: BenchSpec = Field(default_factory=BenchSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    # Text generation (task text-generation): prompts, sampling and bench grid.
    generation: GenerationSpec | None = None
    custom_ops_library: NonEmptyStr | None = None
    # Precision variants to bench beside the base model (`aia bench --variant base,int8`).
    variants: dict[StrictStr, VariantSpec] = Field(default_factory=dict)

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, v: dict[str, VariantSpec]) -> dict[str, VariantSpec]:
        for name in v:
            if not _VARIANT_RE.fullmatch(name):
                raise ValueError(f"variant name '{name}' must use only a-z, 0-9, '_' and '-'")
            if name in (BASE_VARIANT, "all"):
                raise ValueError(
                    f"variant name '{name}' is reserved ('base' is the top-level model, "
                    "'all' means every variant)"
                )
        return v
