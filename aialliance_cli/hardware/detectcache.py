"""A short-lived disk cache for the answers of ``aia detect`` that cannot change between calls.

The PCI tree, the vendor libraries' answers (NVML, amdsmi, OpenVINO), the ONNX
Runtime build's version and EPs, and the plugin EPs' devices stay the same from
one call to the next; importing onnxruntime and the vendor libraries to read
them again costs most of ``aia detect``'s time. They are kept for
:data:`TTL_S` seconds under ``<cache>/detect/``, and only while the same
Python environment, with the same installed packages, asks on the same boot
of the same machine: the key holds the interpreter, the mtimes of the
``sys.path`` folders (installing or removing a package changes them) and the
kernel's boot id. ``aia detect --refresh`` ignores and rewrites the cache.
What changes between calls (available memory, CPU clocks) is always read anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

TTL_S = 300.0
VERSION = 1


def _path() -> Path:
    from aialliance_cli.paths import user_dirs

    return user_dirs().cache / "detect" / "machine.json"


def fingerprint() -> str:
    """What must not have changed for a cached answer to stand."""
    parts = [str(VERSION), sys.executable, sys.prefix, sys.version]
    for entry in sys.path:
        try:
            parts.append(f"{entry}:{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            continue
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    for var in ("PATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"):
        parts.append(f"{var}={os.environ.get(var, '')}")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def load(section: str) -> Any | None:
    """The cached ``section``, or None when absent, stale or made elsewhere."""
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != fingerprint():
        return None
    entry = data.get("sections", {}).get(section)
    if not isinstance(entry, dict):
        return None
    age = time.time() - float(entry.get("time", 0))
    if not 0 <= age <= TTL_S:
        return None
    return entry.get("value")


def store(section: str, value: Any) -> None:
    """Keep ``section``; a cache that cannot be written is skipped silently."""
    path = _path()
    key = fingerprint()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("fingerprint") != key:
            data = {}
    except (OSError, ValueError):
        data = {}
    data["fingerprint"] = key
    data.setdefault("sections", {})[section] = {"time": time.time(), "value": value}
    with contextlib.suppress(OSError, TypeError, ValueError):
        from aialliance_cli.atomicfile import write_text_atomic

        write_text_atomic(path, json.dumps(data))


def clear() -> None:
    with contextlib.suppress(OSError):
        _path().unlink()
