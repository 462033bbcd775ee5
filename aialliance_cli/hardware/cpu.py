"""The CPU probe: /proc/cpuinfo and /sys/devices/system/{cpu,node} under a root.

Tests hand it a fake tree (tests/fixtures/machines/). On a machine without
/proc/cpuinfo (Windows, macOS) it falls back to ``platform``, ``os.cpu_count``
and psutil, but only when the root is the live "/". It never raises: what it
cannot read becomes a ProbeNote.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable
from pathlib import Path

from aialliance_cli.hardware.inventory import CacheInfo, CpuInfo, CpuVendor, ProbeNote

PROBE = "cpu"

# cpuinfo flag -> aia feature name, in the order the inventory lists them.
X86_FEATURES: tuple[tuple[str, str], ...] = (
    ("sse4_2", "sse4.2"),
    ("avx", "avx"),
    ("avx2", "avx2"),
    ("fma", "fma"),
    ("f16c", "f16c"),
    ("avx512f", "avx512f"),
    ("avx512_vnni", "avx512_vnni"),
    ("avx512_bf16", "avx512_bf16"),
    ("avx512_fp16", "avx512_fp16"),
    ("avx_vnni", "avx_vnni"),
    ("amx_tile", "amx_tile"),
    ("amx_int8", "amx_int8"),
    ("amx_bf16", "amx_bf16"),
)
ARM_FEATURES: tuple[tuple[str, str], ...] = (
    ("asimd", "neon"),
    ("sve", "sve"),
    ("sve2", "sve2"),
    ("i8mm", "i8mm"),
    ("bf16", "bf16"),
    ("asimddp", "dotprod"),
)

X86_VENDORS: dict[str, CpuVendor] = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}

# MIDR implementer -> name, and (implementer, part) -> core name, for Arm
# servers and laptops whose /proc/cpuinfo has no "model name".
ARM_IMPLEMENTERS = {
    0x41: "Arm",
    0x42: "Broadcom",
    0x46: "Fujitsu",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x51: "Qualcomm",
    0x61: "Apple",
    0xC0: "Ampere",
}
ARM_PARTS = {
    (0x41, 0xD08): "Cortex-A72",
    (0x41, 0xD0B): "Cortex-A76",
    (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4F): "Neoverse-V2",
    (0x41, 0xD84): "Neoverse-V3",
    (0x41, 0xD8E): "Neoverse-N3",
    (0xC0, 0xAC3): "Ampere-1",
    (0xC0, 0xAC4): "Ampere-1a",
}

_GHZ_IN_NAME = re.compile(r"@\s*([0-9.]+)\s*GHz", re.IGNORECASE)


def is_live_root(root: str | Path) -> bool:
    """True when ``root`` is this machine's own filesystem root."""
    try:
        return Path(root).resolve() == Path(os.sep).resolve()
    except OSError:
        return False


