"""Accuracy of every precision aia can prepare, on real sentences and on random token ids.

    python benchmarks/quantize_accuracy.py [PROFILE] [--samples 16] [--calibration 32]

For each prepared model (tune/quantize.py) the fp32 model and the candidate run
the same input sets on the CPU EP; the table gives the accuracy aia's check
uses (tune/accuracy.py: the mean and minimum cosine of the pooled embeddings for
sentence-embedding profiles) and, alternating fp32 and candidate, the median
latency ratio on the first input set (informative only: accuracy is the point).
"""

from __future__ import annotations

import argparse
import statistics
import time


def _p50(session, feed, n: int = 15) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", nargs="?", default="all-minilm-l6-v2")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--calibration", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="alternating latency rounds")
    args = ap.parse_args()

    from aialliance_cli.runtime.api import prepare_target
    from aialliance_cli.tune import accuracy as A
    from aialliance_cli.tune import quantize as Q

    target = prepare_target(args.profile)
    session = A.cpu_session(target.model_path)
    kinds = [A.profile_inputs(target, args.samples, session=session)]
    if kinds[0].kind == "sentences":
        kinds.append(A.profile_inputs(target, args.samples, kind="random", session=session))
    refs = [A.reference(target, k) for k in kinds]
    specs = [
        Q.QuantSpec("dynamic", weight_type="qint8", per_channel=True),
        Q.QuantSpec("dynamic", weight_type="qint8", per_channel=False),
        Q.QuantSpec("dynamic", weight_type="quint8", per_channel=True),
        Q.QuantSpec("dynamic", weight_type="quint8", per_channel=False),
        Q.QuantSpec("static", calibration=args.calibration),
        Q.QuantSpec("fp16"),
    ]
    print(f"{target.name}: ISA preset {Q.isa_preset()}, {args.samples} inputs per kind")
    header = ["precision", *(r.inputs.kind for r in refs), "p50 ratio fp32/candidate"]
    print(" | ".join(header))
    feed = kinds[0].feeds[0]
    for spec in specs:
        cal = Q.calibration_inputs(target, args.calibration) if spec.method == "static" else None
        prepared = Q.prepare(target.model_path, spec, calibration=cal)
        cand = A.cpu_session(prepared.path)
        cells = []
        for ref in refs:
            a = A.compare(ref, A.run_outputs(prepared.path, ref.inputs.feeds, session=cand))
            cells.append(f"{a.summary()} {'pass' if a.passes() else 'fail'}")
        ratios = []
        for _ in range(args.rounds):
            base, other = _p50(session, feed), _p50(cand, feed)
            ratios.append(base / other)
        cells.append(f"{statistics.median(ratios):.2f}x")
        print(" | ".join([prepared.spec.describe(), *cells]), flush=True)


if __name__ == "__main__":
    main()
