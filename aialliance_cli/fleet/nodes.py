"""The nodes of a connected Ray cluster, choosing some (--nodes, --select), grouping by machine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aialliance_cli.errors import BadInputError
from aialliance_cli.fleet.connect import LOCAL_LABEL

# Labels Ray sets itself; not worth showing or selecting on.
_RAY_LABEL_PREFIX = "ray.io/"
_HIDDEN_RESOURCES = ("node:", "memory", "object_store_memory", "accelerator_type:")


@dataclass(frozen=True)
class Node:
    """One alive Ray node: its id, a short name, the host it runs on, labels and resources."""

    node_id: str
    name: str
    host: str
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, float] = field(default_factory=dict)
    is_head: bool = False

    @property
    def cpus(self) -> float:
        return float(self.resources.get("CPU", 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "name": self.name,
            "host": self.host,
            "address": self.address,
            "labels": dict(self.labels),
            "resources": dict(self.resources),
            "head": self.is_head,
        }


def nodes_from_ray(raw: Iterable[Mapping[str, Any]]) -> list[Node]:
    """``ray.nodes()`` -> the alive nodes, named by their ``aia.node`` label or host.

    Two nodes with the same name (several nodes of one host) get the first six
    characters of their node id appended, so that every name is unique.
    """
    alive = [n for n in raw if n.get("Alive")]
    out = []
    for n in alive:
        labels = {
            str(k): str(v)
            for k, v in (n.get("Labels") or {}).items()
            if not str(k).startswith(_RAY_LABEL_PREFIX)
        }
        host = str(n.get("NodeManagerHostname") or n.get("NodeManagerAddress") or "?")
        resources = {str(k): float(v) for k, v in (n.get("Resources") or {}).items()}
        out.append(
            Node(
                node_id=str(n["NodeID"]),
                name=labels.get(LOCAL_LABEL) or host,
                host=host,
                address=str(n.get("NodeManagerAddress") or "?"),
                labels=labels,
                resources=resources,
                is_head="node:__internal_head__" in resources,
            )
        )
    counts: dict[str, int] = {}
    for node in out:
        counts[node.name] = counts.get(node.name, 0) + 1
    out = [
        Node(**{**n.__dict__, "name": f"{n.name}-{n.node_id[:6]}"}) if counts[n.name] > 1 else n
        for n in out
    ]
    # Local clusters list local-0, local-1, ... in order; others by name.
    return sorted(out, key=lambda n: (n.name, n.node_id))


def list_nodes() -> list[Node]:
    """The alive nodes of the connected cluster."""
    import ray

    return nodes_from_ray(ray.nodes())


def _available(nodes: Sequence[Node]) -> str:
    return "; ".join(
        f"{n.name} (id {n.node_id[:12]}…"
        + (", " + ", ".join(f"{k}={v}" for k, v in n.labels.items()) if n.labels else "")
        + ", resources "
        + ", ".join(f"{k}={v:g}" for k, v in _shown_resources(n).items())
        + ")"
        for n in nodes
    )


def _shown_resources(n: Node) -> dict[str, float]:
    return {k: v for k, v in n.resources.items() if not k.startswith(_HIDDEN_RESOURCES)}


def find_node(nodes: Sequence[Node], ref: str) -> Node:
    """A node by its full id, a unique id prefix (6+ characters) or its name."""
    ref = ref.strip()
    exact = [n for n in nodes if ref in (n.node_id, n.name)]
    if exact:
        return exact[0]
    prefix = [n for n in nodes if len(ref) >= 6 and n.node_id.startswith(ref)]
    if len(prefix) == 1:
        return prefix[0]
    why = "matches several nodes" if prefix else "is no alive node's id or name"
    raise BadInputError(
        f"--nodes: '{ref}' {why}. The cluster's alive nodes: {_available(nodes)} "
        "(see them with `aia fleet detect`)"
    )


def parse_selector(text: str) -> tuple[str, str | None]:
    """``"key=value"`` (a label, or a resource's amount) or ``"GPU"`` (a resource above 0)."""
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not key or (sep and not value):
        raise BadInputError(
            f"--select '{text}' is not KEY=VALUE (a node label) or a resource name such as GPU"
        )
    return key, value if sep else None


def matches(node: Node, selector: tuple[str, str | None]) -> bool:
    key, value = selector
    if value is None:
        return node.resources.get(key, 0.0) > 0 or key in node.labels
    if key in node.labels:
        return node.labels[key] == value
    if key in node.resources:
        try:
            return node.resources[key] >= float(value)
        except ValueError:
            return False
    return False


def select_nodes(
    nodes: Sequence[Node], ids: Sequence[str] | None = None, select: Sequence[str] | None = None
) -> list[Node]:
    """The nodes asked for: by ``ids`` (in that order), then those matching every selector."""
    if not nodes:
        raise BadInputError("the Ray cluster has no alive node")
    chosen = list(nodes)
    if ids:
        refs = [r for item in ids for r in item.split(",") if r.strip()]
        found = [find_node(nodes, r) for r in refs]
        chosen = list({n.node_id: n for n in found}.values())
    selectors = [parse_selector(s) for s in select or ()]
    if selectors:
        kept = [n for n in chosen if all(matches(n, s) for s in selectors)]
        if not kept:
            raise BadInputError(
                f"--select {' '.join(select or ())} matches none of the "
                f"{'given' if ids else 'alive'} nodes: {_available(chosen)}. Select on a "
                "label (KEY=VALUE, from `ray start --labels`) or a resource (GPU, or "
                "RESOURCE=N for at least N)"
            )
        chosen = kept
    return chosen


def machine_groups(nodes: Sequence[Node], *, local: bool = False) -> list[list[Node]]:
    """Nodes that share one physical machine, grouped (all of them for a local cluster).

    Benchmarks within a group run one after the other; groups run at the same time.
    A machine is known by its host name or its IP address (either one shared joins).
    """
    if local:
        return [list(nodes)] if nodes else []
    groups: list[list[Node]] = []
    keys: list[set[str]] = []
    for n in nodes:
        mine = {f"host:{n.host}", f"ip:{n.address}"}
        hits = [i for i, k in enumerate(keys) if k & mine]
        if not hits:
            groups.append([n])
            keys.append(mine)
            continue
        first = hits[0]
        for i in reversed(hits[1:]):  # n joins machines that were apart
            groups[first] += groups.pop(i)
            keys[first] |= keys.pop(i)
        groups[first].append(n)
        keys[first] |= mine
    return groups
