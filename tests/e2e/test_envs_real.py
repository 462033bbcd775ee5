"""Environments with another ONNX Runtime build, for real: `aia env create` with
onnxruntime-openvino, then a sweep whose OpenVINO configuration runs there.

The environment is made once per test session (pip, 1-2 minutes) under an AIA_HOME of
its own; each test registers its python in the test's fresh AIA_HOME with `aia env add`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

runner = CliRunner()
OV_VERSION = "1.24.1"  # seen running its OpenVINO EP on these machines (docs/envs.md)
OV = "OpenVINOExecutionProvider"


def _out(result) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _json(*args: object):
    r = _invoke(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="session")
def ov_env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`aia env create ov --package onnxruntime-openvino` once; its `env list --json` entry."""
    home = tmp_path_factory.mktemp("aia-home-ov-env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIA_HOME", str(home))
        for var in ("AIA_CONFIG_DIR", "AIA_CACHE_DIR", "AIA_DATA_DIR"):
            mp.delenv(var, raising=False)
        r = _invoke(
            "env",
            "create",
            "ov",
            "--package",
            "onnxruntime-openvino",
            "--version",
            OV_VERSION,
            "--json",
        )
        if r.exit_code != 0:
            pytest.fail(f"aia env create failed ({r.exit_code}): {r.output[-2000:]}")
        rec = json.loads(r.stdout)
        listed = _json("env", "list", "--json")["envs"]
    assert [e["name"] for e in listed] == ["ov"]
    rec["home"] = str(home)
    return rec


@pytest.fixture
def registered(ov_env) -> dict:
    """The session's OpenVINO environment, registered in this test's AIA_HOME."""
    return _json("env", "add", "ov", "--python", ov_env["python"], "--json")


@pytest.mark.slow
@pytest.mark.openvino
def test_env_create_installs_the_build_and_the_worker_needs(ov_env):
    assert ov_env["managed"] is True and ov_env["problem"] is None
    assert ov_env["distribution"] == "onnxruntime-openvino"
    assert ov_env["onnxruntime"] == OV_VERSION
    assert OV in ov_env["providers"] and ov_env["missing"] == []
    assert Path(ov_env["path"]).parent == Path(ov_env["home"]) / "data" / "envs"
    # aia itself is not installed there: the worker reaches it through PYTHONPATH.
    probe = subprocess.run(
        [ov_env["python"], "-c", "import aialliance_cli"], capture_output=True, cwd="/"
    )
    assert probe.returncode != 0


@pytest.mark.slow
@pytest.mark.openvino
def test_cross_build_sweep_cpu_here_openvino_there(registered, tmp_path):
    assert OV in registered["providers"] and registered["managed"] is False
    model = matmul_model(tmp_path / "mm.onnx")
    out = tmp_path / "r.jsonl"
    data = _json("bench", model, "--json", "-n", "10", "--ep", "cpu,openvino", "--out", out)
    cpu, ov = data
    assert cpu["status"] == "ok" and ov["status"] == "ok", (cpu["error"], ov["error"])
    assert cpu["ep"]["name"] == "CPUExecutionProvider" and cpu["environment"] is None
    assert ov["ep"]["name"] == OV and not ov["ep"]["fallbacks"]
    assert ov["environment"] == {
        "name": "ov",
        "python": registered["python"],
        "onnxruntime": OV_VERSION,
        "distribution": "onnxruntime-openvino",
    }
    assert ov["onnxruntime"]["version"] == OV_VERSION
    assert ov["settings"]["input_sets"] == 4
    assert [x["ep"]["name"] for x in map(json.loads, out.read_text().splitlines())] == [
        "CPUExecutionProvider",
        OV,
    ]


