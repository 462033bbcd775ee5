"""SIGINT, SIGTERM and SIGHUP to ``aia``: stop, keep what was measured, exit 128 + signal.

:func:`install` (called once by the console script) makes SIGTERM and SIGHUP
raise :class:`Terminated`, a KeyboardInterrupt, so every path that keeps a
partial result on Ctrl-C keeps it on ``kill``, ``timeout`` or a closed
terminal too. :func:`exit_code` is 130, 143 or 129 after the first of
SIGINT, SIGTERM or SIGHUP, 130 when none came (an in-process KeyboardInterrupt).
:func:`deferred` holds the signals back while a few lines must be written whole,
or the statistics of what was measured are computed. After the first signal,
further ones within ``INSIST_AFTER_S`` are only recorded: aia is already
stopping, and a second Ctrl-C must not lose what the first one is keeping.
The core never imports typer or rich; this module imports neither.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

HANDLED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_first: int | None = None


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# A later signal within this many seconds of the first is only recorded: aia is
# already stopping and keeping what was measured; one that comes later still acts.
INSIST_AFTER_S = 15.0
_first_at: float | None = None


def _handler(signum: int, frame: Any) -> None:
    global _first, _first_at
    import time

    now = time.monotonic()
    if _first is None:
        _first = signum
    if _first_at is not None and now - _first_at < INSIST_AFTER_S:
        return  # a second signal must not lose what the first one is saving
    _first_at = now
    _raise(signum)


def _raise(signum: int) -> None:
    """The exception a signal stops aia with: KeyboardInterrupt, or Terminated."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def raise_if_received() -> None:
    """Raise for a signal that reached aia but whose exception was lost.

    Python drops an exception raised by a signal handler while a C extension is being
    imported, or inside a finalizer; the handler has still recorded the signal. Code
    about to start or keep measuring calls this so that such a signal still stops it.
    """
    if _first is not None:
        _raise(_first)


def install() -> None:
    """Route SIGINT, SIGTERM and SIGHUP through :func:`_handler` (main thread only).

    A signal the caller chose to ignore (``nohup`` ignores SIGHUP) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in HANDLED:
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue
        signal.signal(sig, _handler)


def received() -> int | None:
    """The first of SIGINT, SIGTERM, SIGHUP that reached this process, or None."""
    return _first


def note(signum: int) -> None:
    """Record ``signum`` as received (for a signal seen some other way)."""
    global _first, _first_at
    if _first is None:
        _first = signum
    if _first_at is None:
        import time

        _first_at = time.monotonic()


def exit_code() -> int:
    """128 + the first handled signal: 130 SIGINT (also the default), 143 SIGTERM, 129 SIGHUP."""
    return 128 + int(_first if _first is not None else signal.SIGINT)


_STRAY_CHECKS: list[Any] = []


def on_exit_check(still_running: Any) -> None:
    """Register ``still_running() -> bool``: true when native threads that cannot be
    stopped (a LoadGen run stopped by a signal) are still busy, so :func:`exit_now`
    must end the process without the interpreter's shutdown."""
    if still_running not in _STRAY_CHECKS:
        _STRAY_CHECKS.append(still_running)


def exit_now(code: int) -> None:
    """aia is about to exit with ``code``. After a signal, further ones are ignored from
    here on (the interpreter's shutdown would restore their default action, and a second
    SIGTERM would then kill aia before its exit code is set). End now if a registered
    check says native threads are still busy (after the exit handlers and a flush);
    otherwise return and let the caller exit."""
    if _first is not None and threading.current_thread() is threading.main_thread():
        for sig in HANDLED:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_IGN)
    if not any(check() for check in _STRAY_CHECKS):
        return
    import atexit
    import sys

    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def reset() -> None:
    """Forget the received signal (tests that run several commands in one process)."""
    global _first, _first_at
    _first = None
    _first_at = None


class Hold:
    """Hold SIGINT, SIGTERM and SIGHUP back from :meth:`start` until the block ends.

    The Python-level handlers are swapped for one that only records (a signal mask
    would not do: the kernel hands a signal to any thread that does not block it,
    and Python then runs the handler in the main thread all the same). At the end
    the first held signal is handed to its handler (``reraise``) or left in
    :attr:`pending` for the caller. Outside the main thread it holds nothing, as
    Python runs handlers only there.
    """

    def __init__(self, *, reraise: bool = True, let_first: bool = False) -> None:
        self.reraise = reraise
        self.pending: list[int] = []
        self._old: dict[int, Any] = {}
        # let_first: the first signal acts at once (KeyboardInterrupt / Terminated) and
        # only the later ones are held, until :meth:`close_gate`; ``fired`` says it came.
        self.let_first = let_first
        self.fired: int | None = None

    def close_gate(self) -> None:
        """From now on every signal is held (e.g. once a measurement is taken)."""
        self.let_first = False

    def _hold(self, signum: int, frame: Any) -> None:
        if self.let_first and self.fired is None:
            self.let_first = False  # one signal stops the work; a second must not stop the rest
            self.fired = signum
            note(signum)
            _raise(signum)
        self.pending.append(signum)

    def start(self) -> None:
        if self._old or threading.current_thread() is not threading.main_thread():
            return
        for sig in HANDLED:
            current = signal.getsignal(sig)
            if current is signal.SIG_IGN or current is None:
                continue
            self._old[sig] = current
            signal.signal(sig, self._hold)

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: Any) -> None:
        old, self._old = self._old, {}
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if not self.pending or not old:
            return
        sig = self.pending[0]
        if not self.reraise:
            note(sig)  # the caller acts on it; the exit code still says which came
            return
        handler = old[sig]
        if callable(handler):
            handler(sig, None)
        else:  # SIG_DFL: the default action, now
            os.kill(os.getpid(), sig)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back inside the block; they act right after it."""
    with Hold() as hold:
        hold.start()
        yield
