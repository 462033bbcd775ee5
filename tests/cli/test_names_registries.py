"""Names and registries: control characters refused, honest removals, one cache entry per key,
unusable user folders, device files as results, custom-op libraries without RegisterCustomOps."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.errors import BadInputError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_refused(result, *needles: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert "Error:" in result.output
    assert "unexpected" not in result.output and "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


# --- environment names and package specs -----------------------------------------------------


@pytest.mark.parametrize("name", ["ov\n", "ov\nx", "o\x1bv", "ov\r", "", "ov/x", "a" * 65])
def test_env_names_with_control_characters_are_refused(name: str) -> None:
    assert_refused(invoke("env", "add", name, "--python", sys.executable), "environment name")


@pytest.mark.parametrize(
    ("package", "version", "needle"),
    [
        ("onnxruntime\n", None, "--package"),
        ("onnxruntime\n--index-url=http://evil", None, "--package"),
        ("onnxruntime", "1.20\n", "--version"),
        ("onnxruntime", "1.20 --pre", "--version"),
    ],
)
def test_package_specs_with_newlines_are_refused_before_pip(
    package: str, version: str | None, needle: str
) -> None:
    args = ["env", "create", "ok", "--package", package]
    if version is not None:
        args += ["--version", version]
    assert_refused(invoke(*args), needle)
    from aialliance_cli.envs.registry import envs_dir

    assert not (envs_dir() / "ok").exists()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=70))
def test_any_env_name_is_safe_or_refused(name: str) -> None:
    from aialliance_cli.envs.registry import _check_name

    try:
        _check_name(name)
    except BadInputError:
        return
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name)


# --- env remove says what it did ---------------------------------------------------------------


def _register(name: str, folder: Path) -> None:
    from aialliance_cli.envs.registry import EnvRecord, _write, registry_path

    rec = EnvRecord(
        name=name,
        python=str(folder / "bin" / "python"),
        onnxruntime="1.0",
        distribution="onnxruntime",
        providers=("CPUExecutionProvider",),
        managed=True,
        path=str(folder),
    )
    registry_path().parent.mkdir(parents=True, exist_ok=True)
    _write(registry_path(), {name: rec})


def test_env_remove_deletes_its_own_folder_and_says_so() -> None:
    from aialliance_cli.envs.registry import envs_dir, list_envs

    folder = envs_dir() / "mine"
    (folder / "bin").mkdir(parents=True)
    _register("mine", folder)
    result = invoke("env", "remove", "mine")
    assert result.exit_code == 0, result.output
    assert f"deleted {folder}" in result.output
    assert not folder.exists() and list_envs() == []


def test_env_remove_never_claims_to_delete_a_folder_outside_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    (folder / "bin").mkdir(parents=True)
    _register("other", folder)
    result = invoke("env", "remove", "other")
    assert result.exit_code == 0, result.output
    assert "deleted" not in result.output.replace("not deleted", "")
    assert "was not deleted" in result.output
    assert folder.exists()


def test_env_remove_of_a_folder_already_gone_says_so() -> None:
    from aialliance_cli.envs.registry import envs_dir

    _register("gone", envs_dir() / "gone")
    result = invoke("env", "remove", "gone")
    assert result.exit_code == 0, result.output
    assert "already gone" in result.output
    assert "deleted" not in result.output.replace("not deleted", "")


# --- cache clear KEY clears one entry ----------------------------------------------------------


@pytest.fixture
def genai_entries() -> Path:
    from aialliance_cli.models.cache import GENAI_DIR, cache_root

    family = cache_root() / GENAI_DIR
    for name in ("a", "b"):
        (family / name).mkdir(parents=True)
        (family / name / "model.onnx").write_bytes(b"x" * 10)
    return family


def test_cache_clear_family_key_is_refused_without_the_flag(genai_entries: Path) -> None:
    assert_refused(invoke("cache", "clear", "genai"), "not one cache entry", "--family")
    assert (genai_entries / "a").is_dir() and (genai_entries / "b").is_dir()


def test_cache_clear_one_key_clears_one_entry(genai_entries: Path) -> None:
    result = invoke("cache", "clear", "genai/a")
    assert result.exit_code == 0, result.output
    assert not (genai_entries / "a").exists() and (genai_entries / "b").is_dir()


def test_cache_clear_family_with_the_flag(genai_entries: Path) -> None:
    result = invoke("cache", "clear", "genai", "--family")
    assert result.exit_code == 0, result.output
    assert not genai_entries.exists() or not any(genai_entries.iterdir())


# --- user folders, results files, custom-op libraries -----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["env", "list"],
        ["env", "add", "x", "--python", sys.executable],
        ["cache", "list"],
        ["profiles", "list"],
    ],
)
@pytest.mark.parametrize("var", ["AIA_HOME", "AIA_DATA_DIR"])
def test_a_user_folder_that_is_a_file_is_a_clear_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], var: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(var, str(blocker if var == "AIA_HOME" else blocker / "data"))
    result = invoke(*args)
    if var == "AIA_DATA_DIR" and args[0] in ("cache", "profiles"):
        assert result.exit_code in (0, 2), result.output  # these may not need the data folder
        assert "unexpected" not in result.output
        return
    assert_refused(result, var, "is a file, not a folder")


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    matmul_model(tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_dev_null_as_results_file_is_refused_before_work(model_dir: Path) -> None:
    assert_refused(invoke("bench", "model.onnx", "--out", "/dev/null"), "not a regular file")
    assert_refused(invoke("compare", "/dev/null"), "not a regular file")


def test_custom_op_library_without_register_custom_ops_is_bad_input(model_dir: Path) -> None:
    import _ctypes  # a real shared library of this platform that has no RegisterCustomOps

    shutil.copy(_ctypes.__file__, model_dir / "libnotops.so")
    (model_dir / "fake.so").write_text("not a library")
    for lib in ("libnotops.so", "fake.so"):
        (model_dir / "p.yaml").write_text(
            f"name: p\nmodel: model.onnx\ncustom_ops_library: {lib}\n"
        )
        for command in (["run"], ["bench", "-n", "1"]):
            result = invoke(*command, "p.yaml", "--allow-custom-ops")
            assert_refused(result, lib, "RegisterCustomOps")
