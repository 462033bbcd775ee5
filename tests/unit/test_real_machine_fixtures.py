"""Inventories recorded by `aia detect --json` on real machines, replayed through the planner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aialliance_cli.hardware.inventory import Inventory
from aialliance_cli.providers.planner import plan

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real_machines"


def _load(name: str) -> dict:
    return json.loads((REAL / name).read_text())


def test_h200_host_round_trips_and_is_read_faithfully():
    data = _load("nvidia_h200_16core_xeon.detect.json")
    inv = Inventory.from_dict(data["inventory"])
    assert json.loads(json.dumps(inv.to_dict())) == data["inventory"]
    (gpu,) = inv.gpus
    assert (gpu.vendor, gpu.driver, gpu.architecture) == ("nvidia", "nvidia", "sm_90")
    assert "nvml" in " ".join(gpu.sources)
    assert gpu.memory_bytes and gpu.memory_bytes > 130 * 2**30
    assert inv.cpu.logical_cores == 16 and inv.cpu.has("amx_tile")


def test_h200_host_plan_cpu_build_suggests_onnxruntime_gpu():
    data = _load("nvidia_h200_16core_xeon.detect.json")
    # The plan recorded on the machine (a CPU-only onnxruntime there).
    assert data["plan"]["choices"][0]["ep"] == "CPUExecutionProvider"
    assert any("onnxruntime-gpu" in u["pip"] for u in data["plan"]["unlocks"])


@pytest.mark.parametrize(
    ("available", "first"),
    [
        (
            ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
            "TensorrtExecutionProvider",
        ),
        (("CUDAExecutionProvider", "CPUExecutionProvider"), "CUDAExecutionProvider"),
    ],
)
def test_h200_host_plan_with_gpu_builds(available, first):
    inv = Inventory.from_dict(_load("nvidia_h200_16core_xeon.detect.json")["inventory"])
    p = plan(inv, available)
    assert p.choices[0].ep == first
    assert "H200" in p.choices[0].device
    assert p.choices[-1].ep == "CPUExecutionProvider"
    assert not any("onnxruntime-gpu" in u.pip for u in p.unlocks)
