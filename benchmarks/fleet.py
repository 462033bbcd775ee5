"""What does a fleet cost? `aia fleet bench --local 3` against `aia bench` run alone.

Each round runs, in alternating order so that machine noise hits both sides alike:

- fleet: ``aia fleet bench TARGET --local 3 -n N --out f.jsonl``: a throw-away local Ray
  cluster of three nodes, whose benchmarks run one after the other (one machine);
- alone: three ``aia bench TARGET -n N --json`` runs, one after the other.

It reports each node's p50 against the alone runs' p50 of the same round (target:
within 3%), the wall time of the fleet command against the three alone runs, and
the local cluster's start-up cost (read from the command's own "up in X s" line).

Without TARGET it builds a MatMul model (x[1,1024] @ W[1024,1024] -> Relu, about 1 ms
a run), so that rounds stay short on a small, shared machine.

Run:  python benchmarks/fleet.py [TARGET] [--rounds 3] [--iterations 300] [--nodes 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

print = partial(print, flush=True)  # noqa: A001 (progress shows while it runs)


def _aia(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "aialliance_cli", *args], capture_output=True, text=True
    )
    return p, time.perf_counter() - t0


def fleet_round(target: list[str], n: int, iterations: int, tmp: Path, i: int) -> dict:
    out = tmp / f"fleet-{i}.jsonl"
    p, wall = _aia("fleet", "bench", *target, "--local", str(n), "-n", str(iterations),
                   "--out", str(out))  # fmt: skip
    if p.returncode != 0:
        raise SystemExit(f"fleet run failed ({p.returncode}): {p.stderr[-2000:]}")
    up = re.search(r"local Ray cluster up in ([\d.]+) s", p.stderr)
    records = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
    return {
        "wall": wall,
        "startup": float(up.group(1)) if up else float("nan"),
        "p50": {r["fleet"]["node_name"]: r["metrics"]["latency_ms"]["p50"] for r in records},
    }


def alone_round(target: list[str], n: int, iterations: int) -> dict:
    p50s, walls = [], []
    for _ in range(n):
        p, wall = _aia("bench", *target, "-n", str(iterations), "--json")
        if p.returncode != 0:
            raise SystemExit(f"aia bench failed ({p.returncode}): {p.stderr[-2000:]}")
        p50s.append(json.loads(p.stdout)["metrics"]["latency_ms"]["p50"])
        walls.append(wall)
    return {"wall": sum(walls), "p50": p50s}


def _matmul_model(path: Path, k: int = 1024, n: int = 1024) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((k, n)).astype(np.float32), "W"
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "fleet_mm", [x], [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?", default=None, help="profile or model (a MatMul model)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--nodes", type=int, default=3)
    args = ap.parse_args()
    fleet, alone = [], []
    with tempfile.TemporaryDirectory() as d:
        target = [args.target or str(_matmul_model(Path(d) / "fleet_mm.onnx"))]
        _aia("bench", *target, "-n", "5")  # resolve/export the model once, outside the timing
        for i in range(args.rounds):
            order = ("fleet", "alone") if i % 2 == 0 else ("alone", "fleet")
            for side in order:
                if side == "fleet":
                    fleet.append(fleet_round(target, args.nodes, args.iterations, Path(d), i))
                    f = fleet[-1]
                    p50s = " ".join(f"{k} {v:.3f}" for k, v in sorted(f["p50"].items()))
                    print(
                        f"round {i + 1} fleet: wall {f['wall']:.1f} s (cluster up "
                        f"{f['startup']:.1f} s), p50 ms: {p50s}"
                    )
                else:
                    alone.append(alone_round(target, args.nodes, args.iterations))
                    a = alone[-1]
                    print(
                        f"round {i + 1} alone: wall {a['wall']:.1f} s for {args.nodes} runs, "
                        f"p50 ms: {' '.join(f'{x:.3f}' for x in a['p50'])}"
                    )
    # Per round: each node's p50 over the median alone p50 of the same round.
    ratios: dict[str, list[float]] = {}
    for f, a in zip(fleet, alone, strict=True):
        base = statistics.median(a["p50"])
        for node, p50 in f["p50"].items():
            ratios.setdefault(node, []).append(p50 / base)
    print(f"\n{args.rounds} rounds x {args.iterations} iterations, {args.nodes} nodes")
    worst = 0.0
    for node, rs in sorted(ratios.items()):
        r = statistics.median(rs)
        worst = max(worst, abs(r - 1))
        print(f"{node}: median per-round p50 ratio fleet/alone {r:.3f} ({(r - 1) * 100:+.1f}%)")
    all_r = statistics.median(r for rs in ratios.values() for r in rs)
    print(f"all nodes: median ratio {all_r:.3f} ({(all_r - 1) * 100:+.1f}%)")
    fw = statistics.median(f["wall"] for f in fleet)
    aw = statistics.median(a["wall"] for a in alone)
    up = statistics.median(f["startup"] for f in fleet)
    print(
        f"wall: fleet bench --local {args.nodes} {fw:.1f} s vs {args.nodes} sequential aia "
        f"bench {aw:.1f} s (x{fw / aw:.2f}); local cluster start-up {up:.1f} s; fleet "
        f"without start-up {fw - up:.1f} s (x{(fw - up) / aw:.2f})"
    )
    verdict = "PASS" if abs(all_r - 1) <= 0.03 else "FAIL"
    print(f"target: each node's p50 within 3% of aia bench alone -> {verdict}")


if __name__ == "__main__":
    main()
