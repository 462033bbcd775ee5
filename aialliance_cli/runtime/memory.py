"""Transparent huge pages for a worker's heap.

A decode step reads every weight of the model once, so a decoder is bound by how fast
the CPU walks hundreds of MiB: with 4 KiB pages that walk misses the TLB all the
time; in 2 MiB pages it does not (SmolLM2-135M's int4 decoder: 6-10% more
tokens/s on the development VM, benchmarks/README.md). ONNX Runtime keeps its
weights (prepacked or copied from the file) in memory it gets from malloc, and
glibc 2.35+ asks the kernel for huge pages for its mappings when the environment
says ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` (``madvise(MADV_HUGEPAGE)``); the
kernel grants them when transparent huge pages are ``always`` or ``madvise``.
glibc reads the tunable when a process starts, so the launcher puts it in the
environment of each worker it starts (runtime/launch.py).

The results say whether a process asked (``settings.huge_pages``) and how much of
its memory was in huge pages (``metrics.huge_pages_bytes``); ``AIA_HUGE_PAGES=0``
turns it off, and a ``glibc.malloc.hugetlb`` the user set stays as it is. The
results compute the same thing either way: only where the bytes live changes.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

SWITCH = "AIA_HUGE_PAGES"  # 0/off/no/false: workers keep the system's default
TUNABLE = "glibc.malloc.hugetlb"
THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")
_OFF = ("0", "off", "no", "false")
_ON = ("1", "on", "yes", "true", "")


def thp_mode(path: Path = THP_ENABLED) -> str | None:
    """The kernel's transparent huge page mode (``always``, ``madvise``, ``never``), or None."""
    try:
        m = re.search(r"\[(\w+)\]", path.read_text())
    except OSError:
        return None
    return m.group(1) if m else None


def glibc_version() -> tuple[int, int] | None:
    """glibc's (major, minor) for this process, None for another C library or OS."""
    try:
        name, _, version = os.confstr("CS_GNU_LIBC_VERSION").partition(" ")  # "glibc 2.36"
        major, minor = version.split(".")[:2]
        return (int(major), int(minor)) if name == "glibc" else None
    except (AttributeError, ValueError, OSError):
        return None


def supported(thp_path: Path = THP_ENABLED, libc: tuple[int, int] | None = None) -> bool:
    """Whether malloc's memory can be put in huge pages here (Linux, glibc 2.35+, THP on)."""
    libc = libc if libc is not None else glibc_version()
    if not sys.platform.startswith("linux") or libc is None or libc < (2, 35):
        return False
    return thp_mode(thp_path) in ("always", "madvise")


def worker_environ(
    env: Mapping[str, str], *, thp_path: Path = THP_ENABLED, libc: tuple[int, int] | None = None
) -> dict[str, str]:
    """What to add to a worker's environment ``env`` for huge pages ({} when not wanted).

    A value of ``AIA_HUGE_PAGES`` other than 1/0 (on/off, yes/no, true/false) is a
    BadInputError that names it.
    """
    switch = env.get(SWITCH, "1").strip().lower()
    if switch in _OFF:
        return {}
    if switch not in _ON:
        from aialliance_cli.errors import BadInputError

        raise BadInputError(
            f"{SWITCH}={env[SWITCH]!r} is not 1 or 0: it says whether aia's workers keep "
            "their heap in transparent huge pages (1, the default) or not (0)"
        )
    tunables = env.get("GLIBC_TUNABLES", "")
    if TUNABLE in tunables or not supported(thp_path, libc):
        return {}  # the user's own choice stands; or nothing to ask for here
    return {"GLIBC_TUNABLES": f"{tunables}:{TUNABLE}=1" if tunables else f"{TUNABLE}=1"}


def asked(
    env: Mapping[str, str] = os.environ,
    *,
    thp_path: Path = THP_ENABLED,
    libc: tuple[int, int] | None = None,
) -> bool:
    """Whether this process started with malloc's memory in huge pages (``settings.huge_pages``)."""
    m = re.search(re.escape(TUNABLE) + r"=(\d+)", env.get("GLIBC_TUNABLES", ""))
    return bool(m and m.group(1) != "0") and supported(thp_path, libc)


def huge_pages_bytes(smaps: Path = Path("/proc/self/smaps_rollup")) -> int | None:
    """This process's anonymous memory in transparent huge pages, in bytes (None off Linux)."""
    try:
        m = re.search(r"^AnonHugePages:\s+(\d+) kB", smaps.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None
