"""aia's decode loop against ONNX Runtime GenAI's generator, on the same weights.

The weights are SmolLM2-135M's architecture with random weights (seeded; speed
depends on the shapes only). ONNX Runtime GenAI's model builder makes the fused
decoder once per precision (fp32, int4 with block size 32 and accuracy level 4);
both engines load the very same files. aia's optimum export (fp32, no fused
operators) runs as the old baseline.

Contenders, each with its threads and spinning set explicitly:
``aia/builder tN`` (aia's loop on a session from aia's session builder, IO
binding, in-place KV buffer), ``genai tN`` (GenAI's ``Generator``),
``aia/optimum tN``. Every round runs every contender once on the same random
prompt (order rotated each round); the figures are medians over rounds and the
ratio is the median of per-round ratios of aia's best contender to GenAI's best
(best = highest median decode tokens/s).

Each contender lives in a process of its own (as ``aia bench`` runs the model in
its worker and a GenAI user in their script), started one after the other and
driven in turn, so only one computes at a time. The processes are started afresh
each round, in that round's order, and warmed up with one generation: on this VM
the session loaded first after a pause decodes 10-15% slower than the ones loaded
after it, whichever engine it belongs to (measured with three identical twins of
each engine), so a fixed start order decides close calls. ``--in-process`` loads
every contender once into this process (the old way; the first loaded pays).

aia's contenders start as aia starts its worker, with malloc's memory in
transparent huge pages where the machine allows (runtime/memory.py); GenAI's start
as its user's script would, with the system's default. ``--genai-huge-pages`` gives
GenAI's processes the same memory, to show how much of the difference that is.
The table's last column is each process's memory in huge pages.

Run: ``python benchmarks/genai_vs_aia.py [--rounds 7] [--threads 1,2]``. The model
builder needs its environment (aia makes it once; ``AIA_GENAI_BUILDER_PYTHON``
points at another).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np


def aia_engine(folder: Path, threads: int, spinning: bool = True) -> Any:
    """aia's loop on a session built as ``aia run``/``aia bench`` build it."""
    from aialliance_cli.genai.export import locate_decoder
    from aialliance_cli.genai.generate import load_generator
    from aialliance_cli.runtime.session import SessionSpec, build_session
    from aialliance_cli.runtime.textgen import decoder_session_spec

    spec = SessionSpec(ep="CPUExecutionProvider", inter_op_threads=1)
    files = locate_decoder(folder)
    built = build_session(files.model_path, decoder_session_spec(spec, threads, spinning))
    return load_generator(files.folder, session=built.session, require_tokenizer=False)


def genai_engine(folder: Path, threads: int, spinning: bool = True) -> Any:
    from aialliance_cli.genai.ortgenai import GenAIEngine

    return GenAIEngine(
        folder,
        intra_op_threads=threads,
        inter_op_threads=1,
        spinning=spinning,
        require_tokenizer=False,
    )


class InProcess:
    """A contender in this process."""

    def __init__(self, kind: str, folder: Path, threads: int, huge_pages: bool = False) -> None:
        # huge_pages cannot apply here: glibc reads its tunable when a process starts.
        make = genai_engine if kind == "genai" else aia_engine
        self.engine = make(folder, threads)

    def generate(self, vocab: int, prompt_len: int, gen_len: int, seed: int) -> dict[str, float]:
        return run_once(self.engine, vocab, prompt_len, gen_len, seed)

    def close(self) -> None:
        self.engine = None


class Child:
    """A contender in a process of its own, driven over its stdin and stdout."""

    def __init__(self, kind: str, folder: Path, threads: int, huge_pages: bool = False) -> None:
        from aialliance_cli.runtime import memory

        cmd = [sys.executable, __file__, "--child", kind, str(folder), str(threads)]
        # aia's worker asks for huge pages (runtime/memory.py): so does aia's contender.
        env = {**os.environ, **(memory.worker_environ(os.environ) if huge_pages else {})}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env
        )
        self._answer()  # wait until loaded: no two contenders load at once

    def _answer(self) -> Any:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_TAG):
                return json.loads(line[len(_TAG) :])
        raise RuntimeError(f"contender {self.proc.args} exited ({self.proc.wait()})")

    def generate(self, vocab: int, prompt_len: int, gen_len: int, seed: int) -> dict[str, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([vocab, prompt_len, gen_len, seed]) + "\n")
        return self._answer()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_TAG = "@genai_vs_aia "


def run_once(engine: Any, vocab: int, prompt_len: int, gen_len: int, seed: int) -> dict[str, float]:
    from aialliance_cli.genai import make_settings
    from aialliance_cli.genai.bench import random_prompts

    prompt = random_prompts(vocab, 1, prompt_len, exclude=[1, 2], seed=seed)
    settings = make_settings(max_new_tokens=gen_len)
    out = engine.generate(prompt, settings, ignore_eos=True, decode_text=False)
    from aialliance_cli.runtime import memory

    return {
        "huge_pages_mb": (memory.huge_pages_bytes() or 0) / 2**20,
        "decode_tps": out.decode_tokens_per_s,
        "ttft_ms": out.ttft_s * 1e3,
        "prefill_tps": out.prefill_tokens_per_s,
        "per_token_p50_ms": float(np.median(out.per_token_s)) * 1e3,
    }


