"""Per-op profile of a real ONNX Runtime session on a small MatMul/Relu model."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from aialliance_cli.analysis.opprofile import compare_profiles, parse_profile
from aialliance_cli.errors import BadInputError

WARMUP, RUNS = 2, 5


def _profile(tmp_path, optimization: ort.GraphOptimizationLevel):
    nodes = [
        h.make_node("MatMul", ["x", "w"], ["t"], name="mm"),
        h.make_node("Relu", ["t"], ["u"], name="relu"),
        h.make_node("MatMul", ["u", "w2"], ["y"], name="mm2"),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, [8, 64])],
        [h.make_tensor_value_info("y", T.FLOAT, [8, 16])],
        [
            nh.from_array(np.ones((64, 32), np.float32), "w"),
            nh.from_array(np.ones((32, 16), np.float32), "w2"),
        ],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / f"prof{int(optimization)}")
    so.graph_optimization_level = optimization
    session = ort.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    x = np.ones((8, 64), np.float32)
    for _ in range(WARMUP + RUNS):
        session.run(None, {"x": x})
    return session.end_profiling()


@pytest.fixture
def trace(tmp_path):
    return _profile(tmp_path, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)


def test_profile_of_real_session(trace):
    p = parse_profile(trace, warmup_runs=WARMUP)
    assert p.runs == RUNS
    assert {s.op_type for s in p.by_op_type} == {"MatMul", "Relu"}
    assert all(s.ep == "CPUExecutionProvider" for s in p.by_op_type)
    assert {s.name for s in p.by_node} == {"mm", "relu", "mm2"}
    assert all(s.calls == RUNS for s in p.by_node)
    assert {s.op_type: s.calls for s in p.by_op_type} == {"MatMul": 2 * RUNS, "Relu": RUNS}
    assert sum(s.share for s in p.by_op_type) == pytest.approx(1.0)
    assert sum(s.share for s in p.by_node) == pytest.approx(1.0)
    assert p.kernel_us_total == pytest.approx(sum(s.total_us for s in p.by_node))
    assert p.run_us_total >= p.kernel_us_total
    assert p.session_overhead_us == pytest.approx(p.run_us_total - p.kernel_us_total)
    assert p.memcpy_us == 0
    assert p.top(1) == p.by_op_type[:1]
    assert json.loads(json.dumps(p.to_dict()))["runs"] == RUNS


def test_warmup_runs_are_dropped(trace):
    everything = parse_profile(trace)
    assert everything.runs == WARMUP + RUNS
    assert all(s.calls == WARMUP + RUNS for s in everything.by_node)


def test_compare_fused_and_unfused(tmp_path, trace):
    fused = _profile(tmp_path, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    a = parse_profile(trace, warmup_runs=WARMUP)
    b = parse_profile(fused, warmup_runs=WARMUP)
    rows = {r.op_type: r for r in compare_profiles(a, b)}
    assert "MatMul" in rows
    assert rows["MatMul"].a_eps == ("CPUExecutionProvider",)
    for row in rows.values():
        if row.a_us_per_run and row.b_us_per_run:
            assert row.speedup == pytest.approx(row.a_us_per_run / row.b_us_per_run)


def test_bad_trace_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        parse_profile(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BadInputError, match="bad.json"):
        parse_profile(bad)
