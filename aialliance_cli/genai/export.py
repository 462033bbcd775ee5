"""Causal-LM decoders in ONNX: export with optimum (cached), find, and inspect.

Exports are cached under ``user_dirs().models / "genai"``, keyed by the source
(hub id and revision, or a local folder's file names, sizes and times), the
options and the optimum version. A folder holding ``genai_config.json``
(ONNX Runtime GenAI layout) is read as it is: its config names the model file,
the cache tensor names and the sizes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aialliance_cli.errors import ModelError, RuntimeFailure
from aialliance_cli.paths import user_dirs

Layout = Literal["optimum", "genai", "onnx"]
MARKER = "aia-export.json"
TASK_WITH_PAST = "text-generation-with-past"

_PAST_RE = re.compile(r"^past(?:_key_values)?\.(\d+)\.(key|value)$")
_PRESENT_RE = re.compile(r"^present(?:_key_values)?\.(\d+)\.(key|value)$")
_ORT_TO_NUMPY = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
}


@dataclass(frozen=True)
class DecoderFiles:
    """Where a decoder lives and the configs found beside it."""

    folder: Path
    model_path: Path
    layout: Layout
    config: dict[str, Any] = field(default_factory=dict)  # config.json (transformers)
    generation_config: dict[str, Any] = field(default_factory=dict)
    genai_config: dict[str, Any] | None = None  # genai_config.json (ONNX Runtime GenAI)


@dataclass(frozen=True)
class DecoderInfo:
    """What the generation loop needs to know about a decoder with a KV cache."""

    num_layers: int
    num_kv_heads: int
    head_dim: int
    past_key_names: tuple[str, ...]
    past_value_names: tuple[str, ...]
    present_key_names: tuple[str, ...]
    present_value_names: tuple[str, ...]
    has_position_ids: bool
    dtype: str  # numpy name of the cache tensors: float32, float16
    input_ids_name: str = "input_ids"
    attention_mask_name: str | None = "attention_mask"
    position_ids_name: str | None = None
    logits_name: str = "logits"
    use_cache_branch_name: str | None = None  # old optimum "merged" decoders
    vocab_size: int | None = None
    context_length: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    model_type: str | None = None
    # The model builder's fixed-size cache: past and present are one buffer of max length
    # that GroupQueryAttention writes in place (no copy of the cache per step).
    share_buffer: bool = False

    @property
    def past_names(self) -> tuple[str, ...]:
        """Past inputs in the order key0, value0, key1, value1, ..."""
        return tuple(
            n for pair in zip(self.past_key_names, self.past_value_names, strict=True) for n in pair
        )

    @property
    def present_names(self) -> tuple[str, ...]:
        return tuple(
            n
            for pair in zip(self.present_key_names, self.present_value_names, strict=True)
            for n in pair
        )


# --- finding a decoder -------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.safeparse import loads_json

    try:
        return loads_json(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot read {path}: {exc}") from None
    except BadInputError as exc:
        raise ModelError(str(exc)) from None


def locate_decoder(path: str | Path) -> DecoderFiles:
    """Find the decoder in an optimum export folder, a GenAI folder, or an .onnx file."""
    path = Path(path).expanduser()
    if path.is_file():
        folder = path.parent
        genai = _read_json(folder / "genai_config.json") or None
        layout: Layout = "genai" if genai else "onnx"
        return DecoderFiles(
            folder,
            path,
            layout,
            _read_json(folder / "config.json"),
            _read_json(folder / "generation_config.json"),
            genai,
        )
    if not path.is_dir():
        raise ModelError(f"Model path {path} does not exist.")
    genai = _read_json(path / "genai_config.json") or None
    if genai:
        name = genai.get("model", {}).get("decoder", {}).get("filename", "model.onnx")
        model = path / name
        if not model.is_file():
            raise ModelError(f"{path / 'genai_config.json'} names decoder file {name}, not found.")
        return DecoderFiles(
            path,
            model,
            "genai",
            _read_json(path / "config.json"),
            _read_json(path / "generation_config.json"),
            genai,
        )
    for name in ("model.onnx", "decoder_model_merged.onnx", "decoder_with_past_model.onnx"):
        if (path / name).is_file():
            return DecoderFiles(
                path,
                path / name,
                "optimum",
                _read_json(path / "config.json"),
                _read_json(path / "generation_config.json"),
            )
    onnx_files = sorted(path.glob("*.onnx"))
    if len(onnx_files) == 1:
        return locate_decoder(onnx_files[0])
    raise ModelError(
        f"No decoder in {path}: expected model.onnx (optimum export) or genai_config.json "
        f"(ONNX Runtime GenAI), found {len(onnx_files)} .onnx files."
    )


# --- inspecting a decoder ----------------------------------------------------------------------


def _io_of(model: Any) -> tuple[list[tuple[str, list[Any], str]], list[tuple[str, list[Any], str]]]:
    """(name, shape, ort type string) of inputs and outputs of a session or model file."""
    if hasattr(model, "get_inputs"):
        ins = [(i.name, list(i.shape), i.type) for i in model.get_inputs()]
        outs = [(o.name, list(o.shape), o.type) for o in model.get_outputs()]
        return ins, outs
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    inits = {i.name for i in proto.graph.initializer}

    def conv(vi: Any) -> tuple[str, list[Any], str]:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
        elem = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else ""
        rev = {v: k for k, v in _ORT_TO_NUMPY.items()}
        return vi.name, dims, rev.get(elem, f"tensor({elem})")

    ins = [conv(v) for v in proto.graph.input if v.name not in inits]
    return ins, [conv(v) for v in proto.graph.output]


def _eos_ids(*values: Any) -> tuple[int, ...]:
    out: set[int] = set()
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            out.add(v)
        elif isinstance(v, list):
            out.update(int(x) for x in v if isinstance(x, int))
    return tuple(sorted(out))


def check_decoder(
    model: Any, files: DecoderFiles | None = None, *, name: str | None = None
) -> DecoderInfo:
    """Inspect a decoder (model path or InferenceSession) for the generation loop.

    Raises ModelError when it has no ``past_key_values`` inputs: it was exported
    without the KV cache and every token would recompute the whole prompt.
    """
    if files is None and isinstance(model, (str, Path)):
        files = locate_decoder(model)
        model = files.model_path
    label = name or (str(files.model_path) if files else "the decoder")
    ins, outs = _io_of(model)
    in_names = [n for n, _, _ in ins]
    out_names = [n for n, _, _ in outs]
    config = files.config if files else {}
    genai = (files.genai_config or {}).get("model", {}) if files else {}
    dec = genai.get("decoder", {})

    def by_template(names: list[str], template: str | None) -> dict[int, str]:
        if not template:
            return {}
        pat = re.compile("^" + re.escape(template).replace("%d", r"(\d+)") + "$")
        return {int(m.group(1)): n for n in names if (m := pat.match(n))}

    keys = by_template(in_names, dec.get("inputs", {}).get("past_key_names"))
    values = by_template(in_names, dec.get("inputs", {}).get("past_value_names"))
    pkeys = by_template(out_names, dec.get("outputs", {}).get("present_key_names"))
    pvalues = by_template(out_names, dec.get("outputs", {}).get("present_value_names"))
    if not keys:
        for n in in_names:
            if m := _PAST_RE.match(n):
                (keys if m.group(2) == "key" else values)[int(m.group(1))] = n
    if not pkeys:
        for n in out_names:
            if m := _PRESENT_RE.match(n):
                (pkeys if m.group(2) == "key" else pvalues)[int(m.group(1))] = n
    if not keys:
        raise ModelError(
            f"{label} was exported without KV cache (it has no past_key_values inputs; inputs: "
            f"{', '.join(in_names)}), so every new token would recompute the whole prompt.",
            hint="Re-export it with task text-generation-with-past (aia does this for Hugging "
            "Face sources: set huggingface.task: text-generation-with-past, or call "
            "export_causal_lm(source, with_past=True)).",
        )
    layers = sorted(keys)
    if sorted(values) != layers or sorted(pkeys) != layers or sorted(pvalues) != layers:
        raise ModelError(
            f"{label}: past/present cache tensors do not pair up (past keys for layers {layers}, "
            f"past values {sorted(values)}, present keys {sorted(pkeys)}, present values "
            f"{sorted(pvalues)})."
        )
    shapes = {n: s for n, s, _ in ins}
    types = {n: t for n, _, t in ins}
    shape = shapes[keys[layers[0]]]
    if len(shape) != 4:
        raise ModelError(
            f"{label}: cache input {keys[layers[0]]} has shape {shape}; aia's loop expects "
            "(batch, kv_heads, past_length, head_dim)."
        )
    heads = shape[1] if isinstance(shape[1], int) and shape[1] > 0 else None
    head_dim = shape[3] if isinstance(shape[3], int) and shape[3] > 0 else None
    n_heads = config.get("num_attention_heads") or config.get("n_head")
    heads = heads or dec.get("num_key_value_heads") or config.get("num_key_value_heads") or n_heads
    hidden = config.get("hidden_size") or config.get("n_embd")
    head_dim = (
        head_dim
        or dec.get("head_size")
        or config.get("head_dim")
        or (hidden // n_heads if hidden and n_heads else None)
    )
    if not heads or not head_dim:
        raise ModelError(
            f"{label}: cache shape {shape} has symbolic heads or head size and no config.json "
            "or genai_config.json beside it says them."
        )
    dtype = _ORT_TO_NUMPY.get(types[keys[layers[0]]])
    if dtype is None:
        raise ModelError(f"{label}: unsupported cache type {types[keys[layers[0]]]}.")
    search = (files.genai_config or {}).get("search", {}) if files else {}
    share_buffer = bool(search.get("past_present_share_buffer"))
    logits = next((n for n in out_names if n == dec.get("outputs", {}).get("logits")), None)
    logits = logits or ("logits" if "logits" in out_names else out_names[0])
    out_shapes = {n: s for n, s, _ in outs}
    vocab = out_shapes.get(logits, [None])[-1]
    vocab = vocab if isinstance(vocab, int) and vocab > 0 else None
    vocab = vocab or genai.get("vocab_size") or config.get("vocab_size")
    ctx = (
        genai.get("context_length")
        or config.get("max_position_embeddings")
        or config.get("n_positions")
        or config.get("max_sequence_length")
    )
    gen = files.generation_config if files else {}
    eos = _eos_ids(genai.get("eos_token_id"), config.get("eos_token_id"), gen.get("eos_token_id"))

    def pick(*candidates: str) -> str | None:
        return next((c for c in candidates if c in in_names), None)

    ids_name = dec.get("inputs", {}).get("input_ids") or pick("input_ids")
    if ids_name not in in_names:
        raise ModelError(f"{label} has no input_ids input (inputs: {', '.join(in_names)}).")
    mask = pick(dec.get("inputs", {}).get("attention_mask", "attention_mask"))
    pos = pick(dec.get("inputs", {}).get("position_ids", "position_ids"))
    known = {ids_name, mask, pos, "use_cache_branch", *keys.values(), *values.values()}
    unknown = [n for n in in_names if n not in known]
    if unknown:
        raise ModelError(
            f"{label} has inputs aia's generation loop does not know how to feed: "
            f"{', '.join(unknown)}."
        )
    return DecoderInfo(
        num_layers=len(layers),
        num_kv_heads=int(heads),
        head_dim=int(head_dim),
        past_key_names=tuple(keys[i] for i in layers),
        past_value_names=tuple(values[i] for i in layers),
        present_key_names=tuple(pkeys[i] for i in layers),
        present_value_names=tuple(pvalues[i] for i in layers),
        has_position_ids=pos is not None,
        dtype=dtype,
        input_ids_name=ids_name,
        attention_mask_name=mask,
        position_ids_name=pos,
        logits_name=logits,
        use_cache_branch_name="use_cache_branch" if "use_cache_branch" in in_names else None,
        vocab_size=int(vocab) if vocab else None,
        context_length=int(ctx) if ctx else None,
        eos_token_ids=eos,
        model_type=genai.get("type") or config.get("model_type"),
        share_buffer=share_buffer,
    )


# --- export with optimum (cached) --------------------------------------------------------------


def _fingerprint(folder: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    )


def cache_key(source: str | Path, **options: Any) -> str:
    """A stable key of a source and export options (local folders by file names/sizes/times)."""
    import importlib.metadata as md

    local = Path(str(source)).expanduser()
    if local.is_dir():
        src: Any = {"dir": str(local.resolve()), "files": _fingerprint(local)}
    else:
        src = {"id": str(source)}
    try:
        versions = {p: md.version(p) for p in ("optimum", "optimum-onnx", "transformers")}
    except md.PackageNotFoundError:
        versions = {}
    blob = json.dumps({"source": src, "options": options, "versions": versions}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_root() -> Path:
    return user_dirs().models / "genai"


def _slug(source: str | Path) -> str:
    local = Path(str(source)).expanduser()
    text = local.name if local.is_dir() else str(source).replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[-60:] or "model"


def export_causal_lm(
    source: str | Path,
    out_dir: str | Path | None = None,
    *,
    with_past: bool = True,
    revision: str = "main",
    allow_download: bool = False,
    opset: int | None = None,
) -> Path:
    """Export a transformers causal LM (local folder or hub id) to ONNX with optimum.

    Returns the folder holding ``model.onnx``, ``config.json`` and the
    tokenizer. With ``out_dir`` None the export is cached and reused.
    ``allow_download`` False keeps the hub offline: a hub id must already be in
    the Hugging Face cache.
    """
    task = TASK_WITH_PAST if with_past else "text-generation"
    local = Path(str(source)).expanduser()
    if out_dir is None:
        key = cache_key(source, task=task, revision=revision, opset=opset)
        target = cache_root() / f"{_slug(source)}-{key[:16]}"
        if (target / MARKER).is_file():
            return target
    else:
        target = Path(out_dir)
        if (target / MARKER).is_file() and (target / "model.onnx").is_file():
            return target
    if not local.is_dir() and (local.is_absolute() or str(source).startswith(".")):
        raise ModelError(f"Model folder {local} does not exist.")
    try:
        from optimum.exporters.onnx import main_export
    except ImportError:
        raise ModelError(
            f"Exporting {source} to ONNX needs optimum, which is not installed.",
            hint="pip install 'aialliance-cli[export]'",
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    env_offline = os.environ.get("HF_HUB_OFFLINE")
    try:
        if not allow_download:
            os.environ["HF_HUB_OFFLINE"] = "1"
        from aialliance_cli.models.export import _quiet_libraries

        with _quiet_libraries():
            main_export(
                str(local) if local.is_dir() else str(source),
                tmp,
                task=task,
                opset=opset,
                revision=revision,
                local_files_only=not allow_download,
                do_validation=False,  # checked by aia's own tests against transformers
                library_name="transformers",
            )
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # Ctrl-C and SIGTERM too: no half export left
        if not isinstance(exc, Exception):
            raise
        text = f"{type(exc).__name__}: {exc}".strip()
        if not local.is_dir() and not allow_download:
            raise ModelError(
                f"{source} is not a local folder and is not in the Hugging Face cache; it needs "
                f"a download ({text[:300]}).",
                hint="Allow the download (--allow-network), or use --random-weights to "
                "benchmark the architecture with random weights.",
            ) from None
        if isinstance(exc, (ValueError, KeyError, OSError)):
            raise ModelError(f"Cannot export {source} with optimum: {text[:500]}") from None
        raise RuntimeFailure(f"Exporting {source} with optimum failed: {text[:500]}") from None
    finally:
        if env_offline is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env_offline
    (tmp / MARKER).write_text(
        json.dumps({"source": str(source), "task": task, "revision": revision, "opset": opset})
    )
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race; its export is as good
        shutil.rmtree(tmp, ignore_errors=True)
    return target
