"""The bench loop, input synthesis and the peak estimate on real sessions and known inputs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from aialliance_cli.hardware.inventory import CpuInfo
from aialliance_cli.hardware.peak import estimate_cpu_peak, flops_per_cycle
from aialliance_cli.runtime import inputs as I
from aialliance_cli.runtime.bench import BenchSettings, run_loop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402


@pytest.fixture
def session(tmp_path):
    return ort.InferenceSession(
        str(matmul_model(tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )


def _feeds(sess, n=3):
    specs = I.input_specs(sess)
    dims = I.resolve_dims(specs, {"batch": 2})
    return [I.build_feeds(specs, dims, seed=s) for s in range(n)]


def test_fixed_iterations_and_rotation(session):
    feeds = _feeds(session)
    assert not np.array_equal(feeds[0]["x"], feeds[1]["x"])  # honest inputs: distinct sets
    m = run_loop(session, feeds, BenchSettings(warmup=3, iterations=25))
    assert len(m.latencies_ms) == 25 and m.warmup_done == 3
    assert all(x > 0 for x in m.latencies_ms)
    assert m.peak_rss_bytes > 0
    if m.wall_s < 1.0:  # too short for CPU figures at 100 Hz accounting: none are given
        assert m.cpu_percent is None and m.other_cpu_percent is None


def test_cpu_figures_on_a_second_of_work(session):
    m = run_loop(session, _feeds(session), BenchSettings(warmup=0, iterations=None, duration_s=1.2))
    assert m.cpu_percent is not None and 0 < m.cpu_percent <= 100 * (os.cpu_count() or 1)
    assert m.other_cpu_percent is None or 0 <= m.other_cpu_percent <= 100


class _Interrupting:
    """Wraps a real session; raises KeyboardInterrupt on the k-th measured call."""

    def __init__(self, sess, k):
        self.sess, self.k, self.calls = sess, k, 0

    def run(self, outputs, feed):
        self.calls += 1
        if self.calls == self.k:
            raise KeyboardInterrupt
        return self.sess.run(outputs, feed)


def test_interrupt_keeps_measured(session):
    m = run_loop(_Interrupting(session, 2 + 8), _feeds(session), BenchSettings(2, 100))
    assert m.interrupted and len(m.latencies_ms) == 7


def test_until_stable_stops_early_on_a_steady_model(session):
    s = BenchSettings(warmup=5, iterations=None, duration_s=20, until_stable_pct=50.0)
    m = run_loop(session, _feeds(session), s)
    assert m.stable is True and len(m.latencies_ms) >= 10


def test_dims_aliases_and_defaults():
    specs = [
        I.InputSpec("input_ids", "int64", ("batch_size", "sequence_length")),
        I.InputSpec("pixel", "float32", ("N", 3, "height", "width")),
    ]
    dims = I.resolve_dims(specs, {"batch": 4})
    assert dims == {"batch_size": 4, "sequence_length": 128, "N": 4, "height": 224, "width": 224}
    with pytest.raises(Exception, match="no dimension named 'channels'"):
        I.resolve_dims(specs, {"channels": 3})


def test_synthesized_ids_masks_and_positions():
    rng = np.random.default_rng(0)
    ids = I.synthesize(I.InputSpec("input_ids", "int64", ()), (2, 64), rng, vocab=30522)
    assert ids.min() >= 1000 and ids.max() < 30522
    mask = I.synthesize(I.InputSpec("attention_mask", "int64", ()), (2, 64), rng)
    assert (mask == 1).all()
    pos = I.synthesize(I.InputSpec("position_ids", "int64", ()), (2, 5), rng)
    assert pos.tolist() == [[0, 1, 2, 3, 4]] * 2
    tt = I.synthesize(I.InputSpec("token_type_ids", "int32", ()), (1, 4), rng)
    assert tt.dtype == np.int32 and (tt == 0).all()


@pytest.mark.parametrize(
    ("features", "arch", "vendor", "per_cycle"),
    [
        (("avx512f", "avx2", "fma"), "x86_64", "intel", 64),
        (("avx2", "fma"), "x86_64", "amd", 32),
        (("avx",), "x86_64", "intel", 16),
        (("neon", "sve"), "aarch64", "arm", 32),
    ],
)
def test_peak_estimate(features, arch, vendor, per_cycle):
    cpu = CpuInfo(vendor, "x", arch, 8, 16, 1, 1, features=features, max_mhz=3000.0)
    assert flops_per_cycle(cpu)[0] == per_cycle
    est = estimate_cpu_peak(cpu, threads=4)
    assert est.cores == 4 and est.gflops == pytest.approx(4 * 3.0 * per_cycle)
    assert estimate_cpu_peak(CpuInfo(vendor, "x", arch, None, None, 1, 1)).gflops is None


def test_long_runs_keep_latencies_compact(session):
    """aia's own bookkeeping: 8 bytes a sample, not a Python float in a list (~32 bytes)."""
    import tracemalloc

    feeds = _feeds(session)
    n = 30_000
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        m = run_loop(session, feeds, BenchSettings(warmup=0, iterations=n))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert len(m.latencies_ms) == n
    # The buffer (240 kB) and one copy while it grows; a list of floats needs ~960 kB.
    assert peak < 700 * 1024, peak
