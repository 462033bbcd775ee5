"""The real ONNX Runtime: its EP devices, plugin registration, and the plan for this machine."""

from __future__ import annotations

import platform

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from aialliance_cli.hardware.inventory import CpuInfo, Inventory, MemoryInfo, SoftwareInfo
from aialliance_cli.providers.planner import plan_for_machine
from aialliance_cli.providers.plugins import (
    find_plugin_libraries,
    plugin_devices,
    register_plugins,
    select_ep_devices,
)

ort = pytest.importorskip("onnxruntime")


def this_machine() -> Inventory:
    """A plain inventory of this machine (the planner only needs the CPU and the OS here)."""
    return Inventory(
        cpu=CpuInfo(
            vendor="other",
            model_name=platform.processor() or "cpu",
            architecture=platform.machine().lower(),
            physical_cores=None,
            logical_cores=None,
            sockets=None,
            numa_nodes=None,
        ),
        memory=MemoryInfo(total_bytes=None, available_bytes=None),
        accelerators=(),
        software=SoftwareInfo(
            os=platform.system(),
            os_release=platform.release(),
            kernel=None,
            python=platform.python_version(),
            ort_version=ort.__version__,
        ),
    )


def add_model(path: str) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    node = helper.make_node("Add", ["x", "x"], ["y"])
    graph = helper.make_graph([node], "add", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def test_real_ep_devices_include_the_cpu_ep() -> None:
    devices = plugin_devices(ort)
    cpu = [d for d in devices if d.ep_name == "CPUExecutionProvider"]
    assert cpu, devices
    assert cpu[0].device_type == "cpu"
    assert cpu[0].ep_vendor == "Microsoft"
    assert cpu[0].vendor_id.startswith("0x")
    assert len(select_ep_devices(ort, "CPUExecutionProvider", "cpu")) == len(cpu)


def test_registering_installed_plugins_never_raises() -> None:
    first = register_plugins(ort)
    again = register_plugins(ort)
    assert [(r.package, r.ok) for r in first] == [(r.package, r.ok) for r in again]


def test_plan_for_this_machine() -> None:
    p = plan_for_machine(inventory=this_machine())
    assert p.choices[-1].ep == "CPUExecutionProvider"
    assert any(
        x.ep == "AzureExecutionProvider" and x.reason.startswith("remote") for x in p.passed_over
    )


def test_plan_for_machine_with_detect() -> None:
    pytest.importorskip("aialliance_cli.hardware", reason="hardware.detect not built yet")
    from aialliance_cli import hardware

    if not hasattr(hardware, "detect"):
        pytest.skip("hardware.detect not built yet")
    p = plan_for_machine()
    assert p.choices[-1].ep == "CPUExecutionProvider"


def test_openvino_plugin_runs_a_session(tmp_path) -> None:
    """With onnxruntime-ep-openvino installed and a CPU device offered, a real session runs."""
    pytest.importorskip("onnxruntime_ep_openvino")
    libs = [lib for lib in find_plugin_libraries() if lib.package == "onnxruntime-ep-openvino"]
    assert libs and libs[0].ep_name == "OpenVINOExecutionProvider"
    (reg,) = [r for r in register_plugins(ort) if r.package == "onnxruntime-ep-openvino"]
    assert reg.ok, reg.note
    devices = [
        d
        for d in select_ep_devices(ort, "OpenVINOExecutionProvider", "cpu")
        if d.ep_metadata.get("ov_device") == "CPU"
    ]
    if not devices:
        pytest.skip("the OpenVINO plugin offers no CPU device on this CPU")
    model = str(tmp_path / "add.onnx")
    add_model(model)
    so = ort.SessionOptions()
    so.add_provider_for_devices(devices[:1], {})
    sess = ort.InferenceSession(model, sess_options=so)
    assert "OpenVINOExecutionProvider" in sess.get_providers()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, x + x)
