"""MLPerf LoadGen scenarios around an ``infer`` callable (module ``mlperf_loadgen``).

The caller prepares its inputs and indexes them 0..total_samples-1; LoadGen
picks the indices, and the System Under Test (SUT) built here calls
``infer(indices)`` on them and reports each sample complete. The Query Sample
Library's load/unload are no-ops because the inputs already sit in memory.

- single-stream: one sample per query, the next query when the last ends;
  ``infer`` runs inline in LoadGen's issue thread.
- multi-stream: ``samples_per_query`` samples per query, run in batches of
  at most ``max_batch`` on a worker thread.
- server: Poisson arrivals at ``target_qps``; ``server_threads`` workers run
  the queries concurrently; a run is valid only if the
  ``server_target_latency_percentile`` (99%) latency meets ``target_latency_ms``.
- offline: one query of all samples, split into batches of ``max_batch``.

LoadGen owns process-global state, so one run at a time (a lock enforces it).

A signal (KeyboardInterrupt) during a run keeps what was measured: LoadGen runs
in a thread of its own while the calling thread waits, so the signal is seen at
once; the SUT then answers LoadGen's remaining queries without running the
model, and :class:`LoadGenInterrupted` carries a report built from aia's own
record of the queries completed until then (LoadGen has no way to stop a test
early). A LoadGen that does not finish within ``DRAIN_S`` is left to the
process's exit (:func:`still_running`), which then must be immediate.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aialliance_cli.errors import BadInputError, RuntimeFailure, UnavailableError

Scenario = Literal["single-stream", "multi-stream", "server", "offline"]
SCENARIOS: tuple[str, ...] = ("single-stream", "multi-stream", "server", "offline")
_LG_NAMES = {
    "single-stream": "SingleStream",
    "multi-stream": "MultiStream",
    "server": "Server",
    "offline": "Offline",
}
PERCENTILES = ("p50", "p90", "p95", "p97", "p99", "p99.9")
_PCT_KEYS = {"p50": "50.00", "p90": "90.00", "p95": "95.00", "p97": "97.00", "p99": "99.00",
             "p99.9": "99.90"}  # fmt: skip
DEFAULT_SERVER_LATENCY_MS = 100.0
DEFAULT_MULTI_STREAM_SAMPLES = 8

_RUN_LOCK = threading.Lock()
# After a signal, LoadGen gets this long to issue its remaining queries (answered at once).
DRAIN_S = 3.0
_STRAY: list[threading.Thread] = []  # LoadGen runs that did not end after a signal


def still_running() -> bool:
    """True when a LoadGen run stopped by a signal did not end within ``DRAIN_S``: its
    SUT and sample library were never destroyed, maybe still in use by LoadGen's own
    threads, so the process must end with ``os._exit`` (an interpreter shutdown would
    wait for them, or crash tearing them down)."""
    return bool(_STRAY)


@dataclass(frozen=True)
class LoadGenReport:
    """What LoadGen measured and decided for one scenario run."""

    scenario: str
    valid: bool
    invalid_reasons: list[str]
    qps: float  # samples per second as LoadGen reports it for the scenario
    latency_ms: dict[str, float]  # p50, p90, p95, p97, p99, p99.9 (per query)
    samples_processed: int
    mean_latency_ms: float
    min_latency_ms: float
    max_latency_ms: float
    query_count: int
    duration_s: float  # first issue to last completion, measured by the SUT
    summary_path: Path
    detail_path: Path
    raw_summary: dict[str, Any]  # "key : value" lines of mlperf_log_summary.txt
    settings: dict[str, Any] = field(default_factory=dict)  # what LoadGen was given
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "valid": self.valid,
            "invalid_reasons": list(self.invalid_reasons),
            "qps": self.qps,
            "latency_ms": dict(self.latency_ms),
            "samples_processed": self.samples_processed,
            "mean_latency_ms": self.mean_latency_ms,
            "min_latency_ms": self.min_latency_ms,
            "max_latency_ms": self.max_latency_ms,
            "query_count": self.query_count,
            "duration_s": self.duration_s,
            "summary_path": str(self.summary_path),
            "detail_path": str(self.detail_path),
            "raw_summary": dict(self.raw_summary),
            "settings": dict(self.settings),
            "notes": list(self.notes),
        }


class LoadGenInterrupted(KeyboardInterrupt):
    """A signal stopped a LoadGen run; ``report`` holds what aia recorded until then
    (``valid`` False, ``interrupted`` in its notes), ``signal_exc`` the interrupt itself."""

    def __init__(self, report: LoadGenReport, signal_exc: BaseException) -> None:
        super().__init__("interrupted")
        self.report = report
        self.signal_exc = signal_exc


def normalize_scenario(name: str) -> Scenario:
    """Accept 'single-stream', 'SingleStream', 'single_stream', ...; BadInputError otherwise."""
    key = re.sub(r"[\s_\-]", "", str(name)).lower()
    for s in SCENARIOS:
        if s.replace("-", "") == key:
            return s  # type: ignore[return-value]
    raise BadInputError(f"Unknown LoadGen scenario {name!r}: choose one of {', '.join(SCENARIOS)}.")


def _check_positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None:
        if not allow_none:
            raise BadInputError(f"LoadGen setting {name} is required.")
        return
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise BadInputError(f"LoadGen setting {name} must be a number > 0, got {value!r}.")


def _validate(
    *,
    total_samples: int,
    performance_samples: int,
    target_qps: float | None,
    target_latency_ms: float | None,
    min_duration_s: float,
    min_queries: int | None,
    samples_per_query: int | None,
    max_batch: int,
    server_threads: int,
    max_duration_s: float | None,
) -> None:
    for name, v in (("total_samples", total_samples), ("performance_samples", performance_samples),
                    ("max_batch", max_batch), ("server_threads", server_threads)):  # fmt: skip
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise BadInputError(f"LoadGen setting {name} must be an integer >= 1, got {v!r}.")
    if performance_samples > total_samples:
        raise BadInputError(
            f"LoadGen setting performance_samples ({performance_samples}) cannot exceed "
            f"total_samples ({total_samples}): the performance set is drawn from the samples."
        )
    _check_positive("target_qps", target_qps)
    _check_positive("target_latency_ms", target_latency_ms)
    _check_positive("min_duration_s", min_duration_s, allow_none=False)
    _check_positive("max_duration_s", max_duration_s)
    if max_duration_s is not None and max_duration_s < min_duration_s:
        raise BadInputError(
            f"LoadGen max_duration_s ({max_duration_s}) is shorter than min_duration_s "
            f"({min_duration_s})."
        )
    if min_queries is not None and (not isinstance(min_queries, int) or min_queries < 1):
        raise BadInputError(
            f"LoadGen setting min_queries must be an integer >= 1, got {min_queries!r}."
        )
    if samples_per_query is not None and (
        not isinstance(samples_per_query, int) or samples_per_query < 1
    ):
        raise BadInputError(
            f"LoadGen setting samples_per_query must be an integer >= 1, got {samples_per_query!r}."
        )


def _import_loadgen() -> Any:
    try:
        import mlperf_loadgen as lg  # type: ignore[import-not-found]
    except ImportError as exc:
        raise UnavailableError(
            "MLPerf LoadGen is not installed (module mlperf_loadgen).",
            hint="pip install mlcommons-loadgen",
        ) from exc
    return lg


class _Sut:
    """Issues LoadGen's queries to ``infer`` and reports completions."""

    def __init__(self, lg: Any, infer: Callable[[list[int]], Any], scenario: str,
                 max_batch: int, threads: int) -> None:  # fmt: skip
        self.lg = lg
        self.infer = infer
        self.scenario = scenario
        self.max_batch = max_batch
        workers = threads if scenario == "server" else 1
        self.pool = (
            None
            if scenario == "single-stream"
            else ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aia-loadgen")
        )
        self.lock = threading.Lock()
        self.samples_done = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.error: BaseException | None = None
        # aia's own record of completed queries (seconds from issue to completion), kept
        # for a run that a signal stops: one float per query, in a compact array.
        self.query_latency_s = array("d")
        self.stopping = False  # after a signal: answer every query without running the model

    def issue(self, query_samples: Sequence[Any]) -> None:
        t_issue = time.perf_counter()
        with self.lock:
            if self.t_first is None:
                self.t_first = t_issue
        samples = [(q.id, q.index) for q in query_samples]
        if self.pool is None or self.stopping:
            # After a signal the pool is shut down: answer here, at once. Nothing may
            # raise into LoadGen's own thread (a C++ thread: the worker would crash
            # before it writes what it measured).
            self._run(samples, t_issue)
            return
        if self.scenario == "server":
            for one in samples:  # one sample per query; each on its own worker
                self._submit(self._run, [one], t_issue)
        else:  # one task per query, looping over its batches: cheap to issue
            self._submit(self._run_batches, samples, t_issue)

    def _submit(self, task: Callable[..., None], samples: list[tuple[int, int]], t: float) -> None:
        assert self.pool is not None
        try:
            self.pool.submit(task, samples, t)
        except RuntimeError:  # the pool shut down between the check and the submit
            self._run(samples, t)

    def _run_batches(self, samples: list[tuple[int, int]], t_issue: float) -> None:
        last = len(samples) - self.max_batch
        for i in range(0, len(samples), self.max_batch):
            self._run(samples[i : i + self.max_batch], t_issue if i >= last else None)

    def _run(self, samples: list[tuple[int, int]], t_issue: float | None = None) -> None:
        ran = False
        if self.error is None and not self.stopping:
            try:
                self.infer([idx for _, idx in samples])
                ran = True
            except BaseException as exc:  # LoadGen waits forever unless every sample completes
                with self.lock:
                    if self.error is None:
                        self.error = exc
        responses = [self.lg.QuerySampleResponse(qid, 0, 0) for qid, _ in samples]
        self.lg.QuerySamplesComplete(responses)
        if not ran:
            return  # answered without inference: not part of the measurement
        with self.lock:
            self.samples_done += len(samples)
            self.t_last = time.perf_counter()
            if t_issue is not None:  # the last batch of its query
                self.query_latency_s.append(self.t_last - t_issue)

    def partial_report(
        self, log_dir: Path, settings: dict[str, Any], notes: list[str], why: str
    ) -> LoadGenReport:
        """What aia recorded of the completed queries, as a report (for an interrupted run)."""
        with self.lock:
            lat = sorted(self.query_latency_s)
            samples = self.samples_done
            duration = (
                self.t_last - self.t_first
                if self.t_first is not None and self.t_last is not None
                else 0.0
            )

        def pct(q: float) -> float:  # nearest rank
            return lat[min(len(lat) - 1, max(0, math.ceil(q / 100 * len(lat)) - 1))] * 1000

        latency_ms = {} if not lat else {
            label: pct(float(label[1:])) for label in PERCENTILES
        }  # fmt: skip
        return LoadGenReport(
            scenario=self.scenario,
            valid=False,
            invalid_reasons=[why],
            qps=samples / duration if duration > 0 else 0.0,
            latency_ms=latency_ms,
            samples_processed=samples,
            mean_latency_ms=sum(lat) / len(lat) * 1000 if lat else math.nan,
            min_latency_ms=lat[0] * 1000 if lat else math.nan,
            max_latency_ms=lat[-1] * 1000 if lat else math.nan,
            query_count=len(lat),
            duration_s=duration,
            summary_path=log_dir / "mlperf_log_summary.txt",
            detail_path=log_dir / "mlperf_log_detail.txt",
            raw_summary={},
            settings=settings,
            notes=notes
            + [
                "interrupted: the metrics are aia's record of the queries completed before "
                "the signal (samples / first issue to last completion; per-query latency "
                "issue to completion); LoadGen's own logs, if written, also count the "
                "queries answered without inference after it."
            ],
        )

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _calibrate(lg: Any, infer: Callable[[list[int]], Any], batch: int, total: int,
               budget_s: float = 0.3, max_calls: int = 50) -> float:  # fmt: skip
    """Seconds per call of ``infer`` on ``batch`` samples, SUT overhead included.

    Also a warm-up: the first call, which pays for lazy initialisation, is not timed.
    """
    idx = [i % total for i in range(batch)]
    infer(idx)
    times = []
    t_end = time.perf_counter() + budget_s
    while len(times) < max_calls and (not times or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        infer(idx)
        # What the SUT adds per call; dominant for tiny models.
        [lg.QuerySampleResponse(i, 0, 0) for i in range(batch)]
        times.append(time.perf_counter() - t0)
    times.sort()
    return max(times[len(times) // 2], 1e-7)


def _calibrate_pool(infer: Callable[[list[int]], Any], threads: int, total: int,
                    budget_s: float = 0.3) -> float:  # fmt: skip
    """One-sample calls per second through a pool of ``threads`` workers, as the server SUT runs."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda i: infer([i % total]), range(threads)))  # warm-up
        done = 0
        t0 = time.perf_counter()
        while True:
            n = 4 * threads
            list(pool.map(lambda i: infer([i % total]), range(done, done + n)))
            done += n
            elapsed = time.perf_counter() - t0
            if elapsed >= budget_s or done >= 10_000:
                return done / max(elapsed, 1e-7)


def run_scenario(
    infer: Callable[[list[int]], Any],
    *,
    scenario: str,
    total_samples: int,
    performance_samples: int | None = None,
    target_qps: float | None = None,
    target_latency_ms: float | None = None,
    min_duration_s: float = 10.0,
    min_queries: int | None = None,
    samples_per_query: int | None = None,
    max_batch: int = 1,
    server_threads: int = 1,
    max_duration_s: float | None = None,
    log_dir: Path,
    on_tick: Callable[[int, float], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> LoadGenReport:
    """Run one LoadGen scenario in PerformanceOnly mode and parse its logs.

    ``infer(indices)`` runs the model on the caller's prepared samples of
    those indices (at most ``max_batch`` at a time). Unset expectations are
    calibrated by timing ``infer`` first: offline's expected QPS (1.5x the
    measured batch throughput, so LoadGen generates enough samples for
    ``min_duration_s``) and server's target QPS (half the measured
    one-sample throughput, times ``server_threads``). ``on_tick(samples, elapsed_s)``
    is called about twice a second while LoadGen runs (progress for the user).

    A KeyboardInterrupt (SIGINT, or SIGTERM/SIGHUP turned into one) while LoadGen runs
    raises :class:`LoadGenInterrupted` with what was measured; ``on_stop()`` is called
    first, at once (e.g. to hold further signals back).
    """
    name = normalize_scenario(scenario)
    performance_samples = performance_samples or total_samples
    _validate(
        total_samples=total_samples,
        performance_samples=performance_samples,
        target_qps=target_qps,
        target_latency_ms=target_latency_ms,
        min_duration_s=min_duration_s,
        min_queries=min_queries,
        samples_per_query=samples_per_query,
        max_batch=max_batch,
        server_threads=server_threads,
        max_duration_s=max_duration_s,
    )
    if samples_per_query is not None and name != "multi-stream":
        raise BadInputError(
            f"samples_per_query applies to the multi-stream scenario only, not {name}."
        )
    lg = _import_loadgen()
    log_dir = Path(log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"Cannot create the LoadGen log folder {log_dir}: {exc}") from exc

    notes: list[str] = []
    settings: dict[str, Any] = {
        "scenario": name,
        "mode": "PerformanceOnly",
        "total_samples": total_samples,
        "performance_samples": performance_samples,
        "min_duration_s": min_duration_s,
        "max_batch": max_batch,
    }
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, _LG_NAMES[name])
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = int(round(min_duration_s * 1000))
    if max_duration_s is not None:
        ts.max_duration_ms = int(round(max_duration_s * 1000))
        settings["max_duration_s"] = max_duration_s
    if min_queries is not None:
        ts.min_query_count = min_queries
        settings["min_queries"] = min_queries

    try:
        if name == "single-stream":
            expected_ms = target_latency_ms or _calibrate(lg, infer, 1, total_samples) * 1000
            ts.single_stream_expected_latency_ns = max(1, int(expected_ms * 1e6))
            settings["expected_latency_ms"] = expected_ms
        elif name == "multi-stream":
            spq = samples_per_query or DEFAULT_MULTI_STREAM_SAMPLES
            ts.multi_stream_samples_per_query = spq
            if target_latency_ms is None:
                per_batch = _calibrate(lg, infer, min(max_batch, spq), total_samples)
                expected_ms = per_batch * math.ceil(spq / max_batch) * 1000
            else:
                expected_ms = target_latency_ms
            ts.multi_stream_expected_latency_ns = max(1, int(expected_ms * 1e6))
            settings.update(samples_per_query=spq, expected_latency_ms=expected_ms)
        elif name == "server":
            if target_qps is None:
                target_qps = 0.5 * _calibrate_pool(infer, server_threads, total_samples)
                notes.append(
                    f"server target QPS calibrated to {target_qps:.1f} (half of measured)."
                )
            latency = target_latency_ms or DEFAULT_SERVER_LATENCY_MS
            ts.server_target_qps = float(target_qps)
            ts.server_target_latency_ns = max(1, int(latency * 1e6))
            settings.update(target_qps=target_qps, target_latency_ms=latency,
                            server_threads=server_threads)  # fmt: skip
        else:
            if target_qps is None:
                per_batch = _calibrate(lg, infer, max_batch, total_samples)
                target_qps = 1.5 * max_batch / per_batch
                notes.append(f"offline expected QPS calibrated to {target_qps:.1f}.")
            ts.offline_expected_qps = float(target_qps)
            settings["expected_qps"] = target_qps
    except Exception as exc:
        raise RuntimeFailure(f"Inference failed while calibrating LoadGen ({name}): {exc}") from exc

    log = lg.LogSettings()
    log.log_output.outdir = str(log_dir)
    log.log_output.copy_summary_to_stdout = False
    log.log_output.copy_detail_to_stdout = False
    log.enable_trace = False

    sut_impl = _Sut(lg, infer, name, max_batch, server_threads)
    if still_running() or not _RUN_LOCK.acquire(timeout=DRAIN_S):
        raise RuntimeFailure("An interrupted LoadGen run is still finishing in this process.")
    sut = lg.ConstructSUT(sut_impl.issue, sut_impl.flush)
    qsl = lg.ConstructQSL(total_samples, performance_samples, _noop, _noop)
    ticker = _Ticker(sut_impl, on_tick) if on_tick is not None else None
    ended = threading.Event()
    failure: list[BaseException] = []

    def start() -> None:
        try:
            # A missing audit file inside log_dir: a stray ./audit.config must not alter the run.
            lg.StartTestWithLogSettings(sut, qsl, ts, log, str(log_dir / "audit.config"))
        except BaseException as exc:
            failure.append(exc)
        finally:
            ended.set()

    def cleanup() -> None:
        sut_impl.close()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        _RUN_LOCK.release()

    # LoadGen runs in a thread: the calling thread stays free to see a signal at once. It
    # polls with sleep, not Event.wait: a KeyboardInterrupt raised inside Event.wait can
    # land between its lock's acquire and release and leave the lock held, and the wait
    # for LoadGen's end after the signal would then fail or hang.
    thread = threading.Thread(target=start, name="aia-loadgen", daemon=True)
    try:
        thread.start()
        while not ended.is_set():
            time.sleep(0.05)
    except KeyboardInterrupt as exc:
        sut_impl.stopping = True  # LoadGen's remaining queries are answered at once
        if on_stop is not None:
            on_stop()
        from aialliance_cli import interrupts

        with interrupts.Hold(reraise=False) as hold:  # a second signal must not lose this
            hold.start()
            if ticker is not None:
                ticker.stop()
            finished = _ended_within(ended, DRAIN_S)
            why = f"interrupted by a signal after {sut_impl.samples_done} samples"
            report = sut_impl.partial_report(log_dir, settings, notes, why)
            if finished:
                cleanup()
            else:  # the process ends without waiting for it (still_running)
                _STRAY.append(thread)
                interrupts.on_exit_check(still_running)
                if sut_impl.pool is not None:
                    sut_impl.pool.shutdown(wait=False, cancel_futures=True)
        raise LoadGenInterrupted(report, exc) from None
    if ticker is not None:
        ticker.stop()
    cleanup()
    if failure:
        raise failure[0]
    if sut_impl.error is not None:
        err = sut_impl.error
        raise RuntimeFailure(
            f"Inference failed during the LoadGen {name} run: {type(err).__name__}: {err}"
        ) from err

    duration = (
        (sut_impl.t_last - sut_impl.t_first)
        if sut_impl.t_first is not None and sut_impl.t_last is not None
        else 0.0
    )
    return _build_report(name, log_dir, sut_impl.samples_done, duration, settings, notes)


def _ended_within(ended: threading.Event, seconds: float) -> bool:
    """Whether ``ended`` is set within ``seconds`` (polled: see run_scenario)."""
    limit = time.monotonic() + seconds
    while not ended.is_set():
        if time.monotonic() >= limit:
            return False
        time.sleep(0.02)
    return True


class _Ticker:
    """Calls ``on_tick(samples done, seconds)`` every half second from a daemon thread."""

    def __init__(self, sut: Any, on_tick: Callable[[int, float], None]) -> None:
        import threading
        import time

        self._stop = threading.Event()
        start = time.perf_counter()

        def loop() -> None:
            while not self._stop.wait(0.5):
                try:
                    on_tick(sut.samples_done, time.perf_counter() - start)
                except Exception:  # progress never breaks a measurement
                    return

        self._thread = threading.Thread(target=loop, name="aia-loadgen-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def loadgen_progress(name: str, ep: str, samples: int, elapsed: float, min_s: float) -> str:
    """The progress line of a LoadGen run: samples so far and the time left of its minimum."""
    head = f"LoadGen {name} on {ep}: {samples} samples, {elapsed:.0f} s"
    if elapsed < min_s:
        return f"{head} of at least {min_s:g} s ({min_s - elapsed:.0f} s left)"
    return f"{head}; the {min_s:g} s minimum is reached, LoadGen completes its last queries"


def _noop(_samples: Sequence[int]) -> None:
    pass


# ---------------------------------------------------------------- log parsing


def parse_detail_log(path: Path) -> dict[str, Any]:
    """The ``:::MLLOG`` JSON lines as {key: value} (last one wins); errors under ``_errors``."""
    out: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if not line.startswith(":::MLLOG"):
            continue
        try:
            entry = json.loads(line[len(":::MLLOG") :])
        except json.JSONDecodeError:
            continue
        key, value = entry.get("key"), entry.get("value")
        meta = entry.get("metadata") or {}
        if meta.get("is_error"):
            errors.append(f"{key}: {value}")
        elif meta.get("is_warning") and "Logging allocation detected" not in str(value):
            warnings.append(f"{key}: {value}")  # (that one is LoadGen's internal bookkeeping)
        if key:
            out[key] = value
    out["_errors"] = errors
    out["_warnings"] = warnings
    return out


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_summary(path: Path) -> dict[str, Any]:
    """The "key : value" lines of mlperf_log_summary.txt, numbers converted."""
    out: dict[str, Any] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if ":" not in line or line.lstrip().startswith("*"):
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key and value and not key.startswith("="):
            out[key] = _number(value)
    return out


def _yes(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return v.strip().lower() in ("yes", "true")
    return None


def _build_report(
    scenario: str, log_dir: Path, samples_done: int, duration: float,
    settings: dict[str, Any], notes: list[str],
) -> LoadGenReport:  # fmt: skip
    summary_path = log_dir / "mlperf_log_summary.txt"
    detail_path = log_dir / "mlperf_log_detail.txt"
    if not summary_path.exists():
        raise RuntimeFailure(f"LoadGen wrote no summary at {summary_path}; see {detail_path}.")
    detail = parse_detail_log(detail_path)
    summary = parse_summary(summary_path)

    def pick(detail_key: str, summary_key: str | None = None) -> Any:
        if detail_key in detail:
            return detail[detail_key]
        return summary.get(summary_key) if summary_key else None

    validity = pick("result_validity", "Result is")
    valid = str(validity).strip().upper() == "VALID"
    reasons: list[str] = []
    checks = [
        ("result_min_duration_met", "Min duration satisfied", "min duration not satisfied"),
        ("result_min_queries_met", "Min queries satisfied", "min queries not satisfied"),
        ("early_stopping_met", "Early stopping satisfied", "early stopping not satisfied"),
        ("result_perf_constraints_met", "Performance constraints satisfied",
         "latency constraint not satisfied"),
    ]  # fmt: skip
    for dkey, skey, text in checks:
        ok = _yes(pick(dkey, skey))
        if ok is False:
            if dkey == "early_stopping_met":
                es = " ".join(str(detail.get("early_stopping_result") or "").split())
                text = f"{text} ({es.lstrip('* ').replace(' * ', '; ')})" if es else text
            elif dkey == "result_perf_constraints_met":
                target = settings.get("target_latency_ms")
                p99 = detail.get("result_99.00_percentile_latency_ns")
                if target is not None and isinstance(p99, (int, float)):
                    text = f"{text} (p99 {p99 / 1e6:.3f} ms > target {target:g} ms)"
            reasons.append(text)
    extra = " ".join(str(detail.get("result_invalid_reason") or "").split())
    if extra:
        reasons.append(extra)
    if detail.get("_errors"):
        reasons.extend(f"LoadGen error: {e}" for e in detail["_errors"])
    if not valid and not reasons:
        reasons.append("LoadGen marked the run INVALID")
    notes = notes + [f"LoadGen warning: {w}" for w in detail.get("_warnings", [])]

    # Multi-stream reports per-query latencies; the other scenarios per sample.
    per_query = "_per_query" if scenario == "multi-stream" else ""
    latency_ms: dict[str, float] = {}
    for label, pct in _PCT_KEYS.items():
        v = detail.get(f"result_{pct}_percentile{per_query}_latency_ns")
        if v is None:
            v = detail.get(f"result_{pct}_percentile_latency_ns")
        if v is None:
            v = summary.get(f"{pct} percentile latency (ns)")
        if isinstance(v, (int, float)):
            latency_ms[label] = v / 1e6

    def ns_ms(key: str, skey: str) -> float:
        v = detail.get(key, summary.get(skey))
        return float(v) / 1e6 if isinstance(v, (int, float)) else math.nan

    query_count = int(detail.get("result_query_count") or 0)
    if scenario == "offline":
        qps = pick("result_samples_per_second", "Samples per second")
    elif scenario == "server":
        qps = pick("result_completed_samples_per_sec", "Completed samples per second")
    elif scenario == "single-stream":
        qps = pick("result_qps_with_loadgen_overhead", "QPS w/ loadgen overhead")
    else:  # LoadGen reports no throughput for multi-stream: samples over the SUT's wall time
        qps = samples_done / duration if duration > 0 else 0.0
        notes.append("multi-stream QPS = samples processed / (first issue to last completion).")
    return LoadGenReport(
        scenario=scenario,
        valid=valid,
        invalid_reasons=reasons,
        qps=float(qps) if isinstance(qps, (int, float)) else 0.0,
        latency_ms=latency_ms,
        samples_processed=samples_done,
        mean_latency_ms=ns_ms("result_mean_latency_ns", "Mean latency (ns)"),
        min_latency_ms=ns_ms("result_min_latency_ns", "Min latency (ns)"),
        max_latency_ms=ns_ms("result_max_latency_ns", "Max latency (ns)"),
        query_count=query_count,
        duration_s=duration,
        summary_path=summary_path,
        detail_path=detail_path,
        raw_summary=summary,
        settings=settings,
        notes=notes,
    )
