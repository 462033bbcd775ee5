"""Output that tells the truth in every mode (issue 11): warnings reach stderr with --json and
--csv and are recorded; reasons are kept whole in the record; failed rows say what they asked.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.cli.output import shorten

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import fixed_batch_model, matmul_model  # noqa: E402

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def mm(tmp_path: Path) -> Path:
    return matmul_model(tmp_path / "mm.onnx")


def _too_many_threads() -> int:
    return (os.cpu_count() or 1) * 4


@pytest.mark.parametrize("mode", ["--json", "--csv"])
def test_oversubscribed_threads_warn_on_stderr_and_in_the_record(mm, mode):
    n = _too_many_threads()
    r = invoke("bench", mm, mode, "-n", "3", "--warmup", "0", "--threads", n, "--in-process")
    assert r.exit_code == 0, r.output
    assert f"{n} intra-op threads on" in flat(r.stderr) and "oversubscribe" in r.stderr
    if mode == "--json":
        (data,) = json.loads(r.stdout)  # bench --json: always a list
        assert any("oversubscribe" in w for w in data["warnings"])
    else:
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        assert len(rows) == 1 and rows[0]["status"] == "ok"


def test_run_json_warns_on_stderr_too(mm):
    r = invoke("run", mm, "--json", "--threads", _too_many_threads())
    assert r.exit_code == 0, r.output
    assert "oversubscribe" in r.stderr
    assert any("oversubscribe" in w for w in json.loads(r.stdout)["warnings"])


def test_preferred_ep_unusable_here_is_said_and_recorded(mm, tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "schema: aia.profile/1\nname: prefers-cuda\ntask: generic\n"
        f"model: {{file: {mm}}}\ninputs: {{dims: {{batch: 1}}}}\n"
        "providers: {prefer: [cuda]}\n"
    )
    r = invoke("bench", profile, "--json", "-n", "3", "--warmup", "0", "--in-process")
    assert r.exit_code == 0, r.output
    assert "Preferred CUDAExecutionProvider is not usable here" in flat(r.stderr)
    assert any("Preferred CUDAExecutionProvider" in w for w in json.loads(r.stdout)[0]["warnings"])


def test_failed_rows_carry_the_ep_device_and_dims_they_asked_for(tmp_path):
    model = fixed_batch_model(tmp_path / "fixed.onnx")
    r = invoke("bench", model, "--csv", "-n", "3", "--ep", "cpu", "--batch", "2,3")
    assert r.exit_code == 2, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["status"] for row in rows] == ["failed", "failed"]
    for row, batch in zip(rows, ("2", "3"), strict=True):
        assert row["ep"] == "CPUExecutionProvider" and row["device"] == "cpu"
        assert row["batch"] == batch


def test_failed_row_of_a_dim_sweep_names_its_dims():
    from aialliance_cli.results.tabular import flatten
    from aialliance_cli.runtime.job import failed_result

    job = {
        "config": {"ep": "OpenVINOExecutionProvider", "dims": {"sequence": 64}, "label": "x"},
        "overrides": {"dims": {"sequence": 64}},
        "target": {"name": "m"},
    }
    row = flatten(failed_result(job, "boom", machine={}, onnxruntime={}))
    assert row["ep"] == "OpenVINOExecutionProvider"
    assert row["device"] == "cpu" and row["dims"] == "sequence=64"


def test_screen_shortening_never_cuts_a_word_and_the_record_keeps_everything():
    text = "word " * 200 + "tail"
    short = shorten(text, 100)
    assert len(short) < 140 and "(whole text in the result)" in short
    body = short.split(" …")[0]
    assert all(w == "word" for w in body.split())
    assert shorten("short text") == "short text"


def test_session_errors_are_recorded_whole():
    from aialliance_cli.runtime.session import _gist

    long = "first line " + "x" * 900 + "\nsecond line: the useful part"
    got = _gist(RuntimeError(long))
    assert got.endswith("the useful part") and "x" * 900 in got


@pytest.mark.slow
@pytest.mark.openvino
def test_openvino_fallback_in_a_registered_env_warns_with_json(mm, tmp_path):
    """--ep openvino ran on the CPU EP with exit 0 and nothing said (issue 11)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ovenv import openvino_python

    python = openvino_python()
    assert invoke("env", "add", "ov", "--python", python).exit_code == 0
    profile = tmp_path / "ov-gpu.yaml"
    profile.write_text(  # no GPU here: the OpenVINO EP fails and ORT retries on the CPU
        "schema: aia.profile/1\nname: ov-gpu\ntask: generic\n"
        f"model: {{file: {mm}}}\ninputs: {{dims: {{batch: 1}}}}\n"
        "providers: {options: {openvino: {device_type: GPU}}}\n"
    )
    gpu = Path("/sys/class/drm")
    if gpu.exists() and any(p.name.startswith("renderD") for p in gpu.iterdir()):
        pytest.skip("this machine has a render node: the OpenVINO GPU device may exist")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run(
        [sys.executable, "-m", "aialliance_cli", "bench", str(profile), "--ep", "openvino",
         "--json", "-n", "3", "--warmup", "0"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (data,) = json.loads(proc.stdout)  # bench --json: always a list
    assert data["ep"]["name"] == "CPUExecutionProvider"
    assert "OpenVINOExecutionProvider could not be used; ran on CPUExecutionProvider" in flat(
        proc.stderr
    )
    (fb,) = data["ep"]["fallbacks"]
    assert fb["error"] in " ".join(data["warnings"])  # the whole reason, in the record


def test_failed_row_of_the_default_ep_names_it(tmp_path):
    model = fixed_batch_model(tmp_path / "fixed.onnx")
    r = invoke("bench", model, "--csv", "-n", "3", "--batch", "1,2")
    assert r.exit_code == 1, r.output
    ok, failed = csv.DictReader(io.StringIO(r.stdout))
    assert failed["status"] == "failed"
    assert (failed["ep"], failed["device"]) == (ok["ep"], ok["device"])
