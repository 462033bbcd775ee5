"""aialliance_cli.interrupts: 128 + the first signal, signals held back, ignored stays ignored.

Each case runs in a subprocess: it installs signal handlers and signals itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(code: str, *, preexec=None) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=preexec,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_deferred_holds_signals_even_with_other_threads_running() -> None:
    out = _run(
        """
        import os, signal, threading, time
        from aialliance_cli import interrupts
        interrupts.install()
        threading.Thread(target=lambda: time.sleep(5), daemon=True).start()
        done = []
        try:
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.3)
                done.append("outer")
                with interrupts.deferred():
                    os.kill(os.getpid(), signal.SIGHUP)
                    time.sleep(0.3)
                    done.append("inner")
        except KeyboardInterrupt as exc:
            print(type(exc).__name__, ",".join(done), interrupts.exit_code())
        """
    )
    assert out == "Terminated outer,inner 143"


def test_exit_codes_follow_the_first_signal() -> None:
    out = _run(
        """
        import os, signal, time
        from aialliance_cli import interrupts
        interrupts.install()
        print(interrupts.exit_code())
        for sig in (signal.SIGHUP, signal.SIGINT):
            try:
                os.kill(os.getpid(), sig)
                time.sleep(1)
            except KeyboardInterrupt:
                pass
        print(interrupts.exit_code())
        """
    )
    assert out.split() == ["130", "129"]


def test_hold_without_reraise_leaves_the_signal_to_the_caller() -> None:
    out = _run(
        """
        import os, signal, time
        from aialliance_cli import interrupts
        interrupts.install()
        with interrupts.Hold(reraise=False) as hold:
            hold.start()
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)
        print(hold.pending == [signal.SIGTERM], interrupts.exit_code())
        """
    )
    assert out == "True 143"


def test_an_ignored_sighup_stays_ignored() -> None:
    import signal

    out = _run(
        """
        import os, signal, time
        from aialliance_cli import interrupts
        interrupts.install()
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.3)
        print("still here", signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)
        """,
        preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    assert out == "still here True"
