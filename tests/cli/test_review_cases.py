"""Bad-input and edge cases found in review, each through the real CLI and real sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model, save  # noqa: E402

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def err(r) -> str:
    return r.stderr


def unnamed_model(path: Path) -> Path:
    """x has a dynamic but unnamed leading axis (as exported by some tools)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "u", [x], [y])
    return save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_input_file_sets_batch_and_conflict_is_refused(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.ones((3, 16), np.float32))
    r = invoke("bench", model, "--input", tmp_path / "x.npy", "-n", "3", "--json", "--in-process")
    assert r.exit_code == 0, r.output
    (data,) = json.loads(r.stdout)  # bench --json: always a list
    assert data["settings"]["batch"] == 3 and data["settings"]["dims"]["batch"] == 3
    r = invoke("run", model, "--input", tmp_path / "x.npy", "--batch", "4")
    assert r.exit_code == 2 and "--batch=4 conflicts" in err(r)


def test_batch_and_dim_batch_must_agree(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    r = invoke("run", model, "--batch", "2", "--dim", "batch=4")
    assert r.exit_code == 2 and "conflicts" in err(r)
    r = invoke("run", model, "--dim", "batch=2", "--dim", "batch=4")
    assert r.exit_code == 2 and "twice" in err(r)


def test_unnamed_axes_take_input_axis_dims_and_leading_batch(tmp_path):
    model = unnamed_model(tmp_path / "u.onnx")
    data = json.loads(invoke("run", model, "--json", "--dim", "x[0]=5").stdout)
    assert data["metrics"]["outputs"]["y"]["shape"] == [5, 4]
    data = json.loads(invoke("run", model, "--json", "--batch", "3").stdout)
    assert data["metrics"]["outputs"]["y"]["shape"] == [3, 4]
    r = invoke("run", model, "--dim", "nope=2")
    assert r.exit_code == 2 and "x[0]" in err(r)


def test_huge_dims_are_refused_before_allocation(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    r = invoke("run", model, "--batch", "100000000000")
    assert r.exit_code == 2
    r = invoke("run", model, "--batch", "2000000000")
    assert r.exit_code == 2 and "GiB" in err(r)


def test_save_writes_the_named_file_and_refuses_folders(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    assert invoke("run", model, "--save", tmp_path / "o.txt").exit_code == 0
    assert (tmp_path / "o.txt").is_file() and not (tmp_path / "o.txt.npz").exists()
    assert np.load(tmp_path / "o.txt")["y"].shape == (1, 8)
    r = invoke("run", model, "--save", tmp_path)
    assert r.exit_code == 2 and "is a directory" in err(r)


def test_out_path_problems_are_found_before_measuring(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    (tmp_path / "file").write_text("x")
    r = invoke("bench", model, "-n", "3", "--out", tmp_path / "file" / "r.jsonl")
    assert r.exit_code == 2 and "is a file" in err(r)
    r = invoke("bench", model, "-n", "3", "--out", tmp_path)
    assert r.exit_code == 2 and "directory" in err(r)


def test_empty_npz_and_folder_inputs(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    np.savez(tmp_path / "empty.npz")
    r = invoke("run", model, "--input", tmp_path / "empty.npz")
    assert r.exit_code == 2 and "holds no arrays" in err(r)
    r = invoke("run", model, "--input", tmp_path)
    assert r.exit_code == 2 and "is a directory" in err(r)


def test_remote_ep_and_missing_custom_ops_library(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    r = invoke("run", model, "--ep", "azure")
    assert r.exit_code == 2 and "hosted endpoint" in err(r)
    p = tmp_path / "p.yaml"
    p.write_text("name: p\nmodel: {file: m.onnx}\ncustom_ops_library: libnope.so\n")
    r = invoke("run", p, "--allow-custom-ops")
    assert r.exit_code == 2 and "libnope.so" in err(r)
    r = invoke("run", p)
    assert r.exit_code == 2 and "--allow-custom-ops" in err(r)


def test_detect_root_must_exist():
    r = invoke("detect", "--root", "/no/such/root")
    assert r.exit_code == 2 and "--root" in err(r)


def test_profiles_show_writes_the_file_verbatim(tmp_path):
    r = invoke("profiles", "show", "smollm2-135m")
    text = (Path(__file__).resolve().parents[2] / "profiles" / "smollm2-135m.yaml").read_text()
    assert r.stdout == text
    shown = json.loads(invoke("profiles", "show", "silero-vad", "--json").stdout)
    assert shown["profile"]["schema"] == "aia.profile/1"


def test_relative_profile_path_runs_in_a_worker(tmp_path, monkeypatch):
    matmul_model(tmp_path / "rel.onnx")
    (tmp_path / "rel.yaml").write_text("name: rel\nmodel: {file: rel.onnx}\n")
    monkeypatch.chdir(tmp_path)
    r = invoke("bench", "./rel.yaml", "-n", "3", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["model"]["path"] == str(tmp_path / "rel.onnx")


def test_silero_batch_through_the_worker():
    r = invoke("bench", "silero-vad", "--batch", "4", "-n", "5", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["settings"]["batch"] == 4


def test_bench_csv_and_until_stable(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    r = invoke("bench", model, "--csv", "--until-stable", "20", "--duration", "5")
    assert r.exit_code == 0, r.output
    header, row = r.stdout.splitlines()[:2]
    from aialliance_cli.results.tabular import CSV_COLUMNS

    assert header.split(",") == list(CSV_COLUMNS)
    assert row.split(",")[CSV_COLUMNS.index("status")] == "ok"
    r = invoke("bench", model, "--until-stable", "0")
    assert r.exit_code == 2


def test_generation_only_options_on_other_profiles(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    r = invoke("bench", model, "--prompt-len", "16")
    assert r.exit_code == 2 and "text-generation" in err(r)


def test_broken_pipe_is_quiet():
    proc = subprocess.run(
        f"{sys.executable} -m aialliance_cli detect | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        executable="/bin/bash",
    )
    assert proc.stdout.strip() and "Traceback" not in proc.stderr
    assert "Error" not in proc.stderr


@pytest.mark.slow
def test_text_generation_bench_and_run_on_a_tiny_random_llama(tmp_path):
    p = tmp_path / "tiny-gen.yaml"
    p.write_text(
        "name: tiny-gen\ntask: text-generation\n"
        "model: {huggingface: {id: example/tiny-llama}}\n"
        "generation:\n  max_new_tokens: 6\n  prompts: ['hello world']\n"
        "  architecture: {model_type: llama, hidden_size: 64, intermediate_size: 128,\n"
        "    num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,\n"
        "    vocab_size: 512, max_position_embeddings: 256}\n"
    )
    r = invoke(
        "bench",
        p,
        "--random-weights",
        "--prompt-len",
        "8,16",
        "--gen-len",
        "4",
        "-n",
        "2",
        "--warmup",
        "0",
        "--json",
        "--out",
        tmp_path / "g.jsonl",
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["settings"]["prompt_len"] for row in rows] == [8, 16]
    for row in rows:
        m = row["metrics"]
        assert row["random_weights"] is True
        assert m["ttft_ms"]["p50"] < m["e2e_ms"]["p50"]
        assert m["decode_tokens_per_s"]["mean"] > 0
    assert len((tmp_path / "g.jsonl").read_text().splitlines()) == 2
    r = invoke("run", p, "--random-weights", "--json", "--max-new-tokens", "5")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["metrics"]["n_generated"] == 5 and data["random_weights"] is True
    r = invoke(
        "bench",
        p,
        "--random-weights",
        "--md",
        "--prompt-len",
        "8",
        "--gen-len",
        "2",
        "-n",
        "1",
        "--warmup",
        "0",
    )
    assert "| model | backend | batch | test | t/s |" in r.stdout
    r = invoke("bench", p, "--prompt-len", "8,x")
    assert r.exit_code == 2 and "--prompt-len" in err(r)


def test_text_generation_bench_refuses_loop_options():
    # --csv and --threads 1,2 apply since issue 11 (test_habits_cli); the plain loop's do not.
    r = invoke("bench", "smollm2-135m", "--random-weights", "--duration", "5")
    assert r.exit_code == 2 and "--duration" in err(r)
    r = invoke("bench", "smollm2-135m", "--until-stable", "2", "--dim", "x=1")
    assert r.exit_code == 2 and "--dim and --until-stable do not apply" in err(r)


@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({"AIA_BENCH_WARMUP": "x"}, ("bench", "nowhere.onnx"), "AIA_BENCH_WARMUP='x'"),
        ({"AIA_BENCH_JSON_": "maybe"}, ("bench", "nowhere.onnx"), "AIA_BENCH_JSON_='maybe'"),
        ({"AIA_FLEET_DETECT_LOCAL": "two"}, ("fleet", "detect"), "AIA_FLEET_DETECT_LOCAL='two'"),
        ({"AIA_CACHE_CLEAR_YES": "perhaps"}, ("cache", "clear"), "AIA_CACHE_CLEAR_YES"),
    ],
)
def test_a_bad_environment_default_names_the_variable(env, args, named):
    r = runner.invoke(app, list(args), env=env)
    assert r.exit_code == 2, r.output
    assert named in err(r) and "Traceback" not in r.output
    assert "Invalid value for" not in err(r)  # Click's wording names an option nobody typed


@pytest.mark.parametrize(
    ("toml", "args", "named"),
    [
        ('[bench]\nwarmup = "x"\n', ("bench", "nowhere.onnx"), "[bench] warmup = 'x'"),
        ("[bench]\nwarmup = 3.5\n", ("bench", "nowhere.onnx"), "[bench] warmup = 3.5"),
        ('[tune]\nbudget = "abc"\n', ("tune", "nowhere.onnx"), "[tune] budget = 'abc'"),
        ('[fleet.detect]\nlocal = "x"\n', ("fleet", "detect"), "[fleet.detect] local = 'x'"),
        ("[detect]\ndiff = 3\n", ("detect",), "[detect] diff = 3"),
    ],
)
def test_a_bad_config_value_names_the_file_and_key(tmp_path, toml, args, named):
    cfg = tmp_path / "config.toml"
    cfg.write_text(toml)
    r = runner.invoke(app, list(args), env={"AIA_CONFIG_FILE": str(cfg)})
    assert r.exit_code == 2, r.output
    assert str(cfg) in err(r) and named in err(r) and "Traceback" not in r.output


def test_good_config_and_environment_defaults_still_apply(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[run]\nep = "cpu"\n[bench]\nthreads = "1"\nep = ["cpu"]\n')
    model = matmul_model(tmp_path / "m.onnx")
    env = {"AIA_CONFIG_FILE": str(cfg), "AIA_BENCH_WARMUP": "1"}
    r = runner.invoke(app, ["bench", str(model), "-n", "2", "--json", "--in-process"], env=env)
    assert r.exit_code == 0, r.output
    (data,) = json.loads(r.stdout)
    assert data["settings"]["warmup"] == 1


def test_detect_diff_refuses_a_device_a_fifo_and_a_huge_file(tmp_path):
    """/dev/zero was read until memory ran out; a FIFO blocked forever."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    big.write_text(" " * (17 * 2**20))
    for path, words in (
        ("/dev/zero", "not a regular file"),
        (fifo, "not a regular file"),
        (big, "larger than 16 MiB"),
    ):
        r = invoke("detect", "--diff", path)
        assert r.exit_code == 2, r.output
        assert str(path) in err(r) and words in err(r)


def test_openvino_load_config_file_must_be_a_regular_file(tmp_path):
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.runtime.api import ep_options

    fifo = tmp_path / "ov.json"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match="not a regular file"):
        ep_options("openvino", {"load_config": "ov.json"}, tmp_path, "p.yaml")


def test_bench_min_accuracy_is_refused_before_the_plan_is_printed(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    r = invoke("bench", model, "-n", "2", "--check-outputs", "--min-accuracy", "5")
    assert r.exit_code == 2 and "--min-accuracy must be above 0" in err(r)
    assert "measuring" not in err(r)


def test_fleet_bench_leaves_the_thread_bound_to_each_node(tmp_path, monkeypatch):
    """A 2-core driver must not refuse --threads 32 meant for 64-core nodes."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    model = matmul_model(tmp_path / "m.onnx")
    r = invoke("fleet", "bench", model, "--threads", "1,32")
    assert r.exit_code == 2 and "no Ray cluster given" in err(r), r.output
    r = invoke("fleet", "bench", model, "--threads", "99999999")
    assert r.exit_code == 2 and "--threads must be" in err(r)


def test_ship_model_refuses_external_data_before_any_cluster(tmp_path, monkeypatch):
    """Only the .onnx file travels: a model with external weights is refused on the driver."""
    import onnx

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    src = onnx.load(str(matmul_model(tmp_path / "m.onnx")))
    path = tmp_path / "ext.onnx"
    onnx.save(
        src, str(path), save_as_external_data=True, location="ext.onnx.data", size_threshold=0
    )
    r = invoke("fleet", "bench", path, "--ship-model")
    assert r.exit_code == 2, r.output
    assert "external data" in err(r) and "ext.onnx.data" in err(r)


def test_a_config_file_that_is_a_device_or_a_fifo_is_refused(tmp_path):
    """AIA_CONFIG_FILE=/dev/zero was read until killed; a FIFO blocked every command."""
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):
        r = runner.invoke(app, ["detect"], env={"AIA_CONFIG_FILE": str(path)})
        assert r.exit_code == 2, r.output
        assert f"the config file {path} is not a regular file" in err(r)


def test_text_at_a_device_or_a_fifo_is_refused(tmp_path):
    """--text @/dev/zero was read until killed; --text @FIFO blocked."""
    fifo = tmp_path / "words"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):
        r = invoke("run", "all-minilm-l6-v2", "--text", f"@{path}")
        assert r.exit_code == 2, r.output
        assert "not a regular file" in err(r) and str(path) in err(r)


def test_input_that_is_a_fifo_is_not_called_missing(tmp_path):
    model = matmul_model(tmp_path / "m.onnx")
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    r = invoke("run", model, "--input", fifo)
    assert r.exit_code == 2 and "is not a regular file" in err(r), r.output
