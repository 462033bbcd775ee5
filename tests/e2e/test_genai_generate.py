"""The generation loop on real ONNX Runtime sessions of tiny causal LMs exported with optimum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aialliance_cli.errors import BadInputError, ModelError
from aialliance_cli.genai import make_settings
from aialliance_cli.genai.export import check_decoder, export_causal_lm, locate_decoder
from aialliance_cli.genai.generate import GenerationResult, TokenEvent, load_generator
from aialliance_cli.genai.tiny import build_tiny_causal_lm

pytestmark = [
    pytest.mark.slow,
    # torch's ONNX exporter is chatty about tracing; the tests check the outputs instead
    pytest.mark.filterwarnings("ignore:Converting a tensor to a Python"),
    pytest.mark.filterwarnings("ignore:Exporting aten"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PROMPT = "The quick brown fox jumps over the lazy dog and"


def tiny(arch: str, root: Path) -> tuple[Path, Path]:
    """(transformers folder, ONNX export folder) of a tiny model, built once per session."""
    src = root / f"genai-{arch}-src"
    if not (src / "config.json").is_file():
        build_tiny_causal_lm(arch, src, seed=0)
    return src, export_causal_lm(src, root / f"genai-{arch}-onnx")


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request: pytest.FixtureRequest, shared_cache: Path) -> tuple[Path, Path]:
    return tiny(request.param, shared_cache)


@pytest.fixture(scope="module")
def llama(shared_cache: Path) -> tuple[Path, Path]:
    return tiny("llama", shared_cache)


def test_greedy_equals_transformers(model: tuple[Path, Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    src, onnx_dir = model
    gen = load_generator(onnx_dir)
    ids = gen.encode(PROMPT)
    result = gen.generate(ids, make_settings(max_new_tokens=12), ignore_eos=True)

    hf = AutoModelForCausalLM.from_pretrained(src).eval()
    t = torch.tensor(ids)
    with torch.no_grad():
        ref = hf.generate(
            t,
            attention_mask=torch.ones_like(t),
            max_new_tokens=12,
            min_new_tokens=12,
            do_sample=False,
            pad_token_id=hf.config.pad_token_id,
        )
    expected = ref[0, ids.shape[1] :].tolist()
    assert list(result.token_ids[0]) == expected
    assert len(set(expected)) > 3  # varied output: a broken cache would show
    assert result.text == gen.tokenizer.decode(expected)


def test_figures_are_consistent(llama: tuple[Path, Path]) -> None:
    gen = load_generator(llama[1])
    r = gen.generate(gen.encode(PROMPT), {"max_new_tokens": 10}, ignore_eos=True)
    assert isinstance(r, GenerationResult)
    assert r.n_generated == 10 == len(r.token_ids[0])
    assert len(r.per_token_s) == r.n_generated - 1
    assert r.decode_s == pytest.approx(sum(r.per_token_s))
    assert 0 < r.ttft_s < r.e2e_s
    assert r.ttft_s + r.decode_s <= r.e2e_s
    assert r.decode_tokens_per_s > 0 and r.prefill_tokens_per_s > 0
    assert r.stop_reason == "max_new_tokens" and not r.interrupted
    assert json.dumps(r.to_dict())


def test_batch_rows_match_single_prompt(llama: tuple[Path, Path]) -> None:
    gen = load_generator(llama[1])
    ids = gen.encode(PROMPT)
    one = gen.generate(ids, {"max_new_tokens": 8}, ignore_eos=True)
    three = gen.generate(np.repeat(ids, 3, axis=0), {"max_new_tokens": 8}, ignore_eos=True)
    assert three.batch == 3
    assert all(row == one.token_ids[0] for row in three.token_ids)


def test_sampling_is_reproducible_with_a_seed(llama: tuple[Path, Path]) -> None:
    gen = load_generator(llama[1])
    ids = gen.encode(PROMPT)
    s = {"max_new_tokens": 12, "do_sample": True, "temperature": 0.9, "top_k": 40, "top_p": 0.95}
    a = gen.generate(ids, {**s, "seed": 7}, ignore_eos=True)
    b = gen.generate(ids, {**s, "seed": 7}, ignore_eos=True)
    c = gen.generate(ids, {**s, "seed": 8}, ignore_eos=True)
    assert a.token_ids == b.token_ids
    assert a.token_ids != c.token_ids


def test_streamed_text_adds_up_and_stop_string_cuts(llama: tuple[Path, Path]) -> None:
    gen = load_generator(llama[1])
    ids = gen.encode(PROMPT)
    events: list[TokenEvent] = []
    r = gen.generate(ids, {"max_new_tokens": 12}, events.append, ignore_eos=True)
    assert [e.step for e in events] == list(range(12))
    assert "".join(e.text for e in events) == r.text
    assert all(e.token_ids[0] == t for e, t in zip(events, r.token_ids[0], strict=True))

    words = r.text.split()
    stop = words[2]
    cut = gen.generate(ids, {"max_new_tokens": 12, "stop": [stop]}, ignore_eos=True)
    assert cut.stop_reason == "stop_string"
    assert stop not in cut.text and r.text.startswith(cut.text)
    assert cut.n_generated < 12


def test_interrupt_keeps_the_partial_result(llama: tuple[Path, Path]) -> None:
    gen = load_generator(llama[1])

    def ctrl_c(event: TokenEvent) -> None:
        if event.step == 3:
            raise KeyboardInterrupt

    r = gen.generate(gen.encode(PROMPT), {"max_new_tokens": 12}, ctrl_c, ignore_eos=True)
    assert r.interrupted and r.stop_reason == "interrupted"
    assert r.n_generated == 4 and len(r.per_token_s) == 3
    assert r.ttft_s is not None and r.text


def test_prompt_longer_than_context_is_bad_input(llama: tuple[Path, Path]) -> None:
    gen = load_generator(llama[1])
    assert gen.info.context_length == 128
    with pytest.raises(BadInputError, match="context length"):
        gen.generate(np.full((1, 200), 1000, dtype=np.int64), {"max_new_tokens": 4})


def test_generation_stops_at_the_context_length(llama: tuple[Path, Path]) -> None:
    gen = load_generator(llama[1])
    r = gen.generate(
        np.full((1, 124), 1000, dtype=np.int64), {"max_new_tokens": 50}, ignore_eos=True
    )
    assert r.n_generated == 4 and r.stop_reason == "context"


def test_bad_sampling_settings_are_bad_input(llama: tuple[Path, Path]) -> None:
    gen = load_generator(llama[1])
    ids = gen.encode(PROMPT)
    with pytest.raises(BadInputError, match="temperature"):
        gen.generate(ids, {"do_sample": True, "temperature": 0})
    with pytest.raises(BadInputError, match="top_p"):
        gen.generate(ids, {"do_sample": True, "top_p": 1.5})


def test_decoder_without_kv_cache_is_a_model_error(
    llama: tuple[Path, Path], tmp_path: Path
) -> None:
    out = export_causal_lm(llama[0], tmp_path / "nopast", with_past=False)
    with pytest.raises(ModelError, match="without KV cache.*text-generation-with-past"):
        check_decoder(out)
    with pytest.raises(ModelError, match="without KV cache"):
        load_generator(out)


def test_tokenizer_bigger_than_model_vocab_is_a_model_error(tmp_path: Path) -> None:
    src = build_tiny_causal_lm("gpt2", tmp_path / "src", vocab_size=512)  # MiniLM has 30522
    out = export_causal_lm(src, tmp_path / "onnx")
    with pytest.raises(ModelError, match="30522 tokens.*only 512"):
        load_generator(out)


def test_missing_tokenizer_is_a_model_error(llama: tuple[Path, Path], tmp_path: Path) -> None:
    shutil.copy(llama[1] / "model.onnx", tmp_path / "model.onnx")
    shutil.copy(llama[1] / "config.json", tmp_path / "config.json")
    with pytest.raises(ModelError, match="No tokenizer"):
        load_generator(tmp_path)
    gen = load_generator(tmp_path, require_tokenizer=False)  # token ids still work
    r = gen.generate([[101, 2000, 3000]], {"max_new_tokens": 3}, ignore_eos=True)
    assert r.n_generated == 3 and r.text == ""


def test_genai_layout_is_detected_and_runs(llama: tuple[Path, Path], tmp_path: Path) -> None:
    onnx_dir = llama[1]
    genai = tmp_path / "genai"
    genai.mkdir()
    shutil.copy(onnx_dir / "model.onnx", genai / "decoder.onnx")
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(onnx_dir / f, genai / f)
    config = {
        "model": {
            "type": "llama",
            "context_length": 128,
            "vocab_size": 30522,
            "eos_token_id": 102,
            "decoder": {
                "filename": "decoder.onnx",
                "head_size": 16,
                "num_key_value_heads": 2,
                "num_hidden_layers": 2,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "position_ids": "position_ids",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
            },
        },
        "search": {"max_length": 128, "past_present_share_buffer": False},
    }
    (genai / "genai_config.json").write_text(json.dumps(config))
    files = locate_decoder(genai)
    assert files.layout == "genai" and files.model_path.name == "decoder.onnx"
    gen = load_generator(genai)
    assert gen.info.context_length == 128 and 102 in gen.eos_token_ids
    ref = load_generator(onnx_dir)
    ids = ref.encode(PROMPT)
    a = gen.generate(ids, {"max_new_tokens": 6}, ignore_eos=True)
    b = ref.generate(ids, {"max_new_tokens": 6}, ignore_eos=True)
    assert a.token_ids == b.token_ids

    config["search"]["past_present_share_buffer"] = True
    (genai / "genai_config.json").write_text(json.dumps(config))
    shared = load_generator(genai)  # the builder's in-place cache: an optimum graph has none
    assert shared.info.share_buffer
    with pytest.raises(ModelError, match="past_present_share_buffer"):
        shared.generate(ids, {"max_new_tokens": 6}, ignore_eos=True)


def test_export_is_cached_by_source_and_options(llama: tuple[Path, Path]) -> None:
    first = export_causal_lm(llama[0])
    stamp = (first / "model.onnx").stat().st_mtime_ns
    again = export_causal_lm(llama[0])
    assert again == first and (again / "model.onnx").stat().st_mtime_ns == stamp
    assert (first / "aia-export.json").is_file() and (first / "tokenizer.json").is_file()


def test_hub_id_without_network_says_it_needs_a_download() -> None:
    with pytest.raises(ModelError, match="needs\\s+a download"):
        export_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct")
