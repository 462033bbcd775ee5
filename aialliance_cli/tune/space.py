"""The search space of `aia tune`, read from the machine.

    Candidate          one configuration: EP (and the environment that has it), precision,
                       threads, spinning, graph optimisation, execution mode, batch, EP options
    PRECISIONS         what each precision name means and what it needs
    check_precisions() --precision names -> the ones this machine can run (else exit 2)
    build_space()      Inventory + plan + registered environments -> a Space of dimensions

A Space is not a grid: the search (search.py) walks its dimensions one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aialliance_cli.errors import BadInputError

CPU_EP = "CPUExecutionProvider"
OV_EP = "OpenVINOExecutionProvider"
GPU_EPS = (
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "NvTensorRTRTXExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "DmlExecutionProvider",
)
OBJECTIVES = ("latency", "throughput")
SPIN = "session.intra_op.allow_spinning"
SPIN_INTER = "session.inter_op.allow_spinning"
# EP options a label leaves out: they follow from the precision already named.
_UNSHOWN = ("precision", "_hint:INFERENCE_PRECISION_HINT")


@dataclass(frozen=True)
class Precision:
    """One precision: how its model is made (``quantize``) and what it needs to run."""

    name: str
    description: str
    quantize: dict[str, Any] | None = None  # None: the fp32 model itself
    ep_options: dict[str, dict[str, str]] = field(default_factory=dict)  # per EP


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", "fp32 (the model as it is)"),
        Precision(
            "int8-dynamic",
            "int8 dynamic, QInt8 weights per channel",
            {"method": "dynamic", "weight_type": "qint8", "per_channel": True},
        ),
        Precision(
            "int8-dynamic-tensor",
            "int8 dynamic, QInt8 weights per tensor",
            {"method": "dynamic", "weight_type": "qint8", "per_channel": False},
        ),
        Precision(
            "int8-dynamic-u8",
            "int8 dynamic, QUInt8 weights per channel",
            {"method": "dynamic", "weight_type": "quint8", "per_channel": True},
        ),
        Precision(
            "int8-static",
            "int8 static QDQ, calibrated on the profile's inputs",
            {"method": "static"},
        ),
        Precision(
            "bf16",
            "bf16 compute (OpenVINO INFERENCE_PRECISION_HINT=bf16)",
            ep_options={OV_EP: {"precision": "ACCURACY", "_hint:INFERENCE_PRECISION_HINT": "bf16"}},
        ),
        Precision("fp16", "fp16 weights and ops", {"method": "fp16"}),
    )
}
# Shorthands a user may type.
ALIASES = {"int8": "int8-dynamic", "int8-per-tensor": "int8-dynamic-tensor", "float32": "fp32"}


@dataclass(frozen=True)
class Candidate:
    """One configuration; 0 threads and None spinning keep ONNX Runtime's defaults."""

    ep: str = CPU_EP
    env: str | None = None  # the registered environment that runs it; None: this one
    precision: str = "fp32"
    threads: int = 0
    spinning: bool | None = None
    opt_level: str = "all"
    execution_mode: str = "sequential"
    inter_op: int = 0
    batch: int | None = None
    ep_options: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ep_options"] = dict(self.ep_options)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        known = set(cls.__dataclass_fields__)
        d = {k: v for k, v in data.items() if k in known}
        d["ep_options"] = tuple(
            sorted((str(k), str(v)) for k, v in (d.get("ep_options") or {}).items())
        )
        return cls(**d)

    def label(self) -> str:
        """``int8-dynamic cpu threads=2 spin=off``: only what differs from ORT's defaults."""
        from aialliance_cli.providers.catalogue import short_name

        parts = [self.precision, short_name(self.ep) + (f"@{self.env}" if self.env else "")]
        parts.append(f"threads={self.threads}" if self.threads else "threads=default")
        if self.spinning is not None:
            parts.append("spin=" + ("on" if self.spinning else "off"))
        if self.opt_level != "all":
            parts.append(f"opt={self.opt_level}")
        if self.execution_mode != "sequential":
            parts.append(f"{self.execution_mode} inter_op={self.inter_op or 'default'}")
        if self.batch is not None:
            parts.append(f"batch={self.batch}")
        parts += [f"{k.split(':')[-1]}={v}" for k, v in self.ep_options if k not in _UNSHOWN]
        return " ".join(parts)

    def describe(self) -> str:
        """The words of a tuned-record line: ``int8 dynamic, 2 threads, spinning off``."""
        parts = [precision_words(self.precision)]
        if self.ep != CPU_EP:
            from aialliance_cli.providers.catalogue import short_name

            parts.append(f"on {short_name(self.ep)}")
        parts.append(f"{self.threads} threads" if self.threads else "default threads")
        if self.spinning is False:
            parts.append("spinning off")
        if self.batch:
            parts.append(f"batch {self.batch}")
        return ", ".join(parts)

    def numeric_key(self) -> tuple[Any, ...]:
        """What decides the numbers a configuration computes (threads do not, to rounding)."""
        return (self.ep, self.env, self.precision, self.ep_options)

    def session_settings(self) -> dict[str, Any]:
        """The api.Overrides ``session`` mapping of this candidate."""
        config: dict[str, str] = {}
        if self.spinning is not None:
            config[SPIN] = "1" if self.spinning else "0"
            config[SPIN_INTER] = "1" if self.spinning else "0"
        opts = {k: v for k, v in self.ep_options if not k.startswith("_")}
        hints = {k.split(":", 1)[1]: v for k, v in self.ep_options if k.startswith("_hint:")}
        if self.ep == OV_EP:
            if self.threads:
                opts["num_of_threads"] = str(self.threads)
            if hints:
                import json

                # The OpenVINO EP takes device properties as load_config JSON.
                opts["load_config"] = json.dumps({"CPU": hints})
        return {
            "inter_op_threads": self.inter_op,
            "execution_mode": self.execution_mode,
            "graph_optimization_level": self.opt_level,
            "config": config,
            "ep_options": opts,
        }

    def changes(self) -> int:
        """How many settings differ from ORT's defaults (fewer wins a tie)."""
        base = Candidate()
        return sum(
            getattr(self, f) != getattr(base, f)
            for f in self.__dataclass_fields__
            if f not in ("env",)
        )


