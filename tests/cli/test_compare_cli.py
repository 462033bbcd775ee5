"""`aia compare` through Typer's CliRunner: exit codes, --json, --csv, --plot, --html."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.results.tabular import CSV_COLUMNS

RESULTS = Path(__file__).resolve().parent.parent / "fixtures" / "results"
VAD = RESULTS / "silero-vad.jsonl"
VAD_RERUN = RESULTS / "silero-vad-rerun.jsonl"
MINILM = RESULTS / "minilm.jsonl"


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, ["compare", *map(str, args)])


def err(res: Any) -> str:
    """stderr with rich's line wrapping undone (words joined by single spaces)."""
    return " ".join(res.stderr.split())


def err_nospace(res: Any) -> str:
    """stderr without any whitespace, to find paths that rich may have folded."""
    return "".join(res.stderr.split())


def slower_copy(tmp_path: Path, scale: float = 1.5, name: str = "new.jsonl") -> Path:
    """The first silero-vad result with latencies x scale and a tight CI, as a file."""
    rec = json.loads(VAD.read_text(encoding="utf-8").splitlines()[0])
    rec = copy.deepcopy(rec)
    lat = rec["metrics"]["latency_ms"]
    for k in ("min", "mean", "p50", "p90", "p95", "p99", "max", "std"):
        lat[k] *= scale
    lat["median_ci95"] = [lat["p50"] * 0.995, lat["p50"] * 1.005]
    rec["metrics"]["throughput_per_s"] /= scale
    rec["metrics"]["samples_per_s"] /= scale
    path = tmp_path / name
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    return path


def test_json_output() -> None:
    res = invoke(VAD, VAD_RERUN, MINILM, "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["groups"] == ["silero-vad", "all-minilm-l6-v2"]
    assert [r["verdict"] for r in data["rows"]] == [
        "baseline",
        "baseline",
        "slower",
        "baseline",
        "faster",
        "faster",
    ]
    assert data["rows"][2]["source"].endswith("silero-vad-rerun.jsonl#1")
    assert data["skipped"] == []


def test_csv_output_adds_the_verdicts() -> None:
    res = invoke(MINILM, "--csv")
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0])[: len(CSV_COLUMNS)] == list(CSV_COLUMNS)
    assert [r["compare_verdict"] for r in rows] == ["baseline", "faster", "faster"]
    assert rows[0]["compare_ratio"] == "" and float(rows[1]["compare_ratio"]) > 1


def test_table_and_plot() -> None:
    res = invoke(VAD, VAD_RERUN, "--plot")
    assert res.exit_code == 0, res.stderr
    assert "silero-vad" in res.stdout and "slower" in res.stdout and "baseline" in res.stdout
    assert "samples/s at the median" in res.stdout and "█" in res.stdout


def test_gate_fails_with_exit_3(tmp_path: Path) -> None:
    new = slower_copy(tmp_path, 1.5)
    res = invoke(VAD, new, "--fail-if-slower", "10")
    assert res.exit_code == 3
    assert "slower than the baseline by more than 10%" in err(res)
    assert "50.0% slower" in err(res)
    res = invoke(VAD, new, "--fail-if-slower", "10", "--json")
    assert res.exit_code == 3
    gate = json.loads(res.stdout)["gate"]
    assert gate["failed"] and len(gate["regressions"]) == 1


def test_gate_passes_within_the_percentage_or_the_noise(tmp_path: Path) -> None:
    assert invoke(VAD, slower_copy(tmp_path, 1.5), "--fail-if-slower", "60").exit_code == 0
    assert invoke(VAD, slower_copy(tmp_path, 1.001), "--fail-if-slower", "0").exit_code == 0


def test_baseline_options(tmp_path: Path) -> None:
    new = slower_copy(tmp_path, 1.5)
    for baseline, kind in (
        (new, "file"),
        ("vm", "machine"),
        ("cpu", "ep"),
        ("CPUExecutionProvider", "ep"),
    ):
        res = invoke(VAD, new, "--baseline", baseline, "--json")
        assert res.exit_code == 0, res.stderr
        assert json.loads(res.stdout)["baseline_kind"] == kind


def test_unknown_baseline_exits_2_with_what_is_there() -> None:
    res = invoke(VAD, "--baseline", "gpu-box-7")
    assert res.exit_code == 2
    assert "gpu-box-7" in err(res) and "machines: vm" in err(res) and "EPs: cpu" in err(res)


def test_missing_and_non_json_files_exit_2(tmp_path: Path) -> None:
    res = invoke(tmp_path / "missing.jsonl")
    assert res.exit_code == 2 and "does not exist" in err(res)
    junk = tmp_path / "junk.txt"
    junk.write_text("this is not json\n", encoding="utf-8")
    res = invoke(VAD, junk)
    assert res.exit_code == 2 and "not a JSON Lines file" in err(res)


def test_bad_lines_are_skipped_with_a_warning(tmp_path: Path) -> None:
    good = VAD.read_text(encoding="utf-8").splitlines()
    other = json.loads(good[0])
    other["schema"] = "aia.result/9"
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "\n".join([json.dumps(other), good[0], good[1][:100]]) + "\n", encoding="utf-8"
    )
    res = invoke(mixed, "--json")
    assert res.exit_code == 0, res.stderr
    assert f"{mixed}:1:" in err_nospace(res) and f"{mixed}:3:" in err_nospace(res)
    data = json.loads(res.stdout)
    assert len(data["rows"]) == 1 and len(data["skipped"]) == 2


def test_no_usable_records_exit_2(tmp_path: Path) -> None:
    other = json.loads(VAD.read_text(encoding="utf-8").splitlines()[0])
    other["schema"] = "aia.result/2"
    path = tmp_path / "future.jsonl"
    path.write_text(json.dumps(other) + "\n", encoding="utf-8")
    res = invoke(path)
    assert res.exit_code == 2 and "no usable results" in err(res)


@pytest.mark.parametrize("args", [("--json", "--csv"), ("--fail-if-slower", "-5")])
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    assert invoke(VAD, *args).exit_code == 2


def test_html_report_is_written(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    res = invoke(VAD, VAD_RERUN, MINILM, "--html", out)
    assert res.exit_code == 0, res.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<tr data-verdict=") == 6 and page.count("<svg") == 4


def test_table_prints_the_ratio_with_its_direction(tmp_path: Path) -> None:
    new = slower_copy(tmp_path, 1.5)
    res = invoke(VAD, new, "--plot")
    assert res.exit_code == 0, res.stderr
    assert "0.67x ↓" in res.stdout and "↓ slower" in " ".join(res.stdout.split())
