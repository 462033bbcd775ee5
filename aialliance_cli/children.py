"""Helper processes that aia starts (pip, venv, the model builder): none outlives aia.

Each runs in a process group of its own, so that a signal to aia stops it and
everything it started (:func:`stop_group`), and on Linux it gets SIGKILL when aia
itself dies, even by SIGKILL (the parent-death signal). The benchmark workers have
their own supervision (runtime/launch.py). No typer, no rich.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Any


def die_with_parent() -> Any:
    """A ``preexec_fn`` for Linux: the child gets SIGKILL when aia dies (SIGKILL too)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc`` and everything it started (its own process group), and reap it."""
    import signal

    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass
    with contextlib.suppress(Exception):
        proc.wait(10)


def spawn_group(cmd: list[str], **kw: Any) -> subprocess.Popen[str]:
    """Start ``cmd`` in a process group of its own: a signal to aia stops it and all its
    children (pip's build backends, venv's ensurepip) through :func:`stop_group`."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(
        cmd,
        text=True,
        start_new_session=(os.name == "posix"),
        preexec_fn=die_with_parent(),  # noqa: PLW1509 (a plain prctl call)
        **kw,
    )


def run_group(cmd: list[str], timeout: float | None = None, **kw: Any) -> tuple[int, str, str]:
    """Run ``cmd`` to its end (:func:`spawn_group`); (exit code, stdout, stderr).

    A signal (KeyboardInterrupt) or ``timeout`` (subprocess.TimeoutExpired) kills its group.
    """
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    proc = spawn_group(cmd, **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        stop_group(proc)
        raise
    return proc.returncode, out, err
