"""The EP planner, table-driven: machines x ONNX Runtime builds -> ranked plan, reasons, unlocks.

The machines are built from the inventory dataclasses: this CI machine has none
of this hardware, so these inventories are the fakes the planner is tested on.
"""

from __future__ import annotations

import json

import pytest

from aialliance_cli.errors import ExitCode, UnknownProviderError
from aialliance_cli.hardware.inventory import (
    Accelerator,
    CpuInfo,
    Inventory,
    MemoryInfo,
    OrtDistribution,
    SoftwareInfo,
)
from aialliance_cli.providers.planner import Preferences, ProviderPlan, plan

GiB = 1024**3
X86 = ("sse4.2", "avx", "avx2", "fma", "f16c")


def machine(
    cpu_vendor: str,
    cpu_name: str,
    *accelerators: Accelerator,
    os: str = "Linux",
    arch: str = "x86_64",
    features: tuple[str, ...] = X86,
) -> Inventory:
    return Inventory(
        cpu=CpuInfo(
            vendor=cpu_vendor,  # type: ignore[arg-type]
            model_name=cpu_name,
            architecture=arch,
            physical_cores=8,
            logical_cores=16,
            sockets=1,
            numa_nodes=1,
            features=features,
        ),
        memory=MemoryInfo(total_bytes=32 * GiB, available_bytes=24 * GiB),
        accelerators=tuple(accelerators),
        software=SoftwareInfo(
            os=os, os_release="test", kernel="6.8", python="3.11.9", ort_version="1.32.0"
        ),
    )


def gpu(vendor: str, name: str, driver: str | None, integrated: bool = False) -> Accelerator:
    return Accelerator(
        kind="gpu",
        vendor=vendor,
        name=name,
        driver=driver,
        integrated=integrated,  # type: ignore[arg-type]
    )


def npu(vendor: str, name: str, driver: str | None) -> Accelerator:
    return Accelerator(kind="npu", vendor=vendor, name=name, driver=driver)  # type: ignore[arg-type]


RTX4090 = gpu("nvidia", "NVIDIA GeForce RTX 4090", "nvidia")
MACHINES = {
    "epyc": machine(
        "amd",
        "AMD EPYC 7763 64-Core Processor",
        gpu("other", "ASPEED Graphics Family", "ast"),  # the BMC's display adapter
    ),
    "intel_laptop": machine(
        "intel",
        "Intel(R) Core(TM) Ultra 7 155H",
        gpu("intel", "Intel Arc Graphics", "i915", integrated=True),
        npu("intel", "Intel AI Boost", "intel_vpu"),
    ),
    "amd_desktop": machine(
        "amd",
        "AMD Ryzen 9 7950X 16-Core Processor",
        gpu("amd", "AMD Radeon RX 7900 XTX", "amdgpu"),
        features=(*X86, "avx512f"),
    ),
    "ryzen_ai": machine(
        "amd",
        "AMD Ryzen AI 9 HX 370",
        gpu("amd", "AMD Radeon 890M", "amdgpu", integrated=True),
        npu("amd", "AMD XDNA 2 NPU", "amdxdna"),
    ),
    "rtx4090": machine("intel", "Intel(R) Core(TM) i9-14900K", RTX4090),
    "neoverse": machine(
        "arm", "Neoverse-V2", arch="aarch64", features=("neon", "sve", "i8mm", "bf16")
    ),
    "win_nvidia": machine(
        "intel",
        "13th Gen Intel(R) Core(TM) i7-13700H",
        gpu("nvidia", "NVIDIA GeForce RTX 4060 Laptop GPU", "nvlddmkm"),
        gpu("intel", "Intel(R) Iris(R) Xe Graphics", "igfx", integrated=True),
        os="Windows",
    ),
}

BUILDS = {
    "cpu": ("onnxruntime", ["AzureExecutionProvider", "CPUExecutionProvider"]),
    "gpu": (
        "onnxruntime-gpu",
        [
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "AzureExecutionProvider",
            "CPUExecutionProvider",
        ],
    ),
    "openvino": ("onnxruntime-openvino", ["OpenVINOExecutionProvider", "CPUExecutionProvider"]),
    "directml": ("onnxruntime-directml", ["DmlExecutionProvider", "CPUExecutionProvider"]),
    "migraphx": ("onnxruntime-migraphx", ["MIGraphXExecutionProvider", "CPUExecutionProvider"]),
}


