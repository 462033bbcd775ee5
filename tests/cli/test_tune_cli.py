"""`aia tune` through the CLI: bad input exits 2 before anything is measured; --show, --clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

runner = CliRunner()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from helpers import tanh_sum_model

    return tanh_sum_model(tmp_path / "tiny.onnx")


@pytest.mark.parametrize(
    "args,words",
    [
        (["--budget", "0"], "--budget must be more than 0"),
        (["--budget", "-3"], "--budget must be more than 0"),
        (["--budget", "nan"], "finite"),
        (["--budget", "inf"], "finite"),
        (["--objective", "fastest"], "--objective must be one of latency, throughput"),
        (["--precision", "fp8"], "unknown precision 'fp8'"),
        (["--precision", "fp16"], "fp16 runs on GPUs"),
        (["--min-accuracy", "1.5"], "--min-accuracy"),
        (["--min-accuracy", "0"], "--min-accuracy"),
        (["--threads", "two"], "--threads"),
        (["--show", "--clear"], "one of --show and --clear"),
    ],
)
def test_bad_input_exit_2(model: Path, args: list[str], words: str) -> None:
    res = runner.invoke(app, ["tune", str(model), *args])
    assert res.exit_code == 2, res.output
    assert words in res.output
    assert "Traceback" not in res.output


def test_bf16_without_openvino_or_isa_is_bad_input(model: Path) -> None:
    # No registered environments in the test home: bf16 has no OpenVINO EP to run on
    # (or, on a CPU without AVX512_BF16/AMX, no ISA): exit 2 either way.
    res = runner.invoke(app, ["tune", str(model), "--precision", "bf16", "--ep", "cpu"])
    assert res.exit_code == 2, res.output
    assert "bf16" in res.output


def test_an_ep_that_is_nowhere_exit_3(model: Path) -> None:
    res = runner.invoke(app, ["tune", str(model), "--ep", "cuda", "--budget", "5"])
    assert res.exit_code == 3, res.output
    assert "CUDAExecutionProvider" in res.output and "not usable here" in res.output


def test_a_text_generation_profile_exit_2() -> None:
    res = runner.invoke(app, ["tune", "smollm2-135m", "--budget", "5"])
    assert res.exit_code == 2, res.output
    assert "text-generation" in res.output


def test_missing_model_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["tune", str(tmp_path / "nope.onnx"), "--budget", "5"])
    assert res.exit_code == 2


def test_show_and_clear_with_no_records() -> None:
    res = runner.invoke(app, ["tune", "--show", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == []
    res = runner.invoke(app, ["tune", "--clear", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == {"removed": 0}
    res = runner.invoke(app, ["tune", "--show"])
    assert res.exit_code == 0 and "no tuned records" in res.output
