"""Graph analysis for ``aia inspect`` and ``aia profile``: summary, FLOPs, placement, op times.

Every module here imports onnx/onnxruntime only inside the functions that need them.

Its names load with their submodule on first use: a worker that needs only the
placement log does not import the FLOP counter or the op-profile parser.
"""

from __future__ import annotations

from aialliance_cli.lazy import lazy_exports

# name -> the submodule that defines it, imported on first use (PEP 562)
_EXPORTS = {
    "FlopReport": "aialliance_cli.analysis.flops",
    "count_flops": "aialliance_cli.analysis.flops",
    "GraphSummary": "aialliance_cli.analysis.graph",
    "TensorInfo": "aialliance_cli.analysis.graph",
    "summarize": "aialliance_cli.analysis.graph",
    "NodeStat": "aialliance_cli.analysis.opprofile",
    "OpProfile": "aialliance_cli.analysis.opprofile",
    "OpTypeComparison": "aialliance_cli.analysis.opprofile",
    "OpTypeStat": "aialliance_cli.analysis.opprofile",
    "compare_profiles": "aialliance_cli.analysis.opprofile",
    "parse_profile": "aialliance_cli.analysis.opprofile",
    "Placement": "aialliance_cli.analysis.placement",
    "capture_session_log": "aialliance_cli.analysis.placement",
    "detect_silent_cpu_fallback": "aialliance_cli.analysis.placement",
    "enable_placement_log": "aialliance_cli.analysis.placement",
    "enable_placement_recording": "aialliance_cli.analysis.placement",
    "parse_placement_log": "aialliance_cli.analysis.placement",
    "read_placement": "aialliance_cli.analysis.placement",
}

__all__ = [
    "FlopReport",
    "GraphSummary",
    "NodeStat",
    "OpProfile",
    "OpTypeComparison",
    "OpTypeStat",
    "Placement",
    "TensorInfo",
    "capture_session_log",
    "compare_profiles",
    "count_flops",
    "detect_silent_cpu_fallback",
    "enable_placement_log",
    "enable_placement_recording",
    "parse_placement_log",
    "read_placement",
    "parse_profile",
    "summarize",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
