"""Generation benchmarks: prefill and decode speed over a grid, llama-bench style.

Each configuration (batch, prompt length, gen length) runs ``warmup`` times
unmeasured, then ``repetitions`` times with random prompt token ids (seeded,
special tokens left out) and EOS ignored, so every run generates exactly
``gen_len`` tokens. Metrics (all times in milliseconds):

``ttft_ms``, ``e2e_ms``: stats over repetitions; ``prefill_tokens_per_s``
(batch x prompt_len / TTFT) and ``decode_tokens_per_s`` (batch x (gen_len - 1)
/ decode time): stats over repetitions; ``per_token_ms``: stats over every
decode step of every repetition; ``peak_rss_bytes``: the process's peak resident
memory while the configuration ran.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aialliance_cli.errors import BadInputError
from aialliance_cli.genai import make_settings
from aialliance_cli.genai.generate import GenerationResult, Generator, TokenEvent

__all__ = ["GenBenchResult", "bench_generation", "random_prompts", "stats", "to_markdown"]


@dataclass(frozen=True)
class GenBenchResult:
    """One configuration of the grid and its metrics."""

    model: str
    backend: str  # the EP that ran it
    batch: int
    prompt_len: int
    gen_len: int
    warmup: int
    repetitions: int  # measured runs actually done
    metrics: dict[str, Any]
    random_weights: bool = False
    interrupted: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stats(values: Any) -> dict[str, float | int | None]:
    """mean, std, min, p50, p90, p99, max and n of ``values`` (None fields when empty)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        keys = ("mean", "std", "min", "p50", "p90", "p99", "max")
        return {**dict.fromkeys(keys), "n": 0}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(v.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(v.max()),
        "n": int(v.size),
    }


# --- peak memory: reset the kernel's high-water mark per configuration, else sample ----------


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: reset VmHWM of this process
        return True
    except OSError:
        return False


def _peak_rss() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _rss() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return None


def random_prompts(
    vocab_size: int, batch: int, length: int, *, exclude: Any = (), seed: int = 0
) -> np.ndarray:
    """(batch, length) int64 token ids drawn uniformly from the vocab minus ``exclude``."""
    allowed = np.setdiff1d(np.arange(vocab_size, dtype=np.int64), np.asarray(list(exclude)))
    rng = np.random.default_rng(seed)
    return rng.choice(allowed, size=(batch, length)).astype(np.int64)


def bench_generation(
    generator: Generator,
    *,
    prompt_lens: Any = (128,),
    gen_lens: Any = (32,),
    batches: Any = (1,),
    warmup: int = 1,
    repetitions: int = 3,
    seed: int = 0,
    random_weights: bool = False,
    model_name: str | None = None,
) -> list[GenBenchResult]:
    """Measure every (batch, prompt length, gen length); greedy decoding, EOS ignored.

    Stops early on Ctrl-C: the configurations done so far come back, the last
    one marked ``interrupted``.
    """
    info = generator.info
    ctx = info.context_length
    for p in prompt_lens:
        for g in gen_lens:
            if ctx is not None and p + g > ctx:
                raise BadInputError(
                    f"Prompt length {p} + gen length {g} exceeds the context length {ctx} of "
                    f"{generator.name}; lower bench.prompt_lens or bench.gen_lens."
                )
    tok = generator.tokenizer
    vocab = info.vocab_size or (tok.vocab_size if tok else None)
    if vocab is None:
        raise BadInputError(f"{generator.name}: vocabulary size unknown, cannot make prompts.")
    if tok is not None:
        vocab = min(vocab, tok.vocab_size)
    exclude = set(tok.special_ids if tok else ()) | set(generator.eos_token_ids)
    results: list[GenBenchResult] = []
    name = model_name or generator.name
    for batch in batches:
        for p in prompt_lens:
            for g in gen_lens:
                settings = make_settings(max_new_tokens=g, do_sample=False)
                runs: list[GenerationResult] = []
                interrupted = False
                rss_samples: list[int] = []

                def sample_rss(_: TokenEvent, samples: list[int] = rss_samples) -> None:
                    r = _rss()
                    if r is not None:
                        samples.append(r)

                can_reset = _reset_peak_rss()
                callback = None if can_reset else sample_rss
                for i in range(warmup + repetitions):
                    ids = random_prompts(vocab, batch, p, exclude=exclude, seed=seed + i)
                    try:
                        r = generator.generate(
                            ids, settings, callback, ignore_eos=True, decode_text=False
                        )
                    except KeyboardInterrupt:
                        interrupted = True
                        break
                    if r.interrupted:
                        interrupted = True
                        break
                    if i >= warmup:
                        runs.append(r)
                peak = _peak_rss() if can_reset else max(rss_samples, default=None)
                results.append(
                    GenBenchResult(
                        model=name,
                        backend=generator.provider,
                        batch=int(batch),
                        prompt_len=int(p),
                        gen_len=int(g),
                        warmup=int(warmup),
                        repetitions=len(runs),
                        metrics=_metrics(runs, peak),
                        random_weights=random_weights,
                        interrupted=interrupted,
                        settings={"do_sample": False, "ignore_eos": True, "seed": seed},
                    )
                )
                if interrupted:
                    return results
    return results


