"""Result records as flat rows: stable CSV columns for spreadsheets (docs/results.md).

``CSV_COLUMNS`` is part of the interface: columns are only ever appended, never
renamed, removed or reordered within ``aia.result/1``. A field a record lacks
(an older record, a metric that was not measured) is an empty cell.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

CSV_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "hostname",
    "cpu_model",
    "profile",
    "model",
    "ep",
    "device",
    "environment",
    "threads",
    "batch",
    "dims",
    "scenario",
    "status",
    "iterations",
    "latency_ms_min",
    "latency_ms_mean",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p95",
    "latency_ms_p99",
    "latency_ms_max",
    "latency_ms_std",
    "median_ci95_low",
    "median_ci95_high",
    "throughput_per_s",
    "samples_per_s",
    "session_create_s",
    "peak_rss_bytes",
    "cpu_percent",
    "energy_j_per_inference",
    "avg_power_w",
    "gflops_per_s",
    "coverage_flops_pct",
    "loadgen_verdict",
    "loadgen_qps",
    "error",
    # Added later; new columns go at the end so positional readers keep working.
    "variant",
    "agreement",  # --check-outputs: the accuracy score against the fp32 CPU reference
    "agreement_passed",
)


def get(record: Mapping[str, Any], *path: str) -> Any:
    """``record[a][b]...`` or None where any step is missing or not a mapping."""
    cur: Any = record
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def environment_name(record: Mapping[str, Any]) -> str | None:
    """The name of the Python environment that ran the record (None: aia's own)."""
    env = record.get("environment")
    if isinstance(env, Mapping):
        name = env.get("name")
        return str(name) if name not in (None, "") else None
    if isinstance(env, str) and env:
        return env
    return None


def scenario_name(record: Mapping[str, Any]) -> str | None:
    """The bench scenario (settings.scenario, else the LoadGen scenario), or None."""
    value = get(record, "settings", "scenario")
    if isinstance(value, Mapping):
        value = value.get("name")
    if value in (None, ""):
        value = get(record, "metrics", "loadgen", "scenario")
    return str(value) if value not in (None, "") else None


def dims_text(dims: Any) -> str:
    """``name=value`` pairs joined by ``;``, sorted by name ('' when there are none)."""
    if not isinstance(dims, Mapping):
        return ""
    return ";".join(f"{k}={dims[k]}" for k in sorted(dims, key=str))


def avg_power_w(record: Mapping[str, Any]) -> float | None:
    """Average power over the run: ``metrics.energy.avg_power_w``, else CPU + GPU averages."""
    energy = get(record, "metrics", "energy")
    if not isinstance(energy, Mapping):
        return None
    direct = _num(energy.get("avg_power_w"))
    if direct is not None:
        return direct
    parts = [_num(energy.get(k)) for k in ("cpu_avg_w", "gpu_avg_w")]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


def gflops_per_s(record: Mapping[str, Any]) -> float | None:
    """Achieved GFLOP/s: ``metrics.efficiency.gflops_per_s`` (at the median latency),
    else ``metrics.flops.gflops_per_s``, else FLOPs per call x calls per second."""
    direct = _num(get(record, "metrics", "efficiency", "gflops_per_s"))
    if direct is not None:
        return direct
    flops = get(record, "metrics", "flops")
    if isinstance(flops, Mapping):
        direct = _num(flops.get("gflops_per_s"))
        if direct is not None:
            return direct
        total = _num(flops.get("total"))
    else:
        total = _num(flops)
    if total is None:
        total = _num(get(record, "metrics", "efficiency", "flops_per_inference"))
    calls = _num(get(record, "metrics", "throughput_per_s"))
    if total is None or calls is None:
        return None
    return total * calls / 1e9


def coverage_flops_pct(record: Mapping[str, Any]) -> float | None:
    """Percent of the model's FLOPs that ran on the requested EP."""
    share = _num(get(record, "ep", "placement", "share_flops_requested"))
    if share is not None:
        return share * 100.0
    return _num(get(record, "metrics", "flops", "coverage_pct"))


def loadgen_verdict(record: Mapping[str, Any]) -> str | None:
    """LoadGen's VALID/INVALID for the run, or None when LoadGen did not run."""
    lg = get(record, "metrics", "loadgen")
    if not isinstance(lg, Mapping):
        return None
    for key in ("verdict", "result"):
        if isinstance(lg.get(key), str) and lg[key]:
            return str(lg[key])
    valid = lg.get("valid")
    if isinstance(valid, bool):
        return "VALID" if valid else "INVALID"
    return None


def _ci(record: Mapping[str, Any], i: int) -> float | None:
    ci = get(record, "metrics", "latency_ms", "median_ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return _num(ci[i])
    return None


def as_comparable(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A text-generation bench point in the shape of a plain bench record.

    Its latency is the end-to-end time of one generation (``e2e_ms``), its dims the
    prompt and generated lengths, its count the repetitions: CSV rows and ``aia
    compare`` read it like any benchmark. Other records come back unchanged.
    """
    if record.get("kind") != "generation-bench":
        return record
    metrics = dict(record.get("metrics") or {})
    settings = dict(record.get("settings") or {})
    e2e = metrics.get("e2e_ms")
    if isinstance(e2e, Mapping):
        metrics["latency_ms"] = {**e2e, "median_ci95": None}
        batch = settings.get("batch") or 1
        if e2e.get("mean"):
            metrics.setdefault("throughput_per_s", 1000.0 / float(e2e["mean"]))
            metrics.setdefault("samples_per_s", 1000.0 * batch / float(e2e["mean"]))
    metrics.setdefault("iterations", settings.get("repetitions"))
    settings.setdefault(
        "dims", {"prompt_len": settings.get("prompt_len"), "gen_len": settings.get("gen_len")}
    )
    return {**record, "metrics": metrics, "settings": settings}


GENERATION_CSV_COLUMNS = (
    "prompt_len",
    "gen_len",
    "ttft_ms_p50",
    "prefill_tokens_per_s",
    "decode_tokens_per_s",
    "per_token_ms_p50",
    "e2e_ms_p50",
)


def generation_csv_extra(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The text-generation figures as extra CSV columns after ``CSV_COLUMNS``."""

    def stat(rec: Mapping[str, Any], key: str, field: str) -> Any:
        value = get(rec, "metrics", key, field)
        return _num(value) if isinstance(value, (int, float)) else None

    return [
        {
            "prompt_len": get(r, "settings", "prompt_len"),
            "gen_len": get(r, "settings", "gen_len"),
            "ttft_ms_p50": stat(r, "ttft_ms", "p50"),
            "prefill_tokens_per_s": stat(r, "prefill_tokens_per_s", "mean"),
            "decode_tokens_per_s": stat(r, "decode_tokens_per_s", "mean"),
            "per_token_ms_p50": stat(r, "per_token_ms", "p50"),
            "e2e_ms_p50": stat(r, "e2e_ms", "p50"),
        }
        for r in records
    ]


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """One flat row keyed by ``CSV_COLUMNS``; a missing field is ``""``."""
    record = as_comparable(record)
    lat = get(record, "metrics", "latency_ms")
    lat = lat if isinstance(lat, Mapping) else {}
    energy = get(record, "metrics", "energy")
    values: dict[str, Any] = {
        "timestamp": record.get("timestamp"),
        "hostname": get(record, "machine", "hostname"),
        "cpu_model": get(record, "machine", "cpu", "model_name"),
        "profile": get(record, "profile", "name"),
        "model": get(record, "model", "path"),
        # A failed row names the EP it asked for, as a successful row names the one it ran on.
        "ep": get(record, "ep", "name") or get(record, "ep", "requested"),
        "device": get(record, "ep", "device"),
        "environment": environment_name(record),
        "threads": get(record, "settings", "intra_op_threads"),
        "batch": get(record, "settings", "batch"),
        "dims": dims_text(get(record, "settings", "dims"))
        or dims_text(get(record, "config", "dims"))
        or None,
        "scenario": scenario_name(record),
        "status": record.get("status"),
        "iterations": get(record, "metrics", "iterations"),
        **{
            f"latency_ms_{k}": _num(lat.get(k))
            for k in ("min", "mean", "p50", "p90", "p95", "p99", "max", "std")
        },
        "median_ci95_low": _ci(record, 0),
        "median_ci95_high": _ci(record, 1),
        "throughput_per_s": _num(get(record, "metrics", "throughput_per_s")),
        "samples_per_s": _num(get(record, "metrics", "samples_per_s")),
        "session_create_s": _num(get(record, "metrics", "session_create_s")),
        "peak_rss_bytes": get(record, "metrics", "peak_rss_bytes"),
        "cpu_percent": _num(get(record, "metrics", "cpu_percent")),
        "energy_j_per_inference": _num(energy.get("joules_per_inference"))
        if isinstance(energy, Mapping)
        else None,
        "avg_power_w": avg_power_w(record),
        "gflops_per_s": gflops_per_s(record),
        "coverage_flops_pct": coverage_flops_pct(record),
        "loadgen_verdict": loadgen_verdict(record),
        "loadgen_qps": _num(get(record, "metrics", "loadgen", "qps")),
        "error": record.get("error"),
        "variant": get(record, "settings", "variant") or get(record, "model", "variant"),
        "agreement": _num(get(record, "agreement", "score")),
        "agreement_passed": get(record, "agreement", "passed"),
    }
    return {col: ("" if values.get(col) is None else values[col]) for col in CSV_COLUMNS}


def write_csv(
    records: Iterable[Mapping[str, Any]],
    stream: TextIO,
    *,
    extra: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """Write a header and one row per record to ``stream``; returns the row count.

    ``extra`` (one mapping per record) appends columns after ``CSV_COLUMNS``,
    named by the first mapping's keys (``aia compare`` adds its verdicts so).
    """
    records = list(records)
    extra_cols: list[str] = list(extra[0]) if extra else []
    if extra is not None and len(extra) != len(records):
        raise ValueError("write_csv: extra needs one mapping per record")
    writer = csv.DictWriter(
        stream,
        fieldnames=[*CSV_COLUMNS, *extra_cols],
        lineterminator="\n",
        extrasaction="ignore",
    )
    writer.writeheader()
    for i, rec in enumerate(records):
        row = flatten(rec)
        if extra:
            row.update({k: ("" if extra[i].get(k) is None else extra[i][k]) for k in extra_cols})
        writer.writerow(row)
    return len(records)
