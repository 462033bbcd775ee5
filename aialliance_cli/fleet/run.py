"""The driver: one Ray task per node, placed on that node, faults turned into records.

``fleet_detect()`` runs remote.node_detect on every node at once (it only reads
the machine). ``fleet_bench()`` runs remote.node_bench on each chosen node:

- placed with ``NodeAffinitySchedulingStrategy(node_id, soft=False)`` and
  reserving all of the node's CPUs, never retried elsewhere;
- at most one benchmark per machine at a time: nodes that share a machine
  (nodes.machine_groups) take turns, different machines run at once;
- a node that dies, loses its connection, runs past the node timeout or cannot
  run aia gives a failed ``aia.result/1`` record with its reason; every other
  node's results are kept;
- Ctrl-C (or SIGTERM) cancels what runs, starts nothing more and keeps what finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aialliance_cli.fleet.nodes import Node

CANCEL_GRACE_S = 15.0  # a cancelled node's worker gets this long to hand back what it kept
DETECT_TIMEOUT_S = 120.0
# Ray runs task workers at nice 15, and aia's measuring worker inherits it from the task:
# on a cluster aia did not start, the benchmark task asks for a worker at nice 0 (as
# Ray's own job supervisor does). A local cluster is started so (connect.py).
BENCH_RUNTIME_ENV = {"env_vars": {"RAY_worker_niceness": "0"}}


@dataclass(eq=False)  # compared by identity: the driver's queues hold these objects
class NodeOutcome:
    """What one node gave: its records (results, or one failed record) and its state."""

    node: Node
    status: str = "pending"  # pending | running | ok | failed | interrupted
    results: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    started: float | None = None
    seconds: float | None = None


@dataclass
class FleetOutcome:
    nodes: list[NodeOutcome]
    interrupted: bool = False

    @property
    def results(self) -> list[dict[str, Any]]:
        return [r for n in self.nodes for r in n.results]

    @property
    def exit_code(self) -> int:
        """130/143/129 interrupted (by the signal), 0 all ok, else as aia bench (1, or 2/3)."""
        from aialliance_cli.runtime.sweep import exit_code

        if self.interrupted:
            from aialliance_cli import interrupts

            return interrupts.exit_code()
        return exit_code(self.results, self.interrupted)


# ----------------------------------------------------------------------------- faults


def describe_failure(exc: BaseException, node: Node) -> tuple[str, str]:
    """(kind, reason) for a Ray error raised by a node's task."""
    import ray.exceptions as rex

    text = str(exc)
    where = f"node {node.name} ({node.host}, id {node.node_id[:12]})"
    if "No module named 'aialliance_cli'" in text:
        return "unavailable", (
            f"aia is not installed on {where}: install it there (pip install "
            '"aialliance-cli[fleet]", the same version as here)'
        )
    if isinstance(exc, rex.TaskCancelledError):
        return "interrupted", f"the benchmark on {where} was cancelled"
    if isinstance(exc, (rex.NodeDiedError, rex.WorkerCrashedError, rex.TaskUnschedulableError)):
        return "node-lost", (
            f"{where} died or left the cluster while it ran the benchmark "
            f"({type(exc).__name__}: {_first_line(text)})"
        )
    if isinstance(exc, (rex.RaySystemError, rex.ObjectLostError, rex.OwnerDiedError)):
        return "node-lost", f"lost {where}: {type(exc).__name__}: {_first_line(text)}"
    if isinstance(exc, ConnectionError):
        return "connection", f"lost the connection to the cluster while {where} ran: {text}"
    if isinstance(exc, rex.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, ModuleNotFoundError):
            return "unavailable", f"{where} lacks a module aia needs: {cause}"
        return "runtime", f"the task on {where} failed: {_first_line(str(cause or text))}"
    return "runtime", f"{where} failed: {type(exc).__name__}: {_first_line(text)}"


