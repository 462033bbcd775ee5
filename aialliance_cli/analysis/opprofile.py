"""Per-operator times from ONNX Runtime's profiler trace (``aia profile``).

The trace is a Chrome-trace JSON list written when ``SessionOptions.enable_profiling``
is set; ``session.end_profiling()`` returns its path. Events used:

- ``cat == "Session"`` and ``name == "model_run"``: one per ``session.run``;
- ``cat == "Node"`` with a name ending in ``_kernel_time``: one per node per run,
  with ``args.op_name`` (op type) and ``args.provider`` (the EP that ran it).

Kernel events are assigned to the run whose ``model_run`` interval holds them;
the first ``warmup_runs`` runs and their kernels are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError

MEMCPY_OPS = frozenset({"MemcpyFromHost", "MemcpyToHost", "Memcpy"})
_KERNEL_SUFFIX = "_kernel_time"


@dataclass(frozen=True)
class OpTypeStat:
    """Time of one op type on one EP, summed over the measured runs."""

    op_type: str
    ep: str
    total_us: float
    calls: int
    mean_us: float  # per call
    share: float  # of all kernel time


@dataclass(frozen=True)
class NodeStat:
    name: str
    op_type: str
    ep: str
    total_us: float
    calls: int
    mean_us: float
    share: float


@dataclass(frozen=True)
class OpProfile:
    """Kernel time per op type and per node over ``runs`` measured runs."""

    by_op_type: list[OpTypeStat]
    by_node: list[NodeStat]
    runs: int
    warmup_runs: int
    run_us_total: float
    kernel_us_total: float
    session_overhead_us: float  # model_run time minus kernel time
    memcpy_us: float
    us_by_ep: dict[str, float]

    @property
    def run_us_mean(self) -> float:
        return self.run_us_total / self.runs if self.runs else 0.0

    def top(self, n: int = 10) -> list[OpTypeStat]:
        """The ``n`` (op type, EP) pairs that took the most time."""
        return self.by_op_type[:n]

    def top_nodes(self, n: int = 10) -> list[NodeStat]:
        return self.by_node[:n]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_us_mean"] = self.run_us_mean
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpProfile:
        """The inverse of :meth:`to_dict` (a profile measured in a worker process)."""
        return cls(
            by_op_type=[OpTypeStat(**s) for s in data.get("by_op_type") or ()],
            by_node=[NodeStat(**s) for s in data.get("by_node") or ()],
            runs=int(data.get("runs") or 0),
            warmup_runs=int(data.get("warmup_runs") or 0),
            run_us_total=float(data.get("run_us_total") or 0.0),
            kernel_us_total=float(data.get("kernel_us_total") or 0.0),
            session_overhead_us=float(data.get("session_overhead_us") or 0.0),
            memcpy_us=float(data.get("memcpy_us") or 0.0),
            us_by_ep={str(k): float(v) for k, v in (data.get("us_by_ep") or {}).items()},
        )


@dataclass(frozen=True)
class OpTypeComparison:
    """One op type in two profiles; times are per run (µs), ``speedup`` = a / b."""

    op_type: str
    a_us_per_run: float | None
    b_us_per_run: float | None
    speedup: float | None
    a_eps: tuple[str, ...]
    b_eps: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["a_eps"], d["b_eps"] = list(self.a_eps), list(self.b_eps)
        return d


def _load_events(trace_path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(trace_path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadInputError(f"Profile trace {trace_path} does not exist.") from exc
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"Cannot read {trace_path} as an ONNX Runtime profile (JSON): {exc}."
        ) from exc
    if isinstance(data, dict):  # Chrome's object form
        data = data.get("traceEvents", [])
    if not isinstance(data, list):
        raise BadInputError(f"{trace_path} is not a Chrome-trace list of events.")
    return [e for e in data if isinstance(e, dict)]


def parse_profile(trace_path: Path, warmup_runs: int = 0) -> OpProfile:
    """Aggregate the profiler trace at ``trace_path``, dropping the first ``warmup_runs`` runs."""
    if warmup_runs < 0:
        raise BadInputError(f"warmup_runs must be >= 0, got {warmup_runs}.")
    events = _load_events(trace_path)
    runs = sorted(
        (
            (float(e.get("ts", 0)), float(e.get("ts", 0)) + float(e.get("dur", 0)))
            for e in events
            if e.get("cat") == "Session" and e.get("name") == "model_run"
        ),
    )
    kept = runs[warmup_runs:]
    kernels = [
        e
        for e in events
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith(_KERNEL_SUFFIX)
    ]
    if runs:
        kernels = [e for e in kernels if _in_runs(float(e.get("ts", 0)), kept)]
    return _aggregate(exclusive_times(kernels), len(kept) if runs else 1, warmup_runs, kept)


def exclusive_times(kernels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kernel events with ``dur`` made exclusive: a control-flow node (If, Loop, Scan) runs
    its subgraph's nodes inside its own time on the same thread, and those nodes have
    events of their own, so its time less theirs is what it took itself. Without this the
    subgraph counts twice (Silero VAD's kernels summed to 196.8% of a run)."""
    from collections import defaultdict

    by_tid: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for e in kernels:
        by_tid[(e.get("pid"), e.get("tid"))].append(e)
    out: list[dict[str, Any]] = []
    for events in by_tid.values():
        events.sort(key=lambda e: (float(e.get("ts", 0)), -float(e.get("dur", 0))))
        own = [float(e.get("dur", 0)) for e in events]
        stack: list[int] = []  # indices of the open (enclosing) events
        for i, e in enumerate(events):
            start = float(e.get("ts", 0))
            end = start + float(e.get("dur", 0))
            while stack and _end(events[stack[-1]]) <= start:
                stack.pop()
            if stack and end <= _end(events[stack[-1]]):
                own[stack[-1]] -= float(e.get("dur", 0))  # a direct child of the open event
            stack.append(i)
        out += [{**e, "dur": max(0.0, d)} for e, d in zip(events, own, strict=True)]
    return out


