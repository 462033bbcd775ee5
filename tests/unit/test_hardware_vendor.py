"""Vendor enrichers, with fake pynvml/amdsmi/openvino modules for hardware this machine lacks."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import aialliance_cli.hardware as hw
from aialliance_cli.hardware import (
    enrich_accelerators,
    enrich_amd,
    enrich_nvidia,
    enrich_openvino,
    openvino_device,
    probe_pci,
)
from aialliance_cli.hardware.inventory import Accelerator
from aialliance_cli.hardware.vendor import normalise_bus_id

MACHINES = Path(__file__).resolve().parent.parent / "fixtures" / "machines"
GiB = 1024**3


def sysfs(machine: str) -> list[Accelerator]:
    accels, notes = probe_pci(MACHINES / machine)
    assert notes == []
    return accels


# ----------------------------------------------------------------- fake modules


def fake_pynvml(gpus: list[dict[str, Any]], *, init_error: str | None = None) -> types.ModuleType:
    m = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def init() -> None:
        if init_error:
            raise NVMLError(init_error)

    def handle(i: int) -> dict[str, Any]:
        return gpus[i]

    def name(h: dict[str, Any]) -> bytes:
        if h.get("broken"):
            raise NVMLError("GPU is lost")
        return h["name"].encode()  # older nvidia-ml-py returns bytes

    m.NVMLError = NVMLError
    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlSystemGetDriverVersion = lambda: "550.54.14"
    m.nvmlDeviceGetCount = lambda: len(gpus)
    m.nvmlDeviceGetHandleByIndex = handle
    m.nvmlDeviceGetName = name
    m.nvmlDeviceGetPciInfo = lambda h: SimpleNamespace(
        busId=h["bus"].encode(), pciDeviceId=(h["device"] << 16) | 0x10DE
    )
    m.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(total=h["memory"], free=0, used=0)
    m.nvmlDeviceGetCudaComputeCapability = lambda h: h["cc"]
    m.nvmlDeviceGetMinorNumber = lambda h: h["minor"]
    return m


RTX_4090 = {
    "name": "NVIDIA GeForce RTX 4090",
    "bus": "00000000:65:00.0",
    "device": 0x2684,
    "memory": 25757220864,
    "cc": (8, 9),
    "minor": 0,
}


def h100(minor: int) -> dict[str, Any]:
    return {
        "name": "NVIDIA H100 80GB HBM3",
        "bus": f"00000000:{0x18 + minor:02X}:00.0",
        "device": 0x2330,
        "memory": 85520809984,
        "cc": (9, 0),
        "minor": minor,
    }


def fake_amdsmi(gpus: dict[str, dict[str, Any]], *, init_error: str | None = None):
    m = types.ModuleType("amdsmi")

    class AmdSmiException(Exception):
        pass

    def init(*_: Any) -> None:
        if init_error:
            raise AmdSmiException(init_error)

    m.AmdSmiException = AmdSmiException
    m.amdsmi_init = init
    m.amdsmi_shut_down = lambda: None
    m.amdsmi_get_processor_handles = lambda: list(gpus)
    m.amdsmi_get_gpu_device_bdf = lambda h: h
    m.amdsmi_get_gpu_asic_info = lambda h: gpus[h]["asic"]
    m.amdsmi_get_gpu_vram_info = lambda h: {"vram_type": "GDDR6", "vram_size": gpus[h]["mb"]}
    m.amdsmi_get_gpu_driver_info = lambda h: {"driver_name": "amdgpu", "driver_version": "6.8.5"}
    return m


RADEON = {
    "0000:03:00.0": {
        "asic": {
            "market_name": "AMD Radeon RX 7900 XTX",
            "device_id": 0x744C,
            "target_graphics_version": "gfx1100",
        },
        "mb": 24560,
    },
    "0000:10:00.0": {
        "asic": {"market_name": "N/A", "device_id": 0x164E, "target_graphics_version": "gfx1036"},
        "mb": 512,
    },
}


def fake_openvino(props: dict[str, dict[str, Any]], *, core_error: str | None = None):
    m = types.ModuleType("openvino")
    calls: list[str] = []

    class Core:
        def __init__(self) -> None:
            calls.append("Core")
            if core_error:
                raise RuntimeError(core_error)
            self.available_devices = ["CPU", *props]

        def get_property(self, device: str, name: str) -> Any:
            if name not in props[device]:
                raise RuntimeError(f"unsupported property {name}")
            return props[device][name]

    m.Core = Core
    m.calls = calls
    return m


# ----------------------------------------------------------------- NVIDIA


def test_nvml_enriches_the_sysfs_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([RTX_4090]))
    accels, notes = enrich_nvidia(sysfs("nvidia_workstation"))
    assert notes == []
    (gpu,) = accels
    assert gpu.pci_address == "0000:65:00.0"
    assert gpu.name == "NVIDIA GeForce RTX 4090"
    assert gpu.memory_bytes == 25757220864
    assert gpu.driver_version == "550.54.14"
    assert gpu.architecture == "sm_89"
    assert gpu.sources == ("sysfs", "nvml")
    assert gpu.device_nodes == ("/dev/dri/renderD128", "/dev/nvidia0")


def test_nvml_adds_gpus_that_sysfs_did_not_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([h100(0), h100(1)]))
    accels, notes = enrich_nvidia([])
    assert notes == []
    assert [a.pci_address for a in accels] == ["0000:18:00.0", "0000:19:00.0"]
    for i, gpu in enumerate(accels):
        assert (gpu.kind, gpu.vendor, gpu.driver) == ("gpu", "nvidia", "nvidia")
        assert gpu.sources == ("nvml",)
        assert gpu.architecture == "sm_90"
        assert gpu.device_id == "0x2330"
        assert gpu.device_nodes == (f"/dev/nvidia{i}",)
        assert gpu.integrated is False


def test_nvml_failure_is_a_note_only_when_nvidia_hardware_is_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], init_error="Driver Not Loaded"))
    before = sysfs("nvidia_workstation")
    accels, notes = enrich_nvidia(before)
    assert accels == before
    assert len(notes) == 1 and "Driver Not Loaded" in notes[0].message
    # The library installed on a machine without NVIDIA hardware: silence.
    accels, notes = enrich_nvidia(sysfs("amd_radeon_desktop"))
    assert notes == [] and len(accels) == 2


def test_nvml_one_broken_gpu_does_not_hide_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dict(h100(0), broken=True)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([broken, h100(1)]))
    accels, notes = enrich_nvidia([])
    assert [a.pci_address for a in accels] == ["0000:19:00.0"]
    assert len(notes) == 1 and "GPU 0" in notes[0].message


def test_enrichers_without_their_libraries_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("pynvml", "amdsmi", "openvino"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail
    for enrich, machine in (
        (enrich_nvidia, "nvidia_workstation"),
        (enrich_amd, "amd_radeon_desktop"),
        (enrich_openvino, "intel_laptop_arc_npu"),
    ):
        before = sysfs(machine)
        assert enrich(before) == (before, [])


# ----------------------------------------------------------------- AMD


def test_amdsmi_enriches_radeon_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", fake_amdsmi(RADEON))
    accels, notes = enrich_amd(sysfs("amd_radeon_desktop"))
    assert notes == []
    dgpu, igpu = accels
    assert dgpu.name == "AMD Radeon RX 7900 XTX"
    assert dgpu.architecture == "gfx1100"
    assert dgpu.memory_bytes == 24 * GiB  # sysfs bytes kept over amdsmi's MB
    assert dgpu.driver_version == "6.8.5"
    assert dgpu.sources == ("sysfs", "amdsmi")
    assert igpu.name == "AMD Radeon Graphics (Raphael)"  # "N/A" market name ignored
    assert igpu.architecture == "gfx1036"
    assert igpu.integrated is True


def test_amdsmi_adds_gpus_and_notes_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", fake_amdsmi(RADEON))
    accels, _ = enrich_amd([])
    assert [a.sources for a in accels] == [("amdsmi",), ("amdsmi",)]
    assert accels[0].memory_bytes == 24560 * 1024**2
    assert accels[0].integrated is False and accels[1].integrated is True

    monkeypatch.setitem(sys.modules, "amdsmi", fake_amdsmi({}, init_error="no /dev/kfd"))
    before = sysfs("amd_radeon_desktop")
    accels, notes = enrich_amd(before)
    assert accels == before
    assert len(notes) == 1 and "no /dev/kfd" in notes[0].message


# ----------------------------------------------------------------- OpenVINO


def test_openvino_records_the_devices_it_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    ov = fake_openvino(
        {
            "GPU": {
                "FULL_DEVICE_NAME": "Intel(R) Arc(TM) Graphics (iGPU)",
                "DEVICE_TYPE": "Type.INTEGRATED",
            },
            "NPU": {"FULL_DEVICE_NAME": "Intel(R) AI Boost"},
        }
    )
    monkeypatch.setitem(sys.modules, "openvino", ov)
    accels, notes = enrich_openvino(sysfs("intel_laptop_arc_npu"))
    assert notes == []
    gpu, npu = accels
    assert gpu.name == "Intel(R) Arc(TM) Graphics (iGPU)"
    assert gpu.sources == ("sysfs", "openvino:GPU")
    assert openvino_device(gpu) == "GPU"
    assert npu.name == "Intel(R) AI Boost"
    assert openvino_device(npu) == "NPU"


def _intel_pair() -> list[Accelerator]:
    return [
        Accelerator("gpu", "intel", "Intel Arc A770", "0000:03:00.0", integrated=False),
        Accelerator("gpu", "intel", "Intel UHD", "0000:00:02.0", integrated=True),
    ]


def test_openvino_matches_by_device_type_then_pci_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ov = fake_openvino(
        {
            "GPU.0": {"FULL_DEVICE_NAME": "iGPU", "DEVICE_TYPE": "Type.INTEGRATED"},
            "GPU.1": {"FULL_DEVICE_NAME": "dGPU", "DEVICE_TYPE": "Type.DISCRETE"},
        }
    )
    monkeypatch.setitem(sys.modules, "openvino", ov)
    accels, _ = enrich_openvino(_intel_pair())
    assert {a.pci_address: openvino_device(a) for a in accels} == {
        "0000:03:00.0": "GPU.1",
        "0000:00:02.0": "GPU.0",
    }
    # PCI info, where OpenVINO gives it, beats the device type.
    pci = SimpleNamespace(domain=0, bus=0, device=2, function=0)
    ov = fake_openvino(
        {"GPU.0": {"FULL_DEVICE_NAME": "iGPU", "DEVICE_TYPE": "discrete", "DEVICE_PCI_INFO": pci}}
    )
    monkeypatch.setitem(sys.modules, "openvino", ov)
    accels, _ = enrich_openvino(_intel_pair())
    assert openvino_device(accels[1]) == "GPU.0" and openvino_device(accels[0]) is None


def test_openvino_adds_devices_without_sysfs_and_notes_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        sys.modules, "openvino", fake_openvino({"GPU": {"FULL_DEVICE_NAME": "Intel Arc B580"}})
    )
    (gpu,) = enrich_openvino([])[0]
    assert gpu.usable_driver  # OpenVINO opened it: the planner may use it
    assert (gpu.kind, gpu.vendor, gpu.name, gpu.sources) == (
        "gpu",
        "intel",
        "Intel Arc B580",
        ("openvino:GPU",),
    )
    monkeypatch.setitem(sys.modules, "openvino", fake_openvino({}, core_error="plugin crash"))
    before = sysfs("intel_laptop_arc_npu")
    accels, notes = enrich_openvino(before)
    assert accels == before and "plugin crash" in notes[0].message


# ----------------------------------------------------------------- wiring


def test_slow_enrichers_run_only_for_their_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    ov = fake_openvino({})
    monkeypatch.setitem(sys.modules, "openvino", ov)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "amdsmi", fake_amdsmi(RADEON))
    accels, _ = enrich_accelerators(sysfs("amd_radeon_desktop"))
    assert ov.calls == []
    assert all("amdsmi" in a.sources for a in accels)
    enrich_accelerators(sysfs("intel_laptop_arc_npu"))
    assert ov.calls == ["Core"]


def test_detect_uses_vendor_libraries_on_the_live_root_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hw, "_cache", {})  # keep the real cache clean of fake GPUs
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([h100(0)]))
    tree = hw.detect(MACHINES / "nvidia_workstation")
    assert [a.sources for a in tree.accelerators] == [("sysfs",)]
    live = hw.detect("/", refresh=True)
    assert any(a.sources == ("nvml",) and a.name.startswith("NVIDIA H100") for a in live.gpus)
    assert hw.detect("/") is live  # cached
    assert not any("nvml" in a.sources for a in hw.detect("/", vendor_libs=False).accelerators)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("00000000:65:00.0", "0000:65:00.0"),
        (b"00000000:1A:00.0", "0000:1a:00.0"),
        ("0000:c5:00.0", "0000:c5:00.0"),
        ("garbage", None),
    ],
)
def test_normalise_bus_id(raw: Any, want: str | None) -> None:
    assert normalise_bus_id(raw) == want
