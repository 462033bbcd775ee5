"""Flattening, CSV columns and comparisons over real recorded results (tests/fixtures/results)."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from aialliance_cli.errors import BadInputError
from aialliance_cli.results.compare import (
    compare,
    config_of,
    load_many,
    regressions,
    short_labels,
    stats_of,
)
from aialliance_cli.results.html import render_html
from aialliance_cli.results.tabular import CSV_COLUMNS, flatten, write_csv

RESULTS = Path(__file__).resolve().parent.parent / "fixtures" / "results"
DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "results.md"
VAD = RESULTS / "silero-vad.jsonl"
VAD_RERUN = RESULTS / "silero-vad-rerun.jsonl"
MINILM = RESULTS / "minilm.jsonl"
PPOCR = RESULTS / "ppocr-det.jsonl"


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def record(path: Path, n: int = 0) -> dict[str, Any]:
    return json.loads(lines(path)[n])


def variant(
    rec: dict[str, Any],
    scale: float = 1.0,
    *,
    tight: bool = False,
    hostname: str | None = None,
    cpu: str | None = None,
    ep: str | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """A copy of a real record with its latencies times ``scale`` (throughput divided)."""
    out = copy.deepcopy(rec)
    out.pop("_source", None)
    lat = out["metrics"]["latency_ms"]
    for k in ("min", "mean", "p50", "p90", "p95", "p99", "max", "std"):
        lat[k] *= scale
    if tight:  # +-0.5% around the median
        lat["median_ci95"] = [lat["p50"] * 0.995, lat["p50"] * 1.005]
    elif lat["median_ci95"] is not None:
        lat["median_ci95"] = [c * scale for c in lat["median_ci95"]]
    for k in ("throughput_per_s", "samples_per_s"):
        out["metrics"][k] /= scale
    if hostname is not None:
        out["machine"]["hostname"] = hostname
    if cpu is not None:
        out["machine"]["cpu"]["model_name"] = cpu
    if ep is not None:
        out["ep"]["name"] = out["ep"]["requested"] = ep
    if profile is not None:
        out["profile"]["name"] = profile
    return out


def row_of(table: Any, index: int) -> Any:
    return next(r for r in table.rows if r.index == index)


# ----------------------------------------------------------------------------- CSV


def test_csv_columns_are_stable_and_in_order() -> None:
    assert CSV_COLUMNS == (
        "timestamp",
        "hostname",
        "cpu_model",
        "profile",
        "model",
        "ep",
        "device",
        "environment",
        "threads",
        "batch",
        "dims",
        "scenario",
        "status",
        "iterations",
        "latency_ms_min",
        "latency_ms_mean",
        "latency_ms_p50",
        "latency_ms_p90",
        "latency_ms_p95",
        "latency_ms_p99",
        "latency_ms_max",
        "latency_ms_std",
        "median_ci95_low",
        "median_ci95_high",
        "throughput_per_s",
        "samples_per_s",
        "session_create_s",
        "peak_rss_bytes",
        "cpu_percent",
        "energy_j_per_inference",
        "avg_power_w",
        "gflops_per_s",
        "coverage_flops_pct",
        "loadgen_verdict",
        "loadgen_qps",
        "error",
        "variant",
        "agreement",
        "agreement_passed",
    )


def test_docs_list_every_csv_column_in_order() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## CSV columns") :]
    positions = [section.find(f"`{c}`") for c in CSV_COLUMNS]
    assert all(p >= 0 for p in positions), [
        c for c, p in zip(CSV_COLUMNS, positions, strict=True) if p < 0
    ]
    assert positions == sorted(positions)


def test_flatten_a_real_record() -> None:
    rec = record(MINILM)
    flat = flatten(rec)
    assert list(flat) == list(CSV_COLUMNS)
    lat = rec["metrics"]["latency_ms"]
    assert flat["hostname"] == "vm"
    assert flat["cpu_model"] == rec["machine"]["cpu"]["model_name"]
    assert flat["profile"] == "all-minilm-l6-v2"
    assert flat["ep"] == "CPUExecutionProvider"
    assert flat["device"] == "cpu"
    assert flat["threads"] == 0
    assert flat["batch"] == 1
    assert flat["dims"] == "batch_size=1;sequence_length=128"
    assert flat["status"] == "ok"
    assert flat["iterations"] == 30
    assert flat["latency_ms_p50"] == lat["p50"]
    assert flat["latency_ms_p99"] == lat["p99"]
    assert (flat["median_ci95_low"], flat["median_ci95_high"]) == tuple(lat["median_ci95"])
    assert flat["throughput_per_s"] == rec["metrics"]["throughput_per_s"]
    assert flat["coverage_flops_pct"] == 100.0  # from ep.placement.share_flops_requested
    # Not measured in this record: empty cells, never an error.
    for col in (
        "environment",
        "scenario",
        "energy_j_per_inference",
        "avg_power_w",
        "loadgen_verdict",
        "loadgen_qps",
        "error",
    ):
        assert flat[col] == "", col


def test_flatten_fields_that_other_commands_add() -> None:
    rec = record(VAD)
    rec["environment"] = {"name": "ort-openvino", "python": "/envs/ov/bin/python"}
    rec["settings"]["scenario"] = "server"
    rec["metrics"]["energy"] = {
        "joules_per_inference": 0.25,
        "cpu_avg_w": 30.0,
        "gpu_avg_w": 12.5,
        "available": True,
    }
    rec["metrics"]["flops"] = {"total": 2_000_000_000}
    rec["metrics"]["loadgen"] = {"scenario": "server", "valid": False, "qps": 123.5}
    rec["something_new"] = {"nested": [1, 2]}
    flat = flatten(rec)
    assert flat["environment"] == "ort-openvino"
    assert flat["scenario"] == "server"
    assert flat["energy_j_per_inference"] == 0.25
    assert flat["avg_power_w"] == 42.5
    assert flat["gflops_per_s"] == pytest.approx(2.0 * rec["metrics"]["throughput_per_s"])
    assert flat["loadgen_verdict"] == "INVALID"
    assert flat["loadgen_qps"] == 123.5


def test_flatten_an_almost_empty_record() -> None:
    flat = flatten({"schema": "aia.result/1", "metrics": None, "machine": "odd"})
    assert list(flat) == list(CSV_COLUMNS)
    assert set(flat.values()) == {""}


def test_write_csv_header_and_rows() -> None:
    recs = [json.loads(line) for line in lines(MINILM)]
    buf = io.StringIO()
    assert write_csv(recs, buf) == 3
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert buf.getvalue().splitlines()[0] == ",".join(CSV_COLUMNS)
    assert [r["threads"] for r in rows] == ["0", "1", "1"]
    assert [r["batch"] for r in rows] == ["1", "1", "2"]
    assert float(rows[2]["latency_ms_p50"]) == recs[2]["metrics"]["latency_ms"]["p50"]


def test_write_csv_extra_columns_come_last() -> None:
    buf = io.StringIO()
    write_csv([record(VAD)], buf, extra=[{"compare_verdict": "baseline", "compare_ratio": None}])
    header, row = list(csv.reader(io.StringIO(buf.getvalue())))
    assert header == [*CSV_COLUMNS, "compare_verdict", "compare_ratio"]
    assert row[-2:] == ["baseline", ""]


# ----------------------------------------------------------------------------- loading


def test_load_many_skips_truncated_and_other_schema_lines(tmp_path: Path) -> None:
    good = lines(VAD)
    other = json.loads(good[1])
    other["schema"] = "aia.result/2"
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join([good[0], good[1][: len(good[1]) // 2], json.dumps(other), good[1], ""]),
        encoding="utf-8",
    )
    records, skipped = load_many([path])
    assert len(records) == 2
    assert len(skipped) == 2
    assert f"{path}:2:" in skipped[0] and "truncated" in skipped[0]
    assert f"{path}:3:" in skipped[1] and "aia.result/2" in skipped[1]
    assert records[0]["_source"] == {"path": str(path), "index": 1}


def test_load_many_refuses_missing_and_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        load_many([tmp_path / "nope.jsonl"])
    junk = tmp_path / "junk.jsonl"
    junk.write_text("timestamp,hostname\n2026,vm\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="not a JSON Lines file"):
        load_many([junk])


def test_load_many_skips_run_results(tmp_path: Path) -> None:
    run = record(VAD)
    run["kind"] = "run"
    run["metrics"] = {"latency_ms": 0.3}
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(run) + "\n" + lines(VAD)[0] + "\n", encoding="utf-8")
    records, skipped = load_many([path])
    assert len(records) == 1 and "'run' result" in skipped[0]


# ----------------------------------------------------------------------------- verdicts


def test_recorded_results_default_baseline_is_the_first_file() -> None:
    records, skipped = load_many([VAD, VAD_RERUN])
    assert skipped == []
    table = compare(records)
    assert table.baseline_kind == "default"
    assert [r.verdict for r in table.rows] == ["baseline", "baseline", "slower"]
    rerun = table.rows[2]
    # Like with like: the rerun (threads 1) is compared with threads 1, not threads 2.
    assert "threads 1" in rerun.baseline
    assert rerun.ratio == pytest.approx(
        records[0]["metrics"]["latency_ms"]["p50"] / records[2]["metrics"]["latency_ms"]["p50"]
    )
    assert rerun.ratio < 1 and rerun.change_pct > 0


def test_one_file_default_baseline_is_the_first_record() -> None:
    table = compare(load_many([MINILM])[0])
    assert [r.verdict for r in table.rows] == ["baseline", "faster", "faster"]
    # Batch 2 against batch 1 is judged per sample: 153 ms for two beats 92 ms for one.
    b2 = table.rows[2]
    assert b2.batch == 2
    recs = table.records
    p50_1 = recs[0]["metrics"]["latency_ms"]["p50"]
    p50_2 = recs[2]["metrics"]["latency_ms"]["p50"]
    assert b2.ratio == pytest.approx(p50_1 / (p50_2 / 2))


@pytest.mark.parametrize(
    ("scale", "verdict"),
    [(1.5, "slower"), (1.001, "within noise"), (0.5, "faster")],
)
def test_scaled_copy_of_a_real_record(scale: float, verdict: str) -> None:
    base = record(VAD)
    table = compare([base, variant(base, scale, tight=True)])
    assert table.rows[0].verdict == "baseline"
    other = table.rows[1]
    assert other.verdict == verdict
    assert other.ratio == pytest.approx(1 / scale)
    assert other.change_pct == pytest.approx((scale - 1) * 100)
    assert other.throughput_ratio == pytest.approx(1 / scale)


def test_without_confidence_intervals_nothing_is_claimed() -> None:
    base = record(PPOCR)  # 5 samples: no CI of the median
    assert base["metrics"]["latency_ms"]["median_ci95"] is None
    table = compare([base, variant(base, 2.0)])
    assert table.rows[1].verdict == "within noise"
    assert table.rows[1].ratio == pytest.approx(0.5)
    assert regressions(table, 10) == []


def test_regressions_need_both_the_percentage_and_the_verdict() -> None:
    base = record(VAD)
    recs = [
        base,
        variant(base, 1.5, tight=True, hostname="a"),
        variant(base, 1.001, tight=True, hostname="b"),
        variant(base, 0.5, tight=True, hostname="c"),
    ]
    table = compare(recs)
    assert [r.hostname for r in regressions(table, 40)] == ["a"]
    assert regressions(table, 60) == []
    assert [r.hostname for r in regressions(table, 0)] == ["a"]
    with pytest.raises(BadInputError):
        regressions(table, -1)
    with pytest.raises(BadInputError):
        regressions(table, math.nan)


def test_baseline_by_machine() -> None:
    base = record(VAD)
    other = variant(base, 1.5, tight=True, hostname="box2", cpu="AMD EPYC 7B13")
    for name in ("box2", "BOX2", "AMD EPYC 7B13", "epyc"):
        table = compare([base, other], name)
        assert table.baseline_kind == "machine"
        assert row_of(table, 1).verdict == "baseline"
        vm = row_of(table, 0)
        assert vm.verdict == "faster" and vm.ratio == pytest.approx(1.5)


def test_baseline_by_ep_short_or_canonical_name() -> None:
    base = record(VAD)
    ov = variant(base, 0.5, tight=True, ep="OpenVINOExecutionProvider")
    for name in ("openvino", "OpenVINOExecutionProvider", "cpu"):
        table = compare([base, ov], name)
        assert table.baseline_kind == "ep"
    table = compare([base, ov], "openvino")
    assert row_of(table, 1).verdict == "baseline"
    assert row_of(table, 0).verdict == "slower"
    assert row_of(table, 0).ep_short == "cpu" and row_of(table, 1).ep_short == "openvino"


def test_baseline_by_environment_name_or_ep_at_environment() -> None:
    base = record(VAD)
    ov = variant(base, 0.5, tight=True, ep="OpenVINOExecutionProvider")
    ov["environment"] = {"name": "ov", "python": "/envs/ov/bin/python"}
    for name in ("ov", "openvino@ov", "OpenVINOExecutionProvider@ov"):
        table = compare([base, ov], name)
        assert row_of(table, 1).verdict == "baseline", name
        assert row_of(table, 0).verdict == "slower", name
    with pytest.raises(BadInputError, match="matches no result"):
        compare([base, ov], "cuda@ov")


def test_baseline_by_file_in_the_inputs_or_not() -> None:
    records, _ = load_many([VAD, VAD_RERUN])
    table = compare(records, str(VAD_RERUN))
    assert table.baseline_kind == "file"
    assert [r.verdict for r in table.rows][0] == "baseline"
    assert table.rows[0].source.endswith("silero-vad-rerun.jsonl#1")
    assert [r.verdict for r in table.rows[1:]] == ["faster", "faster"]
    # A baseline file not among the inputs is read and added.
    alone = compare(load_many([VAD])[0], str(VAD_RERUN))
    assert [r.verdict for r in alone.rows] == ["baseline", "faster", "faster"]


def test_several_baseline_candidates_are_matched_like_for_like() -> None:
    t1, t2 = (record(VAD, i) for i in (0, 1))
    box_t1 = variant(t1, 1.5, tight=True, hostname="box2")
    box_t2 = variant(t2, 1.5, tight=True, hostname="box2")
    table = compare([t1, t2, box_t2, box_t1], "vm")
    assert row_of(table, 2).baseline == config_of(t2).label()
    assert row_of(table, 3).baseline == config_of(t1).label()
    assert "threads 2" in row_of(table, 2).baseline


def test_candidate_ties_go_to_the_first_record() -> None:
    t1 = record(VAD)
    first = variant(t1, 1.0, hostname="box2")
    second = variant(t1, 3.0, hostname="box2")
    table = compare([first, second, variant(t1, 1.5, tight=True, hostname="vm")], "box2")
    assert row_of(table, 2).ratio == pytest.approx(1 / 1.5)  # against the first, not x3


def test_groups_without_a_baseline_candidate() -> None:
    vad = record(VAD)
    recs = [vad, variant(vad, 0.8, tight=True, ep="OpenVINOExecutionProvider"), record(MINILM)]
    table = compare(recs, "openvino")
    assert table.groups == ("silero-vad", "all-minilm-l6-v2")
    assert table.group_rows("all-minilm-l6-v2")[0].verdict == "no baseline"


def test_failed_records_are_never_the_baseline() -> None:
    vad = record(VAD)
    failed = copy.deepcopy(vad)
    failed.update(status="failed", error="session build failed")
    failed["metrics"] = {"iterations": 0}
    table = compare([failed, vad, variant(vad, 1.5, tight=True)])
    assert [r.verdict for r in table.rows] == ["baseline", "failed", "slower"]
    assert row_of(table, 1).verdict == "baseline"  # the first usable record


def test_unknown_baseline_lists_what_there_is() -> None:
    records, _ = load_many([VAD])
    with pytest.raises(BadInputError) as err:
        compare(records, "tensorrt-box")
    msg = str(err.value)
    assert "tensorrt-box" in msg and "cpu" in msg
    assert "vm (Intel(R) Xeon(R) Processor, 2 threads)" in msg
    with pytest.raises(BadInputError):
        compare(records, "tensorrt")  # a known EP that no record used


def test_stats_rebuilt_from_a_record() -> None:
    rec = record(VAD)
    stats = stats_of(rec)
    lat = rec["metrics"]["latency_ms"]
    assert stats is not None and stats.p50 == lat["p50"] and stats.count == lat["count"]
    assert stats.median_ci95 == tuple(lat["median_ci95"])
    half = stats_of(rec, 0.5)
    assert half is not None and half.p50 == lat["p50"] / 2


def test_short_labels_keep_what_differs() -> None:
    records, _ = load_many([VAD, VAD_RERUN])
    table = compare(records)
    labels = short_labels(table.rows)
    assert labels[1] == "threads 2 · batch 1"
    assert labels[0].endswith("silero-vad.jsonl#1") and labels[2].endswith("rerun.jsonl#1")


def test_table_to_dict_is_json() -> None:
    table = compare(load_many([VAD, VAD_RERUN, MINILM, PPOCR])[0])
    data = json.loads(json.dumps(table.to_dict()))
    assert len(data["rows"]) == 7
    assert {r["verdict"] for r in data["rows"]} <= {"baseline", "slower", "faster"}


# ----------------------------------------------------------------------------- HTML


def test_html_is_offline_and_escapes_text() -> None:
    vad = record(VAD)
    evil = variant(vad, 1.5, tight=True, hostname="<script>alert(1)</script>", profile="silero-vad")
    evil["machine"]["cpu"]["model_name"] = 'Xeon "quoted" & <b>bold</b>'
    page = render_html(compare([vad, evil]), notes=["skipped <img src=x>"])
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "&lt;img src=x&gt;" in page
    assert "http:" not in page and "https:" not in page and "url(" not in page
    assert page.count("<svg") == 2 and page.count("<tr data-verdict=") == 2
    assert "<details" in page


def test_loadgen_offline_records_compare_by_throughput_without_a_claim() -> None:
    vad = record(VAD)
    offline = []
    for qps in (1000.0, 500.0):
        rec = copy.deepcopy(vad)
        rec["settings"]["scenario"] = "offline"
        del rec["metrics"]["latency_ms"]  # LoadGen's offline latencies are not kept
        rec["metrics"].update(
            samples_per_s=qps,
            throughput_per_s=qps,
            loadgen={"scenario": "offline", "valid": True, "qps": qps},
        )
        offline.append(rec)
    table = compare(offline)
    assert [r.verdict for r in table.rows] == ["baseline", "within noise"]
    assert table.rows[1].ratio == pytest.approx(0.5)
    assert table.rows[1].p50 is None and table.rows[1].settings.endswith("offline")
    assert flatten(offline[0])["loadgen_verdict"] == "VALID"


def test_a_failed_worker_result_is_shown_as_failed() -> None:
    vad = record(VAD)
    failed = copy.deepcopy(vad)
    failed.update(
        status="failed",
        error="OpenVINO EP missing",
        metrics={},
        environment={"name": "ov", "python": "/envs/ov/bin/python"},
    )
    failed["ep"] = {
        "requested": "OpenVINOExecutionProvider",
        "name": None,
        "options": {},
        "providers": [],
        "fallbacks": [],
    }
    table = compare([vad, failed])
    row = row_of(table, 1)
    assert row.verdict == "failed" and row.ep_short == "openvino" and row.environment == "ov"
    assert "env ov" in row.settings
    flat = flatten(failed)
    assert flat["status"] == "failed" and flat["error"] == "OpenVINO EP missing"
    assert flat["environment"] == "ov" and flat["latency_ms_p50"] == ""


def test_flatten_reads_the_efficiency_block() -> None:
    rec = record(MINILM)
    rec["metrics"]["efficiency"] = {"flops_per_inference": 2889039908, "gflops_per_s": 31.4}
    assert flatten(rec)["gflops_per_s"] == 31.4


# ----------------------------------------------------------------------------- agreement


def test_a_faster_configuration_whose_outputs_differ_is_never_a_win() -> None:
    base = variant(record(MINILM), tight=True)
    base["agreement"] = {"metric": "cosine", "score": 1.0, "passed": True, "min_accuracy": 0.99}
    good = variant(record(MINILM), 0.5, tight=True, ep="OpenVINOExecutionProvider")
    good["agreement"] = {"metric": "cosine", "score": 0.995, "passed": True, "min_accuracy": 0.99}
    bad = variant(record(MINILM), 0.5, tight=True, ep="DnnlExecutionProvider")
    bad["agreement"] = {"metric": "cosine", "score": 0.93, "passed": False, "min_accuracy": 0.99}
    table = compare([base, good, bad])
    assert [r.verdict for r in table.rows] == ["baseline", "faster", "outputs differ"]
    assert row_of(table, 2).ratio == pytest.approx(2.0)  # its speed is still shown
    assert row_of(table, 2).agreement["score"] == 0.93
    assert flatten(bad)["agreement"] == 0.93 and flatten(bad)["agreement_passed"] is False
    assert flatten(record(MINILM))["agreement"] == ""


def test_one_direction_rate_ratio_and_plot_agree_when_the_mean_disagrees() -> None:
    """Issue 11: 1.11x 'within noise' beside throughput falling 5,711 -> 3,646 inf/s (from the
    mean, one long stall) and bars saying the opposite. The rate shown is the median's."""
    from aialliance_cli.results.compare import arrow

    base = variant(record(VAD))
    other = variant(record(VAD), 1 / 1.11)  # 11% faster at the median
    other["metrics"]["latency_ms"]["mean"] = base["metrics"]["latency_ms"]["mean"] * 1.6
    other["metrics"]["throughput_per_s"] = base["metrics"]["throughput_per_s"] / 1.6
    other["metrics"]["samples_per_s"] = base["metrics"]["samples_per_s"] / 1.6
    b, o = compare([base, other]).rows
    assert o.ratio == pytest.approx(1.11) and arrow(o.ratio) == "↑"
    assert o.rate_p50 / b.rate_p50 == pytest.approx(o.ratio)  # the table's rate and the ratio
    assert o.throughput < b.throughput  # the mean-based rate still in JSON, not shown as "the" rate
    assert arrow(0.9) == "↓" and arrow(None) == ""


def test_variants_are_configurations_of_their_own() -> None:
    base = variant(record(MINILM), tight=True)
    base["settings"]["variant"] = "base"
    int8 = variant(record(MINILM), 0.6, tight=True)
    int8["settings"]["variant"] = "int8"
    table = compare([base, int8])
    assert [r.settings.split(" · ")[0] for r in table.rows] == ["variant base", "variant int8"]
    assert config_of(int8).variant == "int8" and config_of(record(MINILM)).variant is None
