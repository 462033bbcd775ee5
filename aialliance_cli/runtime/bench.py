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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BenchSettings:
    warmup: int = 10
    iterations: int | None = 100
    duration_s: float | None = None
    # Cap on iterations when running for a duration (protects memory on tiny models).
    max_iterations: int = 10_000_000


@dataclass
class Measurement:
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_percent: float | None = None  # of one core; 200% = two cores busy
    cpu_percent_of_machine: float | None = None
    peak_rss_bytes: int | None = None
    interrupted: bool = False
    warmup_done: int = 0


def _peak_rss_bytes() -> int | None:
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
        total = settings.iterations if settings.duration_s is None else None
        limit = settings.iterations if total is not None else settings.max_iterations
        deadline = None if settings.duration_s is None else settings.duration_s * 1e9
        proc_t0 = os.times()
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
            if progress is not None and t1 >= next_report:
                progress(i, total, (t1 - t_start) / 1e9)
                next_report = t1 + 100_000_000
    except KeyboardInterrupt:
        m.interrupted = True
    finally:
        if "t_start" in locals():
            m.wall_s = (time.perf_counter_ns() - t_start) / 1e9
            proc_t1 = os.times()
            busy = (proc_t1.user - proc_t0.user) + (proc_t1.system - proc_t0.system)
            if m.wall_s > 0:
                m.cpu_percent = 100.0 * busy / m.wall_s
                m.cpu_percent_of_machine = m.cpu_percent / (os.cpu_count() or 1)
        m.peak_rss_bytes = _peak_rss_bytes()
    if progress is not None and m.latencies_ms:
        progress(len(m.latencies_ms), settings.iterations if settings.duration_s is None else None,
                 m.wall_s)
    return m
