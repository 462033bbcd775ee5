"""Fault injection, for real: signals to a running ``aia bench`` and to a worker's launcher.

Each case starts aia (or a small driver over runtime/launch.py) in a subprocess
with its own TMPDIR and AIA_HOME, on a small model the test builds, sends the
signal at a chosen moment, and checks: the exit code (130 SIGINT, 143 SIGTERM,
129 SIGHUP), that every ``--out`` line parses, that what was measured is kept,
that the worker process is gone within a few seconds and that no temp folder
of a worker remains.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import _wait_for_loop, _worker_of, aia_popen, fault_env, matmul_model  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and signals")

REPO = Path(__file__).resolve().parents[2]
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def _env(tmp: Path) -> dict[str, str]:
    return fault_env(tmp)


def _aia(tmp: Path, *args: str) -> subprocess.Popen[str]:
    return aia_popen(tmp, *args, env=_env(tmp))


def _gone(pid: int, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":  # exited, waiting for its parent to reap it
            return True
        time.sleep(0.05)
    return False


def _no_worker_dirs(tmp: Path) -> None:
    left = [p.name for p in (tmp / "tmp").iterdir() if p.name.startswith("aia-")]
    assert not left, f"temp folders left behind: {left}"


def _records(out: Path) -> list[dict]:
    if not out.exists():
        return []
    text = out.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the last line of --out is incomplete"
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return matmul_model(tmp_path_factory.mktemp("faults") / "mm.onnx", k=64, n=64)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_during_the_loop_keeps_the_measurement(
    sig: signal.Signals, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = _aia(tmp_path, "bench", str(model), "--duration", "60", "--out", str(out))
    worker = _worker_of(proc)
    _wait_for_loop(worker)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == CODES[sig], stderr
    assert _gone(worker)
    _no_worker_dirs(tmp_path)
    (rec,) = _records(out)
    assert rec["status"] == "interrupted"
    assert rec["metrics"]["iterations"] > 0
    assert rec["metrics"]["latency_ms"]["p50"] > 0
    assert "Traceback" not in stderr


@pytest.mark.xfail(
    reason="known gap (1 of the last 2 clean-clone CI runs before the fix): a SIGTERM that "
    "lands while aia imports a C extension can lose its KeyboardInterrupt; the launcher now acts "
    "on the recorded signal (test_a_signal_whose_interrupt_was_lost_still_stops_the_worker), "
    "not yet seen passing in enough CI runs to drop this mark",
    strict=False,
)
def test_sigterm_while_the_worker_starts(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = _aia(tmp_path, "bench", str(model), "--duration", "60", "--out", str(out))
    worker = _worker_of(proc)
    proc.send_signal(signal.SIGTERM)  # importing or building the session
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert _gone(worker)
    _no_worker_dirs(tmp_path)
    for rec in _records(out):
        assert rec["status"] == "interrupted"
    assert "Traceback" not in stderr


@pytest.mark.parametrize("moment", ["start", "loop"])
def test_sigkill_of_aia_ends_its_worker(moment: str, model: Path, tmp_path: Path) -> None:
    proc = _aia(tmp_path, "bench", str(model), "--duration", "60")
    worker = _worker_of(proc)
    if moment == "loop":
        _wait_for_loop(worker)
    else:
        time.sleep(0.5)  # importing onnxruntime or building the session
    proc.kill()
    proc.communicate(timeout=30)
    assert _gone(worker, within=10), "the worker outlived a SIGKILLed aia"
    _no_worker_dirs(tmp_path)


def test_sigint_between_sweep_configurations(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = _aia(tmp_path, "bench", str(model), "--threads", "1,2", "-n", "200", "--out", str(out))
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # "[2/2] threads=2" once the first configuration is done
        seen.append(line)
        if line.startswith("[2/2]"):
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + rest
    _no_worker_dirs(tmp_path)
    recs = _records(out)
    assert recs and recs[0]["status"] == "ok"
    assert all(r["status"] in ("ok", "interrupted") for r in recs)


# ----------------------------------------------------------------------------- precise moments

DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys
    from aialliance_cli import interrupts
    from aialliance_cli.runtime.api import Overrides, prepare_target
    from aialliance_cli.runtime.launch import WorkerInterrupted, run_job
    from aialliance_cli.runtime.sweep import SweepPoint, make_job

    model, moment, sig, twice = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    here = sys.argv[5] == "1"
    interrupts.install()
    job = make_job(prepare_target(model), Overrides(duration_s=30), SweepPoint(), label="x")
    sent = []

    def on_event(ev):
        hit = {"loop": ev.get("event") == "progress" and (ev.get("done") or 0) > 0,
               "stats": ev.get("event") == "measured"}[moment]
        if hit and not sent:
            sent.append(1)
            os.kill(os.getpid(), sig)
            if twice:
                os.kill(os.getpid(), signal.SIGINT)

    try:
        res = run_job(job, on_event=on_event, timeout_s=None if here else 90, in_process=here)
    except WorkerInterrupted as stop:
        res = stop.result
    print(json.dumps({"status": res["status"], "metrics": res.get("metrics"),
                      "error": res.get("error"), "code": interrupts.exit_code()}))
    """
)


