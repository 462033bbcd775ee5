"""Mixed placement for real: ONNX Runtime's OpenVINO build takes every node but one.

The com.microsoft ``Inverse`` op has a CPU kernel in ONNX Runtime but no OpenVINO
conversion (checked with onnxruntime-openvino 1.24.1; ``FastGelu``, ``Einsum``,
``Trilu``, ``CumSum`` and ``Celu`` were all taken by OpenVINO), so a graph
MatMul -> Reshape -> Inverse -> Reshape -> MatMul runs as two OpenVINO subgraphs
around one CPU node. The scripts run in a Python with ``onnxruntime-openvino``
(tests/ovenv.py), importing aialliance_cli from the repo.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovenv import openvino_python, ov_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.openvino]

CPU = "CPUExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"

PLACEMENT_SCRIPT = """
import json, sys
import numpy as np, onnx, onnxruntime as ort
from aialliance_cli.analysis.flops import count_flops
from aialliance_cli.analysis.placement import (
    capture_session_log, enable_placement_log, enable_placement_recording, read_placement,
)

path = sys.argv[1]
model = onnx.load(path)
flops = count_flops(model, {})
so = ort.SessionOptions()
enable_placement_recording(so)
enable_placement_log(so)
providers = [("OpenVINOExecutionProvider", {"device_type": "CPU"}), "CPUExecutionProvider"]
session, log = capture_session_log(lambda: ort.InferenceSession(path, so, providers=providers))
x = np.load(sys.argv[2])
(y,) = session.run(None, {"x": x})
has_api = hasattr(session, "get_provider_graph_assignment_info")
print(json.dumps({
    "ort": ort.__version__,
    "providers": session.get_providers(),
    "has_api": has_api,
    "placement": read_placement(session, model, flops, "OpenVINOExecutionProvider").to_dict(),
    "from_log": read_placement(
        session, model, flops, "OpenVINOExecutionProvider", log_text=log, prefer="log"
    ).to_dict(),
    "y": y.tolist(),
}))
"""

PROFILE_SCRIPT = """
import json, sys
from aialliance_cli.runtime.api import Overrides
from aialliance_cli.runtime.oprun import profile

run = profile(sys.argv[1], ["cpu", "openvino"], Overrides(iterations=3, warmup=1))
print(json.dumps(run.to_dict(), default=str))
"""


@pytest.fixture(scope="module")
def ov_python() -> Path:
    return openvino_python()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """The model, an input and the expected output (numpy)."""
    rng = np.random.default_rng(0)
    w = (np.eye(8) + 0.1 * rng.standard_normal((8, 8))).astype(np.float32)
    w2 = rng.standard_normal((8, 8)).astype(np.float32)
    x = (rng.standard_normal((4, 8)) + 2 * np.eye(4, 8)).astype(np.float32)
    nodes = [
        h.make_node("MatMul", ["x", "w"], ["a"], name="mm1"),
        h.make_node("Reshape", ["a", "blocks"], ["a3"], name="to_blocks"),
        h.make_node("Inverse", ["a3"], ["b3"], name="odd", domain="com.microsoft"),
        h.make_node("Reshape", ["b3", "flat"], ["b"], name="to_flat"),
        h.make_node("MatMul", ["b", "w2"], ["y"], name="mm2"),
    ]
    graph = h.make_graph(
        nodes,
        "mixed",
        [h.make_tensor_value_info("x", T.FLOAT, [4, 8])],
        [h.make_tensor_value_info("y", T.FLOAT, [4, 8])],
        [
            nh.from_array(w, "w"),
            nh.from_array(w2, "w2"),
            nh.from_array(np.array([2, 4, 4], np.int64), "blocks"),
            nh.from_array(np.array([4, 8], np.int64), "flat"),
        ],
    )
    model = h.make_model(
        graph,
        opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft", 1)],
        ir_version=8,
    )
    folder = tmp_path_factory.mktemp("ov-mixed")
    path = folder / "mixed.onnx"
    onnx.save(model, str(path))
    expected = np.linalg.inv((x @ w).reshape(2, 4, 4)).reshape(4, 8) @ w2
    return path, x, expected


def run_in_ov(python: Path, script: str, *args: str) -> dict:
    done = subprocess.run(
        [str(python), "-c", script, *args],
        capture_output=True,
        text=True,
        env=ov_env(),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mixed_placement_under_openvino(ov_python: Path, mixed, tmp_path: Path) -> None:
    path, x, expected = mixed
    np.save(tmp_path / "x.npy", x)
    out = run_in_ov(ov_python, PLACEMENT_SCRIPT, str(path), str(tmp_path / "x.npy"))
    assert out["providers"][0] == OPENVINO
    np.testing.assert_allclose(np.array(out["y"]), expected, rtol=1e-3, atol=1e-3)

    p = out["placement"]
    # ORT 1.24.1 (onnxruntime-openvino) has the assignment API; without it, the log stands in
    assert p["source"] == ("api" if out["has_api"] else "log")
    assert set(p["nodes_by_ep"]) == {OPENVINO, CPU}
    assert 0 < p["share_nodes_requested"] < 1
    if out["has_api"]:  # the API lists the original nodes inside the OpenVINO subgraphs
        assert p["nodes_by_ep"] == {OPENVINO: 4, CPU: 1}
    assert [(n["name"], n["op_type"], n["ep"]) for n in p["fallback_nodes"]] == [
        ("odd", "Inverse", CPU)
    ]

    # The log fallback, for real: ORT's verbose log counts each compiled OpenVINO
    # subgraph as one node, so its counts are 2 (subgraphs) and 1 (Inverse).
    log = out["from_log"]
    assert log["source"] == "log"
    assert log["nodes_by_ep"] == {OPENVINO: 2, CPU: 1}
    assert 0 < log["share_nodes_requested"] < 1
    assert ("odd", "Inverse", CPU) in [
        (n["name"], n["op_type"], n["ep"]) for n in log["fallback_nodes"]
    ]


def test_profile_compares_cpu_and_openvino(ov_python: Path, mixed) -> None:
    path, _, _ = mixed
    out = run_in_ov(ov_python, PROFILE_SCRIPT, str(path))
    assert out["status"] == "ok" and out["skipped"] == []
    cpu, ov = out["results"]
    assert cpu["ep"]["name"] == CPU and ov["ep"]["name"] == OPENVINO
    assert ov["ep"]["placement"]["fallback_nodes"][0]["op_type"] == "Inverse"
    assert "odd" in ov["ep"]["placement"]["summary"]
    (cmp,) = out["comparisons"]
    rows = {r["op_type"]: r for r in cmp["by_op_type"]}
    # the Inverse ran on the CPU on both sides: on the OpenVINO side it fell back
    assert rows["Inverse"]["b_eps"] == [CPU] and rows["Inverse"]["a_eps"] == [CPU]
    # OpenVINO ran the rest as compiled subgraphs that the CPU profile does not have
    compiled = [r for r in cmp["by_op_type"] if r["b_eps"] == [OPENVINO]]
    assert compiled and all(r["a_us_per_run"] is None for r in compiled)
    assert rows["MatMul"]["b_us_per_run"] is None
    assert all(r["calls"] == 3 for r in ov["metrics"]["by_op_type"])
