"""Profile one EP here: a session with ONNX Runtime's profiler, its runs, the parsed trace.

    profile_one(target, ep, overrides) -> open_session(enable_profiling) -> warm-up + N runs
        -> end_profiling() (always, even on Ctrl-C) -> parse_profile(trace, warmup)
        -> per op type / node times, achieved GFLOP/s, placement -> EpProfile

The measurement under ``aia profile`` (runtime/oprun.py, which picks the EPs and
their environments) and under a worker of job kind "profile" (runtime/worker.py);
it knows nothing of either. Nothing here prints; callers pass callbacks.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError, UnavailableError
from aialliance_cli.runtime.api import Overrides, Prepared, Target

Status = Callable[[str], None]


Progress = Callable[[int, int | None, float], None]


DEFAULT_WARMUP = 5


DEFAULT_ITERATIONS = 20


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class AchievedRate:
    """FLOPs of one (op type, EP) row of the profile divided by its time."""

    op_type: str
    ep: str
    flops_per_run: int
    us_per_run: float
    gflops_per_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpProfile:
    """One EP's profile: times, placement, achieved rates, and its versioned Result."""

    requested_ep: str | None  # as asked on the command line (canonical), None: the plan's
    ep: str  # the EP the session was built on
    profile: Any  # analysis.opprofile.OpProfile
    placement: Any  # analysis.placement.Placement | None
    placement_note: str | None
    flops: Any  # analysis.flops.FlopReport | None
    achieved: list[AchievedRate]
    flops_matched_share: float | None  # share of the FLOPs matched to profiled nodes
    warmup_done: int
    runs_done: int
    interrupted: bool
    trace_path: Path | None  # where the Chrome trace was copied (--trace)
    result: Any  # results.schema.Result, kind "profile"

    @property
    def model_gflops_per_s(self) -> float | None:
        """All the graph's FLOPs over the mean kernel time per run."""
        from aialliance_cli.analysis.flops import work_in_subgraphs

        if self.flops is None or not self.flops.total or not self.profile.runs:
            return None
        if work_in_subgraphs(self.flops):
            return None
        us = self.profile.kernel_us_total / self.profile.runs
        return self.flops.total / us / 1e3 if us else None

    def placement_line(self) -> str | None:
        if self.placement is None:
            return None
        line = self.placement.summary_line()
        return f"{line} ({self.placement_note})" if self.placement_note else line


def achieved_rates(
    profile: Any, flops: Any, placement: Any = None
) -> tuple[list[AchievedRate], float | None]:
    """FLOPs per (op type, EP) row of ``profile`` over its time per run, heaviest time first.

    Original nodes (``flops.by_node``) are matched to profiled nodes by name,
    including ORT's fusion names. The FLOPs left over on an EP that compiled
    subgraphs (OpenVINO, TensorRT: nodes named ``<EP>_<subgraph>``) go to those
    subgraphs. Returns the rows with FLOPs and the share of FLOPs attributed.
    """
    from aialliance_cli.analysis.placement import _candidates

    if flops is None or not flops.total or not profile.runs:
        return [], None
    row_of: dict[str, tuple[str, str]] = {}
    compiled: dict[str, set[tuple[str, str]]] = {}
    for node in profile.by_node:
        row = (node.op_type, node.ep)
        for cand in _candidates(node.name):
            row_of.setdefault(cand, row)
        if node.name.startswith(f"{node.ep}_"):
            compiled.setdefault(node.ep, set()).add(row)
    off_ep: dict[str, str] = {}
    if placement is not None:
        for name, _, ep in placement.fallback_nodes:
            for cand in _candidates(name):
                off_ep.setdefault(cand, ep)
    eps = {s.ep for s in profile.by_op_type}
    default_ep = (
        placement.requested_ep if placement is not None else (next(iter(eps)) if eps else "?")
    )
    by_row: dict[tuple[str, str], int] = {}
    left: dict[str, int] = {}
    for key, value in flops.by_node.items():
        base = key.split("#", 1)[0]
        row = row_of.get(key) or row_of.get(base)
        if row is not None:
            by_row[row] = by_row.get(row, 0) + value
        else:
            ep = off_ep.get(key) or off_ep.get(base) or default_ep
            left[ep] = left.get(ep, 0) + value
    stats = {(s.op_type, s.ep): s for s in profile.by_op_type}
    rows: list[AchievedRate] = []
    for ep, members in compiled.items():
        extra = left.pop(ep, 0)
        if not extra:
            continue
        total_us = sum(stats[r].total_us for r in members if r in stats)
        if len(members) == 1:
            by_row[next(iter(members))] = by_row.get(next(iter(members)), 0) + extra
        else:  # several compiled subgraphs: one row for all of them
            f = extra + sum(by_row.pop(r, 0) for r in members)
            rows.append(_rate(f"{len(members)} compiled subgraphs", ep, f, total_us, profile.runs))
    for row, f in by_row.items():
        if row in stats:
            rows.append(_rate(row[0], row[1], f, stats[row].total_us, profile.runs))
    rows.sort(key=lambda r: (-r.us_per_run, r.op_type))
    attributed = sum(r.flops_per_run for r in rows)
    return [r for r in rows if r.flops_per_run], attributed / flops.total


