"""`aia bench` sweeps, worker processes, LoadGen scenarios and their bad input, via CliRunner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import fixed_batch_model, matmul_model  # noqa: E402

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent.parent


def _out(result) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def parse(result) -> dict | list:
    return json.loads(result.stdout)


def one(result) -> dict:
    """The one configuration of a bench --json (always a list, docs/results.md)."""
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 1, data
    return data[0]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _err(result) -> str:
    text = result.stderr if hasattr(result, "stderr") else result.output
    return " ".join(text.split())  # undo rich's line wrapping


@pytest.fixture
def mm(tmp_path: Path) -> Path:
    return matmul_model(tmp_path / "mm.onnx")


# ---------------------------------------------------------------- one configuration


def test_single_config_json_is_one_object_from_a_worker(mm):
    r = invoke("bench", mm, "--json", "-n", "12", "--warmup", "1")
    assert r.exit_code == 0, r.output
    data = one(r)
    assert isinstance(data, dict) and data["status"] == "ok"
    assert data["metrics"]["iterations"] == 12
    assert data["settings"]["input_sets"] == 4  # rotation of distinct input sets by default
    assert data["config"]["label"] == "mm" and data["environment"] is None
    assert data["ep"]["name"] == "CPUExecutionProvider"


def test_single_config_in_process_and_same_input(mm):
    r = invoke("bench", mm, "--json", "-n", "5", "--in-process", "--same-input")
    assert r.exit_code == 0, r.output
    assert one(r)["settings"]["input_sets"] == 1


# ---------------------------------------------------------------- sweeps


def test_two_by_two_sweep_json_list_and_out(mm, tmp_path):
    out = tmp_path / "runs.jsonl"
    r = invoke(
        "bench",
        mm,
        "--json",
        "-n",
        "8",
        "--warmup",
        "1",
        "--threads",
        "1,2",
        "--batch",
        "1,3",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    data = parse(r)
    assert isinstance(data, list) and len(data) == 4
    got = [(d["settings"]["intra_op_threads"], d["settings"]["batch"]) for d in data]
    assert got == [(1, 1), (1, 3), (2, 1), (2, 3)]
    assert all(d["status"] == "ok" and d["settings"]["input_sets"] == 4 for d in data)
    assert [d["config"]["label"] for d in data] == [
        "threads=1 batch=1",
        "threads=1 batch=3",
        "threads=2 batch=1",
        "threads=2 batch=3",
    ]
    assert [d["config"]["label"] for d in lines(out)] == [d["config"]["label"] for d in data]
    for d in data:
        assert d["metrics"]["samples_per_s"] == pytest.approx(
            d["settings"]["batch"] * d["metrics"]["throughput_per_s"]
        )


def test_dim_sweep_and_human_table(tmp_path):
    from helpers import embedding_model

    model = embedding_model(tmp_path / "emb.onnx")
    r = invoke("bench", model, "-n", "5", "--dim", "sequence=4,16")
    assert r.exit_code == 0, r.output
    assert "sequence=4" in r.stdout and "sequence=16" in r.stdout
    assert "p50 ms" in r.stdout  # a row per configuration, units in the header


def test_fixed_batch_sweep_one_ok_one_failed(tmp_path):
    model = fixed_batch_model(tmp_path / "fixed.onnx")
    out = tmp_path / "r.jsonl"
    r = invoke("bench", model, "--json", "-n", "5", "--batch", "1,2", "--out", out)
    assert r.exit_code == 1, r.output
    ok, failed = parse(r)
    assert ok["status"] == "ok" and ok["settings"]["batch"] == 1
    assert failed["status"] == "failed" and "fixed batch" in failed["error"]
    assert failed["failure"] == {"kind": "bad-input", "exit_code": 2}
    assert failed["config"]["batch"] == 2 and failed["metrics"] == {}
    assert [x["status"] for x in lines(out)] == ["ok", "failed"]
    assert "fixed batch" in _err(r)


def test_all_configurations_bad_input_exits_2(tmp_path):
    model = fixed_batch_model(tmp_path / "fixed.onnx")
    r = invoke("bench", model, "--json", "-n", "5", "--batch", "2,3")
    assert r.exit_code == 2, r.output
    assert [d["status"] for d in parse(r)] == ["failed", "failed"]


def test_ep_nowhere_is_refused_before_the_sweep_runs_said_once(mm, tmp_path):
    out = tmp_path / "r.jsonl"
    r = invoke(
        "bench", mm, "--json", "-n", "5", "--ep", "cpu,cuda", "--threads", "1,2", "--out", out
    )
    assert r.exit_code == 3, r.output
    assert r.stdout == "" and not out.exists()  # nothing ran, not even the CPU configurations
    assert r.stderr.count("CUDAExecutionProvider is not available") == 1
    assert "onnxruntime-gpu" in r.stderr


def test_worker_timeout_is_a_failed_result(mm, tmp_path):
    out = tmp_path / "r.jsonl"
    r = invoke("bench", mm, "--json", "--duration", "60", "--timeout", "1.5", "--out", out)
    assert r.exit_code == 1, r.output
    data = one(r)
    assert data["status"] == "failed" and data["failure"]["kind"] == "timeout"
    assert "--timeout 1.5" in data["error"]
    assert lines(out)[0]["status"] == "failed"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--scenario", "bogus"), "bogus"),
        (("--iterations", "0"), "--iterations"),
        (("--threads", "1,x"), "--threads"),
        (("--batch", "0,2"), "--batch"),
        (("--dim", "batch"), "NAME=VALUE"),
        (("--ep", "all,cpu"), "alone"),
        (("--ep", "cpu,cdua"), "Did you mean 'cuda'"),
        (("--target-qps", "5"), "--scenario"),
        (("--scenario", "offline", "--iterations", "5"), "--min-duration"),
        (("--scenario", "offline", "--samples-per-query", "4"), "multi-stream"),
        (("--scenario", "single-stream", "--min-duration", "0"), "--min-duration"),
        (("--timeout", "0"), "--timeout"),
        (("--batch", "1,2", "--in-process"), "--in-process"),
    ],
)
def test_bad_input_exits_2(mm, args, needle):
    r = invoke("bench", mm, *args)
    assert r.exit_code == 2, r.output
    assert needle in _err(r)
    assert "Traceback" not in _out(r)


# ---------------------------------------------------------------- LoadGen


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["offline", "single-stream", "multi-stream", "server"])
def test_loadgen_scenarios_via_the_cli(mm, tmp_path, scenario):
    pytest.importorskip("mlperf_loadgen")
    out = tmp_path / "lg.jsonl"
    r = invoke(
        "bench",
        mm,
        "--json",
        "--scenario",
        scenario,
        "--min-duration",
        "0.5",
        "--batch",
        "2",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    data = one(r)
    assert data["kind"] == "bench" and data["settings"]["scenario"] == scenario
    lg = data["metrics"]["loadgen"]
    assert isinstance(lg["valid"], bool) and isinstance(lg["invalid_reasons"], list)
    assert lg["valid"] or lg["invalid_reasons"]
    assert lg["qps"] > 0 and data["metrics"]["samples_per_s"] > 0
    assert lg["samples_processed"] > 0
    logs = data["loadgen_logs"]
    assert Path(logs["summary"]).is_file() and Path(logs["detail"]).is_file()
    assert Path(logs["dir"]).parent == tmp_path / "lg.loadgen"
    if scenario != "offline":
        assert data["metrics"]["latency_ms"]["p50"] > 0
    assert lines(out)[0]["metrics"]["loadgen"]["scenario"] == scenario


@pytest.mark.slow
def test_loadgen_sweep_table_shows_verdict(mm, tmp_path):
    pytest.importorskip("mlperf_loadgen")
    r = invoke("bench", mm, "--scenario", "offline", "--min-duration", "0.3", "--threads", "1,2")
    assert r.exit_code == 0, r.output
    assert "LoadGen" in r.stdout and "VALID" in r.stdout  # the verdict column
    assert "LoadGen logs" in _err(r)
    dirs = list((Path(os.environ["AIA_HOME"]) / "data" / "loadgen").iterdir())
    assert len(dirs) == 2


# ---------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
def test_ctrl_c_keeps_finished_results_and_exits_130(mm, tmp_path):
    """A real SIGINT to a real `aia bench` sweep: the finished configuration stays in --out."""
    out = tmp_path / "r.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "aialliance_cli",
        "bench",
        str(mm),
        "--threads",
        "1,2,3",
        "--duration",
        "4",
        "--warmup",
        "0",
        "--out",
        str(out),
        "--json",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_text().count("\n") >= 1:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        time.sleep(1.0)  # the second configuration is starting or measuring now
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:  # never leave a sweep running behind a failed test
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    kept = lines(out)
    assert kept[0]["status"] == "ok" and kept[0]["settings"]["intra_op_threads"] == 1
    # The second configuration's worker was running (its partial result is kept) unless
    # the signal landed between two configurations; the third never started.
    assert len(kept) in (1, 2) and all(k["status"] == "interrupted" for k in kept[1:])
    printed = json.loads(stdout)
    assert [p["status"] for p in printed] == [k["status"] for k in kept]
