"""Prepared models: int8 dynamic, int8 static QDQ and fp16 versions of an ONNX file.

Each is made once with ONNX Runtime's own tools and kept in aia's model cache
(``aia cache list``), keyed by the source file's sha256, the fully resolved
spec, the calibration inputs (static) and the ONNX Runtime version::

    spec = QuantSpec("dynamic")                 # weight type, per channel: from the ISA
    prepared = prepare(model_path, spec)        # PreparedModel(path, spec, sha256, ...)

Options left at None are filled from the CPU's instruction set the way optimum's
``AutoQuantizationConfig`` presets do (:data:`PRESETS`, :func:`isa_preset`).
Static quantization calibrates on the inputs it is given (the profile's own, see
:func:`calibration_inputs`); :class:`FeedsReader` records what it handed over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aialliance_cli.errors import BadInputError, ModelError, they

METHODS = ("dynamic", "static", "fp16")
WEIGHT_TYPES = ("qint8", "quint8")
CALIBRATE_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_CALIBRATION = 32  # samples for static quantization when the spec gives none
MAX_CALIBRATION = 10_000
PREPARED_META = "aia-prepared.json"
# Static QDQ quantizes the compute-heavy ops (and Gather, whose embedding tables are
# most of a text model's weights) only. ONNX Runtime's full QDQ registry (Add, Mul,
# Softmax, LayerNorm inputs, ...) took MiniLM's embeddings to cosine 0.39 on real
# sentences here; these ops alone to 0.94.
STATIC_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose", "Gather")
# A node stays in float when its input activation has outliers: the largest |x| over
# the calibration sets is more than this many times the 99.9th percentile of |x|.
# One uint8 range for such a tensor spends its levels on a few values. In MiniLM
# these are the FFN output projections (after GELU, ratios 4-11, others below 3.5);
# keeping those 7 of 48 MatMuls in float took its static model from cosine 0.944 to
# 0.992 on real sentences.
OUTLIER_RATIO = 3.5
_OUTLIER_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")
_FORMAT = 4  # bump when the way aia prepares models changes, to invalidate old entries

# optimum's AutoQuantizationConfig presets (optimum/onnxruntime/configuration.py):
# activations are always QUInt8; these are the choices that differ per ISA.
# Without VNNI, x86 multiplies u8 x s8 with VPMADDUBSW, whose int16 sums can
# saturate: the avx2 preset uses u8 weights; AVX-512 and VNNI (VPDPBUSD) use s8.
PRESETS: dict[str, dict[str, Any]] = {
    "avx512_vnni": {"weight_type": "qint8", "per_channel": True, "reduce_range": False},
    "avx_vnni": {"weight_type": "qint8", "per_channel": True, "reduce_range": False},
    "avx512": {"weight_type": "qint8", "per_channel": True, "reduce_range": False},
    "avx2": {"weight_type": "quint8", "per_channel": True, "reduce_range": False},
    "arm64": {"weight_type": "qint8", "per_channel": True, "reduce_range": False},
    "generic": {"weight_type": "qint8", "per_channel": True, "reduce_range": False},
}


def isa_preset(cpu: Any = None) -> str:
    """The preset for a CPU (an inventory's ``CpuInfo``; None: this machine's).

    ``avx_vnni`` (AVX2 with VNNI, e.g. Alder Lake) has no preset in optimum; it
    gets the VNNI choice since VPDPBUSD does not saturate.
    """
    if cpu is None:
        from aialliance_cli.hardware import detect

        cpu = detect().cpu
    arch = (getattr(cpu, "architecture", "") or "").lower()
    features = set(getattr(cpu, "features", ()) or ())
    if arch in ("aarch64", "arm64", "armv8", "armv8l"):
        return "arm64"
    if "avx512_vnni" in features:
        return "avx512_vnni"
    if "avx_vnni" in features:
        return "avx_vnni"
    if "avx512f" in features:
        return "avx512"
    if "avx2" in features:
        return "avx2"
    return "generic"


@dataclass(frozen=True)
class QuantSpec:
    """How to prepare a model; None fields are filled by :meth:`resolved` from the ISA preset.

    ``dynamic``: int8 weights, activations quantized at run time (MatMulInteger).
    ``static``: QDQ with activation ranges calibrated on ``calibration`` input sets.
    ``fp16``: float16 weights and ops, float32 inputs and outputs kept.
    """

    method: str = "dynamic"
    weight_type: str | None = None  # qint8 | quint8
    per_channel: bool | None = None
    reduce_range: bool | None = None
    activation_type: str | None = None  # static only: quint8 (default) | qint8
    calibration: int | None = None  # static only: number of calibration input sets
    calibrate_method: str | None = None  # static only: minmax (default) | entropy | percentile

    def validate(self) -> QuantSpec:
        """Raise BadInputError naming the first bad field; return self."""
        if self.method not in METHODS:
            raise BadInputError(
                f"unknown quantization method '{self.method}'; use one of: {', '.join(METHODS)}"
            )
        for name in ("weight_type", "activation_type"):
            value = getattr(self, name)
            if value is not None and value not in WEIGHT_TYPES:
                raise BadInputError(
                    f"unknown {name.replace('_', ' ')} '{value}'; use one of: "
                    f"{', '.join(WEIGHT_TYPES)}"
                )
        if self.calibration is not None and (
            isinstance(self.calibration, bool)
            or not isinstance(self.calibration, int)
            or not 1 <= self.calibration <= MAX_CALIBRATION
        ):
            raise BadInputError(
                f"the number of calibration samples must be an integer from 1 to "
                f"{MAX_CALIBRATION}, got {self.calibration!r}"
            )
        if self.calibrate_method is not None and self.calibrate_method not in CALIBRATE_METHODS:
            raise BadInputError(
                f"unknown calibration method '{self.calibrate_method}'; use one of: "
                f"{', '.join(CALIBRATE_METHODS)}"
            )
        if self.method == "fp16":
            extra = [k for k, v in asdict(self).items() if k != "method" and v is not None]
            if extra:
                raise BadInputError(
                    f"{they(extra, 'does', 'do')} not apply to fp16; it has no int8 options"
                )
        if self.method == "dynamic":
            extra = [
                k
                for k in ("activation_type", "calibration", "calibrate_method")
                if getattr(self, k) is not None
            ]
            if extra:
                raise BadInputError(
                    f"{they(extra, 'only applies', 'only apply')} to static quantization "
                    "(dynamic quantization computes activation ranges at run time)"
                )
        if self.activation_type == "qint8" and self.weight_type == "quint8":
            raise BadInputError(
                "static quantization with qint8 activations needs qint8 weights "
                "(ONNX Runtime has no s8 x u8 kernels)"
            )
        return self

    def resolved(self, isa: str | None = None) -> QuantSpec:
        """Every option filled: from this spec, else the ISA preset (None: this machine's)."""
        self.validate()
        if self.method == "fp16":
            return self
        preset = PRESETS[isa or isa_preset()]
        out = replace(
            self,
            weight_type=self.weight_type or preset["weight_type"],
            per_channel=preset["per_channel"] if self.per_channel is None else self.per_channel,
            reduce_range=preset["reduce_range"] if self.reduce_range is None else self.reduce_range,
        )
        if self.method == "static":
            out = replace(
                out,
                activation_type=self.activation_type or "quint8",
                calibration=self.calibration or DEFAULT_CALIBRATION,
                calibrate_method=self.calibrate_method or "minmax",
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantSpec:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInputError(
                f"unknown quantization option(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}"
            )
        return cls(**dict(data)).validate()

    def describe(self) -> str:
        if self.method == "fp16":
            return "fp16 (float16 weights and ops, float32 inputs and outputs)"
        parts = [f"int8 {self.method}"]
        if self.weight_type:
            parts.append(f"{self.weight_type} weights")
        if self.per_channel is not None:
            parts.append("per channel" if self.per_channel else "per tensor")
        if self.reduce_range:
            parts.append("reduced range")
        if self.method == "static":
            if self.activation_type:
                parts.append(f"{self.activation_type} activations")
            if self.calibration:
                parts.append(f"{self.calibration} calibration sets ({self.calibrate_method})")
        return ", ".join(parts)

    def variant_yaml(self) -> str:
        """The profile ``variants:`` entry that makes this model (docs/profiles.md)."""
        keys = ["quantize: " + self.method]
        for name in ("weight_type", "per_channel", "reduce_range", "activation_type"):
            value = getattr(self, name)
            if value is not None and not (name == "reduce_range" and value is False):
                keys.append(f"{name}: {str(value).lower()}")
        if self.method == "static" and self.calibration:
            keys.append(f"calibration: {self.calibration}")
        if self.calibrate_method and self.calibrate_method != "minmax":
            keys.append(f"calibrate_method: {self.calibrate_method}")
        return "{" + ", ".join(keys) + "}"


@dataclass(frozen=True)
class PreparedModel:
    """A prepared model in the cache: ``path`` is its ONNX file, ``spec`` fully resolved."""

    path: Path
    spec: QuantSpec
    sha256: str  # of the prepared ONNX file
    source_path: Path
    source_sha256: str
    cache_key: str
    isa: str
    calibration: dict[str, Any] | None = None  # static: {"samples": N, "digest": sha256}
    reused: bool = False  # found in the cache rather than made by this call
    size_bytes: int = 0
    kept_float: tuple[str, ...] = ()  # static: nodes left in float for their input's outliers

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "spec": self.spec.to_dict(),
            "description": self.spec.describe(),
            "sha256": self.sha256,
            "source_path": str(self.source_path),
            "source_sha256": self.source_sha256,
            "cache_key": self.cache_key,
            "isa": self.isa,
            "calibration": self.calibration,
            "reused": self.reused,
            "size_bytes": self.size_bytes,
            "kept_float": list(self.kept_float),
        }


class FeedsReader:
    """An ONNX Runtime ``CalibrationDataReader`` over a list of input sets.

    ``handed`` counts the sets given to the calibrator, ``digest`` identifies them
    (so a result can say exactly what a model was calibrated on).
    """

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> None:
        if not feeds:
            raise BadInputError("static quantization needs at least one calibration input set")
        self.feeds = [dict(f) for f in feeds]
        self.handed = 0
        self.digest = feeds_digest(self.feeds)
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.feeds):
            return None
        item = self.feeds[self._next]
        self._next += 1
        self.handed += 1
        return item

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return len(self.feeds)