def with_build(inv: Inventory, build: str, *extra: OrtDistribution) -> tuple[Inventory, list[str]]:
    dist, available = BUILDS[build]
    sw = inv.software
    software = SoftwareInfo(
        os=sw.os,
        os_release=sw.os_release,
        kernel=sw.kernel,
        python=sw.python,
        ort_version=sw.ort_version,
        ort_distributions=(OrtDistribution(dist, "1.24.1"), *extra),
        available_providers=tuple(available),
    )
    return (
        Inventory(cpu=inv.cpu, memory=inv.memory, accelerators=inv.accelerators, software=software),
        available,
    )


def make_plan(name: str, build: str, prefs: Preferences | None = None) -> ProviderPlan:
    inv, available = with_build(MACHINES[name], build)
    return plan(inv, available, prefs)


def reasons(p: ProviderPlan, ep: str) -> list[str]:
    return [x.reason for x in p.passed_over if x.ep == ep]


CPU = ("CPUExecutionProvider", "cpu")
FIRST = [
    ("epyc", "cpu", CPU),
    ("epyc", "gpu", CPU),
    ("epyc", "openvino", ("OpenVINOExecutionProvider", "cpu")),
    ("epyc", "directml", CPU),
    ("epyc", "migraphx", CPU),
    ("intel_laptop", "cpu", CPU),
    ("intel_laptop", "gpu", CPU),
    ("intel_laptop", "openvino", ("OpenVINOExecutionProvider", "gpu:0 Intel Arc Graphics")),
    ("intel_laptop", "directml", CPU),
    ("amd_desktop", "cpu", CPU),
    ("amd_desktop", "openvino", ("OpenVINOExecutionProvider", "cpu")),
    ("amd_desktop", "migraphx", ("MIGraphXExecutionProvider", "gpu:0 AMD Radeon RX 7900 XTX")),
    ("ryzen_ai", "cpu", CPU),
    ("ryzen_ai", "migraphx", ("MIGraphXExecutionProvider", "gpu:0 AMD Radeon 890M")),
    ("rtx4090", "cpu", CPU),
    ("rtx4090", "gpu", ("TensorrtExecutionProvider", "gpu:0 NVIDIA GeForce RTX 4090")),
    ("rtx4090", "openvino", ("OpenVINOExecutionProvider", "cpu")),
    ("rtx4090", "migraphx", CPU),
    ("neoverse", "cpu", CPU),
    ("neoverse", "gpu", CPU),
    ("neoverse", "openvino", CPU),
    ("win_nvidia", "cpu", CPU),
    (
        "win_nvidia",
        "gpu",
        ("TensorrtExecutionProvider", "gpu:0 NVIDIA GeForce RTX 4060 Laptop GPU"),
    ),
    (
        "win_nvidia",
        "directml",
        ("DmlExecutionProvider", "gpu:0 NVIDIA GeForce RTX 4060 Laptop GPU"),
    ),
    ("win_nvidia", "openvino", ("OpenVINOExecutionProvider", "gpu:1 Intel(R) Iris(R) Xe Graphics")),
]


@pytest.mark.parametrize(("name", "build", "expected"), FIRST)
def test_first_choice_and_cpu_last(name: str, build: str, expected: tuple[str, str]) -> None:
    p = make_plan(name, build)
    assert (p.first.ep, p.first.device) == expected
    assert p.choices[-1].ep == "CPUExecutionProvider"
    assert sum(c.ep == "CPUExecutionProvider" for c in p.choices) == 1
    assert p.first.reason
    assert all(c.reason and c.short for c in p.choices)
    assert [x.reason for x in p.passed_over if x.ep == "AzureExecutionProvider"] == [
        "remote: calls a hosted endpoint, never planned for local runs"
    ]
    json.dumps(p.to_dict())  # plain data all the way down


def test_nvidia_ranking_and_options() -> None:
    p = make_plan("rtx4090", "gpu")
    assert p.eps == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    cuda = p.find("cuda")
    assert cuda is not None and cuda.options == {"device_id": "0"}
    assert cuda.reason.startswith(
        "NVIDIA GeForce RTX 4090 (driver nvidia) and CUDAExecutionProvider is in this build"
    )
    assert p.find("CUDAExecutionProvider") is cuda
    assert p.find("openvino") is None
    assert reasons(p, "DmlExecutionProvider") == ["not for this OS: runs on Windows only"]
    assert reasons(p, "MIGraphXExecutionProvider") == ["hardware absent: no AMD GPU"]
    assert reasons(p, "NvTensorRTRTXExecutionProvider") == [
        "not in this build: install the plugin onnxruntime-ep-nv-tensorrt-rtx"
    ]
    assert reasons(p, "CoreMLExecutionProvider") == ["not for this OS: runs on macOS only"]


