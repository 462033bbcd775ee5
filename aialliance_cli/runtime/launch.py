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
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
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
) -> dict[str, Any]:
    """Run ``job`` in a fresh ``python -m aialliance_cli.runtime.worker`` and return its result.

    A worker that cannot start, crashes or runs past ``timeout_s`` gives a failed
    result. Ctrl-C sends SIGINT to the worker, waits up to INTERRUPT_GRACE_S for
    what it measured, kills it, and raises WorkerInterrupted with that result.
    """
    from aialliance_cli.envs.registry import worker_environ

    python = python or sys.executable
    env_name = (job.get("environment") or {}).get("name")
    where = f"environment '{env_name}' ({python})" if env_name else python
    workdir = Path(tempfile.mkdtemp(prefix="aia-worker-"))
    result_path = workdir / "result.json"
    job = {**job, "result_path": str(result_path)}
    stderr_path = workdir / "stderr.txt"
    other: list[str] = []

    def fail(msg: str, kind: str, code: int = 1, status: str = "failed") -> dict[str, Any]:
        return failed_result(job, msg, kind=kind, exit_code=code, status=status)

    try:
        with open(stderr_path, "w+", encoding="utf-8", errors="replace") as err:
            try:
                # cwd in a temp dir: the user's folder must not shadow aia's modules.
                proc = subprocess.Popen(
                    [python, "-m", "aialliance_cli.runtime.worker"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    cwd=workdir,
                    env=worker_environ({"AIA_WORKER": "1", "PYTHONUNBUFFERED": "1"}),
                    start_new_session=(os.name == "posix"),
                    text=True,
                    encoding="utf-8",
                    errors="replace",
                )
            except OSError as exc:
                return fail(f"cannot start the worker in {where}: {exc.strerror or exc}", "runtime")

            def read() -> None:
                assert proc.stdout is not None
                for line in proc.stdout:
                    if line.startswith(EVENT_PREFIX):
                        if on_event is not None:
                            # A display problem must not stop the measuring.
                            with contextlib.suppress(Exception):
                                on_event(json.loads(line[len(EVENT_PREFIX) :]))
                    elif line.strip():
                        other.append(line.rstrip())
                        del other[:-20]

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            started = time.monotonic()
            try:
                try:
                    assert proc.stdin is not None
                    proc.stdin.write(json.dumps(job))
                    proc.stdin.close()
                except (BrokenPipeError, OSError):
                    pass  # the worker died at start; its exit code and stderr say why
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill(proc)
                proc.wait()
                reader.join(2)
                return fail(
                    f"the configuration ran past --timeout {timeout_s:g} s and its worker "
                    "was stopped",
                    "timeout",
                )
            except KeyboardInterrupt:
                _kill(proc, signal.SIGINT)
                try:
                    proc.wait(timeout=INTERRUPT_GRACE_S)
                except (subprocess.TimeoutExpired, KeyboardInterrupt):
                    _kill(proc)
                    proc.wait()
                reader.join(2)
                kept = _read_result(result_path)
                if kept is None or kept.get("status") == "failed":
                    kept = fail(
                        "interrupted before the configuration finished",
                        "interrupted",
                        130,
                        status="interrupted",
                    )
                raise WorkerInterrupted(kept) from None
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
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def run_in_process(job: dict[str, Any], *, on_event: Event | None = None) -> dict[str, Any]:
    """The same measurement as a worker's, in this process (no isolation, no timeout)."""
    from aialliance_cli.runtime.worker import execute  # the layer below: measuring here

    result = execute(job, on_event or (lambda _e: None))
    if result.get("status") == "interrupted":
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