def _rate(op: str, ep: str, flops_per_run: int, total_us: float, runs: int) -> AchievedRate:
    us = total_us / runs if runs else 0.0
    return AchievedRate(op, ep, int(flops_per_run), us, flops_per_run / us / 1e3 if us else None)


def placement_from_log(prepared: Prepared) -> Any:
    """Placement read from ORT's verbose session log, for builds without the assignment API.

    Builds a second, throwaway session of the same spec with the log on
    (the profiled session's log stays quiet, so it does not disturb the timings).
    """
    import onnxruntime as ort

    from aialliance_cli.analysis.placement import (
        capture_session_log,
        enable_placement_log,
        read_placement,
    )
    from aialliance_cli.runtime.api import _flops
    from aialliance_cli.runtime.session import session_options

    built = prepared.built
    spec = replace(built.spec, enable_profiling=False, record_placement=False)
    so = session_options(spec)
    enable_placement_log(so)
    options = built.session.get_provider_options()
    providers = [(p, {k: str(v) for k, v in options.get(p, {}).items()}) for p in built.providers]
    session, log = capture_session_log(
        lambda: ort.InferenceSession(str(prepared.target.model_path), so, providers=providers)
    )
    model, flops = _flops(prepared.target.model_path, prepared.dims)
    return read_placement(session, model, flops, built.ep, log_text=log, prefer="log")


def _has_assignment_api(session: Any) -> bool:
    return hasattr(session, "get_provider_graph_assignment_info")


def trace_destinations(trace: Path | None, eps: Sequence[str | None]) -> list[Path | None]:
    """Where each EP's trace goes: ``trace`` itself for one EP, ``NAME-<ep>.json`` for several.

    Checks that each file can be written before anything runs (BadInputError otherwise);
    a file created by the check is removed again.
    """
    if trace is None:
        return [None] * len(eps)
    from aialliance_cli.providers.catalogue import short_name

    trace = Path(trace).expanduser()
    if len(eps) == 1:
        paths: list[Path] = [trace]
    else:
        suffix = trace.suffix or ".json"
        paths = [
            trace.with_name(f"{trace.stem}-{short_name(ep) if ep else 'default'}{suffix}")
            for ep in eps
        ]
    for path in paths:
        _check_writable(path)
    return list(paths)


def _check_writable(path: Path) -> None:
    existed = path.exists()
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc)
        blocker = next((a for a in path.parents if a.exists()), None)
        if blocker is not None and not blocker.is_dir():
            why = f"{blocker} is a file, not a folder"
        raise BadInputError(
            f"cannot write the trace file {path}: {why}. Give --trace a path in a folder "
            "you can write to."
        ) from None
    if not existed:
        path.unlink(missing_ok=True)


