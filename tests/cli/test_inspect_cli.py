"""`aia inspect` through Typer's CliRunner on small models built with onnx.helper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

runner = CliRunner()


def gemm_model(path: Path, batch_name: str = "batch_size") -> Path:
    """y = x @ W + C with x [batch, 16], W [16, 8], C [8]."""
    graph = h.make_graph(
        [h.make_node("Gemm", ["x", "W", "C"], ["y"], name="gemm")],
        "gemm",
        [h.make_tensor_value_info("x", T.FLOAT, [batch_name, 16])],
        [h.make_tensor_value_info("y", T.FLOAT, [batch_name, 8])],
        [
            nh.from_array(np.ones((16, 8), np.float32), "W"),
            nh.from_array(np.ones(8, np.float32), "C"),
        ],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def flat(text: str) -> str:
    """Rich wraps long messages at the console width: compare on single spaces."""
    return " ".join(text.split())


def inspect_json(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, ["inspect", *args, "--json"])
    data = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, data, result.stderr


def test_gemm_flops_equal_the_hand_count(tmp_path: Path) -> None:
    model = gemm_model(tmp_path / "gemm.onnx")
    code, data, _ = inspect_json(str(model), "--dim", "batch_size=4")
    assert code == 0
    # 2*M*N*K for the product plus one add per output element for C
    assert data["flops_total"] == 2 * 4 * 16 * 8 + 4 * 8
    assert data["flops_by_op_type"] == {"Gemm": 2 * 4 * 16 * 8 + 4 * 8}
    assert data["dims"] == {"batch_size": 4}
    assert data["unknown_dims"] == []
    assert data["parameter_count"] == 16 * 8 + 8
    assert data["parameter_bytes"] == (16 * 8 + 8) * 4
    assert data["node_count"] == 1
    assert data["nodes_by_op_type"] == {"Gemm": 1}
    assert data["inputs"][0] == {"name": "x", "dtype": "float32", "shape": ["batch_size", 16]}
    assert data["external_data_files"] == []


def test_batch_alias_maps_onto_the_models_dim_name(tmp_path: Path) -> None:
    model = gemm_model(tmp_path / "gemm.onnx", batch_name="batch_size")
    code, data, _ = inspect_json(str(model), "--dim", "batch=2")
    assert code == 0
    assert data["dims"] == {"batch_size": 2}
    assert data["flops_total"] == 2 * 2 * 16 * 8 + 2 * 8


def test_profile_dims_are_used(tmp_path: Path) -> None:
    gemm_model(tmp_path / "model.onnx")
    profile = tmp_path / "tiny.yaml"
    profile.write_text(
        "schema: aia.profile/1\nname: tiny\nmodel: {file: model.onnx}\n"
        "inputs: {dims: {batch: 3}}\n",
        encoding="utf-8",
    )
    code, data, _ = inspect_json(str(profile))
    assert code == 0
    assert data["target"] == "tiny"
    assert data["dims"] == {"batch_size": 3}
    assert data["flops_total"] == 2 * 3 * 16 * 8 + 3 * 8


def test_free_dim_is_listed_with_a_warning(tmp_path: Path) -> None:
    model = gemm_model(tmp_path / "gemm.onnx")
    code, data, stderr = inspect_json(str(model))
    assert code == 0
    assert data["unknown_dims"] == ["batch_size"]
    assert data["flops_total"] == 0
    assert any("--dim batch_size=VALUE" in line for line in data["unresolved"])
    assert "--dim batch_size=VALUE" in flat(stderr)


def test_table_output_names_the_missing_dim(tmp_path: Path) -> None:
    model = gemm_model(tmp_path / "gemm.onnx")
    result = runner.invoke(app, ["inspect", str(model)])
    assert result.exit_code == 0
    assert "Gemm" in result.stdout
    assert "--dim batch_size=VALUE" in result.stdout


def test_unknown_dim_name_is_bad_input(tmp_path: Path) -> None:
    model = gemm_model(tmp_path / "gemm.onnx")
    result = runner.invoke(app, ["inspect", str(model), "--dim", "height=7"])
    assert result.exit_code == 2
    assert "height" in flat(result.stderr) and "batch_size" in flat(result.stderr)


@pytest.mark.parametrize("bad", ["batch_size", "batch_size=0", "batch_size=x"])
def test_malformed_dim_is_bad_input(tmp_path: Path, bad: str) -> None:
    model = gemm_model(tmp_path / "gemm.onnx")
    assert runner.invoke(app, ["inspect", str(model), "--dim", bad]).exit_code == 2


def test_missing_external_data_is_bad_input(tmp_path: Path) -> None:
    model = onnx.load(str(gemm_model(tmp_path / "in.onnx")))
    out = tmp_path / "ext" / "model.onnx"
    out.parent.mkdir()
    onnx.save_model(
        model,
        str(out),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    code, data, _ = inspect_json(str(out), "--dim", "batch_size=1")
    assert code == 0 and data["external_data_files"] == ["weights.bin"]
    (out.parent / "weights.bin").unlink()
    result = runner.invoke(app, ["inspect", str(out)])
    assert result.exit_code == 2
    assert "weights.bin" in flat(result.stderr)


def test_missing_model_is_bad_input(tmp_path: Path) -> None:
    assert runner.invoke(app, ["inspect", str(tmp_path / "nope.onnx")]).exit_code == 2


def test_contrib_domain_is_reported(tmp_path: Path) -> None:
    graph = h.make_graph(
        [h.make_node("FastGelu", ["x"], ["y"], domain="com.microsoft", name="gelu")],
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, [2, 4])],
        [h.make_tensor_value_info("y", T.FLOAT, [2, 4])],
    )
    model = h.make_model(
        graph,
        opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft", 1)],
        ir_version=8,
    )
    path = tmp_path / "gelu.onnx"
    onnx.save(model, str(path))
    code, data, _ = inspect_json(str(path))
    assert code == 0
    assert data["contrib_domains"] == ["com.microsoft"]
    assert data["custom_domains"] == []
