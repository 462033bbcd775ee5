"""Prepared models of the default profile (all-MiniLM-L6-v2): real sentences, real sessions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import scaled_copy  # noqa: E402


@pytest.fixture
def minilm(shared_cache, monkeypatch):
    """The default profile's target, its export shared by the whole test session."""
    monkeypatch.setenv("AIA_CACHE_DIR", str(shared_cache))
    from aialliance_cli.runtime.api import prepare_target

    return prepare_target("all-minilm-l6-v2")


@pytest.mark.slow
def test_minilm_int8_passes_on_sentences_a_broken_copy_fails_static_calibrates_on_text(
    minilm, tmp_path: Path
) -> None:
    from tokenizers import Tokenizer

    from aialliance_cli.tune import accuracy as A
    from aialliance_cli.tune import quantize as Q
    from aialliance_cli.tune.sentences import SENTENCES

    tok = Tokenizer.from_file(str(Path(minilm.tokenizer_dir) / "tokenizer.json"))

    def text(feed) -> str:
        return tok.decode(feed["input_ids"][0].tolist())

    inputs = A.profile_inputs(minilm, 16)
    assert inputs.kind == "sentences" and len({text(f) for f in inputs.feeds}) == 16
    assert text(inputs.feeds[0]).startswith("the quick brown fox")  # the profile's own text
    ref = A.reference(minilm, inputs)

    int8 = Q.prepare(minilm.model_path, Q.QuantSpec("dynamic", per_channel=True))
    good = A.check_model(ref, int8.path)
    assert good.metric == "cosine" and good.passes() and good.min > 0.98

    broken = A.check_model(ref, scaled_copy(minilm.model_path, tmp_path / "broken.onnx", 1.5))
    assert not broken.passes() and broken.mean < 0.99

    # Static quantization calibrates on the profile's own text: real sentences, in order.
    reader = Q.FeedsReader(Q.calibration_inputs(minilm, 4))
    pool = list(dict.fromkeys([minilm.profile.inputs.text.value, *SENTENCES]))
    want = pool[A.CALIBRATION_START : A.CALIBRATION_START + 4]
    assert [text(f) for f in reader.feeds] == [tok.decode(tok.encode(s).ids) for s in want]
    static = Q.prepare(minilm.model_path, Q.QuantSpec("static", calibration=4), calibration=reader)
    assert reader.handed == 4 and static.calibration["samples"] == 4
    assert A.check_model(ref, static.path).score > 0.5  # runs; accuracy decides elsewhere