def _drive(script: str, args: list[str], tmp_path: Path) -> dict:
    """Run a driver script in its own Python; the JSON on its last line."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("moment", "sig", "twice", "here"),
    [
        ("loop", signal.SIGTERM, False, False),
        ("stats", signal.SIGINT, True, False),
        ("loop", signal.SIGHUP, False, True),
        ("stats", signal.SIGTERM, True, True),
    ],
)
def test_launcher_keeps_what_was_measured(
    moment: str, sig: signal.Signals, twice: bool, here: bool, model: Path, tmp_path: Path
) -> None:
    """A signal at the first measured run, or during the statistics (and a second one),
    to a worker's launcher or to a measurement in this process (``--in-process``)."""
    args = [str(model), moment, str(int(sig)), "1" if twice else "0", "1" if here else "0"]
    res = _drive(DRIVER, args, tmp_path)
    assert res["code"] == CODES[sig], res
    assert res["metrics"]["iterations"] > 0, res
    assert res["metrics"]["latency_ms"]["p50"] > 0
    _no_worker_dirs(tmp_path)


LOST = textwrap.dedent(
    """
    import json, signal, sys
    from aialliance_cli import interrupts
    from aialliance_cli.runtime.api import Overrides, prepare_target
    from aialliance_cli.runtime.launch import WorkerInterrupted, run_job
    from aialliance_cli.runtime.sweep import SweepPoint, make_job

    interrupts.install()
    job = make_job(prepare_target(sys.argv[1]), Overrides(duration_s=30), SweepPoint(), label="x")
    # What the handler leaves when Python drops its KeyboardInterrupt (raised while a C
    # extension is imported, or in a finalizer): the signal recorded, no exception.
    interrupts.note(signal.SIGTERM)
    try:
        res = run_job(job, timeout_s=90)
    except WorkerInterrupted as stop:
        res = stop.result
    print(json.dumps({"status": res["status"], "code": interrupts.exit_code()}))
    """
)


def test_a_signal_whose_interrupt_was_lost_still_stops_the_worker(
    model: Path, tmp_path: Path
) -> None:
    """A 30-s benchmark after a SIGTERM whose KeyboardInterrupt Python dropped: the worker
    is stopped at once (interrupted, 143), not left to measure to its end."""
    res = _drive(LOST, [str(model)], tmp_path)
    assert (res["status"], res["code"]) == ("interrupted", 143), res  # not "ok" after 30 s
    _no_worker_dirs(tmp_path)


def test_timeout_counts_the_loop_not_the_statistics(model: Path, tmp_path: Path) -> None:
    """--timeout 12 on a 30-s loop: stopped, failed with kind timeout, what ran is kept."""
    out = tmp_path / "out.jsonl"
    proc = _aia(
        tmp_path, "bench", str(model), "--duration", "30", "--timeout", "12", "--out", str(out)
    )
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 1, stderr
    (rec,) = _records(out)
    assert rec["status"] == "failed"
    assert rec["failure"]["kind"] == "timeout"
    if rec["metrics"].get("iterations"):  # what ran before the timeout is kept
        assert rec["metrics"]["latency_ms"]["p50"] > 0
    _no_worker_dirs(tmp_path)
