"""The range of every number a user gives aia, checked once before any work starts.

Command-line options (``--iterations``, ``--timeout``, ...) and their profile keys share
one table: ``check(name, value)`` refuses ``nan``, ``inf``, negative and absurd values
with a ``BadInputError`` (exit 2) that names the option or key. ``Overrides`` (what the
command line says) is checked as a whole by ``check_overrides``; the profile schema
uses the same bounds (``aialliance_cli.profiles.schema``). docs/commands.md lists them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aialliance_cli.errors import BadInputError

WEEK_S = 7 * 24 * 3600  # the longest duration or timeout aia accepts
MAX_ITERATIONS = 10_000_000
MAX_WARMUP = 1_000_000
MAX_DIM = 2**31 - 1  # ONNX Runtime's tensor dimensions are int64, but 2^31 elements is absurd
MAX_COUNT = 1_000_000_000  # queries, samples and other counts
MAX_TOKENS = 2**20  # prompt and generated lengths: beyond any model's context
THREADS_PER_CORE = 4  # more threads than 4x the logical cores only thrash


def logical_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def max_threads() -> int:
    return THREADS_PER_CORE * logical_cores()


@dataclass(frozen=True)
class Bound:
    """``low < value`` (``low <= value`` if ``low_ok``) and ``value <= high``."""

    low: float
    high: float | None
    low_ok: bool = False
    integer: bool = False
    unit: str = ""
    why: str = ""


def _bounds(name: str) -> Bound | None:
    head = name.split()[0] if name.strip() else name
    fixed = {
        "--warmup": Bound(0, MAX_WARMUP, low_ok=True, integer=True),
        "--iterations": Bound(0, MAX_ITERATIONS, integer=True),
        "-n": Bound(0, MAX_ITERATIONS, integer=True),
        "--duration": Bound(0, WEEK_S, unit=" seconds"),
        "--min-time": Bound(0, WEEK_S, low_ok=True, unit=" seconds"),
        "--timeout": Bound(0, WEEK_S, unit=" seconds"),
        "--min-duration": Bound(0, WEEK_S, unit=" seconds"),
        "--until-stable": Bound(0, 100, unit=" percent"),
        "--min-coverage": Bound(0, 100, low_ok=True, unit=" percent"),
        "--target-qps": Bound(0, 1e9),
        "--target-latency-ms": Bound(0, WEEK_S * 1000.0),
        "--min-queries": Bound(0, MAX_COUNT, integer=True),
        "--samples-per-query": Bound(0, MAX_COUNT, integer=True),
        "--batch": Bound(0, MAX_DIM, integer=True),
        "--dim": Bound(0, MAX_DIM, integer=True),
        "--repeat": Bound(0, MAX_COUNT, integer=True),
        "--budget": Bound(0, WEEK_S, unit=" seconds"),
        "--prompt-len": Bound(0, MAX_TOKENS, integer=True, unit=" tokens"),
        "--gen-len": Bound(0, MAX_TOKENS, integer=True, unit=" tokens"),
        "--node-timeout": Bound(0, WEEK_S, unit=" seconds"),
    }
    if head in fixed:
        return fixed[head]
    if head in ("--threads", "--inter-op-threads", "--local"):
        cores = logical_cores()
        return Bound(
            0,
            max_threads(),
            low_ok=True,
            integer=True,
            why=f" ({THREADS_PER_CORE} x the {cores} logical core(s) of this machine)",
        )
    return None


def check(name: str, value: Any, bound: Bound | None = None) -> None:
    """Refuse ``value`` for option/key ``name`` if it is not finite or out of its range."""
    if value is None:
        return
    bound = bound or _bounds(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{name} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInputError(f"{name} must be a finite number, got {value}")
    if bound is None:
        return
    if bound.integer and value != int(value):
        raise BadInputError(f"{name} must be a whole number, got {value:g}")
    too_low = value < bound.low or (value == bound.low and not bound.low_ok)
    too_high = bound.high is not None and value > bound.high
    if too_low or too_high:
        low = f"{_num(bound.low)} or more" if bound.low_ok else f"more than {_num(bound.low)}"
        high = f" and at most {_num(bound.high)}{bound.unit}" if bound.high is not None else ""
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        raise BadInputError(f"{name} must be {low}{high}{bound.why}, got {shown}")


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def check_threads(name: str, value: int | None) -> None:
    """Thread counts: 0 (ONNX Runtime's default) up to 4 x the logical cores."""
    check(name, value, _bounds("--threads"))


def check_dims(dims: Mapping[str, Any], option: str = "--dim") -> None:
    for key, value in dims.items():
        check(f"{option} {key}", value, _bounds("--dim"))


def check_overrides(ov: Any) -> None:
    """Check every number of an ``Overrides`` (the command line's values) at once."""
    check("--warmup", ov.warmup)
    check("--iterations", ov.iterations)
    check("--duration", ov.duration_s)
    check("--min-time", getattr(ov, "min_time_s", None))
    check("--until-stable", ov.until_stable)
    check("--min-coverage", ov.min_coverage)
    check_threads("--threads", ov.threads)
    check("--batch", ov.batch)
    check_dims(ov.dims or {})