def _metrics(runs: list[GenerationResult], peak: int | None) -> dict[str, Any]:
    ttft = [r.ttft_s * 1e3 for r in runs if r.ttft_s is not None]
    return {
        "ttft_ms": stats(ttft),
        "prefill_tokens_per_s": stats(
            r.prefill_tokens_per_s for r in runs if r.prefill_tokens_per_s
        ),
        "decode_tokens_per_s": stats(r.decode_tokens_per_s for r in runs if r.decode_tokens_per_s),
        "per_token_ms": stats(t * 1e3 for r in runs for t in r.per_token_s),
        "e2e_ms": stats(r.e2e_s * 1e3 for r in runs),
        "peak_rss_bytes": peak,
    }


def _short_backend(ep: str) -> str:
    return ep.removesuffix("ExecutionProvider") or ep


def _rate(s: dict[str, Any]) -> str:
    if s.get("mean") is None:
        return "-"
    return f"{s['mean']:.2f} ± {s['std']:.2f}"


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def to_markdown(results: list[GenBenchResult]) -> str:
    """llama-bench's table (pp = prompt processing, tg = text generation) plus latencies.

    ``pp512`` is prefill of 512 tokens; ``tg128 @ d512`` is generating 128
    tokens after a 512-token prompt (llama-bench's depth notation).
    """
    # llama-bench adds a threads column when a sweep varies them (-t 1,2).
    many = len({r.settings.get("intra_op_threads") for r in results}) > 1

    def th(r: GenBenchResult) -> str:
        return f" {r.settings.get('intra_op_threads')} |" if many else ""

    th_head, th_rule = (" threads |", " ---: |") if many else ("", "")
    lines = [
        f"| model | backend |{th_head} batch | test | t/s |",
        f"| --- | --- |{th_rule} ---: | ---: | ---: |",
    ]
    for r in results:
        model = r.model + (" (random weights)" if r.random_weights else "")
        be = _short_backend(r.backend)
        m = r.metrics
        lines.append(
            f"| {model} | {be} |{th(r)} {r.batch} | pp{r.prompt_len} "
            f"| {_rate(m['prefill_tokens_per_s'])} |"
        )
        lines.append(
            f"| {model} | {be} |{th(r)} {r.batch} | tg{r.gen_len} @ d{r.prompt_len} "
            f"| {_rate(m['decode_tokens_per_s'])} |"
        )
    lines += [
        "",
        f"| model |{th_head} batch | test | TTFT ms p50 | ms/token p50 | p90 | p99 | e2e ms p50 "
        "| peak RSS MiB |",
        f"| --- |{th_rule} ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        m = r.metrics
        rss = m.get("peak_rss_bytes")
        rss_s = "-" if rss is None else f"{rss / 2**20:.0f}"
        pt = m["per_token_ms"]
        note = " (interrupted)" if r.interrupted else ""
        lines.append(
            f"| {r.model} |{th(r)} {r.batch} | pp{r.prompt_len}+tg{r.gen_len}{note} "
            f"| {_ms(m['ttft_ms']['p50'])} | {_ms(pt['p50'])} | {_ms(pt['p90'])} "
            f"| {_ms(pt['p99'])} | {_ms(m['e2e_ms']['p50'])} | {rss_s} |"
        )
    return "\n".join(lines) + "\n"
