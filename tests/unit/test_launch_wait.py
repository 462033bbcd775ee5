"""The parent wakes as soon as its worker ends (runtime/launch.py `_waited`)."""

from __future__ import annotations

import subprocess
import sys

from aialliance_cli.runtime.launch import _pidfd, _waited


def test_waited_reports_an_ended_process_and_a_running_one() -> None:
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    fds = [_pidfd(quick), _pidfd(slow)]
    try:
        for fd in (fds[0], None):  # with a pidfd (Linux) and without one
            assert _waited(quick, fd, 30) and quick.returncode == 0
        assert not _waited(slow, fds[1], 0.05) and slow.poll() is None
        assert not _waited(slow, None, 0.05)
    finally:
        slow.kill()
        slow.wait()
        for fd in fds:
            if fd is not None:
                import os

                os.close(fd)
