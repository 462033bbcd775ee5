"""Benchmark sweeps: list-valued options, one fresh worker process per configuration.

    parse_*()     "--threads 1,2,4" -> [1, 2, 4]
    expand()      the cartesian product of variants, EPs, threads, batches and dims -> [SweepPoint]
    route()       which Python environment runs a point (this one, or a registered one)
    make_job()    the JSON a worker reads (runtime/job.py, runtime/worker.py)
    run_sweep()   all of them in turn, each in a worker process (runtime/launch.py)
                  or in-process, each result handed back as soon as it exists

A configuration that fails becomes a result with status "failed", an error
and ``failure = {"kind", "exit_code"}``; the others carry on.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError

# Launching a worker moved to runtime/launch.py; these names stay importable here.
from aialliance_cli.runtime.launch import (  # noqa: F401
    INTERRUPT_GRACE_S,
    run_in_process,
    run_worker,
)
from aialliance_cli.runtime.launch import WorkerInterrupted as SweepInterrupted

ALL = "all"
DEFAULT_TIMEOUT_S = 600.0
# A single configuration runs in a worker too (benchmarks/worker_overhead.py: no
# measurable cost to the p50), unless the caller asks for in-process.
SINGLE_IN_WORKER = True

Event = Callable[[dict[str, Any]], None]


# ----------------------------------------------------------------------------- parsing


def parse_int_list(
    option: str, text: str | None, *, zero_ok: bool = False, bound: Any = None
) -> list[int] | None:
    """``"1,2,4"`` -> ``[1, 2, 4]`` (duplicates dropped, order kept); None stays None.

    ``bound`` (a ``limits.Bound``) replaces the option's own upper bound.
    """
    if text is None:
        return None
    items = [t.strip() for t in str(text).split(",")]
    if not items or any(not t for t in items):
        raise BadInputError(f"{option} expects a number or a comma-separated list, got '{text}'")
    out: list[int] = []
    for t in items:
        try:
            value = int(t)
        except ValueError:
            raise BadInputError(f"{option}: '{t}' is not a whole number (in '{text}')") from None
        if value < 0 or (value == 0 and not zero_ok):
            bound = "0 or more" if zero_ok else "more than 0"
            raise BadInputError(f"{option} values must be {bound}, got {value}")
        from aialliance_cli.limits import check

        check(option, value, bound)  # the option's upper bound (aialliance_cli/limits.py)
        if value not in out:
            out.append(value)
    return out


def parse_ep_list(text: str | None) -> list[str] | None:
    """``"cpu,openvino"`` -> canonical EP names; ``"all"`` stays the sentinel ALL."""
    if text is None:
        return None
    from aialliance_cli.providers.catalogue import find_spec, resolve_ep_name

    items = [t.strip() for t in str(text).split(",")]
    if any(not t for t in items):
        raise BadInputError(f"--ep expects a name or a comma-separated list, got '{text}'")
    out: list[str] = []
    for t in items:
        if t.lower() == ALL:
            name = ALL
        elif t.endswith("ExecutionProvider") and find_spec(t) is None:
            name = t  # a third-party plugin EP outside the catalogue
        else:
            name = resolve_ep_name(t)
        if name not in out:
            out.append(name)
    if ALL in out and len(out) > 1:
        raise BadInputError("--ep all already means every usable EP; give it alone")
    return out


def parse_dim_lists(values: Sequence[str] | None) -> dict[str, list[int]]:
    """``["sequence=64,128", "height=224"]`` -> ``{"sequence": [64, 128], "height": [224]}``."""
    out: dict[str, list[int]] = {}
    for item in values or ():
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise BadInputError(f"--dim expects NAME=VALUE or NAME=V1,V2,..., got '{item}'")
        if name in out:
            raise BadInputError(f"--dim {name} is given twice; list its values once: {name}=A,B")
        nums = parse_int_list(f"--dim {name}", value)
        assert nums is not None
        out[name] = nums
    return out


# ----------------------------------------------------------------------------- points


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep; None keeps the profile's (or the plan's) value."""

    ep: str | None = None
    threads: int | None = None
    batch: int | None = None
    dims: tuple[tuple[str, int], ...] = ()
    variant: str | None = None  # a precision variant of the profile (models/variants.py)

    def label(self, env: str | None = None) -> str:
        """A short column name: ``int8 openvino@ov threads=2 batch=8 sequence=64``."""
        from aialliance_cli.providers.catalogue import short_name

        parts = [self.variant] if self.variant is not None else []
        if self.ep is not None:
            parts.append(short_name(self.ep) + (f"@{env}" if env else ""))
        elif env:
            parts.append(f"@{env}")
        if self.threads is not None:
            parts.append(f"threads={self.threads}")
        if self.batch is not None:
            parts.append(f"batch={self.batch}")
        parts += [f"{k}={v}" for k, v in self.dims]
        return " ".join(parts) or "default"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ep": self.ep,
            "threads": self.threads,
            "batch": self.batch,
            "dims": dict(self.dims),
            "variant": self.variant,
        }


