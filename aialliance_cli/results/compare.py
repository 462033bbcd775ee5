"""Compare benchmark results across machines, EPs, environments and settings.

Records are grouped by profile; within a group a *configuration* is the machine
(hostname + CPU model), the EP, the Python environment, the threads, the batch,
the dims and the scenario. Each configuration is compared with one baseline
configuration of its group (docs/commands.md, "aia compare"):

- the verdict comes from the 95% confidence intervals of the medians
  (``stats.compare_verdict``): "faster"/"slower" only when they do not overlap;
- ``ratio`` is the throughput ratio at the median: the baseline's median time
  per sample over this configuration's, so > 1 means faster. It uses the same
  statistic as the verdict, so the two never contradict each other (the
  recorded throughput comes from the mean, which one long stall can move;
  its ratio is kept as ``throughput_ratio``);
- ``change_pct`` is the change of the median time per sample,
  ``(1/ratio - 1) * 100`` (+50 means it takes 50% longer).

Which records are the baseline (``--baseline``): a result file, a machine
(hostname or CPU model), an EP (short or canonical name) or an environment
name. Without one: when a group's records come from several files, those of the
first file given; when they all come from one file, the group's first record.
When several baseline records could serve a configuration, the one that
matches it best is used, in this order of importance: the same batch and dims,
the same variant, the same scenario, the same threads, the same EP, the same
environment, the same machine; a tie goes to the record read first (files in the order given,
records in file order). So ``--baseline old.jsonl`` compares like with like.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError
from aialliance_cli.results.stats import LatencyStats, compare_verdict
from aialliance_cli.results.tabular import environment_name, get, scenario_name

SOURCE_KEY = "_source"  # added by load_many: {"path": str, "index": 1-based record number}

VERDICTS = (
    "faster",
    "slower",
    "within noise",
    "baseline",
    "no baseline",
    "no data",
    "failed",
    "outputs differ",  # --check-outputs: below its min accuracy; never shown as a win
)


# ----------------------------------------------------------------------------- loading


def load_many(paths: Iterable[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Read result files; returns the comparable records and one message per skipped line.

    Each record is a shallow copy carrying ``_source`` (file and record number).
    A missing or unreadable file, or one with no JSON at all, is BadInputError.
    """
    from aialliance_cli.results.store import read_results

    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            raise BadInputError(f"{path} is a directory; give JSON Lines result files")
        loaded = read_results(path)
        if (
            not loaded.records
            and loaded.skipped
            and all("not valid JSON" in msg for msg in loaded.skipped)
        ):
            raise BadInputError(
                f"{path} is not a JSON Lines file of aia results: no line of it is JSON "
                f"({loaded.skipped[0]}). Write one with `aia bench --out {path.name}`."
            )
        skipped.extend(loaded.skipped)
        if not loaded.records and not loaded.skipped:
            skipped.append(f"{path}: empty, no results")
        for i, rec in enumerate(loaded.records, 1):
            from aialliance_cli.results.tabular import as_comparable

            rec = dict(as_comparable(rec))  # text-generation points compare on e2e time
            metrics = rec.get("metrics")
            lat = metrics.get("latency_ms") if isinstance(metrics, Mapping) else None
            if rec.get("kind") != "bench" and not isinstance(lat, Mapping):
                skipped.append(
                    f"{path}: result #{i} is a '{rec.get('kind')}' result without latency "
                    "statistics; only benchmarks are compared"
                )
                continue
            records.append({**rec, SOURCE_KEY: {"path": str(path), "index": i}})
    return records, skipped


# ----------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Config:
    """What identifies one configuration within a profile group."""

    hostname: str | None
    cpu_model: str | None
    ep: str | None
    environment: str | None
    threads: int | None
    batch: int | None
    dims: tuple[tuple[str, Any], ...]
    scenario: str | None
    variant: str | None = None  # a profile's precision variant (--variant)

    @property
    def machine(self) -> str:
        return machine_label(self.hostname, self.cpu_model)

    @property
    def ep_short(self) -> str:
        if not self.ep:
            return "?"
        from aialliance_cli.providers.catalogue import short_name

        return short_name(self.ep)

    def settings_label(self) -> str:
        """Threads, batch, dims, environment, scenario: the columns besides machine and EP."""
        parts = [f"variant {self.variant}"] if self.variant else []
        parts.append(f"threads {self.threads if self.threads else 'auto'}")
        if self.batch is not None:
            parts.append(f"batch {self.batch}")
        # A dim named like the batch repeats the batch column.
        dims = [
            f"{k}={v}"
            for k, v in self.dims
            if not (self.batch is not None and "batch" in str(k).lower() and v == self.batch)
        ]
        parts.extend(dims)
        if self.environment:
            parts.append(f"env {self.environment}")
        if self.scenario:
            parts.append(self.scenario)
        return " · ".join(parts)

    def label(self) -> str:
        return f"{self.machine} · {self.ep_short} · {self.settings_label()}"


