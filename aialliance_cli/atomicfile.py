"""Write a text file so that a reader sees the old file or the whole new one, never half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(
    path: str | Path, text: str, *, shared: bool = False, fsync: bool = False
) -> Path:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path``.

    The parent folder is created. ``shared``: the file gets the mode a plain
    ``open`` would give it (0666 less the umask) instead of mkstemp's 0600.
    ``fsync``: the bytes reach the disk before the rename. OSError is raised
    as is; the temp file never stays behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if shared:
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
