"""Count the floating-point work of an ONNX graph at fixed input dimensions.

Convention: one multiply-add is 2 FLOPs. Per op type:

- MatMul, Gemm, Conv, ConvTranspose, Einsum: 2 per multiply-add (``2*M*N*K``,
  with batch broadcast); a bias (Gemm's C, Conv's B) adds 1 per output element.
- Attention (com.microsoft and ONNX opset 23), MultiHeadAttention,
  GroupQueryAttention: the two matmuls ``Q*K^T`` and ``A*V`` plus 5 per
  score for the softmax; com.microsoft Attention also counts its input
  projection (``2*B*S*hidden*(Dq+Dk+Dv)`` plus the bias).
- Elementwise ops (Add, Mul, Relu, Sigmoid, Tanh, Erf, Gelu, ...): 1 per output element.
- Softmax, LogSoftmax and the layer/group/instance normalisations: 5 per
  element (max, subtract, exp, sum, divide; or mean, variance, normalise,
  scale, shift); BatchNormalization at inference: 2 per element.
- Reductions: 1 per input element; pooling: 1 per output element per window element.
- Integer matmuls and convolutions (MatMulInteger, QLinearMatMul, ConvInteger,
  QLinearConv, MatMulNBits, ...) count their multiply-adds the same way, as
  operations rather than floating-point ones.
- Data movement (Reshape, Transpose, Gather, Concat, Cast, ...) counts 0.

Only the top-level graph is counted: nodes inside If/Loop/Scan bodies are not.
Nodes whose shapes cannot be inferred are listed in ``unresolved`` with the
dimension that is missing and how to give it (``--dim NAME=VALUE``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aialliance_cli.errors import BadInputError

if TYPE_CHECKING:
    import onnx

Dim = int | str | None
Shape = tuple[Dim, ...]

# fmt: off
_ELEMENTWISE = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log",
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid",
    "HardSwish", "Tanh", "Erf", "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "Softplus",
    "Softsign", "Mish", "Clip", "Max", "Min", "Mean", "Sum", "Where", "Sin", "Cos", "Tan",
    "Asin", "Acos", "Atan", "Sinh", "Cosh", "Floor", "Ceil", "Round", "Sign", "Equal",
    "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Mod",
    "BiasAdd", "ThresholdedRelu", "IsNaN", "IsInf", "BitShift", "CumSum", "Shrink", "Trilu",
})
_FIVE_PER_ELEMENT = frozenset({
    "Softmax", "LogSoftmax", "Hardmax", "LayerNormalization",
    "SimplifiedLayerNormalization", "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization", "RMSNormalization", "InstanceNormalization",
    "GroupNormalization", "MeanVarianceNormalization", "LpNormalization",
    "EmbedLayerNormalization",
})
_REDUCTIONS = frozenset({
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin",
    "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
})
# fmt: on
_POOLS = frozenset({"MaxPool", "AveragePool", "LpPool"})
# (index of A, index of B) for matmul-like ops
_MATMULS = {
    "MatMul": (0, 1),
    "FusedMatMul": (0, 1),
    "MatMulInteger": (0, 1),
    "MatMulIntegerToFloat": (0, 1),
    "DynamicQuantizeMatMul": (0, 1),
    "QLinearMatMul": (0, 3),
}
# (index of X, index of W, index of bias or None)
_CONVS = {
    "Conv": (0, 1, 2),
    "FusedConv": (0, 1, 2),
    "ConvInteger": (0, 1, None),
    "QLinearConv": (0, 3, 8),
}
_FUSED_ACTIVATION = frozenset({"FusedConv", "FusedGemm"})


@dataclass(frozen=True)
class FlopReport:
    """FLOPs of one graph at fixed dims: total, per op type (sorted desc), per node."""

    total: int
    by_op_type: dict[str, int]
    by_node: dict[str, int]
    unresolved: tuple[str, ...] = ()
    dims: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_op_type": dict(self.by_op_type),
            "by_node": dict(self.by_node),
            "unresolved": list(self.unresolved),
            "dims": dict(self.dims),
        }


CONTROL_FLOW_NOTE = (
    "the graph's work is inside If/Loop/Scan subgraphs, which aia does not count; "
    "no FLOP rate is given"
)


def work_in_subgraphs(report: FlopReport | None) -> bool:
    """True when uncounted control-flow subgraphs hold the work: no honest FLOP figure."""
    return report is not None and any(
        ("If" in u or "Loop" in u or "Scan" in u) for u in report.unresolved
    )


class _Unknown(Exception):
    """A shape needed for counting is not known; ``dims`` names what is missing."""

    def __init__(self, tensor: str, dims: Sequence[str]) -> None:
        super().__init__(tensor)
        self.tensor = tensor
        self.dims = tuple(dims)


class _NotCounted(Exception):
    """An op variant whose FLOPs are not modelled (reported, never guessed)."""


def node_key(node: onnx.NodeProto, index: int) -> str:
    """The key of a node in ``by_node``: its name, or ``<OpType>_<index>`` when unnamed."""
    return node.name or f"{node.op_type}_{index}"


def count_flops(model: onnx.ModelProto, dims: dict[str, int] | None = None) -> FlopReport:
    """Count the FLOPs of ``model`` with its symbolic input dims fixed to ``dims``.

    ``dims`` maps a symbolic dimension name (an input's ``dim_param``, e.g.
    ``batch`` or ``sequence``) to its value; an axis without a name is given as
    ``INPUT[AXIS]`` (e.g. ``input[1]``). A key that fits no input raises
    :class:`BadInputError`. The model is not modified.
    """
    dims = dict(dims or {})
    valid = _valid_dim_keys(model)
    unknown_names = sorted(set(dims) - valid)
    if unknown_names:
        free = free_input_dims(model)
        known = ", ".join(free) or "none: every input dimension is fixed"
        raise BadInputError(
            f"Unknown dimension name(s) {', '.join(unknown_names)} for model graph "
            f"'{model.graph.name}'. Its free input dimensions are: {known} "
            "(an axis can also be given as INPUT[AXIS])."
        )
    for name, value in dims.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadInputError(f"Dimension {name}={value!r} must be a positive integer.")

    shapes = _infer_shapes(
        model, dims, fully_fixed=not any(d not in dims for d in free_input_dims(model))
    )
    unset = [d for d in free_input_dims(model) if d not in dims]
    by_node: dict[str, int] = {}
    by_op: dict[str, int] = {}
    unresolved: list[str] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(model.graph.node):
        key = node_key(node, index)
        if key in seen:  # duplicate names happen; keep every node distinct
            seen[key] += 1
            key = f"{key}#{seen[key]}"
        else:
            seen[key] = 0
        try:
            flops = _count_node(node, shapes)
        except _Unknown as exc:
            unresolved.append(_unresolved_message(key, node.op_type, exc, unset))
            continue
        except _NotCounted as exc:
            unresolved.append(f"{key} ({node.op_type}): not counted: {exc}")
            continue
        except (KeyError, ValueError, IndexError, ZeroDivisionError) as exc:
            # a node whose attributes or ranks do not fit its op: report it, count the rest
            unresolved.append(f"{key} ({node.op_type}): not counted: malformed node ({exc!r})")
            continue
        if flops is None:
            if any(a.type in (5, 10) for a in node.attribute):  # GRAPH / GRAPHS
                unresolved.append(
                    f"{key} ({node.op_type}): the nodes of its subgraphs are not counted"
                )
            continue
        by_node[key] = flops
        by_op[node.op_type] = by_op.get(node.op_type, 0) + flops
    by_op_sorted = dict(sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0])))
    return FlopReport(
        total=sum(by_node.values()),
        by_op_type=by_op_sorted,
        by_node=by_node,
        unresolved=tuple(unresolved),
        dims=dims,
    )


def _real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {t.name for t in model.graph.initializer}
    return [
        v
        for v in model.graph.input
        if v.name not in initializers and v.type.HasField("tensor_type")
    ]


def _is_fixed(d: Any) -> bool:
    return d.HasField("dim_value") and d.dim_value >= 0


def free_input_dims(model: onnx.ModelProto) -> list[str]:
    """The input dimensions without a value, in input order: ``dim_param`` names, or
    ``INPUT[AXIS]`` for an axis with neither a name nor a value (or a negative one)."""
    out: list[str] = []
    for value in _real_inputs(model):
        for axis, d in enumerate(value.type.tensor_type.shape.dim):
            if _is_fixed(d):
                continue
            key = (
                d.dim_param if d.HasField("dim_param") and d.dim_param else f"{value.name}[{axis}]"
            )
            if key not in out:
                out.append(key)
    return out


def _valid_dim_keys(model: onnx.ModelProto) -> set[str]:
    keys: set[str] = set()
    for value in _real_inputs(model):
        for axis, d in enumerate(value.type.tensor_type.shape.dim):
            keys.add(f"{value.name}[{axis}]")
            if d.HasField("dim_param") and d.dim_param:
                keys.add(d.dim_param)
    return keys


def _unresolved_message(key: str, op_type: str, exc: _Unknown, unset: list[str]) -> str:
    named = [
        u
        for u in unset
        if any(d == u or re.search(rf"(?<![\w.]){re.escape(u)}(?![\w.])", d) for d in exc.dims)
    ]
    if named:
        hint = " ".join(f"--dim {d}=VALUE" for d in named)
        return (
            f"{key} ({op_type}): dimension {', '.join(named)} of '{exc.tensor}' has no value; "
            f"give it with {hint}"
        )
    dims = [d for d in exc.dims if d and d != "a dimension"]
    what = f"dimension {', '.join(dims)}" if dims else "the shape"
    if unset:
        hint = " ".join(f"--dim {d}=VALUE" for d in unset)
        return (
            f"{key} ({op_type}): {what} of '{exc.tensor}' could not be inferred; "
            f"give the model's free input dimensions with {hint}"
        )
    return (
        f"{key} ({op_type}): {what} of '{exc.tensor}' could not be inferred from the input "
        "dimensions (it depends on data or on an op the shape inference does not know); "
        "if an input dimension is still free, give it with --dim NAME=VALUE"
    )


# --- shape inference ---------------------------------------------------------------------------


def _fixed_copy(model: onnx.ModelProto, dims: dict[str, int]) -> onnx.ModelProto:
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in _real_inputs(fixed):
        for axis, d in enumerate(value.type.tensor_type.shape.dim):
            by_axis = dims.get(f"{value.name}[{axis}]")
            if by_axis is not None:
                d.dim_value = by_axis
            elif d.HasField("dim_param") and d.dim_param in dims:
                d.dim_value = dims[d.dim_param]  # setting the value clears the oneof's param
    return fixed


def _shape_of(value: onnx.ValueInfoProto) -> Shape | None:
    t = value.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    out: list[Dim] = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            out.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            out.append(d.dim_param)
        else:
            out.append(None)
    return tuple(out)


def _collect(model: onnx.ModelProto) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    for t in model.graph.initializer:
        shapes[t.name] = tuple(int(d) for d in t.dims)
    for group in (model.graph.input, model.graph.value_info, model.graph.output):
        for v in group:
            s = _shape_of(v)
            if s is not None and (v.name not in shapes or _score(s) > _score(shapes[v.name])):
                shapes[v.name] = s
    for node in model.graph.node:  # Constant nodes carry their shape in the attribute
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    shapes.setdefault(node.output[0], tuple(int(d) for d in a.t.dims))
    return shapes


def _score(shape: Shape) -> int:
    """How much a shape says: fully known beats symbolic beats unknown."""
    return sum(2 if isinstance(d, int) else 1 if d else 0 for d in shape) + 1


def _infer_shapes(
    model: onnx.ModelProto, dims: dict[str, int], fully_fixed: bool = True
) -> dict[str, Shape]:
    import onnx

    fixed = _fixed_copy(model, dims)
    inferred = fixed
    for data_prop in (True, False):
        try:
            inferred = onnx.shape_inference.infer_shapes(
                fixed, strict_mode=False, data_prop=data_prop
            )
            break
        except Exception:  # noqa: BLE001 - a model ONNX cannot type stays countable in part
            continue
    shapes = _collect(inferred)
    # ONNX's inference stops at contrib ops (com.microsoft) and at data-dependent shapes;
    # ORT's symbolic inference knows both. With free input dims left it only yields symbolic
    # shapes, slowly (sympy): skip it then, the count is incomplete anyway.
    if fully_fixed and _needs_symbolic(model, shapes):
        try:
            sym = _symbolic_shape_inference().infer_shapes(
                fixed, auto_merge=True, guess_output_rank=True
            )
        except Exception:  # noqa: BLE001 - best effort; what stays unknown is reported
            sym = None
        if sym is not None:
            for name, shape in _collect(sym).items():
                if name not in shapes or _score(shape) > _score(shapes[name]):
                    shapes[name] = shape
    return shapes


def _symbolic_shape_inference() -> Any:
    """ORT's ``SymbolicShapeInference``, loaded from its file.

    Importing ``onnxruntime.tools`` imports torch when it is installed (seconds),
    for a helper unrelated to shape inference; the module itself needs only onnx and sympy.
    """
    import importlib.util
    import sys

    name = "_aia_ort_symbolic_shape_infer"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.find_spec("onnxruntime")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("onnxruntime")
        path = Path(next(iter(spec.submodule_search_locations))) / "tools/symbolic_shape_infer.py"
        file_spec = importlib.util.spec_from_file_location(name, path)
        if file_spec is None or file_spec.loader is None:
            raise ImportError(str(path))
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
        sys.modules[name] = module
    return module.SymbolicShapeInference


def _needs_symbolic(model: onnx.ModelProto, shapes: dict[str, Shape]) -> bool:
    """Whether some node that carries FLOPs still lacks a shape (a dry run of the count)."""
    for node in model.graph.node:
        try:
            _count_node(node, shapes)
        except _Unknown:
            return True
        except Exception:  # noqa: BLE001, S112 - reported by the real count
            continue
    return False


# --- per-op counting ---------------------------------------------------------------------------


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _input(node: onnx.NodeProto, i: int) -> str | None:
    return node.input[i] if len(node.input) > i and node.input[i] else None


def _known(shapes: dict[str, Shape], name: str | None) -> tuple[int, ...]:
    """The fully known shape of ``name``, or :class:`_Unknown` naming the missing dims."""
    if name is None:
        raise _Unknown("<missing input>", ())
    s = shapes.get(name)
    if s is None:
        raise _Unknown(name, ())
    missing = [d if isinstance(d, str) else "?" for d in s if not isinstance(d, int)]
    if missing:
        raise _Unknown(name, [m for m in missing if m != "?"] or ["a dimension"])
    return tuple(int(d) for d in s)  # type: ignore[arg-type]


def _numel(shape: Iterable[int]) -> int:
    return math.prod(shape)


def _broadcast(*shapes: Sequence[int]) -> tuple[int, ...]:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        sizes = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        out.append(max(sizes) if 0 not in sizes else 0)
    return tuple(out)


def _output_numel(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    try:
        return _numel(_known(shapes, node.output[0]))
    except _Unknown:
        ins = [n for n in node.input if n]
        if not ins:
            raise
        return _numel(_broadcast(*[_known(shapes, n) for n in ins]))


def _count_node(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int | None:
    op = node.op_type
    if op in _MATMULS:
        return _matmul(node, shapes, *_MATMULS[op])
    if op == "MatMulNBits":
        a = _known(shapes, _input(node, 0))
        attrs = _attrs(node)
        return 2 * _numel(a[:-1]) * int(attrs["N"]) * int(attrs["K"])
    if op in ("Gemm", "FusedGemm"):
        return _gemm(node, shapes)
    if op in _CONVS:
        return _conv(node, shapes, *_CONVS[op])
    if op == "ConvTranspose":
        return _conv_transpose(node, shapes)
    if op == "Einsum":
        return _einsum(node, shapes)
    if op == "Attention" and node.domain == "com.microsoft":
        return _ms_attention(node, shapes)
    if op == "Attention":
        return _onnx_attention(node, shapes)
    if op == "MultiHeadAttention":
        return _mha(node, shapes)
    if op == "GroupQueryAttention":
        return _gqa(node, shapes)
    if op in _ELEMENTWISE:
        return _output_numel(node, shapes)
    if op in _FIVE_PER_ELEMENT:
        return 5 * _output_numel(node, shapes)
    if op == "BatchNormalization":
        return 2 * _output_numel(node, shapes)
    if op in _REDUCTIONS:
        return _numel(_known(shapes, _input(node, 0)))
    if op in _POOLS:
        kernel = _attrs(node).get("kernel_shape") or []
        return _numel(_known(shapes, node.output[0])) * _numel(kernel)
    return None


def _matmul(node: onnx.NodeProto, shapes: dict[str, Shape], ia: int, ib: int) -> int:
    a = list(_known(shapes, _input(node, ia)))
    b = list(_known(shapes, _input(node, ib)))
    if len(a) == 1:
        a = [1, *a]
    if len(b) == 1:
        b = [*b, 1]
    attrs = _attrs(node) if node.op_type == "FusedMatMul" else {}
    if attrs.get("transA"):
        a[-1], a[-2] = a[-2], a[-1]
    if attrs.get("transB"):
        b[-1], b[-2] = b[-2], b[-1]
    m, k, n = a[-2], a[-1], b[-1]
    batch = _numel(_broadcast(a[:-2], b[:-2]))
    return 2 * batch * m * n * k


def _gemm(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    a = _known(shapes, _input(node, 0))
    b = _known(shapes, _input(node, 1))
    attrs = _attrs(node)
    m, k = (a[1], a[0]) if attrs.get("transA") else (a[0], a[1])
    n = b[0] if attrs.get("transB") else b[1]
    flops = 2 * m * n * k
    if _input(node, 2):
        flops += m * n
    if node.op_type in _FUSED_ACTIVATION:
        flops += m * n
    return flops


def _conv_out_spatial(
    x: tuple[int, ...], w: tuple[int, ...], attrs: dict[str, Any]
) -> tuple[int, ...]:
    spatial = x[2:]
    nd = len(spatial)
    kernel = list(attrs.get("kernel_shape") or w[2:])
    strides = list(attrs.get("strides") or [1] * nd)
    dil = list(attrs.get("dilations") or [1] * nd)
    pads = list(attrs.get("pads") or [0] * (2 * nd))
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    out = []
    for i in range(nd):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-spatial[i] // strides[i]))
            continue
        pad = 0 if auto_pad == "VALID" else pads[i] + pads[i + nd]
        eff = dil[i] * (kernel[i] - 1) + 1
        out.append((spatial[i] + pad - eff) // strides[i] + 1)
    return tuple(out)


def _conv(node: onnx.NodeProto, shapes: dict[str, Shape], ix: int, iw: int, ib: int | None) -> int:
    x = _known(shapes, _input(node, ix))
    w = _known(shapes, _input(node, iw))
    try:
        out_spatial = _known(shapes, node.output[0])[2:]
    except _Unknown:
        out_spatial = _conv_out_spatial(x, w, _attrs(node))
    n, cout, cin_per_group, kernel = x[0], w[0], w[1], w[2:]
    outputs = n * cout * _numel(out_spatial)
    flops = 2 * outputs * cin_per_group * _numel(kernel)
    if ib is not None and _input(node, ib):
        flops += outputs
    if node.op_type in _FUSED_ACTIVATION:
        flops += outputs
    return flops


def _conv_transpose(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    x = _known(shapes, _input(node, 0))
    w = _known(shapes, _input(node, 1))
    attrs = _attrs(node)
    group = int(attrs.get("group", 1))
    n, cin, kernel = x[0], x[1], w[2:]
    cout = w[1] * group
    # every input element scatters into Cout/group outputs per kernel tap
    flops = 2 * n * cin * _numel(x[2:]) * w[1] * _numel(kernel)
    if _input(node, 2):
        try:
            out_spatial = _known(shapes, node.output[0])[2:]
        except _Unknown:
            nd = len(x) - 2
            strides = list(attrs.get("strides") or [1] * nd)
            dil = list(attrs.get("dilations") or [1] * nd)
            pads = list(attrs.get("pads") or [0] * (2 * nd))
            opad = list(attrs.get("output_padding") or [0] * nd)
            out_spatial = tuple(
                attrs["output_shape"][-nd:]
                if attrs.get("output_shape")
                else [
                    strides[i] * (x[2 + i] - 1)
                    + opad[i]
                    + (kernel[i] - 1) * dil[i]
                    + 1
                    - pads[i]
                    - pads[i + nd]
                    for i in range(nd)
                ]
            )
        flops += n * cout * _numel(out_spatial)
    return flops


def _einsum(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    eq = _attrs(node)["equation"]
    eq = (eq.decode() if isinstance(eq, bytes) else eq).replace(" ", "")
    operands = [_known(shapes, n) for n in node.input]
    if len(operands) > 2:
        raise _NotCounted(f"Einsum with {len(operands)} operands")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    sizes: dict[str, int] = {}
    ellipsis_letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    expanded = []
    for term, shape in zip(terms, operands, strict=True):
        if "..." in term:
            n_ell = len(shape) - (len(term) - 3)
            letters = ellipsis_letters[len(ellipsis_letters) - n_ell :] if n_ell else ""
            term = term.replace("...", letters)
        expanded.append(term)
        for letter, size in zip(term, shape, strict=False):
            sizes[letter] = max(sizes.get(letter, 1), size)
    if rhs or "->" in eq:
        out = rhs.replace("...", "".join(c for c in ellipsis_letters if c in sizes))
    else:
        counts = {c: sum(t.count(c) for t in expanded) for c in sizes}
        out = "".join(sorted(c for c, k in counts.items() if k == 1))
    product = _numel(sizes.values())
    if len(operands) == 1:
        return product if set(sizes) - set(out) else 0
    return 2 * product if set(sizes) - set(out) else product


def _scores_flops(b: int, heads: int, s: int, length: int, d_qk: int, d_v: int) -> int:
    """QK^T and AV matmuls (d_* summed over heads) plus a 5-per-score softmax."""
    return 2 * b * s * length * d_qk + 2 * b * s * length * d_v + 5 * b * heads * s * length


def _ms_attention(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    x = _known(shapes, _input(node, 0))
    w = _known(shapes, _input(node, 1))
    attrs = _attrs(node)
    heads = int(attrs["num_heads"])
    b, s, hidden = x
    qkv = list(attrs.get("qkv_hidden_sizes") or [w[1] // 3] * 3)
    flops = 2 * b * s * hidden * w[1]
    if _input(node, 2):
        flops += b * s * w[1]
    length = s
    past = _input(node, 4)
    if past:
        length += _known(shapes, past)[3]
    return flops + _scores_flops(b, heads, s, length, qkv[0], qkv[2])


def _onnx_attention(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    q = _known(shapes, _input(node, 0))
    k = _known(shapes, _input(node, 1))
    v = _known(shapes, _input(node, 2))
    attrs = _attrs(node)
    if len(q) == 4:
        b, heads, s, h = q
        length, hv = k[2], v[3]
        d_qk, d_v = heads * h, heads * hv
    else:
        b, s, d_qk = q
        heads = int(attrs.get("q_num_heads", 1))
        length, d_v = k[1], v[2] * heads // int(attrs.get("kv_num_heads", heads) or heads)
    past = _input(node, 4)
    if past:
        length += _known(shapes, past)[2]
    return _scores_flops(b, heads, s, length, d_qk, d_v)


def _mha(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    q = _known(shapes, _input(node, 0))
    heads = int(_attrs(node)["num_heads"])
    key, value = _input(node, 1), _input(node, 2)
    if len(q) == 5:  # packed QKV: (B, S, N, 3, H)
        b, s, n, _, h = q
        return _scores_flops(b, n, s, s, n * h, n * h)
    b, s, d_qk = q
    if key is None:
        raise _NotCounted("MultiHeadAttention without key input")
    k = _known(shapes, key)
    if len(k) == 5:  # packed KV: (B, L, N, 2, H)
        length, d_v = k[1], k[2] * k[4]
    elif len(k) == 4:  # (B, N, L, H)
        length = k[2]
        d_v = _known(shapes, value)[1] * _known(shapes, value)[3] if value else d_qk
    else:
        length = k[1]
        d_v = _known(shapes, value)[2] if value else d_qk
        past = _input(node, 6)
        if past:
            length += _known(shapes, past)[2]
    return _scores_flops(b, heads, s, length, d_qk, d_v)


def _gqa(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    # Approximation: the attended length is the past buffer plus the new tokens.
    q = _known(shapes, _input(node, 0))
    attrs = _attrs(node)
    heads, kv_heads = int(attrs["num_heads"]), int(attrs["kv_num_heads"])
    b, s, width = q
    h = width // heads if _input(node, 1) else width // (heads + 2 * kv_heads)
    length = s
    past = _input(node, 3)
    if past:
        length += _known(shapes, past)[2]
    return _scores_flops(b, heads, s, length, heads * h, heads * h)