def machine_label(hostname: str | None, cpu_model: str | None) -> str:
    if hostname and cpu_model:
        return f"{hostname} ({cpu_model})"
    return hostname or cpu_model or "unknown machine"


def _cpu_label(record: Mapping[str, Any]) -> str | None:
    """The CPU model with its thread count: VMs often share a hostname and a model name."""
    model = _str(get(record, "machine", "cpu", "model_name"))
    threads = get(record, "machine", "cpu", "logical_cores")
    if model and isinstance(threads, int):
        return f"{model}, {threads} threads"
    return model


def config_of(record: Mapping[str, Any]) -> Config:
    """The configuration of a record (missing fields are None)."""
    dims = get(record, "settings", "dims")
    dims_t = (
        tuple(sorted(((str(k), v) for k, v in dims.items()), key=lambda kv: kv[0]))
        if isinstance(dims, Mapping)
        else ()
    )
    threads = get(record, "settings", "intra_op_threads")
    batch = get(record, "settings", "batch")
    return Config(
        # A fleet's nodes may share a host (aia fleet bench --local): the node names it.
        hostname=_str(get(record, "fleet", "node_name"))
        or _str(get(record, "machine", "hostname")),
        cpu_model=_cpu_label(record),
        ep=_str(get(record, "ep", "name")) or _str(get(record, "ep", "requested")),
        environment=environment_name(record),
        threads=threads if isinstance(threads, int) else None,
        batch=batch if isinstance(batch, int) else None,
        dims=dims_t,
        scenario=scenario_name(record),
        variant=_str(get(record, "settings", "variant")) or _str(get(record, "model", "variant")),
    )


def group_of(record: Mapping[str, Any]) -> str:
    """The profile name, else the model file's name."""
    name = get(record, "profile", "name")
    if name:
        return str(name)
    path = get(record, "model", "path")
    return Path(str(path)).stem if path else "unknown"


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


# ----------------------------------------------------------------------------- statistics


def stats_of(record: Mapping[str, Any], scale: float = 1.0) -> LatencyStats | None:
    """LatencyStats rebuilt from ``metrics.latency_ms``, every value times ``scale``."""
    lat = get(record, "metrics", "latency_ms")
    if not isinstance(lat, Mapping) or _num(lat.get("p50")) is None:
        return None

    def v(key: str) -> float:
        x = _num(lat.get(key))
        return (x if x is not None else math.nan) * scale

    ci = lat.get("median_ci95")
    ci_t = None
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_num(c) is not None for c in ci):
        ci_t = (float(ci[0]) * scale, float(ci[1]) * scale)
    count = lat.get("count")
    return LatencyStats(
        count=int(count)
        if isinstance(count, int)
        else int(_num(get(record, "metrics", "iterations")) or 0),
        min=v("min"),
        mean=v("mean"),
        p50=v("p50"),
        p90=v("p90"),
        p95=v("p95"),
        p99=v("p99"),
        max=v("max"),
        std=v("std"),
        median_ci95=ci_t,
    )


def samples_rate(record: Mapping[str, Any]) -> float | None:
    """Samples per second: recorded, else calls/s x batch, else LoadGen's QPS."""
    direct = _num(get(record, "metrics", "samples_per_s"))
    if direct is not None:
        return direct
    calls = _num(get(record, "metrics", "throughput_per_s"))
    batch = get(record, "settings", "batch")
    if calls is not None:
        return calls * (batch if isinstance(batch, int) and batch > 0 else 1)
    return _num(get(record, "metrics", "loadgen", "qps"))


