"""The wire-format scanner reads what onnx reads, on real and test-built models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aialliance_cli.models.protoscan import EXTERNAL, ScanError, scan_bytes, scan_model
from tests.helpers import embedding_model, matmul_model


def _same_as_onnx(path: Path) -> None:
    ref = onnx.load(str(path), load_external_data=False)
    got = scan_model(path)
    assert got.ir_version == ref.ir_version
    assert got.opset_import == [(o.domain, o.version) for o in ref.opset_import]
    assert got.producer_name == ref.producer_name
    assert [(n.name, n.op_type, n.domain, n.inputs, n.outputs) for n in got.graph.nodes] == [
        (n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output)) for n in ref.graph.node
    ]
    assert [(t.name, t.dims, t.data_type) for t in got.graph.initializers] == [
        (t.name, tuple(t.dims), t.data_type) for t in ref.graph.initializer
    ]
    for vi, rv in zip(got.graph.inputs, ref.graph.input, strict=True):
        assert vi.name == rv.name
        assert vi.elem_type == rv.type.tensor_type.elem_type
        dims = tuple(
            d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
            for d in rv.type.tensor_type.shape.dim
        )
        assert vi.dims == dims


def test_matches_onnx_on_test_models(tmp_path: Path) -> None:
    _same_as_onnx(matmul_model(tmp_path / "mm.onnx"))
    _same_as_onnx(embedding_model(tmp_path / "emb.onnx"))


def test_matches_onnx_on_packaged_models() -> None:
    silero = pytest.importorskip("silero_vad")
    folder = Path(silero.__file__).parent / "data"
    models = sorted(folder.glob("*.onnx"))
    if not models:
        pytest.skip("silero-vad ships no ONNX file here")
    for path in models:
        _same_as_onnx(path)
        # Silero's If nodes hold subgraphs: the scanner descends into them.
        scanned = scan_model(path)
        assert scanned.graph is not None


def test_subgraph_and_external_tensors(tmp_path: Path) -> None:
    then_out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])
    const = numpy_helper.from_array(np.ones(1, np.float32), "c")
    then_graph = helper.make_graph(
        [helper.make_node("Constant", [], ["t"], value=const)], "then", [], [then_out]
    )
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=then_graph)
    model = helper.make_model(helper.make_graph([node], "g", [cond], [out]))
    big = numpy_helper.from_array(np.zeros((64, 64), np.float32), "W")
    model.graph.initializer.append(big)
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, location="ext.data", size_threshold=0)
    scanned = scan_model(path)
    tensors = scanned.all_tensors()
    external = [t for t in tensors if t.data_location == EXTERNAL]
    assert [t.external_data["location"] for t in external] == ["ext.data"]
    assert len(scanned.graph.nodes[0].subgraphs) == 2


@pytest.mark.parametrize(
    "data",
    [b"\x08", b"\x08\x08:\xff\xff\xff\x0f", b"\x0f", b"name: not protobuf\n"],
)
def test_malformed_bytes_raise_scan_error(data: bytes) -> None:
    with pytest.raises(ScanError):
        scan_bytes(data)


def test_truncated_file_says_truncated(tmp_path: Path) -> None:
    path = matmul_model(tmp_path / "mm.onnx")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ScanError, match="truncated"):
        scan_model(cut)
