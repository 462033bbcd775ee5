"""The software probe: OS, kernel, Python, and the ONNX Runtime packages installed.

Reads the live machine only (the ORT facts are about this Python environment).
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

from aialliance_cli.hardware.inventory import OrtDistribution, ProbeNote, SoftwareInfo

PROBE = "software"

# Distributions named onnxruntime-* that are companions, not ORT builds or EPs:
# listing them would make a planner think two builds conflict.
NOT_RUNTIMES = ("onnxruntime-extensions", "onnxruntime-genai", "onnxruntime-tools")


def normalise_dist_name(name: str) -> str:
    """PEP 503 normalisation: ``onnxruntime_openvino`` -> ``onnxruntime-openvino``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_plugin_distribution(name: str, version: str) -> bool:
    """Plugin EP packages install beside ``onnxruntime`` instead of replacing it."""
    name = normalise_dist_name(name)
    if name.startswith("onnxruntime-ep-"):
        return True
    if name == "onnxruntime-qnn":
        # onnxruntime-qnn 1.x was a full build; 2.x is a plugin EP for ORT >= 1.23.
        major = re.match(r"\d+", version)
        return bool(major and int(major.group()) >= 2)
    return False


def ort_distributions(paths: list[str] | None = None) -> tuple[OrtDistribution, ...]:
    """Every installed ONNX Runtime build or plugin EP distribution, sorted by name.

    Scans ``sys.path`` for ``onnxruntime*.dist-info`` folders instead of
    reading the metadata of every installed distribution (5x faster).
    """
    import os
    import sys
    from importlib import metadata

    found: dict[str, OrtDistribution] = {}
    for entry in sys.path if paths is None else paths:
        try:
            with os.scandir(entry or ".") as it:
                names = [
                    e.path
                    for e in it
                    if e.name.lower().startswith("onnxruntime")
                    and e.name.endswith((".dist-info", ".egg-info"))
                ]
        except OSError:
            continue
        for path in sorted(names):
            dist = metadata.PathDistribution(Path(path))
            raw = dist.metadata["Name"] if dist.metadata else None
            if not raw:
                continue
            name = normalise_dist_name(raw)
            if not name.startswith("onnxruntime") or name.startswith(NOT_RUNTIMES):
                continue
            if name in found:  # the same distribution on two sys.path entries: first wins
                continue
            version = dist.version or "unknown"
            found[name] = OrtDistribution(name, version, is_plugin_distribution(name, version))
    return tuple(found[n] for n in sorted(found))


def os_release(etc: Path = Path("/etc")) -> str:
    """A human name for the OS: PRETTY_NAME on Linux, ``macOS 14.5``, ``Windows 11``."""
    system = platform.system()
    if system == "Darwin":
        return f"macOS {platform.mac_ver()[0]}".strip()
    if system == "Windows":
        return f"Windows {platform.release()}".strip()
    for candidate in (etc / "os-release", Path("/usr/lib/os-release")):
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip().strip("\"'")
        pretty = fields.get("PRETTY_NAME") or " ".join(
            v for v in (fields.get("NAME"), fields.get("VERSION")) if v
        )
        if pretty:
            return pretty
    return f"{system} {platform.release()}".strip()


def probe_software() -> tuple[SoftwareInfo, list[ProbeNote]]:
    """Describe the OS and the ONNX Runtime of this Python environment; never raises."""
    notes: list[ProbeNote] = []
    system = platform.system() or "unknown"
    kernel = platform.version() if system == "Windows" else platform.release()
    try:
        distributions = ort_distributions()
    except Exception as exc:
        distributions = ()
        notes.append(ProbeNote(PROBE, f"could not list installed distributions: {exc}"))

    ort_version = None
    providers: tuple[str, ...] = ()
    ort_error = None
    try:
        import onnxruntime

        ort_version = str(onnxruntime.__version__)
        providers = tuple(onnxruntime.get_available_providers())
    except Exception as exc:  # ImportError, or a broken wheel raising OSError/AttributeError
        ort_error = f"{type(exc).__name__}: {exc}"
        notes.append(ProbeNote(PROBE, f"onnxruntime could not be imported: {ort_error}"))

    return (
        SoftwareInfo(
            os=system,
            os_release=os_release(),
            kernel=kernel or None,
            python=platform.python_version(),
            ort_version=ort_version,
            ort_distributions=distributions,
            available_providers=providers,
            ort_error=ort_error,
        ),
        notes,
    )
