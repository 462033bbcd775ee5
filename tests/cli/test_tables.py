"""Tables for 80 columns and pipes (issue 11): one row per configuration, short EP names,
units in headers, numbers never split, columns dropped by priority, --columns to choose."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.cli.output import Column, fit_columns

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

runner = CliRunner()
NUMBER = re.compile(r"^(n/a|auto|-?\d+(\.\d+)?(e-?\d+)?(-\d+(\.\d+)?(e-?\d+)?)?)$")


def invoke(*args: object, width: int = 80):
    # CliRunner's output is no terminal, like a pipe; COLUMNS is what a narrow terminal sets.
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(width)})


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table: cells between the vertical bars."""
    return [
        [c.strip() for c in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture
def mm(tmp_path: Path) -> Path:
    return matmul_model(tmp_path / "mm.onnx")


def test_sweep_table_fits_80_columns_one_row_per_configuration(mm):
    r = invoke("bench", mm, "-n", "30", "--warmup", "0", "--threads", "1,2", "--dim", "batch=1,2")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("┃"))
    assert "EP" in header and "p50 ms" in header and "CI ms" in header
    rows = table_rows(r.stdout)
    assert len(rows) == 4  # one row per configuration, each on one line
    for row in rows:
        assert row[0] == "cpu"  # the short EP name
        assert all(NUMBER.match(c) or c == "cpu" for c in row[1:]), row  # never split
    assert "not shown at 80 columns" in " ".join(r.stdout.split())


def test_columns_chooses_and_orders_the_table(mm):
    r = invoke(
        "bench", mm, "-n", "5", "--warmup", "0", "--threads", "1,2", "--columns", "p50,ep,inf_s"
    )
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stdout.splitlines() if line.startswith("┃"))
    assert [h.strip() for h in header.strip("┃").split("┃")] == ["p50 ms", "EP", "inf/s"]
    assert "not shown" not in r.stdout


def test_unknown_column_is_bad_input_before_anything_runs(mm):
    r = invoke("bench", mm, "-n", "5", "--columns", "ep,speed")
    assert r.exit_code == 2
    assert "speed" in r.stderr and "p50" in r.stderr and r.stdout == ""


def test_single_bench_table_has_the_median_interval(mm):
    r = invoke("bench", mm, "-n", "20", "--warmup", "0", "--in-process")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "p50 95% interval (ms)" in text and "│ EP │ cpu │" in text


def test_profiles_list_keeps_names_whole_at_80_columns():
    r = invoke("profiles", "list")
    assert r.exit_code == 0, r.output
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    names = [row[0].rstrip(" *") for row in table_rows(r.stdout)]
    assert "all-minilm-l6-v2" in names and "silero-vad" in names
    wide = invoke("profiles", "list", "--columns", "name,path", width=200)
    assert any(row[1].endswith("silero-vad.yaml") for row in table_rows(wide.stdout))


def test_fit_drops_the_least_important_column_first():
    cols = [Column("a", "a", 0), Column("b", "b", 9), Column("c", "c", 1)]
    rows = [["x" * 10, "y" * 10, "z" * 10]]
    kept, dropped = fit_columns(cols, rows, width=30)
    assert kept == [0, 2] and dropped == ["b"]
    assert fit_columns(cols, rows, width=30, chosen=["b", "a"]) == ([1, 0], [])


def test_generation_table_says_random_weights_and_fits(monkeypatch):
    from rich.console import Console

    from aialliance_cli.cli import genbench
    from aialliance_cli.cli.output import fitted_table

    record = {
        "ep": {"name": "CPUExecutionProvider", "requested": "CPUExecutionProvider"},
        "settings": {"batch": 1, "prompt_len": 512, "gen_len": 128},
        "metrics": {
            "ttft_ms": {"p50": 876.3},
            "prefill_tokens_per_s": {"mean": 584.25},
            "decode_tokens_per_s": {"mean": 26.47},
            "per_token_ms": {"p50": 37.8, "p90": 41.2, "p99": 55.1},
            "e2e_ms": {"p50": 5712.4},
            "peak_rss_bytes": 812 * 2**20,
        },
    }
    monkeypatch.setenv("COLUMNS", "80")
    t = fitted_table("aia bench: smollm2-135m (random weights)", genbench._COLUMNS,
                     [genbench._row(record)])  # fmt: skip
    console = Console(width=80, record=True)
    console.print(t)
    text = console.export_text()
    assert "(random weights)" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "876.3" in text and "584.2" in text  # whole numbers, not 876./3


def test_settings_every_row_shares_go_to_the_title(mm):
    """threads differ, batch and device do not: only threads stays a column."""
    r = invoke("bench", mm, "-n", "10", "--warmup", "0", "--threads", "1,2")
    assert r.exit_code == 0, r.output
    title = next(line for line in r.stdout.splitlines() if line.startswith("aia bench:"))
    assert "batch 1" in title and "device cpu" in title
    header = next(line for line in r.stdout.splitlines() if line.startswith("┃"))
    cells = [c.strip() for c in header.strip("┃").split("┃")]
    assert "threads" in cells and "batch" not in cells and "device" not in cells
    assert [row[1] for row in table_rows(r.stdout)] == ["1", "2"]


def test_generation_table_takes_columns(monkeypatch):
    from rich.console import Console

    from aialliance_cli.cli import genbench
    from aialliance_cli.cli.output import fitted_table
    from aialliance_cli.errors import BadInputError

    assert genbench.check_generation_columns(["decode", "threads", "decode"]) == [
        "decode",
        "threads",
    ]
    with pytest.raises(BadInputError, match="text-generation table; choose from threads"):
        genbench.check_generation_columns(["p50"])
    record = {
        "settings": {"batch": 1, "prompt_len": 8, "gen_len": 3, "intra_op_threads": 2},
        "metrics": {"decode_tokens_per_s": {"mean": 26.47}, "ttft_ms": {"p50": 87.3}},
    }
    monkeypatch.setenv("COLUMNS", "80")
    t = fitted_table(
        "t",
        genbench._columns([record], threads=True),
        [genbench._row(record, threads=True)],
        chosen=["decode", "threads"],
    )
    console = Console(width=80, record=True)
    console.print(t)
    header = next(line for line in console.export_text().splitlines() if "┃" in line)
    assert [c.strip() for c in header.strip().strip("┃").split("┃")] == ["decode t/s", "threads"]


def test_generation_bench_refuses_table_columns_of_the_other_kind():
    r = invoke("bench", "smollm2-135m", "--random-weights", "--columns", "p50")
    assert r.exit_code == 2, r.output
    assert "text-generation table" in r.output and "decode" in r.output
