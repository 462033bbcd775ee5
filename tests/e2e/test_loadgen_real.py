"""Real MLPerf LoadGen runs around a real ONNX Runtime session on a tiny MatMul model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aialliance_cli.errors import BadInputError, RuntimeFailure
from aialliance_cli.runtime.loadgen import (
    PERCENTILES,
    LoadGenReport,
    normalize_scenario,
    parse_summary,
    run_scenario,
)

pytest.importorskip("mlperf_loadgen")

N_SAMPLES = 32
DIM = 64


@pytest.fixture(scope="module")
def infer():
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((DIM, DIM)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "matmul",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", DIM])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", DIM])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    data = rng.standard_normal((N_SAMPLES, DIM)).astype(np.float32)
    calls: list[int] = []

    def run(indices: list[int]) -> None:
        assert all(0 <= i < N_SAMPLES for i in indices)
        calls.append(len(indices))
        (y,) = sess.run(None, {"X": data[indices]})
        assert y.shape == (len(indices), DIM)

    run.calls = calls
    return run


def _check_common(rep: LoadGenReport, scenario: str) -> None:
    assert rep.scenario == scenario
    assert rep.summary_path.exists() and rep.detail_path.exists()
    assert rep.samples_processed > 0
    assert rep.qps > 0
    assert list(rep.latency_ms) == list(PERCENTILES)
    values = [rep.latency_ms[p] for p in PERCENTILES]
    assert all(v > 0 for v in values)
    assert values == sorted(values)
    assert rep.min_latency_ms <= rep.latency_ms["p50"] <= rep.max_latency_ms
    assert rep.min_latency_ms <= rep.mean_latency_ms <= rep.max_latency_ms
    assert rep.valid == (not rep.invalid_reasons)
    assert rep.raw_summary["Scenario"]
    d = rep.to_dict()
    assert d["scenario"] == scenario and isinstance(d["summary_path"], str)


def test_single_stream(infer, tmp_path: Path) -> None:
    rep = run_scenario(
        infer, scenario="single-stream", total_samples=N_SAMPLES, performance_samples=16,
        min_duration_s=0.5, min_queries=20, log_dir=tmp_path,
    )  # fmt: skip
    _check_common(rep, "single-stream")
    assert rep.query_count == rep.samples_processed >= 20
    assert rep.raw_summary["Scenario"] == "SingleStream"


def test_multi_stream(infer, tmp_path: Path) -> None:
    infer.calls.clear()
    rep = run_scenario(
        infer, scenario="multi-stream", total_samples=N_SAMPLES, performance_samples=N_SAMPLES,
        min_duration_s=0.5, min_queries=10, samples_per_query=4, max_batch=2, log_dir=tmp_path,
    )  # fmt: skip
    _check_common(rep, "multi-stream")
    assert rep.samples_processed == 4 * rep.query_count
    assert max(infer.calls) == 2  # queries of 4 split into batches of max_batch


def test_server_valid_latency_bound(infer, tmp_path: Path) -> None:
    rep = run_scenario(
        infer, scenario="server", total_samples=N_SAMPLES, performance_samples=N_SAMPLES,
        target_qps=200, target_latency_ms=1000, min_duration_s=0.5, min_queries=20,
        server_threads=2, log_dir=tmp_path,
    )  # fmt: skip
    _check_common(rep, "server")
    # A one-second bound is met by a 64x64 MatMul; only early stopping may fail in a short run.
    assert not any("latency constraint" in r for r in rep.invalid_reasons)


def test_server_impossible_latency_is_invalid(infer, tmp_path: Path) -> None:
    rep = run_scenario(
        infer, scenario="server", total_samples=N_SAMPLES, performance_samples=N_SAMPLES,
        target_qps=100, target_latency_ms=0.000001, min_duration_s=0.5, min_queries=10,
        log_dir=tmp_path,
    )  # fmt: skip
    assert rep.samples_processed > 0
    assert rep.valid is False
    assert any("latency constraint not satisfied" in r for r in rep.invalid_reasons)
    assert parse_summary(rep.summary_path)["Result is"] == "INVALID"


def test_offline_qps_matches_samples_over_duration(infer, tmp_path: Path) -> None:
    infer.calls.clear()
    rep = run_scenario(
        infer, scenario="offline", total_samples=N_SAMPLES, performance_samples=N_SAMPLES,
        min_duration_s=0.5, max_batch=8, log_dir=tmp_path,
    )  # fmt: skip
    _check_common(rep, "offline")
    assert rep.query_count == 1
    assert max(infer.calls) == 8
    # LoadGen's samples/s is samples over the one query's latency.
    assert rep.qps == pytest.approx(rep.samples_processed / (rep.max_latency_ms / 1000), rel=0.05)
    assert rep.qps == pytest.approx(rep.samples_processed / rep.duration_s, rel=0.35)
    assert rep.settings["expected_qps"] > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scenario": "batch"}, "Unknown LoadGen scenario"),
        ({"scenario": "server", "target_qps": -5.0}, "target_qps"),
        ({"scenario": "offline", "min_duration_s": 0}, "min_duration_s"),
        ({"scenario": "offline", "performance_samples": 64}, "performance_samples"),
        ({"scenario": "offline", "max_batch": 0}, "max_batch"),
        ({"scenario": "single-stream", "samples_per_query": 4}, "multi-stream"),
        ({"scenario": "server", "target_latency_ms": math.nan}, "target_latency_ms"),
    ],
)
def test_bad_settings_are_bad_input(infer, tmp_path: Path, kwargs: dict, match: str) -> None:
    base = {"total_samples": N_SAMPLES, "min_duration_s": 0.5, "log_dir": tmp_path}
    with pytest.raises(BadInputError, match=match) as exc:
        run_scenario(infer, **{**base, **kwargs})
    assert exc.value.exit_code == 2


def test_scenario_names() -> None:
    assert normalize_scenario("SingleStream") == "single-stream"
    assert normalize_scenario("multi_stream") == "multi-stream"
    assert normalize_scenario("Offline") == "offline"


def test_failing_infer_is_runtime_failure(tmp_path: Path) -> None:
    def broken(indices: list[int]) -> None:
        raise ValueError("boom")

    with pytest.raises(RuntimeFailure, match="boom"):
        run_scenario(
            broken, scenario="offline", total_samples=4, target_qps=100,
            min_duration_s=0.1, log_dir=tmp_path,
        )  # fmt: skip
