"""The PCI probe: GPUs and NPUs from <root>/sys/bus/pci/devices, and their /dev nodes.

A device is reported when its class is display (0x03xxxx) or processing
accelerator (0x1200xx), when its driver is an NPU driver (intel_vpu, amdxdna),
or when its id is a known accelerator. Server management VGA (ASPEED, Matrox
BMCs) and emulated displays are left out: they cannot run a model.
"""

from __future__ import annotations

import os
from pathlib import Path

from aialliance_cli.hardware.cpu import read_text
from aialliance_cli.hardware.inventory import Accelerator, DeviceKind, DeviceVendor, ProbeNote

PROBE = "pci"

VENDORS: dict[str, DeviceVendor] = {
    "0x8086": "intel",
    "0x1002": "amd",
    "0x1022": "amd",
    "0x10de": "nvidia",
    "0x17cb": "qualcomm",
    "0x106b": "apple",
}
VENDOR_LABEL = {
    "intel": "Intel",
    "amd": "AMD",
    "nvidia": "NVIDIA",
    "qualcomm": "Qualcomm",
    "apple": "Apple",
    "other": "PCI",
}

# Display controllers that never run models: BMC VGA and emulated/virtual displays.
NOT_ACCELERATORS = {
    "0x1a03": "ASPEED BMC display",
    "0x102b": "Matrox server display",
    "0x1234": "QEMU standard VGA",
    "0x1b36": "QXL virtual display",
    "0x15ad": "VMware SVGA",
    "0x80ee": "VirtualBox display",
    "0x1013": "Cirrus Logic VGA",
    "0x1af4": "virtio display",
}

NPU_DRIVERS = {"intel_vpu", "amdxdna", "qaic"}

# (vendor, device) -> (name, kind, integrated). Unknown ids get "Intel GPU 0x56a0".
KNOWN_DEVICES: dict[tuple[str, str], tuple[str, DeviceKind, bool | None]] = {
    # Intel GPUs
    ("0x8086", "0x7d55"): ("Intel Arc Graphics (Meteor Lake)", "gpu", True),
    ("0x8086", "0x7dd5"): ("Intel Graphics (Meteor Lake)", "gpu", True),
    ("0x8086", "0x64a0"): ("Intel Arc 140V/130V Graphics (Lunar Lake)", "gpu", True),
    ("0x8086", "0x56a0"): ("Intel Arc A770", "gpu", False),
    ("0x8086", "0x56a1"): ("Intel Arc A750", "gpu", False),
    ("0x8086", "0x56a5"): ("Intel Arc A380", "gpu", False),
    ("0x8086", "0xe20b"): ("Intel Arc B580", "gpu", False),
    ("0x8086", "0x0bd5"): ("Intel Data Center GPU Max 1550", "gpu", False),
    # Intel NPUs
    ("0x8086", "0x7d1d"): ("Intel AI Boost NPU (Meteor Lake)", "npu", True),
    ("0x8086", "0xad1d"): ("Intel AI Boost NPU (Arrow Lake)", "npu", True),
    ("0x8086", "0x643e"): ("Intel AI Boost NPU (Lunar Lake)", "npu", True),
    # AMD GPUs
    ("0x1002", "0x744c"): ("AMD Radeon RX 7900 XTX/XT", "gpu", False),
    ("0x1002", "0x7480"): ("AMD Radeon RX 7600/7700S", "gpu", False),
    ("0x1002", "0x73bf"): ("AMD Radeon RX 6800/6900 XT", "gpu", False),
    ("0x1002", "0x74a1"): ("AMD Instinct MI300X", "gpu", False),
    ("0x1002", "0x740f"): ("AMD Instinct MI210", "gpu", False),
    ("0x1002", "0x15bf"): ("AMD Radeon 780M (Phoenix)", "gpu", True),
    ("0x1002", "0x150e"): ("AMD Radeon 880M/890M (Strix Point)", "gpu", True),
    ("0x1002", "0x164e"): ("AMD Radeon Graphics (Raphael)", "gpu", True),
    # AMD NPUs (XDNA): vendor 0x1022, class 0x118000 "signal processing controller"
    ("0x1022", "0x1502"): ("AMD Ryzen AI NPU (Phoenix/Hawk Point)", "npu", True),
    ("0x1022", "0x17f0"): ("AMD Ryzen AI NPU (Strix Point)", "npu", True),
    # NVIDIA
    ("0x10de", "0x2330"): ("NVIDIA H100 SXM5 80GB", "gpu", False),
    ("0x10de", "0x2331"): ("NVIDIA H100 PCIe", "gpu", False),
    ("0x10de", "0x2335"): ("NVIDIA H200", "gpu", False),
    ("0x10de", "0x20b0"): ("NVIDIA A100 SXM4 40GB", "gpu", False),
    ("0x10de", "0x20b2"): ("NVIDIA A100 SXM4 80GB", "gpu", False),
    ("0x10de", "0x20f1"): ("NVIDIA A100 PCIe 40GB", "gpu", False),
    ("0x10de", "0x20b5"): ("NVIDIA A100 PCIe 80GB", "gpu", False),
    ("0x10de", "0x2684"): ("NVIDIA GeForce RTX 4090", "gpu", False),
    ("0x10de", "0x2204"): ("NVIDIA GeForce RTX 3090", "gpu", False),
    ("0x10de", "0x27b8"): ("NVIDIA L4", "gpu", False),
}