def child_main(kind: str, folder: str, threads: str) -> None:
    """One contender: load, answer each request line with its figures, stop at EOF."""
    make = genai_engine if kind == "genai" else aia_engine
    engine = make(Path(folder), int(threads))
    print(_TAG + "null", flush=True)
    for line in sys.stdin:
        vocab, prompt_len, gen_len, seed = json.loads(line)
        figures = run_once(engine, vocab, prompt_len, gen_len, seed)
        print(_TAG + json.dumps(figures), flush=True)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--gen-len", type=int, default=32)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--precisions", default="fp32,int4")
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--no-optimum", action="store_true", help="skip the optimum baseline")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="all contenders in this process (the session created first is slower)",
    )
    parser.add_argument("--json", type=Path, help="write every round's figures here")
    parser.add_argument(
        "--genai-huge-pages",
        action="store_true",
        help="give GenAI's processes the huge pages aia's worker asks for (as its user could)",
    )
    args = parser.parse_args()

    from aialliance_cli.genai.builder import build_genai_model
    from aialliance_cli.genai.export import export_causal_lm
    from aialliance_cli.genai.tiny import SMOLLM2_135M_CONFIG, build_random_causal_lm

    threads = [int(t) for t in args.threads.split(",")]
    precisions = args.precisions.split(",")
    config = {**SMOLLM2_135M_CONFIG, "num_hidden_layers": args.layers}
    src = build_random_causal_lm(config)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    folders = {
        p: build_genai_model(src, precision=p, allow_install=True, progress=log).folder
        for p in precisions
    }
    plan: list[tuple[str, str, str, Path, int]] = []  # name, precision, kind, folder, threads
    for p in precisions:
        for t in threads:
            plan.append((f"{p} aia/builder t{t}", p, "aia", folders[p], t))
            plan.append((f"{p} genai t{t}", p, "genai", folders[p], t))
    if "fp32" in precisions and not args.no_optimum:
        opt = export_causal_lm(src)
        for t in threads:
            plan.append((f"fp32 aia/optimum t{t}", "fp32", "optimum", opt, t))
    meta = {name: (p, kind) for name, p, kind, _, _ in plan}  # name -> (precision, engine kind)
    names = list(meta)
    vocab = int(config["vocab_size"])

    def start(entries: list[tuple[str, str, str, Path, int]]) -> dict[str, Any]:
        host = InProcess if args.in_process else Child
        live: dict[str, Any] = {}
        try:
            for name, _, kind, folder, t in entries:
                hp = kind != "genai" or args.genai_huge_pages
                live[name] = host(kind, folder, t, huge_pages=hp)
                live[name].generate(vocab, args.prompt_len, args.gen_len, 999)  # warm-up
        except BaseException:
            for c in live.values():
                c.close()
            raise
        return live

    rounds: list[dict[str, dict[str, float]]] = []
    shared = start(plan) if args.in_process else {}
    try:
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            # Fresh processes each round, started in the round's order: whatever favours
            # or hinders the one started first is shared out evenly.
            live = shared or start([next(e for e in plan if e[0] == n) for n in order])
            try:
                row = {n: live[n].generate(vocab, args.prompt_len, args.gen_len, r) for n in order}
            finally:
                if not shared:
                    for c in live.values():
                        c.close()
            rounds.append(row)
            log(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{n} {row[n]['decode_tps']:.1f}" for n in names)
            )
    finally:
        for c in shared.values():
            c.close()

    def med(name: str, key: str) -> float:
        return statistics.median(rd[name][key] for rd in rounds)

    print(
        f"\nSmolLM2-135M architecture ({args.layers} layers, random weights), prompt "
        f"{args.prompt_len}, {args.gen_len} new tokens, {args.rounds} rounds, "
        f"{'one process' if args.in_process else 'a process per contender'}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n"
    )
    print("| contender | decode tok/s | TTFT ms | prefill tok/s | ms/token p50 | huge pages MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in names:
        print(
            f"| {n} | {med(n, 'decode_tps'):.1f} | {med(n, 'ttft_ms'):.1f} "
            f"| {med(n, 'prefill_tps'):.0f} | {med(n, 'per_token_p50_ms'):.2f} "
            f"| {med(n, 'huge_pages_mb'):.0f} |"
        )

    def ratios(a: str, g: str) -> tuple[float, float, list[float]]:
        dec = [rd[a]["decode_tps"] / rd[g]["decode_tps"] for rd in rounds]
        ttft = [rd[g]["ttft_ms"] / rd[a]["ttft_ms"] for rd in rounds]
        return statistics.median(dec), statistics.median(ttft), dec

    print("\n| aia | GenAI | decode aia/GenAI | TTFT GenAI/aia | decode per round |")
    print("| --- | --- | ---: | ---: | --- |")
    for p in precisions:
        for t in threads:
            dec, ttft, per = ratios(f"{p} aia/builder t{t}", f"{p} genai t{t}")
            row = " ".join(f"{x:.2f}" for x in per)
            print(f"| {p} aia t{t} | {p} genai t{t} | {dec:.3f} | {ttft:.3f} | {row} |")
    summary = {}
    print("\n| precision | aia best | GenAI best | decode aia/GenAI | TTFT GenAI/aia |")
    print("| --- | --- | --- | ---: | ---: |")
    for p in precisions:
        mine = [n for n in names if meta[n] == (p, "aia")]
        theirs = [n for n in names if meta[n] == (p, "genai")]
        a = max(mine, key=lambda n: med(n, "decode_tps"))
        g = max(theirs, key=lambda n: med(n, "decode_tps"))
        dec, ttft, per = ratios(a, g)
        summary[p] = {"aia": a, "genai": g, "decode_ratio": dec, "ttft_ratio": ttft}
        print(f"| {p} | {a} | {g} | {dec:.3f} | {ttft:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
