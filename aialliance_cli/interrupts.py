"""SIGINT, SIGTERM and SIGHUP to ``aia``: stop, keep what was measured, exit 128 + signal.

:func:`install` (called once by the console script) makes SIGTERM and SIGHUP
raise :class:`Terminated`, a KeyboardInterrupt, so every path that keeps a
partial result on Ctrl-C keeps it on ``kill``, ``timeout`` or a closed
terminal too. :func:`exit_code` is 130, 143 or 129 after the first of
SIGINT, SIGTERM or SIGHUP, 130 when none came (an in-process KeyboardInterrupt).
:func:`deferred` holds the signals back while a few lines must be written whole,
or the statistics of what was measured are computed.
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


def _handler(signum: int, frame: Any) -> None:
    global _first
    if _first is None:
        _first = signum
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


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
    global _first
    if _first is None:
        _first = signum


def exit_code() -> int:
    """128 + the first handled signal: 130 SIGINT (also the default), 143 SIGTERM, 129 SIGHUP."""
    return 128 + int(_first if _first is not None else signal.SIGINT)


def reset() -> None:
    """Forget the received signal (tests that run several commands in one process)."""
    global _first
    _first = None


class Hold:
    """Hold SIGINT, SIGTERM and SIGHUP back from :meth:`start` until the block ends.

    The Python-level handlers are swapped for one that only records (a signal mask
    would not do: the kernel hands a signal to any thread that does not block it,
    and Python then runs the handler in the main thread all the same). At the end
    the first held signal is handed to its handler (``reraise``) or left in
    :attr:`pending` for the caller. Outside the main thread it holds nothing, as
    Python runs handlers only there.
    """

    def __init__(self, *, reraise: bool = True) -> None:
        self.reraise = reraise
        self.pending: list[int] = []
        self._old: dict[int, Any] = {}

    def _hold(self, signum: int, frame: Any) -> None:
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
