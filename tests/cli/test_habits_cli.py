"""Habits of the tools users know: one --json shape, messages that read right."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

runner = CliRunner()


def invoke(*args: object, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def test_bench_json_is_a_list_for_one_configuration_and_for_a_sweep(tmp_path):
    mm = matmul_model(tmp_path / "mm.onnx")
    one = invoke("bench", mm, "--json", "-n", "3", "--warmup", "0", "--in-process")
    assert one.exit_code == 0, one.output
    data = json.loads(one.stdout)
    assert isinstance(data, list) and len(data) == 1 and data[0]["kind"] == "bench"
    two = invoke("bench", mm, "--json", "-n", "3", "--warmup", "0", "--batch", "1,2")
    assert two.exit_code == 0, two.output
    assert [d["settings"]["batch"] for d in json.loads(two.stdout)] == [1, 2]


def test_messages_agree_in_number(tmp_path):
    from aialliance_cli.errors import they

    assert they(["--md"], "applies", "apply") == "--md applies"
    assert they(["--a", "--b", "--c"], "does", "do") == "--a, --b and --c do"
    mm = matmul_model(tmp_path / "mm.onnx")
    r = invoke("bench", mm, "--md")
    assert r.exit_code == 2 and "--md applies to text-generation profiles only" in r.stderr
    r = invoke("bench", mm, "--md", "--gen-len", "4")
    assert r.exit_code == 2 and "--gen-len and --md apply to" in r.stderr.replace("\n", " ")
    r = invoke("bench", mm, "--min-queries", "3")
    assert r.exit_code == 2 and "--min-queries sets a LoadGen run" in r.stderr
    assert "(es)" not in r.stderr and "(s)" not in r.stderr


def test_flop_counts_have_a_space_before_the_unit():
    from aialliance_cli.cli.inspect import fmt_flops

    assert fmt_flops(36) == "36 FLOP"
    assert fmt_flops(2.5e9) == "2.5 GFLOP"


def test_cpu_na_says_why():
    from aialliance_cli.cli.bench import _cpu

    short = {"status": "ok", "metrics": {"cpu_percent": None, "wall_s": 0.08}}
    assert _cpu(short) == "n/a (measured 0.08 s; needs 1 s)"
    assert _cpu({"status": "ok", "metrics": {}}) == "n/a (not measured)"
