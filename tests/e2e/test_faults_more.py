"""Fault injection, for real, beyond the plain benchmark loop (test_faults_signals.py).

MLPerf LoadGen scenarios (in a worker and ``--in-process``), ``aia env create``,
``aia fleet --local``: a signal to ``aia`` at a moment during the operation, then
the exit code (128 + signal), the kept record, no process left that aia started
(by pid, and by ``/proc/*/environ`` pointing at the test's own temp dir), and no
temp folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import aia_popen, fault_env, matmul_model  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and signals")

REPO = Path(__file__).resolve().parents[2]
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def _env(tmp: Path) -> dict[str, str]:
    return fault_env(tmp, mark=True)


def _aia(tmp: Path, *args: str, tmpdir: Path | None = None) -> subprocess.Popen[str]:
    env = _env(tmp)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return aia_popen(tmp, *args, env=env)


def _descendants_of_test(tmp: Path) -> list[str]:
    """Live processes whose environment or cwd point at this test's tmp dir."""
    mark = str(tmp).encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            state = (d / "stat").read_text().split(")")[-1].split()[0]
            if state == "Z":
                continue
            env = (d / "environ").read_bytes()
            cwd = os.readlink(d / "cwd")
        except OSError:
            continue
        if b"AIA_FAULT_TEST=" + mark in env or cwd.startswith(str(tmp)):
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")[:200]
            found.append(f"{d.name}: {cmd.decode(errors='replace')}")
    return found


def _none_left(tmp: Path, within: float = 15.0) -> None:
    end = time.monotonic() + within
    while time.monotonic() < end:
        left = _descendants_of_test(tmp)
        if not left:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes outlived aia: {left}")


def _no_temp_dirs(tmp: Path) -> None:
    left = [p.name for p in (tmp / "tmp").iterdir() if p.name.startswith(("aia-", "tmp"))]
    assert not left, f"temp folders left behind: {left}"


def _records(out: Path) -> list[dict]:
    if not out.exists():
        return []
    text = out.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the last line of --out is incomplete"
    return [json.loads(line) for line in text.splitlines()]


