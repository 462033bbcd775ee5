"""`aia profile` through Typer's CliRunner, on real ONNX Runtime sessions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import tanh_sum_model  # noqa: E402

runner = CliRunner()
CPU = "CPUExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
no_openvino_here = pytest.mark.skipif(
    OPENVINO in ort.get_available_providers(),
    reason="these tests need a build without the OpenVINO EP",
)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return tanh_sum_model(tmp_path / "tiny.onnx")


def flat(text: str) -> str:
    """Rich wraps long messages at the console width: compare on single spaces."""
    return " ".join(text.split())


def profile_json(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, ["profile", *args, "--json"])
    data = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, data, result.stderr


def test_profile_json_counts_every_call(tiny: Path) -> None:
    code, data, _ = profile_json(
        str(tiny), "--iterations", "7", "--warmup", "2", "--dim", "batch=4"
    )
    assert code == 0
    assert data["status"] == "ok" and data["skipped"] == [] and data["comparisons"] == []
    (res,) = data["results"]
    assert res["kind"] == "profile" and res["status"] == "ok"
    m = res["metrics"]
    assert m["runs"] == 7 and m["warmup"] == 2
    rows = {r["op_type"]: r for r in m["by_op_type"]}
    assert set(rows) == {"MatMul", "Tanh", "ReduceSum"}
    for row in rows.values():
        assert row["calls"] == 7
        assert row["ep"] == CPU
    assert sum(r["share"] for r in rows.values()) == pytest.approx(1.0)
    assert m["kernel_us_total"] > 0
    assert m["run_us_total"] >= m["kernel_us_total"]
    assert m["memcpy_us"] == 0
    # FLOPs at the run's dims: 2*4*32*64 for the MatMul, one per element for Tanh and the sum
    assert m["flops_per_run"] == 2 * 4 * 32 * 64 + 4 * 64 + 4 * 64
    achieved = {r["op_type"]: r for r in m["achieved"]}
    assert achieved["MatMul"]["flops_per_run"] == 2 * 4 * 32 * 64
    assert achieved["MatMul"]["gflops_per_s"] > 0
    assert res["settings"]["dims"] == {"batch": 4}
    placement = res["ep"]["placement"]
    assert placement["share_nodes_requested"] == 1.0
    assert placement["summary"].startswith(f"{CPU}: 3/3 nodes")


def test_table_output_shows_the_sections(tiny: Path) -> None:
    result = runner.invoke(app, ["profile", str(tiny), "-n", "3", "--warmup", "1", "--top", "2"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        "MatMul",
        "Slowest nodes (top 2)",
        "session overhead",
        "device copies",
        "GFLOP/s",
        "placement",
        "3/3 nodes",
    ):
        assert text in out


def test_trace_is_copied_as_a_chrome_trace(tiny: Path, tmp_path: Path) -> None:
    trace = tmp_path / "out" / "trace.json"
    code, data, _ = profile_json(str(tiny), "-n", "3", "--warmup", "1", "--trace", str(trace))
    assert code == 0
    events = json.loads(trace.read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    assert len(runs) == 4  # warm-up included: the trace is ORT's, untouched
    assert data["results"][0]["settings"]["trace"] == str(trace)


def test_unwritable_trace_fails_before_running(tiny: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["profile", str(tiny), "--trace", str(blocker / "t.json")])
    assert result.exit_code == 2
    assert "is a file, not a folder" in flat(result.stderr)
    assert "profiling on" not in result.output


def test_trace_that_is_a_directory_is_bad_input(tiny: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["profile", str(tiny), "--trace", str(tmp_path)]).exit_code == 2


def test_min_coverage_100_passes_on_cpu(tiny: Path) -> None:
    code, data, _ = profile_json(str(tiny), "-n", "2", "--min-coverage", "100", "--ep", "cpu")
    assert code == 0
    assert data["results"][0]["ep"]["placement"]["share_flops_requested"] == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        ["--iterations", "0"],
        ["--top", "0"],
        ["--warmup", "-1"],
        ["--min-coverage", "101"],
        ["--ep", "nosuchep"],
    ],
)
def test_bad_values_are_bad_input(tiny: Path, bad: list[str]) -> None:
    assert runner.invoke(app, ["profile", str(tiny), *bad]).exit_code == 2


@no_openvino_here
def test_coverage_gate_fails_when_the_asked_ep_is_missing(tiny: Path) -> None:
    result = runner.invoke(
        app, ["profile", str(tiny), "--ep", "openvino", "--min-coverage", "50", "-n", "1"]
    )
    assert result.exit_code == 3
    assert "ran 0%" in flat(result.stderr)


@no_openvino_here
def test_bench_coverage_gate_exits_3(tiny: Path, tmp_path: Path) -> None:
    """`aia bench --ep openvino` falls back to the CPU: the requested EP ran 0% < 50%."""
    profile = tmp_path / "gate.yaml"
    profile.write_text(
        f"schema: aia.profile/1\nname: gate\nmodel: {{file: {tiny.name}}}\n"
        "bench: {warmup: 0, iterations: 2, min_coverage: 50}\n",
        encoding="utf-8",
    )
    gated = runner.invoke(app, ["bench", str(profile), "--ep", "openvino"])
    assert gated.exit_code == 3, gated.output
    assert "OpenVINOExecutionProvider" in flat(gated.stderr) and "0%" in flat(gated.stderr)
    # the same run on the EP it falls back to passes the gate
    assert runner.invoke(app, ["bench", str(profile), "--ep", "cpu"]).exit_code == 0
    # without a gate the fallback is a warning, not a failure
    assert runner.invoke(app, ["bench", str(tiny), "--ep", "openvino", "-n", "1"]).exit_code == 0


@no_openvino_here
def test_second_ep_missing_is_skipped_with_its_package(tiny: Path) -> None:
    code, data, _ = profile_json(str(tiny), "--ep", "cpu,openvino", "-n", "2")
    assert code == 0
    assert [r["ep"]["name"] for r in data["results"]] == [CPU]
    (skipped,) = data["skipped"]
    assert skipped["ep"] == OPENVINO
    assert "onnxruntime-openvino" in flat(skipped["reason"])


@no_openvino_here
def test_second_ep_missing_under_strict_exits_3(tiny: Path) -> None:
    result = runner.invoke(
        app, ["profile", str(tiny), "--ep", "cpu", "--ep", "openvino", "--strict", "-n", "1"]
    )
    assert result.exit_code == 3
    assert "onnxruntime-openvino" in flat(result.stderr)


def test_same_ep_named_twice_runs_once(tiny: Path) -> None:
    code, data, _ = profile_json(
        str(tiny), "--ep", "cpu", "--ep", "CPUExecutionProvider", "-n", "1"
    )
    assert code == 0
    assert [r["ep"]["name"] for r in data["results"]] == [CPU]
    assert data["comparisons"] == []


def test_ctrl_c_keeps_what_was_measured(tiny: Path) -> None:
    """A KeyboardInterrupt during the measured runs: the trace is parsed, status interrupted."""
    from aialliance_cli.runtime.api import Overrides
    from aialliance_cli.runtime.oprun import profile

    def stop_after_three(done: int, total: int | None, elapsed: float) -> None:
        if done == 3:
            raise KeyboardInterrupt

    run = profile(str(tiny), [], Overrides(iterations=50, warmup=1), progress=stop_after_three)
    assert run.interrupted and run.status == "interrupted"
    (p,) = run.profiles
    assert p.runs_done == 3 and p.profile.runs == 3
    assert all(s.calls == 3 for s in p.profile.by_op_type)
    assert p.result.status == "interrupted"
    assert any("interrupted" in w for w in p.result.warnings)
    assert run.to_dict()["status"] == "interrupted"


def test_placement_from_the_log_on_a_real_session(tiny: Path) -> None:
    """The log fallback used when a build lacks the placement API, on a real CPU session."""
    from aialliance_cli.runtime.api import Overrides, open_session, prepare_target
    from aialliance_cli.runtime.oprun import placement_from_log

    prepared = open_session(prepare_target(str(tiny)), Overrides(ep="cpu"))
    placement = placement_from_log(prepared)
    assert placement.source == "log"
    assert placement.nodes_by_ep == {CPU: 3}
    assert placement.share_nodes_requested == 1.0


def test_analysis_dims_map_aliases_and_refuse_unknown_names(tiny: Path) -> None:
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.runtime.oprun import analysis_dims

    assert analysis_dims(tiny, {"batch": 2}, {}) == {"batch": 2}
    assert analysis_dims(tiny, {}, {"batch": 5}) == {"batch": 5}
    assert analysis_dims(tiny, {"sequence": 9}, {}) == {}  # a profile dim that fits nothing
    assert analysis_dims(tiny, {}, {"x[0]": 3}) == {"x[0]": 3}
    with pytest.raises(BadInputError):
        analysis_dims(tiny, {}, {"sequence": 9})


@pytest.mark.slow
def test_default_profile_is_dominated_by_matmul_like_ops() -> None:
    code, data, _ = profile_json("-n", "3", "--warmup", "1", "--top", "5")
    assert code == 0
    m = data["results"][0]["metrics"]
    heavy = {
        "MatMul",
        "Gemm",
        "FusedMatMul",
        "Attention",
        "MultiHeadAttention",
        "SkipLayerNormalization",
        "QAttention",
        "MatMulNBits",
    }
    assert m["by_op_type"][0]["op_type"] in heavy
    assert len(m["top_nodes"]) == 5
    assert m["flops_per_run"] > 2e9  # MiniLM-L6 at batch 1, sequence 128: ~2.9 GFLOP
    assert m["achieved_flops_matched_share"] > 0.9
