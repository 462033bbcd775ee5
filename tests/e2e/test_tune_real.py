"""`aia tune` end to end: real sessions in worker processes, real records, run/bench use them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

runner = CliRunner()


def mlp(path: Path, scale: float = 1.0, seed: int = 0) -> Path:
    """x [batch, 64] -> MatMul -> Tanh -> MatMul -> y [batch, 32]; ``scale`` breaks it."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((64, 256)).astype(np.float32) * 0.1 * scale
    w2 = rng.standard_normal((256, 32)).astype(np.float32) * 0.1 * scale
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["a"]),
            helper.make_node("Tanh", ["a"], ["b"]),
            helper.make_node("MatMul", ["b", "w2"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    mlp(tmp_path / "mlp.onnx")
    mlp(tmp_path / "broken.onnx", scale=1.5)  # the same graph, every weight x1.5
    path = tmp_path / "mlp.yaml"
    path.write_text(
        "schema: aia.profile/1\nname: mlp\nmodel: mlp.onnx\ninputs: {dims: {batch: 1}}\n"
        "variants:\n  broken: {model: broken.onnx}\n",
        "utf-8",
    )
    return path


def _tune(args: list[str]) -> dict:
    res = runner.invoke(app, ["tune", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.slow
def test_tune_15s_finds_a_config_no_slower_than_default(profile: Path) -> None:
    out = _tune([str(profile), "--budget", "15"])
    assert out["elapsed_s"] <= 15 * 1.1 + 1 or out["trials"] == 1  # a starved machine
    winner = out["winner"]
    assert winner["config"]["precision"] != "variant:broken"
    # The CI-based verdict: never measurably slower than ONNX Runtime's default.
    assert winner["verdict_vs_default"] in ("faster", "within noise")
    for row in out["ranked"]:
        if row["config"]["precision"] == "variant:broken":
            assert row["status"] == "rejected"


@pytest.mark.slow
def test_tune_rejects_a_broken_variant_and_shows_its_speed(profile: Path) -> None:
    # A narrow space so that the broken variant is tried even on a loaded machine;
    # the final stops early once the medians are known.
    out = _tune(
        [str(profile), "--budget", "40", "--precision", "fp32,variant:broken", "--threads", "0"]
    )
    rows = {r["label"]: r for r in out["ranked"]}
    broken = [r for r in out["ranked"] if r["config"]["precision"] == "variant:broken"]
    assert broken, f"the broken variant was not tried: {list(rows)} {out['notes']}"
    assert broken[0]["status"] == "rejected"
    assert broken[0]["accuracy"]["value"] < 0.99 and broken[0]["latency_ms"]["p50"] > 0
    winner = out["winner"]
    assert winner["config"]["precision"] == "fp32"
    assert winner["verdict_vs_default"] in ("faster", "within noise")
    assert out["record"]["target"] == "mlp" and Path(out["record_path"]).is_file()
    shown = runner.invoke(app, ["tune", "--show", str(profile), "--json"])
    assert shown.exit_code == 0
    assert [r["target"] for r in json.loads(shown.stdout)] == ["mlp"]
    assert json.loads(shown.stdout)[0]["applies_here"] is True


@pytest.mark.slow
def test_tune_for_throughput_searches_batch_sizes(profile: Path) -> None:
    out = _tune(
        [str(profile), "--objective", "throughput", "--budget", "20", "--precision", "fp32"]
    )
    assert out["objective"] == "throughput" and out["cost"] == "ms per sample"
    assert out["space"]["batches"][1:] == [4, 8, 16, 32]
    batches = {r["config"]["batch"] for r in out["ranked"] if r["status"] == "ok"}
    assert batches <= {None, 4, 8, 16, 32}
    assert out["winner"]["verdict_vs_default"] in ("faster", "within noise")


def _write_record(model: Path, winner: dict, **extra) -> None:
    from aialliance_cli.hardware import detect
    from aialliance_cli.tune import records
    from aialliance_cli.tune.space import Candidate

    inv = detect()
    cand = Candidate.from_dict(winner)
    fp = records.hardware_fingerprint(inv)
    rec = records.TunedRecord(
        target=model.stem,
        model_sha256=records.model_sha256(model),
        fingerprint_id=records.fingerprint_id(fp),
        fingerprint=fp,
        onnxruntime=records.ort_build(inv),
        objective="latency",
        winner=cand.to_dict(),
        label=cand.label(),
        description=cand.describe(),
        p50_ms=1.0,
        p50_ci95=[0.9, 1.1],
        speedup_default=1.7,
        verdict_default="faster",
        speedup_plan=1.7,
        verdict_plan="faster",
        accuracy={"metric": "1 - relative error", "value": 0.995, "passed": True},
        load=None,
        created="2026-12-01T10:00:00+00:00",
        **extra,
    )
    records.save_record(rec)


def test_run_and_bench_apply_a_matching_record_and_no_tuned_does_not(tmp_path: Path) -> None:
    model = mlp(tmp_path / "mlp.onnx")
    _write_record(model, {"threads": 1, "spinning": False, "precision": "int8-dynamic"})

    res = runner.invoke(app, ["bench", str(model), "-n", "5", "--warmup", "1", "--json"])
    assert res.exit_code == 0, res.output
    (r,) = json.loads(res.stdout)  # bench --json: always a list
    assert r["tuned"]["applied"] is True and r["tuned"]["config"]["threads"] == 1
    assert r["settings"]["intra_op_threads"] == 1
    assert r["model"]["variant"] == "int8-dynamic" and r["model"]["path"] != str(model)
    assert "tuned 2026-12-01: int8 dynamic, 1 threads, spinning off, 1.7x over default" in (
        res.stderr
    )

    res = runner.invoke(
        app, ["bench", str(model), "-n", "5", "--warmup", "1", "--json", "--no-tuned"]
    )
    assert res.exit_code == 0, res.output
    (r,) = json.loads(res.stdout)  # bench --json: always a list
    assert "tuned" not in r and r["settings"]["intra_op_threads"] == 0
    assert "variant" not in r["model"]

    res = runner.invoke(app, ["run", str(model), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["tuned"]["applied"] is True and r["settings"]["intra_op_threads"] == 1
    res = runner.invoke(app, ["run", str(model), "--json", "--no-tuned"])
    assert "tuned" not in json.loads(res.stdout)

    # aia detect lists the records that apply to this machine.
    res = runner.invoke(app, ["detect", "--json"])
    assert res.exit_code == 0, res.output
    assert [t["target"] for t in json.loads(res.stdout)["tuned"]] == ["mlp"]

    # What the user names wins, with a note.
    res = runner.invoke(app, ["bench", str(model), "-n", "3", "--threads", "2", "--json"])
    (r,) = json.loads(res.stdout)  # bench --json: always a list
    assert r["tuned"]["applied"] is False and r["settings"]["intra_op_threads"] == 2
    assert "--threads given" in r["tuned"]["notes"][0]


def test_a_record_that_no_longer_matches_is_ignored_with_a_note(tmp_path: Path) -> None:
    model = mlp(tmp_path / "mlp.onnx")
    _write_record(model, {"threads": 1})
    mlp(model, seed=1)  # the model changed since it was tuned
    res = runner.invoke(app, ["bench", str(model), "-n", "3", "--warmup", "0", "--json"])
    assert res.exit_code == 0, res.output
    (r,) = json.loads(res.stdout)  # bench --json: always a list
    assert r["tuned"]["applied"] is False and "model changed" in r["tuned"]["notes"][0]
    assert r["settings"]["intra_op_threads"] == 0
    assert "model changed" in res.stderr

    from aialliance_cli.tune import records

    records.clear_records()
    mlp(model)  # back to the tuned content, but the record says another ORT build
    _write_record(model, {"threads": 1})
    path, rec = records.list_records()[0]
    data = json.loads(path.read_text())
    data["onnxruntime"] = "onnxruntime==0.1.0"
    path.write_text(json.dumps(data))
    res = runner.invoke(app, ["run", str(model), "--json"])
    r = json.loads(res.stdout)
    assert r["tuned"]["applied"] is False and "onnxruntime==0.1.0" in r["tuned"]["notes"][0]


@pytest.fixture
def shared_models(shared_cache, monkeypatch):
    monkeypatch.setenv("AIA_CACHE_DIR", str(shared_cache))
    return shared_cache


@pytest.mark.slow
def test_tune_the_default_profile(shared_models) -> None:
    out = _tune(["--budget", "60", "--precision", "fp32,int8-dynamic"])
    assert out["target"] == "all-minilm-l6-v2" and out["accuracy_metric"] == "cosine"
    assert out["winner"]["verdict_vs_default"] in ("faster", "within noise")
    for row in out["ranked"]:
        if row["config"]["precision"] == "int8-dynamic" and row["status"] != "failed":
            acc = row["accuracy"]
            assert acc["metric"] == "cosine" and acc["samples"] == 16  # 16 real sentences
            assert acc["inputs"] == "sentences"
            assert row["status"] == ("ok" if row["accuracy"]["value"] >= 0.99 else "rejected")


@pytest.mark.slow
def test_sigterm_keeps_what_was_measured_and_writes_no_record(profile: Path, tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aialliance_cli", "tune", str(profile), "--budget", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    # Wait until the second trial starts (the reference has a measurement by then).
    seen = ""
    deadline = time.monotonic() + 90
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if line.startswith("[2]"):
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, seen + err
    assert "fp32 cpu" in out and "no record was written" in seen + err
    from aialliance_cli.tune import records

    assert records.list_records() == []