def _wait_for(pred, proc: subprocess.Popen[str], timeout: float = 120, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"aia ended before {what}: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError(f"never reached: {what}")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return matmul_model(tmp_path_factory.mktemp("faults_more") / "mm.onnx", k=64, n=64)


# ----------------------------------------------------------------------------- LoadGen


def _loadgen_running(out: Path) -> bool:
    """LoadGen has generated its queries and issues them (its detail log says so)."""
    for log in out.parent.glob(f"{out.stem}.loadgen/*/mlperf_log_detail.txt"):
        try:
            if "generated_query_count" in log.read_text(errors="replace"):
                return True
        except OSError:
            pass
    return False


@pytest.mark.parametrize(
    ("scenario", "sig", "extra"),
    [
        # LoadGen generates the queries of --min-duration at the expected latency and ends
        # when they run out: the expected latencies are well under what this tiny model
        # takes, so that the run cannot end before the signal on a fast, quiet machine.
        ("single-stream", signal.SIGTERM, ["--target-latency-ms", "0.2"]),
        ("server", signal.SIGINT, ["--target-qps", "200"]),
        ("offline", signal.SIGHUP, ["--target-qps", "20000"]),
        ("multi-stream", signal.SIGTERM, ["--target-latency-ms", "1"]),
    ],
)
def test_signal_during_a_loadgen_scenario_keeps_the_measurement(
    scenario: str, sig: signal.Signals, extra: list[str], model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("mlperf_loadgen")
    out = tmp_path / "out.jsonl"
    proc = _aia(
        tmp_path, "bench", str(model), "--scenario", scenario, "--min-duration", "120",
        *extra, "--out", str(out),
    )  # fmt: skip
    _wait_for(lambda: _loadgen_running(out), proc, what="LoadGen issuing queries")
    time.sleep(2.0)  # queries complete meanwhile
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == CODES[sig], stderr
    _none_left(tmp_path)
    _no_temp_dirs(tmp_path)
    (rec,) = _records(out)
    assert rec["status"] == "interrupted", rec.get("error")
    assert "loadgen" in rec["metrics"], (rec.get("error"), stderr)
    lg = rec["metrics"]["loadgen"]
    assert lg["interrupted"] is True and lg["valid"] is False
    if scenario != "offline":  # offline is one query of all samples: it may not complete
        assert lg["samples_processed"] > 0 and lg["qps"] > 0
        assert rec["metrics"]["latency_ms"]["p50"] > 0
    assert Path(rec["loadgen_logs"]["detail"]).exists()  # LoadGen's logs are kept
    assert "Traceback" not in stderr


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _storm(proc: subprocess.Popen[str], first: signal.Signals) -> None:
    """The first signal, then a burst of others while aia cleans up after it.

    Python runs the handlers of signals pending together in the order of their
    numbers, so on a busy machine a later SIGHUP may count as the first: the exit
    code is then 129 rather than that of ``first``.
    """
    proc.send_signal(first)
    time.sleep(0.05)
    for i in range(60):
        time.sleep(0.005)
        if proc.poll() is not None:
            return
        proc.send_signal((signal.SIGINT, signal.SIGHUP, signal.SIGTERM)[i % 3])


def test_second_signals_during_in_process_cleanup_keep_the_measurement(
    model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = _aia(tmp_path, "bench", str(model), "--in-process", "--duration", "120",
                "--out", str(out))  # fmt: skip
    assert proc.stderr is not None
    proc.stderr.readline()  # "measuring each configuration for ..." (the plan is made)
    start = _cpu_s(proc.pid)
    # The loop burns CPU; building a tiny model's session takes far less than this.
    _wait_for(lambda: _cpu_s(proc.pid) - start > 3.0, proc, what="the measuring loop")
    _storm(proc, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode in CODES.values(), stderr
    (rec,) = _records(out)
    assert rec["status"] == "interrupted"
    assert rec["metrics"]["iterations"] > 0 and rec["metrics"]["latency_ms"]["p50"] > 0
    assert "Traceback" not in stderr
    _none_left(tmp_path)


def test_signals_during_an_in_process_loadgen_scenario(model: Path, tmp_path: Path) -> None:
    """LoadGen's own threads run in aia here: after the signal aia still ends at once."""
    pytest.importorskip("mlperf_loadgen")
    out = tmp_path / "out.jsonl"
    proc = _aia(
        tmp_path, "bench", str(model), "--in-process", "--scenario", "server",
        "--target-qps", "200", "--min-duration", "120", "--out", str(out),
    )  # fmt: skip
    _wait_for(lambda: _loadgen_running(out), proc, what="LoadGen issuing queries")
    time.sleep(2.0)
    _storm(proc, signal.SIGINT)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode in CODES.values(), stderr
    (rec,) = _records(out)
    assert rec["status"] == "interrupted"
    assert rec["metrics"]["loadgen"]["interrupted"] is True
    assert rec["metrics"]["loadgen"]["samples_processed"] > 0
    assert "Traceback" not in stderr
    _none_left(tmp_path)


# ----------------------------------------------------------------------------- env create


def _procs_of_test(tmp: Path, needle: bytes) -> bool:
    mark = b"AIA_FAULT_TEST=" + str(tmp).encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if needle in (d / "cmdline").read_bytes() and mark in (d / "environ").read_bytes():
                return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize(
    ("moment", "sig"),
    [
        ("venv", signal.SIGTERM),
        ("pip", signal.SIGINT),
        ("pip", signal.SIGHUP),
        ("pip", signal.SIGKILL),
    ],
)
def test_signal_during_env_create_leaves_no_process_and_no_half_env(
    moment: str, sig: signal.Signals, tmp_path: Path
) -> None:
    proc = _aia(tmp_path, "env", "create", "half", "--package", "onnxruntime")
    home = tmp_path / "home"
    if moment == "venv":  # python -m venv, and the ensurepip it starts
        _wait_for(lambda: _procs_of_test(tmp_path, b"ensurepip"), proc, what="ensurepip")
    else:
        _wait_for(lambda: _procs_of_test(tmp_path, b"pip\0install"), proc, what="pip running")
        time.sleep(1.0)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=90)
    _none_left(tmp_path)
    if sig == signal.SIGKILL:  # pip ends with aia; the next create replaces the folder
        return
    assert proc.returncode == CODES[sig], stderr
    assert not [p for p in home.rglob("half") if p.is_dir()], "a half-made environment is left"
    listed = subprocess.run(
        [sys.executable, "-m", "aialliance_cli", "env", "list", "--json"],
        env=_env(tmp_path), capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert "half" not in listed.stdout
    assert "Traceback" not in stderr


# ------------------------------------------------------- helper processes (children.py)

_DRIVER = """
import sys
from aialliance_cli import interrupts
from aialliance_cli.children import run_group
interrupts.install()
child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', " \\
        "'import time; time.sleep(120)']); print('up', flush=True); time.sleep(120)"
try:
    run_group([sys.executable, "-c", child], stdout=None)
except KeyboardInterrupt:
    sys.exit(interrupts.exit_code())
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_helper_processes_end_with_aia(sig: signal.Signals, tmp_path: Path) -> None:
    """What pip, venv and the GenAI model builder run under: a signal to aia ends the
    helper and what the helper started; SIGKILL of aia ends the helper (Linux)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER], env=_env(tmp_path), cwd=tmp_path,
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "up"
    time.sleep(0.5)  # the grandchild is started
    proc.send_signal(sig)
    proc.wait(timeout=60)
    if sig == signal.SIGKILL:  # the parent-death signal reaches the helper itself
        end = time.monotonic() + 15
        while time.monotonic() < end and _procs_of_test(tmp_path, b"print('up'"):
            time.sleep(0.1)
        assert not _procs_of_test(tmp_path, b"print('up'"), "the helper outlived aia"
        for line in _descendants_of_test(tmp_path):  # the grandchild: end it here
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        return
    assert proc.returncode == CODES[sig]
    _none_left(tmp_path)


# ----------------------------------------------------------------------------- fleet --local


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_no_ray_process_outlives_fleet_local(
    sig: signal.Signals, model: Path, tmp_path: Path
) -> None:
    """SIGINT while the local Ray cluster starts; SIGKILL while a node measures: no
    process of the cluster (raylet, GCS, workers, aia's worker) is left."""
    pytest.importorskip("ray")
    import shutil
    import tempfile

    # Ray's socket paths must fit in 107 bytes: a short temp dir of its own.
    short = Path(tempfile.mkdtemp(prefix="aiaf-", dir="/tmp"))
    proc = _aia(tmp_path, "fleet", "bench", str(model), "--local", "2", "--duration", "30",
                tmpdir=short)  # fmt: skip
    assert proc.stderr is not None
    seen = [proc.stderr.readline()]  # "starting a local Ray cluster of 2 node(s) ..."
    if sig == signal.SIGINT:
        _wait_for(lambda: len(_descendants_of_test(tmp_path)) > 3, proc, what="ray starting")
    else:
        while "running" not in seen[-1]:
            seen.append(proc.stderr.readline())
            assert seen[-1], "".join(seen)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    if sig != signal.SIGKILL:
        assert proc.returncode == CODES[sig], "".join(seen) + stderr
        assert "Traceback" not in stderr
    try:
        _none_left(tmp_path, within=60)
    finally:
        shutil.rmtree(short, ignore_errors=True)


# ----------------------------------------------------------------------- tune and profile


@pytest.mark.parametrize(
    ("args", "sig"),
    [
        (["tune", "{model}", "--budget", "120", "--no-save", "--ep", "cpu"], signal.SIGTERM),
        (["profile", "{model}", "-n", "1000000", "--json"], signal.SIGHUP),
    ],
    ids=["tune", "profile"],
)
def test_signal_during_tune_and_profile_leaves_nothing(
    args: list[str], sig: signal.Signals, model: Path, tmp_path: Path
) -> None:
    """tune's trial workers; profile's measurement: a signal mid-run ends every process
    aia started and leaves no temp folder; exit 128 + signal."""
    proc = _aia(tmp_path, *(a.format(model=model) for a in args))
    if args[0] == "tune":
        _wait_for(lambda: _procs_of_test(tmp_path, b"runtime.worker"), proc, what="a trial")
    else:  # profiling runs in aia itself: its folder, then CPU burnt past the FLOP count
        tmp = tmp_path / "tmp"
        _wait_for(lambda: any(tmp.glob("aia-profile-*")), proc, what="the profiling session")
        start = _cpu_s(proc.pid)
        _wait_for(lambda: _cpu_s(proc.pid) > start + 4.0, proc, what="the profiling run")
    time.sleep(1.0)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == CODES[sig], stderr
    assert "Traceback" not in stderr
    _none_left(tmp_path)
    _no_temp_dirs(tmp_path)
    if args[0] == "profile":  # what was profiled before the signal is printed
        assert json.loads(stdout), stdout


def test_fleet_local_with_a_deep_temp_dir_is_bad_input(tmp_path: Path) -> None:
    """Ray's socket paths must fit in 107 bytes: a deep TMPDIR is named, exit 2."""
    pytest.importorskip("ray")
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    proc = _aia(tmp_path, "fleet", "detect", "--local", "1", tmpdir=deep)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 2, stderr
    assert "too deep" in stderr and "TMPDIR" in stderr
    assert "unexpected" not in stderr and "Traceback" not in stderr
    _none_left(tmp_path, within=30)
