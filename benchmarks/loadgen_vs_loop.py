"""LoadGen offline throughput vs aia's plain loop, same model, same batch, same process.

Both sides run through the code `aia bench` uses (runtime/worker.py, in this
process), alternately, on the default profile (all-MiniLM-L6-v2, sequence 128):

- the plain loop: samples/s over the sum of the timed session.run calls
  (what `aia bench` reports) and over the loop's wall time;
- LoadGen offline (`aia bench --scenario offline`): LoadGen's samples per
  second, one session.run per batch of the profile's batch size.

Target: LoadGen's offline QPS within 5% of the plain loop's wall-clock samples/s.
On a shared machine other processes only ever slow a side down, so the verdict
compares the best round of each side; the median of the per-round ratios is
printed beside it.

Run:  python benchmarks/loadgen_vs_loop.py [--rounds 8] [--batch 1] [--seconds 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from aialliance_cli.runtime.api import Overrides, prepare_target
from aialliance_cli.runtime.sweep import ScenarioSettings, SweepPoint, make_job, run_in_process


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?", default=None, help="profile or model (default profile)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=4.0, help="per side and round")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    target = prepare_target(args.target)
    point = SweepPoint(threads=args.threads, batch=args.batch)
    loop_job = make_job(
        target, Overrides(warmup=10, duration_s=args.seconds, input_sets=4), point, label="loop"
    )
    logs = Path(tempfile.mkdtemp(prefix="aia-lg-"))
    ratios, lg_qps, loop_busy, loop_wall, lg_valid = [], [], [], [], []
    for i in range(args.rounds):
        lg_job = make_job(
            target,
            Overrides(warmup=10, input_sets=4),
            point,
            label="offline",
            scenario=ScenarioSettings("offline", min_duration_s=args.seconds),
            log_dir=logs / f"round{i}",
        )
        order = ("loop", "offline") if i % 2 == 0 else ("offline", "loop")
        for side in order:
            res = run_in_process(loop_job if side == "loop" else lg_job)
            if res["status"] != "ok":
                raise SystemExit(f"{side} failed: {res.get('error')}")
            m = res["metrics"]
            batch = res["settings"]["batch"]
            if side == "loop":
                loop_busy.append(m["samples_per_s"])
                loop_wall.append(m["iterations"] * batch / m["wall_s"])
                print(
                    f"round {i + 1} loop:    {loop_busy[-1]:8.2f} samples/s (timed runs), "
                    f"{loop_wall[-1]:8.2f} samples/s (wall), batch {batch}"
                )
            else:
                lg = m["loadgen"]
                lg_qps.append(lg["qps"])
                lg_valid.append(bool(lg["valid"]))
                print(
                    f"round {i + 1} offline: {lg_qps[-1]:8.2f} samples/s "
                    f"({'VALID' if lg['valid'] else 'INVALID'}, {lg['samples_processed']} "
                    f"samples in {lg['duration_s']:.1f} s)"
                )
        ratios.append(lg_qps[-1] / loop_wall[-1])
    r = statistics.median(ratios)
    # A run LoadGen itself calls INVALID (e.g. it ended before --seconds) does not count as best.
    valid_qps = [q for q, ok in zip(lg_qps, lg_valid, strict=True) if ok] or lg_qps
    best = max(valid_qps) / max(loop_wall)
    print(
        f"\n{target.name}: median LoadGen offline {statistics.median(lg_qps):.2f} samples/s, "
        f"plain loop {statistics.median(loop_wall):.2f} (wall) / "
        f"{statistics.median(loop_busy):.2f} (timed runs) samples/s"
    )
    print(
        f"best rounds: offline {max(valid_qps):.2f} (VALID runs), "
        f"loop {max(loop_wall):.2f} samples/s"
    )
    verdict = "PASS" if abs(best - 1) <= 0.05 else "FAIL"
    print(
        f"offline/loop: best {best:.3f} -> {verdict} (target within 5%); "
        f"median per-round ratio {r:.3f}"
    )
    print(f"LoadGen logs: {logs}")


if __name__ == "__main__":
    main()
