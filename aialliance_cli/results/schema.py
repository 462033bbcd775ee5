"""The result of one configuration: versioned, JSON-serialisable (docs/results.md).

``schema`` is ``aia.result/1``. New fields may be added within a major version;
renaming or removing a field bumps it.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "aia.result/1"


@dataclass
class Result:
    kind: str  # "bench" | "run" | "profile" | "generation"
    profile: dict[str, Any]  # name, path, sha256, origin (or the bare model file)
    model: dict[str, Any]  # path, source description, cache key
    machine: dict[str, Any]  # Inventory.to_dict()
    onnxruntime: dict[str, Any]  # version, distributions
    ep: dict[str, Any]  # requested, name, options, providers, fallbacks
    settings: dict[str, Any]
    metrics: dict[str, Any]
    status: str = "ok"  # ok | interrupted | failed
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    timestamp: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )

    def to_dict(self) -> dict[str, Any]:
        from aialliance_cli import __version__

        out: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": self.kind,
            "timestamp": self.timestamp,
            "aia_version": __version__,
            "status": self.status,
            "profile": self.profile,
            "model": self.model,
            "ep": self.ep,
            "settings": self.settings,
            "metrics": self.metrics,
            "warnings": list(self.warnings),
            "error": self.error,
            "onnxruntime": self.onnxruntime,
            "machine": self.machine,
        }
        out.update(self.extra)
        return out
