"""Latency statistics, confidence intervals, stability and noise checks.

Pure numpy. Percentiles use numpy's ``linear`` method (type 7 of Hyndman and
Fan: the percentile q of n sorted samples sits at position q/100 * (n - 1),
interpolated between its neighbours), so ``1..101`` gives p50 = 51 and
p90 = 91. The confidence interval of the median is distribution-free, built
from order statistics and the binomial distribution (docs/statistics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aialliance_cli.errors import BadInputError

Verdict = Literal["faster", "slower", "within noise"]

# Below this many samples the exact binomial is cheap; above it the normal
# approximation is within one rank of it.
_EXACT_BINOMIAL_MAX_N = 1000
_Z95 = 1.959963984540054
_BOOTSTRAP_RESAMPLES = 2000
_BOOTSTRAP_SEED = 20240601
# Above this many samples the bootstrap of the mean (2000 x n draws) gives way to the
# normal interval of the mean (the central limit theorem holds by then): the
# statistics of a million-iteration run stay well under a second
# (benchmarks/stats_million.py).
_BOOTSTRAP_MAX_N = 2000

HIGH_CV = 0.10
HIGH_TAIL_RATIO = 2.0
HIGH_OTHER_CPU_PERCENT = 10.0


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one configuration's latency samples, in milliseconds."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    std: float  # sample standard deviation (ddof=1); 0 for fewer than 2 samples
    median_ci95: tuple[float, float] | None  # None for fewer than 6 samples

    def to_dict(self) -> dict[str, Any]:
        """Plain floats in field order; ``median_ci95`` as a 2-list or None."""
        return {
            "count": int(self.count),
            "min": float(self.min),
            "mean": float(self.mean),
            "p50": float(self.p50),
            "p90": float(self.p90),
            "p95": float(self.p95),
            "p99": float(self.p99),
            "max": float(self.max),
            "std": float(self.std),
            "median_ci95": (
                [float(self.median_ci95[0]), float(self.median_ci95[1])]
                if self.median_ci95 is not None
                else None
            ),
        }


def _as_array(samples_ms: Sequence[float]) -> np.ndarray:
    arr = np.asarray(samples_ms, dtype=np.float64).ravel()
    if arr.size == 0:
        raise BadInputError("No latency samples: at least one timed run is needed for statistics.")
    if not np.all(np.isfinite(arr)):
        raise BadInputError("Latency samples contain NaN or infinity; every sample must be finite.")
    if np.any(arr < 0):
        raise BadInputError("Latency samples contain a negative value; latencies must be >= 0 ms.")
    return arr


def _median_ci_ranks(n: int) -> tuple[int, int] | None:
    """1-based ranks (l, u) with P(x_(l) <= median <= x_(u)) >= 95%, or None.

    The number B of samples below the true median is Binomial(n, 1/2), so
    [x_(l), x_(u)] with u = n + 1 - l covers it with probability
    1 - 2 P(B <= l - 1). The largest l keeping that >= 95% is chosen.
    """
    if n < 6:  # even [min, max] covers with only 1 - 2/2^n < 95%
        return None
    if n <= _EXACT_BINOMIAL_MAX_N:
        total = 2**n
        cdf = 0  # P(B <= l - 1) * 2^n, kept as an exact integer
        lower = 0
        for k in range(n // 2 + 1):
            cdf += math.comb(n, k)
            if cdf / total > 0.025:
                break
            lower = k + 1  # B <= k has prob <= 2.5%, so rank k+1 is a valid lower bound
        if lower < 1:
            return None
    else:
        lower = math.floor(n / 2 - _Z95 * math.sqrt(n) / 2)
        lower = max(lower, 1)
    upper = n + 1 - lower
    return lower, upper


def _linear_quantile(ordered: np.ndarray, q: float) -> float:
    """numpy's ``linear`` percentile ``q`` of already sorted samples."""
    pos = q / 100.0 * (ordered.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, ordered.size - 1)
    frac = pos - lo
    a, b = float(ordered[lo]), float(ordered[hi])
    return a + (b - a) * frac if frac else a


def latency_stats(samples_ms: Sequence[float]) -> LatencyStats:
    """Summarise latency samples (ms); raises BadInputError when there are none."""
    arr = _as_array(samples_ms)
    n = int(arr.size)
    # One sort serves the four percentiles and the interval's order statistics: numpy's
    # multi-quantile percentile partitions once per quantile and is slower past 1e5.
    ordered = np.sort(arr)
    p50, p90, p95, p99 = (_linear_quantile(ordered, q) for q in (50, 90, 95, 99))
    ranks = _median_ci_ranks(n)
    ci: tuple[float, float] | None = None
    if ranks is not None:
        ci = (float(ordered[ranks[0] - 1]), float(ordered[ranks[1] - 1]))
    return LatencyStats(
        count=n,
        min=float(ordered[0]),
        mean=float(arr.mean()),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        max=float(ordered[-1]),
        std=float(arr.std(ddof=1)) if n >= 2 else 0.0,
        median_ci95=ci,
    )


