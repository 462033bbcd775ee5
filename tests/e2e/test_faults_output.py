"""Fault injection on ``--out``: a full filesystem, a file-size limit, a broken last line.

Appends are whole lines or nothing; a failed write is exit 1 naming the file,
with the measured result still printed; a last line without its newline is
ended before new lines go in, never glued onto.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

from aialliance_cli.errors import RuntimeFailure  # noqa: E402
from aialliance_cli.results.store import append_jsonl  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OLD = {"schema": "aia.result/1", "kind": "bench", "status": "ok", "pad": "x" * 200}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return matmul_model(tmp_path_factory.mktemp("out-faults") / "mm.onnx")


def _aia(tmp: Path, *args: str, preexec=None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["AIA_HOME"] = str(tmp / "home")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", "from aialliance_cli.cli.main import main; main()", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=preexec,
    )


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "a line was left half-written"
    return text.splitlines()


def test_broken_last_line_is_ended_not_glued_onto(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    whole = json.dumps(OLD)
    out.write_text(whole + "\n" + whole[:57], encoding="utf-8")  # a crash mid-line
    said: list[str] = []
    assert append_jsonl(out, [{"n": 1}, {"n": 2}], warn=said.append) == 2
    lines = _lines(out)
    assert lines[0] == whole and lines[1] == whole[:57]
    assert [json.loads(x) for x in lines[2:]] == [{"n": 1}, {"n": 2}]
    assert len(said) == 1 and str(out) in said[0]


def _fill(path: Path, lines: int) -> int:
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            f.write(json.dumps(OLD) + "\n")
    return path.stat().st_size


def test_short_write_is_undone(tmp_path: Path) -> None:
    """Under a file-size limit the line that does not fit is taken back whole."""
    out = tmp_path / "out.jsonl"
    size = _fill(out, 3)
    code = (
        "import resource, sys\n"
        "from aialliance_cli.results.store import append_jsonl\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({size + 100}, {size + 100}))\n"
        "try:\n"
        f"    append_jsonl({str(out)!r}, [{{'pad': 'y' * 50}}, {{'pad': 'z' * 500}}])\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "RuntimeFailure" in proc.stdout and str(out) in proc.stdout, proc
    lines = _lines(out)
    assert len(lines) == 4  # the three old lines and the one that fitted
    assert json.loads(lines[-1]) == {"pad": "y" * 50}


def test_append_error_is_exit_1_class() -> None:
    assert int(RuntimeFailure.exit_code) == 1


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    return proc.returncode == 0


@pytest.mark.parametrize("how", ["tmpfs", "fsize"])
def test_full_disk_keeps_whole_lines_and_shows_the_result(
    how: str, model: Path, tmp_path: Path
) -> None:
    mnt = tmp_path / "mnt"
    preexec = None
    if how == "tmpfs":
        if not _mount_tmpfs(mnt, "64k"):
            pytest.skip("cannot mount a tmpfs here (needs root); the fsize case covers it")
    else:
        mnt.mkdir()
    try:
        out = mnt / "out.jsonl"
        if how == "tmpfs":
            size = _fill(out, 2)
            with open(mnt / "filler", "wb", buffering=0) as f:  # fill the rest of the disk
                try:
                    while True:
                        f.write(b"\0" * 4096)
                except OSError:
                    pass
        else:
            size = _fill(out, 400)  # ~90 kB: more than the worker's own result file
            limit = size + 1024

            def preexec() -> None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        before = out.read_bytes()
        proc = _aia(tmp_path, "bench", str(model), "-n", "20", "--out", str(out), preexec=preexec)
        assert proc.returncode == 1, proc.stderr
        assert str(out) in proc.stderr
        assert "Traceback" not in proc.stderr
        assert "p50" in proc.stdout or "latency" in proc.stdout  # the result is still shown
        assert out.read_bytes() == before  # nothing half-written
        assert len(_lines(out)) == len(before.splitlines())
        assert size == len(before)
    finally:
        if how == "tmpfs":
            subprocess.run(["umount", str(mnt)], capture_output=True)
