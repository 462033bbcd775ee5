"""What runs on a node, as a Ray task: aia's own detection and benchmark code, there.

These functions are plain (Ray wraps them in run.py), take and return plain
data, and never raise for a failure of the benchmark itself: it becomes an
``aia.result/1`` record with status "failed" and its reason, so that the
driver always learns what happened on the node.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # called outside a Ray task (unit tests)
        return None


def _niceness() -> int | None:
    """This thread's niceness, which a process it starts inherits (None: no such thing)."""
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        return None


def _lower_niceness() -> int | None:
    """Back to nice 0 where the node allows it (Ray starts task workers at 15 unless told
    otherwise, and aia's measuring worker inherits it); the niceness it runs at."""
    nice = _niceness()
    if nice is not None and nice > 0:
        with contextlib.suppress(OSError):  # lowering it needs privileges
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        nice = _niceness()
    return nice


def niceness_warning(nice: int | None) -> str | None:
    """A warning when the benchmark ran below normal priority (a negative niceness,
    where an administrator started Ray so, is no handicap)."""
    if nice is None or nice <= 0:
        return None
    return (
        f"measured at nice {nice} (the Ray worker's, which aia could not lower): the "
        "node's Ray daemons and other processes win the CPU over the benchmark; start "
        "Ray on the node at nice 0 and with RAY_worker_niceness=0"
    )


def runtime_record() -> dict[str, Any]:
    """Which aia, Ray and Python ran on the node (a fleet needs them to match)."""
    from aialliance_cli import __version__

    try:
        import ray

        ray_version = ray.__version__
    except ImportError:
        ray_version = None
    return {
        "node_id": _node_id(),
        "aia_version": __version__,
        "ray_version": ray_version,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "pid": os.getpid(),
        "niceness": _niceness(),
    }


def node_detect() -> dict[str, Any]:
    """``aia detect --json`` of the node this runs on, plus which aia, Ray and Python ran it."""
    from aialliance_cli.hardware import detect
    from aialliance_cli.providers.planner import plan_for_machine

    inventory = detect()
    the_plan = plan_for_machine(inventory=inventory)
    return {
        "schema": "aia.detect/1",
        "inventory": inventory.to_dict(),
        "plan": the_plan.to_dict(),
        "runtime": runtime_record(),
    }


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stub_job(spec: dict[str, Any]) -> dict[str, Any]:
    """What failed_result needs to describe a benchmark that never started."""
    name = spec.get("profile_name") or spec.get("target") or "default"
    eps = spec.get("eps") or []
    return {
        "target": {
            "name": name,
            "profile_record": {"name": name},
            "model_info": {},
        },
        "config": {"ep": eps[0] if len(eps) == 1 else None, "label": name},
        "overrides": spec.get("overrides") or {},
    }


def _shipped_target(spec: dict[str, Any], model: bytes, workdir: Path) -> Any:
    """The driver's ONNX file (and profile), written here after their sha256 is checked."""
    from aialliance_cli.errors import RuntimeFailure
    from aialliance_cli.runtime.api import Target

    ship = spec["ship"]
    got = sha256_bytes(model)
    if got != ship["sha256"]:
        raise RuntimeFailure(
            f"the shipped model arrived with sha256 {got}, not the driver's {ship['sha256']} "
            f"({len(model)} of {ship['size_bytes']} bytes): the object store corrupted it"
        )
    path = workdir / ship["filename"]
    path.write_bytes(model)
    loaded = None
    if ship.get("profile_yaml") is not None:
        from aialliance_cli.profiles import load_profile

        prof_path = workdir / ship.get("profile_filename", "profile.yaml")
        prof_path.write_text(ship["profile_yaml"], encoding="utf-8")
        loaded = load_profile(prof_path, origin=ship.get("profile_origin"))
    tokenizer_dir = None
    if ship.get("tokenizer_files"):
        tokenizer_dir = workdir / "tokenizer"
        tokenizer_dir.mkdir()
        for name, data in ship["tokenizer_files"].items():
            if sha256_bytes(data) != ship["tokenizer_sha256"][name]:
                raise RuntimeFailure(f"the shipped tokenizer file {name} arrived corrupted")
            (tokenizer_dir / Path(name).name).write_bytes(data)
    return Target(
        name=spec.get("profile_name") or path.stem,
        model_path=path,
        loaded=loaded,
        tokenizer_dir=tokenizer_dir,
        model_info={
            "path": str(path),
            "source": f"shipped by the fleet driver ({ship['driver_path']})",
            "sha256": got,
            "size_bytes": len(model),
        },
    )


