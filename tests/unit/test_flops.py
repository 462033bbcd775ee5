"""FLOP counts of small graphs built with onnx.helper, checked against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from aialliance_cli.analysis.flops import count_flops
from aialliance_cli.errors import BadInputError


def _model(nodes, inputs, outputs, inits=(), ms=False):
    opsets = [h.make_opsetid("", 17)]
    if ms:
        opsets.append(h.make_opsetid("com.microsoft", 1))
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in inputs],
        [h.make_tensor_value_info(n, T.FLOAT, None) for n in outputs],
        list(inits),
    )
    return h.make_model(graph, opset_imports=opsets)


def _w(name, *shape):
    return nh.from_array(np.zeros(shape, np.float32), name)


def test_gemm_with_and_without_bias():
    nodes = [h.make_node("Gemm", ["a", "b", "c"], ["y"], name="gemm_c")]
    m = _model(nodes, [("a", [4, 8])], ["y"], [_w("b", 8, 16), _w("c", 16)])
    assert count_flops(m).total == 2 * 4 * 16 * 8 + 4 * 16

    nodes = [h.make_node("Gemm", ["a", "b"], ["y"], name="gemm", transB=1)]
    m = _model(nodes, [("a", [4, 8])], ["y"], [_w("b", 16, 8)])
    report = count_flops(m)
    assert report.total == 2 * 4 * 16 * 8
    assert report.by_node == {"gemm": 1024}
    assert report.by_op_type == {"Gemm": 1024}


def test_matmul_batched_and_broadcast():
    nodes = [h.make_node("MatMul", ["a", "b"], ["y"], name="mm")]
    m = _model(nodes, [("a", [2, 3, 4, 5])], ["y"], [_w("b", 5, 6)])
    assert count_flops(m).total == 2 * (2 * 3) * 4 * 6 * 5

    m = _model(nodes, [("a", [2, 1, 4, 5]), ("b", [7, 5, 6])], ["y"])
    assert count_flops(m).total == 2 * (2 * 7) * 4 * 6 * 5


def test_matmul_symbolic_dims_fixed_by_value():
    nodes = [h.make_node("MatMul", ["a", "b"], ["y"], name="mm")]
    m = _model(nodes, [("a", ["batch", "seq", 32])], ["y"], [_w("b", 32, 64)])
    report = count_flops(m, {"batch": 2, "seq": 10})
    assert report.total == 2 * 2 * 10 * 64 * 32
    assert report.unresolved == ()
    # the caller's model is not modified
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_symbolic_dim_without_value_is_unresolved_with_its_name():
    nodes = [
        h.make_node("MatMul", ["a", "b"], ["t"], name="mm"),
        h.make_node("Relu", ["t"], ["y"], name="relu"),
    ]
    m = _model(nodes, [("a", ["batch", "seq", 32])], ["y"], [_w("b", 32, 64)])
    report = count_flops(m, {"batch": 1})
    assert report.total == 0
    assert len(report.unresolved) == 2
    assert report.unresolved[0].startswith("mm (MatMul)")
    assert "seq" in report.unresolved[0] and "--dim seq=VALUE" in report.unresolved[0]
    assert "batch" not in report.unresolved[0]


def test_unknown_dim_name_is_bad_input():
    nodes = [h.make_node("Relu", ["a"], ["y"], name="relu")]
    m = _model(nodes, [("a", ["batch", 4])], ["y"])
    with pytest.raises(BadInputError, match="sequence.*batch"):
        count_flops(m, {"sequence": 4})


def test_conv_stride_padding_bias():
    nodes = [
        h.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", strides=[2, 2], pads=[1, 1, 1, 1])
    ]
    m = _model(nodes, [("x", [1, 3, 32, 32])], ["y"], [_w("w", 16, 3, 3, 3), _w("b", 16)])
    out = 16 * 16 * 16  # Cout * Hout * Wout
    assert count_flops(m).total == 2 * out * 3 * 3 * 3 + out


def test_conv_groups():
    nodes = [h.make_node("Conv", ["x", "w"], ["y"], name="conv", group=4)]
    m = _model(nodes, [("x", [2, 8, 10, 10])], ["y"], [_w("w", 8, 2, 3, 3)])
    # N=2, Cout=8, 8x8 output, Cin/group=2, 3x3 kernel
    assert count_flops(m).total == 2 * 2 * 8 * 64 * 2 * 9


def test_conv_transpose():
    nodes = [h.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="deconv", strides=[2, 2])]
    m = _model(nodes, [("x", [1, 4, 5, 5])], ["y"], [_w("w", 4, 2, 3, 3), _w("b", 2)])
    # every input element (4*25) scatters into Cout(2) * 3x3 outputs; bias on 2x11x11
    assert count_flops(m).total == 2 * 4 * 25 * 2 * 9 + 2 * 11 * 11


def test_attention_block_from_matmul_softmax_transpose():
    b, heads, s, hd = 2, 4, 8, 4
    nodes = [
        h.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
        h.make_node("MatMul", ["q", "kt"], ["scores"], name="qk"),
        h.make_node("Softmax", ["scores"], ["probs"], name="softmax", axis=-1),
        h.make_node("MatMul", ["probs", "v"], ["y"], name="av"),
    ]
    shape = [b, heads, s, hd]
    m = _model(nodes, [("q", shape), ("k", shape), ("v", shape)], ["y"])
    report = count_flops(m)
    matmul = 2 * b * heads * s * s * hd
    assert report.by_node == {"qk": matmul, "softmax": 5 * b * heads * s * s, "av": matmul}
    assert report.by_op_type == {"MatMul": 2 * matmul, "Softmax": 5 * b * heads * s * s}
    assert "kt" not in report.by_node  # data movement counts nothing


def test_com_microsoft_attention():
    b, s, hidden, heads = 2, 8, 16, 4
    nodes = [
        h.make_node(
            "Attention",
            ["x", "w", "bias"],
            ["y"],
            name="att",
            domain="com.microsoft",
            num_heads=heads,
        ),
        h.make_node("Relu", ["y"], ["z"], name="relu"),
    ]
    m = _model(
        nodes,
        [("x", ["batch", "seq", hidden])],
        ["z"],
        [_w("w", hidden, 3 * hidden), _w("bias", 3 * hidden)],
        ms=True,
    )
    report = count_flops(m, {"batch": b, "seq": s})
    projection = 2 * b * s * hidden * 3 * hidden + b * s * 3 * hidden
    scores = 2 * b * s * s * hidden * 2 + 5 * b * heads * s * s
    assert report.by_node["att"] == projection + scores
    # the Relu after the contrib op needs ORT's symbolic shape inference
    assert report.by_node["relu"] == b * s * hidden
    assert report.unresolved == ()


def test_einsum_two_operands():
    nodes = [h.make_node("Einsum", ["a", "b"], ["y"], name="es", equation="bij,bjk->bik")]
    m = _model(nodes, [("a", [2, 3, 4]), ("b", [2, 4, 5])], ["y"])
    assert count_flops(m).total == 2 * 2 * 3 * 4 * 5


def test_elementwise_broadcast_and_layernorm():
    nodes = [
        h.make_node("Add", ["a", "c"], ["t"], name="add"),
        h.make_node("LayerNormalization", ["t", "g"], ["y"], name="ln", axis=-1),
    ]
    m = _model(nodes, [("a", [2, 3, 8])], ["y"], [_w("c", 8), _w("g", 8)])
    report = count_flops(m)
    assert report.by_node == {"add": 48, "ln": 5 * 48}
    assert list(report.by_op_type) == ["LayerNormalization", "Add"]  # sorted by FLOPs, desc


def test_matmul_integer_counts_operations():
    a = h.make_tensor_value_info("a", T.UINT8, [4, 8])
    graph = h.make_graph(
        [h.make_node("MatMulInteger", ["a", "b"], ["y"], name="mmi")],
        "g",
        [a],
        [h.make_tensor_value_info("y", T.INT32, None)],
        [nh.from_array(np.zeros((8, 3), np.uint8), "b")],
    )
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    assert count_flops(m).by_op_type == {"MatMulInteger": 2 * 4 * 3 * 8}


def test_to_dict_is_json_ready():
    import json

    nodes = [h.make_node("Relu", ["a"], ["y"], name="relu")]
    d = count_flops(_model(nodes, [("a", [2, 2])], ["y"])).to_dict()
    assert json.loads(json.dumps(d))["total"] == 4


def test_unnamed_axis_is_given_as_input_index():
    nodes = [h.make_node("Relu", ["a"], ["y"], name="relu")]
    m = _model(nodes, [("a", [None, 4])], ["y"])
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1  # as some exporters write it
    report = count_flops(m)
    assert report.total == 0
    assert "--dim a[0]=VALUE" in report.unresolved[0]
    assert count_flops(m, {"a[0]": 3}).total == 12


def test_control_flow_subgraphs_are_reported_not_counted():
    body = h.make_graph(
        [h.make_node("Relu", ["a"], ["r"], name="inner")],
        "then",
        [],
        [h.make_tensor_value_info("r", T.FLOAT, [4])],
    )
    nodes = [
        h.make_node("Cast", ["c"], ["cb"], to=T.BOOL, name="cast"),
        h.make_node("If", ["cb"], ["y"], then_branch=body, else_branch=body, name="if"),
    ]
    m = _model(nodes, [("a", [4]), ("c", [])], ["y"])
    report = count_flops(m)
    assert report.total == 0
    assert report.unresolved == ("if (If): the nodes of its subgraphs are not counted",)
