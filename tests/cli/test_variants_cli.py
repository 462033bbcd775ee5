"""`aia bench --variant` and `aia run --variant` through the CLI on a small real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app


def write_profile(folder: Path, variants: str) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "mm.onnx"))
    path = folder / "mm.yaml"
    path.write_text("schema: aia.profile/1\nname: mm\nmodel: mm.onnx\n" + variants, "utf-8")
    return path


runner = CliRunner()
VARIANTS = "variants:\n  int8: {quantize: dynamic}\n"


@pytest.mark.slow
def test_two_variant_sweep_both_ok(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, VARIANTS)
    res = runner.invoke(
        app, ["bench", str(profile), "--variant", "all", "-n", "3", "--warmup", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    results = json.loads(res.stdout)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert [r["settings"]["variant"] for r in results] == ["base", "int8"]
    assert [r["model"]["variant"] for r in results] == ["base", "int8"]
    assert [r["config"]["label"] for r in results] == ["base", "int8"]
    assert results[0]["model"]["path"] != results[1]["model"]["path"]


def test_unknown_variant_exit_2(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, VARIANTS)
    res = runner.invoke(app, ["bench", str(profile), "--variant", "base,fp8", "-n", "1"])
    assert res.exit_code == 2
    assert "no variant 'fp8'" in res.output and "base, int8" in res.output


def test_variant_on_bare_model_exit_2(tmp_path: Path) -> None:
    write_profile(tmp_path, VARIANTS)
    res = runner.invoke(app, ["bench", str(tmp_path / "mm.onnx"), "--variant", "int8"])
    assert res.exit_code == 2
    assert "variants come from a profile" in res.output


def test_run_variant(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, VARIANTS)
    res = runner.invoke(app, ["run", str(profile), "--variant", "int8", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"]["variant"] == "int8"
