"""How long the statistics of a 1,000,000-iteration benchmark take (issue 10: < 0.5 s).

    python benchmarks/stats_million.py [--n 1000000] [--repeats 5]

Times what ``aia bench`` computes once its loop is over, on latencies held the
way the loop holds them (``array("d")``): the latency summary with the median's
interval, the throughput interval, the noise checks and one stability check. For
contrast it also times the former throughput interval (a 2000-resample bootstrap
of the mean, 2000 x n draws) on a tenth of the samples, alternating with the
current path in the same run. Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from array import array

import numpy as np

from aialliance_cli.results.stats import (
    is_stable,
    latency_stats,
    noise_warnings,
    throughput_ci95,
)


def current(lat: array) -> None:
    stats = latency_stats(lat)
    throughput_ci95(lat, 1.0)
    noise_warnings(stats)
    is_stable(lat, 1.0)
    float(np.sum(np.asarray(lat)))


def former_bootstrap(lat: array) -> None:
    arr = np.asarray(lat)
    n = arr.size
    rng = np.random.default_rng(20240601)
    means = np.empty(2000)
    chunk = max(1, min(2000, 4_000_000 // n))
    for start in range(0, 2000, chunk):
        stop = min(start + chunk, 2000)
        means[start:stop] = arr[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    np.percentile(means, [2.5, 97.5])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    lat = array("d", rng.lognormal(math.log(0.05), 0.3, size=args.n).tolist())
    small = array("d", lat[: max(args.n // 10, 1)])
    now, old = [], []
    for _ in range(args.repeats):  # alternate, so that load on the machine hits both
        t0 = time.perf_counter()
        current(lat)
        now.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        former_bootstrap(small)
        old.append(time.perf_counter() - t0)
    med_now, med_old = statistics.median(now), statistics.median(old)
    print(f"statistics of {args.n:,} latencies: median {med_now:.3f} s over {args.repeats} runs")
    print(
        f"former bootstrap alone on {len(small):,}: median {med_old:.3f} s "
        f"(x{med_old / med_now:.0f} the whole current path on {args.n:,})"
    )
    print("target < 0.5 s:", "met" if med_now < 0.5 else "NOT met")


if __name__ == "__main__":
    main()
