"""The search of `aia tune`: coordinate descent under a time budget, then an alternating final.

    1. reference  fp32 on the CPU EP with ONNX Runtime's defaults: the speed baseline
                  ("ORT default") and the accuracy reference (its outputs on 16 input sets)
    2. plan       aia's untuned plan (the plan's first EP, the profile's session settings),
                  when it differs from the reference
    3. screening  one dimension at a time (EP x precision, threads, spinning, graph
                  optimisation, execution mode, batch, OpenVINO hints), each value a short
                  trial with the others at the best so far; a candidate whose numbers
                  disagree with the reference is rejected and never becomes the best
    4. cross      the runner-up backends with the best's settings, then their own threads,
                  spinning and OpenVINO hint (settings and backend interact), while
                  screening time is left
    5. final      the best three, the best of another backend, the ORT default and the plan,
                  measured in alternating rounds (clearly slower ones leave after two);
                  it stops after three rounds once the leader won every round, else at five
                  or when the budget ends. The median's 95% interval of each pooled set
                  decides: a candidate within noise of the fastest loses to the more
                  accurate, then to the one with fewer changes from ONNX Runtime's defaults

Every trial runs in a fresh worker process (runtime/worker.py, job kind "tune") with a
timeout inside the budget; quantized models are made once and cached. Nothing here prints:
``on_event`` receives progress dicts.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError
from aialliance_cli.tune.space import CPU_EP, OBJECTIVES, Candidate, Space

Event = Callable[[dict[str, Any]], None]
DEFAULT_BUDGET_S = 180.0
ACCURACY_INPUTS = 16
# Share of the budget kept for the alternating final and the report.
FINAL_SHARE = 0.35
SLACK_S = 0.5  # kept free at the end for ranking and writing the record
MAX_FINAL_ROUNDS = 5
SETTLED_ROUNDS = 3  # the final may stop early after this many rounds, when the order is clear
FINALISTS = 3  # the best few of screening (plus the best of another backend) go to the final
# A finalist slower than the leader by this factor in every one of at least two rounds
# leaves the final, so that the rounds left measure the close ones more often.
DROP_RATIO = 1.05
# The second pass gives this many runner-up backends (within CROSS_MARGIN of the best)
# the best settings, then their own threads and spinning.
CROSS_BACKENDS = 2
CROSS_MARGIN = 1.5
# Screening trials: enough timed runs for a stable median (the noise that matters is the
# machine's, between trials, which more trials average out better than longer ones).
SCREEN_RUNS = 100
SCREEN_MIN_S = 1.0
SCREEN_MAX_S = 3.0
# Making a quantized model: seconds per MB of the fp32 model on a quiet machine (dynamic
# about 0.05, static with its calibration about 2.5x that: benchmarks/README.md), scaled
# by how much slower than NOMINAL_OVERHEAD_S this machine starts a worker.
PREP_S_PER_MB = 0.06
STATIC_PREP_FACTOR = 2.5
NOMINAL_OVERHEAD_S = 2.0


def _no_event(_: dict[str, Any]) -> None:
    pass


@dataclass(frozen=True)
class TuneSettings:
    budget_s: float = DEFAULT_BUDGET_S
    objective: str = "latency"
    eps: Sequence[str] | None = None
    threads: Sequence[int] | None = None
    precisions: Sequence[str] | None = None
    min_accuracy: float | None = None  # None: the task's (accuracy.default_min_accuracy)
    save: bool = True


def check_settings(s: TuneSettings) -> None:
    """Bad values exit 2 before anything is measured."""
    from aialliance_cli.limits import check, check_threads

    check("--budget", s.budget_s)  # finite, more than 0, at most a week (aialliance_cli/limits.py)
    if s.objective not in OBJECTIVES:
        raise BadInputError(
            f"--objective must be one of {', '.join(OBJECTIVES)}, got '{s.objective}'"
        )
    from aialliance_cli.tune.accuracy import check_min_accuracy

    check_min_accuracy(s.min_accuracy)
    for t in s.threads or ():
        check_threads("--threads", t)


@dataclass
class Trial:
    """One measurement of one candidate in one worker process."""

    candidate: Candidate
    stage: str
    status: str  # ok | failed | interrupted
    latencies_ms: list[float] = field(default_factory=list)
    ep_ran: str | None = None
    error: str | None = None
    wall_s: float = 0.0
    other_cpu_percent: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Row:
    """One candidate in the ranked answer."""

    candidate: Candidate
    status: str  # ok | rejected | failed
    stats: dict[str, Any] | None = None  # latency_stats of the cost (ms, or ms per sample)
    measured: str = "screen"  # "final" when it ran in the alternating final
    samples: int = 0
    speedup_default: float | None = None
    verdict_default: str | None = None
    speedup_plan: float | None = None
    verdict_plan: str | None = None
    accuracy: dict[str, Any] | None = None
    error: str | None = None
    roles: list[str] = field(default_factory=list)  # "ORT default", "aia plan", "winner"

    @property
    def p50(self) -> float | None:
        return self.stats["p50"] if self.stats else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.candidate.to_dict(),
            "label": self.candidate.label(),
            "status": self.status,
            "latency_ms": self.stats,
            "measured": self.measured,
            "samples": self.samples,
            "speedup_over_default": self.speedup_default,
            "verdict_vs_default": self.verdict_default,
            "speedup_over_plan": self.speedup_plan,
            "verdict_vs_plan": self.verdict_plan,
            "accuracy": self.accuracy,
            "error": self.error,
            "roles": list(self.roles),
        }


@dataclass
class TuneOutcome:
    target: str
    objective: str
    budget_s: float
    elapsed_s: float
    rows: list[Row]
    winner: Row | None
    default: Row | None
    plan: Row | None
    space: dict[str, Any]
    notes: list[str]
    load: dict[str, Any]
    trials: int
    min_accuracy: float
    accuracy_metric: str
    interrupted: bool = False
    record_path: str | None = None
    record: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "aia.tune/1",
            "target": self.target,
            "objective": self.objective,
            "cost": "ms per inference" if self.objective == "latency" else "ms per sample",
            "budget_s": self.budget_s,
            "elapsed_s": self.elapsed_s,
            "trials": self.trials,
            "min_accuracy": self.min_accuracy,
            "accuracy_metric": self.accuracy_metric,
            "winner": self.winner.to_dict() if self.winner else None,
            "ranked": [r.to_dict() for r in self.rows],
            "space": self.space,
            "load": self.load,
            "notes": list(self.notes),
            "interrupted": self.interrupted,
            "record": self.record.to_dict() if self.record is not None else None,
            "record_path": self.record_path,
        }


# ----------------------------------------------------------------------------- load


def machine_load(sample_s: float = 0.5) -> dict[str, Any]:
    """How busy the machine is before tuning: % of all CPUs in use, and the load average."""
    from aialliance_cli.results.stats import HIGH_OTHER_CPU_PERCENT
    from aialliance_cli.runtime.bench import _machine_busy_s

    ncpu = os.cpu_count() or 1
    b0 = _machine_busy_s()
    time.sleep(sample_s)
    b1 = _machine_busy_s()
    busy_pct = (
        None if b0 is None or b1 is None else min(100.0, 100.0 * (b1 - b0) / (sample_s * ncpu))
    )
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = None
    busy = busy_pct is not None and busy_pct > HIGH_OTHER_CPU_PERCENT
    return {
        "cpu_busy_percent": busy_pct,
        "loadavg_1m": load1,
        "logical_cpus": ncpu,
        "busy": busy,
        "threshold_percent": HIGH_OTHER_CPU_PERCENT,
    }


# ----------------------------------------------------------------------------- tuner


def default_candidate() -> Candidate:
    """ONNX Runtime's defaults: fp32 on the CPU EP, everything as ORT sets it."""
    return Candidate()


