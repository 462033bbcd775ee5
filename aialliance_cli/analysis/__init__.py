"""Graph analysis for ``aia inspect`` and ``aia profile``: summary, FLOPs, placement, op times.

Every module here imports onnx/onnxruntime only inside the functions that need them.
"""

from __future__ import annotations

from aialliance_cli.analysis.flops import FlopReport, count_flops
from aialliance_cli.analysis.graph import GraphSummary, TensorInfo, summarize
from aialliance_cli.analysis.opprofile import (
    NodeStat,
    OpProfile,
    OpTypeComparison,
    OpTypeStat,
    compare_profiles,
    parse_profile,
)
from aialliance_cli.analysis.placement import (
    Placement,
    capture_session_log,
    detect_silent_cpu_fallback,
    enable_placement_log,
    enable_placement_recording,
    parse_placement_log,
    read_placement,
)

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