def _usable(record: Mapping[str, Any]) -> bool:
    """Can serve as a baseline: not failed, with latencies or at least a throughput."""
    if record.get("status") == "failed":
        return False
    return stats_of(record) is not None or samples_rate(record) is not None


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """One configuration of one group, compared with its baseline."""

    group: str  # the profile name
    config: str  # machine · EP · settings
    machine: str
    ep: str | None  # canonical EP name
    ep_short: str
    settings: str  # threads · batch · dims · environment · scenario
    hostname: str | None
    cpu_model: str | None
    environment: str | None
    threads: int | None
    batch: int | None
    dims: dict[str, Any]
    scenario: str | None
    status: str | None
    iterations: int | None
    p50: float | None  # ms
    p99: float | None  # ms
    median_ci95: tuple[float, float] | None  # ms
    throughput: float | None  # inferences (calls) per second
    samples_per_s: float | None
    ratio: float | None  # median throughput over the baseline's (per sample): > 1 is faster
    change_pct: float | None  # change in median time per sample vs the baseline: > 0 is slower
    throughput_ratio: float | None  # recorded samples/s (from the mean) over the baseline's
    verdict: str  # one of VERDICTS
    baseline: str | None  # the config label of the baseline this row is compared with
    source: str  # file#record
    index: int  # position in the records given to compare()
    agreement: dict[str, Any] | None = None  # the record's --check-outputs agreement, if any
    # Samples per second at the median (batch / p50), else the recorded rate (LoadGen offline):
    # the rate the ratio compares, so the table, the plot and the ratio agree.
    rate_p50: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["median_ci95"] = list(self.median_ci95) if self.median_ci95 else None
        return d


@dataclass(frozen=True)
class CompareTable:
    rows: tuple[Row, ...]
    baseline: str | None  # what was asked for (None: the default rule)
    baseline_kind: str  # file | machine | ep | environment | default
    groups: tuple[str, ...]  # profile names, in the order first seen
    records: tuple[dict[str, Any], ...]  # the records the rows index into
    skipped: tuple[str, ...] = ()  # messages from loading a baseline file
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> inventory

    def group_rows(self, group: str) -> list[Row]:
        return [r for r in self.rows if r.group == group]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "baseline_kind": self.baseline_kind,
            "groups": list(self.groups),
            "rows": [r.to_dict() for r in self.rows],
            "skipped": list(self.skipped),
        }


def _source_path(record: Mapping[str, Any]) -> str | None:
    src = record.get(SOURCE_KEY)
    return src.get("path") if isinstance(src, Mapping) else None


def _same_file(a: str | None, b: str | Path) -> bool:
    if a is None:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def _available(records: Sequence[Mapping[str, Any]]) -> str:
    machines = sorted({config_of(r).machine for r in records})
    cfgs = [config_of(r) for r in records]
    eps = sorted({c.ep_short for c in cfgs if c.ep})
    envs = sorted({c.environment for c in cfgs if c.environment})
    files = list(dict.fromkeys(p for p in (_source_path(r) for r in records) if p))
    text = f"machines: {', '.join(machines) or 'none'}; EPs: {', '.join(eps) or 'none'}"
    if envs:
        text += f"; environments: {', '.join(envs)}"
    if files:
        text += f"; files: {', '.join(files)}"
    return text


def resolve_baseline(records: Sequence[Mapping[str, Any]], baseline: str) -> tuple[str, list[bool]]:
    """Which records a ``--baseline`` value selects: (kind, one flag per record).

    Tried in order: a result file among the records' sources, a machine
    (hostname, CPU model or "host (cpu)" label, case-insensitive; else a
    substring naming exactly one machine), an EP, an environment name.
    """
    text = baseline.strip()
    if not text:
        raise BadInputError("--baseline is empty; give a result file, a machine or an EP")
    flags = [_same_file(_source_path(r), text) for r in records]
    if any(flags):
        return "file", flags
    cfgs = [config_of(r) for r in records]
    low = text.lower()

    def exact(c: Config) -> bool:
        cpu = (c.cpu_model or "").lower()
        return low in {(c.hostname or "").lower(), cpu, cpu.split(", ")[0], c.machine.lower()}

    flags = [exact(c) for c in cfgs]
    if any(flags):
        return "machine", flags
    labels = {c.machine for c in cfgs if low in c.machine.lower()}
    if len(labels) == 1:
        return "machine", [c.machine in labels for c in cfgs]
    from aialliance_cli.errors import UnknownProviderError
    from aialliance_cli.providers.catalogue import resolve_ep_name

    try:
        canonical = resolve_ep_name(text)
    except UnknownProviderError:
        canonical = text
    flags = [c.ep is not None and c.ep.lower() == canonical.lower() for c in cfgs]
    if any(flags):
        return "ep", flags
    flags = [c.environment is not None and c.environment.lower() == low for c in cfgs]
    if any(flags):
        return "environment", flags
    if "@" in text:  # the tables' short label: EP@ENVIRONMENT (openvino@ov)
        ep_part, _, env_part = text.partition("@")
        try:
            ep_name = resolve_ep_name(ep_part)
        except UnknownProviderError:
            ep_name = ep_part
        flags = [
            c.ep is not None
            and c.ep.lower() == ep_name.lower()
            and (c.environment or "").lower() == env_part.lower()
            for c in cfgs
        ]
        if any(flags):
            return "environment", flags
    why = "is not a file" if not Path(text).exists() else "is a file holding none of the results"
    many = f" (it names {len(labels)} machines: {', '.join(sorted(labels))})" if labels else ""
    raise BadInputError(
        f"--baseline '{baseline}' matches no result: it {why}, no machine{many}, EP or "
        f"environment. Available {_available(records)}."
    )


