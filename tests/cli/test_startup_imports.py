"""run and bench import no onnx when nothing needs it (FLOPs cached, model scanned without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import matmul_model

_RUN = (
    "import sys\n"
    "from aialliance_cli.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    assert not e.code, e.code\n"
    "heavy = sorted(m for m in ('onnx', 'torch', 'transformers', 'optimum', 'sympy') "
    "if m in sys.modules)\n"
    "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
)


def _aia(*args: str) -> tuple[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    line = next(x for x in out.stderr.splitlines() if x.startswith("HEAVY="))
    return out.stdout, [m for m in line[len("HEAVY=") :].split(",") if m]


def test_bench_in_process_needs_onnx_only_for_the_first_flop_count(tmp_path: Path) -> None:
    model = matmul_model(tmp_path / "mm.onnx", k=64, n=32)
    args = ("bench", str(model), "-n", "3", "--warmup", "1", "--json", "--in-process")
    first, heavy_first = _aia(*args)
    second, heavy_second = _aia(*args)
    assert "onnx" in heavy_first  # counting FLOPs the first time needs onnx's shape inference
    assert heavy_second == []
    (a,), (b,) = json.loads(first), json.loads(second)  # bench --json: always a list
    # The cached count gives the same figures as the fresh one.
    eff_a, eff_b = a["metrics"]["efficiency"], b["metrics"]["efficiency"]
    assert eff_a["flops_per_inference"] == eff_b["flops_per_inference"] > 0
    assert a["ep"]["placement"]["summary"] == b["ep"]["placement"]["summary"]


def test_run_does_not_import_onnx_once_facts_are_cached(tmp_path: Path) -> None:
    model = matmul_model(tmp_path / "mm.onnx")
    _aia("run", str(model), "--json")
    _, heavy = _aia("run", str(model), "--json")
    assert heavy == []


def test_bench_parent_leaves_onnxruntime_to_its_worker(tmp_path: Path) -> None:
    """The parent of a worker builds no session: with detect's cache warm it imports no ORT."""
    model = matmul_model(tmp_path / "mm.onnx")
    code = _RUN.replace(
        "'onnx', 'torch'", "'onnx', 'onnxruntime', 'torch'"
    )  # the parent's own modules
    args = ("bench", str(model), "-n", "2", "--warmup", "1", "--json")
    runs = []
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ.copy(),
        )
        runs.append(out)
    line = next(x for x in runs[1].stderr.splitlines() if x.startswith("HEAVY="))
    assert line == "HEAVY="
    (result,) = json.loads(runs[1].stdout)
    assert result["status"] == "ok" and result["metrics"]["latency_ms"]["p50"] > 0


_HEAVY = ("torch", "optimum", "transformers", "ray", "onnx")


def _heavy_after(args: tuple[str, ...], home: Path) -> list[str]:
    code = (
        "import sys\n"
        "from aialliance_cli.cli.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        f"print('HEAVY=' + ','.join(m for m in {_HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    env = {**os.environ, "AIA_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
    )
    line = next(x for x in out.stderr.splitlines() if x.startswith("HEAVY="))
    return [m for m in line[len("HEAVY=") :].split(",") if m]


def test_help_and_detect_import_no_heavy_module(tmp_path: Path) -> None:
    """`aia --help` and `aia detect` (cold detect cache, then warm) stay light."""
    for args in (("--help",), ("detect",), ("detect", "--json"), ("fleet", "--help")):
        assert _heavy_after(args, tmp_path / "home") == [], args
