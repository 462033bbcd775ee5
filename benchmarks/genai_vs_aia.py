"""aia's decode loop against ONNX Runtime GenAI's generator, on the same weights.

The weights are SmolLM2-135M's architecture with random weights (seeded; speed
depends on the shapes only). ONNX Runtime GenAI's model builder makes the fused
decoder once per precision (fp32, int4 with block size 32 and accuracy level 4);
both engines load the very same files. aia's optimum export (fp32, no fused
operators) runs as the old baseline.

Contenders, each with its threads and spinning set explicitly:
``aia/builder tN`` (aia's loop, IO binding, in-place KV buffer), ``genai tN``
(GenAI's ``Generator``), ``aia/optimum tN``. Every round runs every contender
once on the same random prompt (order rotated each round); the figures are
medians over rounds and the ratio is the median of per-round ratios of aia's best
contender to GenAI's best (best = highest median decode tokens/s).

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
import sys
from pathlib import Path
from typing import Any

import numpy as np


def aia_engine(folder: Path, threads: int, spinning: bool = True) -> Any:
    import onnxruntime as ort

    from aialliance_cli.genai.export import locate_decoder
    from aialliance_cli.genai.generate import load_generator

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    flag = "1" if spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", flag)
    so.add_session_config_entry("session.inter_op.allow_spinning", flag)
    files = locate_decoder(folder)
    sess = ort.InferenceSession(str(files.model_path), so, providers=["CPUExecutionProvider"])
    return load_generator(files.folder, session=sess, require_tokenizer=False)


def genai_engine(folder: Path, threads: int, spinning: bool = True) -> Any:
    from aialliance_cli.genai.ortgenai import GenAIEngine

    return GenAIEngine(
        folder,
        intra_op_threads=threads,
        inter_op_threads=1,
        spinning=spinning,
        require_tokenizer=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--gen-len", type=int, default=32)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--precisions", default="fp32,int4")
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--no-optimum", action="store_true", help="skip the optimum baseline")
    parser.add_argument("--json", type=Path, help="write every round's figures here")
    args = parser.parse_args()

    from aialliance_cli.genai import make_settings
    from aialliance_cli.genai.bench import random_prompts
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
    contenders: dict[str, tuple[str, str, Any]] = {}  # name -> (precision, engine kind, engine)
    for p in precisions:
        for t in threads:
            contenders[f"{p} aia/builder t{t}"] = (p, "aia", aia_engine(folders[p], t))
            contenders[f"{p} genai t{t}"] = (p, "genai", genai_engine(folders[p], t))
    if "fp32" in precisions and not args.no_optimum:
        opt = export_causal_lm(src)
        for t in threads:
            contenders[f"fp32 aia/optimum t{t}"] = ("fp32", "optimum", aia_engine(opt, t))
    settings = make_settings(max_new_tokens=args.gen_len)
    vocab = int(config["vocab_size"])
    names = list(contenders)
    for name in names:  # one warm-up each
        contenders[name][2].generate(
            random_prompts(vocab, 1, args.prompt_len, exclude=[1, 2], seed=999),
            settings,
            ignore_eos=True,
            decode_text=False,
        )
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(args.rounds):
        prompt = random_prompts(vocab, 1, args.prompt_len, exclude=[1, 2], seed=r)
        order = names[r % len(names) :] + names[: r % len(names)]
        row: dict[str, dict[str, float]] = {}
        for name in order:
            out = contenders[name][2].generate(prompt, settings, ignore_eos=True, decode_text=False)
            row[name] = {
                "decode_tps": out.decode_tokens_per_s,
                "ttft_ms": out.ttft_s * 1e3,
                "prefill_tps": out.prefill_tokens_per_s,
                "per_token_p50_ms": float(np.median(out.per_token_s)) * 1e3,
            }
        rounds.append(row)
        log(
            f"round {r + 1}/{args.rounds}: "
            + ", ".join(f"{n} {row[n]['decode_tps']:.1f}" for n in names)
        )

    def med(name: str, key: str) -> float:
        return statistics.median(rd[name][key] for rd in rounds)

    print(
        f"\nSmolLM2-135M architecture ({args.layers} layers, random weights), prompt "
        f"{args.prompt_len}, {args.gen_len} new tokens, {args.rounds} rounds; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n"
    )
    print("| contender | decode tok/s | TTFT ms | prefill tok/s | ms/token p50 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for n in names:
        print(
            f"| {n} | {med(n, 'decode_tps'):.1f} | {med(n, 'ttft_ms'):.1f} "
            f"| {med(n, 'prefill_tps'):.0f} | {med(n, 'per_token_p50_ms'):.2f} |"
        )
    summary = {}
    print("\n| precision | aia best | GenAI best | decode aia/GenAI | TTFT GenAI/aia |")
    print("| --- | --- | --- | ---: | ---: |")
    for p in precisions:
        mine = [n for n in names if contenders[n][0] == p and contenders[n][1] == "aia"]
        theirs = [n for n in names if contenders[n][0] == p and contenders[n][1] == "genai"]
        a = max(mine, key=lambda n: med(n, "decode_tps"))
        g = max(theirs, key=lambda n: med(n, "decode_tps"))
        dec = statistics.median(rd[a]["decode_tps"] / rd[g]["decode_tps"] for rd in rounds)
        ttft = statistics.median(rd[g]["ttft_ms"] / rd[a]["ttft_ms"] for rd in rounds)
        summary[p] = {"aia": a, "genai": g, "decode_ratio": dec, "ttft_ratio": ttft}
        print(f"| {p} | {a} | {g} | {dec:.3f} | {ttft:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
