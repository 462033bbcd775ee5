"""All output goes through here: data to stdout, messages and progress to stderr.

Rich is imported lazily so that `aia --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def stdout_console() -> Any:
    from rich.console import Console

    console = Console(soft_wrap=False)
    console.on_broken_pipe = _quiet_broken_pipe  # rich would exit 1
    return console


def _quiet_broken_pipe() -> None:
    """`aia detect | head -1`: the reader has what it wanted; stop quietly with 0."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(0)


def stderr_console() -> Any:
    from rich.console import Console

    # Messages are one paragraph each: never hard-wrapped, so logs and greps see them whole.
    return Console(stderr=True, soft_wrap=True)


def print_json(data: Any) -> None:
    from aialliance_cli.results.store import dumps

    sys.stdout.write(dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    from rich.markup import escape

    stderr_console().print(f"[bold red]Error:[/] {escape(message)}", highlight=False)


def warn(message: str) -> None:
    from rich.markup import escape

    stderr_console().print(f"[yellow]Warning:[/] {escape(message)}", highlight=False)


def shorten(text: str, limit: int = 400) -> str:
    """``text`` cut at a word boundary to about ``limit`` characters, for the screen only
    (records keep the whole text)."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + " … (whole text in the result)"


def warn_all(warnings: Any, prefix: str = "") -> None:
    """Each warning once on stderr, in every output mode (--json and --csv too)."""
    for w in dict.fromkeys(str(w) for w in warnings or ()):
        warn(prefix + shorten(w))


def info(message: str) -> None:
    from rich.markup import escape

    stderr_console().print(f"[dim]{escape(message)}[/]", highlight=False)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str | None = None,
) -> Any:
    from rich.table import Table

    t = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for col in columns:
        justify = "right" if col and col[0] in "#" else "left"
        t.add_column(col, justify=justify, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def show(renderable: Any) -> None:
    stdout_console().print(renderable)


def is_tty() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


@contextmanager
def spinner(message: str, enabled: bool = True) -> Iterator[Any]:
    """A status spinner on stderr (only on a terminal); yields an update function."""
    if not (enabled and is_tty()):
        yield lambda msg: None
        return
    console = stderr_console()
    with console.status(message) as status:
        yield lambda msg: status.update(f"{message}: {msg}")


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr; yields ``update(done, total, elapsed)``."""
    if not (enabled and is_tty()):
        yield None
        return
    with new_progress() as prog:
        task = prog.add_task(description, total=None)

        def update(done: int, total: int | None, elapsed: float) -> None:
            prog.update(task, completed=done, total=total)

        yield update


def new_progress() -> Any:
    """The one progress display of aia: description, bar, done/total, elapsed; on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=True,
    )


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def fmt_num(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if x and abs(x) < 1:  # 0.0123 ms stays readable: three significant digits
        return f"{x:.3g}"
    return f"{x:.{digits}f}"


def handles_errors(func: Any) -> Any:
    """Map aia's errors to one `Error: ...` line and the documented exit code.

    Applied to every command so that Typer's CliRunner sees the same exit codes
    as the console script. ``AIA_DEBUG=1`` re-raises to show the traceback.
    """
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import typer

        from aialliance_cli.errors import AiaError, ExitCode

        try:
            return func(*args, **kwargs)
        except AiaError as exc:
            if os.environ.get("AIA_DEBUG"):
                raise
            error(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            from aialliance_cli import interrupts

            error("interrupted")
            raise typer.Exit(interrupts.exit_code()) from None
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:  # `aia detect | head -1`: the reader left; that is fine
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:  # a bug or an unforeseen failure: one line, exit 1
            if os.environ.get("AIA_DEBUG"):
                raise
            error(f"unexpected {type(exc).__name__}: {exc} (set AIA_DEBUG=1 for the traceback)")
            raise typer.Exit(int(ExitCode.RUNTIME_FAILURE)) from None

    return wrapper
