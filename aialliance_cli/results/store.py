"""Writing and reading result files: atomic JSON, appended JSON Lines."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError
from aialliance_cli.results.schema import SCHEMA
from aialliance_cli.safeparse import ParseLimitError, loads_json


def _default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def dumps(data: Any, *, indent: int | None = None) -> str:
    return json.dumps(data, default=_default, indent=indent, ensure_ascii=False)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader never sees half a file."""
    from aialliance_cli.atomicfile import write_text_atomic

    path = Path(path)
    check_writable(path)
    write_text_atomic(path, dumps(data, indent=2) + "\n", shared=True, fsync=True)


def append_jsonl(
    path: Path,
    records: Iterable[dict[str, Any]],
    *,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Append one line per record, each whole or not at all; returns the count.

    An existing file whose last line lacks its newline (a crash or a full disk
    mid-line, before aia checked its writes) gets the newline first: the broken
    line stays as it was, on a line of its own, and ``warn`` is told. A failed or
    short write (a full disk, a file-size limit) is undone by truncating the file
    back to where the line began, and raises RuntimeFailure (exit 1) naming the
    path. SIGINT, SIGTERM and SIGHUP wait until the line is written.
    """
    from aialliance_cli import interrupts

    path = Path(path)
    check_writable(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except PermissionError:
        try:  # a write-only file: append without looking at its last byte
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise BadInputError(f"cannot write results to {path}: {exc.strerror}") from exc
    except OSError as exc:
        raise BadInputError(f"cannot write results to {path}: {exc.strerror}") from exc
    n = 0
    with interrupts.deferred():
        try:
            for rec in records:
                data = (dumps(rec) + "\n").encode("utf-8")
                start = os.fstat(fd).st_size
                if start and not _ends_with_newline(fd, start):
                    data = b"\n" + data
                    if warn is not None:
                        warn(
                            f"the last line of {path} was incomplete; it was ended with a "
                            "newline before the new results (that line stays unreadable)"
                        )
                _write_whole(fd, data, start)
                n += 1
            os.fsync(fd)
        except OSError as exc:
            from aialliance_cli.errors import RuntimeFailure

            raise RuntimeFailure(
                f"cannot append results to {path}: {exc.strerror or exc} ({n} written; "
                "the file holds only whole lines). Free space or give --out another file."
            ) from exc
        finally:
            os.close(fd)
    return n


def _ends_with_newline(fd: int, size: int) -> bool:
    try:
        return os.pread(fd, 1, size - 1) == b"\n"
    except OSError:  # opened write-only: cannot tell
        return True


def _write_whole(fd: int, data: bytes, start: int) -> None:
    """Write all of ``data``, or truncate the file back to ``start`` and raise OSError."""
    done = 0
    try:
        while done < len(data):
            wrote = os.write(fd, data[done:])
            if wrote <= 0:
                raise OSError(28, "no space left on the device (a short write)")
            done += wrote
    except OSError:
        if done:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
        raise


def check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written, before any work is done (exit 2)."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"cannot write results to {path}: it is a directory")
    if path.exists() and not path.is_file():  # /dev/null, a pipe: no whole-line appends there
        raise BadInputError(
            f"cannot write results to {path}: it is not a regular file (a device or a pipe); "
            "give a .jsonl file, or print the results with --json instead"
        )
    parent = path.parent
    for p in [parent, *parent.parents]:
        if p.exists():
            if not p.is_dir():
                raise BadInputError(f"cannot write {path}: {p} is a file, not a directory")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create the folder {parent}: {exc.strerror}") from exc
    if not os.access(parent, os.W_OK):
        raise BadInputError(f"cannot write into {parent}: permission denied")


@dataclass(frozen=True)
class LoadedResults:
    records: list[dict[str, Any]]
    skipped: list[str]  # one message per line that could not be used


def read_results(path: Path) -> LoadedResults:
    """Read a JSONL (or single JSON) result file; bad lines are skipped and reported."""
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise BadInputError(
                f"result file {path} is not a regular file (a device or a pipe); "
                "give a .jsonl file written by aia bench --out"
            )
        raise BadInputError(f"result file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read result file {path}: {exc}") from exc
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    stripped = text.strip()
    lines = [stripped] if stripped.startswith("{") and "\n{" not in stripped else text.splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = loads_json(line, f"{path}:{lineno}")
        except ParseLimitError as exc:
            skipped.append(str(exc).rstrip("."))
            continue
        except BadInputError:
            skipped.append(f"{path}:{lineno}: not valid JSON (a truncated line?)")
            continue
        if not isinstance(rec, dict) or "schema" not in rec:
            skipped.append(f"{path}:{lineno}: not an aia result (no 'schema' field)")
            continue
        if rec["schema"] != SCHEMA:
            skipped.append(
                f"{path}:{lineno}: schema {rec['schema']!r} is not {SCHEMA!r}; "
                "this aia cannot read it"
            )
            continue
        records.append(rec)
    return LoadedResults(records, skipped)