def _default_baseline(records: Sequence[Mapping[str, Any]], members: list[int]) -> set[int]:
    usable = [i for i in members if _usable(records[i])]
    if not usable:
        return set()
    files = [_source_path(records[i]) for i in usable]
    if len(set(files)) > 1:
        first = files[0]
        return {i for i, f in zip(usable, files, strict=True) if f == first}
    return {usable[0]}


def _match_score(a: Config, b: Config) -> tuple[bool, ...]:
    return (
        a.batch == b.batch and a.dims == b.dims,
        a.variant == b.variant,
        a.scenario == b.scenario,
        a.threads == b.threads,
        a.ep == b.ep,
        a.environment == b.environment,
        (a.hostname, a.cpu_model) == (b.hostname, b.cpu_model),
    )


def compare(records: Sequence[Mapping[str, Any]], baseline: str | None = None) -> CompareTable:
    """Group by profile, pick each configuration's baseline, give ratios and verdicts.

    ``baseline`` is a result file, machine, EP or environment (see the module
    docstring); a file not among the records' sources is loaded and added.
    """
    recs = [dict(r) for r in records]
    extra_skipped: list[str] = []
    if (
        baseline is not None
        and Path(baseline).is_file()
        and not any(_same_file(_source_path(r), baseline) for r in recs)
    ):
        more, extra_skipped = load_many([baseline])
        recs = more + recs
    if not recs:
        raise BadInputError("no usable results to compare (every line was skipped)")

    groups: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        groups.setdefault(group_of(r), []).append(i)

    if baseline is None:
        kind = "default"
        chosen: set[int] = set()
        for members in groups.values():
            chosen |= _default_baseline(recs, members)
    else:
        kind, flags = resolve_baseline(recs, baseline)
        chosen = {i for i, f in enumerate(flags) if f and _usable(recs[i])}

    cfgs = [config_of(r) for r in recs]
    rows: list[Row] = []
    for group, members in groups.items():
        base_idx = [i for i in members if i in chosen]
        order = base_idx + [i for i in members if i not in chosen]
        for i in order:
            rows.append(_row(recs, cfgs, group, i, base_idx, is_base=i in chosen))

    machines: dict[str, dict[str, Any]] = {}
    for c, r in zip(cfgs, recs, strict=True):
        if c.machine not in machines and isinstance(r.get("machine"), Mapping):
            machines[c.machine] = {**r["machine"], "onnxruntime": r.get("onnxruntime")}
    return CompareTable(
        rows=tuple(rows),
        baseline=baseline,
        baseline_kind=kind,
        groups=tuple(groups),
        records=tuple(recs),
        skipped=tuple(extra_skipped),
        machines=machines,
    )


def _row(
    recs: list[dict[str, Any]],
    cfgs: list[Config],
    group: str,
    i: int,
    base_idx: list[int],
    *,
    is_base: bool,
) -> Row:
    rec, cfg = recs[i], cfgs[i]
    stats = stats_of(rec)
    ratio = change = rate_ratio = None
    base_label = None
    if rec.get("status") == "failed":
        verdict = "failed"
    elif not _usable(rec):
        verdict = "no data"
    elif is_base:
        verdict = "baseline"
    elif not base_idx:
        verdict = "no baseline"
    else:
        b = max(base_idx, key=lambda j: (_match_score(cfg, cfgs[j]), -j))
        base_label = cfgs[b].label()
        verdict, ratio, change, rate_ratio = _versus(recs[b], cfgs[b], rec, cfg)
    agreement = rec.get("agreement") if isinstance(rec.get("agreement"), Mapping) else None
    if agreement and agreement.get("passed") is False and verdict not in ("failed", "no data"):
        verdict = "outputs differ"  # a configuration that computes something else never wins
    src = rec.get(SOURCE_KEY) or {}
    return Row(
        group=group,
        config=cfg.label(),
        machine=cfg.machine,
        ep=cfg.ep,
        ep_short=cfg.ep_short,
        settings=cfg.settings_label(),
        hostname=cfg.hostname,
        cpu_model=cfg.cpu_model,
        environment=cfg.environment,
        threads=cfg.threads,
        batch=cfg.batch,
        dims=dict(cfg.dims),
        scenario=cfg.scenario,
        status=_str(rec.get("status")),
        iterations=get(rec, "metrics", "iterations"),
        p50=stats.p50 if stats else None,
        p99=_nan_none(stats.p99) if stats else None,
        median_ci95=stats.median_ci95 if stats else None,
        throughput=_num(get(rec, "metrics", "throughput_per_s")),
        samples_per_s=samples_rate(rec),
        ratio=ratio,
        change_pct=change,
        throughput_ratio=rate_ratio,
        verdict=verdict,
        baseline=base_label,
        source=f"{src.get('path', '?')}#{src.get('index', '?')}" if src else f"record {i + 1}",
        index=i,
        agreement=dict(agreement) if agreement else None,
        rate_p50=_rate_p50(stats.p50 if stats else None, cfg.batch, rec),
    )


