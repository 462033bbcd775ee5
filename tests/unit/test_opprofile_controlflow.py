"""aia profile on control flow (issue 11): an If's subgraph is not counted twice, and no FLOP
rate is given where the work sits in subgraphs aia does not count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aialliance_cli.analysis.opprofile import exclusive_times, parse_profile


def _k(name: str, op: str, ts: float, dur: float, tid: int = 1) -> dict:
    return {
        "cat": "Node",
        "name": f"{name}_kernel_time",
        "ts": ts,
        "dur": dur,
        "pid": 1,
        "tid": tid,
        "args": {"op_name": op, "provider": "CPUExecutionProvider"},
    }


def test_control_flow_time_is_its_own_time_without_its_subgraph(tmp_path: Path) -> None:
    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 1000},
        # If_0 [100, 900) holds Conv [200, 600) and a nested If [650, 850) holding Relu.
        _k("If_0_then/Conv", "Conv", 200, 400),
        _k("If_0_then/Relu", "Relu", 700, 100),
        _k("If_0_then/If", "If", 650, 200),
        _k("If_0", "If", 100, 800),
        _k("Add", "Add", 920, 50),
        _k("Other", "Mul", 300, 100, tid=2),  # another thread: not a child of If_0
    ]
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(events))
    prof = parse_profile(trace)
    by_node = {n.name: n.total_us for n in prof.by_node}
    assert by_node["If_0"] == 800 - 400 - 200
    assert by_node["If_0_then/If"] == 200 - 100
    assert by_node["If_0_then/Conv"] == 400 and by_node["Other"] == 100
    assert prof.kernel_us_total == pytest.approx(200 + 100 + 400 + 100 + 50 + 100)
    assert sum(s.share for s in prof.by_op_type) == pytest.approx(1.0)


def test_exclusive_times_leave_flat_graphs_alone() -> None:
    flat = [_k("a", "Add", 0, 10), _k("b", "Mul", 10, 5), _k("c", "Relu", 20, 5)]
    assert [e["dur"] for e in exclusive_times(flat)] == [10, 5, 5]


@pytest.mark.slow
def test_silero_vad_profile_kernels_fit_in_the_run_and_no_flop_rate() -> None:
    pytest.importorskip("silero_vad")
    from typer.testing import CliRunner

    from aialliance_cli.cli.main import app

    r = CliRunner().invoke(app, ["profile", "silero-vad", "--json", "-n", "10", "--warmup", "2"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)["results"][0]["metrics"]
    assert m["model_gflops_per_s"] is None and m["achieved"] == []  # was "1FLOP per run"
    assert 0 < m["kernel_us_total"] <= m["run_us_total"]  # was 196.8% of a run
