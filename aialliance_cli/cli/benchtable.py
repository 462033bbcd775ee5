"""The `aia bench` table: one row per configuration (llama-bench style), or for a single
configuration one row per metric. Short EP names, units in the headers, the median's 95%
interval, columns dropped by priority to fit the terminal (80 when piped), ``--columns``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aialliance_cli.cli.output import Column, fmt_num

Cell = Callable[[dict[str, Any]], str]


def _m(r: dict[str, Any]) -> dict[str, Any]:
    return r.get("metrics") or {}


def _get(r: dict[str, Any], part: str, key: str) -> str:
    value = (r.get(part) or {}).get(key)
    return "" if value is None else str(value)


def _ok(r: dict[str, Any]) -> bool:
    return r.get("status") != "failed"


def ep_label(r: dict[str, Any]) -> str:
    """``cpu``, ``openvino@ov``; ``cpu (asked openvino)`` when the EP fell back."""
    from aialliance_cli.providers.catalogue import short_name

    ep = r.get("ep") or {}
    asked = ep.get("requested") or (r.get("config") or {}).get("ep")
    ran = ep.get("name")
    env = r.get("environment")
    at = f"@{env['name']}" if isinstance(env, dict) and env.get("name") else ""
    name = short_name(ran or asked or "") if (ran or asked) else ""
    if ran and asked and ran != asked:
        return f"{name}{at} (asked {short_name(asked)})"
    return f"{name}{at}"


def _lat(key: str) -> Cell:
    return lambda r: fmt_num((_m(r).get("latency_ms") or {}).get(key)) if _ok(r) else ""


def _ci(r: dict[str, Any]) -> str:
    ci = (_m(r).get("latency_ms") or {}).get("median_ci95")
    if not _ok(r) or not isinstance(ci, (list, tuple)) or len(ci) != 2 or None in ci:
        return ""
    return f"{fmt_num(ci[0])}-{fmt_num(ci[1])}"


def _num(key: str, digits: int = 2) -> Cell:
    return lambda r: fmt_num(_m(r).get(key), digits) if _ok(r) else ""


def _mib(key: str) -> Cell:
    def cell(r: dict[str, Any]) -> str:
        v = _m(r).get(key)
        return "" if not _ok(r) else ("n/a" if v is None else f"{v / 2**20:.1f}")

    return cell


def _setting(key: str, cfg_key: str) -> Cell:
    def cell(r: dict[str, Any]) -> str:
        value = (r.get("settings") or {}).get(key)
        if value is None:
            value = (r.get("config") or {}).get(cfg_key)
        if key == "intra_op_threads" and value in (None, 0):
            return "auto"
        return "" if value is None else str(value)

    return cell


def _dims(r: dict[str, Any]) -> str:
    dims = (r.get("settings") or {}).get("dims") or (r.get("config") or {}).get("dims") or {}
    return " ".join(f"{k}={v}" for k, v in dims.items() if k != "batch")  # batch has a column


def _dims_all(r: dict[str, Any]) -> str:
    dims = (r.get("settings") or {}).get("dims") or {}
    return " ".join(f"{k}={v}" for k, v in dims.items())


def _cpu(r: dict[str, Any]) -> str:
    m = _m(r)
    if not _ok(r):
        return ""
    if m.get("cpu_percent") is None:
        return "n/a"
    return f"{m['cpu_percent']:.0f}"


def _cpu_note(results: Sequence[dict[str, Any]], names: Sequence[str] | None) -> str | None:
    """Why CPU use reads n/a: a run shorter than the clocks can measure, or no reading."""
    from aialliance_cli.runtime.bench import MIN_WALL_FOR_CPU_S

    short = [
        (i, _m(r).get("wall_s"))
        for i, r in enumerate(results)
        if _ok(r) and _m(r).get("cpu_percent") is None
    ]
    if not short:
        return None
    walls = [w for _, w in short if w is not None]
    who = "" if names is None else " for " + ", ".join(names[i] for i, _ in short)
    if walls and max(walls) < MIN_WALL_FOR_CPU_S:
        return (
            f"CPU n/a{who}: measured {max(walls):.2g} s, under the {MIN_WALL_FOR_CPU_S:g} s "
            "the CPU clocks need; measure longer (-n, --duration)"
        )
    return f"CPU n/a{who}: not measured"


def _loadgen(key: str) -> Cell:
    def cell(r: dict[str, Any]) -> str:
        lg = _m(r).get("loadgen")
        if not lg:
            return ""
        if key == "verdict":
            return "VALID" if lg.get("valid") else "INVALID"
        if key == "qps":
            return fmt_num(lg.get("qps"), 1)
        return str(lg.get(key, ""))

    return cell


def _agreement(r: dict[str, Any]) -> str:
    if not r.get("agreement"):
        return ""
    from aialliance_cli.tune.accuracy import agreement_text

    return agreement_text(r.get("agreement"))


def _error(r: dict[str, Any]) -> str:
    return " ".join(str(r.get("error") or "").split())


# key, header (units in it), long label (single-configuration view), priority, numeric, cell
SPEC: tuple[tuple[str, str, str, int, bool, Cell], ...] = (
    ("status", "status", "status", 0, False, lambda r: str(r.get("status") or "")),
    ("ep", "EP", "EP", 0, False, ep_label),
    ("device", "device", "device", 4, False, lambda r: _get(r, "ep", "device")),
    ("variant", "variant", "variant", 1, False,
     lambda r: _get(r, "settings", "variant")),
    ("threads", "threads", "threads", 1, True, _setting("intra_op_threads", "threads")),
    ("batch", "batch", "batch", 1, True, _setting("batch", "batch")),
    ("dims", "dims", "dims", 1, False, _dims),
    ("scenario", "scenario", "LoadGen scenario", 1, False,
     lambda r: _get(r, "settings", "scenario") if _m(r).get("loadgen") else ""),
    ("verdict", "LoadGen", "LoadGen verdict", 1, False, _loadgen("verdict")),
    ("qps", "QPS", "LoadGen QPS", 1, True, _loadgen("qps")),
    ("queries", "queries", "LoadGen queries", 6, True, _loadgen("query_count")),
    ("iterations", "iters", "iterations", 6, True,
     lambda r: str(_m(r).get("iterations", "")) if _ok(r) and not _m(r).get("loadgen") else ""),
    ("p50", "p50 ms", "latency p50 (ms)", 0, True, _lat("p50")),
    ("ci", "p50 95% CI ms", "p50 95% interval (ms)", 2, True, _ci),
    ("mean", "mean ms", "latency mean (ms)", 4, True, _lat("mean")),
    ("min", "min ms", "latency min (ms)", 5, True, _lat("min")),
    ("p90", "p90 ms", "latency p90 (ms)", 6, True, _lat("p90")),
    ("p95", "p95 ms", "latency p95 (ms)", 6, True, _lat("p95")),
    ("p99", "p99 ms", "latency p99 (ms)", 3, True, _lat("p99")),
    ("max", "max ms", "latency max (ms)", 7, True, _lat("max")),
    ("std", "std ms", "latency std (ms)", 8, True, _lat("std")),
    ("inf_s", "inf/s", "throughput (inf/s)", 2, True, _num("throughput_per_s", 1)),
    ("samples_s", "samples/s", "throughput (samples/s)", 5, True, _num("samples_per_s", 1)),
    ("create_s", "session s", "session creation (s)", 7, True, _num("session_create_s", 3)),
    ("mem_mib", "+mem MiB", "memory added by session (MiB)", 7, True, _mib("session_memory_bytes")),
    ("rss_mib", "peak MiB", "peak resident memory (MiB)", 8, True, _mib("peak_rss_bytes")),
    ("cpu_pct", "CPU %", "CPU (% of a core)", 8, True, _cpu),
    ("agreement", "fp32 agreement", "agreement vs fp32 CPU", 2, False, _agreement),
    ("error", "error", "error", 1, False, _error),
)  # fmt: skip

COLUMN_KEYS = tuple(s[0] for s in SPEC)
# Settings that a sweep may hold constant (shown once in the title instead of per row).
_SETTINGS = frozenset({"device", "variant", "threads", "batch", "dims", "scenario"})


def _relevant(results: Sequence[dict[str, Any]], sweep: bool) -> list[tuple]:
    """The columns these results have something to say in."""
    keep = []
    failed = any(r.get("status") != "ok" for r in results)
    loadgen = any(_m(r).get("loadgen") for r in results)
    batched = any(
        _m(r).get("samples_per_s") not in (None, _m(r).get("throughput_per_s")) for r in results
    )
    for spec in SPEC:
        key = spec[0]
        if key in ("status", "error") and not failed:
            continue
        if key in ("scenario", "verdict", "qps", "queries") and not loadgen:
            continue
        if key == "samples_s" and not batched and sweep:
            continue
        if key == "dims" and not sweep:
            continue
        keep.append(spec)
    return keep


def check_columns(
    columns: Sequence[str] | None, known: Sequence[str] = COLUMN_KEYS, table: str = ""
) -> list[str] | None:
    """``--columns`` keys among ``known``, checked (exit 2 naming the known ones)."""
    from aialliance_cli.errors import BadInputError

    if not columns:
        return None
    unknown = [k for k in columns if k not in known]
    if unknown:
        where = f" for {table}" if table else ""
        raise BadInputError(
            f"--columns: unknown column(s) {', '.join(unknown)}{where}; choose from "
            f"{', '.join(known)}"
        )
    return list(dict.fromkeys(columns))


def render(
    results: Sequence[dict[str, Any]], *, sweep: bool, columns: Sequence[str] | None = None
) -> Any:
    """The rich renderable for ``results``."""
    from aialliance_cli.cli.output import fitted_table, table

    specs = _relevant(results, sweep)
    columns = check_columns(columns)
    if columns:
        by_key = {s[0]: s for s in SPEC}
        specs = [by_key[k] for k in columns]
    placements = [(r.get("ep") or {}).get("placement") or {} for r in results]
    notes = [
        pl.get("summary") if not sweep or pl.get("share_flops_requested", 1) < 1 else None
        for pl in placements
    ]  # a sweep names only the configurations that did not run wholly on their EP
    names = [
        str((r.get("config") or {}).get("label") or (r.get("profile") or {}).get("name"))
        for r in results
    ]
    if sweep:
        notes = [f"{n}: {s}" if s else None for n, s in zip(names, notes, strict=True)]
    notes += [_reasons(r) for r in results]
    notes.append(_cpu_note(results, names if sweep else None))
    random = any((r.get("model") or {}).get("random_weights") for r in results)
    profile = str((results[0].get("profile") or {}).get("name") or "") if results else ""
    title = f"aia bench: {profile}" + (" (random weights)" if random else "")
    if not sweep and results and _dims_all(results[0]):
        title += f" at {_dims_all(results[0])}"  # the sizes measured, never silently 1
    if sweep and not columns and len(results) > 1:
        # A setting every row shares says nothing per row: it goes to the title, and the
        # columns that differ get the width (80 columns when piped).
        shared = []
        for spec in [s for s in specs if s[0] in _SETTINGS]:
            values = {spec[5](r) for r in results}
            if len(values) == 1:
                specs = [s for s in specs if s is not spec]
                (value,) = values
                if value:
                    shared.append(value if spec[0] == "dims" else f"{spec[1]} {value}")
        if shared:
            title += " at " + ", ".join(shared)
    caption = "; ".join(n for n in notes if n) or None
    if sweep:
        cols = [Column(s[0], s[1], s[3], s[4], shrink=s[0] == "error") for s in specs]
        rows = [[s[5](r) for s in specs] for r in results]
        return fitted_table(title, cols, rows, chosen=[s[0] for s in specs] if columns else None,
                            caption=caption)  # fmt: skip
    (r,) = results
    rows = [(s[2], s[5](r)) for s in specs]
    if not columns:
        rows = [row for row in rows if row[1] != ""]
    return table(title, ["metric", "value"], rows, caption=caption)


def _reasons(r: dict[str, Any]) -> str | None:
    lg = (r.get("metrics") or {}).get("loadgen")
    if not lg or lg.get("valid"):
        return None
    label = (r.get("config") or {}).get("label") or r["profile"]["name"]
    return f"{label} INVALID: " + "; ".join(lg.get("invalid_reasons") or [])
