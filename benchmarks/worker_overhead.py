"""Does a fresh worker process cost anything? Worker vs main-process p50 on the default profile.

`aia bench` measures every sweep configuration in a fresh worker process
(`python -m aialliance_cli.runtime.worker`). This script measures the same
configuration (the default profile, all-MiniLM-L6-v2, batch 1, sequence 128)
in this process and in a worker, alternately, so that machine noise hits both
sides alike, and compares the median of the per-round p50 latencies.
Target: the worker adds at most 3%.

It also reports the wall time of one worker configuration against one
in-process configuration (process start, imports, session build): the price
of isolation per configuration, paid outside the timed region.

Run:  python benchmarks/worker_overhead.py [--rounds 6] [--iterations 200] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

from aialliance_cli.runtime.api import Overrides, prepare_target
from aialliance_cli.runtime.sweep import SweepPoint, make_job, run_in_process, run_worker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?", default=None, help="profile or model (default profile)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    target = prepare_target(args.target)
    ov = Overrides(warmup=args.warmup, iterations=args.iterations, input_sets=4)
    job = make_job(target, ov, SweepPoint(threads=args.threads), label=target.name)
    p50 = {"worker": [], "in-process": []}
    wall = {"worker": [], "in-process": []}
    for i in range(args.rounds):
        order = ("worker", "in-process") if i % 2 == 0 else ("in-process", "worker")
        for side in order:
            t0 = time.perf_counter()
            res = run_worker(job) if side == "worker" else run_in_process(job)
            wall[side].append(time.perf_counter() - t0)
            if res["status"] != "ok":
                raise SystemExit(f"{side} failed: {res.get('error')}")
            p50[side].append(res["metrics"]["latency_ms"]["p50"])
            print(
                f"round {i + 1} {side:>10}: p50 {p50[side][-1]:8.3f} ms  "
                f"(configuration wall {wall[side][-1]:.2f} s)"
            )
    w, m = statistics.median(p50["worker"]), statistics.median(p50["in-process"])
    # Per-round ratios pair each worker run with its neighbour: steadier than a ratio of medians.
    ratio = statistics.median(a / b for a, b in zip(p50["worker"], p50["in-process"], strict=True))
    print(f"\n{target.name}: {args.rounds} rounds x {args.iterations} iterations")
    print(
        f"median p50  worker {w:.3f} ms   in-process {m:.3f} ms   "
        f"median per-round ratio {ratio:.3f}"
    )
    print(
        f"median wall per configuration  worker {statistics.median(wall['worker']):.2f} s   "
        f"in-process {statistics.median(wall['in-process']):.2f} s"
    )
    verdict = "PASS" if ratio <= 1.03 else "FAIL"
    print(f"target: the worker adds <= 3% to the p50 -> {verdict} ({(ratio - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
