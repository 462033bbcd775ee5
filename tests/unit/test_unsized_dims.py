"""Unknown sizes are never silently 1 (issue 11): the model's layout gives image axes their
default, anything else left at 1 is warned about with the --dim that sets it, and the dims
used are printed with the run."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.runtime.inputs import (
    DEFAULT_DIMS,
    InputSpec,
    layout_axes,
    resolve_dims,
    unsized_axes,
    unsized_warning,
)

runner = CliRunner()


def _relu(path: Path, shape: list) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def test_image_layout_is_the_models_hint_for_unnamed_axes() -> None:
    cls = [InputSpec("x", "float32", (None, 3, None, None))]  # rapidocr's cls model
    assert layout_axes(cls) == {"x[2]": "height", "x[3]": "width"}
    dims = resolve_dims(cls, {})
    assert dims["x[2]"] == DEFAULT_DIMS["height"] and dims["x[3]"] == DEFAULT_DIMS["width"]
    assert unsized_axes(cls, {}) == {}
    assert resolve_dims(cls, {"height": 48})["x[2]"] == 48  # the alias reaches it too
    rec = [InputSpec("x", "float32", ("DynamicDimension.0", 3, 48, "DynamicDimension.1"))]
    assert resolve_dims(rec, {})["DynamicDimension.1"] == DEFAULT_DIMS["width"]
    nhwc = [InputSpec("img", "uint8", (-1, -1, -1, 3))]
    assert layout_axes(nhwc) == {"img[1]": "height", "img[2]": "width"}


def test_an_axis_nothing_sizes_is_named_with_its_dim() -> None:
    specs = [InputSpec("x", "float32", ("batch", "DynamicDimension.7", None))]
    unsized = unsized_axes(specs, {})
    assert unsized == {"DynamicDimension.7": "input 'x' axis 1", "x[2]": "input 'x' axis 2"}
    text = unsized_warning(unsized)
    assert "--dim 'DynamicDimension.7=N'" in text and "--dim 'x[2]=N'" in text
    assert unsized_axes(specs, {"DynamicDimension.7": 8, "x[2]": 4}) == {}
    assert unsized_axes(specs, {}, covered={"x"}) == {}  # given as an array: its own shape


def test_run_warns_with_json_and_records_it(tmp_path: Path) -> None:
    model = _relu(tmp_path / "m.onnx", ["batch", "DynamicDimension.7"])
    r = runner.invoke(app, ["run", str(model), "--json"])
    assert r.exit_code == 0, r.output
    assert "DynamicDimension.7" in r.stderr and "runs at 1" in r.stderr
    data = json.loads(r.stdout)
    assert any("DynamicDimension.7=N" in w for w in data["warnings"])
    quiet = runner.invoke(app, ["run", str(model), "--dim", "DynamicDimension.7=16"])
    assert quiet.exit_code == 0 and "runs at 1" not in quiet.stderr
    assert "DynamicDimension.7=16" in " ".join(quiet.stdout.split())  # dims on the run's line
