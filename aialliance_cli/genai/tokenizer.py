"""The tokenizer of a text-generation model, behind one small interface.

transformers' ``AutoTokenizer`` is used when it is installed (it renders chat
templates); otherwise the ``tokenizers`` library reads ``tokenizer.json``
directly, which is what ONNX Runtime GenAI folders ship.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aialliance_cli.errors import ModelError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")


@dataclass
class TextTokenizer:
    """Encode prompts, decode generated ids, know the special tokens."""

    folder: Path
    vocab_size: int  # every id the tokenizer can produce, added tokens included
    eos_token_ids: tuple[int, ...]
    special_ids: frozenset[int]
    backend: Any  # a transformers tokenizer or a tokenizers.Tokenizer
    has_chat_template: bool = False

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with the model's leading special tokens (BOS).

        A trailing EOS/SEP that BERT-style tokenizers append is dropped: it
        would tell the model the text is over before it starts.
        """
        if hasattr(self.backend, "encode_batch"):  # tokenizers.Tokenizer
            ids = list(self.backend.encode(text).ids)
        else:
            ids = list(self.backend.encode(text, add_special_tokens=True))
        while ids and ids[-1] in self.eos_token_ids:
            ids.pop()
        return ids

    def decode(self, ids: Any) -> str:
        # both backends take the same call; special tokens (EOS, pads) never show in text
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=True)

    def chat_prompt(self, text: str) -> str:
        """``text`` as a user turn in the model's chat template (unchanged without one)."""
        if not self.has_chat_template:
            return text
        return self.backend.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )


def has_tokenizer(folder: Path) -> bool:
    return any((Path(folder) / f).is_file() for f in TOKENIZER_FILES)


def _read_json(path: Path) -> dict[str, Any]:
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.safeparse import loads_json

    try:
        return loads_json(path.read_text(encoding="utf-8"), str(path))
    except (OSError, ValueError, BadInputError):
        return {}


def load_tokenizer(folder: str | Path, *, extra_eos: tuple[int, ...] = ()) -> TextTokenizer:
    """Load the tokenizer saved in ``folder``; ModelError when there is none."""
    folder = Path(folder)
    if not has_tokenizer(folder):
        raise ModelError(
            f"No tokenizer in {folder}: none of {', '.join(TOKENIZER_FILES)} is there.",
            hint="Put the model's tokenizer files beside model.onnx, or export the "
            "model with optimum, which copies the tokenizer beside model.onnx.",
        )
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return _load_with_tokenizers(folder, extra_eos)
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # a broken folder is a model problem, said once
        if (folder / "tokenizer.json").is_file():
            return _load_with_tokenizers(folder, extra_eos)
        raise ModelError(f"Cannot load the tokenizer in {folder}: {exc}") from None
    eos = set(extra_eos)
    if tok.eos_token_id is not None:
        eos.add(int(tok.eos_token_id))
    elif getattr(tok, "sep_token_id", None) is not None:
        eos.add(int(tok.sep_token_id))  # BERT-style tokenizers end a text with [SEP]
    return TextTokenizer(
        folder=folder,
        vocab_size=len(tok),
        eos_token_ids=tuple(sorted(eos)),
        special_ids=frozenset(int(i) for i in tok.all_special_ids),
        backend=tok,
        has_chat_template=bool(getattr(tok, "chat_template", None)),
    )


def _load_with_tokenizers(folder: Path, extra_eos: tuple[int, ...]) -> TextTokenizer:
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelError(
            f"Cannot load the tokenizer in {folder} without transformers: no tokenizer.json.",
            hint="Install transformers (pip install 'aialliance-cli[export]').",
        )
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ModelError(f"Cannot read {path}: {exc}") from None
    config = _read_json(folder / "tokenizer_config.json")
    special = {int(i) for i, t in _added_tokens(tok).items() if t.special}
    eos = set(extra_eos)
    name = config.get("eos_token")
    if isinstance(name, dict):
        name = name.get("content")
    if isinstance(name, str) and tok.token_to_id(name) is not None:
        eos.add(int(tok.token_to_id(name)))
    return TextTokenizer(
        folder=folder,
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        eos_token_ids=tuple(sorted(eos)),
        special_ids=frozenset(special | eos),
        backend=tok,
        has_chat_template=False,  # rendering templates needs transformers
    )


def _added_tokens(tok: Any) -> dict[int, Any]:
    try:
        return dict(tok.get_added_tokens_decoder())  # id -> AddedToken
    except AttributeError:
        return {}
