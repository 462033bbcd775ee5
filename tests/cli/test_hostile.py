"""The corpus in tests/fixtures/hostile/: each file is refused (exit 2) or shown safely."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

HOSTILE = Path(__file__).resolve().parent.parent / "fixtures" / "hostile"
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_refused(result, *needles: str) -> None:
    """Exit 2 with a message naming what was wrong; no traceback, no 'unexpected'."""
    text = result.output
    assert result.exit_code == 2, text
    assert "Error:" in text
    assert "unexpected" not in text and "Traceback" not in text
    for needle in needles:
        assert needle in text, text


@pytest.fixture
def hostile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hostile corpus copied beside a real model, as the working directory."""
    for f in HOSTILE.iterdir():
        shutil.copy(f, tmp_path / f.name)
    matmul_model(tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("billion-laughs.yaml", "aliases expand"),
        ("deep-nesting.yaml", "deeper than 64 levels"),
        ("recursive-alias.yaml", "contains it"),
        ("huge-integer.yaml", "4300 digits"),
    ],
)
def test_hostile_profile_is_refused(hostile_dir: Path, name: str, needle: str) -> None:
    start = time.monotonic()
    assert_refused(invoke("profiles", "validate", name), name, needle)
    assert_refused(invoke("run", name), name, needle)
    assert time.monotonic() - start < 30  # a hang check; the work itself is milliseconds


def test_billion_laughs_on_the_search_path_is_listed_not_expanded(hostile_dir: Path) -> None:
    (hostile_dir / "profiles").mkdir()
    shutil.copy(HOSTILE / "billion-laughs.yaml", hostile_dir / "profiles" / "laughs.yaml")
    result = invoke("profiles", "list", "--json")
    assert result.exit_code == 0, result.output
    assert "laughs" in result.stdout


@pytest.mark.slow
def test_billion_laughs_real_cli_bounded_memory(hostile_dir: Path) -> None:
    """The console script, under a 2 GiB address-space limit, scanning a laughs profile."""
    import resource

    (hostile_dir / "profiles").mkdir()
    shutil.copy(HOSTILE / "billion-laughs.yaml", hostile_dir / "profiles" / "laughs.yaml")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    for args in (["profiles", "list"], ["profiles", "validate", "profiles/laughs.yaml"]):
        proc = subprocess.run(
            [sys.executable, "-m", "aialliance_cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=limit,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr
        assert proc.returncode in (0, 2), proc.stderr
    assert proc.returncode == 2 and "aliases expand" in proc.stderr


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("deep.jsonl", "deeper than 64 levels"),
        ("huge-integer.jsonl", "not valid JSON"),
    ],
)
def test_hostile_result_file_is_refused(hostile_dir: Path, name: str, needle: str) -> None:
    assert_refused(invoke("compare", name), name, needle)


def test_truncated_result_file_keeps_its_whole_lines(hostile_dir: Path) -> None:
    result = invoke("compare", "truncated.jsonl", "--json")
    assert result.exit_code == 0, result.output
    assert "truncated.jsonl:2: not valid JSON (a truncated line?)" in result.stderr
