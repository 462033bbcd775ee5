"""Does `aia tune` find what a full grid finds, beat ORT's default, and keep its budget?

On the default profile (all-MiniLM-L6-v2, batch 1, sequence 128):

1. grid     every EP x threads x precision x spinning: each precision of tune's space
            on each EP that runs it (fp32, int8 dynamic per channel and per tensor,
            int8 static on the CPU EP; fp32, bf16 and int8 static on the OpenVINO EP
            when an environment has it), threads {ORT's default, 1, physical, logical},
            spinning {on, off}; one worker trial each, no budget; accuracy of each
            precision on the profile's real sentences and on random token ids
2. tune     `aia tune --budget B` as a user runs it (a subprocess): wall time vs budget
3. final    tuned winner, the grid's --grid-top fastest accepted configurations and
            ORT's default, measured in alternating rounds in fresh workers. A single
            grid trial can be lucky by a third on a shared machine, so "the grid's
            fastest" is the one of its top few with the lowest median over these
            rounds (which favours the grid: the minimum of several noisy medians);
            ratios are medians of per-round ratios
4. openvino with --openvino-python (a venv with the `openvino` package): OpenVINO's
            own benchmark_app on the same ONNX file, latency hint, alternating with
            the tuned winner

Run:  python benchmarks/tune.py [--budget 120] [--rounds 5] [--grid-seconds 2]
                                [--grid-top 3] [--openvino-python .venv-x/bin/python]
                                [--out FILE] [--grid-only]
                                [--grid-from FILE]  (reuse the grid of an earlier --out)
Prints a JSON summary at the end (and --out FILE writes it). The grid takes minutes:
run it once with --grid-only --out grid.json, then the rest with --grid-from grid.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aialliance_cli.envs.registry import list_envs
from aialliance_cli.hardware import detect
from aialliance_cli.runtime.api import prepare_target
from aialliance_cli.runtime.sweep import current_eps
from aialliance_cli.tune.search import Tuner, TuneSettings, default_candidate, machine_load
from aialliance_cli.tune.space import CPU_EP, OV_EP, Backend, Candidate, build_space, usable_eps


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median_ci(values: list[float]) -> tuple[float, float, float]:
    from aialliance_cli.results.stats import latency_stats

    st = latency_stats(values)
    lo, hi = st.median_ci95 or (min(values), max(values))
    return st.p50, lo, hi


def grid(tuner: Tuner, backends: list[Backend], threads: list[int], seconds: float) -> list[dict]:
    rows = []
    for b in backends:
        for th in threads:
            for spin in (None, False):
                cand = b.candidate(Candidate(threads=th, spinning=spin))
                say(f"grid: {cand.label()}")
                t = tuner.run_trial(cand, "grid", seconds)
                acc = tuner.accuracy.get(cand.numeric_key())
                rows.append(
                    {
                        "label": cand.label(),
                        "config": cand.to_dict(),
                        "status": t.status,
                        "p50_ms": float(np.median(t.latencies_ms)) if t.latencies_ms else None,
                        "error": t.error,
                        "accuracy": acc,
                    }
                )
    return rows


def random_accuracy(tuner: Tuner, target: Any, backends: list[Backend]) -> dict[str, Any]:
    """Each precision's agreement on random token ids (16 sets) instead of real sentences."""
    from aialliance_cli.tune.accuracy import InputSet, Reference, profile_inputs, run_outputs
    from aialliance_cli.tune.trial import save_sets

    rnd = profile_inputs(target, 16, kind="random")
    ref_out = run_outputs(target.model_path, rnd.feeds)
    path = tuner.workdir / "random-inputs.npz"
    save_sets(path, rnd.feeds)
    tuner.reference = Reference(InputSet(rnd.feeds, "random"), ref_out, target.profile.task, target)
    tuner.ref_inputs = path
    tuner.accuracy.clear()
    out = {}
    for b in backends:
        cand = b.candidate(Candidate())
        if cand == default_candidate():
            continue
        tuner.run_trial(cand, "accuracy-random", 0.2)
        out[cand.label()] = tuner.accuracy.get(cand.numeric_key())
    return out


