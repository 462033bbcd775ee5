"""Decode speed of aia's generation loop against a bare ORT loop and optimum's generate().

All three run the same ONNX decoder on the same ONNX Runtime session (optimum's
ORTModelForCausalLM is handed that session), greedy, a fixed prompt of random
token ids, and a fixed number of new tokens (EOS ignored):

- aia: ``Generator.generate`` (IO binding, cache kept as OrtValues);
- bare: a hand-written loop with ``session.run`` and numpy arrays for the cache;
- optimum: ``ORTModelForCausalLM.generate`` (transformers' generation loop).

The model is SmolLM2-135M's architecture with random weights (``--layers`` cuts
the depth to save time). Run: ``python benchmarks/genai_decode.py [--layers 30]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


def bare_loop(session, info, prompt: np.ndarray, n_new: int) -> tuple[list[int], float, float]:
    """Greedy decode with session.run and numpy caches; returns (ids, ttft_s, decode_s)."""
    b, n = prompt.shape
    empty = np.zeros((b, info.num_kv_heads, 0, info.head_dim), dtype=np.float32)
    past = dict.fromkeys(info.past_names, empty)
    feed = {
        "input_ids": prompt,
        "attention_mask": np.ones((b, n), np.int64),
        "position_ids": np.arange(n, dtype=np.int64)[None].repeat(b, 0),
    }
    outputs = [info.logits_name, *info.present_names]
    out: list[int] = []
    t0 = time.perf_counter()
    t_first = t0
    for step in range(n_new):
        res = session.run(outputs, {**feed, **past})
        tok = res[0][:, -1].argmax(-1)
        out.append(int(tok[0]))
        if step == 0:
            t_first = time.perf_counter()
        past = dict(zip(info.past_names, res[1:], strict=True))
        length = n + step + 1
        feed = {
            "input_ids": tok[:, None].astype(np.int64),
            "attention_mask": np.ones((b, length), np.int64),
            "position_ids": np.full((b, 1), length - 1, np.int64),
        }
    end = time.perf_counter()
    return out, t_first - t0, end - t_first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--gen-len", type=int, default=64)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import onnxruntime as ort
    import torch

    from aialliance_cli.genai import make_settings
    from aialliance_cli.genai.bench import random_prompts
    from aialliance_cli.genai.export import export_causal_lm
    from aialliance_cli.genai.generate import load_generator
    from aialliance_cli.genai.tiny import SMOLLM2_135M_CONFIG, build_random_causal_lm

    config = {**SMOLLM2_135M_CONFIG, "num_hidden_layers": args.layers}
    t = time.perf_counter()
    onnx_dir = export_causal_lm(build_random_causal_lm(config, seed=0))
    print(f"model: SmolLM2-135M architecture, {args.layers} layers, random weights")
    print(f"  prepared (cached after the first run) in {time.perf_counter() - t:.1f} s: {onnx_dir}")

    gen = load_generator(onnx_dir)
    session, info = gen.session, gen.info
    prompt = random_prompts(info.vocab_size, 1, args.prompt_len, exclude=(0, 1, 2), seed=0)
    n = args.gen_len
    settings = make_settings(max_new_tokens=n)

    from optimum.onnxruntime import ORTModelForCausalLM
    from transformers import AutoConfig, GenerationConfig

    hf_config = AutoConfig.from_pretrained(onnx_dir)
    opt = ORTModelForCausalLM(
        config=hf_config,
        session=session,
        use_io_binding=False,  # optimum's own default on the CPU EP
        generation_config=GenerationConfig.from_model_config(hf_config),
    )

    def run_aia() -> tuple[list[int], float, float]:
        r = gen.generate(prompt, settings, ignore_eos=True, decode_text=False)
        return list(r.token_ids[0]), r.ttft_s, r.decode_s

    def run_bare() -> tuple[list[int], float, float]:
        return bare_loop(session, info, prompt, n)

    def run_optimum() -> tuple[list[int], float, float]:
        p = torch.tensor(prompt)
        kw = {"attention_mask": torch.ones_like(p), "do_sample": False}
        t0 = time.perf_counter()
        opt.generate(p, max_new_tokens=1, min_new_tokens=1, **kw)
        t1 = time.perf_counter()
        out = opt.generate(p, max_new_tokens=n, min_new_tokens=n, **kw)
        t2 = time.perf_counter()
        # decode time = full run minus a 1-token run (its prefill)
        return out[0, p.shape[1] :].tolist(), t1 - t0, (t2 - t1) - (t1 - t0)

    loops = {"aia": run_aia, "bare ORT loop": run_bare, "optimum": run_optimum}
    for fn in loops.values():
        fn()  # warm-up
    # round-robin, so that a busy neighbour on the machine slows all three alike
    samples: dict[str, list[tuple[list[int], float, float]]] = {k: [] for k in loops}
    for _ in range(args.repetitions):
        for name, fn in loops.items():
            samples[name].append(fn())
    reference = samples["aia"][0][0]
    rows = []
    for name, runs in samples.items():
        ttft = statistics.median(r[1] * 1e3 for r in runs)
        rate = statistics.median((n - 1) / r[2] for r in runs)
        same = "yes" if all(r[0] == reference for r in runs) else "NO"
        rows.append((name, ttft, rate, same))

    print(
        f"\nORT {ort.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; batch 1, pp{args.prompt_len} + tg{n}, "
        f"median of {args.repetitions}, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| loop | TTFT ms | decode tok/s | same ids as aia |")
    print("| --- | ---: | ---: | :---: |")
    for name, ttft, rate, same in rows:
        print(f"| {name} | {ttft:.1f} | {rate:.1f} | {same} |")


if __name__ == "__main__":
    main()