def node_bench(spec: dict[str, Any], model: bytes | None = None) -> dict[str, Any]:
    """aia's bench (a sweep when lists are given) on this node; never raises for a failure.

    ``spec`` holds the target, the sweep lists and the overrides (see run.bench_spec);
    ``model`` is the ONNX file's bytes when the driver ships it (checked by sha256).
    Returns ``{"results": [...], "interrupted": bool, "runtime": {...}}``.
    """
    from aialliance_cli.runtime import sweep as S
    from aialliance_cli.runtime.launch import discard_prestarted, prestart_worker

    nice = _lower_niceness()  # before the worker starts: it inherits this thread's
    try:
        if S.SINGLE_IN_WORKER:
            prestart_worker()  # its Python and ONNX Runtime load while this task prepares
        out = _node_bench(spec, model)
    finally:
        discard_prestarted()  # one no configuration took (another environment's)
    warning = niceness_warning(nice)
    if warning is not None:
        for r in out["results"]:
            r.setdefault("warnings", []).append(warning)
    return out


def _node_bench(spec: dict[str, Any], model: bytes | None) -> dict[str, Any]:
    from aialliance_cli.errors import AiaError
    from aialliance_cli.hardware import detect
    from aialliance_cli.runtime import sweep as S
    from aialliance_cli.runtime.api import bench_settings, prepare_target
    from aialliance_cli.runtime.job import failure_kind, overrides_from_dict

    inventory = detect()
    machine = inventory.to_dict()
    workdir = Path(tempfile.mkdtemp(prefix="aia-fleet-"))
    results: list[dict[str, Any]] = []
    interrupted = False
    tuned: Any = None
    try:
        if spec.get("ship") is not None:
            if model is None:
                raise AiaError("--ship-model: the model's bytes did not arrive")
            tgt = _shipped_target(spec, model, workdir)
        else:
            tgt = prepare_target(spec.get("target"), allow_network=bool(spec.get("allow_network")))
        ov = overrides_from_dict(spec.get("overrides") or {})
        bench_settings(tgt, ov)
        from aialliance_cli.envs.registry import list_envs
        from aialliance_cli.models.variants import parse_variants

        variants = parse_variants(tgt, spec.get("variant"))
        envs = list_envs()
        here = S.current_eps(inventory)
        eps = spec.get("eps")
        if eps == [S.ALL]:
            eps = S.all_eps(here, envs)
        threads, batches = spec.get("threads"), spec.get("batches")
        if not spec.get("no_tuned"):  # this node's tuned record, as `aia bench` applies it
            from aialliance_cli.tune.apply import apply_tuned

            given = {
                "--ep": spec.get("eps"),
                "--threads": threads,
                "--batch": batches,
                "--variant": spec.get("variant"),
            }
            tuned = apply_tuned(tgt, ov, given=given, inventory=inventory, envs=envs)
            if tuned.record is not None:
                tgt, ov = tuned.target, tuned.overrides
                eps, threads = [ov.ep], [ov.threads]
                batches = [ov.batch] if ov.batch is not None else batches
        points = S.expand(eps, threads, batches, spec.get("dims") or {}, variants)
        planned = S.plan_sweep(
            tgt, ov, points, here=here, envs=envs, allow_network=bool(spec.get("allow_network"))
        )
        S.refuse_unavailable(planned)  # an EP in no environment of this node: exit 3
        outcome = S.run_sweep(planned, timeout_s=spec.get("timeout_s"), machine=machine)
        results = outcome.results
        interrupted = outcome.interrupted
        if tuned is not None and (tuned.record is not None or tuned.notes):
            for r in results:
                r["tuned"] = tuned.result_record()
    except AiaError as exc:
        kind, code = failure_kind(exc)
        results = [_failed(spec, str(exc), kind, code, machine)]
    except KeyboardInterrupt:  # ray.cancel: keep what finished
        interrupted = True
    except Exception as exc:  # an unforeseen failure on the node is that node's failure
        results = [_failed(spec, f"{type(exc).__name__}: {exc}", "runtime", 1, machine)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for r in results:
        if spec.get("ship") is not None:
            r.setdefault("model", {})["shipped"] = {
                "sha256": spec["ship"]["sha256"],
                "size_bytes": spec["ship"]["size_bytes"],
                "verified": r.get("status") == "ok" or "sha256" not in (r.get("error") or ""),
            }
    return {"results": results, "interrupted": interrupted, "runtime": runtime_record()}


def _failed(
    spec: dict[str, Any], msg: str, kind: str, code: int, machine: dict[str, Any]
) -> dict[str, Any]:
    from aialliance_cli.runtime.job import failed_result

    return failed_result(_stub_job(spec), msg, kind=kind, exit_code=code, machine=machine)
