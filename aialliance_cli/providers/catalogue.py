"""The execution providers (EPs) aia knows: a data table, no logic beyond lookups.

Each ``EpSpec`` says which hardware an EP serves (``Target``: device kind,
vendor, score), on which operating systems, which pip packages provide it, and
the provider options aia starts from. The planner (planner.py) reads this table;
``resolve_ep_name`` turns what a user typed (``cuda``, ``OV``, ``DmlExecutionProvider``)
into the canonical ONNX Runtime name.

Scores: higher is better. Accelerator targets sit at 40-100, CPU-side targets
at 5-30 and the CPU EP at 0, so an accelerator always outranks a CPU-side EP.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from aialliance_cli.errors import UnknownProviderError

TargetKind = Literal["cpu", "gpu", "npu"]

RYZEN_AI_URL = "https://ryzenai.docs.amd.com/en/latest/inst.html"


@dataclass(frozen=True)
class Target:
    """One kind of hardware an EP serves.

    For ``kind="cpu"`` the vendor is the CPU vendor of the inventory
    ("intel", "amd", "arm", "any"); for GPUs and NPUs it is the accelerator's
    vendor ("nvidia", "amd", "intel", "qualcomm", "apple", "any").
    Option values may hold ``{index}``: the device's ordinal among the
    accelerators of that kind and vendor (CUDA's device_id, OpenVINO's GPU.N),
    or ``{kind_index}``: its ordinal among all devices of that kind (DirectML
    numbers every adapter).
    """

    kind: TargetKind
    vendor: str
    score: int
    options: tuple[tuple[str, str], ...] = ()
    requires: tuple[str, ...] = ()  # CPU features the target needs (e.g. "avx2")
    architectures: tuple[str, ...] = ()  # CPU architectures; empty = any
    note: str = ""  # appended to the choice's reason
    # Whether aia suggests installing this EP for such hardware when it is
    # missing (False where a broader or better-supported EP is the advice).
    suggest: bool = True

    def default_options(
        self, index: int = 0, *, several: bool = False, kind_index: int | None = None
    ) -> dict[str, str]:
        """Provider options for the device with this ordinal."""
        out = {}
        for key, value in self.options:
            if "{gpu_suffix}" in value:
                # OpenVINO names one GPU "GPU" and several "GPU.0", "GPU.1".
                value = value.replace("{gpu_suffix}", f".{index}" if several else "")
            value = value.replace("{kind_index}", str(index if kind_index is None else kind_index))
            out[key] = value.replace("{index}", str(index))
        return out


@dataclass(frozen=True)
class EpSpec:
    """What aia knows about one execution provider."""

    name: str  # canonical ONNX Runtime name
    short: tuple[str, ...]  # short names; the first is the one aia prints
    summary: str
    targets: tuple[Target, ...]
    hardware: str  # what the EP needs, in words ("an NVIDIA GPU with CUDA 12")
    absent: str  # the passed-over reason when that hardware is missing ("no NVIDIA GPU")
    os: tuple[str, ...] = ()  # platform.system() values; empty = any
    full_builds: tuple[str, ...] = ()  # pip packages that are a whole ORT build with this EP
    plugin_packages: tuple[str, ...] = ()  # pip packages that install beside onnxruntime>=1.23
    install_note: str = ""  # how to get it where pip does not (VitisAI, ROCm)
    install_url: str | None = None
    remote: bool = False  # runs off the machine; never planned for local runs

    @property
    def primary_short(self) -> str:
        return self.short[0]

    def targets_for(self, kind: str) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.kind == kind)


def _opt(**kwargs: str) -> tuple[tuple[str, str], ...]:
    return tuple(kwargs.items())


_X86 = ("x86_64", "amd64", "i686", "x86")
_ARM = ("aarch64", "arm64", "armv8l", "armv7l")

CATALOGUE: tuple[EpSpec, ...] = (
    EpSpec(
        name="NvTensorRTRTXExecutionProvider",
        short=("trt-rtx", "nv", "nvtensorrtrtx", "tensorrt-rtx"),
        summary="NVIDIA TensorRT for RTX: builds TensorRT engines on RTX GPUs (Ampere and later)",
        targets=(Target("gpu", "nvidia", 100, _opt(device_id="{index}"), suggest=False),),
        hardware="an NVIDIA RTX GPU (Ampere or later) with the NVIDIA driver",
        absent="no NVIDIA GPU",
        os=("Windows", "Linux"),
        plugin_packages=("onnxruntime-ep-nv-tensorrt-rtx",),
    ),
    EpSpec(
        name="TensorrtExecutionProvider",
        short=("tensorrt", "trt"),
        summary="NVIDIA TensorRT: compiles subgraphs into TensorRT engines",
        targets=(Target("gpu", "nvidia", 95, _opt(device_id="{index}"), suggest=False),),
        hardware="an NVIDIA GPU with CUDA, cuDNN and TensorRT libraries",
        absent="no NVIDIA GPU",
        os=("Windows", "Linux"),
        full_builds=("onnxruntime-gpu",),
        install_note="also needs the TensorRT libraries (pip install tensorrt)",
    ),
    EpSpec(
        name="CUDAExecutionProvider",
        short=("cuda",),
        summary="NVIDIA CUDA and cuDNN kernels",
        targets=(Target("gpu", "nvidia", 90, _opt(device_id="{index}")),),
        hardware="an NVIDIA GPU with the NVIDIA driver and CUDA/cuDNN libraries",
        absent="no NVIDIA GPU",
        os=("Windows", "Linux"),
        full_builds=("onnxruntime-gpu",),
    ),
    EpSpec(
        name="MIGraphXExecutionProvider",
        short=("migraphx",),
        summary="AMD MIGraphX graph compiler on ROCm",
        targets=(Target("gpu", "amd", 90, _opt(device_id="{index}")),),
        hardware="an AMD GPU supported by ROCm, with the amdgpu driver and /dev/kfd",
        absent="no AMD GPU",
        os=("Linux", "Windows"),
        full_builds=("onnxruntime-migraphx",),
    ),
    EpSpec(
        name="ROCMExecutionProvider",
        short=("rocm",),
        summary="AMD ROCm kernels (removed from ONNX Runtime 1.23; MIGraphX replaces it)",
        targets=(Target("gpu", "amd", 85, _opt(device_id="{index}"), suggest=False),),
        hardware="an AMD GPU supported by ROCm, with the amdgpu driver and /dev/kfd",
        absent="no AMD GPU",
        os=("Linux",),
        full_builds=("onnxruntime-rocm",),
        install_note="ONNX Runtime 1.23 dropped the ROCm EP; prefer onnxruntime-migraphx",
    ),
    EpSpec(
        name="OpenVINOExecutionProvider",
        short=("openvino", "ov"),
        summary="Intel OpenVINO on Intel CPUs, GPUs and NPUs",
        targets=(
            Target("gpu", "intel", 90, _opt(device_type="GPU{gpu_suffix}")),
            Target("npu", "intel", 85, _opt(device_type="NPU")),
            Target(
                "cpu",
                "intel",
                30,
                _opt(device_type="CPU"),
                architectures=_X86,
                note="OpenVINO's CPU plugin is built for Intel CPUs",
            ),
            # Decision: OpenVINO's CPU plugin runs on any x86-64 CPU with AVX2
            # (seen on this project's AMD EPYC), but Intel supports it on Intel
            # CPUs only, so elsewhere it ranks lowest of the CPU-side EPs and
            # aia never suggests installing it for a non-Intel CPU.
            Target(
                "cpu",
                "any",
                10,
                _opt(device_type="CPU"),
                requires=("avx2",),
                architectures=_X86,
                note="runs on this non-Intel x86-64 CPU with AVX2, "
                "though Intel supports it on Intel CPUs only",
                suggest=False,
            ),
        ),
        hardware="an Intel CPU, GPU (i915/xe driver) or NPU (intel_vpu driver); "
        "its CPU device also runs on other x86-64 CPUs with AVX2",
        absent="no Intel GPU or NPU and no x86-64 CPU with AVX2",
        os=("Linux", "Windows"),
        full_builds=("onnxruntime-openvino",),
        plugin_packages=("onnxruntime-ep-openvino",),
    ),
    EpSpec(
        name="DmlExecutionProvider",
        short=("dml", "directml"),
        summary="DirectML on any DirectX 12 GPU (Windows)",
        targets=(
            Target("gpu", "nvidia", 60, _opt(device_id="{kind_index}")),
            Target("gpu", "amd", 60, _opt(device_id="{kind_index}")),
            Target("gpu", "intel", 60, _opt(device_id="{kind_index}")),
            Target("gpu", "qualcomm", 60, _opt(device_id="{kind_index}")),
        ),
        hardware="a DirectX 12 GPU on Windows",
        absent="no GPU",
        os=("Windows",),
        full_builds=("onnxruntime-directml",),
    ),
    EpSpec(
        name="VitisAIExecutionProvider",
        short=("vitisai", "ryzenai"),
        summary="AMD Vitis AI on Ryzen AI NPUs (XDNA)",
        targets=(Target("npu", "amd", 85),),
        hardware="an AMD Ryzen AI NPU with the amdxdna driver (Linux) or the NPU driver (Windows)",
        absent="no AMD NPU",
        os=("Windows", "Linux"),
        install_note=f"install AMD's Ryzen AI Software ({RYZEN_AI_URL}); it brings its own "
        "onnxruntime build with the VitisAI EP",
        install_url=RYZEN_AI_URL,
    ),
    EpSpec(
        name="QNNExecutionProvider",
        short=("qnn",),
        summary="Qualcomm AI Engine Direct (QNN) on Snapdragon NPUs (HTP) and GPUs",
        targets=(
            Target("npu", "qualcomm", 85, _opt(backend_type="htp")),
            Target("gpu", "qualcomm", 65, _opt(backend_type="gpu")),
        ),
        hardware="a Qualcomm Snapdragon NPU (Hexagon HTP) or Adreno GPU",
        absent="no Qualcomm NPU or GPU",
        # onnxruntime-qnn 1.x was a full build; 2.x installs as a plugin EP.
        plugin_packages=("onnxruntime-qnn",),
    ),
    EpSpec(
        name="CoreMLExecutionProvider",
        short=("coreml",),
        summary="Apple Core ML on Apple GPUs and the Neural Engine",
        targets=(
            Target("gpu", "apple", 90, _opt(MLComputeUnits="ALL")),
            Target("npu", "apple", 85, _opt(MLComputeUnits="CPUAndNeuralEngine")),
        ),
        hardware="an Apple silicon Mac",
        absent="no Apple GPU or Neural Engine",
        os=("Darwin",),
        full_builds=("onnxruntime",),
    ),
    EpSpec(
        name="WebGpuExecutionProvider",
        short=("webgpu",),
        summary="WebGPU (Dawn) on Vulkan, Metal or DirectX 12 GPUs",
        # Known GPU vendors only: a server's BMC display adapter (ASPEED, Matrox)
        # is a "gpu" to the PCI class but no place to run a model.
        targets=tuple(
            Target("gpu", v, 40, suggest=False)
            for v in ("nvidia", "amd", "intel", "qualcomm", "apple")
        ),
        hardware="a GPU with a Vulkan, Metal or DirectX 12 driver",
        absent="no GPU",
        full_builds=("onnxruntime-webgpu",),
        plugin_packages=("onnxruntime-ep-webgpu",),
    ),
    EpSpec(
        name="XnnpackExecutionProvider",
        short=("xnnpack",),
        summary="XNNPACK's optimised CPU kernels (Arm first)",
        targets=(Target("cpu", "arm", 25, architectures=_ARM),),
        hardware="an Arm CPU (NEON)",
        absent="no Arm CPU",
    ),
    EpSpec(
        name="ACLExecutionProvider",
        short=("acl",),
        summary="Arm Compute Library kernels",
        targets=(Target("cpu", "arm", 20, architectures=_ARM),),
        hardware="an Arm CPU (NEON)",
        absent="no Arm CPU",
        os=("Linux",),
    ),
    EpSpec(
        name="CPUExecutionProvider",
        short=("cpu",),
        summary="ONNX Runtime's default CPU kernels (MLAS); always present, always the last resort",
        targets=(Target("cpu", "any", 0),),
        hardware="any CPU",
        absent="no CPU",
        full_builds=("onnxruntime",),
    ),
    EpSpec(
        name="AzureExecutionProvider",
        short=("azure",),
        summary="Calls a model hosted on Azure; a remote endpoint, not local hardware",
        targets=(),
        hardware="a remote endpoint",
        absent="remote",
        remote=True,
    ),
)

CPU_EP = "CPUExecutionProvider"

_BY_NAME: dict[str, EpSpec] = {spec.name: spec for spec in CATALOGUE}


def _aliases() -> dict[str, str]:
    """Lower-case alias -> canonical name (canonical, short names, name without the suffix)."""
    out: dict[str, str] = {}
    for spec in CATALOGUE:
        out[spec.name.lower()] = spec.name
        out[spec.name.lower().removesuffix("executionprovider")] = spec.name
        for s in spec.short:
            out[s.lower()] = spec.name
    return out


_ALIASES = _aliases()


def known_short_names() -> tuple[str, ...]:
    """The primary short name of every EP, in catalogue order."""
    return tuple(spec.primary_short for spec in CATALOGUE)


def resolve_ep_name(name: str) -> str:
    """Canonical EP name for a canonical or short name, case-insensitively.

    Raises UnknownProviderError (exit 2) with a did-you-mean and the known short names.
    """
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    close = difflib.get_close_matches(key, list(_ALIASES), n=1, cutoff=0.6)
    hint = ""
    if close:
        canonical = _ALIASES[close[0]]
        hint = f" Did you mean '{_BY_NAME[canonical].primary_short}' ({canonical})?"
    raise UnknownProviderError(
        f"Unknown execution provider '{name}'.{hint} "
        f"Known short names: {', '.join(known_short_names())}; "
        "canonical ONNX Runtime names (e.g. CUDAExecutionProvider) work too."
    )


def get_spec(name: str) -> EpSpec:
    """The catalogue entry for a canonical or short name (UnknownProviderError if none)."""
    return _BY_NAME[resolve_ep_name(name)]


def find_spec(canonical: str) -> EpSpec | None:
    """The catalogue entry for an exact canonical name, or None (no error)."""
    return _BY_NAME.get(canonical)


def short_name(canonical: str) -> str:
    """The short name aia prints for an EP ("cuda" for CUDAExecutionProvider).

    Names outside the catalogue (a third-party plugin EP) come back unchanged.
    """
    spec = _BY_NAME.get(canonical)
    if spec is None and canonical.lower() in _ALIASES:
        spec = _BY_NAME[_ALIASES[canonical.lower()]]
    return spec.primary_short if spec else canonical


def install_hint(name: str) -> str | None:
    """One sentence on how to get an EP (no machine facts: the plan's Unlock is exact).

    None for a name outside the catalogue and for EPs that need no install.
    """
    spec = _BY_NAME.get(name) or (
        _BY_NAME[_ALIASES[name.lower()]] if name.lower() in _ALIASES else None
    )
    if spec is None or spec.name == CPU_EP or spec.remote:
        return None
    parts = []
    if spec.full_builds:
        pkg = spec.full_builds[0]
        parts.append(
            f"Install the full build {pkg} (pip uninstall -y onnxruntime && pip install {pkg}; "
            "full builds share one module, so keep only one)"
        )
    if spec.plugin_packages:
        pkg = spec.plugin_packages[0]
        lead = "or" if parts else "Install"
        parts.append(f"{lead} the plugin EP {pkg} beside onnxruntime >= 1.23 (pip install {pkg})")
    if spec.install_note:
        parts.append(
            spec.install_note[0].upper() + spec.install_note[1:] if not parts else spec.install_note
        )
    if not parts:
        return f"{spec.name} needs an ONNX Runtime built with it; no pip package provides it."
    return "; ".join(parts) + "."
