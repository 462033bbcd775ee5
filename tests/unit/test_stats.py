"""Statistics on synthetic samples whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aialliance_cli.errors import BadInputError
from aialliance_cli.results.stats import (
    LatencyStats,
    _median_ci_ranks,
    compare_verdict,
    is_stable,
    latency_stats,
    noise_warnings,
    ratio,
    relative_ci_halfwidth,
    throughput_ci95,
)


def test_percentiles_of_1_to_101() -> None:
    s = latency_stats(list(range(1, 102)))
    assert s.count == 101
    assert (s.min, s.max) == (1.0, 101.0)
    assert s.p50 == 51.0
    assert s.p90 == 91.0
    assert s.p95 == 96.0
    assert s.p99 == 100.0
    assert s.mean == 51.0
    assert s.std == pytest.approx(np.std(np.arange(1, 102), ddof=1))
    lo, hi = s.median_ci95
    assert lo < 51 < hi


def test_linear_interpolation_between_samples() -> None:
    s = latency_stats([1.0, 2.0, 3.0, 4.0])
    assert s.p50 == 2.5  # halfway between the 2nd and 3rd samples
    assert s.p90 == pytest.approx(3.7)


def test_constant_samples_give_zero_std_and_degenerate_ci() -> None:
    s = latency_stats([5.0] * 50)
    assert s.std == 0.0
    assert s.median_ci95 == (5.0, 5.0)
    assert relative_ci_halfwidth(s) == 0.0
    assert is_stable([5.0] * 50, 1.0)


def test_small_samples() -> None:
    one = latency_stats([3.0])
    assert one.std == 0.0 and one.median_ci95 is None and one.p99 == 3.0
    assert latency_stats([1, 2, 3, 4, 5]).median_ci95 is None
    six = latency_stats([6, 1, 5, 2, 4, 3])
    assert six.median_ci95 == (1.0, 6.0)  # only [min, max] reaches 95% at n = 6
    assert relative_ci_halfwidth(one) == math.inf
    assert not is_stable([1.0, 1.0], 50)


def test_known_order_statistic_ranks() -> None:
    # Tabulated distribution-free 95% CIs of the median (e.g. Conover, table A3).
    assert _median_ci_ranks(10) == (2, 9)
    assert _median_ci_ranks(20) == (6, 15)
    assert _median_ci_ranks(100) == (40, 61)
    lo, hi = _median_ci_ranks(5000)  # normal approximation
    assert abs(lo - (2500 - 1.96 * math.sqrt(5000) / 2)) <= 1
    assert lo + hi == 5001


def test_to_dict_order_and_types() -> None:
    d = latency_stats(np.arange(1.0, 21.0)).to_dict()
    assert list(d) == [
        "count", "min", "mean", "p50", "p90", "p95", "p99", "max", "std", "median_ci95",
    ]  # fmt: skip
    assert isinstance(d["median_ci95"], list) and len(d["median_ci95"]) == 2
    assert all(type(v) is float for k, v in d.items() if k not in ("count", "median_ci95"))
    assert latency_stats([1.0]).to_dict()["median_ci95"] is None


def test_median_ci_coverage_on_seeded_normal_samples() -> None:
    true_median = 10.0
    hits = 0
    trials = 400
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        s = latency_stats(rng.normal(true_median, 2.0, size=60))
        lo, hi = s.median_ci95
        hits += lo <= true_median <= hi
    assert hits / trials >= 0.93


def test_bad_samples_are_bad_input() -> None:
    with pytest.raises(BadInputError):
        latency_stats([])
    with pytest.raises(BadInputError):
        latency_stats([1.0, float("nan")])
    with pytest.raises(BadInputError):
        latency_stats([-1.0, 2.0])
    with pytest.raises(BadInputError):
        is_stable([1.0] * 10, 0)


def test_throughput_ci_contains_point_estimate_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    samples = rng.normal(20.0, 1.0, size=200)
    lo, hi = throughput_ci95(samples, items_per_call=4)
    point = 4 * 1000.0 / samples.mean()
    assert lo < point < hi
    assert hi - lo < 0.05 * point
    assert throughput_ci95(samples, 4) == (lo, hi)
    assert throughput_ci95([10.0] * 5, 1) == (100.0, 100.0)
    assert throughput_ci95([10.0], 1) is None
    with pytest.raises(BadInputError):
        throughput_ci95(samples, 0)


def test_stability_rule() -> None:
    rng = np.random.default_rng(2)
    tight = rng.normal(100.0, 0.5, size=300)
    wide = rng.normal(100.0, 40.0, size=20).clip(1)
    assert is_stable(tight, 1.0)
    assert not is_stable(wide, 1.0)


def test_noise_warnings() -> None:
    clean = latency_stats(np.linspace(9.9, 10.1, 100))
    assert noise_warnings(clean, cpu_governor="performance", other_cpu_percent=1.0) == []
    assert noise_warnings(clean) == []  # unknowns are not warnings
    spread = latency_stats([1.0] * 60 + [10.0] * 40)
    msgs = noise_warnings(spread, cpu_governor="powersave", other_cpu_percent=35.0)
    text = " ".join(msgs)
    assert "coefficient of variation" in text
    assert "p99" in text
    assert "powersave" in text
    assert "35%" in text
    tail = latency_stats([10.0] * 98 + [50.0, 60.0])
    assert any("Long tail" in m for m in noise_warnings(tail))


def _stats(median: float, ci: tuple[float, float] | None) -> LatencyStats:
    return LatencyStats(10, median, median, median, median, median, median, median, 0.0, ci)


def test_compare_verdict_and_ratio() -> None:
    base = _stats(10.0, (9.5, 10.5))
    assert compare_verdict(base, _stats(8.0, (7.5, 8.5))) == "faster"
    assert compare_verdict(base, _stats(12.0, (11.5, 12.5))) == "slower"
    assert compare_verdict(base, _stats(10.4, (10.0, 10.8))) == "within noise"
    assert compare_verdict(base, _stats(5.0, None)) == "within noise"
    assert ratio(base, _stats(5.0, None)) == 0.5
    a = latency_stats(np.random.default_rng(3).normal(10, 0.2, 200))
    b = latency_stats(np.random.default_rng(4).normal(12, 0.2, 200))
    assert compare_verdict(a, b) == "slower"
    assert compare_verdict(b, a) == "faster"
    assert ratio(a, b) == pytest.approx(1.2, rel=0.02)


def test_throughput_ci_of_many_samples_is_the_normal_interval_and_agrees_with_bootstrap() -> None:
    rng = np.random.default_rng(7)
    samples = rng.lognormal(np.log(5.0), 0.2, size=2001)  # just past the bootstrap
    lo, hi = throughput_ci95(samples, 1)
    boot_lo, boot_hi = throughput_ci95(samples[:2000], 1)
    point = 1000.0 / samples.mean()
    assert lo < point < hi
    assert abs((hi - lo) / (boot_hi - boot_lo) - 1) < 0.15  # the same width, give or take
    many = rng.lognormal(np.log(5.0), 0.2, size=1_000_000)
    m_lo, m_hi = throughput_ci95(many, 1)
    assert m_lo < 1000.0 / many.mean() < m_hi


def test_latency_percentiles_match_numpy_linear() -> None:
    rng = np.random.default_rng(11)
    for n in (1, 2, 5, 101, 4099):
        a = rng.lognormal(size=n)
        s = latency_stats(a)
        ref = np.percentile(a, [50, 90, 95, 99], method="linear")
        assert np.allclose([s.p50, s.p90, s.p95, s.p99], ref, rtol=1e-12, atol=0)
