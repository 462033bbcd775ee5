"""Time to a first result: aia's commands against the bare processes a user could write.

Alternating in one run, round by round (median of per-round ratios):

1. ``aia bench -n 1 --json`` on the default profile (its model already exported
   and cached) against a bare ``python -c`` that imports onnxruntime, builds the
   session of the same ONNX file and runs it once on inputs of the same shape.
   Target: within 2x.
2. ``aia bench -n 1 --json --in-process`` against the same bare process.
3. ``aia detect --json`` against ``python -c "import onnxruntime"``. Target: within 2x.

The first round warms aia's caches (the model export, the FLOP count, detect's
answers, the validated profile) and is not counted, as a user's second call would
find them.

aia's bytecode is compiled first (``compileall``), as ``pip install`` does for an
installed package and for numpy and onnxruntime here: an editable checkout run
with PYTHONDONTWRITEBYTECODE=1 (as on the development VMs) would otherwise compile
every aia module from source on every call, about 0.2 s that no installed aia
pays and the bare process never pays. ``--no-compile`` measures that case.

Run:  python benchmarks/startup.py [--rounds 7] [--profile all-minilm-l6-v2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

BARE = """
import numpy as np, onnxruntime as ort
s = ort.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
feeds = {{}}
for i in s.get_inputs():
    shape = [d if isinstance(d, int) else {dims!r}.get(d, 1) for d in i.shape]
    feeds[i.name] = np.ones(shape, dtype=np.int64 if "int64" in i.type else np.float32)
s.run(None, feeds)
"""


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--profile", default="all-minilm-l6-v2")
    ap.add_argument("--no-compile", action="store_true", help="leave aia without bytecode")
    args = ap.parse_args()
    aia = shutil.which("aia") or sys.exit("aia is not on PATH: pip install -e . first")
    if not args.no_compile:
        import compileall
        from pathlib import Path

        import aialliance_cli

        package = Path(aialliance_cli.__file__).parent
        compileall.compile_dir(str(package), quiet=1)
        print(f"bytecode compiled for {package} (as pip install does)")

    first = subprocess.run(
        [aia, "bench", args.profile, "-n", "1", "--json"], capture_output=True, text=True
    )
    record = json.loads(first.stdout)
    record = record[0] if isinstance(record, list) else record
    if isinstance(record, dict) and "results" in record:
        record = record["results"][0]
    path = record["model"]["path"]
    dims = record["settings"].get("dims") or {"batch_size": 1, "sequence_length": 128}
    bare = [sys.executable, "-c", BARE.format(path=path, dims=dims)]
    subprocess.run([aia, "detect", "--json"], check=True, stdout=subprocess.DEVNULL)

    pairs: dict[str, list[tuple[float, float]]] = {"bench": [], "in-process": [], "detect": []}
    for r in range(args.rounds):
        b = timed([aia, "bench", args.profile, "-n", "1", "--json"])
        base = timed(bare)
        ip = timed([aia, "bench", args.profile, "-n", "1", "--json", "--in-process"])
        base2 = timed(bare)
        d = timed([aia, "detect", "--json"])
        imp = timed([sys.executable, "-c", "import onnxruntime"])
        pairs["bench"].append((b, base))
        pairs["in-process"].append((ip, base2))
        pairs["detect"].append((d, imp))
        print(
            f"round {r + 1}: bench {b:.2f} s / bare {base:.2f} s; in-process {ip:.2f} s / "
            f"bare {base2:.2f} s; detect {d:.2f} s / import onnxruntime {imp:.2f} s",
            flush=True,
        )
    print()
    print("| check | aia (median) | reference (median) | median per-round ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    targets = {"bench": "<= 2x", "in-process": "-", "detect": "<= 2x"}
    refs = {"bench": "bare process", "in-process": "bare process", "detect": "import onnxruntime"}
    for name, ps in pairs.items():
        ratio = statistics.median(a / b for a, b in ps)
        print(
            f"| {name} vs {refs[name]} | {statistics.median(a for a, _ in ps):.2f} s | "
            f"{statistics.median(b for _, b in ps):.2f} s | {ratio:.2f}x | {targets[name]} |"
        )


if __name__ == "__main__":
    main()
