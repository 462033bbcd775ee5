"""Build an ONNX Runtime session on a chosen EP, falling back along the plan.

ONNX Runtime's Python layer may silently retry on the CPU when an EP fails to
initialise; aia compares what it got with what it asked for and records every
fallback.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError, ModelError, RuntimeFailure, UnavailableError

OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}
EXEC_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}


@dataclass(frozen=True)
class SessionSpec:
    """What to ask ONNX Runtime for; one EP plus fallbacks to try in order."""

    ep: str
    options: dict[str, Any] = field(default_factory=dict)
    # Each fallback: (ep, options) or (ep, options, source, device_kind).
    fallbacks: tuple[tuple[Any, ...], ...] = ()
    source: str = "build"  # "plugin": chosen through its devices (add_provider_for_devices)
    device_kind: str | None = None
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    graph_optimization_level: str = "all"
    execution_mode: str = "sequential"
    config: dict[str, str] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)  # free-dimension overrides
    enable_profiling: bool = False
    profile_prefix: str | None = None
    record_placement: bool = True
    strict: bool = False
    custom_ops_library: str | None = None
    # ONNX Runtime's memory pattern traces a run's allocations and replays them for later
    # runs with the same input shapes. A decoder's shapes change at every step (the
    # attention mask grows by one), so each step traces a new pattern and none is ever
    # replayed: text generation turns it off (10-15% of a decode step measured here).
    mem_pattern: bool = True


@dataclass(frozen=True)
class Fallback:
    requested: str
    error: str
    used_instead: str


@dataclass
class BuiltSession:
    session: Any  # onnxruntime.InferenceSession
    ep: str
    options: dict[str, Any]
    providers: tuple[str, ...]  # session.get_providers()
    create_s: float
    rss_added_bytes: int | None
    fallbacks: list[Fallback]
    spec: SessionSpec

    @property
    def requested_ep(self) -> str:
        return self.spec.ep

    def fallback_warnings(self) -> list[str]:
        """One line per EP that was asked for and could not be had."""
        return [
            f"{fb.requested} could not be used; ran on {fb.used_instead} instead: {fb.error}"
            for fb in self.fallbacks
        ]


def session_options(spec: SessionSpec) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = spec.intra_op_threads
    so.inter_op_num_threads = spec.inter_op_threads
    so.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, OPT_LEVELS[spec.graph_optimization_level]
    )
    so.execution_mode = getattr(ort.ExecutionMode, EXEC_MODES[spec.execution_mode])
    so.log_severity_level = 3
    if not spec.mem_pattern:
        so.enable_mem_pattern = False
    for name, value in spec.dims.items():
        # Fixing free dimensions lets EPs that compile static shapes (OpenVINO, TensorRT) do so.
        so.add_free_dimension_override_by_name(name, int(value))
    for key, value in spec.config.items():
        so.add_session_config_entry(str(key), str(value))
    if spec.record_placement:
        # Older builds lack the entry: the placement then comes from the log.
        with contextlib.suppress(Exception):
            so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    if spec.enable_profiling:
        so.enable_profiling = True
        if spec.profile_prefix:
            so.profile_file_prefix = spec.profile_prefix
    if spec.custom_ops_library:
        try:
            so.register_custom_ops_library(spec.custom_ops_library)
        except Exception as exc:  # not a library, or no RegisterCustomOps in it: bad input
            raise BadInputError(
                f"custom_ops_library {spec.custom_ops_library} is not an ONNX Runtime "
                "custom-op library (a shared library for this platform that exports "
                f"RegisterCustomOps): {_gist(exc)}"
            ) from None
    return so


def _rss() -> int | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except Exception:
        return None


def _stringify(options: dict[str, Any]) -> dict[str, str]:
    # EP options are strings at the C API; bools must be "True"/"true" per EP, keep as str().
    return {str(k): str(v) for k, v in options.items()}


def _try_build(
    model: Path,
    spec: SessionSpec,
    ep: str,
    options: dict[str, Any],
    source: str = "build",
    device_kind: str | None = None,
) -> Any:
    import onnxruntime as ort

    so = session_options(spec)
    if source == "plugin":
        # A plugin EP asked for by name silently runs on the CPU: choose it by device.
        from aialliance_cli.providers.plugins import select_ep_devices

        devices = select_ep_devices(ort, ep, device_kind)
        if not devices:
            raise RuntimeError(f"plugin EP {ep} offers no {device_kind or ''} device")
        so.add_provider_for_devices(devices, _stringify(options))
        return _quietly(lambda: ort.InferenceSession(os.fspath(model), sess_options=so))
    providers: list[Any] = [(ep, _stringify(options))] if options else [ep]
    if ep != "CPUExecutionProvider":
        # Name the CPU EP explicitly so that nodes the EP cannot take have a home;
        # what really ran where is read back from the session afterwards.
        providers.append("CPUExecutionProvider")
    return _quietly(
        lambda: ort.InferenceSession(os.fspath(model), sess_options=so, providers=providers)
    )


_LAST_EP_ERROR: list[str] = []


def _quietly(create: Any) -> Any:
    """Create a session with stdout captured.

    ONNX Runtime's Python layer *prints* "EP Error ... Falling back to [...] and
    retrying" when an EP fails to initialise; that would corrupt `--json` on
    stdout, and it is the only place the EP's own error appears. Keep it as the
    fallback reason instead.
    """
    import io
    from contextlib import redirect_stdout

    from aialliance_cli.analysis.placement import capture_session_log

    buf = io.StringIO()
    _LAST_EP_ERROR.clear()
    try:
        with redirect_stdout(buf):
            # fd-level capture: the C++ "Failed to create ...ExecutionProvider" lines too.
            sess, log = capture_session_log(create)
    finally:
        for line in buf.getvalue().splitlines():
            if line.startswith("EP Error"):
                _LAST_EP_ERROR.append(line[len("EP Error") :].strip())
    for line in log.splitlines():
        if "Failed to create" in line or "[E:" in line:
            text = _ANSI.sub("", line)
            text = text.split("[ERROR]", 1)[-1] if "[ERROR]" in text else text.split("] ", 1)[-1]
            _LAST_EP_ERROR.append(text.strip())
    return sess


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def build_session(model: Path, spec: SessionSpec) -> BuiltSession:
    """Create the session on ``spec.ep``; on failure try ``spec.fallbacks`` unless strict.

    Raises UnavailableError (exit 3) under ``strict`` when the EP cannot be had,
    ModelError when the model itself is refused, RuntimeFailure otherwise.
    """
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    attempts = [(spec.ep, dict(spec.options), spec.source, spec.device_kind), *spec.fallbacks]
    fallbacks: list[Fallback] = []
    last_error = ""
    for i, attempt in enumerate(attempts):
        ep, options = attempt[0], attempt[1]
        source = attempt[2] if len(attempt) > 2 else "build"
        device_kind = attempt[3] if len(attempt) > 3 else None
        if ep not in available and source != "plugin":
            last_error = f"{ep} is not in this ONNX Runtime build"
            if spec.strict and i == 0:
                raise UnavailableError(
                    f"{ep} is not available in this ONNX Runtime build "
                    f"(available: {', '.join(sorted(available))}).",
                    hint=_install_hint(ep),
                )
            fallbacks.append(Fallback(ep, last_error, ""))
            continue
        before = _rss()
        t0 = time.perf_counter()
        try:
            sess = _try_build(model, spec, ep, options, source, device_kind)
        except BadInputError:
            raise  # the same on every EP (a bad custom-op library): no fallback
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            msg = _gist(exc)
            if _is_model_problem(msg):
                raise ModelError(f"ONNX Runtime refused the model {model}: {msg}") from exc
            last_error = msg
            if spec.strict:
                raise UnavailableError(
                    f"{ep} failed while building the session: {msg} "
                    "(--strict forbids falling back to another EP)."
                ) from exc
            fallbacks.append(Fallback(ep, msg, ""))
            continue
        create_s = time.perf_counter() - t0
        after = _rss()
        got = tuple(sess.get_providers())
        if got and got[0] != ep:
            # ORT's silent retry on the CPU: we asked for ep but did not get it.
            reason = f"ONNX Runtime silently fell back to {got[0]} while initialising {ep}"
            if _LAST_EP_ERROR:
                reason += f": {_LAST_EP_ERROR[0]}"
            if spec.strict:
                raise UnavailableError(f"{reason} (--strict forbids this).")
            fallbacks.append(Fallback(ep, reason, got[0]))
            ep, options = got[0], {}
        fallbacks = [Fallback(f.requested, f.error, f.used_instead or ep) for f in fallbacks]
        return BuiltSession(
            session=sess,
            ep=ep,
            options=dict(sess.get_provider_options().get(ep, options)) or dict(options),
            providers=got,
            create_s=create_s,
            rss_added_bytes=(after - before) if (after and before) else None,
            fallbacks=fallbacks,
            spec=spec,
        )
    raise RuntimeFailure(
        f"no execution provider could build a session for {model}; last error: {last_error}"
    )


def _install_hint(ep: str) -> str | None:
    try:
        from aialliance_cli.providers.catalogue import install_hint

        return install_hint(ep)
    except Exception:
        return None


def _gist(exc: BaseException) -> str:
    # The whole message, on one line: records keep it all; the screen shortens it.
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


_MODEL_MARKERS = (
    "INVALID_GRAPH",
    "INVALID_PROTOBUF",
    "NO_MODEL",
    "Load model from",
    "ModelProto does not have a graph",
    "is not a registered function/op",
    "Unsupported model IR version",
)


def _is_model_problem(msg: str) -> bool:
    return any(marker in msg for marker in _MODEL_MARKERS)