def _first_line(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return lines[0] if lines else ""


def failed_record(
    spec: dict[str, Any], node: Node, reason: str, kind: str, *, status: str = "failed"
) -> dict[str, Any]:
    """An aia.result/1 record for a node that gave none (the node's host as its machine)."""
    from aialliance_cli.fleet.remote import _stub_job
    from aialliance_cli.runtime.job import failed_result

    code = 130 if status == "interrupted" else (3 if kind == "unavailable" else 1)
    return failed_result(
        _stub_job(spec),
        reason,
        kind=kind,
        exit_code=code,
        status=status,
        machine={"hostname": node.host},
        onnxruntime={},
    )


def fleet_record(
    node: Node, *, cluster: str, local: bool, peers: Sequence[Node], runtime: Any = None
) -> dict[str, Any]:
    """The ``fleet`` key of every record: which node, of which cluster, sharing what."""
    return {
        "node_id": node.node_id,
        "node_name": node.name,
        "host": node.host,
        "address": node.address,
        "labels": dict(node.labels),
        "cluster": cluster,
        "local_cluster": local,
        "shares_machine_with": [p.name for p in peers if p.node_id != node.node_id],
        "runtime": runtime,
    }


def merge_node_results(
    node: Node,
    payload: dict[str, Any],
    *,
    cluster: str,
    local: bool,
    peers: Sequence[Node],
) -> list[dict[str, Any]]:
    """A node's returned records, each stamped with its fleet record; a wrong node is noted."""
    runtime = payload.get("runtime") or {}
    out = []
    for r in payload.get("results") or []:
        r = {**r, "warnings": list(r.get("warnings") or [])}
        r["fleet"] = fleet_record(node, cluster=cluster, local=local, peers=peers, runtime=runtime)
        from aialliance_cli import __version__

        theirs = runtime.get("aia_version")
        if theirs and theirs != __version__:
            r.setdefault("warnings", []).append(
                f"node {node.name} runs aia {theirs}, the driver aia {__version__}: install "
                "the same version on every node so that all run the same benchmark code"
            )
        ran_on = runtime.get("node_id")
        if ran_on and ran_on != node.node_id:  # NodeAffinity is hard: this would be a Ray bug
            r.setdefault("warnings", []).append(
                f"asked for node {node.node_id[:12]} but ran on {ran_on[:12]}"
            )
        out.append(r)
    return out


# ----------------------------------------------------------------------------- detect


def _affinity(node: Node) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node.node_id, soft=False)


def fleet_detect(
    nodes: Sequence[Node], *, timeout_s: float = DETECT_TIMEOUT_S
) -> list[tuple[Node, dict[str, Any] | None, str | None]]:
    """Every node's ``aia detect --json`` (plus its runtime), or the reason it gave none."""
    import ray

    from aialliance_cli.fleet import remote

    task = ray.remote(remote.node_detect)
    refs = {
        n.node_id: task.options(
            scheduling_strategy=_affinity(n), num_cpus=0, max_retries=0, name="aia-detect"
        ).remote()
        for n in nodes
    }
    out: list[tuple[Node, dict[str, Any] | None, str | None]] = []
    deadline = time.monotonic() + timeout_s
    try:
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
    except KeyboardInterrupt:
        for ref in refs.values():
            ray.cancel(ref, force=True)
        raise
    done = set(ready)
    for n in nodes:
        ref = refs[n.node_id]
        if ref not in done:
            ray.cancel(ref, force=True)
            out.append((n, None, f"no answer within {timeout_s:g} s"))
            continue
        try:
            doc = ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:
            out.append((n, None, describe_failure(exc, n)[1]))
            continue
        out.append((n, doc, None))
    return out


# ----------------------------------------------------------------------------- bench


Callback = Callable[[str, NodeOutcome], None]


