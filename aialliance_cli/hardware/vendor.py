"""Enrichers: vendor libraries add what sysfs cannot say (names, memory, arch, driver).

Each is optional: when its library is not installed it returns the list
unchanged and says nothing; when the library is installed but fails, it adds a
ProbeNote (only if the sysfs probe saw that vendor's hardware, since a library
installed on a machine without the hardware is expected to fail). Devices a
library sees that sysfs did not (containers, Windows) are added with that
library as their only source.

Sources recorded: "nvml" (nvidia-ml-py), "amdsmi", and "openvino:<device>"
(``openvino:GPU.0``, ``openvino:NPU``: the device name to hand OpenVINO).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any

from aialliance_cli.hardware.inventory import Accelerator, DeviceKind, ProbeNote

PROBE = "vendor"
OPENVINO_PREFIX = "openvino:"


def _optional_import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a broken install raising OSError at import
        return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip("\x00 ")
    return str(value).strip()


def normalise_bus_id(bus_id: Any) -> str | None:
    """``00000000:65:00.0`` (NVML) or ``0000:65:00.0`` -> ``0000:65:00.0``."""
    text = _text(bus_id).lower()
    parts = text.split(":")
    if len(parts) != 3:
        return None
    try:
        return f"{int(parts[0], 16):04x}:{int(parts[1], 16):02x}:{parts[2]}"
    except ValueError:
        return None


def _add_source(acc: Accelerator, source: str) -> tuple[str, ...]:
    return acc.sources if source in acc.sources else (*acc.sources, source)


def _by_address(accels: list[Accelerator], address: str | None) -> int | None:
    if address is None:
        return None
    for i, acc in enumerate(accels):
        if acc.pci_address and normalise_bus_id(acc.pci_address) == address:
            return i
    return None


# --------------------------------------------------------------------------- NVIDIA


def enrich_nvidia(
    accels: Sequence[Accelerator],
) -> tuple[list[Accelerator], list[ProbeNote]]:
    """Add NVML's name, memory, driver version and compute capability (``sm_89``)."""
    out = list(accels)
    notes: list[ProbeNote] = []
    nvml = _optional_import("pynvml")
    if nvml is None:
        return out, notes
    seen_in_sysfs = any(a.vendor == "nvidia" for a in out)
    try:
        nvml.nvmlInit()
    except Exception as exc:
        if seen_in_sysfs:
            notes.append(ProbeNote(PROBE, f"nvidia-ml-py is installed but NVML failed: {exc}"))
        return out, notes
    try:
        try:
            driver_version = _text(nvml.nvmlSystemGetDriverVersion())
        except Exception:
            driver_version = None
        for index in range(int(nvml.nvmlDeviceGetCount())):
            try:
                out = _nvml_device(nvml, index, out, driver_version)
            except Exception as exc:
                notes.append(ProbeNote(PROBE, f"NVML could not describe GPU {index}: {exc}"))
    except Exception as exc:
        notes.append(ProbeNote(PROBE, f"NVML failed while listing GPUs: {exc}"))
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    return out, notes


def _nvml_device(
    nvml: Any, index: int, accels: list[Accelerator], driver_version: str | None
) -> list[Accelerator]:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(nvml.nvmlDeviceGetName(handle))
    pci = nvml.nvmlDeviceGetPciInfo(handle)
    address = normalise_bus_id(getattr(pci, "busId", ""))
    memory = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
    arch = None
    try:
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        arch = f"sm_{int(major)}{int(minor)}"
    except Exception:
        pass
    at = _by_address(accels, address)
    if at is not None:
        acc = accels[at]
        accels[at] = replace(
            acc,
            name=name or acc.name,
            memory_bytes=memory,
            driver_version=driver_version or acc.driver_version,
            architecture=arch or acc.architecture,
            sources=_add_source(acc, "nvml"),
        )
        return accels
    nodes: tuple[str, ...] = ()
    with contextlib.suppress(Exception):
        nodes = (f"/dev/nvidia{int(nvml.nvmlDeviceGetMinorNumber(handle))}",)
    device_id = getattr(pci, "pciDeviceId", None)
    accels.append(
        Accelerator(
            kind="gpu",
            vendor="nvidia",
            name=name or f"NVIDIA GPU {index}",
            pci_address=address,
            vendor_id="0x10de",
            device_id=f"{int(device_id) >> 16:#06x}" if isinstance(device_id, int) else None,
            driver="nvidia",
            device_nodes=nodes,
            memory_bytes=memory,
            driver_version=driver_version,
            architecture=arch,
            integrated=False,
            sources=("nvml",),
        )
    )
    return accels