def plan_candidate(target: Any, inventory: Any) -> Candidate:
    """aia's untuned plan: the plan's first EP and the profile's session settings."""
    from aialliance_cli.runtime.api import Overrides, choose_session
    from aialliance_cli.tune.space import SPIN

    spec, _ = choose_session(target, Overrides(), inventory)
    spin = spec.config.get(SPIN)
    return Candidate(
        ep=spec.ep,
        threads=spec.intra_op_threads or 0,
        spinning=None if spin is None else spin == "1",
        opt_level=spec.graph_optimization_level,
        execution_mode=spec.execution_mode,
        inter_op=spec.inter_op_threads or 0,
    )


class Tuner:
    """One `aia tune` run: state of the search, the trials and their accounting."""

    def __init__(
        self,
        target: Any,
        settings: TuneSettings,
        *,
        space: Space,
        envs: Sequence[Any],
        inventory: Any,
        load: dict[str, Any],
        on_event: Event = _no_event,
        started: float | None = None,
    ) -> None:
        from aialliance_cli.tune.accuracy import default_min_accuracy

        self.target = target
        self.settings = settings
        self.space = space
        self.envs = {e.name: e for e in envs}
        self.inventory = inventory
        self.load = load
        self.on_event = on_event
        self.t0 = started if started is not None else time.monotonic()
        self.deadline = self.t0 + settings.budget_s - SLACK_S
        task = target.profile.task if target.profile is not None else None
        self.min_accuracy = settings.min_accuracy or default_min_accuracy(task)
        self.trials: list[Trial] = []
        self.samples: dict[Candidate, list[list[float]]] = {}
        self.final_samples: dict[Candidate, list[list[float]]] = {}
        self.accuracy: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.failed: dict[Candidate, str] = {}
        self.targets: dict[str, Any] = {}
        self.notes: list[str] = list(space.notes)
        self.workdir = Path(tempfile.mkdtemp(prefix="aia-tune-"))
        self.ref_inputs: Path | None = None
        self.reference: Any = None  # accuracy.Reference, from the reference trial
        self.ref_dims: dict[str, int] | None = None
        self.overhead_s = 2.0  # worker start + session build, re-estimated from each trial
        self.measure_s = 1.0
        self.prep_rate_s_per_mb: float | None = None  # measured once a model was made
        self.prep_s = 0.0  # time the current trial spent making its model
        self.interrupted = False
        self.final_reserve = 0.0
        self.final_rounds: list[dict[Candidate, float]] = []  # per round: finalist -> p50
        self._cached: dict[str, bool] = {}

    # ------------------------------------------------------------------ time

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def trial_cost(self, measure_s: float | None = None) -> float:
        return self.overhead_s + (self.measure_s if measure_s is None else measure_s)

    # ------------------------------------------------------------------ trials

    def target_for(self, precision: str) -> Any:
        if precision not in self.targets:
            from aialliance_cli.tune.prepare import prepared_target

            t = time.monotonic()
            self.on_event({"event": "status", "message": f"preparing {precision}"})
            self.targets[precision] = prepared_target(
                self.target,
                precision,
                lambda m: self.on_event({"event": "status", "message": m}),
            )
            spent = time.monotonic() - t
            self.prep_s = spent
            mb = max(1.0, self.target.model_path.stat().st_size / 1e6)
            if spent > 1.0 and not self._cached.get(precision, False):
                factor = STATIC_PREP_FACTOR if precision == "int8-static" else 1.0
                self.prep_rate_s_per_mb = spent / mb / factor
        return self.targets[precision]

    def affordable_prep(self, precision: str) -> bool:
        """Can ``precision``'s model be made (or is it cached) and still leave a trial?"""
        from aialliance_cli.tune.prepare import is_cached

        if precision in self.targets:
            return True
        if precision not in self._cached:
            self._cached[precision] = is_cached(self.target, precision)
        if self._cached[precision]:
            return True
        mb = max(1.0, self.target.model_path.stat().st_size / 1e6)
        rate = self.prep_rate_s_per_mb
        if rate is None:  # nothing made yet: the quiet machine's rate, as slow as this one is
            rate = PREP_S_PER_MB * max(1.0, self.overhead_s / NOMINAL_OVERHEAD_S)
        estimate = mb * rate * (STATIC_PREP_FACTOR if precision == "int8-static" else 1.0)
        return estimate + self.trial_cost() < self.left() - self.final_reserve

    def run_trial(self, cand: Candidate, stage: str, measure_s: float) -> Trial:
        """Measure ``cand`` in a fresh worker; its accuracy too if its numbers are new."""
        from aialliance_cli.runtime.api import Overrides
        from aialliance_cli.runtime.launch import run_job
        from aialliance_cli.runtime.sweep import SweepPoint, make_job

        index = len(self.trials) + 1
        self.on_event(
            {
                "event": "trial",
                "index": index,
                "stage": stage,
                "label": cand.label(),
                "time_left": self.left(),
            }
        )
        started = time.monotonic()
        self.prep_s = 0.0
        try:
            tgt = self.target_for(cand.precision)
        except Exception as exc:  # a precision that cannot be made fails its trials only
            msg = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            trial = Trial(cand, stage, "failed", error=msg, wall_s=time.monotonic() - started)
            return self._done(trial)
        env = self.envs.get(cand.env) if cand.env else None
        ov = Overrides(
            ep=cand.ep,
            threads=cand.threads,
            batch=cand.batch,
            input_sets=4,
            strict=True,  # a candidate that would silently run elsewhere must fail instead
            energy=False,
            session=cand.session_settings(),
        )
        job = make_job(
            tgt,
            ov,
            SweepPoint(),
            label=cand.label(),
            environment=env.result_record() if env is not None else None,
        )
        key = cand.numeric_key()
        needs_acc = self.reference is None or (
            key not in self.accuracy and key != default_candidate().numeric_key()
        )
        out_path = self.workdir / f"outputs-{index}.npz"
        acc = None
        if needs_acc:
            acc = {
                "inputs": str(self.ref_inputs) if self.ref_inputs else None,
                "n": ACCURACY_INPUTS,
                "outputs": str(out_path),
            }
        job["kind"] = "tune"
        job["tune"] = {"measure_s": measure_s, "warmup": 5, "min_iterations": 10, "accuracy": acc}
        feeds = self.workdir / "feeds.npz"
        if cand.batch is None and self.ref_dims is not None:
            job["tune"].update(feeds=str(feeds), dims=self.ref_dims)
        elif cand.batch is None:
            job["tune"]["save_feeds"] = str(feeds)
        timeout = max(5.0, self.left() + SLACK_S)
        if stage == "reference":
            # Without the reference nothing can be compared: on a machine so slow that it
            # alone outlasts the budget, it may take up to half the budget more.
            timeout = max(timeout, 0.5 * self.settings.budget_s, 20.0)
        python = env.python if env is not None else sys.executable
        result = run_job(job, python=python, timeout_s=timeout, on_event=self.on_event)
        wall = time.monotonic() - started
        if result.get("status") != "ok":
            trial = Trial(
                cand,
                stage,
                "interrupted" if result.get("status") == "interrupted" else "failed",
                error=result.get("error") or "the trial failed",
                wall_s=wall,
            )
            return self._done(trial)
        lat = [float(x) for x in result.get("latencies_ms") or []]
        if self.ref_dims is None and cand.batch is None and (self.workdir / "feeds.npz").exists():
            self.ref_dims = dict(result.get("dims") or {})
        trial = Trial(
            cand,
            stage,
            "ok",
            latencies_ms=lat,
            ep_ran=result.get("ep"),
            wall_s=wall,
            other_cpu_percent=result.get("other_cpu_percent"),
            warnings=list(result.get("warnings") or []),
        )
        measured = sum(lat) / 1e3
        spent_acc = float(result.get("accuracy_s") or 0.0)
        spent = wall - measured - spent_acc - self.prep_s  # making a model is not overhead
        self.overhead_s = 0.5 * self.overhead_s + 0.5 * max(0.2, spent)
        if acc is not None:
            self._score(cand, out_path, result.get("accuracy_inputs"))
        return self._done(trial)

    def _score(self, cand: Candidate, out_path: Path, inputs_kind: str | None) -> None:
        from aialliance_cli.tune.accuracy import InputSet, Reference, compare
        from aialliance_cli.tune.trial import load_sets

        try:
            outputs = load_sets(out_path)
            if self.reference is None:
                feeds = load_sets(Path(str(out_path) + ".inputs.npz"))
                self.ref_inputs = Path(str(out_path) + ".inputs.npz")
                task = self.target.profile.task if self.target.profile is not None else "generic"
                self.reference = Reference(
                    InputSet(feeds, inputs_kind or "synthetic"), outputs, task, self.target
                )
            agreement = compare(self.reference, outputs)
        except Exception as exc:  # outputs that cannot be compared fail the accuracy check
            why = getattr(exc, "message", None) or str(exc)
            self.accuracy[cand.numeric_key()] = {
                "error": f"outputs not comparable: {why}",
                "value": 0.0,
                "passed": False,
            }
            return
        score = agreement.judged(self.min_accuracy)
        score["value"] = score["score"] if score["score"] is not None else 0.0
        self.accuracy[cand.numeric_key()] = score

    def _done(self, trial: Trial) -> Trial:
        self.trials.append(trial)
        if trial.status == "ok":
            self.samples.setdefault(trial.candidate, []).append(trial.latencies_ms)
        elif trial.candidate not in self.samples:
            self.failed[trial.candidate] = trial.error or "failed"
        if trial.status == "interrupted":
            self.interrupted = True
        ev: dict[str, Any] = {
            "event": "trial-done",
            "index": len(self.trials),
            "label": trial.candidate.label(),
            "status": trial.status,
            "time_left": self.left(),
        }
        if trial.status == "ok":
            ev["p50_ms"] = _median(trial.latencies_ms)
            acc = self.accuracy.get(trial.candidate.numeric_key())
            if (
                acc is not None
                and trial.candidate.numeric_key() != default_candidate().numeric_key()
            ):
                ev["accuracy"] = acc.get("value")
                ev["accepted"] = acc.get("passed")
        else:
            ev["error"] = trial.error
        self.on_event(ev)
        return trial

    # ------------------------------------------------------------------ judging

    def cost(self, cand: Candidate, latencies: Sequence[float]) -> list[float]:
        """Latency per inference, or per sample for the throughput objective."""
        if self.settings.objective == "throughput":
            b = cand.batch or self._profile_batch()
            return [x / b for x in latencies]
        return list(latencies)

    def _profile_batch(self) -> int:
        prof = self.target.profile
        if prof is not None and prof.inputs is not None and prof.inputs.dims:
            return int(prof.inputs.dims.get("batch", 1) or 1)
        return 1

    def accepted(self, cand: Candidate) -> bool | None:
        """True/False by accuracy; None while unknown (no trial finished)."""
        if cand.numeric_key() == default_candidate().numeric_key():
            return True
        acc = self.accuracy.get(cand.numeric_key())
        if acc is None:
            return None
        return bool(acc.get("passed"))

    def screen_p50(self, cand: Candidate) -> float | None:
        runs = self.samples.get(cand)
        if not runs:
            return None
        return _median(self.cost(cand, runs[-1]))

    # ------------------------------------------------------------------ search

    def search(self) -> TuneOutcome:
        try:
            try:
                self._search()
            except KeyboardInterrupt:
                self.interrupted = True
            return self._outcome()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _search(self) -> None:
        from aialliance_cli.runtime.launch import WorkerInterrupted

        try:
            self._stages()
        except WorkerInterrupted:
            self.interrupted = True

    def _stages(self) -> None:
        budget = self.settings.budget_s
        # First trial: short, since it also sizes the worker's overhead.
        self.measure_s = min(1.0, max(0.2, budget * 0.04))
        default = default_candidate()
        ref = self.run_trial(default, "reference", self.measure_s)
        if ref.status != "ok":
            self.notes.append(
                "the reference (fp32 on the CPU EP, ORT defaults) failed, so nothing can be "
                f"compared: {ref.error}"
            )
            return
        if self.interrupted:
            return
        plan = plan_candidate(self.target, self.inventory)
        narrowed = self.settings.eps and plan.ep not in self.settings.eps
        if plan != default and not narrowed and self.left() > self.trial_cost():
            self.run_trial(plan, "plan", self.measure_s)
        dims = self._dimensions()
        planned_trials = sum(len(values) for _, values in dims)
        # The final needs two rounds of at least two finalists; on a budget too short for
        # that, screening gets all the time and the ranking uses its runs.
        reserve = FINAL_SHARE * self.left()
        if reserve < 2 * 2 * (self.overhead_s + 0.3):
            reserve = 0.0
        self.final_reserve = reserve
        screen_time = self.left() - reserve
        per = screen_time / max(1, planned_trials)
        # Long enough for a stable median, and no longer: time left over goes to the second
        # pass and the final, where it decides more.
        ref_p50 = _median(ref.latencies_ms) if ref.latencies_ms else 0.0
        cap = min(SCREEN_MAX_S, max(SCREEN_MIN_S, SCREEN_RUNS * ref_p50 / 1e3))
        self.measure_s = min(cap, max(0.25, per - self.overhead_s))
        best = self._best_start(default, plan)
        skipped: list[str] = []
        for name, values in dims:
            if self.interrupted:
                return
            tried_any = False
            for value in values:
                cand = self._with(best, name, value)
                if cand is None or cand == best or cand in self.samples or cand in self.failed:
                    continue
                if name == "backend" and not self.affordable_prep(cand.precision):
                    skipped.append(f"{cand.precision} (making it would not fit the budget)")
                    continue
                if self.left() - reserve < self.trial_cost():
                    skipped.append(f"{name}={_value_text(value)}")
                    continue
                self.run_trial(cand, f"screen:{name}", self.measure_s)
                tried_any = True
                if self.interrupted:
                    return
            if tried_any:
                best = self._best_of_screen(best)
        if skipped:
            self.notes.append(
                "the budget ran out before these were tried: " + ", ".join(dict.fromkeys(skipped))
            )
        self._cross(best, reserve)
        if self.interrupted:
            return
        self._final(default, plan)

    def _cross(self, best: Candidate, reserve: float) -> None:
        """Second pass: the runner-up backends with the best's settings, then their own.

        Coordinate descent tunes threads and spinning for the best backend only, but the
        settings interact with the backend: on a loaded 2-core machine OpenVINO with one
        thread and no spinning beat everything, while OpenVINO with ORT's defaults did not
        (benchmarks/README.md). Runs only while screening time is left.
        """
        from aialliance_cli.tune.space import Backend

        ref = self.screen_p50(best)
        if ref is None:
            return
        runners: dict[tuple[Any, ...], tuple[float, Candidate]] = {}
        for cand in self.samples:
            key = _backend_key(cand)
            p = self.screen_p50(cand)
            if cand.batch != best.batch or not self.accepted(cand) or p is None:
                continue
            if key == _backend_key(best) or p > CROSS_MARGIN * ref:
                continue
            if key not in runners or p < runners[key][0]:
                runners[key] = (p, cand)
        dims = [(n, v) for n, v in self._dimensions() if n in ("threads", "spinning", "ov_hint")]
        for _, start in sorted(runners.values(), key=lambda pc: pc[0])[:CROSS_BACKENDS]:
            key = _backend_key(start)
            local = Backend(start.ep, start.env, start.precision).candidate(best)
            steps: list[tuple[str | None, list[Any]]] = [(None, [local]), *dims]
            for name, values in steps:
                for value in values:
                    cand = value if name is None else self._with(local, name, value)
                    if cand is None or cand in self.samples or cand in self.failed:
                        continue
                    if self.left() - reserve < self.trial_cost() or self.interrupted:
                        return
                    self.run_trial(cand, f"cross:{name or 'settings'}", self.measure_s)
                local = self._best_of_screen(local, backend=key)

    def _best_start(self, default: Candidate, plan: Candidate) -> Candidate:
        p_plan = self.screen_p50(plan) if plan != default else None
        p_def = self.screen_p50(default)
        if p_plan is not None and p_def is not None and p_plan < p_def and self.accepted(plan):
            return plan
        return default

    def _best_of_screen(
        self, current: Candidate, backend: tuple[Any, ...] | None = None
    ) -> Candidate:
        """The accepted candidate with the lowest screening p50 (of one backend if given)."""
        best, best_p = current, self.screen_p50(current)
        for cand in self.samples:
            if not self.accepted(cand):
                continue
            if backend is not None and (_backend_key(cand) != backend or cand.batch != best.batch):
                continue
            p = self.screen_p50(cand)
            if p is not None and (best_p is None or p < best_p):
                best, best_p = cand, p
        return best

    def _dimensions(self) -> list[tuple[str, list[Any]]]:
        s = self.space
        dims: list[tuple[str, list[Any]]] = [("backend", list(s.backends))]
        if self.settings.objective == "throughput" and len(s.batches) > 1:
            dims.append(("batch", list(s.batches)))
        threads_spin = [("threads", list(s.threads)), ("spinning", list(s.spinning))]
        if self.load.get("busy"):
            # On a busy machine spinning and threads decide most (2-3x on a loaded 2-core
            # VM, benchmarks/README.md), and their trials are the cheapest: first.
            dims = [threads_spin[1], threads_spin[0], *dims]
        else:
            dims += threads_spin
        dims.append(("opt_level", list(s.opt_levels)))
        if len(s.execution) > 1:
            dims.append(("execution", list(s.execution)))
        if len(s.ov_hints) > 1:
            dims.append(("ov_hint", list(s.ov_hints)))
        return dims

    def _with(self, best: Candidate, name: str, value: Any) -> Candidate | None:
        from aialliance_cli.tune.space import OV_EP

        if name == "backend":
            return value.candidate(replace(best, ep_options=()))
        if name == "threads":
            return replace(best, threads=value)
        if name == "spinning":
            return replace(best, spinning=value)
        if name == "opt_level":
            return replace(best, opt_level=value)
        if name == "execution":
            mode, inter = value
            return replace(best, execution_mode=mode, inter_op=inter)
        if name == "batch":
            return replace(best, batch=value)
        if name == "ov_hint":
            if best.ep != OV_EP:
                return None
            opts = {k: v for k, v in best.ep_options if k != "_hint:PERFORMANCE_HINT"}
            if value is not None:
                opts["_hint:PERFORMANCE_HINT"] = value
            return replace(best, ep_options=tuple(sorted(opts.items())))
        raise ValueError(name)

    def _final(self, default: Candidate, plan: Candidate) -> None:
        """Alternating rounds over the best few, the ORT default and the plan.

        The finalists: the FINALISTS best of screening and the best of the next backend
        (a single screening trial can be lucky or unlucky by a third on a shared machine),
        then ORT's default and aia's plan. Each round measures every finalist once, in
        alternating order; from the second round on, a finalist slower than the leader by
        DROP_RATIO in every round so far leaves (its rounds still count), so that the rest
        of the time goes to the close ones.
        """
        ranked = sorted(
            (c for c in self.samples if self.accepted(c)),
            key=lambda c: self.screen_p50(c) or math.inf,
        )
        top = ranked[:FINALISTS]
        others = [c for c in ranked if _backend_key(c) not in {_backend_key(t) for t in top}]
        finalists = list(dict.fromkeys([*top, *others[:1], default, plan]))
        finalists = [c for c in finalists if c in self.samples]
        if len(finalists) < 2:
            return
        left = self.left()
        n = len(finalists)
        cap = min(max(1.0, 2 * self.measure_s), 5.0)
        m = 0.0
        for rounds in range(MAX_FINAL_ROUNDS, 1, -1):
            m = (left / rounds - n * self.overhead_s) / n
            if m >= min(cap, 0.5):
                break
        if m < 0.2:
            self.notes.append(
                "no time was left for an alternating final: the ranking uses the screening runs"
            )
            return
        m = min(m, cap)
        active = list(finalists)
        for r in range(MAX_FINAL_ROUNDS):
            if self.left() < len(active) * (self.overhead_s + m) or self.interrupted:
                return  # only whole rounds: each finalist measured as often as the others
            p50s: dict[Candidate, float] = {}
            for cand in active if r % 2 == 0 else reversed(active):
                if self.interrupted:
                    return
                trial = self.run_trial(cand, f"final:{r + 1}", m)
                if trial.status == "ok":
                    self.final_samples.setdefault(cand, []).append(trial.latencies_ms)
                    p50s[cand] = _median(self.cost(cand, trial.latencies_ms))
            self.final_rounds.append(p50s)
            active = [c for c in active if c in p50s]  # one that failed here is done
            if len(active) < 2:
                return
            if r >= 1:
                active = self._keep_close(active)
            if r + 1 >= SETTLED_ROUNDS and self._settled(active):
                return

    def _round_ratios(self, cand: Candidate, leader: Candidate) -> list[float]:
        """cand's p50 over the leader's, per final round where both ran."""
        return [
            p[cand] / p[leader]
            for p in self.final_rounds
            if cand in p and leader in p and p[leader] > 0
        ]

    def _final_leader(self, active: Sequence[Candidate]) -> Candidate:
        from aialliance_cli.results.stats import latency_stats

        def pooled(c: Candidate) -> float:
            runs = self.final_samples.get(c, [])
            return latency_stats([x for run in runs for x in self.cost(c, run)]).p50

        return min(active, key=pooled)

    def _keep_close(self, active: list[Candidate]) -> list[Candidate]:
        leader = self._final_leader(active)
        keep = []
        for c in active:
            ratios = self._round_ratios(c, leader)
            if c != leader and len(ratios) >= 2 and min(ratios) > DROP_RATIO:
                continue
            keep.append(c)
        return keep

    def _settled(self, active: Sequence[Candidate]) -> bool:
        """The leader was faster than every other finalist in every round: more rounds
        would not change the order (the round-to-round swings of a shared machine are what
        a pooled interval misses)."""
        leader = self._final_leader(active)
        return all(
            min(self._round_ratios(c, leader), default=0.0) > 1.0 for c in active if c != leader
        )

    # ------------------------------------------------------------------ answer

    def _stats(self, cand: Candidate) -> tuple[Any, str, int]:
        from aialliance_cli.results.stats import latency_stats

        final = self.final_samples.get(cand)
        runs = final if final else self.samples.get(cand, [])[-1:]
        flat = [x for run in runs for x in self.cost(cand, run)]
        return latency_stats(flat), ("final" if final else "screen"), len(flat)

    def _outcome(self) -> TuneOutcome:
        from aialliance_cli.results.stats import compare_verdict

        default = default_candidate()
        plan = plan_candidate(self.target, self.inventory)
        stats: dict[Candidate, Any] = {}
        rows: list[Row] = []
        for cand in self.samples:
            st, measured, n = self._stats(cand)
            stats[cand] = st
            ok = self.accepted(cand)
            acc = None
            if cand.numeric_key() != default.numeric_key():
                acc = self.accuracy.get(cand.numeric_key())
            else:
                acc = {"metric": "reference", "value": 1.0, "passed": True}
            rows.append(
                Row(
                    cand,
                    "ok" if ok else "rejected",
                    st.to_dict(),
                    measured,
                    n,
                    accuracy=acc,
                )
            )
        for cand, err in self.failed.items():
            rows.append(Row(cand, "failed", error=err))
        for row in rows:
            if row.status == "failed":
                continue
            st = stats[row.candidate]
            if default in stats:
                row.speedup_default = stats[default].p50 / st.p50 if st.p50 else None
                row.verdict_default = compare_verdict(stats[default], st)
            if plan in stats:
                row.speedup_plan = stats[plan].p50 / st.p50 if st.p50 else None
                row.verdict_plan = compare_verdict(stats[plan], st)
            if row.candidate == default:
                row.roles.append("ORT default")
            if row.candidate == plan:
                row.roles.append("aia plan")
        winner = self._winner(rows, stats)
        if winner is not None:
            winner.roles.insert(0, "winner")

        def order(r: Row) -> tuple[Any, ...]:
            rank = {"ok": 0, "rejected": 1, "failed": 2}[r.status]
            first = 0 if r is winner else 1
            return (first, rank, r.p50 if r.p50 is not None else math.inf)

        rows.sort(key=order)
        loads = [t.other_cpu_percent for t in self.trials if t.other_cpu_percent is not None]
        load = dict(self.load)
        if loads:
            load["other_cpu_percent_median"] = _median(loads)
        task = self.target.profile.task if self.target.profile is not None else None
        return TuneOutcome(
            target=self.target.name,
            objective=self.settings.objective,
            budget_s=self.settings.budget_s,
            elapsed_s=time.monotonic() - self.t0,
            rows=rows,
            winner=winner,
            default=next((r for r in rows if r.candidate == default), None),
            plan=next((r for r in rows if r.candidate == plan), None),
            space=self.space.to_dict(),
            notes=self.notes,
            load=load,
            trials=len(self.trials),
            min_accuracy=self.min_accuracy,
            accuracy_metric=_metric_name(task),
            interrupted=self.interrupted,
        )

    def _winner(self, rows: list[Row], stats: dict[Candidate, Any]) -> Row | None:
        """The fastest accepted row; rows within noise of it lose to more accurate, simpler ones.

        Only rows measured in the final are compared when there was a final, so that
        all contenders were measured alternately.
        """
        from aialliance_cli.results.stats import compare_verdict

        ok = [r for r in rows if r.status == "ok" and r.stats]
        finals = [r for r in ok if r.measured == "final"]
        pool = finals or ok
        if not pool:
            return None
        fastest = min(pool, key=lambda r: r.p50)
        ties = [
            r
            for r in pool
            if r is fastest
            or compare_verdict(stats[fastest.candidate], stats[r.candidate]) == "within noise"
        ]

        def prefer(r: Row) -> tuple[float, int, float]:
            acc = (r.accuracy or {}).get("value", 0.0)
            return (-round(float(acc), 3), r.candidate.changes(), r.p50)

        return min(ties, key=prefer)


