"""Where each node of a session really runs, and whether ORT fell back to the CPU silently.

Three sources, best first:

- ``"api"``: ONNX Runtime >= 1.23 records the assignment when the session config
  entry ``session.record_ep_graph_assignment_info`` is ``"1"``
  (:func:`enable_placement_recording`); ``get_provider_graph_assignment_info()``
  then lists the nodes each EP took. These are the nodes of the graph after
  ORT's basic (level 1) fusions, when the EPs claim nodes: a MatMul+Add pair
  shows up as one ``Gemm`` named ``<matmul>/MatMulAddFusion``.
- ``"log"``: ORT's verbose session log says ``Node placements`` then either
  ``All nodes placed on [EP]. Number of nodes: N`` or, per EP,
  ``Node(s) placed on [EP]. Number of nodes: N`` followed by one
  ``OpType (name)`` line per node (:func:`capture_session_log` captures it).
- ``"providers"``: only ``session.get_providers()``; node counts are known only
  when a single EP is active.

FLOPs per EP: each FLOP-bearing node of the original graph (keys of
``FlopReport.by_node``) is matched by name to a placed node, also through
ORT's fusion names (``fused X``, ``X/SomeFusion``). The FLOPs of original nodes
that match no placed node (they were fused into a node named after another) are
attributed to the EP that holds the majority of the matched FLOPs;
``flops_matched_share`` says how much of the total was matched exactly.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import onnx

    from aialliance_cli.analysis.flops import FlopReport

RECORD_KEY = "session.record_ep_graph_assignment_info"
MEMCPY_OPS = frozenset({"MemcpyFromHost", "MemcpyToHost", "Memcpy"})
_PLACED = re.compile(r"(Node\(s\)|All nodes) placed on \[([^\]]+)\]\. Number of nodes: (\d+)")
_NODE_LINE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\]\s{2,}(\S+) \((.*)\)\s*$")
_FUSION_SUFFIX = re.compile(r"^(.*)/[A-Za-z0-9]*Fusion[A-Za-z0-9_]*$")

T = TypeVar("T")


@dataclass(frozen=True)
class PlacedNode:
    name: str
    op_type: str
    ep: str


@dataclass(frozen=True)
class Placement:
    """Nodes (and FLOPs) per execution provider for one session."""

    source: Literal["api", "log", "providers"]
    requested_ep: str
    nodes_by_ep: dict[str, int]
    total_nodes: int
    flops_by_ep: dict[str, int]
    share_nodes_requested: float | None
    share_flops_requested: float | None
    fallback_nodes: tuple[tuple[str, str, str], ...]  # (node name, op type, ep)
    memcpy_nodes: int
    flops_matched_share: float | None = None
    providers: tuple[str, ...] = ()

    def summary_line(self, max_names: int = 5) -> str:
        """E.g. ``CPUExecutionProvider: 312/320 nodes, 99.7% of FLOPs; 8 nodes on CPU: A, B…``."""
        ep = self.requested_ep
        if self.share_nodes_requested is None:
            return f"{ep}: placement unknown (only the session's providers are known: " + (
                ", ".join(self.providers) + ")"
            )
        parts = [f"{ep}: {self.nodes_by_ep.get(ep, 0)}/{self.total_nodes} nodes"]
        if self.share_flops_requested is not None:
            parts[0] += f", {self.share_flops_requested * 100:.1f}% of FLOPs"
        others = {e: n for e, n in self.nodes_by_ep.items() if e != ep and n}
        for other, count in sorted(others.items(), key=lambda kv: -kv[1]):
            names = [n for n, _, e in self.fallback_nodes if e == other and n]
            text = f"{count} node{'s' if count != 1 else ''} on {_short(other)}"
            if names:
                more = "…" if len(names) > max_names else ""
                text += ": " + ", ".join(names[:max_names]) + more
            parts.append(text)
        if self.memcpy_nodes:
            parts.append(f"{self.memcpy_nodes} memory copies")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fallback_nodes"] = [
            {"name": n, "op_type": o, "ep": e} for n, o, e in self.fallback_nodes
        ]
        d["providers"] = list(self.providers)
        return d


def _short(ep: str) -> str:
    return {"CPUExecutionProvider": "CPU"}.get(ep, ep.removesuffix("ExecutionProvider"))


def enable_placement_recording(sess_options: Any) -> None:
    """Ask ORT to record which EP takes each node (read back by :func:`read_placement`)."""
    sess_options.add_session_config_entry(RECORD_KEY, "1")


def enable_placement_log(sess_options: Any) -> None:
    """Make the session log verbose, so its placement lines reach stderr."""
    sess_options.log_severity_level = 0
    sess_options.log_verbosity_level = 0


@contextlib.contextmanager
def _stderr_to_file() -> Iterator[Callable[[], str]]:
    """Redirect file descriptor 2 (where ORT's C++ logger writes) into a temp file."""
    sys.stderr.flush()
    saved = os.dup(2)
    tmp = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed in finally, fd is shared
    captured: list[str] = []
    try:
        os.dup2(tmp.fileno(), 2)
        yield lambda: "".join(captured)
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        tmp.seek(0)
        captured.append(tmp.read().decode("utf-8", errors="replace"))
        tmp.close()


def capture_session_log(create: Callable[[], T]) -> tuple[T, str]:
    """Call ``create()`` (which builds a session) and return it with what ORT wrote to stderr.

    Set :func:`enable_placement_log` on the session options first. If ``create``
    raises, the captured log is attached to the exception as ``ort_log``.
    """
    error: BaseException | None = None
    with _stderr_to_file() as text:
        try:
            result = create()
        except BaseException as exc:  # noqa: BLE001 - re-raised below with the log attached
            error = exc
    if error is not None:
        error.ort_log = text()  # type: ignore[attr-defined]
        raise error
    return result, text()


def parse_placement_log(text: str) -> tuple[dict[str, int], list[PlacedNode]]:
    """Parse ORT's ``Node placements`` lines: (node count per EP, nodes listed by name).

    ``All nodes placed on [EP]`` gives only a count; the per-EP form lists nodes.
    The last placement block of the log wins (a log can hold several sessions).
    """
    counts: dict[str, int] = {}
    nodes: list[PlacedNode] = []
    current: str | None = None
    for line in text.splitlines():
        if "Node placements" in line:
            counts, nodes, current = {}, [], None
            continue
        m = _PLACED.search(line)
        if m:
            ep = m.group(2)
            counts[ep] = int(m.group(3))
            current = ep if m.group(1) == "Node(s)" else None
            continue
        if current is not None:
            n = _NODE_LINE.search(line)
            if n:
                nodes.append(PlacedNode(name=n.group(2), op_type=n.group(1), ep=current))
            else:
                current = None
    return counts, nodes


def _api_nodes(session: Any) -> list[PlacedNode] | None:
    getter = getattr(session, "get_provider_graph_assignment_info", None)
    if getter is None:
        return None
    try:
        subgraphs = getter()
    except Exception:  # noqa: BLE001 - recording was not enabled for this session
        return None
    return [
        PlacedNode(name=node.name, op_type=node.op_type, ep=sg.ep_name)
        for sg in subgraphs
        for node in sg.get_nodes()
    ]


def _candidates(name: str) -> list[str]:
    """Original-node names a placed (possibly fused) node may carry."""
    out = [name]
    base = name.removeprefix("fused ")
    while True:
        if base not in out:
            out.append(base)
        m = _FUSION_SUFFIX.match(base)
        if not m:
            break
        base = m.group(1)
    return out


def _flops_by_ep(
    placed: Sequence[PlacedNode], flops: FlopReport, default_ep: str | None
) -> tuple[dict[str, int], float | None]:
    ep_of: dict[str, str] = {}
    for node in placed:
        for cand in _candidates(node.name):
            ep_of.setdefault(cand, node.ep)
    by_ep: dict[str, int] = {}
    unmatched = 0
    for key, value in flops.by_node.items():
        base = key.split("#", 1)[0]
        ep = ep_of.get(key) or ep_of.get(base)
        if ep is None:
            unmatched += value
        else:
            by_ep[ep] = by_ep.get(ep, 0) + value
    matched_share = (1 - unmatched / flops.total) if flops.total else None
    if unmatched:
        majority = max(by_ep, key=by_ep.get) if by_ep else default_ep  # type: ignore[arg-type]
        if majority is not None:
            by_ep[majority] = by_ep.get(majority, 0) + unmatched
    return dict(sorted(by_ep.items(), key=lambda kv: -kv[1])), matched_share


def read_placement(
    session: Any,
    model: onnx.ModelProto | None = None,
    flops: FlopReport | None = None,
    requested_ep: str = "CPUExecutionProvider",
    *,
    log_text: str | None = None,
    prefer: Literal["api", "log"] = "api",
    node_count: int | None = None,
) -> Placement:
    """Where the nodes of ``session`` run, relative to ``requested_ep``.

    Uses the assignment API when the session was built with
    :func:`enable_placement_recording`, else ``log_text`` (from
    :func:`capture_session_log`), else the session's providers.
    ``prefer="log"`` tries the log first (for builds without the API, and tests).
    ``node_count`` stands in for ``model`` where only the graph's size is needed.
    """
    providers = tuple(session.get_providers())
    counts: dict[str, int] = {}
    placed: list[PlacedNode] = []
    source: Literal["api", "log", "providers"] | None = None
    for kind in ("api", "log") if prefer == "api" else ("log", "api"):
        if kind == "api":
            api = _api_nodes(session)
            if api:
                placed = api
                for node in api:
                    counts[node.ep] = counts.get(node.ep, 0) + 1
                source = "api"
                break
        elif log_text:
            counts, placed = parse_placement_log(log_text)
            if counts:
                source = "log"
                break
    if source is None:
        source = "providers"
        total = len(model.graph.node) if model is not None else (node_count or 0)
        counts = {providers[0]: total} if len(providers) == 1 and total else {}

    total_nodes = sum(counts.values()) if counts else 0
    if counts:
        share_nodes: float | None = (
            counts.get(requested_ep, 0) / total_nodes if total_nodes else 0.0
        )
    else:
        share_nodes = None
    flops_by_ep: dict[str, int] = {}
    share_flops: float | None = None
    matched: float | None = None
    if flops is not None and counts:
        only = next(iter(counts)) if len(counts) == 1 else None
        if only is not None:
            flops_by_ep, matched = {only: flops.total}, 1.0 if flops.total else None
        else:
            flops_by_ep, matched = _flops_by_ep(placed, flops, None)
        if flops.total:
            share_flops = flops_by_ep.get(requested_ep, 0) / flops.total
    fallback = tuple(
        (n.name, n.op_type, n.ep)
        for n in placed
        if n.ep != requested_ep and n.op_type not in MEMCPY_OPS
    )
    memcpy = sum(1 for n in placed if n.op_type in MEMCPY_OPS)
    return Placement(
        source=source,
        requested_ep=requested_ep,
        nodes_by_ep=dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        total_nodes=total_nodes,
        flops_by_ep=flops_by_ep,
        share_nodes_requested=share_nodes,
        share_flops_requested=share_flops,
        fallback_nodes=fallback,
        memcpy_nodes=memcpy,
        flops_matched_share=matched,
        providers=providers,
    )


def _provider_name(p: Any) -> str:
    return p[0] if isinstance(p, (tuple, list)) else str(p)


def detect_silent_cpu_fallback(session: Any, requested_providers: Sequence[Any]) -> str | None:
    """A message when an asked-for EP is missing from the built session, else None.

    ONNX Runtime's Python layer catches an EP that fails to initialise and
    retries with the CPU EP alone, printing at most a warning.
    ``requested_providers`` takes names or ``(name, options)`` pairs.
    """
    got = list(session.get_providers())
    asked = [_provider_name(p) for p in requested_providers]
    missing = [p for p in asked if p not in got and p != "CPUExecutionProvider"]
    if not missing:
        return None
    return (
        f"Asked for {', '.join(asked)} but the session runs on {', '.join(got)}: "
        f"{', '.join(missing)} failed to initialise and ONNX Runtime fell back silently. "
        "Run with the verbose log (log_severity_level=0) to see why."
    )
