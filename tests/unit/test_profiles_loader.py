"""Loading profile files: messages that name file, line, column and key; the search path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from aialliance_cli.errors import ExitCode, ProfileError
from aialliance_cli.paths import user_dirs
from aialliance_cli.profiles import (
    DEFAULT_PROFILE,
    find_profile,
    list_profiles,
    load_profile,
    search_dirs,
    validate_files,
)

GOOD = """\
schema: aia.profile/1
name: tiny
description: A tiny test profile.
model:
  file: model.onnx
inputs:
  dims: {batch: 1}
bench:
  warmup: 2
  iterations: 5
"""


def write(folder: Path, text: str, name: str = "profile.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(target: str | Path) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(target)
    assert info.value.exit_code == ExitCode.BAD_INPUT == 2
    message = str(info.value)
    assert "Traceback" not in message and "pydantic" not in message and "\n" not in message
    return message


def test_load_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    loaded = load_profile(path)
    assert loaded.profile.name == "tiny"
    assert loaded.path == path and loaded.directory == tmp_path
    assert loaded.origin == "file"
    assert loaded.text == GOOD
    assert loaded.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()
    assert loaded.resolve("model.onnx") == tmp_path / "model.onnx"
    assert loaded.resolve("/abs/x.onnx") == Path("/abs/x.onnx")


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name: tiny\nmodel:\n  file: [model.onnx\nbench: {}\n")
    message = refused(path)
    assert "not valid YAML" in message and "profile.yaml:" in message
    line = int(message.split("profile.yaml:")[1].split(":")[0])
    assert line in (3, 4)


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "name: tiny\nmodel:\n\tfile: m.onnx\n"))
    assert "profile.yaml:3:1" in message


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD.replace("iterations:", "iteratons:")))
    assert "unknown key 'iteratons' in bench (profile.yaml:10:3)" in message
    assert "did you mean 'iterations'?" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD + "sesion: {}\n"))
    assert "unknown key 'sesion' at the top level (profile.yaml:11:1)" in message
    assert "did you mean 'session'?" in message


def test_wrong_type_names_key_value_and_position(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD.replace("iterations: 5", "iterations: ten")))
    assert "bench.iterations must be an integer, got 'ten' (profile.yaml:10:15)" in message


def test_out_of_range(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD.replace("{batch: 1}", "{batch: 0}")))
    assert "inputs.dims.batch must be > 0, got 0 (profile.yaml:7:17)" in message


def test_two_model_sources(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  file: model.onnx\n", "  file: model.onnx\n  package: {name: pkg, path: m.onnx}\n"
    )
    message = refused(write(tmp_path, text))
    assert "model: give exactly one model source" in message
    assert "got 2: file, package" in message and "(profile.yaml:4:1)" in message


def test_no_model_source(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD.replace("  file: model.onnx\n", "  {}\n")))
    assert "exactly one model source" in message and "got none" in message


def test_missing_model_key(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD.replace("model:\n  file: model.onnx\n", "")))
    assert "the profile is missing the required key 'model' (profile.yaml:1:1)" in message


def test_unknown_provider_name(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD + "providers:\n  prefer: [openvnio, cpu]\n"))
    assert "providers.prefer[0]" in message and "'openvnio'" in message
    assert "openvino" in message and "profile.yaml:12:12" in message


def test_unknown_provider_in_options_key(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD + "providers:\n  options: {cdua: {a: b}}\n"))
    assert "providers.options has a bad key 'cdua'" in message and "cuda" in message


def test_known_provider_names_pass(tmp_path: Path) -> None:
    text = GOOD + "providers:\n  prefer: [OpenVINOExecutionProvider, cuda, cpu]\n"
    assert load_profile(write(tmp_path, text)).profile.providers.prefer[0] == (
        "OpenVINOExecutionProvider"
    )


def test_duplicate_key(tmp_path: Path) -> None:
    message = refused(write(tmp_path, GOOD + "bench: {}\n"))
    assert "duplicate key 'bench'" in message and "profile.yaml:11:1" in message


def test_several_problems_in_one_paragraph(tmp_path: Path) -> None:
    text = GOOD.replace("warmup: 2", "warmup: -1").replace("iterations: 5", "iterations: x")
    message = refused(write(tmp_path, text))
    assert "2 problems" in message
    assert message.index("bench.warmup") < message.index("bench.iterations")


def test_missing_file(tmp_path: Path) -> None:
    message = refused(tmp_path / "nope.yaml")
    assert "nope.yaml" in message and "does not exist" in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    message = refused(tmp_path)
    assert str(tmp_path) in message and "is a directory" in message


def test_empty_file(tmp_path: Path) -> None:
    message = refused(write(tmp_path, ""))
    assert "profile.yaml is empty" in message


def test_comments_only_is_empty(tmp_path: Path) -> None:
    assert "is empty" in refused(write(tmp_path, "# nothing here\n"))


def test_not_a_mapping(tmp_path: Path) -> None:
    assert "must be a mapping" in refused(write(tmp_path, "- a\n- b\n"))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    assert "not UTF-8" in refused(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    path.chmod(0)
    try:
        assert "Cannot read profile" in refused(path)
    finally:
        path.chmod(0o644)


def test_yaml_tags_that_build_objects_are_refused(tmp_path: Path) -> None:
    text = GOOD + "custom_ops_library: !!python/object/apply:os.getcwd []\n"
    assert "not valid YAML" in refused(write(tmp_path, text))


def test_unknown_name_lists_available_with_did_you_mean() -> None:
    message = refused("all-minilm-l6")
    assert "No profile named 'all-minilm-l6'" in message
    assert f"did you mean '{DEFAULT_PROFILE}'?" in message
    assert "silero-vad" in message and "ppocr-det" in message


def test_find_profile_by_name_and_path(tmp_path: Path) -> None:
    assert find_profile(DEFAULT_PROFILE).name == f"{DEFAULT_PROFILE}.yaml"
    path = write(tmp_path, GOOD)
    assert find_profile(str(path)) == path


def test_search_order_local_shadows_user_shadows_bundled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    local = write(tmp_path / "profiles", GOOD.replace("tiny", "silero-vad"), "silero-vad.yaml")
    user = write(user_dirs().profiles, GOOD.replace("tiny", "ppocr-det"), "ppocr-det.yaml")
    write(user_dirs().profiles, GOOD.replace("tiny", "silero-vad"), "silero-vad.yaml")

    assert [origin for origin, _ in search_dirs()] == ["local", "user", "bundled"]
    loaded = load_profile("silero-vad")
    assert (loaded.path.resolve(), loaded.origin) == (local.resolve(), "local")
    assert loaded.profile.model.file == "model.onnx"  # the local file, not the bundled one
    assert load_profile("ppocr-det").origin == "user"
    assert load_profile(DEFAULT_PROFILE).origin == "bundled"

    entries = [e for e in list_profiles() if e.name == "silero-vad"]
    assert [e.origin for e in entries] == ["local", "user", "bundled"]
    assert entries[0].shadowed_by is None
    assert all(e.shadowed_by == local for e in entries[1:])
    assert [e.origin for e in list_profiles() if e.name == "ppocr-det"] == ["user", "bundled"]
    assert user.is_file()


def test_list_profiles_reports_broken_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "profiles", "name: broken\n", "broken.yaml")
    (entry,) = [e for e in list_profiles() if e.name == "broken"]
    assert entry.origin == "local" and entry.error and "model" in entry.error
    default = next(e for e in list_profiles() if e.name == DEFAULT_PROFILE)
    assert default.task == "sentence-embedding" and default.description and default.error is None


def test_validate_files(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD, "good.yaml")
    bad = write(tmp_path, "name: x\n", "bad.yaml")
    results = validate_files([good, bad, tmp_path / "missing.yaml"])
    assert [p.name for p, _ in results] == ["good.yaml", "bad.yaml", "missing.yaml"]
    assert results[0][1] is None
    assert isinstance(results[1][1], ProfileError) and isinstance(results[2][1], ProfileError)
