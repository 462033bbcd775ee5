"""`aia quantize` through the CLI on a small real model and profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from tests.helpers import matmul_model

runner = CliRunner()
PROFILE = (
    "schema: aia.profile/1\nname: mm\nmodel: mm.onnx\ninputs:\n  dims: {batch: 2}\n  tensors:\n"
    "    x: {synthesize: random, low: -1.0, high: 1.0, seed: 3, dtype: float32}\n"
)


def _profile(folder: Path, extra: str = "") -> Path:
    matmul_model(folder / "mm.onnx", k=64, n=32)
    path = folder / "mm.yaml"
    path.write_text(PROFILE + extra, encoding="utf-8")
    return path


def test_quantize_writes_the_model_and_its_variant_entry_reuses_it(tmp_path: Path) -> None:
    from aialliance_cli.models.variants import resolve_variant
    from aialliance_cli.runtime.api import prepare_target

    profile = _profile(tmp_path)
    res = runner.invoke(app, ["quantize", str(profile), "--min-accuracy", "0.9", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert Path(out["path"]).is_file() and out["passed"] is True
    assert out["spec"]["method"] == "dynamic" and out["spec"]["per_channel"] is True
    acc = out["accuracy"]["synthetic"]
    assert acc["samples"] == 16 and acc["metric"] == "relative_error" and acc["passed"]
    assert out["variant"] == {"name": "int8", "entry": out["variant"]["entry"]}
    # The printed entry, pasted into the profile, resolves to the very same cached file.
    profile.write_text(PROFILE + f"variants:\n  int8: {out['variant']['entry']}\n", "utf-8")
    int8 = resolve_variant(prepare_target(str(profile)), "int8")
    assert int8.model_path == Path(out["path"])
    again = runner.invoke(app, ["quantize", str(profile), "--min-accuracy", "0.9", "--json"])
    assert json.loads(again.stdout)["reused"] is True

    table = runner.invoke(app, ["quantize", str(profile), "--min-accuracy", "0.9"])
    assert table.exit_code == 0, table.output
    assert out["path"] in table.stdout and "--variant base,int8" in table.stdout
    listed = runner.invoke(app, ["cache", "list"], env={"COLUMNS": "250"})
    assert f"int8 dynamic, {out['spec']['weight_type']} weights, per channel of" in listed.stdout


def test_static_and_per_tensor_options(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    res = runner.invoke(
        app,
        ["quantize", str(profile), "--method", "static", "--calibration", "4",
         "--per-tensor", "--weight-type", "quint8", "--min-accuracy", "0.5", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["calibration"]["samples"] == 4
    assert out["spec"] == {
        "method": "static",
        "weight_type": "quint8",
        "per_channel": False,
        "reduce_range": False,
        "activation_type": "quint8",
        "calibration": 4,
        "calibrate_method": "minmax",
    }
    assert out["variant"]["name"] == "int8-static" and "calibration: 4" in out["variant"]["entry"]


def test_a_model_below_min_accuracy_exits_3_and_stays_cached(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    res = runner.invoke(app, ["quantize", str(profile), "--min-accuracy", "1", "--json"])
    assert res.exit_code == 3, res.output
    out = json.loads(res.stdout)
    assert out["passed"] is False and Path(out["path"]).is_file()
    assert "below --min-accuracy 1" in res.stderr


def test_a_bare_model_file(tmp_path: Path) -> None:
    model = matmul_model(tmp_path / "m.onnx", k=64, n=32)
    res = runner.invoke(app, ["quantize", str(model), "--method", "fp16", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["profile"]["origin"] == "model-file" and out["accuracy"]["synthetic"]["passed"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "int4"], "unknown quantization method 'int4'"),
        (["--method", "static", "--calibration", "0"], "calibration samples"),
        (["--method", "static", "--calibration", "-5"], "calibration samples"),
        (["--calibration", "8"], "to static quantization"),
        (["--weight-type", "int8"], "unknown weight type"),
        (["--method", "fp16", "--per-tensor"], "not apply to fp16"),
        (["--min-accuracy", "0"], "--min-accuracy"),
        (["--min-accuracy", "1.5"], "--min-accuracy"),
        (["--min-accuracy", "nan"], "--min-accuracy"),
        (["--samples", "8"], "at least 16"),
        (["--samples", "100000000"], "at most 10,000 (--samples)"),  # ran until killed
    ],
)
def test_bad_input_exits_2(tmp_path: Path, args: list[str], needle: str) -> None:
    profile = _profile(tmp_path)
    res = runner.invoke(app, ["quantize", str(profile), *args])
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and "Traceback" not in res.output


def test_missing_target_exits_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["quantize", str(tmp_path / "nope.onnx")])
    assert res.exit_code == 2


def test_a_text_generation_profile_exits_2() -> None:
    res = runner.invoke(app, ["quantize", "smollm2-135m"])
    assert res.exit_code == 2 and "text-generation" in res.stderr
