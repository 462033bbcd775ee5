"""Prepared models (tune.quantize) and output agreement (tune.accuracy) on small real models."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from aialliance_cli.errors import BadInputError
from aialliance_cli.hardware.inventory import CpuInfo
from aialliance_cli.tune import accuracy as A
from aialliance_cli.tune import quantize as Q
from tests.helpers import matmul_model, scaled_copy, tanh_embedding_model


def _cpu(arch: str = "x86_64", *features: str) -> CpuInfo:
    return CpuInfo("other", "test", arch, 2, 2, 1, 1, features=tuple(features))


@pytest.mark.parametrize(
    ("cpu", "preset", "weights"),
    [
        (_cpu("x86_64", "avx", "avx2", "fma"), "avx2", "quint8"),
        (_cpu("x86_64", "avx2", "avx512f"), "avx512", "qint8"),
        (_cpu("x86_64", "avx2", "avx512f", "avx512_vnni"), "avx512_vnni", "qint8"),
        (_cpu("x86_64", "avx2", "avx_vnni"), "avx_vnni", "qint8"),
        (_cpu("aarch64", "neon", "dotprod"), "arm64", "qint8"),
        (_cpu("x86_64", "sse4.2"), "generic", "qint8"),
    ],
)
def test_isa_preset_picks_the_weight_type_as_optimum_does(cpu, preset, weights) -> None:
    assert Q.isa_preset(cpu) == preset
    spec = Q.QuantSpec("dynamic").resolved(preset)
    assert spec.weight_type == weights and spec.per_channel is True
    # What the user says wins over the preset.
    mine = Q.QuantSpec("dynamic", weight_type="qint8", per_channel=False).resolved(preset)
    assert (mine.weight_type, mine.per_channel) == ("qint8", False)


def test_isa_preset_reads_this_machine() -> None:
    from aialliance_cli.hardware import detect

    assert Q.isa_preset() == Q.isa_preset(detect().cpu) in Q.PRESETS


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (Q.QuantSpec("int4"), "unknown quantization method 'int4'"),
        (Q.QuantSpec("dynamic", weight_type="int8"), "unknown weight type 'int8'"),
        (Q.QuantSpec("static", calibration=0), "from 1 to"),
        (Q.QuantSpec("static", calibration=-3), "from 1 to"),
        (Q.QuantSpec("static", calibration=True), "from 1 to"),
        (Q.QuantSpec("fp16", per_channel=True), "not apply to fp16"),
        (Q.QuantSpec("dynamic", calibration=8), "to static quantization"),
        (Q.QuantSpec("static", activation_type="qint8", weight_type="quint8"), "qint8 weights"),
        (Q.QuantSpec("static", calibrate_method="magic"), "unknown calibration method"),
    ],
)
def test_bad_specs_are_refused(spec: Q.QuantSpec, needle: str) -> None:
    with pytest.raises(BadInputError, match=re.escape(needle)):
        spec.validate()


def test_dynamic_is_prepared_once_and_keyed_by_content_and_spec(
    tmp_path: Path, monkeypatch
) -> None:
    src = matmul_model(tmp_path / "mm.onnx", k=64, n=32)
    first = Q.prepare(src, Q.QuantSpec("dynamic"), isa="avx512_vnni")
    assert not first.reused and first.path.is_file() and first.path != src
    assert first.spec.weight_type == "qint8" and first.spec.per_channel is True
    assert first.source_sha256 == Q.file_sha256(src) and first.sha256 == Q.file_sha256(first.path)
    ops = {n.op_type for n in onnx.load(str(first.path)).graph.node}
    assert "MatMulInteger" in ops

    def boom(*_a, **_k):
        raise AssertionError("prepared again")

    monkeypatch.setattr(Q, "_quantize_dynamic", boom)
    again = Q.prepare(src, Q.QuantSpec("dynamic", weight_type="qint8"), isa="avx512_vnni")
    assert again.reused and again.path == first.path and again.cache_key == first.cache_key
    monkeypatch.undo()
    # Another weight type (the avx2 preset) or other content: another entry.
    other = Q.prepare(src, Q.QuantSpec("dynamic"), isa="avx2")
    assert other.spec.weight_type == "quint8" and other.cache_key != first.cache_key
    changed = matmul_model(tmp_path / "mm2.onnx", k=64, n=16)
    assert Q.prepare(changed, Q.QuantSpec("dynamic"), isa="avx512_vnni").cache_key != (
        first.cache_key
    )


def test_fp16_keeps_float32_io(tmp_path: Path) -> None:
    import onnxruntime as ort

    src = matmul_model(tmp_path / "mm.onnx", k=64, n=32)
    half = Q.prepare(src, Q.QuantSpec("fp16"))
    model = onnx.load(str(half.path))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    out = ort.InferenceSession(str(half.path)).run(None, {"x": np.ones((1, 64), np.float32)})
    assert out[0].dtype == np.float32


def test_static_needs_enough_calibration_inputs(tmp_path: Path) -> None:
    src = matmul_model(tmp_path / "mm.onnx", k=64, n=32)
    with pytest.raises(BadInputError, match="needs calibration inputs"):
        Q.prepare(src, Q.QuantSpec("static", calibration=4))
    feeds = [{"x": np.ones((1, 64), np.float32)}] * 2
    with pytest.raises(BadInputError, match="asks for 4 calibration sets but 2 were given"):
        Q.prepare(src, Q.QuantSpec("static", calibration=4), calibration=feeds)
    with pytest.raises(BadInputError, match="only apply to static"):
        Q.prepare(src, Q.QuantSpec("dynamic"), calibration=feeds)


# ----------------------------------------------------------------------------- profiles


def _profile(folder: Path, body: str, model: str = "mm.onnx") -> object:
    from aialliance_cli.runtime.api import prepare_target

    path = folder / "p.yaml"
    path.write_text(f"schema: aia.profile/1\nname: p\nmodel: {model}\n{body}", encoding="utf-8")
    return prepare_target(str(path))


def test_static_calibrates_on_the_profiles_inputs(tmp_path: Path) -> None:
    matmul_model(tmp_path / "mm.onnx", k=64, n=32)
    target = _profile(
        tmp_path,
        "inputs:\n  dims: {batch: 2}\n  tensors:\n"
        "    x: {synthesize: random, low: 0.0, high: 4.0, seed: 7, dtype: float32}\n",
    )
    feeds = Q.calibration_inputs(target, 8)
    assert len(feeds) == 8 and all(f["x"].shape == (2, 64) for f in feeds)
    # The profile's own rule made them: its range, distinct sets (rotating seeds).
    assert all(f["x"].min() >= 0.0 and f["x"].max() <= 4.0 for f in feeds)
    assert len({f["x"].tobytes() for f in feeds}) == 8
    # They are the profile's input sets, past the ones the accuracy check reads.
    sets = A.profile_inputs(target, A.CALIBRATION_START + 8).feeds
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(feeds, sets[-8:], strict=True))

    reader = Q.FeedsReader(feeds)
    prepared = Q.prepare(
        target.model_path, Q.QuantSpec("static", calibration=8), calibration=reader
    )
    assert reader.handed == 8  # the calibrator read every set
    assert prepared.calibration == {"samples": 8, "digest": Q.feeds_digest(feeds)}
    ops = {n.op_type for n in onnx.load(str(prepared.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    ref = A.reference(target)
    assert A.check_model(ref, prepared.path).passes(0.9)
    # Other calibration inputs: another cache entry.
    other = Q.prepare(
        target.model_path, Q.QuantSpec("static", calibration=8), calibration=feeds[::-1]
    )
    assert other.cache_key != prepared.cache_key


def _word_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from aialliance_cli.tune.sentences import SENTENCES

    words = sorted({w for s in SENTENCES for w in re.findall(r"\w+|[^\w\s]", s)})
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    vocab.update({w: i + 4 for i, w in enumerate(words)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.save(str(folder / "tokenizer.json"))


@pytest.fixture
def text_profile(tmp_path: Path):
    tanh_embedding_model(tmp_path / "enc.onnx", vocab=1000)
    _word_tokenizer(tmp_path)
    return _profile(
        tmp_path,
        "task: sentence-embedding\ninputs:\n  dims: {batch: 1, sequence: 24}\n"
        "  text: {value: 'Please restart the server now.', tokenizer: tokenizer.json}\n",
        model="enc.onnx",
    )


def test_text_profiles_are_checked_and_calibrated_on_real_sentences(text_profile) -> None:
    from tokenizers import Tokenizer

    from aialliance_cli.tune.sentences import SENTENCES

    tok = Tokenizer.from_file(str(text_profile.loaded.directory / "tokenizer.json"))
    sets = A.profile_inputs(text_profile, 16)
    assert sets.kind == "sentences" and len(sets.feeds) == 16
    decoded = [tok.decode(f["input_ids"][0].tolist()) for f in sets.feeds]
    assert decoded[0] == "Please restart the server now ."  # the profile's own text first
    assert len(set(decoded)) == 16
    cal = Q.calibration_inputs(text_profile, 4)
    pool = ["Please restart the server now.", *SENTENCES]
    for i, feed in enumerate(cal):
        want = tok.encode(pool[A.CALIBRATION_START + i]).ids[:24]
        assert feed["input_ids"][0][: len(want)].tolist() == want
    rand = A.profile_inputs(text_profile, 16, kind="random")
    assert rand.kind == "random" and len({f["input_ids"].tobytes() for f in rand.feeds}) == 16


def test_accuracy_rejects_a_broken_embedding_model(text_profile, tmp_path: Path) -> None:
    ref = A.reference(text_profile)
    assert ref.task == "sentence-embedding" and len(ref.outputs) >= A.MIN_INPUTS
    same = A.check_model(ref, text_profile.model_path)
    assert same.metric == "cosine" and same.score == pytest.approx(1.0) and same.passes()
    broken = scaled_copy(text_profile.model_path, tmp_path / "broken.onnx", 1.5)
    bad = A.check_model(ref, broken)
    assert not bad.passes() and bad.min < 0.99
    assert bad.judged()["passed"] is False and bad.judged()["min_accuracy"] == 0.99
    int8 = Q.prepare(text_profile.model_path, Q.QuantSpec("dynamic"))
    good = A.check_model(ref, int8.path)
    assert good.score > 0.99 and good.passes()


def test_accuracy_metrics_by_task(tmp_path: Path) -> None:
    src = matmul_model(tmp_path / "mm.onnx", k=64, n=32)
    target = _profile(tmp_path, "")
    ref = A.reference(target)
    assert ref.task == "generic" and len(ref.inputs.feeds) == 16
    ok = A.check_model(ref, src)
    assert ok.metric == "relative_error" and ok.score == 1.0 and ok.outputs["y"]["max_abs"] == 0
    broken = A.check_model(ref, scaled_copy(src, tmp_path / "b.onnx", 1.5))
    assert broken.outputs["y"]["max_rel"] == pytest.approx(0.5, rel=1e-4)
    assert not broken.passes() and broken.passes(0.4)
    # A classifier: top-1 agreement; scaling keeps the argmax, a sign flip does not.
    (tmp_path / "p.yaml").unlink()
    cls = _profile(tmp_path, "task: text-classification\n")
    cref = A.reference(cls)
    assert A.check_model(cref, scaled_copy(src, tmp_path / "s.onnx", 1.5)).score == 1.0
    flipped = A.check_model(cref, scaled_copy(src, tmp_path / "n.onnx", -1.0))
    assert flipped.metric == "top1" and not flipped.passes()


def test_reference_saves_and_loads(tmp_path: Path) -> None:
    matmul_model(tmp_path / "mm.onnx", k=64, n=32)
    ref = A.reference(_profile(tmp_path, ""))
    path = ref.save(tmp_path / "ref.npz")
    ins, outs = A.load_sets(path, "in"), A.load_sets(path, "out")
    assert len(ins) == len(outs) == 16
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(ins, ref.inputs.feeds, strict=True))
    assert A.compare(ref, outs).score == 1.0


@pytest.mark.parametrize("value", [0, -0.1, 1.5, float("nan"), float("inf"), True])
def test_min_accuracy_out_of_range(value) -> None:
    with pytest.raises(BadInputError, match="--min-accuracy"):
        A.check_min_accuracy(value)


def test_unknown_input_kind(tmp_path: Path) -> None:
    matmul_model(tmp_path / "mm.onnx")
    target = _profile(tmp_path, "")
    with pytest.raises(BadInputError, match="unknown input kind"):
        A.profile_inputs(target, 4, kind="images")
    with pytest.raises(BadInputError, match="takes no text"):
        A.profile_inputs(target, 4, kind="sentences")


def test_reference_for_jobs_points_every_job_at_one_file_and_removes_it(tmp_path: Path) -> None:
    matmul_model(tmp_path / "mm.onnx", k=64, n=32)
    target = _profile(tmp_path, "")
    jobs: list[dict] = [{}, {}]
    with A.reference_for_jobs(target, jobs, min_accuracy=0.9) as ref:
        paths = {j["check_outputs"]["path"] for j in jobs}
        assert len(paths) == 1 and Path(next(iter(paths))).is_file()
        assert jobs[0]["check_outputs"]["min_accuracy"] == 0.9
        session = A.cpu_session(target.model_path)
        record = A.check_job_outputs(jobs[0]["check_outputs"], session, target)
        assert record["passed"] is True and record["score"] == 1.0
        assert record["reference"]["inputs_digest"] == ref.reference.inputs.digest
    assert not Path(next(iter(paths))).exists() and jobs == [{}, {}]
    # A session of another model (other input names) cannot be compared: said, not raised.
    other = tanh_embedding_model(tmp_path / "enc.onnx")
    with A.reference_for_jobs(target, jobs) as ref:
        record = A.check_job_outputs(jobs[0]["check_outputs"], A.cpu_session(other), target)
    assert record["passed"] is None and "could not be compared" in record["error"]


def test_static_keeps_nodes_whose_input_has_outliers_in_float(tmp_path: Path) -> None:
    from tests.helpers import tanh_sum_model

    src = tanh_sum_model(tmp_path / "t.onnx")  # x -> MatMul "mm" -> Tanh -> ReduceSum
    rng = np.random.default_rng(0)
    calm = [{"x": rng.standard_normal((64, 32)).astype(np.float32)} for _ in range(8)]
    spiky = [{"x": f["x"].copy()} for f in calm]
    for f in spiky:
        f["x"][0, 3] = 60.0  # one value far beyond the rest of the distribution
    assert Q.outlier_nodes(src, calm) == {}
    flagged = Q.outlier_nodes(src, spiky)
    assert list(flagged) == ["mm"] and flagged["mm"] > Q.OUTLIER_RATIO
    kept = Q.prepare(src, Q.QuantSpec("static", calibration=8), calibration=spiky)
    assert kept.kept_float == ("mm",)
    ops = {n.op_type for n in onnx.load(str(kept.path)).graph.node}
    assert "QuantizeLinear" not in ops  # its only quantizable node stayed float
    quantized = Q.prepare(src, Q.QuantSpec("static", calibration=8), calibration=calm)
    assert quantized.kept_float == () and "QuantizeLinear" in {
        n.op_type for n in onnx.load(str(quantized.path)).graph.node
    }
