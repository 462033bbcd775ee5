"""Workers started ahead of their job: taken by the next run, never outliving aia."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aialliance_cli.runtime import launch
from aialliance_cli.runtime.api import Overrides, prepare_target
from aialliance_cli.runtime.sweep import SweepPoint, make_job
from tests.helpers import matmul_model


def _gone(pid: int, within_s: float = 15.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie child of this process counts as gone once reaped
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


def _job(tmp_path: Path) -> dict:
    target = prepare_target(str(matmul_model(tmp_path / "mm.onnx")))
    ov = Overrides(iterations=3, warmup=1)
    return make_job(target, ov, SweepPoint(None, None, None, (), None), label="cpu")


def test_run_worker_takes_the_prestarted_worker(tmp_path: Path) -> None:
    launch.prestart_worker()
    proc, workdir, _ = launch._PRESTARTED[sys.executable]
    result = launch.run_worker(_job(tmp_path))
    assert result["status"] == "ok", result.get("error")
    assert launch._PRESTARTED == {}
    assert proc.poll() is not None  # that very process ran the job and ended
    assert not workdir.exists()


def test_unused_prestarted_worker_is_discarded() -> None:
    launch.prestart_worker()
    proc, workdir, _ = launch._PRESTARTED[sys.executable]
    assert proc.poll() is None
    launch.discard_prestarted()
    assert _gone(proc.pid) and not workdir.exists()


def test_prestarted_worker_ends_with_a_killed_parent(tmp_path: Path) -> None:
    code = (
        "import json, sys, time\n"
        "from aialliance_cli.runtime import launch\n"
        "launch.prestart_worker()\n"
        "proc, workdir, _ = launch._PRESTARTED[sys.executable]\n"
        "print(json.dumps([proc.pid, str(workdir)]), flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid, workdir = json.loads(parent.stdout.readline())
    time.sleep(1.0)  # let it reach its wait for a job (or be loading: both must end)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _gone(pid)
    deadline = time.monotonic() + 10
    while Path(workdir).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(workdir).exists()


def test_bench_leaves_no_prestarted_worker_behind(tmp_path: Path) -> None:
    model = matmul_model(tmp_path / "mm.onnx")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    for args in (["-n", "2"], ["--ep", "cpu,cpu", "-n", "2"], ["--dim", "nope=3"]):
        subprocess.run(
            [sys.executable, "-m", "aialliance_cli", "bench", str(model), "--json", *args],
            capture_output=True,
            text=True,
            env=env,
        )
        assert sorted(p.name for p in tmp.glob(launch.WORKDIR_PREFIX + "*")) == []
