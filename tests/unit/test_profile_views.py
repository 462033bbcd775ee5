"""Validated profiles as views (profiles/view.py): the same answers as the pydantic
profile, kept per profile text, and read back without pydantic or YAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aialliance_cli.errors import ProfileError
from aialliance_cli.profiles import load_profile, parse_profile
from aialliance_cli.profiles.view import cache_path, is_view

REPO = Path(__file__).resolve().parents[2]
BUNDLED = sorted((REPO / "profiles").glob("*.yaml"))

# Every kind of value the schema holds: tuples, nested mappings of models, aliases,
# properties, unset defaults, generation settings, variants.
RICH = """\
schema: aia.profile/1
name: rich
description: every kind of field
task: sentence-embedding
model: {url: {url: "https://example.com/m.onnx", sha256: "%s"}}
inputs:
  dims: {batch: 2, seq: 16}
  text: {value: [one sentence, another one], max_length: 16}
  tensors:
    input_ids: {synthesize: range, shape: [batch, seq], dtype: int64}
    mask: {value: 1, shape: [batch, 16], dtype: int64}
providers:
  prefer: [openvino, cpu]
session:
  intra_op_threads: 2
  graph_optimization_level: extended
bench: {warmup: 3, iterations: 20}
variants:
  int8: {quantize: dynamic}
""" % ("ab" * 32)

GENERATION = """\
name: gen
task: text-generation
model: {file: model.onnx}
generation: {max_new_tokens: 8, do_sample: false, seed: 3}
"""

DUMP_ARGS = [
    {},
    {"exclude_none": True},
    {"exclude_unset": True},
    {"mode": "json", "exclude_none": True, "by_alias": True},
    {"mode": "json"},
]


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _pairs(tmp_path: Path) -> list[tuple[str, object, object]]:
    out = []
    for path in BUNDLED:
        out.append((path.name, load_profile(path).profile, parse_profile(path.read_text(), path)))
    for name, text in (("rich", RICH), ("gen", GENERATION)):
        path = _write(tmp_path, text, f"{name}.yaml")
        out.append((name, load_profile(path).profile, parse_profile(text, path)))
    return out


def test_views_answer_as_the_pydantic_profile(tmp_path: Path) -> None:
    for name, view, model in _pairs(tmp_path):
        assert is_view(view) and not is_view(model), name
        for args in DUMP_ARGS:
            assert view.model_dump(**args) == model.model_dump(**args), (name, args)
        assert view.model.kind == model.model.kind, name
        assert view.model.sources() == model.model.sources(), name
        assert view.variant_names() == model.variant_names(), name
        assert view.model_fields_set == model.model_fields_set, name
        for tensor in model.inputs.tensors:
            assert view.inputs.shape_of(tensor) == model.inputs.shape_of(tensor), name
            assert view.inputs.tensors[tensor].kind == model.inputs.tensors[tensor].kind
        if model.inputs.text is not None:
            assert view.inputs.text.texts == model.inputs.text.texts, name
        assert type(view.inputs.dims) is dict and type(view.bench.iterations) is int


def test_the_rich_profile_keeps_its_types(tmp_path: Path) -> None:
    view = load_profile(_write(tmp_path, RICH)).profile
    assert view.inputs.text.texts == ("one sentence", "another one")  # a tuple, as validated
    assert view.inputs.tensors["input_ids"].shape == ("batch", "seq")
    assert view.inputs.shape_of("mask") == (2, 16)
    assert view.schema_ == "aia.profile/1"
    assert view.model_dump(mode="json", by_alias=True)["schema"] == "aia.profile/1"
    assert view == load_profile(_write(tmp_path, RICH, "again.yaml")).profile
    assert hash(view.model) == hash(load_profile(_write(tmp_path, RICH, "b.yaml")).profile.model)


def test_views_pickle_and_copy_by_value(tmp_path: Path) -> None:
    import copy
    import pickle

    view = load_profile(_write(tmp_path, RICH)).profile
    assert pickle.loads(pickle.dumps(view)) == view  # Ray sends profiles to its nodes
    assert copy.deepcopy(view) == view
    assert type(pickle.loads(pickle.dumps(view.inputs))) is type(view.inputs)
    code = (  # another process, which has made no view class yet
        "import pickle, sys; p = pickle.loads(sys.stdin.buffer.read()); "
        "print(p.name, p.inputs.shape_of('mask'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(view), capture_output=True, timeout=60
    )
    assert out.stdout.decode().split() == ["rich", "(2,", "16)"], out.stderr.decode()


def test_views_are_frozen(tmp_path: Path) -> None:
    view = load_profile(_write(tmp_path, RICH)).profile
    with pytest.raises(AttributeError, match="frozen"):
        view.name = "other"
    with pytest.raises(AttributeError, match="frozen"):
        del view.bench.iterations


def test_generation_settings_of_a_view_validate_again(tmp_path: Path) -> None:
    from aialliance_cli.genai import GenerationSpec, make_settings

    view = load_profile(_write(tmp_path, GENERATION)).profile
    settings = make_settings(view.generation, max_new_tokens=4)
    assert isinstance(settings, GenerationSpec)
    assert (settings.max_new_tokens, settings.seed, settings.do_sample) == (4, 3, False)


def test_a_second_load_comes_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path, RICH)
    first = load_profile(path)
    assert cache_path(first.sha256).is_file()

    def refuse(*a, **k):
        raise AssertionError("validated again")

    monkeypatch.setattr("aialliance_cli.profiles.validate.parse_profile", refuse)
    assert load_profile(path).profile == first.profile


def test_another_text_is_validated_and_its_errors_still_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, RICH)
    load_profile(path)
    path.write_text(RICH.replace("iterations: 20", "iterations: many"), encoding="utf-8")
    with pytest.raises(ProfileError, match="bench.iterations"):
        load_profile(path)


def test_a_broken_or_foreign_cache_entry_is_ignored_and_rewritten(tmp_path: Path) -> None:
    path = _write(tmp_path, RICH)
    loaded = load_profile(path)
    entry = cache_path(loaded.sha256)
    for junk in (
        "{not json",
        json.dumps({"version": 1, "sha256": loaded.sha256, "profile": {"$": "Profile"}}),
        json.dumps({"version": 1, "sha256": "0" * 64, "profile": None}),
        json.dumps({"version": 1, "sha256": loaded.sha256, "profile": {"$": "not a name!"}}),
        json.dumps({"version": 1, "sha256": loaded.sha256, "profile": {"$": "__class__"}}),
        json.dumps({"version": 1, "sha256": loaded.sha256, "profile": {"x": 1}}),
    ):
        entry.write_text(junk, encoding="utf-8")
        assert load_profile(path).profile == loaded.profile
        assert json.loads(entry.read_text(encoding="utf-8"))["sha256"] == loaded.sha256


def test_a_cached_profile_loads_without_pydantic_or_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, RICH)
    load_profile(path)
    code = (
        "import sys; from aialliance_cli.profiles import load_profile; "
        f"p = load_profile({str(path)!r}).profile; "
        "print(p.model.kind, p.inputs.shape_of('mask'), "
        "sorted(m for m in ('pydantic', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["url", "(2,", "16)", "[]"], out.stdout + out.stderr
