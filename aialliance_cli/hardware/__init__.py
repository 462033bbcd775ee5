"""Hardware inventory: what this machine has, read from the OS, then vendor libraries.

``detect()`` is the entry point; each ``probe_*`` takes a root path so that
tests (and ``aia detect --root``) can read a fake tree. Importing this package
stays cheap: onnxruntime and the vendor libraries load inside the probes.
"""

from __future__ import annotations

import platform
import threading
from pathlib import Path

from aialliance_cli.hardware.cpu import is_live_root, probe_cpu, read_text
from aialliance_cli.hardware.inventory import (
    Accelerator,
    CacheInfo,
    CpuInfo,
    Inventory,
    MemoryInfo,
    OrtDistribution,
    ProbeNote,
    SoftwareInfo,
)
from aialliance_cli.hardware.memory import probe_memory
from aialliance_cli.hardware.pci import probe_pci
from aialliance_cli.hardware.software import probe_software
from aialliance_cli.hardware.vendor import (
    enrich_amd,
    enrich_nvidia,
    enrich_openvino,
    openvino_device,
)

__all__ = [
    "Accelerator",
    "CacheInfo",
    "CpuInfo",
    "Inventory",
    "MemoryInfo",
    "OrtDistribution",
    "ProbeNote",
    "SoftwareInfo",
    "detect",
    "enrich_accelerators",
    "enrich_amd",
    "enrich_nvidia",
    "enrich_openvino",
    "openvino_device",
    "probe_cpu",
    "probe_memory",
    "probe_pci",
    "probe_software",
]

_cache: dict[bool, Inventory] = {}
_lock = threading.Lock()


def enrich_accelerators(
    accels: list[Accelerator], *, sysfs_readable: bool = True
) -> tuple[list[Accelerator], list[ProbeNote]]:
    """Run the vendor enrichers that can matter for these devices.

    NVML always runs when installed (it finds GPUs that containers hide from
    sysfs). amdsmi and OpenVINO are slower to start, so they run only when
    sysfs saw AMD or Intel devices, or when there is no sysfs to ask (Windows).
    """
    notes: list[ProbeNote] = []
    accels, n = enrich_nvidia(accels)
    notes += n
    if not sysfs_readable or any(a.vendor == "amd" and a.kind == "gpu" for a in accels):
        accels, n = enrich_amd(accels)
        notes += n
    if not sysfs_readable or any(a.vendor == "intel" for a in accels):
        accels, n = enrich_openvino(accels)
        notes += n
    return accels, notes


def detect(
    root: str | Path = "/",
    *,
    vendor_libs: bool = True,
    refresh: bool = False,
    disk_cache: bool = False,
) -> Inventory:
    """Take the inventory of the machine whose filesystem starts at ``root``.

    The live machine ("/") is probed once per process and cached; ``refresh``
    probes again. Vendor libraries (nvidia-ml-py, amdsmi, openvino) describe
    only the live machine, so they run only for root "/" and ``vendor_libs``.
    Never raises for unreadable hardware facts: they become ``Inventory.notes``.
    ``disk_cache`` (``aia detect``) reuses, for a few minutes, the accelerators
    and the ONNX Runtime facts that an earlier call stored (hardware/detectcache.py);
    ``refresh`` probes them again and stores the new answer.
    """
    live = is_live_root(root)
    if live and not refresh:
        with _lock:
            cached = _cache.get(vendor_libs)
        if cached is not None:
            return cached

    root = Path(root)
    notes: list[ProbeNote] = []
    cpu, n = probe_cpu(root)
    notes += n
    memory, n = probe_memory(root)
    notes += n
    accels, software, stable_notes = _stable_facts(
        root, live=live, vendor_libs=vendor_libs, use_cache=disk_cache, refresh=refresh
    )
    notes += stable_notes

    inventory = Inventory(
        cpu=cpu,
        memory=memory,
        accelerators=tuple(accels),
        software=software,
        hostname=(platform.node() or None) if live else _hostname(root),
        notes=tuple(notes),
    )
    if live:
        with _lock:
            _cache[vendor_libs] = inventory
    return inventory


def _stable_facts(
    root: Path, *, live: bool, vendor_libs: bool, use_cache: bool, refresh: bool
) -> tuple[tuple[Accelerator, ...], SoftwareInfo, tuple[ProbeNote, ...]]:
    """Accelerators and software (with their notes), from the disk cache where allowed."""
    from aialliance_cli.hardware import detectcache
    from aialliance_cli.hardware.inventory import (
        accelerator_from_dict,
        software_from_dict,
    )

    cacheable = use_cache and live and vendor_libs
    if cacheable and not refresh:
        cached = detectcache.load("stable")
        if cached is not None:
            try:
                return (
                    tuple(accelerator_from_dict(a) for a in cached["accelerators"]),
                    software_from_dict(cached["software"]),
                    tuple(ProbeNote(**n) for n in cached["notes"]),
                )
            except (KeyError, TypeError, ValueError):
                pass
    notes: list[ProbeNote] = []
    accels, n = probe_pci(root)
    notes += n
    if live and vendor_libs:
        sysfs_readable = (root / "sys/bus/pci/devices").is_dir()
        accels, n = enrich_accelerators(accels, sysfs_readable=sysfs_readable)
        notes += n
    software, n = probe_software()
    notes += n
    if cacheable:
        from dataclasses import asdict

        detectcache.store(
            "stable",
            {
                "accelerators": [asdict(a) for a in accels],
                "software": asdict(software),
                "notes": [asdict(n) for n in notes],
            },
        )
    return tuple(accels), software, tuple(notes)


def _hostname(root: Path) -> str | None:
    return read_text(root / "etc/hostname") or read_text(root / "proc/sys/kernel/hostname")
