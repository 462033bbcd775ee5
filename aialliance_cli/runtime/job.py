"""The worker protocol: the job a worker reads, the events it writes, its failed results.

    job (JSON)      {"version", "kind", "target", "overrides", "config", "environment",
                     "scenario" | "profile", "result_path"}
    event line      ``AIA-EVENT {...}`` on the worker's stdout
    result          an ``aia.result/1`` dict; :func:`failed_result` when nothing was measured

The lowest layer of the worker stack (job <- worker <- launch <- sweep, oprun,
tune, fleet): it imports nothing of the modules that run or launch a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

EVENT_PREFIX = "AIA-EVENT "
RESULT_PREFIX = "AIA-RESULT "
JOB_VERSION = 1

Event = Callable[[dict[str, Any]], None]


def _no_event(_: dict[str, Any]) -> None:
    pass


# ----------------------------------------------------------------------------- job parts


def overrides_to_dict(ov: Any) -> dict[str, Any]:
    """An api.Overrides as JSON-able data (paths as absolute strings)."""
    out: dict[str, Any] = {}
    for f in fields(ov):
        value = getattr(ov, f.name)
        if f.name == "input_files":
            value = [str(Path(p).expanduser().absolute()) for p in value]
        elif f.name == "dims":
            value = {str(k): int(v) for k, v in dict(value).items()}
        out[f.name] = value
    return out


def overrides_from_dict(data: dict[str, Any]) -> Any:
    from aialliance_cli.runtime.api import Overrides

    known = {f.name for f in fields(Overrides)}
    kwargs = {k: v for k, v in data.items() if k in known}
    kwargs["input_files"] = tuple(Path(p) for p in kwargs.get("input_files") or ())
    kwargs["dims"] = dict(kwargs.get("dims") or {})
    return Overrides(**kwargs)


def target_to_dict(target: Any) -> dict[str, Any]:
    """What the worker needs of an api.Target: the resolved files, never the source."""
    loaded = target.loaded
    return {
        "name": target.name,
        # Absolute: the worker runs in another folder.
        "model_path": str(Path(target.model_path).absolute()),
        "tokenizer_dir": str(Path(target.tokenizer_dir).absolute())
        if target.tokenizer_dir
        else None,
        "model_info": dict(target.model_info),
        "profile_path": str(Path(loaded.path).absolute()) if loaded is not None else None,
        "profile_origin": getattr(loaded, "origin", None),
        "profile_record": target.profile_record(),
    }


def target_from_dict(data: dict[str, Any]) -> Any:
    from aialliance_cli.runtime.api import Target

    loaded = None
    if data.get("profile_path"):
        from aialliance_cli.profiles import load_profile

        loaded = load_profile(Path(data["profile_path"]), origin=data.get("profile_origin"))
    return Target(
        name=data["name"],
        model_path=Path(data["model_path"]),
        loaded=loaded,
        tokenizer_dir=Path(data["tokenizer_dir"]) if data.get("tokenizer_dir") else None,
        model_info=dict(data.get("model_info") or {}),
    )


# ----------------------------------------------------------------------------- results


def failure_kind(exc: BaseException) -> tuple[str, int]:
    """(kind, exit code) of an error: bad-input 2, unavailable 3, runtime 1."""
    from aialliance_cli.errors import AiaError, ExitCode

    if isinstance(exc, AiaError):
        code = int(exc.exit_code)
        kind = {2: "bad-input", 3: "unavailable"}.get(code, "runtime")
        return kind, code
    return "runtime", int(ExitCode.RUNTIME_FAILURE)


def failed_result(
    job: dict[str, Any],
    error: str,
    *,
    kind: str = "runtime",
    exit_code: int = 1,
    status: str = "failed",
    machine: dict[str, Any] | None = None,
    onnxruntime: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An aia.result/1 dict for a configuration that produced no measurement."""
    from aialliance_cli.results.schema import Result

    cfg = job.get("config") or {}
    ov = job.get("overrides") or {}
    tgt = job.get("target") or {}
    settings: dict[str, Any] = {
        "intra_op_threads": ov.get("threads"),
        "batch": ov.get("batch"),
        "dims": dict(ov.get("dims") or {}),
        "input_sets": ov.get("input_sets"),
        "warmup": ov.get("warmup"),
        "iterations": ov.get("iterations"),
        "duration_s": ov.get("duration_s"),
        "strict": ov.get("strict"),
    }
    if job.get("scenario"):
        settings["scenario"] = job["scenario"]["name"]
    res = Result(
        kind="bench",
        profile=tgt.get("profile_record") or {"name": tgt.get("name")},
        model=tgt.get("model_info") or {},
        machine=machine if machine is not None else _machine_record(),
        onnxruntime=onnxruntime if onnxruntime is not None else _ort_record_here(job),
        ep={
            "requested": cfg.get("ep"),
            "name": None,
            "device": _asked_device(cfg.get("ep")),
            "options": {},
            "providers": [],
            "fallbacks": [],
        },
        settings=settings,
        metrics={},
        status=status,
        error=error,
    ).to_dict()
    res["config"] = cfg
    res["environment"] = job.get("environment")
    res["failure"] = {"kind": kind, "exit_code": int(exit_code)}
    return res


def _asked_device(ep: str | None) -> str | None:
    """The device kind a configuration asked for, named as successful records name it: the
    CPU where the EP serves one (its default, as OpenVINO's), else its first kind (CUDA: gpu)."""
    if not ep:
        return None
    from aialliance_cli.providers.catalogue import find_spec

    spec = find_spec(ep)
    kinds = [t.kind for t in spec.targets] if spec is not None else []
    return "cpu" if "cpu" in kinds else (kinds[0] if kinds else None)


def _machine_record() -> dict[str, Any]:
    try:
        from aialliance_cli.hardware import detect

        return detect().to_dict()
    except Exception:  # a failed result must still be written
        return {}


def _ort_record_here(job: dict[str, Any]) -> dict[str, Any]:
    env = job.get("environment")
    if env:
        return {"version": env.get("onnxruntime"), "distributions": [env.get("distribution")]}
    try:
        import onnxruntime as ort

        return {"version": ort.__version__, "available_providers": ort.get_available_providers()}
    except Exception:
        return {}
