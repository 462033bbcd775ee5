"""Inputs for a model: synthesized from the graph, read from files, or tokenized text.

Any ONNX model from the wild gets inputs: every tensor dtype ONNX Runtime accepts,
symbolic dimensions filled from ``dims`` (with aliases such as ``batch`` and
``sequence``) or sensible defaults, and integer inputs that look like token ids,
masks or indices given values in a valid range.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aialliance_cli.errors import BadInputError, ModelError

ORT_DTYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(bfloat16)": "bfloat16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
}

# Aliases: a value given for the key applies to every symbolic dim matching the pattern.
DIM_ALIASES: dict[str, re.Pattern[str]] = {
    "batch": re.compile(r"(^|_)(batch|batch_size|bs|n|num_sequences)($|_)", re.I),
    "sequence": re.compile(
        r"(seq|sequence|length|len|tokens|num_tokens|max_length|encoder_sequence)", re.I
    ),
    "height": re.compile(r"(^h$|height)", re.I),
    "width": re.compile(r"(^w$|width)", re.I),
}
DEFAULT_DIMS = {"batch": 1, "sequence": 128, "height": 224, "width": 224}


@dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: str  # numpy dtype name ("float32", "int64", "bool", "str", "bfloat16")
    shape: tuple[int | str | None, ...]  # ints, symbolic names, or None (unnamed)

    @property
    def symbolic(self) -> tuple[str, ...]:
        return tuple(d for d in self.shape if isinstance(d, str))


def input_specs(session: Any) -> list[InputSpec]:
    specs = []
    for node in session.get_inputs():
        dtype = ORT_DTYPES.get(node.type)
        if dtype is None:
            raise ModelError(
                f"input '{node.name}' has type {node.type}, which aia cannot synthesize "
                "(sequence or map inputs); give it with --input FILE.npz"
            )
        shape = tuple(d if isinstance(d, (int, str)) or d is None else None for d in node.shape)
        specs.append(InputSpec(node.name, dtype, shape))
    return specs


def model_dim_names(specs: Sequence[InputSpec]) -> set[str]:
    return {d for s in specs for d in s.symbolic}


_AXIS_KEY = re.compile(r"^(?P<input>.+)\[(?P<axis>\d+)\]$")
MAX_DIM = 2**31 - 1


def _axis_keys(specs: Sequence[InputSpec]) -> set[str]:
    """``INPUT[AXIS]`` names for the dynamic axes that have no name of their own."""
    return {f"{s.name}[{i}]" for s in specs for i, d in enumerate(s.shape) if _unnamed(d)}


def _unnamed(d: int | str | None) -> bool:
    """A dynamic axis without a name (ORT reports None, some exporters -1)."""
    return d is None or (isinstance(d, int) and d < 0)


_CHANNELS = (1, 3, 4)  # grey, RGB, RGBA: the fixed axis that tells an image's layout


def layout_axes(specs: Sequence[InputSpec]) -> dict[str, str]:
    """The model's own hint for image inputs: in a rank-4 input with a fixed channel axis
    (NCHW ``[?, 3, ?, ?]`` or NHWC ``[?, ?, ?, 3]``) the dynamic axes after the batch are
    height and width. Maps each such axis (its name, or ``INPUT[AXIS]`` when unnamed) to
    ``"height"`` or ``"width"``."""
    out: dict[str, str] = {}
    for s in specs:
        if len(s.shape) != 4:
            continue
        c1, c3 = s.shape[1], s.shape[3]
        if isinstance(c1, int) and c1 in _CHANNELS:
            axes = (2, 3)
        elif isinstance(c3, int) and c3 in _CHANNELS and not (isinstance(c1, int) and c1 > 0):
            axes = (1, 2)
        else:
            continue
        for axis, alias in zip(axes, ("height", "width"), strict=True):
            d = s.shape[axis]
            if isinstance(d, str):
                out.setdefault(d, alias)
            elif _unnamed(d):
                out.setdefault(f"{s.name}[{axis}]", alias)
    return out


def controlled_names(specs: Sequence[InputSpec], key: str) -> set[str]:
    """The dimension names (or ``INPUT[AXIS]`` keys) that a given key sets."""
    names = model_dim_names(specs)
    if key in names or key in _axis_keys(specs):
        return {key}
    if key in DIM_ALIASES:
        hits = {n for n in names if DIM_ALIASES[key].search(n)}
        if key in ("height", "width"):  # image axes named by their place, not their name
            hits |= {k for k, alias in layout_axes(specs).items() if alias == key}
        if hits or key != "batch":
            return hits
        # No dimension is called like a batch: the batch is the leading dynamic axis.
        lead: set[str] = set()
        for s in specs:
            if s.shape and isinstance(s.shape[0], str):
                lead.add(s.shape[0])
            elif s.shape and _unnamed(s.shape[0]):
                lead.add(f"{s.name}[0]")
        return lead
    return set()


def resolve_dims(specs: Sequence[InputSpec], given: Mapping[str, int]) -> dict[str, int]:
    """Map every symbolic dim of the model to a value; refuse names the model lacks.

    Keys are dimension names (``batch_size``), aliases (``batch``, ``sequence``,
    ``height``, ``width``) or ``INPUT[AXIS]`` for a dynamic axis without a name.
    """
    names = model_dim_names(specs)
    explicit: dict[str, int] = {}
    for key, value in given.items():
        value = int(value)
        if value <= 0 or value > MAX_DIM:
            raise BadInputError(
                f"dimension '{key}' must be a positive integer below 2^31, got {value}"
            )
        targets = controlled_names(specs, key)
        if not targets:
            if key == "batch" and _fixed_leading(specs) == {value}:
                continue  # the model's batch is fixed at exactly this value
            raise BadInputError(_no_such_dim(specs, key))
        for t in targets:
            explicit[t] = value
    layout = layout_axes(specs)
    resolved: dict[str, int] = {}
    for name in sorted(names):
        if name in explicit:
            resolved[name] = explicit[name]
            continue
        for alias, pattern in DIM_ALIASES.items():
            if pattern.search(name):
                resolved[name] = DEFAULT_DIMS[alias]
                break
        else:
            resolved[name] = DEFAULT_DIMS[layout[name]] if name in layout else 1
    for key, alias in layout.items():  # unnamed image axes: the same defaults
        if key not in names and key not in explicit:
            resolved[key] = DEFAULT_DIMS[alias]
    resolved.update({k: v for k, v in explicit.items() if k not in names})
    return resolved


def unsized_axes(
    specs: Sequence[InputSpec], given: Mapping[str, int], covered: set[str] = frozenset()
) -> dict[str, str]:
    """Dynamic axes that nothing sized (no --dim, profile dim, alias or layout hint), so they
    run at 1: ``{key: "input 'x' axis 2"}``. The leading axis is the batch (1 by default)
    and inputs in ``covered`` (given as arrays, files or shaped by the profile) are skipped."""
    explicit: set[str] = set()
    for key in given:
        explicit |= controlled_names(specs, key)
    layout = layout_axes(specs)
    out: dict[str, str] = {}
    for s in specs:
        if s.name in covered:
            continue
        for axis, d in enumerate(s.shape):
            if axis == 0 or (isinstance(d, int) and d >= 0):
                continue
            key = d if isinstance(d, str) else f"{s.name}[{axis}]"
            if key in explicit or key in layout or key in given:
                continue
            if isinstance(d, str) and any(p.search(d) for p in DIM_ALIASES.values()):
                continue
            out.setdefault(key, f"input '{s.name}' axis {axis}")
    return out


def unsized_warning(unsized: Mapping[str, str]) -> str | None:
    """One warning naming every axis that runs at 1 and the --dim that sets it."""
    if not unsized:
        return None
    axes = "; ".join(f"{where} ({key})" for key, where in unsized.items())
    how = " ".join(f"--dim '{key}=N'" for key in unsized)
    return (
        f"the model gives no size for {axes}, and nothing set one, so it runs at 1; "
        f"the timings are for that size: set the real one with {how}"
    )


def _fixed_leading(specs: Sequence[InputSpec]) -> set[int]:
    return {s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int)}


def _no_such_dim(specs: Sequence[InputSpec], key: str) -> str:
    names = sorted(model_dim_names(specs))
    unnamed = sorted(_axis_keys(specs))
    if key == "batch" and not names and not unnamed:
        fixed = ", ".join(str(v) for v in sorted(_fixed_leading(specs))) or "fixed"
        return (
            f"the model has a fixed batch ({fixed}): its inputs have no dynamic "
            "dimension, so --batch cannot change it"
        )
    parts = []
    if names:
        parts.append("its symbolic dimensions are: " + ", ".join(names))
    if unnamed:
        parts.append("its unnamed dynamic axes are: " + ", ".join(unnamed))
    known = "; ".join(parts) or "all its dimensions are fixed"
    return (
        f"the model has no dimension named '{key}'; {known}. "
        "Give values with --dim NAME=VALUE (or --dim 'INPUT[AXIS]=VALUE')."
    )


def concrete_shape(spec: InputSpec, dims: Mapping[str, int]) -> tuple[int, ...]:
    out = []
    for axis, d in enumerate(spec.shape):
        if isinstance(d, int) and d >= 0:
            out.append(d)
        elif isinstance(d, str):
            out.append(int(dims[d]))
        else:
            out.append(int(dims.get(f"{spec.name}[{axis}]", 1)))
    return tuple(out)


def check_size(
    specs: Sequence[InputSpec],
    dims: Mapping[str, int],
    sets: int = 1,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> None:
    """Refuse inputs that cannot fit in memory before making them (exit 2, not MemoryError).

    ``shapes`` are the shapes a profile gives its tensors (inputs.tensors.NAME.shape).
    """
    total = 0
    shapes = shapes or {}
    for s in specs:
        shape = shapes.get(s.name) or concrete_shape(s, dims)
        itemsize = 8 if s.dtype in ("str", "bfloat16") else np.dtype(s.dtype).itemsize
        total += int(np.prod(shape, dtype=object)) * itemsize
    total *= max(1, sets)
    try:
        import psutil

        available = psutil.virtual_memory().available
    except Exception:  # pragma: no cover - psutil is a core dependency
        return
    if total > available // 2:
        raise BadInputError(
            f"the inputs at these dimensions ({dict(dims)}) would take "
            f"{total / 2**30:.1f} GiB for {max(1, sets)} input set(s), more than half of the "
            f"{available / 2**30:.1f} GiB available; use a smaller --batch or --dim"
            + (f" (or smaller profile shapes: {_shapes_text(shapes)})" if shapes else "")
        )


def _shapes_text(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"inputs.tensors.{k}.shape {list(v)}" for k, v in shapes.items())


def vocab_sizes(model_path: Path | None) -> dict[str, int]:
    """For integer inputs that index an embedding table, the table's size (from the graph,
    read once per model content: analysis/facts.py)."""
    if model_path is None:
        return {}
    from aialliance_cli.analysis.facts import model_fact

    try:
        found = model_fact(model_path, "vocab", _scan_vocab_sizes)
        return {str(k): int(v) for k, v in dict(found).items()}
    except (OSError, TypeError, ValueError):
        return _scan_vocab_sizes(model_path)


def _scan_vocab_sizes(model_path: Path) -> dict[str, int]:
    from aialliance_cli.models.protoscan import scan_model

    try:
        graph = scan_model(model_path).graph
    except Exception:
        return {}
    if graph is None:
        return {}
    inits = {i.name: i.dims for i in graph.initializers}
    graph_inputs = {i.name for i in graph.inputs}
    sizes: dict[str, int] = {}
    for node in graph.nodes:
        if node.op_type == "Gather" and len(node.inputs) >= 2:
            data, idx = node.inputs[0], node.inputs[1]
            if idx in graph_inputs and data in inits and inits[data]:
                sizes[idx] = max(sizes.get(idx, 0), int(inits[data][0]))
    return sizes


def _kind_of(name: str) -> str:
    n = name.lower()
    if "mask" in n:
        return "mask"
    if "token_type" in n or "segment" in n:
        return "zeros"
    if "position" in n:
        return "positions"
    if "ids" in n or "token" in n:
        return "ids"
    if "index" in n or "indices" in n:
        return "indices"
    return "other"


def synthesize(
    spec: InputSpec,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    vocab: int | None = None,
    how: str | None = None,
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """Make one input tensor; ``how`` is random|zeros|ones|range (None: guess from the name)."""
    dtype = spec.dtype
    if dtype == "str":
        return np.full(shape, "aia", dtype=object)
    np_dtype = _np_dtype(dtype)
    if how == "zeros":
        return np.zeros(shape, dtype=np_dtype)
    if how == "ones":
        return np.ones(shape, dtype=np_dtype)
    if how == "range":
        return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape).astype(np_dtype)
    if dtype == "bool":
        return rng.random(shape) < 0.5 if how == "random" else np.ones(shape, dtype=bool)
    if np.issubdtype(np.dtype(np_dtype), np.integer):
        kind = "other" if how == "random" else _kind_of(spec.name)
        if kind == "mask":
            return np.ones(shape, dtype=np_dtype)
        if kind == "zeros":
            return np.zeros(shape, dtype=np_dtype)
        if kind == "positions" and shape:
            return np.broadcast_to(np.arange(shape[-1]), shape).astype(np_dtype).copy()
        info = np.iinfo(np.dtype(np_dtype))
        if low is not None or high is not None:
            lo, hi = int(low or 0), int(high if high is not None else 100)
        elif kind == "ids":
            # Token ids: stay clear of special tokens at the low end where the vocabulary is known.
            lo, hi = (min(1000, (vocab or 1000) // 4), vocab) if vocab else (0, 100)
        elif kind == "indices" and shape:
            lo, hi = 0, max(1, shape[-1])
        else:
            lo, hi = 0, 10
        lo, hi = max(lo, int(info.min)), min(hi, int(info.max) + 1)
        return rng.integers(lo, max(hi, lo + 1), size=shape).astype(np_dtype)
    lo = 0.0 if low is None else float(low)
    hi = 1.0 if high is None else float(high)
    if low is None and high is None and how != "random":
        values = rng.standard_normal(shape, dtype=np.float32)
    else:
        values = rng.random(shape, dtype=np.float32) * np.float32(hi - lo) + np.float32(lo)
    return values.astype(np_dtype, copy=False)


def _np_dtype(dtype: str) -> Any:
    if dtype == "bfloat16":
        try:
            import ml_dtypes

            return ml_dtypes.bfloat16
        except ImportError as exc:
            raise ModelError(
                "the model takes bfloat16 inputs; install ml_dtypes to synthesize them"
            ) from exc
    return np.dtype(dtype)


def load_array_file(path: Path, key: str | None = None) -> dict[str, np.ndarray]:
    """Read a .npy (one array) or .npz (named arrays) file."""
    if path.is_dir():
        raise BadInputError(f"input file {path} is a directory, not a .npy or .npz file")
    from aialliance_cli.runtime.preprocess import require_file

    require_file(path)
    _check_unpacked_size(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            if key is not None:
                if key not in arrays:
                    raise BadInputError(
                        f"input file {path} has no array '{key}' (it has: {', '.join(arrays)})"
                    )
                return {key: arrays[key]}
            if not arrays:
                raise BadInputError(f"input file {path} holds no arrays")
            return arrays
        arr = np.load(path, allow_pickle=False)
    except BadInputError:
        raise
    except Exception as exc:
        raise BadInputError(
            f"cannot read input file {path} as a NumPy .npy/.npz array file: {exc}"
        ) from exc
    return {key or path.stem: arr}


def _check_unpacked_size(path: Path) -> None:
    """Refuse a .npy/.npz whose arrays would not fit in half the available memory, before
    reading it: a small .npz can hold gigabytes of zeros (its members are compressed)."""
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                size = sum(info.file_size for info in zf.infolist())
        else:
            size = path.stat().st_size
        import psutil

        available = psutil.virtual_memory().available
    except (OSError, zipfile.BadZipFile, ImportError):
        return  # np.load reports what is wrong with the file
    if size > available // 2:
        raise BadInputError(
            f"input file {path} unpacks to {size / 2**30:.1f} GiB, more than half of the "
            f"{available / 2**30:.1f} GiB available"
        )


def check_feeds(specs: Sequence[InputSpec], feeds: Mapping[str, np.ndarray]) -> None:
    """Refuse feeds whose names, dtypes or fixed dimensions do not match the model."""
    by_name = {s.name: s for s in specs}
    for name in feeds:
        if name not in by_name:
            raise ModelError(
                f"the model has no input named '{name}'; its inputs are: {', '.join(by_name)}"
            )
    for spec in specs:
        if spec.name not in feeds:
            raise ModelError(f"no value for the model's input '{spec.name}'")
        arr = feeds[spec.name]
        want = spec.dtype
        got = "str" if arr.dtype == object or arr.dtype.kind in "US" else str(arr.dtype)
        if want != got:
            raise ModelError(
                f"input '{spec.name}' must be {want}, got {got} with shape {tuple(arr.shape)}"
            )
        if len(arr.shape) != len(spec.shape):
            raise ModelError(
                f"input '{spec.name}' must have {len(spec.shape)} dimensions "
                f"{_fmt_shape(spec.shape)}, got shape {tuple(arr.shape)}"
            )
        for axis, (d, n) in enumerate(zip(spec.shape, arr.shape, strict=True)):
            if isinstance(d, int) and d >= 0 and d != n:
                raise ModelError(
                    f"input '{spec.name}' must have size {d} on axis {axis} "
                    f"{_fmt_shape(spec.shape)}, got shape {tuple(arr.shape)}"
                )


def _fmt_shape(shape: Sequence[int | str | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def tokenize(
    texts: Sequence[str], tokenizer_path: Path, batch: int, max_length: int
) -> dict[str, np.ndarray]:
    """Token ids, attention mask and token type ids from text, padded to ``max_length``."""
    tok_file = tokenizer_path / "tokenizer.json" if tokenizer_path.is_dir() else tokenizer_path
    if not tok_file.is_file():
        raise BadInputError(
            f"no tokenizer at {tokenizer_path} (expected a tokenizer.json); "
            "name one with inputs.text.tokenizer in the profile"
        )
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover - tokenizers is a core dependency
        raise BadInputError("tokenizing text needs the 'tokenizers' package") from exc
    tok = Tokenizer.from_file(str(tok_file))
    tok.enable_truncation(max_length=max_length)
    pad_id = tok.token_to_id("[PAD]")
    if pad_id is None:
        pad_id = tok.token_to_id("<pad>") or 0
    tok.enable_padding(length=max_length, pad_id=pad_id)
    batch_texts = [texts[i % len(texts)] for i in range(batch)]
    encs = tok.encode_batch(batch_texts)
    return {
        "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
    }


@dataclass(frozen=True)
class TensorRule:
    """How to make one named input (from a profile's inputs.tensors or the CLI)."""

    synthesize: str | None = None  # random|zeros|ones|range
    value: Any = None
    file: Path | None = None
    key: str | None = None
    dtype: str | None = None
    low: float | None = None
    high: float | None = None
    seed: int | None = None
    shape: tuple[int, ...] | None = None  # overrides the graph's shape (unnamed dims)


def build_feeds(
    specs: Sequence[InputSpec],
    dims: Mapping[str, int],
    *,
    rules: Mapping[str, TensorRule] | None = None,
    provided: Mapping[str, np.ndarray] | None = None,
    vocab: Mapping[str, int] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """One complete, checked set of inputs; ``provided`` wins, then ``rules``, then synthesis."""
    rules = dict(rules or {})
    provided = dict(provided or {})
    names = {s.name for s in specs}
    for name in rules:
        if name not in names:
            raise BadInputError(
                f"the profile gives inputs.tensors.{name}, but the model has no input '{name}'; "
                f"its inputs are: {', '.join(sorted(names))}"
            )
    for name in provided:
        if name not in names:
            raise ModelError(
                f"an input file gives '{name}', but the model has no input named '{name}'; "
                f"its inputs are: {', '.join(sorted(names))}"
            )
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        rule = rules.get(spec.name)
        shape = rule.shape if rule is not None and rule.shape else concrete_shape(spec, dims)
        if spec.name in provided:
            arr = np.asarray(provided[spec.name])
            # Same kind, other width (float64 from np.ones, int32 ids): cast; other kinds: refuse.
            if (
                spec.dtype not in ("str", "bool", "bfloat16")
                and arr.dtype.kind in "iuf"
                and (
                    arr.dtype.kind == np.dtype(spec.dtype).kind
                    or {arr.dtype.kind, np.dtype(spec.dtype).kind} <= {"i", "u"}
                )
            ):
                arr = arr.astype(spec.dtype, copy=False)
            feeds[spec.name] = arr
            continue
        if rule is not None and rule.file is not None:
            arrays = load_array_file(rule.file, rule.key)
            arr = next(iter(arrays.values()))
            feeds[spec.name] = arr.astype(rule.dtype or spec.dtype, copy=False)
        elif rule is not None and rule.value is not None:
            arr = np.array(rule.value, dtype=_np_dtype(rule.dtype or spec.dtype))
            if arr.ndim == 0 and len(shape) > 0:
                arr = np.full(shape, arr, dtype=arr.dtype)
            feeds[spec.name] = arr
        else:
            r = rng
            if rule is not None and rule.seed is not None:
                r = np.random.default_rng(rule.seed + seed)  # distinct per input set
            feeds[spec.name] = synthesize(
                spec,
                shape,
                r,
                vocab=(vocab or {}).get(spec.name),
                how=rule.synthesize if rule else None,
                low=rule.low if rule else None,
                high=rule.high if rule else None,
            )
    check_feeds(specs, feeds)
    return feeds
