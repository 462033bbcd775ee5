"""`aia samples`: the real sample inputs that come with aia (an image, a speech clip)."""

from __future__ import annotations

from typing import Annotated

import typer

from aialliance_cli.cli.output import handles_errors

# name -> (what it is, which bundled profile takes it)
SAMPLES = {
    "ocr-text.png": (
        "640x480 RGB page of printed text rendered with Pillow's bundled font",
        "ppocr-det",
    ),
    "speech.wav": (
        "2.5 s of English speech from eSpeak NG between silences, 16-bit mono 22050 Hz",
        "silero-vad",
    ),
}


def sample_path(name: str):
    """The installed path of a bundled sample file."""
    from pathlib import Path

    import aialliance_cli.samples as pkg

    return Path(pkg.__file__).resolve().parent / name


@handles_errors
def samples(
    name: Annotated[
        str | None, typer.Argument(help="Print only this sample's path (for $(...)).")
    ] = None,
) -> None:
    """List the sample inputs that come with aia, or print one's path."""
    import sys

    from aialliance_cli.errors import BadInputError

    if name is not None:
        if name not in SAMPLES:
            raise BadInputError(f"no sample named '{name}'; the samples are: {', '.join(SAMPLES)}")
        sys.stdout.write(f"{sample_path(name)}\n")
        return
    for n, (what, profile) in SAMPLES.items():
        sys.stdout.write(f"{n}\n    {what}\n    for: aia run {profile} --input {sample_path(n)}\n")
    sys.stdout.write("How they were made: aialliance_cli/samples/make_samples.py\n")


def register(app: typer.Typer) -> None:
    app.command("samples")(samples)