@dataclass(frozen=True)
class Backend:
    """An EP where it runs, with one precision."""

    ep: str
    env: str | None
    precision: str

    def candidate(self, base: Candidate) -> Candidate:
        prec = PRECISIONS.get(self.precision)
        opts = prec.ep_options.get(self.ep, {}) if prec is not None else {}
        return replace(
            base,
            ep=self.ep,
            env=self.env,
            precision=self.precision,
            ep_options=tuple(sorted(opts.items())),
        )


@dataclass
class Space:
    """The dimensions the search walks, in the order it walks them."""

    backends: list[Backend]
    threads: list[int]
    spinning: list[bool | None]
    opt_levels: list[str]
    execution: list[tuple[str, int]]
    batches: list[int | None]
    ov_hints: list[str | None]
    notes: list[str] = field(default_factory=list)
    skipped_precisions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backends": [asdict(b) for b in self.backends],
            "threads": self.threads,
            "spinning": self.spinning,
            "opt_levels": self.opt_levels,
            "execution": [list(e) for e in self.execution],
            "batches": self.batches,
            "ov_hints": self.ov_hints,
            "notes": list(self.notes),
            "skipped_precisions": dict(self.skipped_precisions),
        }

    def size(self) -> int:
        """The size of the full grid over these dimensions (what the search avoids)."""
        n = len(self.backends) * len(self.threads) * len(self.spinning) * len(self.opt_levels)
        return n * len(self.execution) * len(self.batches) * max(1, len(self.ov_hints))


# ----------------------------------------------------------------------------- precisions


def precision_words(name: str) -> str:
    """``int8 dynamic`` for int8-dynamic; a profile variant keeps its name."""
    if name in PRECISIONS:
        return PRECISIONS[name].description.split(",")[0].split(" (")[0]
    return name


def parse_precisions(text: str | None) -> list[str] | None:
    """``"fp32,int8"`` -> canonical precision names; unknown names exit 2."""
    if text is None:
        return None
    out: list[str] = []
    for raw in str(text).split(","):
        name = raw.strip().lower()
        if not name:
            raise BadInputError(
                f"--precision expects a name or a comma-separated list, got '{text}'"
            )
        name = ALIASES.get(name, name)
        if name.startswith("variant:") and name[len("variant:") :]:
            name = "variant:" + raw.strip()[len("variant:") :]  # the profile's own spelling
        elif name not in PRECISIONS:
            from aialliance_cli.profiles.schema import did_you_mean

            raise BadInputError(
                f"--precision: unknown precision '{raw.strip()}'"
                f"{did_you_mean(name, list(PRECISIONS))}. Known: {', '.join(PRECISIONS)}, "
                "and variant:NAME for a variant of the profile"
            )
        if name not in out:
            out.append(name)
    return out