def profile_one(
    tgt: Target,
    ep: str | None,
    ov: Overrides,
    dest: Path | None,
    top: int,
    inventory: Any,
    status: Status,
    progress: Progress | None,
    on_session: Callable[[str], None] | None = None,
    on_measured: Callable[[], None] | None = None,
) -> EpProfile:
    from aialliance_cli.analysis.opprofile import parse_profile
    from aialliance_cli.runtime.api import _coverage_gate, _flops, open_session

    workdir = Path(tempfile.mkdtemp(prefix="aia-profile-"))
    try:
        p = open_session(
            tgt,
            ov,
            status=status,
            inventory=inventory,
            enable_profiling=True,
            profile_prefix=str(workdir / "ort-profile"),
        )
        session = p.built.session
        placement, note = p.placement, None
        if not _has_assignment_api(session) and (
            placement is None or placement.share_nodes_requested is None
        ):
            try:
                placement = placement_from_log(p)
                note = "coverage read from ONNX Runtime's session log: this build has no "
                note += "placement API"
                _coverage_gate(placement, p.built, tgt, ov, p.warnings)
            except UnavailableError:
                session.end_profiling()
                raise
            except Exception:  # noqa: BLE001 - placement is a report, never a reason to fail
                pass
        status(f"profiling on {p.built.ep}")
        if on_session is not None:
            on_session(p.built.ep)
        warmup_done, runs_done, interrupted, error = _loop(
            session, p.feeds, ov.warmup or 0, ov.iterations or 1, progress
        )
        if on_measured is not None:
            on_measured()
        trace_file = Path(session.end_profiling())  # always, so what ran is kept
        if error is not None:
            from aialliance_cli.runtime.api import _run_error

            raise _run_error(error, tgt) from error
        prof = parse_profile(trace_file, warmup_done)
        if dest is not None:
            shutil.copyfile(trace_file, dest)
        _, flops = _flops(tgt.model_path, p.dims)
        from aialliance_cli.analysis.flops import work_in_subgraphs

        achieved, matched = (
            ([], None) if work_in_subgraphs(flops) else achieved_rates(prof, flops, placement)
        )
        warnings = list(p.warnings)
        if interrupted:
            warnings.append(
                f"interrupted after {warmup_done} warm-up and {runs_done} measured runs"
            )
        ep_profile = EpProfile(
            requested_ep=ep,
            ep=p.built.ep,
            profile=prof,
            placement=placement,
            placement_note=note,
            flops=flops,
            achieved=achieved,
            flops_matched_share=matched,
            warmup_done=warmup_done,
            runs_done=runs_done,
            interrupted=interrupted,
            trace_path=dest,
            result=None,
        )
        ep_profile.result = _result(p, ep_profile, ov, top, warnings)
        return ep_profile
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ep_profile_to_dict(e: EpProfile) -> dict[str, Any]:
    """An EpProfile as the worker sends it back: its Result dict plus what the report needs.

    The FLOP report travels without its per-node counts (only the total is used
    once the achieved rates are computed).
    """
    out = e.result.to_dict()
    out["op_profile"] = e.profile.to_dict()
    out["profile_run"] = {
        "requested_ep": e.requested_ep,
        "ep": e.ep,
        "placement": e.placement.to_dict() if e.placement is not None else None,
        "placement_note": e.placement_note,
        "flops": ({**e.flops.to_dict(), "by_node": {}} if e.flops is not None else None),
        "achieved": [r.to_dict() for r in e.achieved],
        "flops_matched_share": e.flops_matched_share,
        "warmup_done": e.warmup_done,
        "runs_done": e.runs_done,
        "interrupted": e.interrupted,
    }
    return out


_RESULT_KEYS = (
    "kind",
    "profile",
    "model",
    "machine",
    "onnxruntime",
    "ep",
    "settings",
    "metrics",
    "status",
    "warnings",
    "error",
    "timestamp",
)


_DROPPED_KEYS = ("schema", "aia_version", "op_profile", "profile_run", "config")


def ep_profile_from_dict(
    data: dict[str, Any], requested_ep: str | None, trace_path: Path | None
) -> EpProfile:
    """The inverse of :func:`ep_profile_to_dict`; other keys (``environment``) stay in Result."""
    from aialliance_cli.analysis.flops import FlopReport
    from aialliance_cli.analysis.opprofile import OpProfile
    from aialliance_cli.analysis.placement import Placement
    from aialliance_cli.results.schema import Result

    extra = data["profile_run"]
    placement = None
    if extra.get("placement"):
        pl = dict(extra["placement"])
        pl["fallback_nodes"] = tuple(
            (n["name"], n["op_type"], n["ep"]) for n in pl.get("fallback_nodes") or ()
        )
        pl["providers"] = tuple(pl.get("providers") or ())
        placement = Placement(**pl)
    flops = None
    if extra.get("flops"):
        f = extra["flops"]
        flops = FlopReport(
            total=int(f["total"]),
            by_op_type=dict(f.get("by_op_type") or {}),
            by_node=dict(f.get("by_node") or {}),
            unresolved=tuple(f.get("unresolved") or ()),
            dims=dict(f.get("dims") or {}),
        )
    result = Result(
        **{k: data[k] for k in _RESULT_KEYS if k in data},
        extra={k: v for k, v in data.items() if k not in _RESULT_KEYS + _DROPPED_KEYS},
    )
    return EpProfile(
        requested_ep=requested_ep,
        ep=extra["ep"],
        profile=OpProfile.from_dict(data["op_profile"]),
        placement=placement,
        placement_note=extra.get("placement_note"),
        flops=flops,
        achieved=[AchievedRate(**r) for r in extra.get("achieved") or ()],
        flops_matched_share=extra.get("flops_matched_share"),
        warmup_done=int(extra.get("warmup_done") or 0),
        runs_done=int(extra.get("runs_done") or 0),
        interrupted=bool(extra.get("interrupted")),
        trace_path=trace_path,
        result=result,
    )