@pytest.mark.slow
@pytest.mark.openvino
def test_cross_build_sweep_on_the_default_profile(registered, shared_cache, monkeypatch):
    monkeypatch.setenv("AIA_CACHE_DIR", str(shared_cache))  # the MiniLM export, once
    r = _invoke("bench", "-n", "5", "--warmup", "1", "--ep", "cpu,openvino")
    assert r.exit_code == 0, r.output
    # One row per configuration; the EP cell names the environment it ran in.
    rows = [line for line in r.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["cpu", "openvino@ov"]


@pytest.mark.slow
@pytest.mark.openvino
def test_ep_all_includes_the_envs_eps(registered, tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    data = _json("bench", model, "--json", "-n", "3", "--ep", "all")
    names = [d["ep"]["name"] for d in data]
    assert "CPUExecutionProvider" in names and OV in names
    assert all(d["status"] == "ok" for d in data)


@pytest.mark.slow
@pytest.mark.openvino
def test_loadgen_offline_in_the_other_env(registered, ov_env, tmp_path):
    if any("mlcommons-loadgen" in n for n in ov_env["notes"]):
        pytest.skip("mlcommons-loadgen could not be installed in the environment")
    model = matmul_model(tmp_path / "mm.onnx")
    (data,) = _json(
        "bench",
        model,
        "--json",
        "--ep",
        "openvino",
        "--scenario",
        "offline",
        "--min-duration",
        "0.5",
        "--out",
        tmp_path / "r.jsonl",
    )
    assert data["environment"]["name"] == "ov" and data["ep"]["name"] == OV
    assert data["metrics"]["loadgen"]["qps"] > 0
    assert Path(data["loadgen_logs"]["summary"]).is_file()


@pytest.mark.slow
@pytest.mark.openvino
def test_env_add_twice_replace_and_remove_keeps_an_added_envs_files(registered):
    r = _invoke("env", "add", "ov", "--python", registered["python"])
    assert r.exit_code == 2 and "already registered" in _out(r)
    assert (
        _json("env", "add", "ov", "--python", registered["python"], "--replace", "--json")["name"]
        == "ov"
    )
    r = _invoke("env", "remove", "ov")
    assert r.exit_code == 0
    assert Path(registered["python"]).exists()  # added, not created: its files stay
    assert _json("env", "list", "--json")["envs"] == []
    assert _invoke("env", "remove", "ov").exit_code == 2


# ---------------------------------------------------------------- bad input (no OpenVINO)


def test_env_add_refuses_what_cannot_serve(tmp_path):
    r = _invoke("env", "add", "x", "--python", tmp_path / "nope")
    assert r.exit_code == 2 and "no such file" in _out(r)
    script = tmp_path / "notpython"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    r = _invoke("env", "add", "x", "--python", script)
    assert r.exit_code == 2 and "does not run Python code" in _out(r)
    r = _invoke("env", "add", "b@d", "--python", sys.executable)
    assert r.exit_code == 2 and "not allowed" in _out(r)
    assert _json("env", "list", "--json")["envs"] == []


@pytest.mark.slow
def test_env_add_python_without_onnxruntime(tmp_path):
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    r = _invoke("env", "add", "bare", "--python", venv / "bin" / "python")
    assert r.exit_code == 2 and "no usable onnxruntime" in _out(r)
    assert "aia env create" in _out(r)


def test_env_create_bad_arguments(tmp_path):
    r = _invoke("env", "create", "x y", "--package", "onnxruntime-openvino")
    assert r.exit_code == 2
    r = _invoke("env", "create", "x", "--package", "onnxruntime openvino")
    assert r.exit_code == 2 and "--package" in _out(r)
    r = _invoke("env", "create", "x", "--package", "onnxruntime-openvino", "--version", "1 2")
    assert r.exit_code == 2 and "--version" in _out(r)


@pytest.mark.slow
def test_env_create_version_pip_cannot_find_cleans_up():
    from aialliance_cli.envs.registry import envs_dir

    r = _invoke("env", "create", "nov", "--package", "onnxruntime-openvino", "--version", "0.0.1")
    assert r.exit_code == 2, r.output
    assert "pip found no onnxruntime-openvino==0.0.1" in _out(r)
    assert not (envs_dir() / "nov").exists()
    assert _json("env", "list", "--json")["envs"] == []
