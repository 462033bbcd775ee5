"""A Python with ONNX Runtime's OpenVINO build, for tests that need the OpenVINO EP for real.

``onnxruntime-openvino`` installs the module ``onnxruntime`` and so cannot live beside
the plain build in the test environment. :func:`openvino_python` returns
``$AIA_TEST_OV_PYTHON`` when set; otherwise it creates, once, a virtual environment at
``<repo>/.venv-ov-test`` (git-ignored through ``.venv-*/``) with
``pip install onnxruntime-openvino`` and the worker's packages (a minute or two), and
reuses it later.
Scripts run there import ``aialliance_cli`` with ``PYTHONPATH`` set to the repo
(:func:`ov_env`).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-ov-test"
# The OpenVINO build plus what aia's worker imports there (envs.registry.WORKER_PACKAGES),
# so the same Python serves scripts and `aia env add` + worker runs.
PACKAGES = (
    "onnxruntime-openvino",
    "numpy",
    "onnx",
    "psutil",
    "pyyaml",
    "pydantic",
    "platformdirs",
    "tokenizers",
)
_READY = ".aia-ready"  # written last: a half-made environment is never reused


class OpenVinoEnvError(RuntimeError):
    """The OpenVINO test environment could not be found or made."""


def openvino_python() -> Path:
    """The path of a Python whose ``onnxruntime`` offers the OpenVINO EP."""
    given = os.environ.get("AIA_TEST_OV_PYTHON")
    if given:
        path = Path(given).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise OpenVinoEnvError(f"AIA_TEST_OV_PYTHON={given} is not an executable file.")
        return path
    python = VENV / "bin" / "python"
    VENV.mkdir(exist_ok=True)
    with open(VENV / ".lock", "w") as lock:  # parallel test workers build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        ready = VENV / _READY
        # Remade when the package list changed since it was built.
        if not ready.exists() or ready.read_text().split() != list(PACKAGES):
            _create(python)
    return python


def _create(python: Path) -> None:
    log = VENV / "create.log"
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *PACKAGES],
    ]
    with open(log, "w") as out:
        for cmd in steps:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise OpenVinoEnvError(
                    f"could not make the OpenVINO test environment at {VENV}: "
                    f"{' '.join(cmd)} exited {done.returncode}. Last lines of {log}:\n"
                    + "\n".join(tail)
                    + "\nSet AIA_TEST_OV_PYTHON to a Python with onnxruntime-openvino instead."
                )
    (VENV / _READY).write_text(" ".join(PACKAGES) + "\n")


def ov_env() -> dict[str, str]:
    """The environment for a script run by the OpenVINO Python: the repo on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    return env
