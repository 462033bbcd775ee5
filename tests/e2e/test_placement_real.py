"""Placement read from real ONNX Runtime CPU sessions: the API, the verbose log, providers."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from aialliance_cli.analysis.flops import count_flops
from aialliance_cli.analysis.placement import (
    capture_session_log,
    detect_silent_cpu_fallback,
    enable_placement_log,
    enable_placement_recording,
    parse_placement_log,
    read_placement,
)

CPU = "CPUExecutionProvider"


@pytest.fixture
def model():
    nodes = [
        h.make_node("MatMul", ["x", "w"], ["t"], name="mm"),
        h.make_node("Add", ["t", "b"], ["u"], name="add"),
        h.make_node("Relu", ["u"], ["v"], name="relu"),
        h.make_node("MatMul", ["v", "w2"], ["y"], name="mm2"),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 16])],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])],
        [
            nh.from_array(np.ones((16, 8), np.float32), "w"),
            nh.from_array(np.ones(8, np.float32), "b"),
            nh.from_array(np.ones((8, 4), np.float32), "w2"),
        ],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def test_api_places_every_node_on_cpu(model):
    so = ort.SessionOptions()
    enable_placement_recording(so)
    session = ort.InferenceSession(model.SerializeToString(), so, providers=[CPU])
    flops = count_flops(model, {"batch": 2})
    p = read_placement(session, model, flops, CPU)
    assert p.source == "api"
    assert set(p.nodes_by_ep) == {CPU}
    # ORT fuses MatMul+Add into one Gemm before it assigns nodes, so 3 nodes, not 4
    assert 1 <= p.total_nodes <= 4
    assert p.share_nodes_requested == 1.0
    assert p.share_flops_requested == 1.0
    assert p.flops_by_ep == {CPU: flops.total}
    assert p.fallback_nodes == ()
    assert p.memcpy_nodes == 0
    assert p.summary_line().startswith(f"{CPU}: {p.total_nodes}/{p.total_nodes} nodes, 100.0%")
    assert p.to_dict()["source"] == "api"


def test_without_recording_falls_back_to_providers(model):
    session = ort.InferenceSession(model.SerializeToString(), providers=[CPU])
    p = read_placement(session, model, None, CPU)
    assert p.source == "providers"
    assert p.nodes_by_ep == {CPU: 4}
    assert p.share_nodes_requested == 1.0


def test_log_fallback_on_real_verbose_log(model):
    so = ort.SessionOptions()
    enable_placement_log(so)
    session, log = capture_session_log(
        lambda: ort.InferenceSession(model.SerializeToString(), so, providers=[CPU])
    )
    assert "Node placements" in log
    assert f"All nodes placed on [{CPU}]" in log
    counts, nodes = parse_placement_log(log)
    assert set(counts) == {CPU} and counts[CPU] >= 1
    assert nodes == []  # the single-EP form gives only a count
    flops = count_flops(model, {"batch": 3})
    p = read_placement(session, model, flops, CPU, log_text=log, prefer="log")
    assert p.source == "log"
    assert p.share_nodes_requested == 1.0
    assert p.share_flops_requested == 1.0
    # the session still works after stderr was redirected and restored
    out = session.run(None, {"x": np.ones((3, 16), np.float32)})[0]
    assert out.shape == (3, 4)


def test_log_parser_multi_ep_form_and_flops_mapping(model):
    # The per-EP form of the same ORT 1.32 log (session_state.cc, VerifyEachNodeIsAssignedToAnEp),
    # as printed when a GPU/NPU EP leaves nodes to the CPU; this machine has no such EP.
    prefix = "2026-11-26 01:41:12.656030214 [V:onnxruntime:, session_state.cc:1598 "
    log = "\n".join(
        prefix + "VerifyEachNodeIsAssignedToAnEp]" + text
        for text in (
            " Node placements",
            "  Node(s) placed on [OpenVINOExecutionProvider]. Number of nodes: 2",
            "   Gemm (mm/MatMulAddFusion)",
            "   MemcpyFromHost (Memcpy)",
            "  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2",
            "   Relu (relu)",
            "   MatMul (mm2)",
        )
    )
    counts, nodes = parse_placement_log(log + "\n2026-11-26 [V:onnxruntime:, x.cc:1 Other] done")
    assert counts == {"OpenVINOExecutionProvider": 2, CPU: 2}
    assert [(n.op_type, n.name, n.ep) for n in nodes][0] == (
        "Gemm",
        "mm/MatMulAddFusion",
        "OpenVINOExecutionProvider",
    )

    class _Session:  # providers only; placement comes from the log text
        def get_providers(self):
            return ["OpenVINOExecutionProvider", CPU]

    flops = count_flops(model, {"batch": 1})
    p = read_placement(_Session(), model, flops, "OpenVINOExecutionProvider", log_text=log)
    assert p.source == "log"
    assert p.memcpy_nodes == 1
    assert p.share_nodes_requested == 0.5
    assert {n for n, _, _ in p.fallback_nodes} == {"relu", "mm2"}
    # "add" was fused into mm's Gemm: its FLOPs go to the EP with most matched FLOPs
    mm, add, relu, mm2 = (flops.by_node[k] for k in ("mm", "add", "relu", "mm2"))
    assert p.flops_by_ep == {"OpenVINOExecutionProvider": mm + add, CPU: relu + mm2}
    assert p.flops_matched_share == pytest.approx(1 - add / flops.total)
    assert "2 nodes on CPU: relu, mm2" in p.summary_line()


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_silent_cpu_fallback_is_detected(model):
    asked = [("CUDAExecutionProvider", {}), CPU]
    session = ort.InferenceSession(model.SerializeToString(), providers=asked)
    message = detect_silent_cpu_fallback(session, asked)
    assert message is not None and "CUDAExecutionProvider" in message
    assert detect_silent_cpu_fallback(session, [CPU]) is None
