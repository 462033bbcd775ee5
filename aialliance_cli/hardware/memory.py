"""The memory probe: <root>/proc/meminfo, with psutil on the live root as a fallback."""

from __future__ import annotations

from pathlib import Path

from aialliance_cli.hardware.cpu import is_live_root, read_text
from aialliance_cli.hardware.inventory import MemoryInfo, ProbeNote

PROBE = "memory"


def parse_meminfo(text: str) -> dict[str, int]:
    """Map each /proc/meminfo key to bytes (the kernel writes kB; unitless counts stay)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts or not parts[0].isdigit():
            continue
        scale = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
        values[key.strip()] = int(parts[0]) * scale
    return values


def probe_memory(root: str | Path = "/") -> tuple[MemoryInfo, list[ProbeNote]]:
    """Total and available memory of the machine at ``root``; never raises."""
    root = Path(root)
    notes: list[ProbeNote] = []
    path = root / "proc" / "meminfo"
    text = read_text(path)
    if text is not None:
        values = parse_meminfo(text)
        total = values.get("MemTotal")
        available = values.get("MemAvailable")
        if available is None and total is not None:
            # Kernels before 3.14 lack MemAvailable; free + page cache is the old estimate.
            parts = [values.get(k) for k in ("MemFree", "Buffers", "Cached")]
            available = sum(p for p in parts if p is not None) if parts[0] is not None else None
        if total is None:
            notes.append(ProbeNote(PROBE, f"{path} has no MemTotal line"))
        return MemoryInfo(total_bytes=total, available_bytes=available), notes

    if is_live_root(root):
        try:
            import psutil

            vm = psutil.virtual_memory()
            return MemoryInfo(total_bytes=int(vm.total), available_bytes=int(vm.available)), notes
        except Exception as exc:
            notes.append(ProbeNote(PROBE, f"psutil could not read memory: {exc}"))
            return MemoryInfo(None, None), notes
    notes.append(ProbeNote(PROBE, f"{path} is missing or unreadable"))
    return MemoryInfo(None, None), notes
