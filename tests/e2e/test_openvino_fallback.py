"""A real EP failure at session build: the OpenVINO EP asked for a GPU this machine lacks.

ONNX Runtime then quietly builds the session on the CPU; aia must notice, record the
EP's own error as the fallback reason, and refuse under --strict (exit 3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ovenv import openvino_python  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from helpers import matmul_model
from aialliance_cli.errors import UnavailableError
from aialliance_cli.runtime.session import SessionSpec, build_session

model = matmul_model(Path({tmp!r}) / "m.onnx")
spec = dict(ep="OpenVINOExecutionProvider", options={{"device_type": "GPU"}},
            fallbacks=(("CPUExecutionProvider", {{}}),))
built = build_session(model, SessionSpec(**spec))
out = {{"ep": built.ep, "fallbacks": [f.__dict__ for f in built.fallbacks]}}
try:
    build_session(model, SessionSpec(**spec, strict=True))
    out["strict"] = None
except UnavailableError as exc:
    out["strict"] = [str(exc), int(exc.exit_code)]
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.openvino
def test_openvino_gpu_missing_falls_back_with_the_eps_reason(tmp_path):
    gpu = Path("/sys/class/drm")
    if gpu.exists() and any(p.name.startswith("renderD") for p in gpu.iterdir()):
        pytest.skip("this machine has a render node: the OpenVINO GPU device may exist")
    python = openvino_python()
    code = SCRIPT.format(tests=str(REPO / "tests"), tmp=str(tmp_path))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ep"] == "CPUExecutionProvider"
    (fb,) = out["fallbacks"]
    assert fb["requested"] == "OpenVINOExecutionProvider"
    assert fb["used_instead"] == "CPUExecutionProvider"
    assert "GPU" in fb["error"] and "not available" in fb["error"]
    message, code_ = out["strict"]
    assert code_ == 3 and "--strict" in message
    # ONNX Runtime's C++ error lines were captured, not spilled on the user's terminal.
    assert "Failed to create" not in proc.stderr