def read_text(path: Path) -> str | None:
    """The stripped text of a small sysfs/procfs file, or None if unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except (OSError, ValueError):
        return None


def parse_cpu_list(text: str | None) -> list[int]:
    """Parse a kernel CPU list such as ``0-3,8,10-11`` (empty on bad input)."""
    cpus: list[int] = []
    if not text:
        return cpus
    try:
        for part in text.strip().split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                lo, hi = part.split("-", 1)
                cpus.extend(range(int(lo), int(hi) + 1))
            else:
                cpus.append(int(part))
    except ValueError:
        return []
    return cpus


def parse_size(text: str | None) -> int | None:
    """Parse a sysfs cache size (``48K``, ``2048K``, ``32M``) into bytes."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        return None
    scale = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2).upper()]
    return int(m.group(1)) * scale


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """Split /proc/cpuinfo into one dict per block (keys as the kernel writes them)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def map_features(tokens: Iterable[str], table: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    present = set(tokens)
    return tuple(name for flag, name in table if flag in present)


def probe_cpu(root: str | Path = "/") -> tuple[CpuInfo, list[ProbeNote]]:
    """Describe the CPU of the machine whose filesystem starts at ``root``."""
    root = Path(root)
    notes: list[ProbeNote] = []
    try:
        return _probe(root, notes), notes
    except Exception as exc:  # a probe must never take `aia detect` down
        notes.append(ProbeNote(PROBE, f"CPU probe failed: {type(exc).__name__}: {exc}"))
        return _unknown_cpu(), notes


def _unknown_cpu() -> CpuInfo:
    return CpuInfo(
        vendor="other",
        model_name="unknown",
        architecture="unknown",
        physical_cores=None,
        logical_cores=None,
        sockets=None,
        numa_nodes=None,
    )


def _probe(root: Path, notes: list[ProbeNote]) -> CpuInfo:
    cpuinfo_path = root / "proc" / "cpuinfo"
    text = read_text(cpuinfo_path)
    if text is None:
        if is_live_root(root):
            notes.append(
                ProbeNote(PROBE, "/proc/cpuinfo is not readable; CPU facts come from platform")
            )
            return _from_platform()
        notes.append(ProbeNote(PROBE, f"{cpuinfo_path} is missing or unreadable"))
        return _unknown_cpu()

    blocks = parse_cpuinfo(text)
    # On Arm the per-processor blocks may be followed by a global block.
    procs = [b for b in blocks if "processor" in b and b["processor"].isdigit()]
    first = procs[0] if procs else (blocks[0] if blocks else {})
    merged = {k: v for b in reversed(blocks) for k, v in b.items()} | first

    if "flags" in merged:
        vendor = X86_VENDORS.get(merged.get("vendor_id", ""), "other")
        architecture = "x86_64" if "lm" in merged.get("flags", "").split() else "i686"
        features = map_features(merged.get("flags", "").split(), X86_FEATURES)
        model_name = merged.get("model name") or "unknown x86 CPU"
    elif "CPU implementer" in merged or "Features" in merged:
        vendor = "arm"
        arch_field = merged.get("CPU architecture", "8")
        architecture = "aarch64" if arch_field.startswith(("8", "9", "AArch64")) else "armv7l"
        features = map_features(merged.get("Features", "").split(), ARM_FEATURES)
        model_name = _arm_model_name(root, merged)
    else:
        notes.append(ProbeNote(PROBE, f"{cpuinfo_path} has neither x86 flags nor Arm features"))
        vendor, architecture, features = "other", "unknown", ()
        model_name = merged.get("model name") or merged.get("cpu model") or "unknown"
    if is_live_root(root):
        architecture = platform.machine() or architecture

    physical, logical, sockets = _topology(root, procs, notes)
    base_mhz, max_mhz, governor = _frequencies(root, model_name)
    try:
        cpuinfo_mhz: float | None = float(merged.get("cpu MHz", ""))
    except ValueError:
        cpuinfo_mhz = None
    return CpuInfo(
        vendor=vendor,
        model_name=model_name,
        architecture=architecture,
        physical_cores=physical,
        logical_cores=logical,
        sockets=sockets,
        numa_nodes=_numa_nodes(root),
        caches=_caches(root),
        base_mhz=base_mhz,
        max_mhz=max_mhz,
        features=features,
        governor=governor,
        cpuinfo_mhz=cpuinfo_mhz if cpuinfo_mhz and cpuinfo_mhz > 0 else None,
    )


def _arm_model_name(root: Path, info: dict[str, str]) -> str:
    impl = _hex(info.get("CPU implementer"))
    part = _hex(info.get("CPU part"))
    if impl is None or part is None:
        midr = _hex(read_text(root / "sys/devices/system/cpu/cpu0/regs/identification/midr_el1"))
        if midr is not None:
            impl, part = (midr >> 24) & 0xFF, (midr >> 4) & 0xFFF
    if impl is not None and part is not None and (impl, part) in ARM_PARTS:
        return f"{ARM_IMPLEMENTERS.get(impl, 'Arm')} {ARM_PARTS[(impl, part)]}"
    if info.get("model name"):
        return info["model name"]
    dt_model = read_text(root / "proc/device-tree/model")
    if dt_model:
        return dt_model.rstrip("\x00")
    if impl is not None:
        maker = ARM_IMPLEMENTERS.get(impl, f"implementer {impl:#04x}")
        return f"{maker} CPU (part {part:#05x})" if part is not None else f"{maker} CPU"
    return "unknown Arm CPU"


def _hex(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text.strip(), 16)
    except ValueError:
        return None


def _topology(
    root: Path, procs: list[dict[str, str]], notes: list[ProbeNote]
) -> tuple[int | None, int | None, int | None]:
    """(physical cores, logical CPUs, sockets), from sysfs, else from cpuinfo."""
    cpu_dir = root / "sys/devices/system/cpu"
    online = parse_cpu_list(read_text(cpu_dir / "online"))
    if not online:
        online = sorted(
            int(p.name[3:])
            for p in _iterdir(cpu_dir)
            if p.name.startswith("cpu") and p.name[3:].isdigit()
        )
    cores: set[tuple[str, str, str]] = set()
    packages: set[str] = set()
    complete = bool(online)
    for n in online:
        topo = cpu_dir / f"cpu{n}" / "topology"
        pkg = read_text(topo / "physical_package_id")
        core = read_text(topo / "core_id")
        if pkg is None or core is None:
            complete = False
            break
        # -1 means "unknown" on some Arm firmware: treat it as one package.
        pkg = "0" if pkg == "-1" else pkg
        die = read_text(topo / "die_id") or "0"
        cores.add((pkg, die, core))
        packages.add(pkg)
    if complete:
        return len(cores), len(online), len(packages)

    # No sysfs topology (containers, old kernels): x86 cpuinfo has the same facts.
    logical = len(online) or len(procs) or None
    phys_ids = {b["physical id"] for b in procs if "physical id" in b}
    per_pkg = procs[0].get("cpu cores") if procs else None
    if phys_ids and per_pkg and per_pkg.isdigit():
        return len(phys_ids) * int(per_pkg), logical, len(phys_ids)
    if logical is not None:
        notes.append(
            ProbeNote(PROBE, "CPU topology is not readable; physical cores and sockets unknown")
        )
    return None, logical, None


def _iterdir(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def _caches(root: Path) -> tuple[CacheInfo, ...]:
    cache_dir = root / "sys/devices/system/cpu/cpu0/cache"
    indexes = sorted(
        (p for p in _iterdir(cache_dir) if p.name.startswith("index") and p.name[5:].isdigit()),
        key=lambda p: int(p.name[5:]),
    )
    caches = []
    for idx in indexes:
        level = read_text(idx / "level")
        if not level or not level.isdigit():
            continue
        shared = parse_cpu_list(read_text(idx / "shared_cpu_list"))
        caches.append(
            CacheInfo(
                level=int(level),
                type=read_text(idx / "type") or "Unified",
                size_bytes=parse_size(read_text(idx / "size")),
                shared_by=len(shared) or None,
            )
        )
    return tuple(caches)


def _frequencies(root: Path, model_name: str) -> tuple[float | None, float | None, str | None]:
    """(base MHz, max MHz, governor) from cpufreq; base falls back to "@ 2.30GHz"."""
    cpu_dir = root / "sys/devices/system/cpu"
    dirs = [cpu_dir / "cpufreq" / "policy0", cpu_dir / "cpu0" / "cpufreq"]

    def first(name: str) -> str | None:
        for d in dirs:
            value = read_text(d / name)
            if value:
                return value
        return None

    def khz_to_mhz(text: str | None) -> float | None:
        return int(text) / 1000.0 if text and text.isdigit() else None

    base = khz_to_mhz(first("base_frequency"))
    if base is None:
        m = _GHZ_IN_NAME.search(model_name)
        base = float(m.group(1)) * 1000.0 if m else None
    return base, khz_to_mhz(first("cpuinfo_max_freq")), first("scaling_governor")


def _numa_nodes(root: Path) -> int | None:
    nodes = [
        p
        for p in _iterdir(root / "sys/devices/system/node")
        if p.name.startswith("node") and p.name[4:].isdigit()
    ]
    return len(nodes) or None


def _from_platform() -> CpuInfo:
    """Best effort on Windows/macOS: names and counts, features unknown."""
    machine = platform.machine() or "unknown"
    arch = {"AMD64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}.get(machine, machine)
    name = _platform_cpu_name() or platform.processor() or "unknown"
    lowered = name.lower()
    vendor: CpuVendor
    if arch == "aarch64":
        vendor = "arm"
    elif "intel" in lowered or "genuineintel" in lowered:
        vendor = "intel"
    elif "amd" in lowered or "authenticamd" in lowered:
        vendor = "amd"
    else:
        vendor = "other"
    physical: int | None = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:
        physical = None
    return CpuInfo(
        vendor=vendor,
        model_name=name,
        architecture=arch,
        physical_cores=physical,
        logical_cores=os.cpu_count(),
        sockets=None,
        numa_nodes=None,
        # Every AArch64 CPU has Advanced SIMD; nothing else is knowable here.
        features=("neon",) if arch == "aarch64" else (),
    )


def _platform_cpu_name() -> str | None:
    system = platform.system()
    try:
        if system == "Darwin":
            import subprocess

            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            )
            return out.stdout.strip() or None
        if system == "Windows":
            import winreg  # type: ignore[import-not-found]

            key = winreg.OpenKey(
                winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
            )
            return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip() or None
    except Exception:
        return None
    return None