def expand(
    eps: Sequence[str | None] | None = None,
    threads: Sequence[int | None] | None = None,
    batches: Sequence[int | None] | None = None,
    dims: dict[str, list[int]] | None = None,
    variants: Sequence[str | None] | None = None,
) -> list[SweepPoint]:
    """The cartesian product, variants outermost, then EPs, threads, batch, dims as given."""
    dims = dims or {}
    dim_names = list(dims)
    dim_values = [dims[n] for n in dim_names]
    points = []
    for v, ep, th, b, *dv in itertools.product(
        list(variants or [None]),
        list(eps or [None]),
        list(threads or [None]),
        list(batches or [None]),
        *dim_values,
    ):
        points.append(SweepPoint(ep, th, b, tuple(zip(dim_names, dv, strict=True)), v))
    return points


def current_eps(inventory: Any = None) -> list[str]:
    """EPs usable in this Python environment: the plan's, then the build's (not remote ones).

    Reads ONNX Runtime's answers from ``aia detect``'s short-lived cache where it
    holds them: the parent of a worker need not import onnxruntime at all.
    """
    from aialliance_cli.providers.catalogue import find_spec
    from aialliance_cli.providers.planner import plan_for_machine

    if inventory is None:
        from aialliance_cli.hardware import detect

        inventory = detect(disk_cache=True)
    the_plan = plan_for_machine(inventory=inventory, disk_cache=True)
    built = list(inventory.software.available_providers)
    eps = list(dict.fromkeys([*the_plan.eps, *built]))
    return [e for e in eps if not (find_spec(e) is not None and find_spec(e).remote)]


def all_eps(here: Sequence[str], envs: Sequence[Any]) -> list[str]:
    """``--ep all``: every EP usable here, then those only registered environments offer."""
    out = list(dict.fromkeys(here))
    for env in envs:
        out += [e for e in env.providers if e not in out]
    return out


# ----------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class Route:
    """Where a point runs: ``env`` None is this environment; ``error`` says it cannot run."""

    env: Any = None  # envs.EnvRecord | None
    error: str | None = None
    kind: str = "unavailable"

    @property
    def python(self) -> str:
        return self.env.python if self.env is not None else sys.executable

    @property
    def environment(self) -> dict[str, Any] | None:
        return self.env.result_record() if self.env is not None else None


def route(point: SweepPoint, here: Sequence[str], envs: Sequence[Any], *, sweep: bool) -> Route:
    """This environment when it offers the EP; else a registered one; else an error.

    A single configuration whose EP is nowhere runs here anyway, where the
    session builder falls back along the plan with a warning (or fails under
    --strict), as `aia bench --ep X` always did; in a sweep it fails, since
    a column that silently ran on another EP would mislead.
    """
    if point.ep is None or point.ep in here:
        return Route()
    from aialliance_cli.envs.registry import env_for_ep

    env = env_for_ep(point.ep, list(envs))
    if env is not None:
        problem = env.problem()
        return Route(env=env, error=problem, kind="runtime") if problem else Route(env=env)
    if not sweep:
        return Route()
    from aialliance_cli.providers.catalogue import install_hint, short_name

    hint = install_hint(point.ep) or ""
    pkg = _full_build(point.ep)
    create = (
        f" Or let aia keep one beside this one: aia env create {short_name(point.ep)} "
        f"--package {pkg}."
        if pkg
        else ""
    )
    return Route(
        error=f"{point.ep} is not available in this environment ({', '.join(here)}) nor in "
        f"any registered environment (aia env list). {hint}{create}".strip(),
    )


