"""detect, run, bench, profiles and cache through Typer's CliRunner, with real sessions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import embedding_model, fixed_batch_model, identity_all_dtypes, matmul_model  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def as_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one(result) -> dict:
    """The one configuration of a bench --json (always a list, docs/results.md)."""
    data = as_json(result)
    assert isinstance(data, list) and len(data) == 1, data
    return data[0]


# ---------------------------------------------------------------- detect


def test_detect_json_on_this_machine():
    data = as_json(invoke("detect", "--json"))
    assert data["schema"] == "aia.detect/1"
    inv, plan = data["inventory"], data["plan"]
    cpuinfo = Path("/proc/cpuinfo").read_text()
    flags = next(line for line in cpuinfo.splitlines() if line.startswith("flags")).split()
    assert ("avx2" in inv["cpu"]["features"]) == ("avx2" in flags)
    assert ("avx512f" in inv["cpu"]["features"]) == ("avx512f" in flags)
    vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(
        next(
            line.split(":")[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("vendor_id")
        ),
        "other",
    )
    assert inv["cpu"]["vendor"] == vendor
    assert plan["choices"][-1]["ep"] == "CPUExecutionProvider"


def test_detect_fake_nvidia_workstation_suggests_onnxruntime_gpu():
    root = FIXTURES / "machines" / "nvidia_workstation"
    data = as_json(invoke("detect", "--json", "--root", root))
    gpus = [a for a in data["inventory"]["accelerators"] if a["kind"] == "gpu"]
    assert [g["vendor"] for g in gpus] == ["nvidia"]
    assert any("onnxruntime-gpu" in u["pip"] for u in data["plan"]["unlocks"])


def test_detect_human_view_names_plan():
    result = invoke("detect")
    assert result.exit_code == 0
    assert "Execution-provider plan" in result.stdout
    assert "CPUExecutionProvider" in result.stdout


# ---------------------------------------------------------------- run


def test_run_model_file_json_and_save(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    out = tmp_path / "out.npz"
    data = as_json(invoke("run", model, "--json", "--batch", "3", "--save", out))
    assert data["kind"] == "run"
    assert data["ep"]["name"] == "CPUExecutionProvider"
    assert data["metrics"]["outputs"]["y"]["shape"] == [3, 8]
    saved = np.load(out)
    assert saved["y"].shape == (3, 8)
    assert (saved["y"] >= 0).all()  # relu


def test_run_every_dtype_is_synthesized(tmp_path):
    model = identity_all_dtypes(tmp_path / "dtypes.onnx")
    data = as_json(invoke("run", model, "--json", "--dim", "batch=2"))
    outs = data["metrics"]["outputs"]
    assert outs["out_f16"]["dtype"] == "float16"
    assert outs["out_b"]["dtype"] == "bool"
    assert outs["out_s"]["shape"] == [2, 1, 3]
    assert outs["out_u64"]["shape"] == [2, 1, 3]


def test_run_token_ids_stay_in_vocabulary(tmp_path):
    model = embedding_model(tmp_path / "emb.onnx", vocab=50)
    out = tmp_path / "o.npz"
    invoke("run", model, "--dim", "sequence=16", "--save", out)
    # Gather would fail outright on an out-of-range id; masks are ones so nothing is zeroed.
    assert np.load(out)["out"].shape == (1, 16, 4)
    assert np.abs(np.load(out)["out"]).sum(-1).min() > 0


def test_run_input_file_overrides(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    x = np.ones((2, 16), np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    out = tmp_path / "o.npz"
    assert invoke("run", model, "--input", tmp_path / "in.npz", "--save", out).exit_code == 0
    w_sum = np.load(out)["y"]
    assert w_sum.shape == (2, 8)
    assert np.allclose(w_sum[0], w_sum[1])


# ---------------------------------------------------------------- bench


def test_bench_json_schema_and_out_appends(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    out = tmp_path / "r.jsonl"
    for _ in range(2):
        data = one(
            invoke(
                "bench", model, "--json", "-n", "30", "--warmup", "2", "--out", out, "--batch", "4"
            )
        )
    assert data["schema"] == "aia.result/1"
    m = data["metrics"]
    lat = m["latency_ms"]
    assert m["iterations"] == 30 and lat["count"] == 30
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert m["samples_per_s"] == pytest.approx(4 * m["throughput_per_s"])
    assert data["settings"]["batch"] == 4
    assert data["profile"]["name"] == "mm"
    assert data["machine"]["cpu"]["logical_cores"] >= 1
    assert data["onnxruntime"]["version"]
    assert data["aia_version"] and data["timestamp"]
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x)["schema"] == "aia.result/1" for x in lines)


def test_bench_duration(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    data = one(invoke("bench", model, "--json", "--duration", "0.3", "--warmup", "0"))
    assert data["metrics"]["iterations"] > 1
    assert data["metrics"]["wall_s"] >= 0.3


def test_bench_human_table(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    result = invoke("bench", model, "-n", "10")
    assert result.exit_code == 0
    assert "latency p99 (ms)" in result.stdout and "CPUExecutionProvider" in result.stdout


def test_bench_ep_missing_from_build_falls_back_with_warning(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    data = one(invoke("bench", model, "--json", "-n", "5", "--ep", "cuda"))
    assert data["ep"]["name"] == "CPUExecutionProvider"
    assert any("onnxruntime-gpu" in w for w in data["warnings"])


# ---------------------------------------------------------------- bad input


def _err(result) -> str:
    return result.stderr if hasattr(result, "stderr") else result.output


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("bench", "no-such-profile"), 2, "no-such-profile"),
        (("run", "missing.onnx"), 2, "missing.onnx"),
        (("bench", "--ep", "cdua"), 2, "Did you mean 'cuda'"),
        (("bench", "--iterations", "0"), 2, "--iterations"),
        (("bench", "--warmup", "-1"), 2, "--warmup"),
        (("run", "--dim", "batch"), 2, "NAME=VALUE"),
    ],
)
def test_bad_input_exit_codes(args, code, needle):
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert needle in _err(result)
    assert "Traceback" not in result.output


def test_not_onnx_and_truncated_model(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("name: not a model\n")
    r = invoke("run", bad)
    assert r.exit_code == 2 and "notes.onnx" in _err(r)
    good = matmul_model(tmp_path / "mm.onnx")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    r = invoke("bench", cut)
    assert r.exit_code == 2 and "cut.onnx" in _err(r)


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nmodel: {file: m.onnx\n")
    r = invoke("bench", p)
    assert r.exit_code == 2 and "broken.yaml" in _err(r) and ":3" in _err(r) or ":2" in _err(r)


def test_unknown_profile_key_did_you_mean(tmp_path):
    matmul_model(tmp_path / "m.onnx")
    p = tmp_path / "p.yaml"
    p.write_text("name: p\nmodel: {file: m.onnx}\nbench: {iteratons: 5}\n")
    r = invoke("bench", p)
    assert r.exit_code == 2 and "did you mean 'iterations'" in _err(r)


def test_profile_with_relative_model_file_runs(tmp_path):
    matmul_model(tmp_path / "m.onnx")
    p = tmp_path / "p.yaml"
    p.write_text(
        "name: p\nmodel: {file: m.onnx}\ninputs: {dims: {batch: 2}}\n"
        "bench: {warmup: 1, iterations: 7}\n"
    )
    data = one(invoke("bench", p, "--json"))
    assert data["metrics"]["iterations"] == 7 and data["settings"]["batch"] == 2
    assert len(data["profile"]["sha256"]) == 64


def test_strict_missing_ep_exits_3(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    r = invoke("bench", model, "--ep", "migraphx", "--strict")
    assert r.exit_code == 3 and "onnxruntime-migraphx" in _err(r)


def test_dim_the_model_lacks(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    r = invoke("bench", model, "--dim", "sequence_x=3")
    assert r.exit_code == 2 and "sequence_x" in _err(r) and "batch" in _err(r)


def test_input_dtype_and_shape_mismatch(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    np.save(tmp_path / "x.npy", np.ones((2, 16), np.int32))
    r = invoke("run", model, "--input", tmp_path / "x.npy")  # a .npy is named by its stem
    assert r.exit_code == 2 and "must be float32, got int32" in _err(r)
    np.save(tmp_path / "x.npy", np.ones((2, 16), np.float64))  # float64 -> float32 is fine
    assert invoke("run", model, "--input", tmp_path / "x.npy").exit_code == 0
    np.savez(tmp_path / "bad.npz", x=np.ones((2, 15), np.float32))
    r = invoke("run", model, "--input", tmp_path / "bad.npz")
    assert r.exit_code == 2 and "axis 1" in _err(r)
    np.savez(tmp_path / "name.npz", nope=np.ones((2, 16), np.float32))
    r = invoke("run", model, "--input", tmp_path / "name.npz")
    assert r.exit_code == 2 and "no input named 'nope'" in _err(r)


def test_fixed_batch_model_refuses_other_batch(tmp_path):
    model = fixed_batch_model(tmp_path / "fixed.onnx")
    r = invoke("bench", model, "--batch", "4")
    assert r.exit_code == 2 and "batch" in _err(r)


# ---------------------------------------------------------------- profiles and cache


def test_profiles_list_show_validate(tmp_path):
    data = as_json(invoke("profiles", "list", "--json"))
    names = {e["name"] for e in data}
    assert {"all-minilm-l6-v2", "silero-vad", "ppocr-det"} <= names
    assert next(e for e in data if e["name"] == "all-minilm-l6-v2")["default"]
    shown = as_json(invoke("profiles", "show", "silero-vad", "--json"))
    assert shown["profile"]["model"]["package"]["name"] == "silero_vad"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmodel: {file: x.onnx}\nsession: {threads: 2}\n")
    r = invoke("profiles", "validate", bad, FIXTURES.parent.parent / "profiles" / "silero-vad.yaml")
    assert r.exit_code == 2 and "bad.yaml" in _err(r)


def test_cache_list_and_clear_empty():
    data = as_json(invoke("cache", "list", "--json"))
    assert data["entries"] == []
    assert invoke("cache", "clear").exit_code == 0
