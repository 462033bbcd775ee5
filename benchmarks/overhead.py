"""Does aia's measurement add anything? aia's bench vs a bare InferenceSession.run loop.

Two checks, each measured alternately in one process so that machine noise hits
both sides alike:

1. p50 latency of the default profile (all-MiniLM-L6-v2, batch 1, sequence 128)
   through aia's bench API vs a bare timed loop over a session with the same EP,
   threads and inputs. Target: within 2%.
2. Inferences per second on a model of one tiny op (Add of two 1x8 tensors),
   aia's loop (wall clock, timing included) vs an untimed bare loop.
   Target: aia reaches at least 90%.

Run:  python benchmarks/overhead.py [--rounds 5] [--iterations 200] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from aialliance_cli.runtime.api import Overrides, bench, open_session, prepare_target
from aialliance_cli.runtime.bench import BenchSettings, run_loop


def bare_session(model: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


def bare_timed_p50(sess, feed, iterations: int, warmup: int) -> float:
    for _ in range(warmup):
        sess.run(None, feed)
    lat = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        lat.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.percentile(lat, 50))


def tiny_model(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "tiny", [x, y], [z])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = folder / "tiny_add.onnx"
    onnx.save(model, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--profile", default="all-minilm-l6-v2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--tiny-iterations", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    ov = Overrides(
        ep="cpu", threads=args.threads, iterations=args.iterations, warmup=10, input_sets=1
    )
    target = prepare_target(args.profile)
    prepared = open_session(target, ov)
    feed = prepared.feeds[0]
    bare = bare_session(target.model_path, args.threads)
    aia_p50, bare_p50 = [], []
    for r in range(args.rounds):
        out = bench(overrides=ov, prepared=prepared)
        aia_p50.append(out.result.metrics["latency_ms"]["p50"])
        bare_p50.append(bare_timed_p50(bare, feed, args.iterations, 10))
        print(f"round {r + 1}: aia p50 {aia_p50[-1]:.3f} ms, bare p50 {bare_p50[-1]:.3f} ms")
    a, b = statistics.median(aia_p50), statistics.median(bare_p50)
    paired = statistics.median(x / y for x, y in zip(aia_p50, bare_p50, strict=True))
    best = min(aia_p50) / min(bare_p50)
    print(
        f"\n{args.profile} on CPU EP, threads={args.threads or 'default'}, "
        f"{args.rounds} alternating rounds of {args.iterations}:"
    )
    print(f"  median p50: aia {a:.3f} ms, bare {b:.3f} ms")
    # On a shared machine the load changes between rounds; the ratio within each round
    # (measured back to back) and the best round of each side are the robust figures.
    print(f"  median of per-round ratios aia/bare = {paired:.4f} ({(paired - 1) * 100:+.2f}%)")
    print(
        f"  best round: aia {min(aia_p50):.3f} ms, bare {min(bare_p50):.3f} ms, "
        f"ratio {best:.4f} ({(best - 1) * 100:+.2f}%; target within 2%)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_model(Path(tmp))
        tiny = prepare_target(str(path))
        tov = Overrides(ep="cpu", threads=1, input_sets=1)
        tprep = open_session(tiny, tov)
        tfeed = tprep.feeds[0]
        tbare = bare_session(path, 1)
        aia_ips, bare_ips = [], []
        n = args.tiny_iterations
        settings = BenchSettings(warmup=100, iterations=n)
        for _ in range(args.rounds):
            m = run_loop(tprep.built.session, tprep.feeds, settings)
            aia_ips.append(len(m.latencies_ms) / m.wall_s)
            for _ in range(100):
                tbare.run(None, tfeed)
            t0 = time.perf_counter()
            run = tbare.run
            for _ in range(n):
                run(None, tfeed)
            bare_ips.append(n / (time.perf_counter() - t0))
        a, b = statistics.median(aia_ips), statistics.median(bare_ips)
        paired = statistics.median(x / y for x, y in zip(aia_ips, bare_ips, strict=True))
        print(f"\ntiny Add model, 1 thread, {args.rounds} alternating rounds of {n}:")
        print(
            f"  median inferences/s: aia {a:,.0f}, bare {b:,.0f}, aia/bare = {a / b:.3f}; "
            f"median per-round ratio {paired:.3f}; best rounds {max(aia_ips) / max(bare_ips):.3f}"
            " (target at least 0.90)"
        )
    print(f"\nmachine: {os.cpu_count()} logical CPUs, onnxruntime {ort.__version__}")


if __name__ == "__main__":
    main()