SMALL_VRAM = 2 * 1024**3  # an AMD GPU with less dedicated memory is an APU carve-out


def probe_pci(root: str | Path = "/") -> tuple[list[Accelerator], list[ProbeNote]]:
    """GPUs and NPUs on the PCI bus of the machine at ``root``; never raises."""
    root = Path(root)
    notes: list[ProbeNote] = []
    devices_dir = root / "sys" / "bus" / "pci" / "devices"
    try:
        entries = sorted(devices_dir.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        notes.append(ProbeNote(PROBE, f"{devices_dir} is not readable ({exc.strerror or exc})"))
        return [], notes
    found = []
    for dev in entries:
        try:
            acc = _device(root, dev, notes)
        except Exception as exc:  # one odd device must not hide the others
            notes.append(ProbeNote(PROBE, f"{dev.name}: {type(exc).__name__}: {exc}"))
            continue
        if acc is not None:
            found.append(acc)
    return found, notes


def _device(root: Path, dev: Path, notes: list[ProbeNote]) -> Accelerator | None:
    vendor_id = (read_text(dev / "vendor") or "").lower()
    device_id = (read_text(dev / "device") or "").lower()
    pci_class = (read_text(dev / "class") or "").lower()
    if not vendor_id or not device_id:
        return None
    driver = _driver(dev)
    known = KNOWN_DEVICES.get((vendor_id, device_id))
    is_display = pci_class.startswith("0x03")
    is_accel = pci_class.startswith("0x1200")

    kind: DeviceKind
    if known is not None:
        kind = known[1]
    elif driver in NPU_DRIVERS or is_accel:
        kind = "npu"
    elif is_display:
        if vendor_id in NOT_ACCELERATORS:
            return None
        kind = "gpu"
    else:
        return None
    vendor = VENDORS.get(vendor_id, "other")

    memory = None
    if driver == "amdgpu":
        vram = read_text(dev / "mem_info_vram_total")
        memory = int(vram) if vram and vram.isdigit() else None

    if known is not None:
        name, integrated = known[0], known[2]
    else:
        name = f"{VENDOR_LABEL[vendor]} {kind.upper()} {device_id}"
        integrated = _integrated_guess(vendor, kind, dev.name, memory)
    if vendor == "amd" and kind == "gpu" and memory is not None:
        integrated = memory < SMALL_VRAM  # sysfs beats the table: APUs vary by BIOS

    return Accelerator(
        kind=kind,
        vendor=vendor,
        name=name,
        pci_address=dev.name,
        vendor_id=vendor_id,
        device_id=device_id,
        pci_class=pci_class or None,
        driver=driver,
        device_nodes=_device_nodes(root, dev, driver, notes),
        memory_bytes=memory,
        integrated=integrated,
        sources=("sysfs",),
    )


def _driver(dev: Path) -> str | None:
    link = dev / "driver"
    try:
        return os.path.basename(os.readlink(link).rstrip("/")) or None
    except OSError:
        # Not a symlink (a copied tree): a directory still names the driver.
        return link.resolve().name if link.is_dir() else None


def _integrated_guess(vendor: str, kind: str, address: str, memory: int | None) -> bool | None:
    if kind == "npu":
        return True if vendor in ("intel", "amd") else None
    if vendor == "intel":
        # Intel iGPUs sit on the root bus (00:02.0); discrete Arc cards are behind bridges.
        bus = address.split(":")[-2] if address.count(":") >= 1 else ""
        return bus == "00"
    if vendor == "amd" and memory is not None:
        return memory < SMALL_VRAM
    if vendor == "nvidia":
        return False
    return None


def _device_nodes(
    root: Path, dev: Path, driver: str | None, notes: list[ProbeNote]
) -> tuple[str, ...]:
    """The /dev nodes of a device that exist under ``root`` (absent ones become notes)."""
    wanted: list[str] = []
    for sub, prefix, dev_dir in (("drm", "renderD", "dri"), ("accel", "accel", "accel")):
        try:
            names = sorted(p.name for p in (dev / sub).iterdir() if p.name.startswith(prefix))
        except OSError:
            names = []
        wanted.extend(f"/dev/{dev_dir}/{n}" for n in names)
    if driver == "amdgpu":
        wanted.append("/dev/kfd")
    if driver == "nvidia":
        info = read_text(root / "proc/driver/nvidia/gpus" / dev.name / "information") or ""
        for line in info.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Device Minor" and value.strip().isdigit():
                wanted.append(f"/dev/nvidia{value.strip()}")
    present = []
    for node in wanted:
        if (root / node.lstrip("/")).exists():
            present.append(node)
        else:
            notes.append(
                ProbeNote(
                    PROBE,
                    f"{dev.name}: {node} is absent (a container without the device, "
                    "or the driver did not create it)",
                )
            )
    return tuple(present)
