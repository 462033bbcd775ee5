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
    """The parent of a worker builds no session: with detect's cache warm it imports neither
    ORT nor numpy, nor the modules of the commands it was not asked for."""
    model = matmul_model(tmp_path / "mm.onnx")
    code = _RUN.replace(
        "'onnx', 'torch'",
        "'onnx', 'onnxruntime', 'numpy', 'aialliance_cli.cli.tune', 'aialliance_cli.cli.fleet', "
        "'aialliance_cli.cli.env', 'torch'",
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


def test_the_console_script_builds_only_the_asked_command() -> None:
    """`aia bench ...` builds the bench command alone; help, completion and misspelt names
    get every command (the suggestions need them)."""
    from aialliance_cli.cli import app as m

    assert m._only(["bench", "-n", "1"]) == "bench"
    assert m._only(["detect"]) == "detect"
    assert m._only([]) is None
    assert m._only(["--help"]) is None
    assert m._only(["-q", "bench"]) is None
    assert m._only(["bnch"]) is None
    one = m.make_app("detect")
    assert [c.name for c in one.registered_commands] == ["detect"]
    whole = m.make_app()
    names = {c.name for c in whole.registered_commands} | {g.name for g in whole.registered_groups}
    assert names == set(m.COMMANDS)


def test_a_misspelt_command_still_gets_a_suggestion() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aialliance_cli", "bnch"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "bench" in out.stderr and "Traceback" not in out.stderr


def test_another_commands_config_table_does_not_stop_this_one(tmp_path: Path) -> None:
    """Only the called command is built: a [tune] table is checked by `aia tune`, and a
    table for no command at all is still refused by every call."""
    cfg = tmp_path / "config.toml"
    env = {**os.environ, "AIA_CONFIG_FILE": str(cfg)}
    cfg.write_text("[tune]\nbudget = 30\n[detect]\njson = true\n")
    out = subprocess.run(
        [sys.executable, "-m", "aialliance_cli", "detect"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["schema"] == "aia.detect/1"  # [detect] json = true applied
    cfg.write_text("[tunne]\nbudget = 30\n")
    out = subprocess.run(
        [sys.executable, "-m", "aialliance_cli", "detect"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 2 and "tunne" in out.stderr and "tune" in out.stderr