def throughput_ci95(
    samples_ms: Sequence[float], items_per_call: float = 1.0
) -> tuple[float, float] | None:
    """95% CI of throughput (items/s) for calls made one after another.

    Throughput is ``items_per_call / mean latency``; the interval is a
    percentile bootstrap of the mean latency (fixed seed, so the same samples
    always give the same interval), inverted. None for fewer than 2 samples
    or a zero mean.
    """
    if items_per_call <= 0:
        raise BadInputError(f"items_per_call must be > 0, got {items_per_call}.")
    arr = _as_array(samples_ms)
    n = arr.size
    if n < 2 or arr.mean() <= 0:
        return None
    if n > _BOOTSTRAP_MAX_N:
        # The bootstrap distribution of the mean has the spread std(ddof=0) / sqrt(n).
        mean = float(arr.mean())
        half = _Z95 * float(arr.std()) / math.sqrt(n)
        lo_mean, hi_mean = mean - half, mean + half
    else:
        rng = np.random.default_rng(_BOOTSTRAP_SEED)
        idx = rng.integers(0, n, size=(_BOOTSTRAP_RESAMPLES, n))  # at most 4M draws
        means = arr[idx].mean(axis=1)
        lo_mean, hi_mean = np.percentile(means, [2.5, 97.5])
    per_s = items_per_call * 1000.0
    low = per_s / hi_mean if hi_mean > 0 else math.inf
    high = per_s / lo_mean if lo_mean > 0 else math.inf
    return float(low), float(high)


def relative_ci_halfwidth(stats: LatencyStats) -> float:
    """Half-width of the median's 95% CI divided by the median (inf without a CI)."""
    if stats.median_ci95 is None:
        return math.inf
    lo, hi = stats.median_ci95
    half = (hi - lo) / 2.0
    if stats.p50 == 0:
        return 0.0 if half == 0 else math.inf
    return float(half / stats.p50)


def is_stable(samples_ms: Sequence[float], pct: float) -> bool:
    """True when the median's 95% CI half-width is within ``pct`` % of the median."""
    if not (pct > 0 and math.isfinite(pct)):
        raise BadInputError(f"--until-stable takes a percentage > 0 (e.g. 2 for 2%), got {pct}.")
    if len(samples_ms) < 6:
        return False
    return relative_ci_halfwidth(latency_stats(samples_ms)) * 100.0 <= pct


def noise_warnings(
    stats: LatencyStats,
    *,
    cpu_governor: str | None = None,
    other_cpu_percent: float | None = None,
) -> list[str]:
    """Reasons to distrust a measurement, one sentence each (empty when clean)."""
    out: list[str] = []
    if stats.mean > 0 and stats.count >= 2:
        cv = stats.std / stats.mean
        if cv > HIGH_CV:
            out.append(
                f"High spread: the coefficient of variation is {cv:.0%} (> {HIGH_CV:.0%}); "
                "run longer or quiet the machine."
            )
    if stats.p50 > 0 and stats.p99 / stats.p50 > HIGH_TAIL_RATIO:
        out.append(
            f"Long tail: p99 is {stats.p99 / stats.p50:.1f}x p50 (> {HIGH_TAIL_RATIO:g}x); "
            "look for interference, paging or thermal throttling."
        )
    if stats.median_ci95 is None:
        out.append(f"Only {stats.count} samples: too few for a confidence interval (need >= 6).")
    if cpu_governor is not None and cpu_governor.strip() and cpu_governor.strip() != "performance":
        out.append(
            f"CPU frequency governor is '{cpu_governor.strip()}', not 'performance': clocks "
            "may ramp during the run (sudo cpupower frequency-set -g performance)."
        )
    if other_cpu_percent is not None and other_cpu_percent > HIGH_OTHER_CPU_PERCENT:
        out.append(
            f"Other processes used {other_cpu_percent:.0f}% CPU during the run "
            f"(> {HIGH_OTHER_CPU_PERCENT:g}%); results may be noisy."
        )
    return out


def compare_verdict(base: LatencyStats, other: LatencyStats) -> Verdict:
    """Is ``other`` faster or slower than ``base``? Overlapping median CIs mean noise.

    Without a CI on either side (fewer than 6 samples) the answer is
    "within noise": nothing can be claimed.
    """
    if base.median_ci95 is None or other.median_ci95 is None:
        return "within noise"
    b_lo, b_hi = base.median_ci95
    o_lo, o_hi = other.median_ci95
    if o_hi < b_lo:
        return "faster"
    if o_lo > b_hi:
        return "slower"
    return "within noise"


def ratio(base: LatencyStats, other: LatencyStats) -> float:
    """Median latency of ``other`` over that of ``base`` (< 1: other is faster)."""
    if base.p50 == 0:
        return 1.0 if other.p50 == 0 else math.inf
    return float(other.p50 / base.p50)
