"""Reading a small file the user named: bounded, and every failure one clear message."""

from __future__ import annotations

from pathlib import Path

from aialliance_cli.errors import BadInputError

MAX_TEXT_BYTES = 16 * 2**20  # a JSON or YAML file a user names is pages, not gigabytes


def read_small_bytes(
    path: Path,
    what: str,
    *,
    hint: str = "",
    limit: int = MAX_TEXT_BYTES,
    error: type[BadInputError] = BadInputError,
    shown: str | None = None,
) -> bytes:
    """The bytes of a small file the user named (``what``, then ``shown`` or the path, name
    it in errors).

    A folder, a missing file, a FIFO or device (which would block or never end) and a
    file over ``limit`` bytes are each an ``error`` (a BadInputError: exit 2).
    """
    path = Path(path)
    tail = f" {hint}" if hint else ""
    name = f"{what} {shown or path}"
    if path.is_dir():
        raise error(f"{name} is a directory, not a file.{tail}")
    if not path.exists():
        raise error(f"{name} does not exist.{tail}")
    if not path.is_file():
        raise error(f"{name} is not a regular file (a device or a pipe).{tail}")
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise error(f"{name} cannot be read: {exc.strerror or exc}.{tail}") from None
    if len(raw) > limit:
        raise error(f"{name} is larger than {limit // 2**20} MiB; aia does not read it.{tail}")
    return raw


def read_small_text(path: Path, what: str, *, hint: str = "", limit: int = MAX_TEXT_BYTES) -> str:
    """:func:`read_small_bytes` as UTF-8 text (a BOM dropped); other bytes are bad input."""
    raw = read_small_bytes(path, what, hint=hint, limit=limit)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        tail = f" {hint}" if hint else ""
        raise BadInputError(
            f"{what} {path} is not UTF-8 text (bad byte at offset {exc.start}).{tail}"
        ) from None