def test_intel_laptop_openvino_targets_gpu_npu_cpu() -> None:
    p = make_plan("intel_laptop", "openvino")
    got = [(c.ep, c.device, c.options) for c in p.choices]
    assert got == [
        ("OpenVINOExecutionProvider", "gpu:0 Intel Arc Graphics", {"device_type": "GPU"}),
        ("OpenVINOExecutionProvider", "npu:0 Intel AI Boost", {"device_type": "NPU"}),
        ("OpenVINOExecutionProvider", "cpu", {"device_type": "CPU"}),
        ("CPUExecutionProvider", "cpu", {}),
    ]
    assert p.unlocks == ()


def test_openvino_on_amd_cpu_ranks_low_and_is_never_suggested() -> None:
    p = make_plan("epyc", "openvino")
    ov = p.find("ov")
    assert ov is not None and ov.device == "cpu"
    assert "Intel supports it on Intel CPUs only" in ov.reason
    assert ov.score < make_plan("rtx4090", "openvino").first.score
    assert make_plan("epyc", "cpu").unlocks == ()


def test_amd_cpu_without_avx2_gets_no_openvino() -> None:
    inv = machine("amd", "AMD Opteron", features=("sse4.2",))
    inv, available = with_build(inv, "openvino")
    p = plan(inv, available)
    assert p.eps == ("CPUExecutionProvider",)
    assert reasons(p, "OpenVINOExecutionProvider") == [
        "hardware absent: no Intel GPU or NPU and no x86-64 CPU with AVX2"
    ]


def test_arm_server_plans_cpu_side_eps() -> None:
    inv, _ = with_build(MACHINES["neoverse"], "cpu")
    p = plan(inv, ["XnnpackExecutionProvider", "ACLExecutionProvider", "CPUExecutionProvider"])
    assert p.eps == ("XnnpackExecutionProvider", "ACLExecutionProvider", "CPUExecutionProvider")
    assert reasons(p, "OpenVINOExecutionProvider") == [
        "hardware absent: no Intel GPU or NPU and no x86-64 CPU with AVX2"
    ]
    assert p.unlocks == ()  # no pip package brings XNNPACK or ACL


