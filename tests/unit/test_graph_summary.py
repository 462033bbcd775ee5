"""summarize() on models built here: initializers, external data, custom domains."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from aialliance_cli.analysis.graph import summarize
from aialliance_cli.errors import BadInputError, ModelError


def _model():
    w = nh.from_array(np.ones((16, 8), np.float32), "w")  # 128 params, 512 bytes
    b = nh.from_array(np.ones(8, np.float32), "b")  # 8 params, 32 bytes
    nodes = [
        h.make_node("MatMul", ["x", "w"], ["t"], name="mm"),
        h.make_node("Add", ["t", "b"], ["u"], name="add"),
        h.make_node("Relu", ["u"], ["v"], name="relu"),
        h.make_node("Relu", ["v"], ["r"], name="relu2"),
        h.make_node("MyOp", ["r"], ["y"], name="custom", domain="my.custom"),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [
            h.make_tensor_value_info("x", T.FLOAT, ["batch", 16]),
            h.make_tensor_value_info("ids", T.INT64, ["batch", 3]),
        ],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 8])],
        [w, b],
    )
    model = h.make_model(
        graph,
        opset_imports=[h.make_opsetid("", 17), h.make_opsetid("my.custom", 1)],
        producer_name="aia-test",
        producer_version="1.2",
    )
    model.ir_version = 9
    return model


def test_summary_with_external_data(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save_model(
        _model(),
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    s = summarize(path, {"batch": 2})
    assert s.ir_version == 9
    assert s.opset_imports == {"ai.onnx": 17, "my.custom": 1}
    assert (s.producer_name, s.producer_version) == ("aia-test", "1.2")
    assert [(i.name, i.dtype, i.shape) for i in s.inputs] == [
        ("x", "float32", ("batch", 16)),
        ("ids", "int64", ("batch", 3)),
    ]
    assert [(o.name, o.dtype, o.shape) for o in s.outputs] == [("y", "float32", ("batch", 8))]
    assert s.parameter_count == 16 * 8 + 8
    assert s.parameter_bytes == (16 * 8 + 8) * 4
    assert s.external_data_files == ("model.onnx.data",)
    assert s.node_count == 5
    assert s.nodes_by_op_type == {"Relu": 2, "Add": 1, "MatMul": 1, "MyOp": 1}
    assert s.custom_domains == ("my.custom",)
    assert s.contrib_domains == ()
    assert s.flops_by_op_type == {"MatMul": 2 * 2 * 8 * 16, "Add": 16, "Relu": 32}
    assert s.flops_total == 512 + 16 + 32
    assert s.unknown_dims == ()
    d = json.loads(json.dumps(s.to_dict()))
    assert d["inputs"][0] == {"name": "x", "dtype": "float32", "shape": ["batch", 16]}


def test_summary_inline_weights_and_unknown_dims(tmp_path):
    path = tmp_path / "inline.onnx"
    onnx.save_model(_model(), str(path))
    s = summarize(path)
    assert s.external_data_files == ()
    assert s.parameter_bytes == 544
    assert s.unknown_dims == ("batch",)
    assert s.flops_total == 0
    assert any("--dim batch=VALUE" in u for u in s.unresolved)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        summarize(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ModelError, match="bad.onnx"):
        summarize(bad)
    path = tmp_path / "m.onnx"
    onnx.save_model(_model(), str(path))
    with pytest.raises(BadInputError, match="seq"):
        summarize(path, {"seq": 3})
