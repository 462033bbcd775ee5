"""`aia profile` of an EP this build lacks, in a registered environment that has it, for real.

The OpenVINO environment comes from tests/ovenv.py (``$AIA_TEST_OV_PYTHON`` or a venv made
once); each test registers it in the test's fresh AIA_HOME with `aia env add`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import tanh_sum_model  # noqa: E402
from ovenv import openvino_python  # noqa: E402

runner = CliRunner()
CPU = "CPUExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return tanh_sum_model(tmp_path / "tiny.onnx")


def test_profile_job_in_a_worker_round_trips(tiny: Path, tmp_path: Path) -> None:
    """The worker's "profile" job (in process here) gives back what the report is rebuilt from."""
    from aialliance_cli.runtime.api import Overrides, prepare_target
    from aialliance_cli.runtime.oprun import ep_profile_from_dict
    from aialliance_cli.runtime.sweep import run_in_process
    from aialliance_cli.runtime.worker import JOB_VERSION, overrides_to_dict, target_to_dict

    trace = tmp_path / "t.json"
    job = {
        "version": JOB_VERSION,
        "kind": "profile",
        "target": target_to_dict(prepare_target(str(tiny))),
        "overrides": overrides_to_dict(Overrides(ep=CPU, warmup=1, iterations=3)),
        "profile": {"top": 2, "trace": str(trace)},
        "environment": {"name": "here"},
    }
    res = run_in_process(job)
    assert res["kind"] == "profile" and res["status"] == "ok"
    assert res["environment"] == {"name": "here"}
    assert trace.is_file() and json.loads(trace.read_text())
    e = ep_profile_from_dict(res, CPU, trace)
    assert e.ep == CPU and e.profile.runs == 3 and e.warmup_done == 1
    assert {s.op_type for s in e.profile.by_op_type} == {"MatMul", "Tanh", "ReduceSum"}
    assert e.profile.to_dict() == res["op_profile"]
    assert e.flops is not None and e.flops.total == res["metrics"]["flops_per_run"]
    assert e.placement is not None and e.placement_line()
    out = e.result.to_dict()
    assert out["environment"] == {"name": "here"}
    assert "op_profile" not in out and "profile_run" not in out
    assert out["metrics"] == res["metrics"]


@pytest.mark.slow
@pytest.mark.openvino
def test_profile_runs_openvino_in_a_registered_env(tiny: Path, tmp_path: Path) -> None:
    python = openvino_python()
    added = runner.invoke(app, ["env", "add", "ov", "--python", str(python)])
    assert added.exit_code == 0, added.output
    trace = tmp_path / "trace.json"
    result = runner.invoke(
        app,
        [
            "profile",
            str(tiny),
            "--ep",
            "cpu",
            "--ep",
            "openvino",
            "--json",
            "-n",
            "5",
            "--trace",
            str(trace),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "ok" and data["skipped"] == []
    cpu, ov = data["results"]
    assert cpu["ep"]["name"] == CPU and not cpu.get("environment")
    assert ov["ep"]["name"] == OPENVINO
    assert ov["environment"]["name"] == "ov"
    assert ov["environment"]["distribution"] == "onnxruntime-openvino"
    assert ov["metrics"]["runs"] == 5 and ov["status"] == "ok"
    assert any(r["ep"] == OPENVINO for r in ov["metrics"]["by_op_type"])
    (cmp,) = data["comparisons"]
    assert cmp["a"] == CPU and cmp["b"] == OPENVINO
    ops = {r["op_type"] for r in cmp["by_op_type"]}
    assert {"MatMul", "Tanh", "ReduceSum"} <= ops
    assert any(OPENVINO in r["b_eps"] for r in cmp["by_op_type"])
    # the worker's trace lands where it was asked for
    ov_trace = tmp_path / "trace-openvino.json"
    assert ov["settings"]["trace"] == str(ov_trace)
    assert (tmp_path / "trace-cpu.json").is_file() and ov_trace.is_file()
    events = json.loads(ov_trace.read_text())
    assert any((e.get("args") or {}).get("provider") == OPENVINO for e in events)

    # the text report says where it ran; OpenVINO alone also goes to the environment
    text = runner.invoke(app, ["profile", str(tiny), "--ep", "openvino", "-n", "2"])
    assert text.exit_code == 0, text.output
    assert "ran in environment 'ov'" in " ".join(text.output.split())