def run_tune(target: str, budget: float) -> tuple[float, dict]:
    """`aia tune` as a user runs it (same environments registered; no record written)."""
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "aialliance_cli", "tune", target, "--budget", str(budget)]
    proc = subprocess.run([*cmd, "--json", "--no-save"], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"aia tune failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout)


def benchmark_app(python: str, model: Path, seconds: int, shape: str) -> float:
    """OpenVINO's benchmark_app, latency hint, its reported median latency in ms."""
    exe = Path(python).parent / "benchmark_app"
    cmd = [str(exe), "-m", str(model), "-d", "CPU", "-hint", "latency", "-t", str(seconds)]
    cmd += ["-shape", shape]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"Median:\s+([\d.]+)\s*ms", proc.stdout)
    if not m:
        raise SystemExit(f"benchmark_app gave no median: {proc.stdout[-1500:]}{proc.stderr[-800:]}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="all-minilm-l6-v2")
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--grid-seconds", type=float, default=2.0)
    ap.add_argument("--final-seconds", type=float, default=3.0)
    ap.add_argument("--openvino-python", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--grid-from", type=Path, default=None, help="reuse the grid of an --out file")
    ap.add_argument("--grid-only", action="store_true", help="stop after the grid (with --out)")
    ap.add_argument("--grid-top", type=int, default=3, help="grid configurations in the final")
    args = ap.parse_args()

    target = prepare_target(args.target)
    inventory = detect()
    envs = list_envs()
    eps = usable_eps(current_eps(inventory), envs)
    load = machine_load()
    say(f"load before: {load}")
    space = build_space(inventory, eps, precisions=None)
    backends = [b for b in space.backends if b.ep in (CPU_EP, OV_EP)]
    threads = sorted({0, 1, inventory.cpu.physical_cores or 1, inventory.cpu.logical_cores or 1})
    tuner = Tuner(
        target,
        TuneSettings(budget_s=1e9, save=False),
        space=space,
        envs=envs,
        inventory=inventory,
        load=load,
    )
    result: dict[str, Any] = {"machine": inventory.cpu.model_name, "load_before": load}
    try:
        t0 = time.monotonic()
        ref = tuner.run_trial(default_candidate(), "reference", args.grid_seconds)
        assert ref.status == "ok", ref.error
        if args.grid_from:  # the grid of an earlier run of this script (it takes minutes)
            old = json.loads(args.grid_from.read_text(encoding="utf-8"))
            for key in ("grid", "grid_wall_s", "grid_trials", "accuracy_random"):
                result[key] = old[key]
            result["grid_from"] = str(args.grid_from)
            rows = old["grid"]
        else:
            rows = grid(tuner, backends, threads, args.grid_seconds)
            result["grid"] = rows
            result["grid_wall_s"] = time.monotonic() - t0
            result["grid_trials"] = len(rows)
        ok = [r for r in rows if r["status"] == "ok" and (r["accuracy"] or {}).get("passed", True)]
        top = sorted(ok, key=lambda r: r["p50_ms"])[: max(1, args.grid_top)]
        result["grid_top"] = [r["label"] for r in top]
        result["accuracy_sentences"] = {
            r["label"]: r["accuracy"] for r in rows if r["accuracy"] and r["config"]["threads"] == 0
        }
        if not args.grid_from:
            result["accuracy_random"] = random_accuracy(tuner, target, backends)
        if args.grid_only:
            result["load_after"] = machine_load()
            return finish(result, args.out)

        wall, tuned = run_tune(args.target, args.budget)
        result["tune"] = {
            "budget_s": args.budget,
            "wall_s": wall,
            "elapsed_s": tuned["elapsed_s"],
            "trials": tuned["trials"],
            "winner": tuned["winner"]["label"],
            "within_budget_plus_10pct": wall <= args.budget * 1.1,
            "ranked": [
                {
                    "label": r["label"],
                    "status": r["status"],
                    "p50_ms": (r["latency_ms"] or {}).get("p50"),
                    "measured": r["measured"],
                }
                for r in tuned["ranked"]
            ],
            "notes": tuned["notes"],
        }
        winner = Candidate.from_dict(tuned["winner"]["config"])
        contenders = {"tuned": winner}
        for i, r in enumerate(top):
            contenders[f"grid{i + 1}"] = Candidate.from_dict(r["config"])
        contenders["default"] = default_candidate()
        samples: dict[str, list[float]] = {k: [] for k in contenders}
        per_round: list[dict[str, float]] = []
        ov_ratio: list[float] = []
        model = target.model_path
        import onnxruntime as ort

        ref_feed_names = [i.name for i in ort.InferenceSession(str(model)).get_inputs()]
        for r in range(args.rounds):
            order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
            p50 = {}
            for name in order:
                t = tuner.run_trial(contenders[name], f"final:{name}", args.final_seconds)
                p50[name] = float(np.median(t.latencies_ms)) if t.latencies_ms else float("nan")
                samples[name].append(p50[name])
            per_round.append(p50)
            line = f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in p50.items())
            if args.openvino_python:
                shape = ",".join(f"{k}[1,128]" for k in ref_feed_names)
                ba = benchmark_app(args.openvino_python, model, 10, shape)
                ov_ratio.append(p50["tuned"] / ba)
                line += f", benchmark_app {ba:.2f} ms"
            say(line)
        medians = {k: statistics.median(v) for k, v in samples.items()}
        grid_best = min((k for k in contenders if k.startswith("grid")), key=medians.__getitem__)
        ratios = {
            "tuned/grid": [p["tuned"] / p[grid_best] for p in per_round],
            "tuned/default": [p["tuned"] / p["default"] for p in per_round],
        }
        for k in contenders:
            if k.startswith("grid") and k != grid_best:
                ratios[f"tuned/{k}"] = [p["tuned"] / p[k] for p in per_round]
        result["final"] = {
            "contenders": {k: c.label() for k, c in contenders.items()},
            "grid_fastest": contenders[grid_best].label(),
            "p50_ms": medians,
            "ratios": {
                k: dict(zip(("median", "ci_low", "ci_high"), median_ci(v), strict=True))
                for k, v in ratios.items()
            },
            "per_round": ratios,
        }
        if ov_ratio:
            result["final"]["tuned_over_benchmark_app"] = dict(
                zip(("median", "ci_low", "ci_high"), median_ci(ov_ratio), strict=True)
            )
            result["final"]["per_round"]["tuned/benchmark_app"] = ov_ratio
        result["load_after"] = machine_load()
    finally:
        import shutil

        shutil.rmtree(tuner.workdir, ignore_errors=True)
    finish(result, args.out)


def finish(result: dict[str, Any], out: Path | None) -> None:
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if out:
        out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