def _rate_p50(p50_ms: float | None, batch: int | None, rec: Mapping[str, Any]) -> float | None:
    if p50_ms and p50_ms > 0 and math.isfinite(p50_ms):
        return (batch or 1) * 1000.0 / p50_ms
    return samples_rate(rec)


def arrow(ratio: float | None) -> str:
    """The direction of a ratio (baseline time / this time): ``↑`` faster, ``↓`` slower."""
    if ratio is None:
        return ""
    return "↑" if ratio > 1.0 else ("↓" if ratio < 1.0 else "=")


def _nan_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def _versus(
    base: Mapping[str, Any], bcfg: Config, other: Mapping[str, Any], ocfg: Config
) -> tuple[str, float | None, float | None, float | None]:
    """(verdict, ratio, change_pct, throughput_ratio) of ``other`` against ``base``.

    With different batches the latencies are compared per sample (divided by
    the batch), so that a bigger batch is not called slower for doing more work.
    """
    bs = ocfg.batch or 1
    bb = bcfg.batch or 1
    per_sample = bs != bb
    b_stats = stats_of(base, 1.0 / bb if per_sample else 1.0)
    o_stats = stats_of(other, 1.0 / bs if per_sample else 1.0)
    b_rate, o_rate = samples_rate(base), samples_rate(other)
    rate_ratio = o_rate / b_rate if b_rate and o_rate else None
    if b_stats is None or o_stats is None:
        # Throughput alone (LoadGen's offline scenario): a ratio, but no claim.
        ratio = rate_ratio
        verdict = "within noise"
    else:
        verdict = compare_verdict(b_stats, o_stats)
        ratio = b_stats.p50 / o_stats.p50 if o_stats.p50 > 0 and b_stats.p50 > 0 else None
    change = (1.0 / ratio - 1.0) * 100.0 if ratio else None
    return verdict, ratio, change, rate_ratio


def short_labels(rows: Sequence[Row]) -> list[str]:
    """Labels that keep only what differs: the machine and EP only where the rows differ."""
    machines = {r.machine for r in rows}
    eps = {r.ep_short for r in rows}
    out = []
    for r in rows:
        parts = ([r.machine] if len(machines) > 1 else []) + ([r.ep_short] if len(eps) > 1 else [])
        out.append(" · ".join([*parts, r.settings]))
    # The same configuration read from two files: tell them apart by the file.
    plain = list(out)
    for i, label in enumerate(plain):
        if plain.count(label) > 1:
            out[i] = f"{label} · {Path(rows[i].source).name}"
    return out


def machine_names(rows: Sequence[Row]) -> dict[str, str]:
    """Machine label -> a short name: the hostname where it names only one machine."""
    by_host: dict[str, set[str]] = {}
    for r in rows:
        by_host.setdefault(r.hostname or "", set()).add(r.machine)
    return {
        r.machine: r.hostname if r.hostname and len(by_host[r.hostname]) == 1 else r.machine
        for r in rows
    }


def regressions(table: CompareTable, pct: float) -> list[Row]:
    """Rows slower than their baseline by more than ``pct`` % and outside the noise.

    "Slower by pct %" is about time per sample: ``change_pct > pct``; "outside
    the noise" is the verdict "slower" (the medians' 95% CIs do not overlap).
    """
    if not (isinstance(pct, (int, float)) and math.isfinite(pct) and pct >= 0):
        raise BadInputError(f"--fail-if-slower takes a percentage >= 0 (e.g. 5), got {pct}")
    return [
        r
        for r in table.rows
        if r.verdict == "slower" and r.change_pct is not None and r.change_pct > pct
    ]