# --------------------------------------------------------------------------- AMD


def enrich_amd(accels: Sequence[Accelerator]) -> tuple[list[Accelerator], list[ProbeNote]]:
    """Add amdsmi's market name, VRAM, gfx target (``gfx1100``) and driver version."""
    out = list(accels)
    notes: list[ProbeNote] = []
    smi = _optional_import("amdsmi")
    if smi is None:
        return out, notes
    seen_in_sysfs = any(a.vendor == "amd" and a.kind == "gpu" for a in out)
    try:
        smi.amdsmi_init()
    except Exception as exc:
        if seen_in_sysfs:
            notes.append(ProbeNote(PROBE, f"amdsmi is installed but failed to start: {exc}"))
        return out, notes
    try:
        for index, handle in enumerate(smi.amdsmi_get_processor_handles()):
            try:
                out = _amd_device(smi, index, handle, out)
            except Exception as exc:
                notes.append(ProbeNote(PROBE, f"amdsmi could not describe GPU {index}: {exc}"))
    except Exception as exc:
        notes.append(ProbeNote(PROBE, f"amdsmi failed while listing GPUs: {exc}"))
    finally:
        with contextlib.suppress(Exception):
            smi.amdsmi_shut_down()
    return out, notes


def _amd_device(smi: Any, index: int, handle: Any, accels: list[Accelerator]) -> list[Accelerator]:
    address = normalise_bus_id(smi.amdsmi_get_gpu_device_bdf(handle))
    asic = dict(smi.amdsmi_get_gpu_asic_info(handle) or {})
    name = _text(asic.get("market_name") or "")
    name = "" if name.upper() in ("", "N/A") else name
    target = _text(asic.get("target_graphics_version") or "").lower()
    arch = target if target.startswith("gfx") else None
    memory = None
    try:
        size = smi.amdsmi_get_gpu_vram_info(handle).get("vram_size")
        if isinstance(size, dict):  # some releases wrap it: {"value": 24560, "unit": "MB"}
            size = size.get("value")
        memory = int(size) * 1024**2 if size not in (None, "N/A") else None
    except Exception:
        pass
    driver_version = None
    driver_name = "amdgpu"
    try:
        info = smi.amdsmi_get_gpu_driver_info(handle)
        driver_version = _text(info.get("driver_version") or "") or None
        driver_name = _text(info.get("driver_name") or "") or driver_name
    except Exception:
        pass
    at = _by_address(accels, address)
    if at is not None:
        acc = accels[at]
        accels[at] = replace(
            acc,
            name=name or acc.name,
            # sysfs gives exact bytes; amdsmi rounds to MB
            memory_bytes=acc.memory_bytes if acc.memory_bytes is not None else memory,
            driver_version=driver_version or acc.driver_version,
            architecture=arch or acc.architecture,
            sources=_add_source(acc, "amdsmi"),
        )
        return accels
    device_id = asic.get("device_id")
    accels.append(
        Accelerator(
            kind="gpu",
            vendor="amd",
            name=name or f"AMD GPU {index}",
            pci_address=address,
            vendor_id="0x1002",
            device_id=f"{device_id:#06x}" if isinstance(device_id, int) else None,
            driver=driver_name,
            memory_bytes=memory,
            driver_version=driver_version,
            architecture=arch,
            integrated=None if memory is None else memory < 2 * 1024**3,
            sources=("amdsmi",),
        )
    )
    return accels