UNLOCKS = [
    ("epyc", "cpu", []),
    (
        "intel_laptop",
        "cpu",
        [
            (
                "gpu:0 Intel Arc Graphics",
                "pip uninstall -y onnxruntime && pip install onnxruntime-openvino",
            ),
            (
                "npu:0 Intel AI Boost",
                "pip uninstall -y onnxruntime && pip install onnxruntime-openvino",
            ),
            ("cpu", "pip uninstall -y onnxruntime && pip install onnxruntime-openvino"),
        ],
    ),
    ("intel_laptop", "openvino", []),
    (
        "amd_desktop",
        "cpu",
        [
            (
                "gpu:0 AMD Radeon RX 7900 XTX",
                "pip uninstall -y onnxruntime && pip install onnxruntime-migraphx",
            )
        ],
    ),
    ("amd_desktop", "migraphx", []),
    (
        "ryzen_ai",
        "cpu",
        [
            (
                "gpu:0 AMD Radeon 890M",
                "pip uninstall -y onnxruntime && pip install onnxruntime-migraphx",
            ),
            ("npu:0 AMD XDNA 2 NPU", ""),
        ],
    ),
    ("ryzen_ai", "migraphx", [("npu:0 AMD XDNA 2 NPU", "")]),
    (
        "rtx4090",
        "cpu",
        [
            (
                "gpu:0 NVIDIA GeForce RTX 4090",
                "pip uninstall -y onnxruntime && pip install onnxruntime-gpu",
            ),
            ("cpu", "pip uninstall -y onnxruntime && pip install onnxruntime-openvino"),
        ],
    ),
    # Replacing onnxruntime-gpu would lose CUDA: the OpenVINO plugin installs beside it.
    ("rtx4090", "gpu", [("cpu", "pip install onnxruntime-ep-openvino")]),
    (
        "rtx4090",
        "openvino",
        [
            (
                "gpu:0 NVIDIA GeForce RTX 4090",
                "pip uninstall -y onnxruntime-openvino && pip install onnxruntime-gpu",
            )
        ],
    ),
    ("neoverse", "cpu", []),
    (
        "win_nvidia",
        "directml",
        [
            (
                "gpu:0 NVIDIA GeForce RTX 4060 Laptop GPU",
                "pip uninstall -y onnxruntime-directml && pip install onnxruntime-gpu",
            ),
            ("gpu:1 Intel(R) Iris(R) Xe Graphics", "pip install onnxruntime-ep-openvino"),
            ("cpu", "pip install onnxruntime-ep-openvino"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "build", "expected"), UNLOCKS)
def test_unlocks(name: str, build: str, expected: list[tuple[str, str]]) -> None:
    p = make_plan(name, build)
    assert [(u.device, u.pip) for u in p.unlocks] == expected


def test_unlock_reasons_say_what_happens() -> None:
    p = make_plan("rtx4090", "openvino")
    (u,) = p.unlocks
    assert "onnxruntime-gpu is a full build that replaces onnxruntime-openvino" in u.reason
    # The GPU gains CUDA; the CPU loses OpenVINO: the reason says so.
    assert "replacing the build loses OpenVINOExecutionProvider on cpu" in u.reason
    p = make_plan("win_nvidia", "directml")
    assert "replacing the build loses DmlExecutionProvider on gpu:1" in p.unlocks[0].reason
    assert "installs beside the current build" in p.unlocks[1].reason
    vitis = [u for u in make_plan("ryzen_ai", "cpu").unlocks if u.device.startswith("npu")][0]
    assert vitis.url and "ryzenai" in vitis.url and "Ryzen AI Software" in vitis.reason


def test_plain_onnxruntime_suggests_plugin_as_the_alternative() -> None:
    p = make_plan("intel_laptop", "cpu")
    assert (
        "or, beside onnxruntime >= 1.23: pip install onnxruntime-ep-openvino" in p.unlocks[0].reason
    )
    assert reasons(p, "OpenVINOExecutionProvider") == [
        "not in this build: install onnxruntime-openvino"
    ]


def test_no_kernel_driver_bound() -> None:
    inv = machine(
        "intel", "Intel(R) Core(TM) i9-14900K", gpu("nvidia", "NVIDIA GeForce RTX 4090", None)
    )
    inv, available = with_build(inv, "gpu")
    p = plan(inv, available)
    assert p.first.ep == "CPUExecutionProvider"
    assert "gpu:0 NVIDIA GeForce RTX 4090: no kernel driver bound" in reasons(
        p, "CUDAExecutionProvider"
    )
    assert not [u for u in p.unlocks if u.device.startswith("gpu")]


def test_one_choice_per_device() -> None:
    inv = machine(
        "amd",
        "AMD EPYC 9654",
        gpu("nvidia", "NVIDIA H100 80GB HBM3", "nvidia"),
        gpu("nvidia", "NVIDIA H100 80GB HBM3", "nvidia"),
    )
    inv, available = with_build(inv, "gpu")
    p = plan(inv, available)
    cuda = [(c.device, c.options["device_id"]) for c in p.choices if c.short == "cuda"]
    assert cuda == [("gpu:0 NVIDIA H100 80GB HBM3", "0"), ("gpu:1 NVIDIA H100 80GB HBM3", "1")]
    assert p.first.short == "tensorrt" and p.first.device.startswith("gpu:0")


def test_two_full_builds_warn() -> None:
    inv, available = with_build(
        MACHINES["epyc"], "cpu", OrtDistribution("onnxruntime-openvino", "1.24.1")
    )
    p = plan(inv, available)
    assert len(p.warnings) == 1
    assert "onnxruntime 1.24.1, onnxruntime-openvino 1.24.1" in p.warnings[0]
    assert "overwrite each other" in p.warnings[0]
    inv, available = with_build(
        MACHINES["epyc"], "cpu", OrtDistribution("onnxruntime-ep-openvino", "1.8.1", plugin=True)
    )
    assert plan(inv, available).warnings == ()


def test_prefer_reorders() -> None:
    p = make_plan("rtx4090", "gpu", Preferences(prefer=("cuda",)))
    assert p.eps == ("CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider")
    p = make_plan("rtx4090", "gpu", Preferences(prefer=("CPU",)))
    assert p.first.ep == "CPUExecutionProvider"
    assert p.eps[1:] == ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def test_exclude_and_options() -> None:
    prefs = Preferences(
        exclude=("trt",),
        options={
            "CUDAExecutionProvider": {"device_id": 1, "arena_extend_strategy": "kSameAsRequested"}
        },
    )
    p = make_plan("rtx4090", "gpu", prefs)
    assert p.first.ep == "CUDAExecutionProvider"
    assert p.first.options == {"device_id": 1, "arena_extend_strategy": "kSameAsRequested"}
    assert reasons(p, "TensorrtExecutionProvider") == ["excluded by preferences"]


def test_cpu_cannot_be_excluded() -> None:
    p = make_plan("epyc", "cpu", Preferences(exclude=("cpu",)))
    assert p.eps == ("CPUExecutionProvider",)
    assert any("cannot be excluded" in w for w in p.warnings)


def test_preferring_an_unusable_ep_warns() -> None:
    p = make_plan("epyc", "cpu", Preferences(prefer=("cuda",)))
    assert p.first.ep == "CPUExecutionProvider"
    assert any(
        "Preferred CUDAExecutionProvider is not usable here: hardware absent" in w
        for w in p.warnings
    )


@pytest.mark.parametrize(
    "prefs",
    [
        Preferences(prefer=("cdua",)),
        Preferences(exclude=("openvion",)),
        Preferences(options={"migrapx": {"device_id": 0}}),
    ],
)
def test_unknown_names_in_preferences(prefs: Preferences) -> None:
    with pytest.raises(UnknownProviderError) as info:
        make_plan("rtx4090", "gpu", prefs)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert "Did you mean" in info.value.message


def test_plugin_ep_only_on_the_device_kinds_it_offers() -> None:
    inv, available = with_build(MACHINES["intel_laptop"], "cpu")
    available = [*available, "OpenVINOExecutionProvider"]
    p = plan(inv, available, plugin_device_kinds={"OpenVINOExecutionProvider": {"cpu", "npu"}})
    got = [(c.ep, c.device, c.source) for c in p.choices]
    assert got == [
        ("OpenVINOExecutionProvider", "npu:0 Intel AI Boost", "plugin"),
        ("OpenVINOExecutionProvider", "cpu", "plugin"),
        ("CPUExecutionProvider", "cpu", "build"),
    ]
    assert "is registered as a plugin EP" in p.first.reason
    assert reasons(p, "OpenVINOExecutionProvider") == [
        "gpu:0 Intel Arc Graphics: the plugin EP offers no gpu device here"
    ]
    assert p.unlocks == ()  # the EP is there; more packages would not help


def test_unknown_available_ep_is_passed_over() -> None:
    inv, _ = with_build(MACHINES["epyc"], "cpu")
    p = plan(
        inv,
        [
            "CPUExecutionProvider",
            "ContosoPluginExecutionProvider",
            "OpenVINOExecutionProvider.AUTO",
        ],
    )
    assert reasons(p, "ContosoPluginExecutionProvider") == [
        "not in aia's catalogue: aia does not plan it"
    ]
    assert reasons(p, "OpenVINOExecutionProvider.AUTO") == []


def test_no_onnxruntime_still_plans_cpu_and_warns() -> None:
    p = plan(MACHINES["epyc"], [])
    assert p.eps == ("CPUExecutionProvider",)
    assert any("No ONNX Runtime EPs are available" in w for w in p.warnings)


def test_directml_numbers_every_adapter() -> None:
    p = make_plan("win_nvidia", "directml")
    assert [(c.device[:5], c.options) for c in p.choices if c.short == "dml"] == [
        ("gpu:0", {"device_id": "0"}),
        ("gpu:1", {"device_id": "1"}),
    ]


def test_devices_pin_an_ep_to_a_kind_of_device() -> None:
    p = make_plan("rtx4090", "gpu", Preferences(devices={"nvidia-gpu": "cuda"}))
    assert p.eps == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert reasons(p, "TensorrtExecutionProvider") == [
        "gpu:0 NVIDIA GeForce RTX 4090: preferences use CUDAExecutionProvider on nvidia-gpu"
    ]
    p = make_plan("intel_laptop", "openvino", Preferences(devices={"intel-cpu": "cpu"}))
    assert [c.device_kind for c in p.choices if c.short == "openvino"] == ["gpu", "npu"]
    p = make_plan("epyc", "cpu", Preferences(devices={"amd-gpu": "migraphx"}))
    assert any("not usable on any such device" in w for w in p.warnings)
    with pytest.raises(UnknownProviderError):
        make_plan("epyc", "cpu", Preferences(devices={"amd-gpu": "migrapx"}))


def test_install_hint() -> None:
    from aialliance_cli.providers.catalogue import install_hint

    assert "pip install onnxruntime-gpu" in (install_hint("cuda") or "")
    assert "pip install onnxruntime-ep-openvino" in (
        install_hint("OpenVINOExecutionProvider") or ""
    )
    assert "ryzenai" in (install_hint("vitisai") or "")
    assert install_hint("cpu") is None and install_hint("nonsense") is None