def _loop(
    session: Any,
    feeds: Sequence[Mapping[str, Any]],
    warmup: int,
    iterations: int,
    progress: Progress | None,
) -> tuple[int, int, bool, Exception | None]:
    """Warm-up then measured runs; returns (warm-ups done, runs done, interrupted, error)."""
    import time

    done_w = done = 0
    n = len(feeds)
    t0 = time.perf_counter()
    try:
        for i in range(warmup):
            session.run(None, feeds[i % n])
            done_w += 1
        for i in range(iterations):
            session.run(None, feeds[i % n])
            done += 1
            if progress is not None:
                progress(done, iterations, time.perf_counter() - t0)
    except KeyboardInterrupt:
        return done_w, done, True, None
    except Exception as exc:  # noqa: BLE001 - reported after the profiler is stopped
        return done_w, done, False, exc
    return done_w, done, False, None


def _result(p: Prepared, e: EpProfile, ov: Overrides, top: int, warnings: list[str]) -> Any:
    from aialliance_cli.results.schema import Result
    from aialliance_cli.runtime.api import _ep_record, _ort_record, _settings_record

    prof = e.profile
    p.placement = e.placement
    ep_rec = _ep_record(p)
    if e.placement is not None:
        ep_rec.setdefault("placement", e.placement.to_dict())
        ep_rec["placement"]["summary"] = e.placement_line()
        ep_rec["placement"]["note"] = e.placement_note
    metrics: dict[str, Any] = {
        "runs": prof.runs,
        "warmup": e.warmup_done,
        "run_us_mean": prof.run_us_mean,
        "run_us_total": prof.run_us_total,
        "kernel_us_total": prof.kernel_us_total,
        "session_overhead_us": prof.session_overhead_us,
        "memcpy_us": prof.memcpy_us,
        "us_by_ep": dict(prof.us_by_ep),
        "by_op_type": [asdict(s) for s in prof.by_op_type],
        "top_nodes": [asdict(s) for s in prof.top_nodes(top)],
        "node_count": len(prof.by_node),
        "flops_per_run": e.flops.total if e.flops is not None else None,
        "flops_unresolved": list(e.flops.unresolved) if e.flops is not None else [],
        "achieved": [r.to_dict() for r in e.achieved],
        "achieved_flops_matched_share": e.flops_matched_share,
        "model_gflops_per_s": e.model_gflops_per_s,
        "session_create_s": p.built.create_s,
    }
    settings = _settings_record(
        p,
        {
            "warmup": ov.warmup,
            "iterations": ov.iterations,
            "strict": ov.strict,
            "trace": str(e.trace_path) if e.trace_path is not None else None,
        },
    )
    return Result(
        kind="profile",
        profile=p.target.profile_record(),
        model=p.target.model_info,
        machine=p.inventory.to_dict(),
        onnxruntime=_ort_record(p.inventory),
        ep=ep_rec,
        settings=settings,
        metrics=metrics,
        status="interrupted" if e.interrupted else "ok",
        warnings=warnings,
    )


def profile_here(
    target: Target,
    ov: Overrides,
    *,
    top: int = 10,
    trace: Path | None = None,
    status: Status = _quiet,
    progress: Progress | None = None,
    on_session: Callable[[str], None] | None = None,
    on_measured: Callable[[], None] | None = None,
) -> EpProfile:
    """Profile ``ov.ep`` (None: the plan's first EP) in this environment, no routing.

    ``ov.warmup``/``iterations`` default to 5 and 20; ``trace`` is where the
    Chrome trace is copied (checked for writing before anything runs).
    """
    from aialliance_cli.hardware import detect

    ov = replace(
        ov,
        warmup=DEFAULT_WARMUP if ov.warmup is None else ov.warmup,
        iterations=DEFAULT_ITERATIONS if ov.iterations is None else ov.iterations,
    )
    check_counts(ov.warmup or 0, ov.iterations or 0, top)
    dest = trace_destinations(trace, [ov.ep])[0]
    return profile_one(
        target, ov.ep, ov, dest, top, detect(), status, progress, on_session, on_measured
    )


def check_counts(warmup: int, iterations: int, top: int) -> None:
    """Bad input (exit 2) for counts a profile cannot use."""
    if warmup < 0:
        raise BadInputError(f"--warmup must be 0 or more, got {warmup}")
    if iterations < 1:
        raise BadInputError(f"--iterations must be 1 or more, got {iterations}")
    if top < 1:
        raise BadInputError(f"--top must be 1 or more, got {top}")
