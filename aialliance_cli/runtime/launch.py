"""Run a job in a worker process and get its result dict back.

    run_job(job, python=None, timeout_s=None, on_event=None) -> result dict

The one way aia's commands (bench and its sweeps, profile in another
environment, tune, fleet) start a measurement in a process of its own: it
spawns ``python -m aialliance_cli.runtime.worker`` (this Python, or the one of
a registered environment), feeds it the job (runtime/job.py), passes its
``AIA-EVENT`` lines to ``on_event``, enforces the timeout, forwards Ctrl-C and
removes the worker's temp folder. Layers: job <- worker <- launch <- commands;
nothing here knows which command called it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aialliance_cli.runtime.job import EVENT_PREFIX, Event, failed_result

# After Ctrl-C the worker gets this long to write what it measured before it is killed.
INTERRUPT_GRACE_S = 10.0


class WorkerInterrupted(Exception):
    """Ctrl-C while a job ran; ``result`` is what that job's worker kept."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("interrupted")
        self.result = result


def _kill(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def run_worker(
    job: dict[str, Any],
    *,
    python: str | None = None,
    timeout_s: float | None = None,
    on_event: Event | None = None,
    after_measured: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``job`` in a fresh ``python -m aialliance_cli.runtime.worker`` and return its result.

    ``after_measured()`` runs once in this thread as soon as the worker's loop is over
    (while it computes its statistics), e.g. to prestart the next configuration's worker.

    A worker that cannot start, crashes or runs past ``timeout_s`` gives a failed
    result (the time its statistics take after the loop does not count; what it
    measured before the timeout is kept in that result). Ctrl-C, SIGTERM or SIGHUP
    sends SIGINT to the worker, waits up to INTERRUPT_GRACE_S for what it measured
    (further signals are held back meanwhile), kills it, and raises
    WorkerInterrupted with that result. The worker watches this process: when it
    dies, even by SIGKILL, the worker removes its temp folder and ends
    (``runtime/worker.py``). The temp folder is gone when this returns or raises.
    """
    from aialliance_cli import interrupts

    python = python or sys.executable
    env_name = (job.get("environment") or {}).get("name")
    where = f"environment '{env_name}' ({python})" if env_name else python
    workdir: Path | None = None
    proc: subprocess.Popen[str] | None = None
    err: Any = None
    try:
        with interrupts.deferred():  # no orphaned worker, no stray folder, on a signal here
            taken = _take_prestarted(python)
            if taken is not None:
                proc, workdir, err = taken
            else:
                workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
                err = open(workdir / "stderr.txt", "w+", encoding="utf-8", errors="replace")  # noqa: SIM115
            job = {**job, "result_path": str(workdir / "result.json")}
            try:
                if proc is None:
                    proc = _spawn(python, workdir, err)
            except OSError as exc:
                return failed_result(
                    job,
                    f"cannot start the worker in {where}: {exc.strerror or exc}",
                    kind="runtime",
                    exit_code=1,
                )
        return _supervise(proc, job, workdir, err, where, timeout_s, on_event, after_measured)
    finally:
        with interrupts.deferred():
            if proc is not None:
                _close(proc)
            if err is not None:
                err.close()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)


WORKDIR_PREFIX = "aia-worker-"
# After the loop the worker computes its statistics; they get this long, beyond --timeout.
STATS_GRACE_S = 120.0


# Workers started ahead of their job (prestart_worker), one per Python, awaiting a job.
_PRESTARTED: dict[str, tuple[subprocess.Popen[str], Path, Any]] = {}


def prestart_worker(python: str | None = None) -> None:
    """Start the next worker now, so that its Python, numpy and ONNX Runtime load while
    this process prepares the job; the next :func:`run_worker` for ``python`` takes it.

    Every worker still runs one job (a fresh process per configuration keeps ONNX
    Runtime's thread pools, arenas, EP libraries and peak memory apart); starting it
    early only hides its start-up. Call it where nothing is being measured. A worker
    that is never taken is ended by :func:`discard_prestarted` (also at exit).
    """
    from aialliance_cli import interrupts

    python = python or sys.executable
    if python in _PRESTARTED:
        return
    with interrupts.deferred():
        workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        err = open(workdir / "stderr.txt", "w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        try:
            proc = _spawn(python, workdir, err, preload=True)
        except OSError:
            err.close()
            shutil.rmtree(workdir, ignore_errors=True)
            return  # run_worker will try again and say why
        if not _PRESTARTED:
            import atexit

            atexit.register(discard_prestarted)
        _PRESTARTED[python] = (proc, workdir, err)


def _take_prestarted(python: str) -> tuple[subprocess.Popen[str], Path, Any] | None:
    taken = _PRESTARTED.pop(python, None)
    if taken is None:
        return None
    if taken[0].poll() is not None:  # it died waiting: start a fresh one instead
        _discard(taken)
        return None
    return taken


def _discard(entry: tuple[subprocess.Popen[str], Path, Any]) -> None:
    proc, workdir, err = entry
    _close(proc)
    with contextlib.suppress(Exception):
        err.close()
    shutil.rmtree(workdir, ignore_errors=True)


def discard_prestarted() -> None:
    """End the workers started ahead that no job took (none outlives aia)."""
    while _PRESTARTED:
        _discard(_PRESTARTED.popitem()[1])


def _spawn(python: str, workdir: Path, err: Any, *, preload: bool = False) -> subprocess.Popen[str]:
    from aialliance_cli.envs.registry import worker_environ
    from aialliance_cli.runtime import memory

    extra = {
        "AIA_WORKER": "1",
        "PYTHONUNBUFFERED": "1",
        # Load numpy, ONNX Runtime and aia's runtime before the job arrives on stdin.
        "AIA_WORKER_PRELOAD": "1" if preload else "0",
        # The worker ends (and removes workdir) when this process is gone: stdin reaches
        # EOF, or on Linux the parent-death signal arrives (runtime/worker.py).
        "AIA_WORKER_PARENT": str(os.getpid()),
        "AIA_WORKER_DIR": str(workdir),
        # malloc's memory (ONNX Runtime's weights) in 2 MiB pages (runtime/memory.py).
        **memory.worker_environ(os.environ),
    }
    # cwd in a temp dir: the user's folder must not shadow aia's modules.
    return subprocess.Popen(
        [python, "-m", "aialliance_cli.runtime.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err,
        cwd=workdir,
        env=worker_environ(extra),
        start_new_session=(os.name == "posix"),
        text=True,
        encoding="utf-8",
        errors="replace",
    )


def _close(proc: subprocess.Popen[str]) -> None:
    """No worker outlives run_worker: kill one still running, close its pipes."""
    if proc.poll() is None:
        _kill(proc)
        with contextlib.suppress(Exception):
            proc.wait(5)
    for f in (proc.stdin, proc.stdout):
        with contextlib.suppress(Exception):
            if f is not None:
                f.close()


def _supervise(
    proc: subprocess.Popen[str],
    job: dict[str, Any],
    workdir: Path,
    err: Any,
    where: str,
    timeout_s: float | None,
    on_event: Event | None,
    after_measured: Callable[[], None] | None = None,
) -> dict[str, Any]:
    from aialliance_cli import interrupts

    result_path = workdir / "result.json"
    other: list[str] = []
    measured_at: list[float] = []  # set when the worker says its loop is over

    def fail(msg: str, kind: str, code: int = 1, status: str = "failed") -> dict[str, Any]:
        return failed_result(job, msg, kind=kind, exit_code=code, status=status)

    def read() -> None:
        assert proc.stdout is not None
        with contextlib.suppress(Exception):  # closed under the reader at the end
            for line in proc.stdout:
                if line.startswith(EVENT_PREFIX):
                    with contextlib.suppress(Exception):
                        event = json.loads(line[len(EVENT_PREFIX) :])
                        if event.get("event") == "measured" and not measured_at:
                            measured_at.append(time.monotonic())
                        if on_event is not None:
                            on_event(event)  # a display problem must not stop the measuring
                elif line.strip():
                    other.append(line.rstrip())
                    del other[:-20]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = time.monotonic()
    pidfd = _pidfd(proc)
    try:
        interrupts.raise_if_received()
        try:
            assert proc.stdin is not None
            # One line, and stdin stays open: its EOF tells the worker this process is gone.
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died at start; its exit code and stderr say why
        while True:
            if _waited(proc, pidfd, 0.2):
                break
            interrupts.raise_if_received()  # a signal whose exception was lost still stops it
            now = time.monotonic()
            if measured_at and after_measured is not None:
                hook, after_measured = after_measured, None
                with contextlib.suppress(Exception):  # a head start, never a reason to fail
                    hook()
            if measured_at:
                if now - measured_at[0] > STATS_GRACE_S:
                    return _timed_out(proc, result_path, fail, measured=True, timeout_s=timeout_s)
            elif timeout_s is not None and now - started > timeout_s:
                return _timed_out(proc, result_path, fail, measured=False, timeout_s=timeout_s)
    except KeyboardInterrupt:
        _stop(proc, measured_at)
        reader.join(2)
        kept = _read_result(result_path)
        if kept is None or kept.get("status") == "failed":
            # Say why the worker kept nothing: its own error, or how it ended.
            if kept is not None:
                why = f"the worker failed: {kept.get('error')}"
            else:
                err.seek(0)
                tail = [x for x in err.read().splitlines() if x.strip()][-3:]
                code = proc.poll()
                how = "was still running" if code is None else f"ended with {_signal_name(code)}"
                why = f"the worker {how}" + (": " + " | ".join(tail) if tail else "")
            kept = fail(
                f"interrupted before the configuration finished ({why})",
                "interrupted",
                130,
                status="interrupted",
            )
        raise WorkerInterrupted(kept) from None
    finally:
        if pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(pidfd)
    reader.join(5)
    result = _read_result(result_path)
    if result is not None:
        return result
    err.seek(0)
    tail = [x for x in err.read().splitlines() if x.strip()][-6:] + other[-3:]
    elapsed = time.monotonic() - started
    return fail(
        f"the worker in {where} ended with {_signal_name(proc.returncode)} after "
        f"{elapsed:.1f} s without a result: " + (" | ".join(tail) or "no output"),
        "crash",
    )


def _pidfd(proc: subprocess.Popen[str]) -> int | None:
    """A descriptor that becomes readable when ``proc`` ends (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(proc.pid)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None


def _waited(proc: subprocess.Popen[str], pidfd: int | None, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``proc`` to end; True when it has (and is reaped).

    With a pidfd the wait ends the moment the worker does; ``Popen.wait(timeout)``
    sleeps up to 50 ms between its checks, which a first result would wait for.
    """
    if pidfd is None:
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    select.select([pidfd], [], [], timeout)
    return proc.poll() is not None


def _stop(proc: subprocess.Popen[str], measured_at: list[float]) -> None:
    """SIGINT the worker and give it INTERRUPT_GRACE_S (its statistics STATS_GRACE_S) to
    write what it kept; signals meanwhile are held back, then it is killed."""
    _kill(proc, signal.SIGINT)
    start = time.monotonic()
    while proc.poll() is None:
        limit = STATS_GRACE_S if measured_at else INTERRUPT_GRACE_S
        if time.monotonic() - start > limit:
            break
        try:
            proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        except KeyboardInterrupt:
            pass  # a second Ctrl-C must not throw away what the worker is writing
    if proc.poll() is None:
        _kill(proc)
        with contextlib.suppress(Exception):
            proc.wait(5)


def _timed_out(
    proc: subprocess.Popen[str],
    result_path: Path,
    fail: Any,
    *,
    measured: bool,
    timeout_s: float | None,
) -> dict[str, Any]:
    """Stop a worker past its time; a failed result that keeps what it measured."""
    if measured:
        msg = f"the worker's statistics ran past {STATS_GRACE_S:g} s and it was stopped"
    else:
        msg = f"the configuration ran past --timeout {timeout_s:g} s and its worker was stopped"
    _stop(proc, [])
    kept = _read_result(result_path)
    res = fail(msg, "timeout")
    if kept is not None and (kept.get("metrics") or {}).get("latency_ms"):
        kept["status"] = "failed"
        kept["error"] = msg + " (what it measured until then is kept)"
        kept["failure"] = {"kind": "timeout", "exit_code": 1}
        return kept
    return res


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def run_in_process(job: dict[str, Any], *, on_event: Event | None = None) -> dict[str, Any]:
    """The same measurement as a worker's, in this process (no isolation, no timeout).

    The first signal stops the loop (as in a worker); any later one, and every
    signal once the loop is over, waits until the statistics are done and the
    result is made, so no second signal can lose the measurement. Then
    WorkerInterrupted carries the result.
    """
    from aialliance_cli import interrupts
    from aialliance_cli.runtime.worker import execute  # the layer below: measuring here

    hold = interrupts.Hold(reraise=False, let_first=True)

    def events(event: dict[str, Any]) -> None:
        if event.get("event") == "measured":
            hold.close_gate()
        if on_event is not None:
            on_event(event)

    with hold:
        hold.start()
        result = execute(job, events)
    if result.get("status") == "interrupted" or hold.pending or hold.fired is not None:
        raise WorkerInterrupted(result)
    return result


def run_job(
    job: dict[str, Any],
    *,
    python: str | None = None,
    timeout_s: float | None = None,
    on_event: Event | None = None,
    in_process: bool = False,
) -> dict[str, Any]:
    """Run ``job`` and return its ``aia.result/1`` dict (failed results included).

    ``job`` is what :func:`aialliance_cli.runtime.sweep.make_job` makes (or any
    dict of runtime/job.py's form). ``python`` is the interpreter of a registered
    environment (``envs.EnvRecord.python``; None: this one). ``in_process`` runs
    it here without a worker (only for this environment; no timeout). Ctrl-C or
    a termination signal raises :class:`WorkerInterrupted` carrying what the
    worker kept; every other failure is a result with status "failed".
    """
    if in_process:
        if python not in (None, sys.executable):
            raise ValueError("in_process runs only in this Python environment")
        return run_in_process(job, on_event=on_event)
    return run_worker(job, python=python, timeout_s=timeout_s, on_event=on_event)
