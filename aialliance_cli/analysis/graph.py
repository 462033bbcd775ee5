"""What an ONNX file holds, read without loading its weights (``aia inspect``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aialliance_cli.errors import ModelError

if TYPE_CHECKING:
    import onnx

# Domains defined by the ONNX standard; anything else needs a runtime that knows it.
STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
)
# Contrib domains built into ONNX Runtime itself: non-standard, but no custom-op library needed.
ORT_DOMAINS = frozenset(
    {"com.microsoft", "com.microsoft.nchwc", "com.microsoft.experimental", "com.ms.internal.nhwc"}
)


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: shape entries are ints, symbolic names, or None (unnamed)."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...] | None


@dataclass(frozen=True)
class GraphSummary:
    """The facts ``aia inspect`` shows about one ONNX model."""

    path: str
    ir_version: int
    opset_imports: dict[str, int]
    producer_name: str
    producer_version: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    parameter_count: int
    parameter_bytes: int
    node_count: int
    nodes_by_op_type: dict[str, int]
    external_data_files: tuple[str, ...]
    custom_domains: tuple[str, ...]
    contrib_domains: tuple[str, ...]
    flops_total: int
    flops_by_op_type: dict[str, int]
    dims: dict[str, int] = field(default_factory=dict)
    unknown_dims: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("inputs", "outputs"):
            d[key] = [
                {**t, "shape": list(t["shape"]) if t["shape"] is not None else None} for t in d[key]
            ]
        for key in ("external_data_files", "custom_domains", "contrib_domains"):
            d[key] = list(d[key])
        d["unknown_dims"] = list(self.unknown_dims)
        d["unresolved"] = list(self.unresolved)
        return d


def load_model_proto(model_path: Path) -> onnx.ModelProto:
    """Load the graph of ``model_path`` without its external weights, or raise ModelError."""
    import onnx

    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"Model file {model_path} does not exist or is not a file.")
    try:
        return onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise ModelError(
            f"Cannot read {model_path} as an ONNX model ({type(exc).__name__}: {exc}). "
            "Check that the file is a complete .onnx file and not a Git LFS pointer or a download "
            "that stopped part way."
        ) from exc


def dtype_name(elem_type: int) -> str:
    """ONNX element type → numpy-style name ("float32", "int64", "bfloat16")."""
    import onnx

    try:
        import numpy as np

        return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name)
    except Exception:  # noqa: BLE001 - types numpy lacks (float8, int4) keep ONNX's name
        try:
            return onnx.TensorProto.DataType.Name(elem_type).lower()
        except ValueError:
            return f"type{elem_type}"


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    t = value.type
    kind = t.WhichOneof("value")
    if kind != "tensor_type":
        return TensorInfo(value.name, (kind or "unknown").removesuffix("_type"), None)
    shape: tuple[int | str | None, ...] | None = None
    if t.tensor_type.HasField("shape"):
        shape = tuple(
            int(d.dim_value)
            if d.HasField("dim_value") and d.dim_value >= 0
            else (d.dim_param if d.HasField("dim_param") and d.dim_param else None)
            for d in t.tensor_type.shape.dim
        )
    return TensorInfo(value.name, dtype_name(t.tensor_type.elem_type), shape)


def _tensor_bytes(tensor: onnx.TensorProto) -> int:
    import onnx

    numel = math.prod(tensor.dims)
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        meta = {e.key: e.value for e in tensor.external_data}
        if "length" in meta:
            return int(meta["length"])
    if tensor.raw_data:
        return len(tensor.raw_data)
    try:
        import numpy as np

        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except Exception:  # noqa: BLE001 - sub-byte types: count one byte per element
        itemsize = 1
    return numel * itemsize


def summarize(model_path: Path, dims: dict[str, int] | None = None) -> GraphSummary:
    """Summarise ``model_path``; FLOPs are counted at ``dims`` (symbolic dim name → value).

    External weights are never read: their sizes come from the tensor metadata
    (``length``) or from the shape and element type.
    """
    from aialliance_cli.analysis.flops import count_flops, free_input_dims

    model = load_model_proto(Path(model_path))
    graph = model.graph
    initializer_names = {t.name for t in graph.initializer}
    params = 0
    nbytes = 0
    external: set[str] = set()
    for tensor in graph.initializer:
        params += math.prod(tensor.dims)
        nbytes += _tensor_bytes(tensor)
        for entry in tensor.external_data:
            if entry.key == "location":
                external.add(entry.value)
    for sparse in graph.sparse_initializer:
        initializer_names.add(sparse.values.name)
        params += math.prod(sparse.dims)
        nbytes += _tensor_bytes(sparse.values) + _tensor_bytes(sparse.indices)

    by_op: dict[str, int] = {}
    node_domains: set[str] = set()
    for node in graph.node:
        by_op[node.op_type] = by_op.get(node.op_type, 0) + 1
        node_domains.add(node.domain)
    opsets = {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}
    domains = (set(opsets) | node_domains) - STANDARD_DOMAINS

    flops = count_flops(model, dims or {})
    unknown = [d for d in free_input_dims(model) if d not in flops.dims]
    return GraphSummary(
        path=str(model_path),
        ir_version=int(model.ir_version),
        opset_imports=dict(sorted(opsets.items())),
        producer_name=model.producer_name,
        producer_version=model.producer_version,
        inputs=tuple(_tensor_info(v) for v in graph.input if v.name not in initializer_names),
        outputs=tuple(_tensor_info(v) for v in graph.output),
        parameter_count=int(params),
        parameter_bytes=int(nbytes),
        node_count=len(graph.node),
        nodes_by_op_type=dict(sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0]))),
        external_data_files=tuple(sorted(external)),
        custom_domains=tuple(sorted(domains - ORT_DOMAINS)),
        contrib_domains=tuple(sorted(domains & ORT_DOMAINS)),
        flops_total=flops.total,
        flops_by_op_type=dict(flops.by_op_type),
        dims=dict(flops.dims),
        unknown_dims=tuple(unknown),
        unresolved=flops.unresolved,
    )
