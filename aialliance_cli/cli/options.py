"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aialliance_cli.errors import BadInputError


def complete_target(incomplete: str) -> list[str]:
    """Shell completion of TARGET: profile names on the search path (files: the shell's own)."""
    try:
        from aialliance_cli.profiles.search import _scan

        names = sorted({e.name for e in _scan()})
    except Exception:  # completion never fails loudly
        return []
    return [n for n in names if n.startswith(incomplete)]


Target = Annotated[
    str | None,
    typer.Argument(
        help="A profile name or YAML file, or an ONNX model file. Default: the bundled "
        "default profile.",
        show_default=False,
        autocompletion=complete_target,
    ),
]
Ep = Annotated[
    str | None,
    typer.Option(
        "--ep",
        help="Execution provider: cpu, openvino, cuda, tensorrt, migraphx, "
        "dml, ... (default: the first of the plan).",
    ),
]
Threads = Annotated[
    int | None, typer.Option("--threads", help="Intra-op threads (0: ORT default).")
]
Batch = Annotated[int | None, typer.Option("--batch", help="Batch size (the 'batch' dimension).")]
Dims = Annotated[
    list[str] | None,
    typer.Option("--dim", help="Value of a symbolic dimension, NAME=VALUE (repeatable)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Strict = Annotated[
    bool,
    typer.Option("--strict", help="Fail (exit 3) instead of falling back to another EP."),
]
Text = Annotated[
    str | None,
    typer.Option(
        "--text",
        help="Text to tokenize as the input; '-' reads it from stdin, @FILE from a file.",
    ),
]
InputFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--input",
        help="A .npy/.npz file of inputs (npz keys are input names), or an image or audio "
        "file, preprocessed as the profile's inputs.image/inputs.audio say.",
    ),
]
AllowNetwork = Annotated[
    bool,
    typer.Option("--allow-network", help="Allow downloading a profile's model (hub or URL)."),
]
AllowCustomOps = Annotated[
    bool,
    typer.Option("--allow-custom-ops", help="Allow a profile to load its custom-op library."),
]


NoTuned = Annotated[
    bool,
    typer.Option("--no-tuned", help="Ignore the settings `aia tune` remembered for this model."),
]
MinCoverage = Annotated[
    float | None,
    typer.Option(
        "--min-coverage",
        help="Fail (exit 3) if the requested EP runs less than this percent of the FLOPs.",
    ),
]


# The options of benches that sweep (aia bench, aia fleet bench): lists are configurations.
SweepEps = Annotated[
    list[str] | None,
    typer.Option(
        "--ep",
        help="Execution provider(s): cpu, openvino, cuda, ...; a comma list (or repeat the "
        "option) sweeps them; 'all' = every usable EP here and in registered environments "
        "(aia env). Default: the first of the plan.",
    ),
]
SweepThreads = Annotated[
    str | None,
    typer.Option(
        "--threads", help="Intra-op threads, or a comma list to sweep: 1,2,4 (0: ORT default)."
    ),
]
SweepBatch = Annotated[
    str | None,
    typer.Option("--batch", help="Batch size, or a comma list to sweep: 1,8,32."),
]
SweepDims = Annotated[
    list[str] | None,
    typer.Option(
        "--dim", help="A symbolic dimension, NAME=VALUE or NAME=V1,V2,... to sweep (repeatable)."
    ),
]
Variants = Annotated[
    str | None,
    typer.Option(
        "--variant",
        help="Precision variant(s) of the profile's model: base (the model: key) or a name "
        "from its variants: section; a comma list sweeps them, 'all' = every one.",
    ),
]
Warmup = Annotated[int | None, typer.Option("--warmup", help="Warm-up runs, not measured.")]
Iterations = Annotated[int | None, typer.Option("--iterations", "-n", help="Measured runs.")]
Duration = Annotated[
    float | None, typer.Option("--duration", help="Measure for this many seconds instead.")
]
SameInput = Annotated[
    bool, typer.Option("--same-input", help="Feed one input set every time (no rotation).")
]


def parse_dims(values: list[str] | None) -> dict[str, int]:
    dims: dict[str, int] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BadInputError(f"--dim expects NAME=VALUE, got '{item}'")
        try:
            number = int(value)
        except ValueError:
            raise BadInputError(
                f"--dim {name}: the value must be a positive integer, got '{value}'"
            ) from None
        if number <= 0:
            raise BadInputError(f"--dim {name}: the value must be a positive integer, got {number}")
        from aialliance_cli.limits import check

        check(f"--dim {name.strip()}", number)
        if name.strip() in dims and dims[name.strip()] != number:
            raise BadInputError(
                f"--dim {name.strip()} is given twice ({dims[name.strip()]} and {number})"
            )
        dims[name.strip()] = number
    return dims


def merge_batch(batch: int | None, dims: dict[str, int]) -> int | None:
    """--batch N and --dim batch=M must agree; returns the batch to use."""
    if batch is not None and "batch" in dims and dims["batch"] != batch:
        raise BadInputError(f"--batch {batch} conflicts with --dim batch={dims['batch']}")
    return batch if batch is not None else dims.get("batch")


def check_percent(name: str, value: float | None) -> None:
    if value is not None and not 0 <= value <= 100:
        raise BadInputError(f"{name} is a percentage from 0 to 100, got {value:g}")


def check_positive(name: str, value: int | float | None, *, zero_ok: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not zero_ok):
        bound = "0 or more" if zero_ok else "more than 0"
        raise BadInputError(f"{name} must be {bound}, got {value}")
    from aialliance_cli.limits import check

    check(name, value)  # nan, inf, and the option's upper bound (aialliance_cli/limits.py)


def read_text(value: str | None) -> str | None:
    """``--text``: the text itself, ``-`` for stdin, ``@FILE`` for a file (as llm and curl do).

    A text that really starts with ``@`` is written ``@@...``.
    """
    if value is None:
        return None
    if value == "-":
        import sys

        if sys.stdin is None or sys.stdin.isatty():
            raise BadInputError(
                "--text - reads the text from stdin, but stdin is a terminal; "
                "pipe the text in (echo hello | aia run ... --text -)"
            )
        text = sys.stdin.read()
        source = "stdin"
    elif value.startswith("@@"):
        return value[1:]
    elif value.startswith("@"):
        path = Path(value[1:]).expanduser()
        if not value[1:]:
            raise BadInputError("--text @FILE needs a file name after '@'")
        from aialliance_cli.safeparse import read_small_text

        text = read_small_text(path, "--text @FILE:")  # not a FIFO, /dev/zero or a huge file
        source = str(path)
    else:
        return value
    text = text.rstrip("\r\n")
    if not text.strip():
        raise BadInputError(f"--text {value}: {source} holds no text")
    return text