def _int8_isa(cpu: Any) -> str | None:
    """Why int8 cannot run fast on this CPU, or None when it can."""
    arch = (cpu.architecture or "").lower()
    if arch in ("aarch64", "arm64"):
        return None
    if cpu.has("avx2") or cpu.has("avx512f"):
        return None
    return (
        f"int8 needs AVX2 (or AVX-512/VNNI) on x86 or an ARM64 CPU; {cpu.model_name} "
        f"({arch or 'unknown architecture'}) has none of them"
    )


def _bf16_isa(cpu: Any) -> str | None:
    if cpu.has("avx512_bf16") or cpu.has("amx_bf16") or cpu.has("amx"):
        return None
    return f"bf16 needs a CPU with AVX512_BF16 or AMX; {cpu.model_name} has neither"


def precision_support(
    inventory: Any, eps: Sequence[tuple[str, str | None]]
) -> dict[str, tuple[list[tuple[str, str | None]], str | None]]:
    """For each precision: the (EP, env) pairs that can run it here, and why not if none."""
    cpu = inventory.cpu
    out: dict[str, tuple[list[tuple[str, str | None]], str | None]] = {}
    cpu_like = [(e, env) for e, env in eps if e in (CPU_EP, OV_EP)]
    gpu_like = [(e, env) for e, env in eps if e in GPU_EPS]
    out["fp32"] = (list(eps), None)
    why = _int8_isa(cpu)
    import importlib.util

    static_why = None
    if importlib.util.find_spec("aialliance_cli.tune.quantize") is None:
        static_why = "int8-static needs aia's quantizer (aia quantize), which this build lacks"
    for name in ("int8-dynamic", "int8-dynamic-tensor", "int8-dynamic-u8", "int8-static"):
        # Quantized models run through ONNX Runtime's CPU kernels (OpenVINO takes QDQ).
        usable = [(e, env) for e, env in cpu_like if e == CPU_EP or name == "int8-static"]
        reason = why or (static_why if name == "int8-static" else None)
        out[name] = (usable, None) if reason is None else ([], reason)
    why = _bf16_isa(cpu)
    ov = [(e, env) for e, env in eps if e == OV_EP]
    if why is None and not ov:
        why = (
            "bf16 runs through the OpenVINO EP, which is neither in this ONNX Runtime build nor "
            "in a registered environment (aia env create openvino --package onnxruntime-openvino)"
        )
    out["bf16"] = ([], why) if why else (ov, None)
    if gpu_like:
        out["fp16"] = (gpu_like, None)
    else:
        out["fp16"] = (
            [],
            "fp16 runs on GPUs, and no GPU execution provider is usable here "
            f"(usable: {', '.join(sorted({e for e, _ in eps}))})",
        )
    return out


def default_precisions(inventory: Any) -> list[str]:
    """The int8 variants worth trying on this ISA, as optimum's presets pick them.

    VNNI (or ARM64) makes QInt8 weights fast; plain AVX2 without VNNI saturates with
    QInt8 x QUInt8 products, so QUInt8 weights are tried there too.
    """
    cpu = inventory.cpu
    out = ["fp32", "int8-dynamic", "int8-dynamic-tensor"]
    if not (cpu.has("avx512_vnni") or cpu.has("avx_vnni")) and cpu.has("avx2"):
        out.append("int8-dynamic-u8")
    out += ["int8-static", "bf16", "fp16"]
    return out


# ----------------------------------------------------------------------------- space

_BACKEND_ORDER = {
    name: i
    for i, name in enumerate(
        (
            "fp32",
            "int8-dynamic",
            "bf16",
            "fp16",
            "int8-static",
            "int8-dynamic-u8",
            "int8-dynamic-tensor",
        )
    )
}