def _backend_key(cand: Candidate) -> tuple[Any, ...]:
    """Where and in what precision a candidate runs (its EP options aside)."""
    return (cand.ep, cand.env, cand.precision)


def _metric_name(task: str | None) -> str:
    return {"sentence-embedding": "cosine", "text-classification": "top-1 agreement"}.get(
        task or "", "1 - max relative error"
    )


def _median(xs: Sequence[float]) -> float:
    import numpy as np

    return float(np.median(np.asarray(xs, dtype=float))) if len(xs) else math.nan


def _value_text(value: Any) -> str:
    if hasattr(value, "precision"):
        return f"{value.precision}@{value.ep}"
    return str(value)


# ----------------------------------------------------------------------------- entry


def tune(
    target: Any,
    settings: TuneSettings,
    *,
    inventory: Any = None,
    envs: Sequence[Any] | None = None,
    here: Sequence[str] | None = None,
    on_event: Event = _no_event,
    started: float | None = None,
) -> TuneOutcome:
    """Search the machine's space for ``target`` within the budget; save the winner.

    ``started`` (time.monotonic()) is when the budget began: the CLI passes the
    moment the command started, so that resolving the model counts too.
    """
    from aialliance_cli.hardware import detect
    from aialliance_cli.tune import records
    from aialliance_cli.tune.space import build_space, usable_eps

    t0 = time.monotonic() if started is None else started
    check_settings(settings)
    inventory = inventory or detect()
    if envs is None:
        from aialliance_cli.envs.registry import list_envs

        envs = list_envs()
    if here is None:
        from aialliance_cli.runtime.sweep import current_eps

        here = current_eps(inventory)
    for name in settings.precisions or ():
        if name.startswith("variant:"):
            from aialliance_cli.models.variants import parse_variants

            parse_variants(target, name[len("variant:") :])  # unknown names exit 2
    eps = usable_eps(here, envs, settings.eps)
    load = machine_load(0.5 if settings.budget_s >= 20 else 0.2)
    space = build_space(
        inventory,
        eps,
        objective=settings.objective,
        precisions=settings.precisions,
        threads=settings.threads,
        busy=load["busy"],
        static_batch=settings.objective == "throughput" and _static_batch(target),
    )
    if settings.precisions is None:
        space.backends += _variant_backends(target, eps)
    if load["busy"]:
        on_event(
            {
                "event": "note",
                "message": f"the machine is busy ({load['cpu_busy_percent']:.0f}% of its CPUs "
                "in use before tuning): figures are noisier, thread spinning off is tried first",
            }
        )
    tuner = Tuner(
        target,
        settings,
        space=space,
        envs=envs,
        inventory=inventory,
        load=load,
        on_event=on_event,
        started=t0,
    )
    outcome = tuner.search()
    if outcome.winner is not None and settings.save and not outcome.interrupted:
        rec = make_record(outcome, target, inventory, envs)
        outcome.record = rec
        outcome.record_path = str(records.save_record(rec))
    return outcome


