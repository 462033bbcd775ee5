"""``aia profile``: which EPs to profile, where each runs, and how they compare.

    target, EPs -> for each EP: here (runtime/opmeasure.py: the profiled session,
                   its runs, the parsed trace) or in a worker of the registered
                   environment that offers it (runtime/launch.py)
                -> ProfileRun (one EpProfile per EP, comparisons to the first)

Also the dimension mapping of ``aia inspect`` (:func:`analysis_dims`,
:func:`inspect_target`), which fixes a model's symbolic dims from a profile and
``--dim`` the way ``runtime.inputs.resolve_dims`` does, without defaults.
Nothing here prints; callers pass callbacks for status and progress.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError, UnavailableError
from aialliance_cli.runtime.api import Overrides, Target

# The single-EP measurement moved to runtime/opmeasure.py; its names stay importable here.
from aialliance_cli.runtime.opmeasure import (  # noqa: F401
    DEFAULT_ITERATIONS,
    DEFAULT_WARMUP,
    AchievedRate,
    EpProfile,
    Progress,
    Status,
    _quiet,
    achieved_rates,
    check_counts,
    ep_profile_from_dict,
    ep_profile_to_dict,
    placement_from_log,
    profile_one,
    trace_destinations,
)

_AXIS_KEY = re.compile(r"^.+\[\d+\]$")  # INPUT[AXIS] for an axis without a name


# ----------------------------------------------------------------------------- inspect


def analysis_dims(
    model_path: Path, profile_dims: Mapping[str, int], cli_dims: Mapping[str, int]
) -> dict[str, int]:
    """The symbolic dims of ``model_path`` that have a value, keyed by the model's own names.

    Values come from the profile's ``inputs.dims`` and then ``--dim`` (which wins),
    with the aliases of ``runtime.inputs.DIM_ALIASES`` (``batch``, ``sequence``, ...).
    Unlike a run, dims without a value stay free (no defaults). A ``--dim`` name that
    fits no dim of the model raises BadInputError; a profile name that fits none is
    ignored (it may only size the profile's own tensors). ``INPUT[AXIS]`` keys pass
    through unchanged (``count_flops`` checks them).
    """
    from aialliance_cli.analysis.graph import _tensor_info, load_model_proto
    from aialliance_cli.runtime.inputs import DIM_ALIASES, InputSpec, model_dim_names, resolve_dims

    model = load_model_proto(model_path)
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in inits:
            continue
        info = _tensor_info(value)
        specs.append(InputSpec(info.name, info.dtype, tuple(info.shape or ())))
    names = model_dim_names(specs)

    def fits(key: str) -> bool:
        return key in names or (
            key in DIM_ALIASES and any(DIM_ALIASES[key].search(n) for n in names)
        )

    axes = {k: int(v) for k, v in {**profile_dims, **cli_dims}.items() if _AXIS_KEY.match(k)}
    given = {k: int(v) for k, v in profile_dims.items() if not _AXIS_KEY.match(k) and fits(k)}
    cli_named = {k: int(v) for k, v in cli_dims.items() if not _AXIS_KEY.match(k)}
    resolve_dims(specs, cli_named)  # refuses a --dim name the model lacks (exit 2)
    given.update(cli_named)
    resolved = resolve_dims(specs, given)
    out: dict[str, int] = {}
    for name, value in resolved.items():
        if name in given or any(
            alias in given and pattern.search(name) for alias, pattern in DIM_ALIASES.items()
        ):
            out[name] = value
    out.update(axes)
    return out


def profile_dims(target: Target) -> dict[str, int]:
    """``inputs.dims`` of the target's profile (empty for a bare model file)."""
    prof = target.profile
    if prof is None or prof.inputs is None:
        return {}
    return {k: int(v) for k, v in (prof.inputs.dims or {}).items()}


def inspect_target(target: Target, cli_dims: Mapping[str, int] | None = None) -> Any:
    """``analysis.graph.summarize`` of the target's model at the profile's and ``--dim`` dims."""
    from aialliance_cli.analysis.graph import summarize

    dims = analysis_dims(target.model_path, profile_dims(target), dict(cli_dims or {}))
    return summarize(target.model_path, dims)


# ----------------------------------------------------------------------------- profile data


@dataclass
class ProfileRun:
    """What ``aia profile`` measured: one EpProfile per EP, and comparisons to the first."""

    target: Target
    profiles: list[EpProfile]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (ep, why)
    comparisons: list[tuple[str, str, list[Any]]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def status(self) -> str:
        return "interrupted" if self.interrupted else "ok"

    def _kernel_per_run(self, ep: str) -> float | None:
        p = next((p for p in self.profiles if p.ep == ep), None)
        return p.profile.kernel_us_total / p.profile.runs if p and p.profile.runs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "profile",
            "status": self.status,
            "results": [p.result.to_dict() for p in self.profiles],
            "comparisons": [
                {
                    "a": a,
                    "b": b,
                    "a_kernel_us_per_run": self._kernel_per_run(a),
                    "b_kernel_us_per_run": self._kernel_per_run(b),
                    "by_op_type": [r.to_dict() for r in rows],
                }
                for a, b, rows in self.comparisons
            ],
            "skipped": [{"ep": ep, "reason": why} for ep, why in self.skipped],
        }


# ----------------------------------------------------------------------------- achieved rates


# ----------------------------------------------------------------------------- placement


# ----------------------------------------------------------------------------- running


def _available(target: Target, ep: str, ov: Overrides, inventory: Any) -> str | None:
    """None when ``ep`` can be built here, else why not (with what to install)."""
    from aialliance_cli.runtime.api import choose_session

    try:
        choose_session(target, replace(ov, ep=ep, strict=True), inventory)
    except UnavailableError as exc:
        return str(exc)
    return None


def profile(
    target: str | Target | None = None,
    eps: Sequence[str] = (),
    overrides: Overrides | None = None,
    *,
    top: int = 10,
    trace: Path | None = None,
    status: Status = _quiet,
    progress: Progress | None = None,
    allow_network: bool = False,
    use_envs: bool = True,
    on_session: Callable[[str], None] | None = None,
) -> ProfileRun:
    """Profile ``target`` on each of ``eps`` in turn (none: the plan's first EP).

    ``overrides.warmup``/``iterations`` default to 5 and 20. An EP that this
    ONNX Runtime build lacks runs in a registered environment that offers it
    (``aia env``, in a worker: ``runtime.launch``) when ``use_envs``; failing that it
    raises UnavailableError under ``strict``, else it is skipped with a reason
    when several EPs are asked for, and left to the plan's fallback (with a
    warning) when it is the only one. Ctrl-C keeps the runs measured so far:
    the profile is parsed and ``interrupted`` is set. ``on_session(ep)`` is
    called once a session is built, before its first run (the worker arms
    its Ctrl-C handling there).
    """
    from aialliance_cli.analysis.opprofile import compare_profiles
    from aialliance_cli.hardware import detect
    from aialliance_cli.providers.catalogue import resolve_ep_name
    from aialliance_cli.runtime.api import prepare_target

    ov = overrides or Overrides()
    warmup = DEFAULT_WARMUP if ov.warmup is None else ov.warmup
    iterations = DEFAULT_ITERATIONS if ov.iterations is None else ov.iterations
    check_counts(warmup, iterations, top)
    wanted: list[str | None] = list(dict.fromkeys(resolve_ep_name(e) for e in eps)) or [None]
    destinations = trace_destinations(trace, wanted)  # before anything runs
    if isinstance(target, Target):
        tgt = target
    else:
        tgt = prepare_target(target, allow_network=allow_network, status=status)
    inventory = detect()

    run = ProfileRun(target=tgt, profiles=[])
    todo: list[tuple[str | None, Path | None, Any]] = []  # (ep, trace, env or None: here)
    for ep, dest in zip(wanted, destinations, strict=True):
        check = ep is not None and (len(wanted) > 1 or use_envs)
        why = _available(tgt, ep, ov, inventory) if check and ep is not None else None
        if why is None:
            todo.append((ep, dest, None))
            continue
        env = _env_for(ep) if use_envs and ep is not None else None
        if env is not None and env.problem() is None:
            todo.append((ep, dest, env))
            continue
        if env is not None:
            why = env.problem() or why
            if len(wanted) == 1:  # a registered environment is broken: no silent fallback
                raise UnavailableError(why)
        if ov.strict:
            raise UnavailableError(why)
        if len(wanted) == 1:
            todo.append((ep, dest, None))  # the plan's fallback, with a warning
            continue
        run.skipped.append((ep or "", why))
    for ep, dest, env in todo:
        ep_ov = replace(ov, ep=ep, warmup=warmup, iterations=iterations)
        if env is None:
            done = profile_one(tgt, ep, ep_ov, dest, top, inventory, status, progress, on_session)
        else:
            done = _profile_in_env(tgt, ep or "", ep_ov, dest, top, env, status, progress)
        run.profiles.append(done)
        if done.interrupted:
            run.interrupted = True
            break
    if len(run.profiles) > 1:
        first = run.profiles[0]
        for other in run.profiles[1:]:
            run.comparisons.append(
                (first.ep, other.ep, compare_profiles(first.profile, other.profile))
            )
    return run


# ----------------------------------------------------------------------------- other envs


def _env_for(ep: str) -> Any:
    """The registered environment (envs.EnvRecord) that offers ``ep``, or None."""
    from aialliance_cli.envs.registry import env_for_ep

    return env_for_ep(ep)


def _profile_in_env(
    tgt: Target,
    ep: str,
    ov: Overrides,
    dest: Path | None,
    top: int,
    env: Any,
    status: Status,
    progress: Progress | None,
) -> EpProfile:
    """Profile ``ep`` in a worker process of the registered environment ``env``.

    The worker (job kind "profile") runs :func:`profile` for this EP alone and
    copies the trace to ``dest`` itself. Ctrl-C stops the worker and keeps what
    it measured; a failed worker raises the error it reported.
    """
    from aialliance_cli.runtime.job import JOB_VERSION, overrides_to_dict, target_to_dict
    from aialliance_cli.runtime.launch import WorkerInterrupted, run_worker

    job = {
        "version": JOB_VERSION,
        "kind": "profile",
        "target": target_to_dict(tgt),
        "overrides": overrides_to_dict(ov),
        "profile": {"top": top, "trace": str(Path(dest).absolute()) if dest else None},
        "config": {"ep": ep, "label": f"profile {ep} in {env.name}"},
        "environment": env.result_record(),
    }

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "status":
            status(f"{event.get('message')} (environment '{env.name}')")
        elif event.get("event") == "progress" and progress is not None:
            progress(int(event["done"]), event.get("total"), float(event["elapsed"]))

    status(f"starting a worker in environment '{env.name}' ({env.python})")
    try:
        res = run_worker(job, python=env.python, on_event=on_event)
    except WorkerInterrupted as exc:
        res = exc.result
        if "op_profile" not in res:  # nothing measured: a plain Ctrl-C
            raise KeyboardInterrupt from None
    if "op_profile" not in res:
        raise _worker_error(res, env)
    return ep_profile_from_dict(res, ep, dest)


def _worker_error(res: dict[str, Any], env: Any) -> Exception:
    from aialliance_cli.errors import RuntimeFailure

    code = int((res.get("failure") or {}).get("exit_code") or 1)
    msg = f"in environment '{env.name}' ({env.python}): {res.get('error') or 'no result'}"
    if code == 130:
        return KeyboardInterrupt()
    if code == 2:
        return BadInputError(msg)
    if code == 3:
        return UnavailableError(msg)
    return RuntimeFailure(msg)


# ----------------------------------------------------------------------------- loop
