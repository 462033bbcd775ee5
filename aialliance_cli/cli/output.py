"""All output goes through here: data to stdout, messages and progress to stderr.

Rich is imported lazily so that `aia --help` stays fast.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Characters that act on a terminal instead of showing: C0 controls (ESC starts colour, OSC
# title and hyperlink sequences; CR overwrites the line; BEL rings), DEL, C1 controls (U+009B
# is CSI on some terminals) and the bidirectional overrides that reorder what is shown.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")  # json.dumps escapes the C0 ones itself
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def clean(text: Any, *, one_line: bool = False) -> str:
    """Untrusted text made safe for a terminal: what would act (ESC, CR, BEL, C1, bidi
    overrides) is shown escaped (``\\x1b``, ``\\r``) instead. Newlines and tabs stay unless
    ``one_line``. Every name, description and field from models, profiles and result files
    goes through here (tables, errors, warnings and plain lines) before it is printed."""
    pattern = _UNSAFE_ONE_LINE if one_line else _UNSAFE
    return pattern.sub(_visible, str(text))


def markup_safe(text: Any, *, one_line: bool = False) -> str:
    """``clean`` plus rich markup escaped: for untrusted text inside a markup string."""
    from rich.markup import escape

    return escape(clean(text, one_line=one_line))


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


class _CleanStream:
    """A text stream that passes everything through ``clean`` (for CSV and plain lines)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(clean(text))

    def flush(self) -> None:
        self.stream.flush()


def clean_stdout() -> Any:
    """``sys.stdout`` with untrusted text escaped: give it to writers of CSV and plain lines."""
    return _CleanStream(sys.stdout)


def print_json(data: Any) -> None:
    from aialliance_cli.results.store import dumps

    text = _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", dumps(data, indent=2))
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    stderr_console().print(f"[bold red]Error:[/] {markup_safe(message)}", highlight=False)


def warn(message: str) -> None:
    stderr_console().print(f"[yellow]Warning:[/] {markup_safe(message)}", highlight=False)


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


_QUIET = False


def set_quiet(value: bool = True) -> None:
    """-q/--quiet: no progress and no informational lines (warnings and errors stay)."""
    global _QUIET
    _QUIET = value


def quiet() -> bool:
    return _QUIET


def info(message: str) -> None:
    if _QUIET:
        return
    stderr_console().print(f"[dim]{markup_safe(message)}[/]", highlight=False)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str | None = None,
) -> Any:
    from rich.table import Table

    t = Table(
        title=None if title is None else markup_safe(title),
        caption=None if caption is None else markup_safe(caption),
        title_justify="left",
        caption_justify="left",
    )
    for col in columns:
        justify = "right" if col and col[0] in "#" else "left"
        t.add_column(markup_safe(col), justify=justify, overflow="fold")
    for row in rows:  # cells hold names and fields from models, profiles and results
        t.add_row(*("" if v is None else markup_safe(v) for v in row))
    return t


@dataclass(frozen=True)
class Column:
    """A table column: ``key`` for --columns, ``header`` with its unit, ``priority`` (0 is
    kept longest when the terminal is narrow), ``numeric`` (right-aligned, never split)."""

    key: str
    header: str
    priority: int = 5
    numeric: bool = True
    shrink: bool = False  # free text: may end in an ellipsis, so it counts as narrow


def fit_columns(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    chosen: Sequence[str] | None = None,
) -> tuple[list[int], list[str]]:
    """Which columns (indices) to show in ``width`` characters, and the keys left out.

    ``chosen`` (the user's --columns) wins: those, in that order, nothing dropped.
    Otherwise empty columns go, then the least important until the table fits.
    """
    from aialliance_cli.errors import BadInputError

    keys = [c.key for c in columns]
    if chosen:
        unknown = [k for k in chosen if k not in keys]
        if unknown:
            raise BadInputError(
                f"--columns: unknown column(s) {', '.join(unknown)}; choose from {', '.join(keys)}"
            )
        return [keys.index(k) for k in dict.fromkeys(chosen)], []

    def need(i: int) -> int:
        cells = [len(str(r[i])) for r in rows] or [0]
        head = len(columns[i].header)  # headers do not wrap either (no_wrap columns)
        widest = min(max(cells), 24) if columns[i].shrink else max(cells)
        return max(widest, head) + 3  # padding and border

    kept = [i for i in range(len(columns)) if any(str(r[i]) for r in rows)]
    dropped: list[str] = []
    while len(kept) > 1 and 1 + sum(need(i) for i in kept) > width:
        worst = max(kept, key=lambda i: (columns[i].priority, i))
        kept.remove(worst)
        dropped.append(columns[worst].key)
    return kept, dropped


def fitted_table(
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    chosen: Sequence[str] | None = None,
    caption: str | None = None,
) -> Any:
    """One row per item, columns dropped by priority to fit the terminal (80 when piped);
    numbers are never split, long text ends in an ellipsis."""
    from rich.table import Table

    # Cells are strings (shown literally: names come from models and results) or rich Text
    # (already styled); widths are measured on the plain text.
    shown = [[_cell(v) for v in row] for row in rows]
    cells = [[getattr(c, "plain", c) for c in row] for row in shown]
    width = stdout_console().width
    kept, dropped = fit_columns(columns, cells, width, chosen)
    notes = [caption] if caption else []
    if dropped:
        notes.append(f"not shown at {width} columns: {', '.join(dropped)} (--columns to choose)")
    t = Table(
        title=None if title is None else markup_safe(title),
        caption=markup_safe("; ".join(notes)) if notes else None,
        title_justify="left",
        caption_justify="left",
    )

    def natural(i: int) -> int:
        head = len(columns[i].header)
        return max([len(r[i]) for r in cells] + [head])

    shrinkers = [i for i in kept if columns[i].shrink]
    fixed = 1 + sum(natural(i) + 3 for i in kept if i not in shrinkers)
    share = max(8, (width - fixed) // len(shrinkers) - 3) if shrinkers else 0
    for i in kept:
        col = columns[i]
        t.add_column(
            markup_safe(col.header),
            justify="right" if col.numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if col.shrink else natural(i),
            max_width=share if col.shrink else None,
        )
    for row in shown:
        t.add_row(*(row[i] for i in kept))
    return t


def _cell(value: Any) -> Any:
    if hasattr(value, "plain"):
        return value
    from rich.text import Text

    return Text("" if value is None else clean(value, one_line=True))


def parse_columns(text: str | None) -> list[str] | None:
    """``"ep,p50,inf_s"`` -> ``["ep", "p50", "inf_s"]`` (None when not given)."""
    if text is None:
        return None
    return [k.strip() for k in text.split(",") if k.strip()] or None


def show(renderable: Any) -> None:
    stdout_console().print(renderable)


def is_tty() -> bool:
    """True when progress may be drawn on stderr (a terminal, and not --quiet)."""
    return not _QUIET and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


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


def new_progress(refresh_per_second: float = 10) -> Any:
    """The one progress display of aia: description, bar, done/total, elapsed; on stderr.

    A display that changes once a second (elapsed time, nodes done) may refresh that
    seldom, so that it does not wake this process ten times a second meanwhile."""
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
        refresh_per_second=refresh_per_second,
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
