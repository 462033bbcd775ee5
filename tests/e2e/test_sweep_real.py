"""Sweeps on real models in real worker processes: the default profile, crashes, lost envs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.runtime.api import Overrides, Target
from aialliance_cli.runtime.sweep import SweepPoint, make_job, run_worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

runner = CliRunner()


@pytest.fixture
def shared_models(shared_cache, monkeypatch):
    """Point the model cache at the session-wide one so the MiniLM export runs once."""
    monkeypatch.setenv("AIA_CACHE_DIR", str(shared_cache))
    return shared_cache


def _out(result) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_default_profile_threads_sweep(shared_models, tmp_path):
    out = tmp_path / "runs.jsonl"
    r = _invoke("bench", "--json", "-n", "10", "--warmup", "2", "--threads", "1,2", "--out", out)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [d["settings"]["intra_op_threads"] for d in data] == [1, 2]
    for d in data:
        assert d["status"] == "ok" and d["profile"]["name"] == "all-minilm-l6-v2"
        assert d["profile"]["origin"] == "bundled" or d["profile"]["sha256"]
        assert d["settings"]["input_sets"] == 4 and d["settings"]["batch"] == 1
        assert d["metrics"]["latency_ms"]["count"] == 10
        # Each worker reports its own peak memory, not the parent's at fork time.
        assert 0 < d["metrics"]["peak_rss_bytes"] < 4 * 2**30
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.slow
def test_default_profile_text_input_in_a_worker(shared_models):
    r = _invoke(
        "bench",
        "--json",
        "-n",
        "3",
        "--warmup",
        "0",
        "--text",
        "hello there",
        "--batch",
        "2",
        "--dim",
        "sequence=16",
    )
    assert r.exit_code == 0, r.output
    (d,) = json.loads(r.stdout)  # bench --json: always a list
    assert d["settings"]["batch"] == 2 and d["settings"]["dims"]["sequence_length"] == 16


def test_worker_that_cannot_start_or_crashes(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    job = make_job(
        Target(name="mm", model_path=model), Overrides(iterations=3), SweepPoint(), label="mm"
    )
    missing = run_worker(job, python=str(tmp_path / "no-python"))
    assert missing["status"] == "failed" and "cannot start the worker" in missing["error"]
    crash = tmp_path / "crash.sh"
    crash.write_text("#!/bin/sh\necho 'Segmentation fault (pretend)' >&2\nkill -SEGV $$\n")
    crash.chmod(0o755)
    crashed = run_worker(job, python=str(crash))
    assert crashed["status"] == "failed" and crashed["failure"]["kind"] == "crash"
    assert "SIGSEGV" in crashed["error"] and "pretend" in crashed["error"]
    ok = run_worker(job, timeout_s=120)
    assert ok["status"] == "ok" and ok["metrics"]["iterations"] == 3


def test_registered_env_whose_python_is_gone(tmp_path):
    """An env deleted behind aia's back: its configuration fails, the others carry on."""
    from aialliance_cli.envs.registry import registry_path

    model = matmul_model(tmp_path / "mm.onnx")
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "schema": "aia.envs/1",
                "envs": {
                    "ov": {
                        "python": str(tmp_path / "deleted-venv" / "bin" / "python"),
                        "onnxruntime": "1.24.1",
                        "distribution": "onnxruntime-openvino",
                        "providers": ["OpenVINOExecutionProvider", "CPUExecutionProvider"],
                    }
                },
            }
        )
    )
    r = _invoke("bench", model, "--json", "-n", "5", "--ep", "cpu,openvino")
    assert r.exit_code == 1, r.output
    cpu, ov = json.loads(r.stdout)
    assert cpu["status"] == "ok" and cpu["environment"] is None
    assert ov["status"] == "failed" and "gone" in ov["error"] and "aia env" in ov["error"]
    assert ov["environment"]["name"] == "ov"
    listed = _invoke("env", "list", "--json")
    assert "gone" in json.loads(listed.stdout)["envs"][0]["problem"]


def test_broken_registry_is_bad_input(tmp_path):
    from aialliance_cli.envs.registry import registry_path

    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    r = _invoke("env", "list")
    assert r.exit_code == 2 and "envs.json" in _out(r)


def test_worker_never_imports_typer_or_rich(tmp_path):
    import os
    import subprocess

    from aialliance_cli.envs.registry import worker_environ

    model = matmul_model(tmp_path / "mm.onnx")
    job = make_job(
        Target(name="mm", model_path=model), Overrides(iterations=3), SweepPoint(), label="mm"
    )
    job["result_path"] = str(tmp_path / "result.json")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aialliance_cli.runtime.worker"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=worker_environ(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "onnxruntime" in imported and not imported & {"typer", "rich", "click"}
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "ok"
    assert "AIA-EVENT" in proc.stdout and os.path.exists(job["result_path"])
