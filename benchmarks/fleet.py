"""What does a fleet cost? `aia fleet bench --local 3` against `aia bench` run alone.

Each round runs, in an order that rotates from round to round so that machine noise
hits every side alike:

- fleet: ``aia fleet bench TARGET --local 3 -n N --out f.jsonl``: a throw-away local Ray
  cluster of three nodes, whose benchmarks run one after the other (one machine);
- alone: three ``aia bench TARGET -n N --json`` runs, one after the other;
- with ``--before DIR``, also "before": the fleet command of the aia in DIR (a checkout
  of an earlier commit, put first on PYTHONPATH), to show a change under the same noise.

It reports each node's p50 against the alone runs' median p50 of the same round
(target: within 3%), the same pooled over all rounds (median of every node's p50s over
the median of every alone p50), the wall time of the fleet command against the three
alone runs, and the local cluster's start-up (the command's own "up in X s" line).

Without TARGET it builds a MatMul model (x[ROWS,1024] @ W[1024,1024] -> Relu). With
``--rows 1`` a run is well under 0.1 ms and rounds stay short, but such a run is
dominated by how the two threads wake each other: `aia bench` alone spreads 0.05 to
0.19 ms from one process to the next on a 2-core VM. ``--rows 64`` (a few ms a run)
is what resolves a few per cent. ``--bench-args``
go to both sides (e.g. "--threads 1": one ONNX Runtime thread is far less disturbed
by whatever else wakes up on a 2-core machine than two threads that wait for each other).

Run:  python benchmarks/fleet.py [TARGET] [--rounds 10] [--iterations 300] [--nodes 3]
          [--rows 64] [--bench-args "--threads 1"] [--before /path/to/old/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

print = partial(print, flush=True)  # noqa: A001 (progress shows while it runs)


def _aia(*args: str, pythonpath: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "aialliance_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # `python -m` puts its cwd first: PYTHONPATH decides
    )
    return p, time.perf_counter() - t0


def fleet_round(
    target: list[str], n: int, iterations: int, extra: list[str], out: Path, pythonpath: str | None
) -> dict:
    p, wall = _aia("fleet", "bench", *target, "--local", str(n), "-n", str(iterations), *extra,
                   "--out", str(out), pythonpath=pythonpath)  # fmt: skip
    if p.returncode != 0:
        raise SystemExit(f"fleet run failed ({p.returncode}): {p.stderr[-2000:]}")
    up = re.search(r"local Ray cluster up in ([\d.]+) s", p.stderr)
    records = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
    return {
        "wall": wall,
        "startup": float(up.group(1)) if up else float("nan"),
        "p50": {r["fleet"]["node_name"]: r["metrics"]["latency_ms"]["p50"] for r in records},
    }


def alone_round(target: list[str], n: int, iterations: int, extra: list[str]) -> dict:
    p50s, walls = [], []
    for _ in range(n):
        p, wall = _aia("bench", *target, "-n", str(iterations), *extra, "--json")
        if p.returncode != 0:
            raise SystemExit(f"aia bench failed ({p.returncode}): {p.stderr[-2000:]}")
        doc = json.loads(p.stdout)
        doc = doc[0] if isinstance(doc, list) else doc  # --json gives a list of results
        p50s.append(doc["metrics"]["latency_ms"]["p50"])
        walls.append(wall)
    return {"wall": sum(walls), "p50": p50s}


def _matmul_model(path: Path, m: int = 1, k: int = 1024, n: int = 1024) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((k, n)).astype(np.float32), "W"
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "fleet_mm", [x], [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def summarize(name: str, fleet: list[dict], alone: list[dict], n: int) -> float:
    """Per-node and pooled ratios of one fleet side; returns the all-nodes median ratio."""
    ratios: dict[str, list[float]] = {}
    for f, a in zip(fleet, alone, strict=True):
        base = statistics.median(a["p50"])
        for node, p50 in f["p50"].items():
            ratios.setdefault(node, []).append(p50 / base)
    print(f"\n{name}:")
    alone_all = statistics.median(x for a in alone for x in a["p50"])
    for node, rs in sorted(ratios.items()):
        r = statistics.median(rs)
        pooled = statistics.median(f["p50"][node] for f in fleet) / alone_all
        print(
            f"  {node}: median per-round p50 ratio fleet/alone {r:.3f} ({(r - 1) * 100:+.1f}%); "
            f"pooled {pooled:.3f}"
        )
    all_r = statistics.median(r for rs in ratios.values() for r in rs)
    pooled_all = statistics.median(x for f in fleet for x in f["p50"].values()) / alone_all
    print(
        f"  all nodes: median per-round ratio {all_r:.3f} ({(all_r - 1) * 100:+.1f}%); pooled "
        f"{pooled_all:.3f} (median p50 {alone_all:.4f} ms alone)"
    )
    fw = statistics.median(f["wall"] for f in fleet)
    aw = statistics.median(a["wall"] for a in alone)
    up = statistics.median(f["startup"] for f in fleet)
    print(
        f"  wall: fleet bench --local {n} {fw:.1f} s vs {n} sequential aia bench {aw:.1f} s "
        f"(x{fw / aw:.2f}); local cluster start-up {up:.1f} s (range "
        f"{min(f['startup'] for f in fleet):.1f}-{max(f['startup'] for f in fleet):.1f}); "
        f"fleet without start-up {fw - up:.1f} s (x{(fw - up) / aw:.2f})"
    )
    return all_r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?", default=None, help="profile or model (a MatMul model)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rows", type=int, default=1, help="rows of the MatMul model's input")
    ap.add_argument("--bench-args", default="", help='options for both sides, e.g. "--threads 1"')
    ap.add_argument("--before", default=None, help="a checkout of an earlier aia: a third side")
    args = ap.parse_args()
    extra = shlex.split(args.bench_args)
    sides = ["fleet", "alone"] + (["before"] if args.before else [])
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    print(f"load average at start: {_load()}")
    with tempfile.TemporaryDirectory() as d:
        given = args.target and (str(Path(args.target).absolute()) if Path(args.target).exists()
                                 else args.target)  # fmt: skip
        target = [given or str(_matmul_model(Path(d) / "fleet_mm.onnx", args.rows))]
        _aia("bench", *target, "-n", "5")  # resolve/export the model once, outside the timing
        for i in range(args.rounds):
            k = i % len(sides)
            for side in sides[k:] + sides[:k]:
                if side == "alone":
                    a = alone_round(target, args.nodes, args.iterations, extra)
                    runs[side].append(a)
                    print(
                        f"round {i + 1} alone: wall {a['wall']:.1f} s for {args.nodes} runs, "
                        f"p50 ms: {' '.join(f'{x:.4f}' for x in a['p50'])}"
                    )
                    continue
                out = Path(d) / f"{side}-{i}.jsonl"
                pp = args.before if side == "before" else None
                f = fleet_round(target, args.nodes, args.iterations, extra, out, pp)
                runs[side].append(f)
                p50s = " ".join(f"{k} {v:.4f}" for k, v in sorted(f["p50"].items()))
                print(
                    f"round {i + 1} {side}: wall {f['wall']:.1f} s (cluster up "
                    f"{f['startup']:.1f} s), p50 ms: {p50s}"
                )
    print(
        f"\n{args.rounds} rounds x {args.iterations} iterations, {args.nodes} nodes, "
        f"{'model rows ' + str(args.rows) + ', ' if not args.target else ''}bench "
        f"args {extra or 'none'}; load average at end: {_load()}"
    )
    all_r = summarize("fleet (this aia)", runs["fleet"], runs["alone"], args.nodes)
    if args.before:
        summarize(f"before ({args.before})", runs["before"], runs["alone"], args.nodes)
    verdict = "PASS" if abs(all_r - 1) <= 0.03 else "FAIL"
    print(f"\ntarget: each node's p50 within 3% of aia bench alone -> {verdict}")


if __name__ == "__main__":
    main()
