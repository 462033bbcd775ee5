"""`aia bench --check-outputs` and `aia compare` on a small real model with a broken variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from tests.helpers import variant_profile as _profile

runner = CliRunner()


@pytest.mark.slow
def test_check_outputs_records_agreement_and_compare_never_calls_it_a_win(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    out = tmp_path / "r.jsonl"
    res = runner.invoke(
        app,
        ["bench", str(profile), "--variant", "all", "-n", "30", "--warmup", "2",
         "--check-outputs", "--min-accuracy", "0.95", "--json", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    results = {r["settings"]["variant"]: r for r in json.loads(res.stdout)}
    base, int8, broken = results["base"], results["int8"], results["broken"]
    assert base["agreement"]["score"] == 1.0 and base["agreement"]["passed"] is True
    assert base["agreement"]["samples"] == 16 and base["agreement"]["min_accuracy"] == 0.95
    ref = base["agreement"]["reference"]
    assert ref["ep"] == "CPUExecutionProvider" and ref["model"].endswith("mm.onnx")
    assert int8["agreement"]["passed"] is True and int8["agreement"]["score"] < 1.0
    assert broken["agreement"]["passed"] is False
    assert broken["agreement"]["outputs"]["y"]["max_rel"] == pytest.approx(0.5, rel=1e-3)
    assert any("differ from the fp32 CPU reference" in w for w in broken["warnings"])
    assert "differ from the fp32 CPU reference" in res.stderr

    cmp = runner.invoke(app, ["compare", str(out), "--json"])
    assert cmp.exit_code == 0, cmp.output
    verdicts = {r["index"]: r["verdict"] for r in json.loads(cmp.stdout)["rows"]}
    assert verdicts[2] == "outputs differ"
    table = runner.invoke(app, ["compare", str(out)], env={"COLUMNS": "200"})
    assert "outputs differ" in table.stdout and "agreement" in table.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--check-outputs", "--min-accuracy", "1.5"], "--min-accuracy"),
        (["--check-outputs", "--min-accuracy", "0"], "--min-accuracy"),
        (["--min-accuracy", "0.9"], "applies with --check-outputs"),
    ],
)
def test_bad_check_outputs_input_exits_2(tmp_path: Path, args: list[str], needle: str) -> None:
    profile = _profile(tmp_path)
    res = runner.invoke(app, ["bench", str(profile), "-n", "1", *args])
    assert res.exit_code == 2, res.output
    assert needle in res.stderr
