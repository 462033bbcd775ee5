"""aia: hardware-aware model runs on ONNX Runtime.

Usable as a library: ``from aialliance_cli import detect, plan, bench``.
Heavy modules (onnxruntime, optimum, torch) load only when a function needs them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "detect", "plan", "bench", "run", "load_profile"]


def __getattr__(name: str) -> Any:  # lazy public API, keeps `import aialliance_cli` cheap
    if name == "detect":
        from aialliance_cli.hardware import detect

        return detect
    if name == "plan":
        from aialliance_cli.providers.planner import plan

        return plan
    if name in ("bench", "run"):
        from aialliance_cli.runtime import api

        return getattr(api, name)
    if name == "load_profile":
        from aialliance_cli.profiles import load_profile

        return load_profile
    raise AttributeError(name)