def feeds_digest(feeds: Sequence[Mapping[str, np.ndarray]]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of input sets, in order."""
    h = hashlib.sha256()
    for feed in feeds:
        for name in sorted(feed):
            arr = np.ascontiguousarray(feed[name])
            h.update(f"{name}|{arr.dtype}|{arr.shape}|".encode())
            h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (memoised by its stat, shared with the FLOP facts)."""
    from aialliance_cli.analysis.facts import content_digest

    return content_digest(path)


def prepared_key(
    source_sha256: str, spec: QuantSpec, calibration_digest: str | None, name: str = "model"
) -> tuple[str, dict[str, Any]]:
    """The cache key of a prepared model and the identity it hashes."""
    import onnxruntime

    from aialliance_cli.models import cache

    identity = {
        "name": f"{name}-{spec.method}",
        "source_sha256": source_sha256,
        "spec": spec.to_dict(),
        "calibration_digest": calibration_digest,
        "onnxruntime": onnxruntime.__version__,
        "format": _FORMAT,
    }
    return cache.cache_key("prepared", identity), identity


def prepare(
    model_path: str | Path,
    spec: QuantSpec,
    *,
    calibration: Sequence[Mapping[str, np.ndarray]] | FeedsReader | None = None,
    isa: str | None = None,
    name: str | None = None,
    status: Callable[[str], None] | None = None,
) -> PreparedModel:
    """The prepared model for ``spec``: from the cache, or made now and cached.

    ``calibration`` (static only, required there): input sets, at least
    ``spec.calibration`` of them (the first that many are used). ``isa`` picks the
    preset for options left at None (default: this machine's).
    """
    from aialliance_cli.models import cache
    from aialliance_cli.models.onnxfile import check_onnx_file

    src = Path(model_path).expanduser().absolute()
    check_onnx_file(src)
    isa = isa or isa_preset()
    if isa not in PRESETS:
        raise BadInputError(f"unknown ISA preset '{isa}'; known: {', '.join(PRESETS)}")
    spec = spec.resolved(isa)
    reader: FeedsReader | None = None
    if spec.method == "static":
        if calibration is None:
            raise BadInputError(
                "static quantization needs calibration inputs (the profile's input sets; "
                "see calibration_inputs())"
            )
        feeds = calibration.feeds if isinstance(calibration, FeedsReader) else list(calibration)
        if len(feeds) < spec.calibration:
            raise BadInputError(
                f"static quantization asks for {spec.calibration} calibration sets but "
                f"{len(feeds)} were given"
            )
        if isinstance(calibration, FeedsReader) and len(feeds) == spec.calibration:
            reader = calibration
        else:
            reader = FeedsReader(feeds[: spec.calibration])
    elif calibration is not None:
        raise BadInputError(
            f"calibration inputs only apply to static quantization, not {spec.method}"
        )
    source_sha = file_sha256(src)
    key, identity = prepared_key(
        source_sha, spec, reader.digest if reader else None, name or src.stem
    )
    entry = cache.lookup(key)
    reused = entry is not None
    if entry is None:
        if status is not None:
            status(f"preparing {spec.describe()} of {src.name}")

        def fill(tmp: Path) -> None:
            dest = tmp / cache.MODEL_FILE
            try:
                kept_float = _make(src, dest, spec, reader)
            except BadInputError:
                raise
            except Exception as exc:
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelError(f"cannot prepare {spec.describe()} of {src}: {why}") from exc
            meta = {
                "sha256": file_sha256(dest),
                "isa": isa,
                "calibration": {"samples": reader.handed, "digest": reader.digest}
                if reader
                else None,
                "kept_float": kept_float,
            }
            (tmp / PREPARED_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

        entry = cache.store(
            key, {"kind": "prepared", **identity, "source_path": str(src), "isa": isa}, fill
        )
    try:
        meta = json.loads((entry.path / PREPARED_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {"sha256": file_sha256(entry.model_path), "isa": isa, "calibration": None}
    return PreparedModel(
        path=entry.model_path.absolute(),
        spec=spec,
        sha256=meta["sha256"],
        source_path=src,
        source_sha256=source_sha,
        cache_key=key,
        isa=meta.get("isa", isa),
        calibration=meta.get("calibration"),
        reused=reused,
        size_bytes=entry.size_bytes,
        kept_float=tuple(meta.get("kept_float") or ()),
    )


def _make(src: Path, dest: Path, spec: QuantSpec, reader: FeedsReader | None) -> list[str]:
    """Write the prepared model; returns the names of the nodes kept in float."""
    if spec.method == "fp16":
        _to_fp16(src, dest)
    elif spec.method == "dynamic":
        _quantize_dynamic(src, dest, spec)
    else:
        assert reader is not None
        return _quantize_static(src, dest, spec, reader)
    return []


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}[name]


def _has_external_data(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


class _Quiet:
    """The quantizer logs advice ("consider pre-processing") on the root logger; mute it."""

    def __enter__(self) -> None:
        import logging

        self._before = logging.root.manager.disable
        logging.disable(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.disable(self._before)


def _quantize_dynamic(src: Path, dest: Path, spec: QuantSpec) -> None:
    from onnxruntime.quantization import quantize_dynamic

    with _Quiet():
        quantize_dynamic(
            src,
            dest,
            weight_type=_qtype(spec.weight_type or "qint8"),
            per_channel=bool(spec.per_channel),
            reduce_range=bool(spec.reduce_range),
            use_external_data_format=_has_external_data(src),
        )


def outlier_nodes(
    src: Path, feeds: Sequence[Mapping[str, np.ndarray]], ratio: float = OUTLIER_RATIO
) -> dict[str, float]:
    """Nodes whose input activation has outliers on ``feeds``: name -> max|x| / p99.9|x|.

    Runs the fp32 model on the CPU EP with the activation inputs of its MatMul,
    Gemm and Conv nodes exposed as outputs, one input set at a time (the ratio is
    the largest |x| over the sets to the mean of their 99.9th percentiles).
    Models over protobuf's 2 GiB limit are not analysed.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(src))
    if model.ByteSize() > 1_800_000_000:
        return {}
    inits = {i.name for i in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input}
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type in _OUTLIER_OPS and node.name:
            for name in node.input[:2]:
                if name and name not in inits:
                    consumers.setdefault(name, []).append(node.name)
    if not consumers:
        return {}
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    outputs = {o.name for o in model.graph.output}
    for name in consumers:
        if name not in outputs and name not in graph_inputs:
            elem = types.get(name) or onnx.TensorProto.FLOAT
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    peak: dict[str, float] = {}
    tails: dict[str, list[float]] = {}
    for feed in feeds:
        values = dict(zip(names, session.run(None, dict(feed)), strict=False))
        for name in consumers:
            arr = values.get(name) if name in values else feed.get(name)
            if arr is None or np.asarray(arr).dtype.kind != "f" or not np.asarray(arr).size:
                continue
            a = np.abs(np.asarray(arr, dtype=np.float32)).ravel()
            peak[name] = max(peak.get(name, 0.0), float(a.max()))
            tails.setdefault(name, []).append(float(np.percentile(a, 99.9)))
    out: dict[str, float] = {}
    for name, mx in peak.items():
        tail = float(np.mean(tails[name]))
        r = mx / tail if tail > 0 else (float("inf") if mx > 0 else 1.0)
        if r > ratio:
            for node in consumers[name]:
                out[node] = max(out.get(node, 0.0), r)
    return out


def _quantize_static(src: Path, dest: Path, spec: QuantSpec, reader: FeedsReader) -> list[str]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    kept_float = sorted(outlier_nodes(src, reader.feeds))

    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[spec.calibrate_method or "minmax"]
    with _Quiet():
        quantize_static(
            src,
            dest,
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=bool(spec.per_channel),
            reduce_range=bool(spec.reduce_range),
            activation_type=_qtype(spec.activation_type or "quint8"),
            weight_type=_qtype(spec.weight_type or "qint8"),
            use_external_data_format=_has_external_data(src),
            calibrate_method=method,
            op_types_to_quantize=list(STATIC_OPS),
            nodes_to_exclude=kept_float,
        )
    return kept_float


def _to_fp16(src: Path, dest: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    converted = convert_float_to_float16(model, keep_io_types=True)
    big = converted.ByteSize() > 1_800_000_000  # protobuf's 2 GiB limit
    onnx.save(converted, str(dest), save_as_external_data=big)


def calibration_inputs(
    target: Any, n: int, *, overrides: Any = None
) -> list[dict[str, np.ndarray]]:
    """``n`` input sets for calibrating ``target`` (a runtime Target): the profile's own.

    The same input sets aia's accuracy check uses (real sentences where the profile
    takes text, the profile's rotating input sets otherwise), starting past the
    ones the accuracy check reads first, so that calibration and check differ where
    the inputs allow it.
    """
    from aialliance_cli.tune.accuracy import CALIBRATION_START, profile_inputs

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadInputError(f"the number of calibration samples must be 1 or more, got {n!r}")
    return profile_inputs(target, n, start=CALIBRATION_START, overrides=overrides).feeds


__all__ = [
    "CALIBRATE_METHODS",
    "DEFAULT_CALIBRATION",
    "METHODS",
    "PRESETS",
    "WEIGHT_TYPES",
    "FeedsReader",
    "PreparedModel",
    "QuantSpec",
    "calibration_inputs",
    "feeds_digest",
    "file_sha256",
    "isa_preset",
    "prepare",
    "prepared_key",
]


# ----------------------------------------------------------------------------- aia quantize

VARIANT_NAMES = {"dynamic": "int8", "static": "int8-static", "fp16": "fp16"}


@dataclass
class QuantizeReport:
    """What ``aia quantize`` made: the prepared model and its agreement with the fp32 base.

    ``accuracy`` holds one Agreement per kind of inputs checked: the realistic
    ones first (real sentences for text profiles, the profile's input sets
    otherwise), which decide ``passed``; random token ids too for text profiles.
    """

    target: Any  # runtime Target of the base model
    prepared: PreparedModel
    accuracy: dict[str, Any]  # input kind -> tune.accuracy.Agreement
    min_accuracy: float
    passed: bool

    @property
    def variant_name(self) -> str:
        return VARIANT_NAMES[self.prepared.spec.method]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "profile": self.target.profile_record(),
            "source": {
                "path": str(self.prepared.source_path),
                "sha256": self.prepared.source_sha256,
                "size_bytes": self.prepared.source_path.stat().st_size,
            },
            **self.prepared.to_dict(),
            "accuracy": {k: a.judged(self.min_accuracy) for k, a in self.accuracy.items()},
            "min_accuracy": self.min_accuracy,
            "passed": self.passed,
            "variant": {"name": self.variant_name, "entry": self.prepared.spec.variant_yaml()},
        }


def quantize_target(
    target: str | None,
    spec: QuantSpec,
    *,
    min_accuracy: float | None = None,
    samples: int = 16,
    allow_network: bool = False,
    status: Callable[[str], None] | None = None,
) -> QuantizeReport:
    """Prepare ``target`` (profile or ONNX file) per ``spec`` and check it against its base.

    Static quantization calibrates on the profile's own inputs. The check runs
    the prepared model and the fp32 base on the CPU EP over ``samples`` distinct
    input sets (at least 16).
    """
    from aialliance_cli.runtime.api import prepare_target
    from aialliance_cli.tune import accuracy as A

    spec.validate()
    threshold = A.check_min_accuracy(min_accuracy)
    if (
        isinstance(samples, bool)
        or not isinstance(samples, int)
        or not A.MIN_INPUTS <= samples <= A.MAX_INPUTS
    ):
        raise BadInputError(
            f"the accuracy check needs at least {A.MIN_INPUTS} input sets and at most "
            f"{A.MAX_INPUTS:,} (--samples), got {samples!r}"
        )
    say = status or (lambda _msg: None)
    tgt = prepare_target(target, allow_network=allow_network, status=say)
    isa = isa_preset()
    resolved = spec.resolved(isa)
    calibration = None
    if resolved.method == "static":
        say(f"making {resolved.calibration} calibration input sets")
        calibration = calibration_inputs(tgt, resolved.calibration or DEFAULT_CALIBRATION)
    prepared = prepare(
        tgt.model_path, spec, calibration=calibration, isa=isa, name=tgt.name, status=say
    )
    say("checking the outputs against the fp32 model on the CPU EP")
    session = A.cpu_session(Path(tgt.model_path))
    first = A.profile_inputs(tgt, samples, session=session)
    kinds = [first]
    if first.kind == "sentences":
        kinds.append(A.profile_inputs(tgt, samples, kind="random", session=session))
    accuracy = {}
    cand = A.cpu_session(prepared.path)
    for inputs in kinds:
        ref = A.Reference(
            inputs,
            A.run_outputs(tgt.model_path, inputs.feeds, session=session),
            tgt.profile.task if tgt.profile is not None else "generic",
            tgt,
        )
        accuracy[inputs.kind] = A.compare(
            ref, A.run_outputs(prepared.path, inputs.feeds, session=cand)
        )
    task = tgt.profile.task if tgt.profile is not None else "generic"
    threshold = A.default_min_accuracy(task) if threshold is None else threshold
    passed = accuracy[first.kind].passes(threshold)
    return QuantizeReport(tgt, prepared, accuracy, threshold, passed)