def fleet_bench(
    nodes: Sequence[Node],
    groups: Sequence[Sequence[Node]],
    spec: dict[str, Any],
    *,
    cluster: str,
    local: bool,
    model: Any = None,
    node_timeout_s: float | None = None,
    on_event: Callback | None = None,
    poll_s: float = 0.25,
) -> FleetOutcome:
    """Benchmark every node of ``nodes``, the nodes of one group one after the other.

    ``model`` is an ObjectRef of the ONNX bytes (--ship-model) or None. ``on_event``
    sees ("running"|"ok"|"failed"|"interrupted", outcome) as each node changes state;
    an "ok"/"failed" outcome's records are final, so it can append them at once.
    """
    import ray

    from aialliance_cli.fleet import remote

    task = ray.remote(remote.node_bench)
    outcomes = {n.node_id: NodeOutcome(n) for n in nodes}
    peers_of = {n.node_id: list(g) for g in groups for n in g}
    queues = [[outcomes[n.node_id] for n in g] for g in groups]
    running: dict[Any, NodeOutcome] = {}  # ref -> outcome
    cancelling: dict[Any, tuple[NodeOutcome, float, str, str]] = {}  # ref -> (o, until, kind, why)
    result = FleetOutcome(nodes=[outcomes[n.node_id] for n in nodes])

    def emit(kind: str, o: NodeOutcome) -> None:
        if on_event is not None:
            on_event(kind, o)

    def finish(o: NodeOutcome, status: str, records: list[dict[str, Any]], why: str | None) -> None:
        o.status, o.reason = status, why
        o.seconds = time.monotonic() - (o.started or time.monotonic())
        peers = peers_of[o.node.node_id]
        for r in records:
            r.setdefault("fleet", fleet_record(o.node, cluster=cluster, local=local, peers=peers))
        o.results = records
        emit(status, o)

    def fail(o: NodeOutcome, kind: str, why: str, status: str = "failed") -> None:
        finish(o, status, [failed_record(spec, o.node, why, kind, status=status)], why)

    def start_next() -> None:
        busy = {id(q) for q in queues if any(o in running.values() for o in q)}
        busy |= {id(q) for q in queues if any(c[0] in q for c in cancelling.values())}
        for q in queues:
            if id(q) in busy:
                continue
            nxt = next((o for o in q if o.status == "pending"), None)
            if nxt is None:
                continue
            n = nxt.node
            args = (spec, model) if model is not None else (spec,)
            extra = {} if local else {"runtime_env": BENCH_RUNTIME_ENV}
            ref = task.options(
                scheduling_strategy=_affinity(n),
                num_cpus=n.cpus,  # the whole node: nothing else of Ray runs beside it
                max_retries=0,
                retry_exceptions=False,
                name=f"aia-bench-{n.name}",
                **extra,
            ).remote(*args)
            nxt.status, nxt.started = "running", time.monotonic()
            running[ref] = nxt
            emit("running", nxt)

    def collect(ref: Any, o: NodeOutcome, stop: tuple[str, str] | None = None) -> None:
        """The node's records; ``stop`` = (kind, why) when the driver cancelled it."""
        try:
            payload = ray.get(ref, timeout=30)
        except Exception as exc:
            kind, why = describe_failure(exc, o.node)
            if stop is not None and kind == "interrupted":
                kind, why = stop
            fail(o, kind, why, "interrupted" if kind == "interrupted" else "failed")
            return
        records = merge_node_results(
            o.node, payload, cluster=cluster, local=local, peers=peers_of[o.node.node_id]
        )
        if not records:
            kind, why = stop or ("interrupted", "the node stopped before a result existed")
            fail(o, kind, why, "interrupted" if kind == "interrupted" else "failed")
            return
        bad = [r for r in records if r.get("status") != "ok"]
        status = "failed" if bad else "ok"
        if payload.get("interrupted") or (stop is not None and stop[0] == "interrupted"):
            status = "interrupted"
        why = "; ".join(str(r.get("error")) for r in bad if r.get("error")) or None
        if stop is not None and stop[0] == "timeout":  # what it measured is kept, marked failed
            status, why = "failed", stop[1]
            for r in bad:
                r.update(status="failed", error=why, failure={"kind": "timeout", "exit_code": 1})
        finish(o, status, records, why)

    def cancel_all(kind: str, why: str) -> None:
        for ref, o in list(running.items()):
            ray.cancel(ref, force=False)
            cancelling[ref] = (o, time.monotonic() + CANCEL_GRACE_S, kind, why)
            del running[ref]

    def drain_cancelled(block: bool) -> None:
        while cancelling:
            refs = list(cancelling)
            wait_s = max(0.0, min(c[1] for c in cancelling.values()) - time.monotonic())
            ready, _ = ray.wait(refs, num_returns=1, timeout=wait_s if block else 0)
            for ref in ready:
                o, _, kind, why = cancelling.pop(ref)
                collect(ref, o, stop=(kind, why))
            now = time.monotonic()
            for ref, (o, until, kind, why) in list(cancelling.items()):
                if now >= until:
                    ray.cancel(ref, force=True)
                    del cancelling[ref]
                    fail(o, kind, why, "interrupted" if kind == "interrupted" else "failed")
            if not block:
                return

    try:
        start_next()
        while running or cancelling or any(o.status == "pending" for o in outcomes.values()):
            if running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=poll_s)
                for ref in ready:
                    collect(ref, running.pop(ref))
            elif cancelling:
                drain_cancelled(block=False)
                time.sleep(poll_s)
            now = time.monotonic()
            if node_timeout_s is not None:
                for ref, o in list(running.items()):
                    if o.started is not None and now - o.started > node_timeout_s:
                        ray.cancel(ref, force=False)
                        why = (
                            f"node {o.node.name} ran past --node-timeout {node_timeout_s:g} s; "
                            "its benchmark was stopped"
                        )
                        cancelling[ref] = (o, now + CANCEL_GRACE_S, "timeout", why)
                        del running[ref]
            drain_cancelled(block=False)
            start_next()
            if not running and not cancelling:
                if any(o.status == "pending" for o in outcomes.values()):
                    continue
                break
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM/SIGHUP (interrupts.Terminated)
        result.interrupted = True
        cancel_all("interrupted", "interrupted: the benchmark on this node was cancelled")
        try:
            drain_cancelled(block=True)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            for ref, (o, _, kind, why) in list(cancelling.items()):
                ray.cancel(ref, force=True)
                fail(o, kind, why, "interrupted")
            cancelling.clear()
    except ConnectionError as exc:  # Ray Client lost the cluster: every running node failed
        for _ref, o in list(running.items()):
            fail(o, "connection", f"lost the connection to the cluster: {exc}")
        running.clear()
        for o in outcomes.values():
            if o.status == "pending":
                fail(o, "connection", f"not run: lost the connection to the cluster: {exc}")
    return result
