"""The inventory of a machine: plain, frozen, JSON-serialisable data.

Probes (cpu.py, memory.py, pci.py, vendor.py, software.py) fill these; the
planner and the results read them. Nothing here touches the machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CpuVendor = Literal["intel", "amd", "arm", "other"]
DeviceVendor = Literal["intel", "amd", "nvidia", "qualcomm", "apple", "other"]
DeviceKind = Literal["gpu", "npu"]


@dataclass(frozen=True)
class CacheInfo:
    level: int
    type: str  # "Data", "Instruction", "Unified"
    size_bytes: int | None
    shared_by: int | None = None  # logical CPUs sharing one instance


@dataclass(frozen=True)
class CpuInfo:
    vendor: CpuVendor
    model_name: str
    architecture: str  # x86_64, aarch64, ...
    physical_cores: int | None
    logical_cores: int | None
    sockets: int | None
    numa_nodes: int | None
    caches: tuple[CacheInfo, ...] = ()
    base_mhz: float | None = None
    max_mhz: float | None = None
    # The ISA features that matter for inference, in a fixed vocabulary
    # (sse4.2, avx, avx2, fma, f16c, avx512f, ..., neon, sve, i8mm, bf16).
    features: tuple[str, ...] = ()
    governor: str | None = None  # cpufreq scaling governor, where readable
    # /proc/cpuinfo's "cpu MHz": the only clock a VM without cpufreq shows (a current value).
    cpuinfo_mhz: float | None = None

    def has(self, feature: str) -> bool:
        return feature in self.features


@dataclass(frozen=True)
class MemoryInfo:
    total_bytes: int | None
    available_bytes: int | None


@dataclass(frozen=True)
class Accelerator:
    """A GPU or NPU found through the OS, optionally enriched by a vendor library."""

    kind: DeviceKind
    vendor: DeviceVendor
    name: str
    pci_address: str | None = None  # 0000:03:00.0
    vendor_id: str | None = None  # "0x10de"
    device_id: str | None = None
    pci_class: str | None = None  # "0x030000"
    driver: str | None = None  # kernel driver: i915, xe, amdgpu, nvidia, intel_vpu, amdxdna
    device_nodes: tuple[str, ...] = ()  # /dev/dri/renderD128, /dev/kfd, /dev/accel/accel0
    memory_bytes: int | None = None
    driver_version: str | None = None
    architecture: str | None = None  # gfx1100, sm_90, ...
    integrated: bool | None = None
    sources: tuple[str, ...] = ("sysfs",)  # where the facts came from

    @property
    def usable_driver(self) -> bool:
        """True when a kernel driver is bound (the device can be used at all)."""
        return bool(self.driver)


@dataclass(frozen=True)
class OrtDistribution:
    name: str  # onnxruntime, onnxruntime-openvino, onnxruntime-ep-openvino, ...
    version: str
    plugin: bool = False  # a plugin EP package (installs beside onnxruntime)


@dataclass(frozen=True)
class SoftwareInfo:
    os: str  # Linux, Windows, Darwin
    os_release: str  # "Debian GNU/Linux 12 (bookworm)" or platform.release()
    kernel: str | None
    python: str
    ort_version: str | None  # None when onnxruntime cannot be imported
    ort_distributions: tuple[OrtDistribution, ...] = ()
    available_providers: tuple[str, ...] = ()
    ort_error: str | None = None  # why onnxruntime could not be imported


@dataclass(frozen=True)
class ProbeNote:
    """Something a probe could not read, and why (never raised to the user)."""

    probe: str
    message: str


@dataclass(frozen=True)
class Inventory:
    cpu: CpuInfo
    memory: MemoryInfo
    accelerators: tuple[Accelerator, ...]
    software: SoftwareInfo
    hostname: str | None = None
    notes: tuple[ProbeNote, ...] = field(default_factory=tuple)

    @property
    def gpus(self) -> tuple[Accelerator, ...]:
        return tuple(a for a in self.accelerators if a.kind == "gpu")

    @property
    def npus(self) -> tuple[Accelerator, ...]:
        return tuple(a for a in self.accelerators if a.kind == "npu")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["cpu"].get("cpuinfo_mhz") is None:  # added later: absent, as older records have it
            d["cpu"].pop("cpuinfo_mhz", None)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inventory:
        """Rebuild an inventory from ``to_dict()`` output (result files, fixtures)."""
        cpu = dict(data["cpu"])
        cpu["caches"] = tuple(CacheInfo(**c) for c in cpu.get("caches", ()))
        cpu["features"] = tuple(cpu.get("features", ()))
        return cls(
            cpu=CpuInfo(**cpu),
            memory=MemoryInfo(**data["memory"]),
            accelerators=tuple(accelerator_from_dict(a) for a in data.get("accelerators", ())),
            software=software_from_dict(data["software"]),
            hostname=data.get("hostname"),
            notes=tuple(ProbeNote(**n) for n in data.get("notes", ())),
        )


def accelerator_from_dict(data: dict[str, Any]) -> Accelerator:
    a = dict(data)
    a["device_nodes"] = tuple(a.get("device_nodes", ()))
    a["sources"] = tuple(a.get("sources", ()))
    return Accelerator(**a)


def software_from_dict(data: dict[str, Any]) -> SoftwareInfo:
    sw = dict(data)
    sw["ort_distributions"] = tuple(OrtDistribution(**d) for d in sw.get("ort_distributions", ()))
    sw["available_providers"] = tuple(sw.get("available_providers", ()))
    return SoftwareInfo(**sw)
