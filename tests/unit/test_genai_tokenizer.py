"""Tokenizers: the packaged MiniLM one, one trained on the fly, and the tokenizers-only path."""

from __future__ import annotations

from pathlib import Path

import pytest

from aialliance_cli.errors import ModelError
from aialliance_cli.genai.tiny import minilm_tokenizer_dir, train_tokenizer
from aialliance_cli.genai.tokenizer import _load_with_tokenizers, load_tokenizer


def test_trained_byte_level_tokenizer_round_trips(tmp_path: Path) -> None:
    folder = train_tokenizer(tmp_path / "tok", vocab_size=300)
    tok = _load_with_tokenizers(folder, ())
    assert tok.vocab_size <= 300
    assert tok.eos_token_ids == (0,) and 0 in tok.special_ids
    text = "Hello, wörld: 42 tokens!"
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.slow  # imports transformers
def test_minilm_tokenizer_drops_the_trailing_sep() -> None:
    folder = minilm_tokenizer_dir()
    assert (folder / "tokenizer.json").is_file()
    tok = load_tokenizer(folder)
    assert tok.vocab_size == 30522 and tok.eos_token_ids == (102,)  # [SEP]
    ids = tok.encode("hello world")
    assert ids[0] == 101 and ids[-1] != 102  # [CLS] kept as BOS, [SEP] dropped
    assert tok.decode(ids) == "hello world"
    assert tok.chat_prompt("hi") == "hi"  # no chat template


def test_missing_tokenizer_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="No tokenizer"):
        load_tokenizer(tmp_path)