def _full_build(ep: str) -> str | None:
    from aialliance_cli.providers.catalogue import find_spec

    spec = find_spec(ep)
    return spec.full_builds[0] if spec is not None and spec.full_builds else None


# ----------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class ScenarioSettings:
    """A LoadGen scenario and what it was given on the command line (None: calibrate)."""

    name: str
    target_qps: float | None = None
    target_latency_ms: float | None = None
    min_duration_s: float = 10.0
    min_queries: int | None = None
    samples_per_query: int | None = None
    server_threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")[:80] or "config"


def loadgen_dir(out: Path | None, label: str, index: int, stamp: str | None = None) -> Path:
    """Where a configuration's LoadGen logs go: beside ``--out``, else the user data dir."""
    stamp = stamp or _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    leaf = f"{stamp}-{index:02d}-{_slug(label)}"
    if out is not None:
        out = Path(out).absolute()  # workers run in a folder of their own
        return out.parent / f"{out.stem}.loadgen" / leaf
    from aialliance_cli.paths import user_dirs

    return user_dirs().data / "loadgen" / leaf


def make_job(
    target: Any,
    overrides: Any,
    point: SweepPoint,
    *,
    label: str,
    scenario: ScenarioSettings | None = None,
    log_dir: Path | None = None,
    environment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The worker's input for one point: the resolved target and the point's overrides."""
    from dataclasses import replace

    from aialliance_cli.runtime.job import JOB_VERSION, overrides_to_dict, target_to_dict

    dims = {**dict(overrides.dims), **dict(point.dims)}
    ov = replace(
        overrides,
        ep=point.ep if point.ep is not None else overrides.ep,
        threads=point.threads if point.threads is not None else overrides.threads,
        batch=point.batch if point.batch is not None else overrides.batch,
        dims=dims,
    )
    sc = None
    if scenario is not None:
        sc = {**scenario.to_dict(), "log_dir": str(log_dir) if log_dir else None}
    return {
        "version": JOB_VERSION,
        "target": target_to_dict(target),
        "overrides": overrides_to_dict(ov),
        "scenario": sc,
        "config": {**point.to_dict(), "label": label},
        "environment": environment,
    }


# ----------------------------------------------------------------------------- running


@dataclass
class SweepOutcome:
    results: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return exit_code(self.results, self.interrupted)


def exit_code(results: Sequence[dict[str, Any]], interrupted: bool = False) -> int:
    """128 + the signal when interrupted (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP); 0 all ok;
    the shared code when every one failed alike (2 bad input, 3 unavailable); 1 otherwise."""
    if interrupted or any(r.get("status") == "interrupted" for r in results):
        from aialliance_cli import interrupts

        return interrupts.exit_code()
    failed = [r for r in results if r.get("status") != "ok"]
    if not failed:
        return 0
    if len(failed) == len(results):
        codes = {int((r.get("failure") or {}).get("exit_code") or 1) for r in failed}
        if len(codes) == 1 and codes <= {2, 3}:
            return codes.pop()
    return 1


@dataclass(frozen=True)
class Planned:
    """A point ready to run: its label, job and route."""

    point: SweepPoint
    label: str
    job: dict[str, Any]
    route: Route


def plan_sweep(
    target: Any,
    overrides: Any,
    points: Sequence[SweepPoint],
    *,
    here: Sequence[str],
    envs: Sequence[Any],
    scenario: ScenarioSettings | None = None,
    out: Path | None = None,
    status: Callable[[str], None] | None = None,
    allow_network: bool = False,
) -> list[Planned]:
    """Route every point and make its job (LoadGen log folders named per configuration).

    A point's variant is resolved here, in the parent, once per variant (quantized
    variants are made and cached now), so that workers only open files.
    """
    sweep = len(points) > 1
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    planned = []
    variant_targets: dict[str, Any] = {}
    for i, point in enumerate(points):
        tgt = target
        if point.variant is not None:
            if point.variant not in variant_targets:
                from aialliance_cli.models.variants import resolve_variant

                variant_targets[point.variant] = resolve_variant(
                    target, point.variant, status or (lambda _m: None), allow_network=allow_network
                )
            tgt = variant_targets[point.variant]
        r = route(point, here, envs, sweep=sweep)
        label = (
            point.label(r.env.name if r.env is not None else None)
            if sweep
            else (point.label(r.env.name) if r.env is not None else target.name)
        )
        log_dir = loadgen_dir(out, label, i + 1, stamp) if scenario is not None else None
        job = make_job(
            tgt,
            overrides,
            point,
            label=label,
            scenario=scenario,
            log_dir=log_dir,
            environment=r.environment,
        )
        planned.append(Planned(point, label, job, r))
    return planned


def name_asked_ep(result: dict[str, Any], here: Sequence[str]) -> None:
    """A failed result of a configuration that took the plan's EP (no --ep) names that EP
    and its device, as a successful row would."""
    ep = result.get("ep")
    if result.get("status") == "ok" or not isinstance(ep, dict) or ep.get("requested"):
        return
    if result.get("environment") or not here:
        return
    from aialliance_cli.runtime.job import _asked_device

    ep["requested"] = here[0]
    ep["device"] = ep.get("device") or _asked_device(here[0])


def refuse_unavailable(planned: Sequence[Planned]) -> None:
    """Stop before the first configuration runs when an EP is in no environment, saying so
    once (not once per configuration after the others have run)."""
    errors = dict.fromkeys(
        p.route.error for p in planned if p.route.error and p.route.kind == "unavailable"
    )
    if errors:
        from aialliance_cli.errors import UnavailableError

        raise UnavailableError(" ".join(e for e in errors if e))


def run_sweep(
    planned: Sequence[Planned],
    *,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    in_process: bool = False,
    on_start: Callable[[int, Planned], None] | None = None,
    on_result: Callable[[int, Planned, dict[str, Any]], None] | None = None,
    on_event: Event | None = None,
    machine: dict[str, Any] | None = None,
) -> SweepOutcome:
    """Run each planned configuration in turn; Ctrl-C keeps what finished (and what it kept).

    ``in_process`` runs configurations of this environment here instead of in a
    worker (other environments always need one). ``on_result`` sees each result
    as soon as it exists, so a caller can append it to a file before the next starts.
    """
    from aialliance_cli.runtime.job import failed_result

    outcome = SweepOutcome()
    for i, p in enumerate(planned):
        result: dict[str, Any]
        try:
            if on_start is not None:
                on_start(i, p)
            if p.route.error is not None:
                result = failed_result(
                    p.job,
                    p.route.error,
                    kind=p.route.kind,
                    exit_code=3 if p.route.kind == "unavailable" else 1,
                    machine=machine,
                    onnxruntime=_ort_of(p.route),
                )
            elif in_process and p.route.env is None:
                result = run_in_process(p.job, on_event=on_event)
            else:
                result = run_worker(
                    p.job,
                    python=p.route.python,
                    timeout_s=timeout_s,
                    on_event=on_event,
                    after_measured=_head_start(planned, i + 1, in_process),
                )
        except SweepInterrupted as stop:
            _record_variant(stop.result, p.point)
            outcome.results.append(stop.result)
            outcome.interrupted = True
            if on_result is not None:
                on_result(i, p, stop.result)
            break
        except KeyboardInterrupt:
            outcome.interrupted = True
            break
        _record_variant(result, p.point)
        outcome.results.append(result)
        try:
            if on_result is not None:
                on_result(i, p, result)
        except KeyboardInterrupt:
            outcome.interrupted = True
            break
    return outcome


def _head_start(
    planned: Sequence[Planned], index: int, in_process: bool
) -> Callable[[], None] | None:
    """Prestart the worker of configuration ``index`` once the one before has measured.

    The rule: every configuration runs in a fresh worker of its own (its ONNX
    Runtime thread pools, arenas, EP libraries and peak memory never meet
    another's), but the next worker starts, and loads Python, numpy and ONNX
    Runtime, while the previous one computes its statistics, not while it measures.
    """
    if index >= len(planned):
        return None
    nxt = planned[index]
    if nxt.route.error is not None or (in_process and nxt.route.env is None):
        return None
    from aialliance_cli.runtime.launch import prestart_worker

    return lambda: prestart_worker(nxt.route.python)


def _record_variant(result: dict[str, Any], point: SweepPoint) -> None:
    # Workers know the variant only through model_info; settings say what was asked.
    if point.variant is not None:
        settings = result.get("settings")
        if not isinstance(settings, dict):
            settings = result["settings"] = {}
        settings["variant"] = point.variant


def _ort_of(r: Route) -> dict[str, Any] | None:
    if r.env is None:
        return None
    return {"version": r.env.onnxruntime, "distributions": list(r.env.distributions)}