def _end(e: dict[str, Any]) -> float:
    return float(e.get("ts", 0)) + float(e.get("dur", 0))


def _in_runs(ts: float, runs: list[tuple[float, float]]) -> bool:
    # runs are few (tens to thousands) and sorted: a bisect keeps this linear overall
    import bisect

    i = bisect.bisect_right(runs, (ts, float("inf"))) - 1
    return i >= 0 and runs[i][0] <= ts <= runs[i][1]


def _aggregate(
    kernels: Iterable[dict[str, Any]],
    runs: int,
    warmup_runs: int,
    run_spans: list[tuple[float, float]],
) -> OpProfile:
    per_op: dict[tuple[str, str], list[float]] = {}
    per_node: dict[tuple[str, str, str], list[float]] = {}
    for e in kernels:
        args = e.get("args") or {}
        name = str(e["name"])[: -len(_KERNEL_SUFFIX)]
        op = str(args.get("op_name", "?"))
        ep = str(args.get("provider", "?"))
        dur = float(e.get("dur", 0))
        acc = per_op.setdefault((op, ep), [0.0, 0])
        acc[0] += dur
        acc[1] += 1
        acc = per_node.setdefault((name, op, ep), [0.0, 0])
        acc[0] += dur
        acc[1] += 1
    kernel_total = sum(v[0] for v in per_op.values())
    run_total = sum(end - start for start, end in run_spans)

    def share(us: float) -> float:
        return us / kernel_total if kernel_total else 0.0

    by_op = sorted(
        (
            OpTypeStat(op, ep, total, int(calls), total / calls, share(total))
            for (op, ep), (total, calls) in per_op.items()
        ),
        key=lambda s: (-s.total_us, s.op_type),
    )
    by_node = sorted(
        (
            NodeStat(name, op, ep, total, int(calls), total / calls, share(total))
            for (name, op, ep), (total, calls) in per_node.items()
        ),
        key=lambda s: (-s.total_us, s.name),
    )
    us_by_ep: dict[str, float] = {}
    for s in by_op:
        us_by_ep[s.ep] = us_by_ep.get(s.ep, 0.0) + s.total_us
    return OpProfile(
        by_op_type=by_op,
        by_node=by_node,
        runs=runs,
        warmup_runs=warmup_runs,
        run_us_total=run_total,
        kernel_us_total=kernel_total,
        session_overhead_us=max(0.0, run_total - kernel_total),
        memcpy_us=sum(s.total_us for s in by_op if s.op_type in MEMCPY_OPS),
        us_by_ep=dict(sorted(us_by_ep.items(), key=lambda kv: -kv[1])),
    )


def compare_profiles(a: OpProfile, b: OpProfile) -> list[OpTypeComparison]:
    """Per op type: time per run in A and in B, speedup (A/B) and the EPs that ran it.

    An op type present in only one profile (fused differently, or fallen back to
    another EP) has ``None`` on the other side. Sorted by the larger time, desc.
    """

    def per_type(p: OpProfile) -> tuple[dict[str, float], dict[str, set[str]]]:
        times: dict[str, float] = {}
        eps: dict[str, set[str]] = {}
        for s in p.by_op_type:
            times[s.op_type] = times.get(s.op_type, 0.0) + s.total_us / max(p.runs, 1)
            eps.setdefault(s.op_type, set()).add(s.ep)
        return times, eps

    ta, ea = per_type(a)
    tb, eb = per_type(b)
    rows = []
    for op in set(ta) | set(tb):
        x, y = ta.get(op), tb.get(op)
        rows.append(
            OpTypeComparison(
                op_type=op,
                a_us_per_run=x,
                b_us_per_run=y,
                speedup=(x / y) if x is not None and y else None,
                a_eps=tuple(sorted(ea.get(op, ()))),
                b_eps=tuple(sorted(eb.get(op, ()))),
            )
        )
    rows.sort(key=lambda r: (-max(r.a_us_per_run or 0.0, r.b_us_per_run or 0.0), r.op_type))
    return rows
