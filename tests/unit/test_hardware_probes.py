"""The OS probes on the fake machine trees of tests/fixtures/machines/."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aialliance_cli.hardware import detect, probe_cpu, probe_memory, probe_pci
from aialliance_cli.hardware.cpu import parse_cpu_list, parse_size
from aialliance_cli.hardware.inventory import Inventory
from aialliance_cli.hardware.software import is_plugin_distribution, ort_distributions

MACHINES = Path(__file__).resolve().parent.parent / "fixtures" / "machines"
GiB = 1024**3


@dataclass(frozen=True)
class Acc:
    address: str
    kind: str
    vendor: str
    driver: str
    nodes: tuple[str, ...]
    integrated: bool | None
    name_has: str
    memory: int | None = None


@dataclass(frozen=True)
class Machine:
    name: str
    vendor: str
    model_has: str
    architecture: str
    physical: int
    logical: int
    sockets: int
    numa: int
    has: tuple[str, ...]
    lacks: tuple[str, ...]
    accels: tuple[Acc, ...] = ()
    base_mhz: float | None = None
    governor: str | None = None
    l3_shared_by: int | None = None
    memory_gib: float = 0.0
    ignored: tuple[str, ...] = field(default=())  # PCI addresses that must not be reported


MACHINE_TABLE = [
    Machine(
        "amd_epyc_server", "amd", "EPYC 9124", "x86_64", 32, 32, 2, 2,
        has=("sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16"),
        lacks=("avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon"),
        governor="performance", l3_shared_by=4, memory_gib=377.6,
        ignored=("0000:02:00.0", "0000:c1:00.0", "0000:00:00.0"),
    ),
    Machine(
        "intel_laptop_arc_npu", "intel", "Core(TM) Ultra 7 155H", "x86_64", 16, 22, 1, 1,
        has=("avx2", "fma", "f16c", "avx_vnni"),
        lacks=("avx512f", "avx512_vnni", "amx_tile", "sve"),
        accels=(
            Acc("0000:00:02.0", "gpu", "intel", "i915", ("/dev/dri/renderD128",), True, "Arc"),
            Acc("0000:00:0b.0", "npu", "intel", "intel_vpu", ("/dev/accel/accel0",), True, "NPU"),
        ),
        base_mhz=1400.0, governor="powersave", l3_shared_by=22, memory_gib=30.7,
        ignored=("0000:00:00.0", "0000:00:14.0"),
    ),
    Machine(
        "amd_radeon_desktop", "amd", "Ryzen 9 7950X", "x86_64", 16, 32, 1, 1,
        has=("avx2", "avx512f", "avx512_vnni", "avx512_bf16"),
        lacks=("avx_vnni", "avx512_fp16", "amx_tile"),
        accels=(
            Acc("0000:03:00.0", "gpu", "amd", "amdgpu", ("/dev/dri/renderD128", "/dev/kfd"),
                False, "7900", memory=24 * GiB),
            Acc("0000:10:00.0", "gpu", "amd", "amdgpu", ("/dev/dri/renderD129", "/dev/kfd"),
                True, "Radeon", memory=512 * 1024**2),
        ),
        governor="schedutil", l3_shared_by=16, memory_gib=62.5, ignored=("0000:03:00.1",),
    ),
    Machine(
        "amd_ryzen_ai_laptop", "amd", "Ryzen AI 9 HX 370", "x86_64", 12, 24, 1, 1,
        has=("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni"),
        lacks=("avx512_fp16", "amx_tile", "amx_int8"),
        accels=(
            Acc("0000:c5:00.0", "gpu", "amd", "amdgpu", ("/dev/dri/renderD128", "/dev/kfd"),
                True, "890M", memory=512 * 1024**2),
            Acc("0000:c6:00.1", "npu", "amd", "amdxdna", ("/dev/accel/accel0",), True, "Ryzen AI"),
        ),
        governor="powersave", l3_shared_by=8, memory_gib=30.5, ignored=("0000:c5:00.1",),
    ),
    Machine(
        "nvidia_workstation", "intel", "Xeon(R) w5-2455X", "x86_64", 12, 24, 1, 1,
        has=("avx512f", "avx512_fp16", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
             "amx_bf16"),
        lacks=("neon", "sve"),
        accels=(
            Acc("0000:65:00.0", "gpu", "nvidia", "nvidia",
                ("/dev/dri/renderD128", "/dev/nvidia0"), False, "RTX 4090"),
        ),
        base_mhz=3200.0, governor="performance", l3_shared_by=24, memory_gib=125.5,
        ignored=("0000:02:00.0", "0000:65:00.1", "0000:00:00.0"),
    ),
    Machine(
        "arm_server", "arm", "Neoverse-V1", "aarch64", 8, 8, 1, 1,
        has=("neon", "sve", "i8mm", "bf16", "dotprod"),
        lacks=("sve2", "avx2", "avx512f"),
        l3_shared_by=8, memory_gib=15.2, ignored=("0000:00:04.0", "0000:00:05.0"),
    ),
]  # fmt: skip


@pytest.fixture(params=MACHINE_TABLE, ids=lambda m: m.name)
def machine(request: pytest.FixtureRequest) -> Machine:
    return request.param


def test_every_tree_is_in_the_table() -> None:
    trees = {p.name for p in MACHINES.iterdir() if p.is_dir()}
    assert trees == {m.name for m in MACHINE_TABLE}


def test_cpu(machine: Machine) -> None:
    cpu, notes = probe_cpu(MACHINES / machine.name)
    assert notes == []
    assert cpu.vendor == machine.vendor
    assert machine.model_has in cpu.model_name
    assert cpu.architecture == machine.architecture
    assert (cpu.physical_cores, cpu.logical_cores, cpu.sockets) == (
        machine.physical,
        machine.logical,
        machine.sockets,
    )
    assert cpu.numa_nodes == machine.numa
    for feature in machine.has:
        assert cpu.has(feature), feature
    for feature in machine.lacks:
        assert not cpu.has(feature), feature
    assert cpu.base_mhz == machine.base_mhz
    assert cpu.governor == machine.governor
    levels = [c.level for c in cpu.caches]
    assert levels == [1, 1, 2, 3]
    assert cpu.caches[-1].shared_by == machine.l3_shared_by
    assert all(c.size_bytes and c.size_bytes >= 32 * 1024 for c in cpu.caches)


def test_memory(machine: Machine) -> None:
    memory, notes = probe_memory(MACHINES / machine.name)
    assert notes == []
    assert memory.total_bytes is not None and memory.available_bytes is not None
    assert memory.total_bytes / GiB == pytest.approx(machine.memory_gib, abs=0.1)
    assert 0 < memory.available_bytes <= memory.total_bytes


def test_accelerators(machine: Machine) -> None:
    accels, notes = probe_pci(MACHINES / machine.name)
    assert notes == []
    got = {a.pci_address: a for a in accels}
    assert sorted(got) == sorted(a.address for a in machine.accels)
    for want in machine.accels:
        acc = got[want.address]
        assert (acc.kind, acc.vendor, acc.driver) == (want.kind, want.vendor, want.driver)
        assert acc.device_nodes == want.nodes
        assert acc.integrated is want.integrated
        assert want.name_has in acc.name
        assert acc.memory_bytes == want.memory
        assert acc.sources == ("sysfs",)
        assert acc.usable_driver
    for address in machine.ignored:
        assert address not in got


def test_aspeed_bmc_display_is_not_an_accelerator() -> None:
    accels, _ = probe_pci(MACHINES / "nvidia_workstation")
    assert all(a.vendor_id != "0x1a03" for a in accels)
    assert [a.vendor for a in accels] == ["nvidia"]


def test_detect_on_a_tree_roundtrips(machine: Machine) -> None:
    inv = detect(MACHINES / machine.name)
    assert inv.hostname and inv.hostname != platform.node()
    assert inv.cpu.vendor == machine.vendor
    assert len(inv.gpus) + len(inv.npus) == len(machine.accels)
    assert Inventory.from_dict(inv.to_dict()) == inv


def test_detect_on_a_tree_is_not_cached() -> None:
    first = detect(MACHINES / "arm_server")
    second = detect(MACHINES / "amd_epyc_server")
    assert (first.cpu.vendor, second.cpu.vendor) == ("arm", "amd")


# ----------------------------------------------------------------- trees that go wrong


def test_empty_tree_gives_notes_not_exceptions(tmp_path: Path) -> None:
    cpu, cpu_notes = probe_cpu(tmp_path)
    memory, mem_notes = probe_memory(tmp_path)
    accels, pci_notes = probe_pci(tmp_path)
    assert cpu.vendor == "other" and cpu.logical_cores is None
    assert memory.total_bytes is None
    assert accels == []
    assert cpu_notes and mem_notes and pci_notes
    assert "cpuinfo" in cpu_notes[0].message
    assert "meminfo" in mem_notes[0].message
    inv = detect(tmp_path)
    assert {n.probe for n in inv.notes} >= {"cpu", "memory", "pci"}


def test_a_root_that_does_not_exist(tmp_path: Path) -> None:
    inv = detect(tmp_path / "nowhere")
    assert inv.cpu.model_name == "unknown" and inv.accelerators == ()
    assert inv.notes


def test_unreadable_files_give_notes(tmp_path: Path) -> None:
    # A directory where a file should be (and the reverse) cannot be read even by
    # root, unlike chmod 0; the probes must say so and go on.
    tree = tmp_path / "m"
    shutil.copytree(MACHINES / "intel_laptop_arc_npu", tree, symlinks=True)
    (tree / "proc/cpuinfo").unlink()
    (tree / "proc/cpuinfo").mkdir()
    (tree / "proc/meminfo").unlink()
    (tree / "proc/meminfo").mkdir()
    shutil.rmtree(tree / "sys/bus/pci/devices")
    (tree / "sys/bus/pci/devices").write_text("")
    cpu, cpu_notes = probe_cpu(tree)
    memory, mem_notes = probe_memory(tree)
    accels, pci_notes = probe_pci(tree)
    assert cpu.vendor == "other" and cpu_notes
    assert memory.total_bytes is None and mem_notes
    assert accels == [] and pci_notes


def test_missing_dev_node_is_dropped_with_a_note(tmp_path: Path) -> None:
    tree = tmp_path / "m"
    shutil.copytree(MACHINES / "amd_radeon_desktop", tree, symlinks=True)
    (tree / "dev/kfd").unlink()
    accels, notes = probe_pci(tree)
    assert all("/dev/kfd" not in a.device_nodes for a in accels)
    assert any("/dev/kfd" in n.message for n in notes)


def test_topology_from_cpuinfo_when_sysfs_is_missing(tmp_path: Path) -> None:
    blocks = "".join(
        f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2.10GHz\n"
        f"physical id\t: {i // 4}\ncpu cores\t: 2\nflags\t\t: lm sse4_2 avx avx2\n\n"
        for i in range(8)
    )
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(blocks)
    cpu, notes = probe_cpu(tmp_path)
    assert (cpu.physical_cores, cpu.logical_cores, cpu.sockets) == (4, 8, 2)
    assert cpu.features == ("sse4.2", "avx", "avx2")
    assert cpu.base_mhz == pytest.approx(2100.0)
    assert notes == []


def test_arm_name_from_midr_when_cpuinfo_has_no_part(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nFeatures\t: fp asimd sve2\n\n")
    midr = tmp_path / "sys/devices/system/cpu/cpu0/regs/identification/midr_el1"
    midr.parent.mkdir(parents=True)
    midr.write_text("0x00000000410fd4f0\n")  # Arm Neoverse-V2
    cpu, _ = probe_cpu(tmp_path)
    assert cpu.model_name == "Arm Neoverse-V2"
    assert cpu.features == ("neon", "sve2")


def test_arm_board_name_from_device_tree(tmp_path: Path) -> None:
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/cpuinfo").write_text(
        "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xfff\n\n"
    )
    (tmp_path / "proc/device-tree/model").write_text("Raspberry Pi 5 Model B Rev 1.0\x00")
    cpu, _ = probe_cpu(tmp_path)
    assert cpu.model_name == "Raspberry Pi 5 Model B Rev 1.0"
    assert cpu.vendor == "arm"


def test_unknown_vendor_accelerator_and_unknown_ids(tmp_path: Path) -> None:
    devices = tmp_path / "sys/bus/pci/devices"
    for addr, vendor, device, cls in (
        ("0000:17:00.0", "0x1da3", "0x1020", "0x120000"),  # Habana Gaudi 2: an accelerator
        ("0000:18:00.0", "0x8086", "0x56c0", "0x038000"),  # an Intel GPU not in the table
        ("0000:19:00.0", "0x1234", "0x1111", "0x030000"),  # QEMU VGA: not an accelerator
    ):
        d = devices / addr
        d.mkdir(parents=True)
        for f, v in (("vendor", vendor), ("device", device), ("class", cls)):
            (d / f).write_text(v + "\n")
    accels, _ = probe_pci(tmp_path)
    got = {a.pci_address: a for a in accels}
    assert sorted(got) == ["0000:17:00.0", "0000:18:00.0"]
    assert (got["0000:17:00.0"].kind, got["0000:17:00.0"].vendor) == ("npu", "other")
    assert got["0000:18:00.0"].name == "Intel GPU 0x56c0"
    assert got["0000:18:00.0"].integrated is False  # not on bus 00
    assert not got["0000:18:00.0"].usable_driver


# ----------------------------------------------------------------- small parsers


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3", [0, 1, 2, 3]), ("0,2,4-5", [0, 2, 4, 5]), ("7", [7]), ("", []), ("x", [])],
)
def test_parse_cpu_list(text: str, cpus: list[int]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize(
    ("text", "size"), [("48K", 49152), ("32M", 32 * 1024**2), ("512", 512), ("?", None)]
)
def test_parse_size(text: str, size: int | None) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("name", "version", "plugin"),
    [
        ("onnxruntime", "1.32.0", False),
        ("onnxruntime-gpu", "1.22.0", False),
        ("onnxruntime-openvino", "1.24.1", False),
        ("onnxruntime-ep-openvino", "1.8.1", True),
        ("onnxruntime_ep_nv_tensorrt_rtx", "0.1", True),
        ("onnxruntime-qnn", "1.22.0", False),
        ("onnxruntime-qnn", "2.0.0", True),
    ],
)
def test_plugin_distributions(name: str, version: str, plugin: bool) -> None:
    assert is_plugin_distribution(name, version) is plugin


def test_ort_distributions_scan(tmp_path: Path) -> None:
    for folder, name, version in (
        ("onnxruntime_openvino-1.24.1.dist-info", "onnxruntime-openvino", "1.24.1"),
        ("onnxruntime_ep_openvino-1.8.1.dist-info", "onnxruntime-ep-openvino", "1.8.1"),
        ("onnxruntime_genai-0.9.0.dist-info", "onnxruntime-genai", "0.9.0"),
        ("numpy-2.0.0.dist-info", "numpy", "2.0.0"),
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
    dists = ort_distributions([str(tmp_path), str(tmp_path / "missing")])
    assert [(d.name, d.version, d.plugin) for d in dists] == [
        ("onnxruntime-ep-openvino", "1.8.1", True),
        ("onnxruntime-openvino", "1.24.1", False),
    ]
