"""The `aia` console script: as little as possible runs before the command's own modules.

`aia bench` measures in a worker process; starting it here, before typer and the
command modules load (cli/app.py), lets its Python, numpy, ONNX Runtime and the
machine's inventory load on another core meanwhile: a first result in about a
second (benchmarks/startup.py). ``app`` (the whole Typer app) is built on first
use, for tests and the docs.
"""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (commands map their own errors; see output.handles_errors)."""
    from aialliance_cli import interrupts

    interrupts.install()  # SIGTERM and SIGHUP stop aia like Ctrl-C: results kept, 143 / 129
    args = sys.argv[1:] if argv is None else argv
    try:
        # Inside the try: a signal held back while the worker spawns acts when it is
        # spawned, and must end aia as any other signal does (exit 143, no traceback).
        head_start(args)
        from aialliance_cli.cli.app import run

        run(args, argv)
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted\n")
        interrupts.exit_now(interrupts.exit_code())
        sys.exit(interrupts.exit_code())
    except SystemExit as exc:
        # A LoadGen stopped by a signal may still be in its own threads: do not wait.
        interrupts.exit_now(exc.code if isinstance(exc.code, int) else int(exc.code is not None))
        raise


def head_start(argv: list[str]) -> None:
    """Prestart `aia bench`'s worker; one no configuration takes is ended at exit
    (runtime/launch.py). Help and --in-process need none."""
    if not argv or argv[0] != "bench" or {"--in-process", "-h", "--help"} & set(argv):
        return
    from aialliance_cli.runtime.launch import prestart_worker

    prestart_worker()


def __getattr__(name: str) -> Any:
    """``app``: the whole Typer app, built on first use; ``_plain_help`` with it."""
    if name in ("app", "_plain_help"):
        from aialliance_cli.cli import app as built

        if name == "_plain_help":
            return built._plain_help
        whole = built.make_app()
        globals()["app"] = whole
        return whole
    raise AttributeError(name)
