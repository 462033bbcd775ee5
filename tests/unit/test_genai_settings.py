"""Pure parts of text generation: settings, sampling, statistics, tables, decoder inspection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from aialliance_cli.errors import BadInputError, ModelError
from aialliance_cli.genai import GenerationSpec, make_settings
from aialliance_cli.genai.bench import GenBenchResult, random_prompts, stats, to_markdown
from aialliance_cli.genai.export import cache_key, check_decoder
from aialliance_cli.genai.generate import next_tokens
from aialliance_cli.genai.tiny import SMOLLM2_135M_CONFIG, architecture_for

REPO = Path(__file__).resolve().parents[2]


def test_defaults_and_yaml_numbers() -> None:
    s = make_settings({"temperature": 1, "stop": "###", "bench": {"batches": 4}})
    assert s.temperature == 1.0 and s.stop == ("###",) and s.bench.batches == (4,)
    assert not s.do_sample and s.top_k == 0 and s.top_p == 1.0 and s.max_new_tokens == 128


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"temperature": 0}, "generation.temperature"),
        ({"temperature": -0.5}, "generation.temperature"),
        ({"top_p": 1.5}, "generation.top_p"),
        ({"top_p": 0}, "generation.top_p"),
        ({"top_k": -1}, "generation.top_k"),
        ({"max_new_tokens": 0}, "generation.max_new_tokens"),
        ({"temperature": "hot"}, "generation.temperature"),
        ({"do_sample": "yes"}, "generation.do_sample"),
        ({"top_q": 0.5}, "generation.top_q: unknown key"),
        ({"bench": {"prompt_lens": [0]}}, "generation.bench.prompt_lens.0"),
        ({"bench": {"gen_lens": []}}, "generation.bench.gen_lens"),
        ({"architecture": {"hidden_size": 8}}, "model_type"),
    ],
)
def test_out_of_range_settings_are_bad_input(bad: dict, key: str) -> None:
    with pytest.raises(BadInputError) as info:
        make_settings(bad, source="p.yaml")
    assert str(info.value).startswith("p.yaml: ")
    assert key in str(info.value)


def test_overrides_apply_over_a_spec() -> None:
    base = make_settings({"max_new_tokens": 5, "top_k": 3})
    s = make_settings(base, temperature=0.5, seed=None)
    assert (s.max_new_tokens, s.top_k, s.temperature, s.seed) == (5, 3, 0.5, None)
    with pytest.raises(BadInputError, match="top_p"):
        make_settings(base, top_p=2)


def test_bundled_profile_generation_section_validates() -> None:
    data = yaml.safe_load((REPO / "profiles" / "smollm2-135m.yaml").read_text())
    assert data["task"] == "text-generation"
    assert data["model"]["huggingface"]["id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    spec = GenerationSpec.model_validate(data["generation"])
    arch = spec.architecture
    assert arch is not None
    assert {k: arch[k] for k in SMOLLM2_135M_CONFIG} == SMOLLM2_135M_CONFIG


def test_architecture_for_known_id_and_profile() -> None:
    assert architecture_for("HuggingFaceTB/SmolLM2-135M-Instruct", None)["hidden_size"] == 576
    assert architecture_for("x/y", {"model_type": "gpt2"}) == {"model_type": "gpt2"}
    with pytest.raises(BadInputError, match="architecture"):
        architecture_for("x/unknown", None)


def test_greedy_and_degenerate_sampling_pick_the_argmax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 50)).astype(np.float32)
    best = logits.argmax(-1)
    assert (next_tokens(logits, make_settings(), rng) == best).all()
    top1 = make_settings(do_sample=True, top_k=1)
    assert (next_tokens(logits, top1, rng) == best).all()
    tiny_p = make_settings(do_sample=True, top_p=1e-6)
    assert (next_tokens(logits, tiny_p, rng) == best).all()


def test_sampling_respects_top_k_and_seed() -> None:
    logits = np.log(np.array([[0.5, 0.3, 0.1, 0.05, 0.05]], dtype=np.float32))
    s = make_settings(do_sample=True, top_k=2)
    draws = [int(next_tokens(logits, s, np.random.default_rng(i))[0]) for i in range(200)]
    assert set(draws) == {0, 1}
    a = [int(next_tokens(logits, s, np.random.default_rng(5))[0]) for _ in range(5)]
    assert len(set(a)) == 1
    # top_p 0.7 keeps tokens 0 and 1 (0.5 + 0.3 reaches it), never 2..4
    p = make_settings(do_sample=True, top_p=0.7)
    rng = np.random.default_rng(1)
    assert {int(next_tokens(logits, p, rng)[0]) for _ in range(200)} == {0, 1}


def test_stats_and_random_prompts() -> None:
    s = stats([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0 and s["n"] == 4
    assert s["p50"] == 2.5
    assert stats([])["mean"] is None and stats([])["n"] == 0
    ids = random_prompts(10, 2, 50, exclude=[0, 1, 2], seed=3)
    assert ids.shape == (2, 50) and ids.dtype == np.int64
    assert ids.min() >= 3 and ids.max() < 10
    assert (
        random_prompts(10, 2, 50, exclude=[0], seed=3)
        == random_prompts(10, 2, 50, exclude=[0], seed=3)
    ).all()


def test_markdown_is_llama_bench_shaped() -> None:
    metric = stats([10.0, 12.0])
    r = GenBenchResult(
        model="m",
        backend="CPUExecutionProvider",
        batch=1,
        prompt_len=512,
        gen_len=128,
        warmup=1,
        repetitions=2,
        metrics={
            "ttft_ms": metric,
            "prefill_tokens_per_s": stats([100.0, 110.0]),
            "decode_tokens_per_s": stats([20.0, 22.0]),
            "per_token_ms": metric,
            "e2e_ms": metric,
            "peak_rss_bytes": 2**30,
        },
        random_weights=True,
    )
    lines = to_markdown([r]).splitlines()
    assert lines[0] == "| model | backend | batch | test | t/s |"
    assert lines[2] == "| m (random weights) | CPU | 1 | pp512 | 105.00 ± 5.00 |"
    assert lines[3] == "| m (random weights) | CPU | 1 | tg128 @ d512 | 21.00 ± 1.00 |"
    assert lines[-1].endswith("| 1024 |")


def test_decoder_without_past_inputs_is_a_model_error(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])
    logits = helper.make_tensor_value_info("logits", TensorProto.INT64, ["b", "s"])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_ids"], ["logits"])], "g", [ids], [logits]
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ModelError, match="without KV cache") as info:
        check_decoder(path)
    assert "text-generation-with-past" in str(info.value)


def test_cache_key_depends_on_source_and_options(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    a = cache_key(tmp_path, task="x")
    assert a == cache_key(tmp_path, task="x")
    assert a != cache_key(tmp_path, task="y")
    (tmp_path / "config.json").write_text('{"changed": 1}')
    assert a != cache_key(tmp_path, task="x")
    assert cache_key("org/model", task="x") != a