def _variant_backends(target: Any, eps: Sequence[tuple[str, str | None]]) -> list[Any]:
    """The profile's own variants that are not one of tune's precisions, on the CPU EP."""
    from aialliance_cli.tune.prepare import VARIANT_PREFIX
    from aialliance_cli.tune.space import PRECISIONS, Backend

    prof = target.profile
    if prof is None or not getattr(prof, "variants", None):
        return []
    made = [p.quantize for p in PRECISIONS.values() if p.quantize]
    out = []
    for name, spec in prof.variants.items():
        if spec.quantize is not None:
            q = {"method": spec.quantize}
            if spec.quantize == "dynamic":
                q.update(
                    weight_type=spec.weight_type or "qint8", per_channel=bool(spec.per_channel)
                )
            if q in made:
                continue  # the same model as one of tune's own precisions
        if any(e == CPU_EP for e, _ in eps):
            out.append(Backend(CPU_EP, None, VARIANT_PREFIX + name))
    return out


def _static_batch(target: Any) -> bool:
    try:
        import onnx

        model = onnx.load(str(target.model_path), load_external_data=False)
    except Exception:
        return False
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            return False
    return True


def make_record(outcome: TuneOutcome, target: Any, inventory: Any, envs: Sequence[Any]) -> Any:
    from aialliance_cli.tune import records

    w = outcome.winner
    assert w is not None
    fp = records.hardware_fingerprint(inventory)
    env = None
    if w.candidate.env:
        match = [e for e in envs if e.name == w.candidate.env]
        env = match[0].result_record() if match else {"name": w.candidate.env}
    base = target.model_info.get("base") or {}
    path = Path(base.get("path") or target.model_path)
    return records.TunedRecord(
        target=target.name,
        model_sha256=records.model_sha256(path),
        fingerprint_id=records.fingerprint_id(fp),
        fingerprint=fp,
        onnxruntime=records.ort_build(inventory),
        objective=outcome.objective,
        winner=w.candidate.to_dict(),
        label=w.candidate.label(),
        description=w.candidate.describe(),
        p50_ms=w.p50,
        p50_ci95=(w.stats or {}).get("median_ci95"),
        speedup_default=w.speedup_default,
        verdict_default=w.verdict_default,
        speedup_plan=w.speedup_plan,
        verdict_plan=w.verdict_plan,
        accuracy=w.accuracy,
        load=outcome.load,
        environment=env,
        budget_s=outcome.budget_s,
        trials=outcome.trials,
    )
