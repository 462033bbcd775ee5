"""The plain benchmark loop: warm-up, then a fixed count or a fixed duration.

It times each ``session.run`` alone with ``perf_counter_ns`` and nothing else in
the timed region, so that aia adds nothing to what it measures (see
benchmarks/overhead.py). Ctrl-C stops it cleanly and keeps what was measured.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parent reads BenchSettings without loading numpy
    import numpy as np


@dataclass(frozen=True)
class BenchSettings:
    warmup: int = 10
    iterations: int | None = 100
    duration_s: float | None = None
    # Cap on iterations when running for a duration (protects memory on tiny models).
    max_iterations: int = 10_000_000
    # Keep measuring until the 95% interval of the median is within this percent
    # (checked between iterations), up to duration_s (default 60 s) or max_iterations.
    until_stable_pct: float | None = None
    min_iterations: int = 10
    # With a count: keep measuring until this many seconds have passed too (whichever is
    # longer, as benchmark_app and LoadGen do); 0 = exactly ``iterations``.
    min_time_s: float = 0.0


DEFAULT_MIN_TIME_S = 10.0  # when neither -n, --duration nor the profile say otherwise


def _latency_buffer() -> array[float]:
    return array("d")


@dataclass
class Measurement:
    # 8 bytes a sample, not a Python float object and a list slot (~32 bytes): a long run
    # of a fast model must not grow the worker's memory (numpy reads it without a copy).
    latencies_ms: array[float] = field(default_factory=_latency_buffer)
    wall_s: float = 0.0
    cpu_percent: float | None = None  # of one core; 200% = two cores busy
    cpu_percent_of_machine: float | None = None
    peak_rss_bytes: int | None = None
    interrupted: bool = False
    warmup_done: int = 0
    stable: bool | None = None  # with until_stable_pct: whether the interval got narrow enough
    other_cpu_percent: float | None = None  # CPU other processes used, % of the machine


MIN_WALL_FOR_CPU_S = 1.0


def _own_cpu_s() -> float:
    """User + system CPU seconds of this process (getrusage: finer than os.times)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _machine_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine so far (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        values = [int(x) for x in fields]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _peak_rss_bytes() -> int | None:
    """This process's peak RSS: Linux VmHWM, else getrusage.

    getrusage's ru_maxrss would include the parent's resident memory at fork
    time, which survives the exec on Linux; VmHWM belongs to the new image.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except Exception:
        return None
    # Linux reports KiB, macOS bytes.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def run_loop(
    session: Any,
    feeds: Sequence[Mapping[str, np.ndarray]],
    settings: BenchSettings,
    progress: Callable[[int, int | None, float], None] | None = None,
) -> Measurement:
    """Measure ``session.run`` over ``feeds`` (rotated, one set per iteration).

    ``progress(done, total, elapsed_s)`` is called outside the timed region about
    ten times a second at most.
    """
    m = Measurement()
    run = session.run
    n_sets = len(feeds)
    try:
        for i in range(settings.warmup):
            run(None, feeds[i % n_sets])
            m.warmup_done += 1
        stable_pct = settings.until_stable_pct
        duration = settings.duration_s
        if stable_pct is not None and duration is None:
            duration = 60.0
        total = settings.iterations if duration is None else None
        limit = settings.iterations if total is not None else settings.max_iterations
        deadline = None if duration is None else duration * 1e9
        min_ns = settings.min_time_s * 1e9 if total is not None else 0.0
        if min_ns > 0:  # a count and a minimum time, whichever is longer
            limit = settings.max_iterations
        next_check = max(settings.min_iterations, 10)
        if stable_pct is not None:
            from aialliance_cli.results.stats import is_stable

            m.stable = False
        machine_t0 = _machine_busy_s()
        proc_t0 = _own_cpu_s()
        t_start = time.perf_counter_ns()
        next_report = t_start
        lat = m.latencies_ms
        clock = time.perf_counter_ns
        i = 0
        while i < (limit or 0):
            feed = feeds[i % n_sets]
            t0 = clock()
            run(None, feed)
            t1 = clock()
            lat.append((t1 - t0) / 1e6)
            i += 1
            if deadline is not None and t1 - t_start >= deadline:
                break
            if min_ns and i >= (total or 0) and t1 - t_start >= min_ns:
                break
            if stable_pct is not None and i >= next_check:
                # Checked outside the timed region; about 10% more samples between checks.
                if is_stable(lat, stable_pct):
                    m.stable = True
                    break
                next_check = i + max(10, i // 10)
            if progress is not None and t1 >= next_report:
                expected = total
                if min_ns and total is not None:  # the runs the minimum time will take
                    expected = max(total, int(i * min_ns / max(1, t1 - t_start)))
                progress(i, expected, (t1 - t_start) / 1e9)
                next_report = t1 + 100_000_000
    except KeyboardInterrupt:
        m.interrupted = True
    finally:
        if "t_start" in locals():
            m.wall_s = (time.perf_counter_ns() - t_start) / 1e9
            busy = _own_cpu_s() - proc_t0
            # CPU clocks tick at 100 Hz for the machine-wide counters: below a second of
            # wall time the figures are mostly rounding, so none are given.
            if m.wall_s >= MIN_WALL_FOR_CPU_S:
                ncpu = os.cpu_count() or 1
                m.cpu_percent = min(100.0 * ncpu, 100.0 * busy / m.wall_s)
                m.cpu_percent_of_machine = m.cpu_percent / ncpu
                machine_t1 = _machine_busy_s()
                if machine_t0 is not None and machine_t1 is not None:
                    other = max(0.0, (machine_t1 - machine_t0) - busy)
                    m.other_cpu_percent = min(100.0, 100.0 * other / (m.wall_s * ncpu))
        m.peak_rss_bytes = _peak_rss_bytes()
    if progress is not None and m.latencies_ms:
        done = len(m.latencies_ms)
        total_runs = settings.iterations if settings.duration_s is None else None
        if settings.min_time_s and total_runs is not None:
            total_runs = max(total_runs, done)
        progress(done, total_runs, m.wall_s)
    return m
