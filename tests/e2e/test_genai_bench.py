"""Generation benchmarks on real sessions: the grid, the metrics, the markdown, random weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aialliance_cli.errors import BadInputError
from aialliance_cli.genai.bench import bench_generation, to_markdown
from aialliance_cli.genai.export import export_causal_lm
from aialliance_cli.genai.generate import TokenEvent, load_generator
from aialliance_cli.genai.tiny import (
    SMOLLM2_135M_CONFIG,
    build_random_causal_lm,
    build_tiny_causal_lm,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Converting a tensor to a Python"),
    pytest.mark.filterwarnings("ignore:Exporting aten"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def llama_onnx(shared_cache: Path) -> Path:
    src = shared_cache / "genai-llama-src"
    if not (src / "config.json").is_file():
        build_tiny_causal_lm("llama", src, seed=0)
    return export_causal_lm(src, shared_cache / "genai-llama-onnx")


def test_bench_measures_every_combination(llama_onnx: Path) -> None:
    gen = load_generator(llama_onnx)
    results = bench_generation(
        gen, prompt_lens=[8, 32], gen_lens=[4, 6], batches=[1, 2], warmup=1, repetitions=2
    )
    combos = {(r.batch, r.prompt_len, r.gen_len) for r in results}
    assert combos == {(b, p, g) for b in (1, 2) for p in (8, 32) for g in (4, 6)}
    for r in results:
        m = r.metrics
        assert r.repetitions == 2 and not r.interrupted and not r.random_weights
        assert r.backend == "CPUExecutionProvider"
        assert m["ttft_ms"]["n"] == 2 and m["e2e_ms"]["n"] == 2
        assert m["per_token_ms"]["n"] == 2 * (r.gen_len - 1)
        assert m["ttft_ms"]["p50"] < m["e2e_ms"]["p50"]
        pt = m["per_token_ms"]
        assert pt["min"] <= pt["p50"] <= pt["p90"] <= pt["p99"] <= pt["max"]
        assert m["prefill_tokens_per_s"]["mean"] > 0 and m["decode_tokens_per_s"]["mean"] > 0
        assert m["peak_rss_bytes"] is None or m["peak_rss_bytes"] > 0
        assert json.loads(json.dumps(r.to_dict()))["metrics"]["per_token_ms"]["n"] == pt["n"]

    md = to_markdown(results)
    assert md.splitlines()[0] == "| model | backend | batch | test | t/s |"
    assert "| CPU | 2 | pp32 |" in md and "| tg6 @ d32 |" in md
    assert md.count("| pp8 |") == 4  # 2 batches x 2 gen lengths


def test_bench_refuses_a_grid_past_the_context(llama_onnx: Path) -> None:
    gen = load_generator(llama_onnx)
    with pytest.raises(BadInputError, match="context length 128"):
        bench_generation(gen, prompt_lens=[120], gen_lens=[16], batches=[1], repetitions=1)


def test_bench_stops_on_interrupt_and_keeps_what_it_has(llama_onnx: Path) -> None:
    gen = load_generator(llama_onnx)
    real = gen.generate
    calls = {"n": 0}

    def generate(*args, **kwargs):  # Ctrl-C in the third run of the second configuration
        calls["n"] += 1
        if calls["n"] == 5:

            def ctrl_c(event: TokenEvent) -> None:
                raise KeyboardInterrupt

            args = (args[0], args[1], ctrl_c)
        return real(*args, **kwargs)

    gen.generate = generate  # type: ignore[method-assign]
    results = bench_generation(
        gen, prompt_lens=[8], gen_lens=[4, 5, 6], batches=[1], warmup=1, repetitions=2
    )
    assert len(results) == 2
    assert not results[0].interrupted and results[0].repetitions == 2
    assert results[1].interrupted and results[1].repetitions == 0


def test_random_weights_smollm2_architecture(tmp_path: Path) -> None:
    # SmolLM2-135M's config, cut to 2 layers and a narrow width to fit the test budget
    config = {
        **SMOLLM2_135M_CONFIG,
        "hidden_size": 72,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "vocab_size": 2048,
    }
    src = build_random_causal_lm(config, seed=0)
    assert build_random_causal_lm(config, seed=0) == src  # cached by config and seed
    out = export_causal_lm(src, tmp_path / "onnx")
    gen = load_generator(out)
    assert gen.info.num_kv_heads == 3 and gen.info.head_dim == 8
    assert gen.info.context_length == 8192
    r = gen.generate(gen.encode("Hello there"), {"max_new_tokens": 5}, ignore_eos=True)
    assert r.n_generated == 5
    results = bench_generation(
        gen,
        prompt_lens=[16],
        gen_lens=[4],
        batches=[1],
        repetitions=1,
        random_weights=True,
        model_name="smollm2-135m",
    )
    assert results[0].random_weights
    assert "smollm2-135m (random weights)" in to_markdown(results)
