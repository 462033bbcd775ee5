"""Precision variants: the profile schema and quantized variants made once and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aialliance_cli.errors import BadInputError, ProfileError
from aialliance_cli.profiles import load_profile

HEAD = "schema: aia.profile/1\nname: mm\nmodel: mm.onnx\n"


def matmul_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32), "w"
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_profile(folder: Path, variants: str) -> Path:
    matmul_model(folder / "mm.onnx")
    path = folder / "mm.yaml"
    path.write_text(HEAD + variants, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("variants", "needle"),
    [
        ("variants:\n  int8: {}\n", "exactly one of model or quantize"),
        ("variants:\n  int8: {quantize: dynamic, model: x.onnx}\n", "exactly one"),
        ("variants:\n  int8: {quantize: int4}\n", "quantize"),
        ("variants:\n  Int8: {quantize: dynamic}\n", "a-z, 0-9"),
        ("variants:\n  base: {quantize: dynamic}\n", "reserved"),
        ("variants:\n  h: {quantize: fp16, weight_type: qint8}\n", "only appl"),
        ("variants:\n  h: {quantize: dynamic, bits: 4}\n", "bits"),
        ("variants:\n  s: {quantize: dynamic, calibration: 4}\n", "calibration only"),
        ("variants:\n  s: {quantize: static, calibration: 0}\n", "calibration"),
    ],
)
def test_schema_errors_name_file_line_and_key(tmp_path: Path, variants: str, needle: str) -> None:
    path = write_profile(tmp_path, variants)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    msg = str(err.value)
    # Name errors point at the variants: key (line 4), spec errors at the variant (line 5).
    assert needle in msg and "variants" in msg
    assert "mm.yaml:5" in msg or "mm.yaml:4" in msg


def test_good_variants_load(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        "variants:\n  int8: {quantize: dynamic, weight_type: quint8, per_channel: true}\n"
        "  other: {model: mm.onnx}\n  half: {quantize: fp16}\n",
    )
    prof = load_profile(path).profile
    assert prof.variant_names() == ["base", "int8", "other", "half"]
    assert prof.variants["other"].model.file == "mm.onnx"


def _target(tmp_path: Path, variants: str):
    from aialliance_cli.runtime.api import prepare_target

    return prepare_target(str(write_profile(tmp_path, variants)))


def test_quantize_dynamic_is_made_once_and_cached(tmp_path: Path, monkeypatch) -> None:
    import onnx
    import onnxruntime as ort

    from aialliance_cli.models import variants as V

    tgt = _target(tmp_path, "variants:\n  int8: {quantize: dynamic}\n")
    int8 = V.resolve_variant(tgt, "int8")
    assert int8.model_info["variant"] == "int8" and int8.model_path != tgt.model_path
    ops = {n.op_type for n in onnx.load(str(int8.model_path)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    x = np.random.default_rng(1).standard_normal((2, 64)).astype(np.float32)
    ref = ort.InferenceSession(str(tgt.model_path)).run(None, {"x": x})[0]
    got = ort.InferenceSession(str(int8.model_path)).run(None, {"x": x})[0]
    cos = (ref * got).sum() / np.linalg.norm(ref) / np.linalg.norm(got)
    assert cos > 0.98

    def boom(*_a, **_k):
        raise AssertionError("quantized again")

    from aialliance_cli.tune import quantize as Q

    monkeypatch.setattr(Q, "_quantize_dynamic", boom)
    again = V.resolve_variant(tgt, "int8")
    assert again.model_path == int8.model_path
    assert V.resolve_variant(tgt, "base").model_path == tgt.model_path


def test_fp16_and_model_variants(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from aialliance_cli.models import variants as V

    tgt = _target(tmp_path, "variants:\n  half: {quantize: fp16}\n  same: {model: mm.onnx}\n")
    half = V.resolve_variant(tgt, "half")
    model = onnx.load(str(half.model_path))
    assert model.graph.initializer[0].data_type == onnx.TensorProto.FLOAT16
    x = np.ones((1, 64), np.float32)
    assert ort.InferenceSession(str(half.model_path)).run(None, {"x": x})[0].dtype == np.float32
    same = V.resolve_variant(tgt, "same")
    assert same.model_path == tgt.model_path and same.model_info["variant"] == "same"


def test_parse_variants(tmp_path: Path) -> None:
    from aialliance_cli.models.variants import parse_variants
    from aialliance_cli.runtime.api import prepare_target

    tgt = _target(tmp_path, "variants:\n  int8: {quantize: dynamic}\n")
    assert parse_variants(tgt, None) is None
    assert parse_variants(tgt, "all") == ["base", "int8"]
    assert parse_variants(tgt, "int8,base,int8") == ["int8", "base"]
    with pytest.raises(BadInputError, match="no variant 'int9'.*did you mean 'int8'"):
        parse_variants(tgt, "int9")
    bare = prepare_target(str(tmp_path / "mm.onnx"))
    with pytest.raises(BadInputError, match="variants come from a profile"):
        parse_variants(bare, "int8")


def test_static_variant_calibrates_on_the_profile(tmp_path: Path) -> None:
    import onnx

    from aialliance_cli.models import variants as V

    tgt = _target(tmp_path, "variants:\n  s8: {quantize: static, calibration: 4}\n")
    s8 = V.resolve_variant(tgt, "s8")
    assert s8.model_info["quantization"]["calibration"] == 4
    ops = {n.op_type for n in onnx.load(str(s8.model_path)).graph.node}
    assert "QuantizeLinear" in ops
    assert V.resolve_variant(tgt, "s8").model_path == s8.model_path  # cached
