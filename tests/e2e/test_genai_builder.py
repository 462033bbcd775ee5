"""ONNX Runtime GenAI's model builder, aia's loop over its fused graph, GenAI's generator.

Tiny models (2 layers) keep these quick; the SmolLM2 case is SmolLM2-135M's
architecture (GQA 9/3 heads, head size 64, its vocabulary, tied embeddings, rope
theta 1e5) with 2 of its 30 layers and random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.genai import make_settings
from aialliance_cli.genai.builder import build_genai_model
from aialliance_cli.genai.generate import load_generator
from aialliance_cli.genai.tiny import (
    SMOLLM2_135M_CONFIG,
    build_random_causal_lm,
    build_tiny_causal_lm,
)
from tests.genaienv import builder_python

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PROMPT = "The quick brown fox jumps over the lazy dog and"


@pytest.fixture(scope="session")
def builder() -> Path:
    return builder_python()


@pytest.fixture(scope="session")
def tiny_llama(shared_cache: Path) -> Path:
    src = shared_cache / "genai-llama-src"
    if not (src / "config.json").is_file():
        build_tiny_causal_lm("llama", src, seed=0)
    return src


@pytest.fixture(scope="session")
def smollm2_src(shared_cache: Path) -> Path:
    return build_random_causal_lm(
        {**SMOLLM2_135M_CONFIG, "num_hidden_layers": 2}, shared_cache / "genai-smollm2-2l-src"
    )


def _build(src: Path, out: Path, python: Path, precision: str = "fp32") -> Path:
    outcome = build_genai_model(src, out, precision=precision, python=python)
    assert outcome.exporter == "builder" and outcome.precision == precision
    return outcome.folder


def _transformers_greedy(src: Path, ids, n: int) -> list[int]:
    import torch
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(src).eval()
    with torch.no_grad():
        out = hf.generate(torch.tensor(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.parametrize("arch", ["tiny-llama", "smollm2-2-layers"])
def test_builder_model_greedy_equals_transformers(
    arch: str, tiny_llama: Path, smollm2_src: Path, builder: Path, shared_cache: Path
) -> None:
    from aialliance_cli.genai.ortgenai import GenAIEngine

    src = tiny_llama if arch == "tiny-llama" else smollm2_src
    folder = _build(src, shared_cache / f"genai-{arch}-builder-fp32", builder)
    config = json.loads((folder / "genai_config.json").read_text())
    assert config["search"]["past_present_share_buffer"] is True  # the fused, in-place cache
    gen = load_generator(folder)
    assert gen.info.share_buffer
    ids = gen.encode(PROMPT)
    mine = gen.generate(ids, make_settings(max_new_tokens=12), ignore_eos=True)
    assert list(mine.token_ids[0]) == _transformers_greedy(src, ids, 12)
    theirs = GenAIEngine(folder, intra_op_threads=1, spinning=False).generate(
        ids, make_settings(max_new_tokens=12), ignore_eos=True
    )
    assert theirs.token_ids == mine.token_ids
    assert len(theirs.per_token_s) == 11 and theirs.ttft_s is not None


def test_int4_accuracy_figures(tiny_llama: Path, builder: Path, shared_cache: Path) -> None:
    from aialliance_cli.genai.accuracy import PROMPTS, accuracy_vs_reference

    fp32 = _build(tiny_llama, shared_cache / "genai-tiny-llama-builder-fp32", builder)
    int4 = _build(tiny_llama, shared_cache / "genai-tiny-llama-builder-int4", builder, "int4")
    marker = json.loads((int4 / "aia-export.json").read_text())
    assert marker["block_size"] == 32 and marker["accuracy_level"] == 4
    same = accuracy_vs_reference(fp32, fp32, max_new_tokens=6)
    assert same.greedy_agreement == 1.0 and same.exact_match == 1.0 and same.loglik_delta == 0
    rep = accuracy_vs_reference(fp32, int4, max_new_tokens=6)
    assert 0.0 <= rep.greedy_agreement <= 1.0 and rep.n_prompts == len(PROMPTS)
    assert rep.loglik_delta != 0.0  # int4 weights change the likelihoods
    assert rep.perplexity_candidate > 0 and len(rep.per_prompt_agreement) == len(PROMPTS)
    assert json.loads(json.dumps(rep.to_dict()))["candidate"].endswith("model.onnx")


def _profile(tmp: Path, src: Path) -> Path:
    p = tmp / "tiny.yaml"
    p.write_text(
        "schema: aia.profile/1\nname: tiny-gen\ntask: text-generation\n"
        f"model:\n  huggingface:\n    path: {src}\n    task: text-generation-with-past\n"
        "generation:\n  prompts: ['Hello there']\n"
    )
    return p


def test_engines_give_the_same_schema(
    tiny_llama: Path, builder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIA_GENAI_BUILDER_PYTHON", str(builder))
    prof = _profile(tmp_path, tiny_llama)
    runner = CliRunner()
    records = {}
    for engine in ("aia", "genai"):
        args = ["bench", str(prof), "--engine", engine, "--prompt-len", "8", "--gen-len", "4"]
        res = runner.invoke(app, [*args, "-n", "1", "--warmup", "0", "--threads", "1", "--json"])
        assert res.exit_code == 0, res.output
        records[engine] = json.loads(res.stdout)[0]
    a, g = records["aia"], records["genai"]

    def shape(d: object) -> object:
        return {k: shape(v) for k, v in d.items()} if isinstance(d, dict) else type(d).__name__

    assert shape(a["metrics"]) == shape(g["metrics"])
    assert set(a["settings"]) == set(g["settings"])
    assert a["settings"]["engine"] == "aia" and g["settings"]["engine"] == "genai"
    for r in (a, g):
        assert r["model"]["exporter"] == "builder" and r["settings"]["intra_op_threads"] == 1
        assert r["settings"]["allow_spinning"] is True
        assert r["metrics"]["decode_tokens_per_s"]["mean"] > 0


def test_int4_bench_reports_accuracy(
    tiny_llama: Path, builder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIA_GENAI_BUILDER_PYTHON", str(builder))
    prof = _profile(tmp_path, tiny_llama)
    res = CliRunner().invoke(
        app,
        ["bench", str(prof), "--precision", "int4", "--prompt-len", "8", "--gen-len", "4"]
        + ["-n", "1", "--warmup", "0", "--json"],
    )
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)[0]
    assert rec["model"]["precision"] == "int4" and rec["model"]["block_size"] == 32
    acc = rec["metrics"]["accuracy"]
    assert 0.0 <= acc["greedy_agreement"] <= 1.0 and "loglik_delta" in acc


def test_bad_engine_and_precision_are_exit_2(tiny_llama: Path, tmp_path: Path) -> None:
    prof = _profile(tmp_path, tiny_llama)
    runner = CliRunner()
    res = runner.invoke(app, ["bench", str(prof), "--engine", "vllm"])
    assert res.exit_code == 2 and "--engine must be one of aia, genai" in res.output
    res = runner.invoke(app, ["run", str(prof), "--precision", "int3"])
    assert res.exit_code == 2 and "--precision must be one of" in res.output
    res = runner.invoke(app, ["bench", str(prof), "--precision", "fp16", "--exporter", "builder"])
    assert res.exit_code == 2 and "fp16" in res.output and "GPU" in res.output
    res = runner.invoke(app, ["bench", str(prof), "--precision", "int4", "--exporter", "optimum"])
    assert res.exit_code == 2 and "needs the model builder" in res.output


def test_auto_falls_back_to_optimum_and_says_why(
    tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aialliance_cli.errors import ModelError
    from aialliance_cli.genai import builder as B

    if B._here_can_build():
        pytest.skip("this Python runs the builder itself, so auto never falls back here")
    monkeypatch.delenv(B.ENV_PYTHON, raising=False)  # and the fresh AIA_HOME has no env made
    out = B.export_decoder(tiny_llama)
    assert out.exporter == "optimum" and out.precision == "fp32"
    assert any("model builder is not available" in w for w in out.warnings)
    assert (out.folder / "model.onnx").is_file()
    with pytest.raises(ModelError, match="needs ONNX Runtime GenAI's model builder"):
        B.export_decoder(tiny_llama, precision="int4")