def thread_counts(physical: int | None, logical: int | None) -> list[int]:
    """0 (ORT's default), 1, the physical and logical counts, and powers of two between."""
    logical = logical or physical or 1
    physical = physical or logical
    values = {0, 1, physical, logical}
    v = 2
    while v < physical:
        values.add(v)
        v *= 2
    if physical >= 8:
        values.add(physical // 2 + physical // 4)  # 3/4 of the cores
    return sorted(values)


def build_space(
    inventory: Any,
    eps: Sequence[tuple[str, str | None]],
    *,
    objective: str = "latency",
    precisions: Sequence[str] | None = None,
    threads: Sequence[int] | None = None,
    busy: bool = False,
    static_batch: bool = False,
) -> Space:
    """The dimensions this machine offers, narrowed by --ep/--threads/--precision.

    ``eps``: (EP, environment name or None) pairs usable here and in registered
    environments. An explicitly asked precision the machine cannot run exits 2.
    """
    if objective not in OBJECTIVES:
        raise BadInputError(f"--objective must be latency or throughput, got '{objective}'")
    support = precision_support(inventory, eps)
    notes: list[str] = []
    skipped: dict[str, str] = {}
    asked = precisions is not None
    wanted = list(precisions) if asked else default_precisions(inventory)
    backends: list[Backend] = []
    for name in wanted:
        if name.startswith("variant:"):  # a profile's own variant: a model for the CPU EP
            if any(e == CPU_EP for e, _ in eps):
                backends.append(Backend(CPU_EP, None, name))
            continue
        usable, why = support[name]
        if not usable:
            if asked:
                raise BadInputError(f"--precision {name}: this machine cannot run it: {why}")
            skipped[name] = why or "no usable EP"
            continue
        for ep, env in usable:
            backends.append(Backend(ep, env, name))
    if not backends:
        raise BadInputError("nothing to tune: no EP here can run the precisions asked for")
    # The ones likeliest to win first, so that a short budget tries them: int8 and bf16
    # halve the latency where the ISA has them; per-tensor int8 and u8 weights rarely win.
    backends.sort(key=lambda b: _BACKEND_ORDER.get(b.precision, len(_BACKEND_ORDER)))
    cpu = inventory.cpu
    th = (
        list(threads)
        if threads is not None
        else thread_counts(cpu.physical_cores, cpu.logical_cores)
    )
    logical = cpu.logical_cores or 1
    spinning: list[bool | None] = [False, None] if busy else [None, False]
    opt_levels = ["all", "extended", "basic"]
    # Parallel execution only pays with cores to spare for independent branches.
    execution = [("sequential", 0)]
    if logical >= 4:
        execution.append(("parallel", 2))
    batches: list[int | None] = [None]
    ov_hints: list[str | None] = [None]
    if objective == "throughput":
        if not static_batch:
            batches = [None, 4, 8, 16, 32]
        else:
            notes.append("the model's batch dimension is fixed: batch sizes are not searched")
        if any(b.ep == OV_EP for b in backends):
            ov_hints = [None, "THROUGHPUT", "LATENCY"]
    elif any(b.ep == OV_EP for b in backends):
        ov_hints = [None, "LATENCY"]
    return Space(
        backends=backends,
        threads=th,
        spinning=spinning,
        opt_levels=opt_levels,
        execution=execution,
        batches=batches,
        ov_hints=ov_hints,
        notes=notes,
        skipped_precisions=skipped,
    )


def usable_eps(
    here: Sequence[str], envs: Sequence[Any], wanted: Sequence[str] | None = None
) -> list[tuple[str, str | None]]:
    """(EP, env) pairs: each EP of this build once, then those only environments offer."""
    out: list[tuple[str, str | None]] = [(e, None) for e in here]
    seen = set(here)
    for env in envs:
        if env.problem() is not None:
            continue
        for e in env.providers:
            if e not in seen:
                out.append((e, env.name))
                seen.add(e)
    out = [(e, env) for e, env in out if e != "AzureExecutionProvider"]
    if wanted:
        have = {e for e, _ in out}
        for w in wanted:
            if w not in have:
                from aialliance_cli.errors import UnavailableError
                from aialliance_cli.providers.catalogue import install_hint

                raise UnavailableError(
                    f"--ep {w}: not usable here ({', '.join(here)}) nor in a registered "
                    f"environment (aia env list). {install_hint(w) or ''}".strip()
                )
        out = [(e, env) for e, env in out if e in wanted]
    return out