# --------------------------------------------------------------------------- OpenVINO


def openvino_device(acc: Accelerator) -> str | None:
    """The OpenVINO device name (``GPU.0``, ``NPU``) recorded for ``acc``, if any."""
    for source in acc.sources:
        if source.startswith(OPENVINO_PREFIX):
            return source[len(OPENVINO_PREFIX) :]
    return None


def enrich_openvino(
    accels: Sequence[Accelerator],
) -> tuple[list[Accelerator], list[ProbeNote]]:
    """Record which Intel GPU/NPU OpenVINO sees (``openvino:GPU.0``) and its full name."""
    out = list(accels)
    notes: list[ProbeNote] = []
    ov = _optional_import("openvino")
    if ov is None:
        return out, notes
    seen_in_sysfs = any(a.vendor == "intel" for a in out)
    try:
        core_cls = getattr(ov, "Core", None)
        if core_cls is None:  # OpenVINO < 2023.1 kept Core in openvino.runtime
            core_cls = importlib.import_module("openvino.runtime").Core
        core = core_cls()
        devices = [_text(d) for d in core.available_devices]
    except Exception as exc:
        if seen_in_sysfs:
            notes.append(ProbeNote(PROBE, f"openvino is installed but its Core failed: {exc}"))
        return out, notes
    claimed: set[int] = set()
    for device in devices:
        kind: DeviceKind
        if device.startswith("GPU"):
            kind = "gpu"
        elif device.startswith("NPU"):
            kind = "npu"
        else:
            continue  # CPU, and meta devices (AUTO, HETERO) are not listed here anyway
        try:
            out = _openvino_device(core, device, kind, out, claimed)
        except Exception as exc:
            notes.append(ProbeNote(PROBE, f"OpenVINO could not describe {device}: {exc}"))
    return out, notes


def _ov_property(core: Any, device: str, name: str) -> Any:
    try:
        return core.get_property(device, name)
    except Exception:
        return None


def _openvino_device(
    core: Any, device: str, kind: DeviceKind, accels: list[Accelerator], claimed: set[int]
) -> list[Accelerator]:
    full_name = _text(_ov_property(core, device, "FULL_DEVICE_NAME") or "")
    device_type = _text(_ov_property(core, device, "DEVICE_TYPE") or "").lower()
    integrated = (
        True if "integrated" in device_type else False if "discrete" in device_type else None
    )
    address = None
    pci = _ov_property(core, device, "DEVICE_PCI_INFO")
    if pci is not None:
        try:
            address = (
                f"{int(pci.domain):04x}:{int(pci.bus):02x}:"
                f"{int(pci.device):02x}.{int(pci.function)}"
            )
        except (AttributeError, TypeError, ValueError):
            address = None

    at = _by_address(accels, address)
    if at is None:
        # No PCI info from this OpenVINO: GPU.0 is the iGPU when there is one, then dGPUs.
        candidates = [
            i
            for i, a in enumerate(accels)
            if i not in claimed and a.vendor == "intel" and a.kind == kind
        ]
        if integrated is not None:
            candidates = [i for i in candidates if accels[i].integrated in (integrated, None)]
        candidates.sort(
            key=lambda i: (accels[i].integrated is not True, accels[i].pci_address or "")
        )
        at = candidates[0] if candidates else None
    source = OPENVINO_PREFIX + device
    if at is not None:
        claimed.add(at)
        acc = accels[at]
        accels[at] = replace(acc, name=full_name or acc.name, sources=_add_source(acc, source))
        return accels
    accels.append(
        Accelerator(
            kind=kind,
            vendor="intel",
            name=full_name or f"Intel {device}",
            pci_address=address,
            # OpenVINO opened it, so some driver is bound; it does not say which.
            driver="unknown",
            integrated=integrated,
            sources=(source,),
        )
    )
    claimed.add(len(accels) - 1)
    return accels
