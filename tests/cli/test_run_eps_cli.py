"""`aia run --ep A,B`: each EP's outputs against the fp32 CPU run, on the same input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from tests.helpers import variant_profile as _profile

runner = CliRunner()


def test_run_on_several_eps_records_agreement(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    res = runner.invoke(app, ["run", str(profile), "--ep", "cpu,cpu", "--json"])
    assert res.exit_code == 0, res.output
    [rec] = json.loads(res.stdout)
    assert rec["agreement"]["passed"] is True and rec["agreement"]["score"] == 1.0
    assert rec["agreement"]["reference"]["ep"] == "CPUExecutionProvider"
    # A variant on the same EP is compared with the fp32 base model.
    res = runner.invoke(
        app, ["run", str(profile), "--ep", "cpu,cpu", "--variant", "int8", "--json"]
    )
    [rec] = json.loads(res.stdout)
    assert rec["model"]["variant"] == "int8" and 0.9 < rec["agreement"]["score"] < 1.0
    broken = runner.invoke(
        app, ["run", str(profile), "--ep", "cpu,cpu", "--variant", "broken"], env={"COLUMNS": "160"}
    )
    assert broken.exit_code == 0, broken.output
    assert "DIFFERS" in broken.stdout and "differ from the fp32 CPU reference" in broken.stderr


def test_an_ep_this_build_lacks_exits_3_naming_bench(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "OpenVINOExecutionProvider" in ort.get_available_providers():
        pytest.skip("this build has the OpenVINO EP")
    res = runner.invoke(app, ["run", str(_profile(tmp_path)), "--ep", "cpu,openvino"])
    assert res.exit_code == 3
    assert "--check-outputs" in res.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--ep", "cpu", "--min-accuracy", "0.9"], "several EPs"),
        (["--ep", "cpu,cpu", "--min-accuracy", "7"], "--min-accuracy"),
        (["--ep", "all,cpu"], "give it alone"),
        (["--ep", "cpu,cpu", "--save", "out.npz"], "--save"),
        (["--ep", "cpu,nope"], "Unknown execution provider 'nope'"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, args: list[str], needle: str) -> None:
    res = runner.invoke(app, ["run", str(_profile(tmp_path)), *args])
    assert res.exit_code == 2, res.output
    assert needle in res.stderr
