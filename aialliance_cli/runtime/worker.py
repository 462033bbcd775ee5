"""Measure one benchmark configuration in a process of its own.

    python -m aialliance_cli.runtime.worker  < job.json

The job (JSON on stdin; runtime/job.py, :func:`aialliance_cli.runtime.sweep.make_job`)
names an already resolved ONNX file, so this process never exports or
downloads: it may run in another Python environment that holds another ONNX
Runtime build and only numpy, psutil, pyyaml, pydantic and platformdirs
beside it, with aia's own code on PYTHONPATH. It writes the result (a
``aia.result/1`` dict, failed or not) to ``job["result_path"]`` atomically,
or to stdout as one ``AIA-RESULT {...}`` line when no path is given, and
reports progress as ``AIA-EVENT {...}`` lines on stdout. SIGINT stops the
measurement and keeps what was measured (status "interrupted").

It never imports typer or rich: a fresh process per configuration must stay cheap.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The job protocol lives in runtime/job.py; its names stay importable from here.
from aialliance_cli.runtime import memory
from aialliance_cli.runtime.job import (  # noqa: F401
    EVENT_PREFIX,
    JOB_VERSION,
    RESULT_PREFIX,
    Event,
    _no_event,
    failed_result,
    failure_kind,
    overrides_from_dict,
    overrides_to_dict,
    target_from_dict,
    target_to_dict,
)

# ----------------------------------------------------------------------------- measuring


def _fit_batch(target: Any, ov: Any) -> Any:
    """A batch asked of a model whose batch dim is fixed: fine if equal, a clear error if not."""
    from dataclasses import replace

    from aialliance_cli.errors import ModelError
    from aialliance_cli.runtime.inputs import DIM_ALIASES

    if ov.batch is None:
        return ov
    from aialliance_cli.models.protoscan import scan_model

    try:
        graph = scan_model(target.model_path).graph
    except Exception:
        return ov  # let ONNX Runtime say what is wrong
    if graph is None:
        return ov
    inits = {i.name for i in graph.initializers}
    firsts: list[tuple[str, Any]] = []
    for inp in graph.inputs:
        if inp.name in inits or not inp.dims:
            continue
        firsts.append((inp.name, inp.dims[0]))
    symbolic = [v for _, v in firsts if isinstance(v, str) and v]
    names = {d for i in graph.inputs for d in (i.dims or ()) if isinstance(d, str) and d}
    if any(DIM_ALIASES["batch"].search(n) for n in names) or symbolic or not firsts:
        return ov
    fixed = {v for _, v in firsts if isinstance(v, int)}
    if fixed == {ov.batch}:
        return replace(ov, batch=None)  # already that batch: nothing to override
    shown = ", ".join(f"{n}: {v}" for n, v in firsts)
    raise ModelError(
        f"the model {target.model_path} has a fixed batch dimension ({shown}); "
        f"it cannot run batch {ov.batch}. Export it with a symbolic batch to sweep --batch."
    )


def measure(job: dict[str, Any], on_event: Event = _no_event) -> dict[str, Any]:
    """Open the session and measure one configuration; raises aia's errors.

    ``job["kind"]`` picks the measurement: "bench" (the default) or "profile"
    (:func:`measure_profile`).
    """
    if job.get("kind", "bench") == "profile":
        return measure_profile(job, on_event)
    if job.get("kind") == "tune":
        from aialliance_cli.tune.trial import measure_trial

        return measure_trial(job, on_event)
    from aialliance_cli.runtime.api import bench, bench_settings, open_session

    target = target_from_dict(job["target"])
    # The batch of fixed-batch and unnamed-axis models is checked by inputs.resolve_dims.
    ov = overrides_from_dict(job["overrides"])
    bench_settings(target, ov)  # bad counts are bad input before any session is built

    def status(msg: str) -> None:
        on_event({"event": "status", "message": msg})

    def progress(done: int, total: int | None, elapsed: float) -> None:
        on_event({"event": "progress", "done": done, "total": total, "elapsed": elapsed})

    def measured() -> None:
        _disarm_interrupts()  # the statistics of what was measured are always computed
        on_event({"event": "measured"})  # the parent's --timeout stops counting

    prepared = open_session(target, ov, status=status)
    _arm_interrupts()  # a Ctrl-C that came while importing or building is honoured now
    on_event({"event": "session", "ep": prepared.built.ep})
    scenario = job.get("scenario")
    if scenario:
        result = _loadgen_result(prepared, ov, scenario, status, measured)
    else:
        out = bench(overrides=ov, prepared=prepared, progress=progress, on_measured=measured)
        result = out.result.to_dict()
    result["profile"] = job["target"].get("profile_record") or result["profile"]
    result["config"] = job.get("config") or {}
    result["environment"] = job.get("environment")
    if job.get("check_outputs") and result.get("status") == "ok":
        _check_outputs(job, prepared, target, result, status)
    return result


def _check_outputs(job: dict[str, Any], prepared: Any, target: Any, result: dict, status) -> None:
    """``aia bench --check-outputs``: the reference inputs through this session (tune/accuracy)."""
    from aialliance_cli.tune.accuracy import agreement_warning, check_job_outputs

    status("checking the outputs against the fp32 CPU reference")
    result["agreement"] = check_job_outputs(job["check_outputs"], prepared.built.session, target)
    warning = agreement_warning(result["agreement"])
    if warning:
        result.setdefault("warnings", []).append(warning)


def measure_profile(job: dict[str, Any], on_event: Event = _no_event) -> dict[str, Any]:
    """``aia profile`` of one EP (``overrides.ep``) here, for a parent in another environment.

    ``job["profile"]`` holds ``top`` and ``trace`` (an absolute path the Chrome trace
    is copied to, or None). Returns the kind "profile" Result dict with the
    ``op_profile`` and ``profile_run`` keys of :func:`opmeasure.ep_profile_to_dict`.
    """
    from aialliance_cli.runtime.opmeasure import ep_profile_to_dict, profile_here

    target = target_from_dict(job["target"])
    ov = overrides_from_dict(job["overrides"])
    opts = job.get("profile") or {}

    def status(msg: str) -> None:
        on_event({"event": "status", "message": msg})

    def progress(done: int, total: int | None, elapsed: float) -> None:
        on_event({"event": "progress", "done": done, "total": total, "elapsed": elapsed})

    def on_session(ep: str) -> None:
        on_event({"event": "session", "ep": ep})
        _arm_interrupts()  # a Ctrl-C that came while importing or building is honoured now

    def measured() -> None:
        _disarm_interrupts()
        on_event({"event": "measured"})

    # This environment was chosen for the EP: it never routes further.
    measured = profile_here(
        target,
        ov,
        top=int(opts.get("top") or 10),
        trace=Path(opts["trace"]) if opts.get("trace") else None,
        status=status,
        progress=progress,
        on_session=on_session,
        on_measured=measured,
    )
    result = ep_profile_to_dict(measured)
    result["profile"] = job["target"].get("profile_record") or result["profile"]
    result["config"] = job.get("config") or {}
    result["environment"] = job.get("environment")
    return result


def _loadgen_result(
    p: Any,
    ov: Any,
    sc: dict[str, Any],
    status: Callable[[str], None],
    measured: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Run one LoadGen scenario over the prepared input sets; a kind 'bench' result."""
    import time

    from aialliance_cli.results.schema import Result
    from aialliance_cli.runtime import api
    from aialliance_cli.runtime.bench import _peak_rss_bytes
    from aialliance_cli.runtime.loadgen import (
        LoadGenInterrupted,
        loadgen_progress,
        normalize_scenario,
        run_scenario,
    )

    name = normalize_scenario(sc["name"])
    settings = api.bench_settings(p.target, ov)
    batch = api._batch_of(p)
    feeds, n = p.feeds, len(p.feeds)
    run = p.built.session.run
    rows = name in ("offline", "multi-stream")
    if rows:
        # A LoadGen sample is one row; LoadGen groups them into batches of the model's batch.
        def infer(indices: list[int]) -> None:
            for i in range(0, len(indices), batch):
                run(None, feeds[(indices[i] // batch) % n])

        total = n * batch
    else:
        # A sample is one model input of the configured batch, one session.run each.
        def infer(indices: list[int]) -> None:
            for idx in indices:
                run(None, feeds[idx % n])

        total = n
    for i in range(settings.warmup):
        run(None, feeds[i % n])
    status(f"LoadGen {name} on {p.built.ep}")
    min_s = float(sc.get("min_duration_s") or 10.0)
    t0, cpu0 = time.perf_counter(), os.times()
    interrupted = False
    try:
        report = run_scenario(
            infer,
            scenario=name,
            total_samples=total,
            target_qps=sc.get("target_qps"),
            target_latency_ms=sc.get("target_latency_ms"),
            min_duration_s=float(sc.get("min_duration_s") or 10.0),
            min_queries=sc.get("min_queries"),
            samples_per_query=sc.get("samples_per_query"),
            max_batch=batch if rows else 1,
            server_threads=int(sc.get("server_threads") or 1),
            log_dir=Path(sc["log_dir"]),
            on_tick=lambda n, s: status(loadgen_progress(name, p.built.ep, n, s, min_s)),
            on_stop=measured,  # a signal now must not lose what was measured
        )
    except LoadGenInterrupted as stop:
        report, interrupted = stop.report, True  # aia's record of the completed queries
    if not interrupted:
        measured()
    wall, cpu1 = time.perf_counter() - t0, os.times()
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    lg = report.to_dict()
    samples_per_s = report.qps if rows else report.qps * batch
    metrics: dict[str, Any] = {
        "loadgen": lg,
        "iterations": report.samples_processed // batch if rows else report.samples_processed,
        "warmup": settings.warmup,
        "wall_s": wall,
        "samples_per_s": samples_per_s,
        "throughput_per_s": samples_per_s / batch,
        "session_create_s": p.built.create_s,
        "session_memory_bytes": p.built.rss_added_bytes,
        "peak_rss_bytes": _peak_rss_bytes(),
        "huge_pages_bytes": memory.huge_pages_bytes(),
        "cpu_percent": 100.0 * busy / wall if wall > 0 else None,
        "cpu_percent_of_machine": 100.0 * busy / wall / (os.cpu_count() or 1) if wall > 0 else None,
    }
    if name != "offline":  # offline latencies are queueing times of one huge query
        pct = report.latency_ms
        metrics["latency_ms"] = {
            "min": report.min_latency_ms,
            "mean": report.mean_latency_ms,
            "p50": pct.get("p50"),
            "p90": pct.get("p90"),
            "p95": pct.get("p95"),
            "p99": pct.get("p99"),
            "max": report.max_latency_ms,
        }
    warnings = list(p.warnings)
    if interrupted:
        metrics["loadgen"]["interrupted"] = True
        warnings.append(
            f"interrupted after {report.samples_processed} LoadGen samples: the metrics are "
            "aia's record of the queries completed until then"
        )
    elif not report.valid:
        warnings.append("LoadGen: INVALID (" + "; ".join(report.invalid_reasons) + ")")
    result = Result(
        kind="bench",
        profile=p.target.profile_record(),
        model=p.target.model_info,
        machine=p.inventory.to_dict(),
        onnxruntime=api._ort_record(p.inventory),
        ep=api._ep_record(p),
        settings=api._settings_record(
            p,
            {
                "scenario": name,
                "warmup": settings.warmup,
                "strict": ov.strict,
                "loadgen": dict(lg["settings"]),
            },
        ),
        metrics=metrics,
        warnings=warnings,
        status="interrupted" if interrupted else "ok",
    ).to_dict()
    result["loadgen_logs"] = {
        "dir": str(Path(sc["log_dir"])),
        "summary": lg["summary_path"],
        "detail": lg["detail_path"],
    }
    return result


def execute(job: dict[str, Any], on_event: Event = _no_event) -> dict[str, Any]:
    """:func:`measure`, with every failure turned into a failed (or interrupted) result."""
    try:
        return measure(job, on_event)
    except KeyboardInterrupt:
        return failed_result(
            job,
            "interrupted before anything was measured",
            kind="interrupted",
            exit_code=130,
            status="interrupted",
        )
    except ImportError as exc:
        where = (job.get("environment") or {}).get("name") or "the current environment"
        return failed_result(
            job,
            f"{where} ({sys.executable}) cannot import what aia's worker needs: {exc}",
            kind="runtime",
            exit_code=1,
        )
    except Exception as exc:
        kind, code = failure_kind(exc)
        msg = (
            str(exc)
            if kind != "runtime" or hasattr(exc, "exit_code")
            else (f"unexpected {type(exc).__name__}: {exc}")
        )
        if os.environ.get("AIA_DEBUG"):
            import traceback

            traceback.print_exc()
        return failed_result(job, msg, kind=kind, exit_code=code)


# ----------------------------------------------------------------------------- process


def _emit(event: dict[str, Any]) -> None:
    try:
        sys.stdout.write(EVENT_PREFIX + json.dumps(event) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):  # the parent stopped listening; measuring goes on
        pass


_PENDING_INTERRUPT = False
_ARMED = False
_PARENT: int | None = None  # the pid of the aia that launched this worker


def _on_signal(signum: int, frame: Any) -> None:
    """SIGINT, SIGTERM, SIGHUP: stop measuring and keep what was measured.

    A KeyboardInterrupt raised while a C extension (onnxruntime) is importing can be
    lost; until the session exists the signal is remembered and raised afterwards.
    After the loop (:func:`_disarm_interrupts`) it is ignored: the statistics of what
    was measured are computed and written. With the parent gone, the worker ends.
    """
    global _PENDING_INTERRUPT
    if _PARENT is not None and os.getppid() != _PARENT:
        _orphaned()
    if _ARMED:
        _disarm_interrupts()  # one signal stops the loop; a second must not stop the rest
        raise KeyboardInterrupt
    _PENDING_INTERRUPT = True


def _arm_interrupts() -> None:
    global _ARMED
    _ARMED = True
    if _PENDING_INTERRUPT:
        raise KeyboardInterrupt


def _disarm_interrupts() -> None:
    """The loop is over: a signal now must not throw away its measurement."""
    global _ARMED
    _ARMED = False


_ORPHAN_LOCK = threading.Lock()


def _orphaned() -> None:
    """The aia that launched this worker is gone: remove its temp folder and end now."""
    with _ORPHAN_LOCK:
        workdir = os.environ.get("AIA_WORKER_DIR")
        if workdir and Path(workdir).name.startswith("aia-worker-"):
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        os._exit(1)


def _preload() -> None:
    """What every job needs, loaded (and the machine read) while the parent prepares the job.

    The inventory and the EP plan are what every measurement asks for first; both are
    memoised per process, so the job finds them ready. (Loading the modules needed after
    the session in a thread during its build was tried: the GIL made both slower.)
    """
    with contextlib.suppress(Exception):  # the job itself will say what is broken
        import numpy  # noqa: F401
        import numpy.random  # noqa: F401
        import onnxruntime  # noqa: F401
        import psutil  # noqa: F401

        from aialliance_cli import limits, paths, profiles, providers, smallfile  # noqa: F401
        from aialliance_cli.analysis import facts, placement  # noqa: F401
        from aialliance_cli.hardware import detect, energy, peak  # noqa: F401
        from aialliance_cli.models import protoscan  # noqa: F401
        from aialliance_cli.profiles import view  # noqa: F401
        from aialliance_cli.providers import plugins  # noqa: F401
        from aialliance_cli.results import (
            stats,  # noqa: F401
            store,  # noqa: F401
        )
        from aialliance_cli.runtime import api, bench, inputs, preprocess, session  # noqa: F401

        detect()
        paths.user_dirs()
        with contextlib.suppress(ImportError):
            import tokenizers  # noqa: F401


def _arm_parent_death() -> None:
    """Linux: SIGTERM this process when the parent dies (the handler then ends it)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    global _PARENT
    ppid = os.environ.get("AIA_WORKER_PARENT")
    if ppid and ppid.isdigit():
        _PARENT = int(ppid)  # from now on a signal with the parent gone ends the worker
        if os.getppid() != _PARENT:
            _orphaned()  # the parent died before the death signal was set


def _watch_parent() -> None:
    """End with the parent, however it ends (SIGKILL too).

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (the handler sees the new parent
    pid and calls :func:`_orphaned`). Everywhere: a thread reading stdin, which the
    parent holds open until the worker ends, sees EOF when the parent is gone.
    """
    global _PARENT
    ppid = os.environ.get("AIA_WORKER_PARENT")
    if not ppid or not ppid.isdigit():
        return
    _PARENT = int(ppid)
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != _PARENT:  # it died before the death signal was set
        _orphaned()

    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        _orphaned()

    threading.Thread(target=watch, name="aia-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """Read the job from stdin (or the file named as the argument), write the result.

    Launched by runtime/launch.py, the job is one line on stdin, which then stays
    open until the worker ends (its EOF means the parent is gone).
    """
    import signal

    handled = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    for sig in handled:
        signal.signal(sig, _on_signal)
    if hasattr(signal, "pthread_sigmask"):  # a parent may spawn with them blocked
        signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
    args = sys.argv[1:] if argv is None else argv
    if args:
        text = Path(args[0]).read_text(encoding="utf-8")
    elif os.environ.get("AIA_WORKER_PARENT"):
        if os.environ.get("AIA_WORKER_PRELOAD") == "1":
            _arm_parent_death()  # started ahead of its job: end with the parent meanwhile
            _preload()
        text = sys.stdin.readline()
        if not text.strip():
            # No job will come: the parent is gone or had no use for this worker. (Its EOF
            # can arrive before the kernel reparents this process, so getppid() cannot tell.)
            _orphaned()
        _watch_parent()
    else:
        text = sys.stdin.read()
    job = json.loads(text)
    if job.get("version", JOB_VERSION) > JOB_VERSION:
        sys.stderr.write(f"aia worker: job version {job['version']} is newer than {JOB_VERSION}\n")
        return 2
    result = execute(job, _emit)
    _disarm_interrupts()
    from aialliance_cli.results.store import dumps

    if job.get("result_path"):
        from aialliance_cli.atomicfile import write_text_atomic

        # A temp file the parent reads at once: atomic, but no fsync (a crash of the
        # machine loses the run anyway) and no indentation.
        write_text_atomic(Path(job["result_path"]), dumps(result) + "\n")
    else:
        sys.stdout.write(RESULT_PREFIX + dumps(result) + "\n")
        sys.stdout.flush()
    if result.get("status") == "ok":
        code = 0
    elif result.get("status") == "interrupted":
        code = 130
    else:
        code = int((result.get("failure") or {}).get("exit_code") or 1)
    _exit_now_if_stray(code)
    return code


def _exit_now_if_stray(code: int) -> None:
    """A LoadGen run stopped by a signal may still be inside LoadGen's own threads: the
    result is written, so end the process now rather than wait for them."""
    loadgen = sys.modules.get("aialliance_cli.runtime.loadgen")
    if loadgen is not None and loadgen.still_running():
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    exit_code = main()
    # The result is written and flushed: skip the interpreter's teardown (ONNX Runtime's
    # sessions, thread pools and EP libraries take a tenth of a second to unload), which
    # the parent would otherwise wait for before it can show the result.
    import atexit

    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(exit_code)
