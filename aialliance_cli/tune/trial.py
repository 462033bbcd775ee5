"""One `aia tune` trial, inside a worker process (runtime/worker.py, job kind "tune").

The job carries the resolved target, the api.Overrides of the candidate (EP, threads,
batch and ``session`` settings) and ``job["tune"]``:

    measure_s      seconds of timed runs (after ``warmup`` runs), at least ``min_iterations``
    feeds          an npz of input sets to time (the reference's), or None to make them;
                   ``save_feeds`` names where to keep the ones made
    accuracy       None, or {"inputs": npz to read or None to make them,
                             "n": input sets to make, "outputs": npz to write}

The result is a small dict (not an aia.result): the raw latencies, the EP that ran,
fallbacks and warnings. A trial that fails becomes the worker's failed result.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

SEP = "::"


def save_sets(path: Path, sets: list[dict[str, np.ndarray]]) -> None:
    """A list of {name: array} as one .npz (keys ``3::input_ids``)."""
    flat = {f"{i}{SEP}{k}": np.asarray(v) for i, s in enumerate(sets) for k, v in s.items()}
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **flat)
    tmp.replace(path)


def load_sets(path: Path) -> list[dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        out: dict[int, dict[str, np.ndarray]] = {}
        for key in data.files:
            i, _, name = key.partition(SEP)
            out.setdefault(int(i), {})[name] = data[key]
    return [out[i] for i in sorted(out)]


def measure_trial(job: dict[str, Any], on_event: Any) -> dict[str, Any]:
    """Build the session as asked, time it, and (when asked) write its outputs."""
    from aialliance_cli.hardware import detect
    from aialliance_cli.runtime.api import choose_session, make_feeds
    from aialliance_cli.runtime.bench import BenchSettings, run_loop
    from aialliance_cli.runtime.job import overrides_from_dict, target_from_dict
    from aialliance_cli.runtime.session import build_session
    from aialliance_cli.runtime.worker import _arm_interrupts

    opts = job.get("tune") or {}
    target = target_from_dict(job["target"])
    ov = overrides_from_dict(job["overrides"])
    inventory = detect()
    spec, (_plan, _choice, warnings) = choose_session(target, ov, inventory)
    # Placement is not read: a trial measures, and the EP that ran is checked below.
    from dataclasses import replace

    spec = replace(spec, record_placement=False)
    on_event({"event": "status", "message": f"building the session on {spec.ep}"})
    built = build_session(target.model_path, spec)
    warnings = list(warnings) + built.fallback_warnings()
    _arm_interrupts()
    if opts.get("feeds"):
        # The reference's inputs: same data for every candidate, and no tokenizer or onnx
        # import in this process.
        feeds, dims = load_sets(Path(opts["feeds"])), dict(opts.get("dims") or {})
    else:
        feeds, dims = make_feeds(built.session, target, ov, n_sets=max(1, ov.input_sets))
        if opts.get("save_feeds"):
            save_sets(Path(opts["save_feeds"]), feeds)
    on_event({"event": "session", "ep": built.ep})
    settings = BenchSettings(
        warmup=int(opts.get("warmup", 5)),
        iterations=None,
        duration_s=float(opts.get("measure_s", 1.0)),
        min_iterations=int(opts.get("min_iterations", 10)),
    )
    m = run_loop(built.session, feeds, settings)
    lat = list(m.latencies_ms)
    min_it = int(opts.get("min_iterations", 10))
    if len(lat) < min_it and not m.interrupted:
        # A slow model: a few more runs so that the median has an interval.
        more = run_loop(built.session, feeds, BenchSettings(warmup=0, iterations=min_it - len(lat)))
        lat += more.latencies_ms
    out: dict[str, Any] = {
        "status": "interrupted" if m.interrupted else "ok",
        "kind": "tune-trial",
        "config": job.get("config") or {},
        "latencies_ms": lat,
        "ep": built.ep,
        "requested_ep": spec.ep,
        "providers": list(built.providers),
        "fallbacks": [
            {"requested": f.requested, "error": f.error, "used_instead": f.used_instead}
            for f in built.fallbacks
        ],
        "session_create_s": built.create_s,
        "dims": dict(dims),
        "other_cpu_percent": m.other_cpu_percent,
        "warnings": warnings,
    }
    acc = opts.get("accuracy")
    if acc and not m.interrupted:
        t0 = time.perf_counter()
        if acc.get("inputs"):
            sets = load_sets(Path(acc["inputs"]))
        else:
            from dataclasses import replace as _replace

            from aialliance_cli.tune.accuracy import profile_inputs

            # Real sentences where the profile takes text; its own input sets otherwise.
            base = _replace(ov, batch=None)  # accuracy inputs are the profile's own shape
            made = profile_inputs(
                target, int(acc.get("n", 16)), overrides=base, session=built.session
            )
            sets = made.feeds
            save_sets(Path(acc["outputs"] + ".inputs.npz"), sets)
            out["accuracy_inputs"] = made.kind
        names = [o.name for o in built.session.get_outputs()]
        outputs = []
        for feed in sets:
            values = built.session.run(None, feed)
            outputs.append(dict(zip(names, (np.asarray(v) for v in values), strict=False)))
        save_sets(Path(acc["outputs"]), outputs)
        out["accuracy_s"] = time.perf_counter() - t0
    return out
