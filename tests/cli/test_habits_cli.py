"""Habits of the tools users know: one --json shape, messages that read right."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
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
    from aialliance_cli.cli.benchtable import _cpu_note

    short = {"status": "ok", "metrics": {"cpu_percent": None, "wall_s": 0.08}}
    assert "measured 0.08 s, under the 1 s" in _cpu_note([short], None)
    assert _cpu_note([{"status": "ok", "metrics": {}}], ["a"]) == "CPU n/a for a: not measured"
    assert _cpu_note([{"status": "ok", "metrics": {"cpu_percent": 50.0}}], None) is None


# ---------------------------------------------------------------- completion, quiet


def test_shell_completion_installs_and_shows(tmp_path):
    r = invoke("--show-completion", "bash")
    assert r.exit_code == 0 and "_aia_completion" in r.stdout
    r = invoke("--install-completion", "bash", env={"HOME": str(tmp_path)})
    assert r.exit_code == 0, r.output
    assert "aia" in (tmp_path / ".bashrc").read_text()


def test_help_stays_plain():
    r = invoke("--help")
    assert r.exit_code == 0 and "--quiet" in r.stdout and "--install-completion" in r.stdout
    import typer.main

    from aialliance_cli.cli.main import _plain_help, app

    command = typer.main.get_command(app)
    _plain_help(command)
    bench = command.commands["bench"]
    assert all(not getattr(p, "show_envvar", False) for p in bench.params)


def test_quiet_drops_info_lines_but_keeps_warnings(tmp_path):
    mm = matmul_model(tmp_path / "mm.onnx")
    loud = invoke("cache", "clear", "--yes")
    assert "freed" in loud.stderr
    assert invoke("-q", "cache", "clear", "--yes").stderr == ""
    r = invoke("-q", "run", mm, "--ep", "cuda")  # falls back to the CPU EP with a warning
    assert r.exit_code == 0 and "Warning:" in r.stderr
    assert invoke("cache", "clear", "--yes", env={"AIA_QUIET": "1"}).stderr == ""
    assert "freed" in invoke("cache", "clear", "--yes").stderr  # not sticky


# ---------------------------------------------------------------- config and env


def _config(text: str) -> Path:
    from aialliance_cli.config import config_file

    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _bench(*args: str, env: dict | None = None) -> dict:
    r = invoke("bench", "silero-vad", "--json", "--in-process", *args, env=env)
    assert r.exit_code == 0, r.output
    (data,) = json.loads(r.stdout)
    return data


def test_precedence_flag_env_config_profile():
    # silero-vad's profile says warmup 10, iterations 500: the built-in default is not used.
    _config("[bench]\nwarmup = 0\niterations = 3\n")
    data = _bench()
    assert (data["settings"]["warmup"], data["metrics"]["iterations"]) == (0, 3)  # config
    data = _bench(env={"AIA_BENCH_ITERATIONS": "4"})
    assert data["metrics"]["iterations"] == 4  # env over config
    data = _bench("-n", "2", env={"AIA_BENCH_ITERATIONS": "4"})
    assert data["metrics"]["iterations"] == 2  # flag over env


def test_config_tables_nest_for_groups_and_lists_take_one_value(tmp_path):
    from aialliance_cli.models.cache import cache_root, list_cache

    _config('[cache.clear]\nyes = true\n[bench]\nep = "cpu"\n')
    entry = cache_root() / "url-x-0123"
    entry.mkdir(parents=True)
    (entry / "aia-cache.json").write_text('{"key": "url-x-0123", "source": {}}')
    (entry / "model.onnx").write_bytes(b"0")
    assert invoke("cache", "clear").exit_code == 0  # yes = true from the config
    assert list_cache() == []
    assert _bench("-n", "2", "--warmup", "0")["ep"]["name"] == "CPUExecutionProvider"


def test_bad_config_is_bad_input_naming_file_and_key():
    path = _config("[bench]\nwarmpu = 1\n")
    r = invoke("bench", "silero-vad")
    assert r.exit_code == 2 and str(path) in r.stderr and "did you mean 'warmup'" in r.stderr
    _config("[benhc]\nwarmup = 1\n")
    r = invoke("detect")
    assert r.exit_code == 2 and "[benhc]" in r.stderr and "'bench'" in r.stderr
    _config("[bench\n")
    r = invoke("detect")
    assert r.exit_code == 2 and "not valid TOML" in r.stderr and "Traceback" not in r.output
    _config("bench = 3\n")
    assert "must be a table" in invoke("detect").stderr


def test_config_file_named_by_env_must_exist(tmp_path):
    r = invoke("detect", env={"AIA_CONFIG_FILE": str(tmp_path / "none.toml")})
    assert r.exit_code == 2 and "none.toml" in r.stderr


def test_completion_offers_profile_names():
    env = {"_AIA_COMPLETE": "complete_bash", "COMP_WORDS": "aia bench sil", "COMP_CWORD": "2"}
    r = invoke(env=env)
    assert "silero-vad" in r.stdout


def test_html_report_follows_the_umask(tmp_path):
    import os
    import stat

    from aialliance_cli.results.html import write_html

    old = os.umask(0o027)
    try:
        path = write_html(tmp_path / "r.html", "<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    old = os.umask(0o022)
    try:
        path = write_html(tmp_path / "s.html", "<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ---------------------------------------------------------------- OpenVINO load_config


def test_openvino_load_config_from_a_file_or_inline(tmp_path):
    from aialliance_cli.runtime.api import ep_options

    (tmp_path / "ov.json").write_text('{"CPU": {"INFERENCE_NUM_THREADS": "2"}}')
    got = ep_options("openvino", {"load_config": "ov.json"}, tmp_path, "p.yaml")
    assert json.loads(got["load_config"]) == {"CPU": {"INFERENCE_NUM_THREADS": "2"}}
    inline = ep_options("openvino", {"load_config": '{"GPU": {}}'}, tmp_path, "p.yaml")
    assert json.loads(inline["load_config"]) == {"GPU": {}}
    assert ep_options("cuda", {"load_config": "x"}, tmp_path, "p.yaml") == {"load_config": "x"}


def _ov_profile(tmp_path: Path, value: str) -> Path:
    mm = matmul_model(tmp_path / "mm.onnx")
    p = tmp_path / "p.yaml"
    p.write_text(
        f"schema: aia.profile/1\nname: p\nmodel: {{file: {mm.name}}}\n"
        f"providers: {{options: {{openvino: {{load_config: '{value}'}}}}}}\n"
    )
    return p


def test_bad_openvino_load_config_is_refused_before_any_session(tmp_path):
    r = invoke("run", _ov_profile(tmp_path, "missing.json"))
    assert r.exit_code == 2 and "neither JSON nor an existing file" in r.stderr
    (tmp_path / "bad.json").write_text("{CPU: 1}")
    r = invoke("bench", _ov_profile(tmp_path, "bad.json"), "-n", "2")
    assert r.exit_code == 2 and "is not valid JSON" in r.stderr and "bad.json" in r.stderr
    r = invoke("run", _ov_profile(tmp_path, '{"CPU": 4}'))
    assert r.exit_code == 2 and "must map device names" in r.stderr
    (tmp_path / "ok.json").write_text('{"CPU": {"INFERENCE_NUM_THREADS": "2"}}')
    assert invoke("run", _ov_profile(tmp_path, "ok.json")).exit_code == 0


@pytest.mark.slow
@pytest.mark.openvino
def test_openvino_load_config_file_runs_on_the_openvino_ep(tmp_path):
    """A path gave ORT's "JSON parsing error" and a silent CPU fallback (issue 11)."""
    from ovenv import openvino_python

    assert invoke("env", "add", "ov", "--python", openvino_python()).exit_code == 0
    (tmp_path / "ov.json").write_text('{"CPU": {"INFERENCE_NUM_THREADS": "1"}}')
    profile = _ov_profile(tmp_path, "ov.json")
    r = invoke("bench", profile, "--ep", "openvino", "--json", "-n", "3", "--warmup", "0")
    assert r.exit_code == 0, r.output
    (data,) = json.loads(r.stdout)
    assert data["ep"]["name"] == "OpenVINOExecutionProvider", data.get("warnings")
    assert not data["ep"].get("fallbacks")


# ---------------------------------------------------------------- progress


def test_progress_label_moves_on_from_building_the_session():
    from types import SimpleNamespace

    from aialliance_cli.cli.bench import _Display
    from aialliance_cli.cli.output import new_progress

    d = _Display(enabled=True, total=1, sweep=False)
    d.progress = new_progress()  # not started: no drawing, the tasks are real
    d.started(0, SimpleNamespace(label="cpu", route=SimpleNamespace(env=None)))

    def label() -> str:
        return d._description()

    d.event({"event": "status", "message": "building the session on CPUExecutionProvider"})
    assert label().endswith("building the session on CPUExecutionProvider")
    d.event({"event": "session", "ep": "CPUExecutionProvider"})
    assert "building" not in label() and "measuring on CPUExecutionProvider" in label()
    d.event({"event": "status", "message": "building the session on X"})
    d.event({"event": "progress", "done": 3, "total": 10, "elapsed": 0.1})
    assert label().endswith("measuring on CPUExecutionProvider")
    d.event({"event": "measured"})
    assert label().endswith("computing the statistics")
    assert label().startswith("[1/1] cpu")


def test_loadgen_progress_says_the_time_left():
    from aialliance_cli.runtime.loadgen import loadgen_progress

    line = loadgen_progress("single-stream", "CPUExecutionProvider", 120, 3.2, 10)
    assert line == (
        "LoadGen single-stream on CPUExecutionProvider: 120 samples, 3 s of at least 10 s "
        "(7 s left)"
    )
    assert "minimum is reached" in loadgen_progress("offline", "cpu", 9, 11.0, 10)


def test_loadgen_run_ticks_while_it_runs(tmp_path):
    pytest.importorskip("mlperf_loadgen")
    import time

    from aialliance_cli.runtime.loadgen import run_scenario

    ticks: list[tuple[int, float]] = []
    run_scenario(
        lambda idx: time.sleep(0.002),
        scenario="single-stream",
        total_samples=8,
        target_latency_ms=2,
        min_duration_s=1.2,
        log_dir=tmp_path / "lg",
        on_tick=lambda n, s: ticks.append((n, s)),
    )
    assert len(ticks) >= 2 and ticks[-1][0] > ticks[0][0] >= 0
    assert all(b[1] > a[1] for a, b in zip(ticks, ticks[1:], strict=False))


# ---------------------------------------------------------------- enough measuring


def test_default_measures_a_minimum_time_and_n_means_exactly_n(tmp_path, monkeypatch):
    from aialliance_cli.runtime.api import Overrides, bench_settings, prepare_target

    monkeypatch.delenv("AIA_BENCH_MIN_TIME")
    mm = matmul_model(tmp_path / "mm.onnx")
    target = prepare_target(str(mm))
    assert bench_settings(target, Overrides()).min_time_s == 10.0
    assert bench_settings(target, Overrides(iterations=5)).min_time_s == 0.0
    assert bench_settings(target, Overrides(iterations=5, min_time_s=2)).min_time_s == 2.0
    assert bench_settings(target, Overrides(duration_s=1.0)).min_time_s == 0.0
    p = tmp_path / "p.yaml"
    p.write_text(f"name: p\nmodel: {mm.name}\nbench: {{iterations: 4, min_time_s: 0.5}}\n")
    assert bench_settings(prepare_target(str(p)), Overrides()).min_time_s == 0.5
    # A real loop: 4 runs of a tiny model take far less than 0.5 s, so time decides.
    r = invoke("bench", p, "--json", "--warmup", "0", "--in-process")
    assert r.exit_code == 0, r.output
    (data,) = json.loads(r.stdout)
    assert data["settings"]["min_time_s"] == 0.5
    assert data["metrics"]["iterations"] > 4 and data["metrics"]["wall_s"] >= 0.5
    assert "at least 4 runs and 0.5 s, whichever is longer" in r.stderr
    r = invoke("bench", p, "--json", "-n", "4", "--warmup", "0", "--in-process")
    (data,) = json.loads(r.stdout)
    assert data["metrics"]["iterations"] == 4 and data["settings"]["min_time_s"] == 0.0
    assert "for 4 runs" in r.stderr


def test_min_time_is_checked(tmp_path):
    mm = matmul_model(tmp_path / "mm.onnx")
    r = invoke("bench", mm, "--min-time", "-1")
    assert r.exit_code == 2 and "--min-time must be 0 or more" in r.stderr


# ---------------------------------------------------------------- text-generation sweeps


TINY_GEN = (
    "name: tiny-gen\ntask: text-generation\n"
    "model: {huggingface: {id: example/tiny-llama}}\n"
    "generation:\n  max_new_tokens: 6\n  prompts: ['hello world']\n"
    "  architecture: {model_type: llama, hidden_size: 64, intermediate_size: 128,\n"
    "    num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,\n"
    "    vocab_size: 512, max_position_embeddings: 256}\n"
)


@pytest.mark.slow
def test_text_generation_bench_sweeps_threads_and_writes_csv_md_out(tmp_path):
    import csv
    import io

    p = tmp_path / "tiny-gen.yaml"
    p.write_text(TINY_GEN)
    out = tmp_path / "g.jsonl"
    grid = ["--random-weights", "--prompt-len", "8", "--gen-len", "3", "-n", "1", "--warmup", "0"]
    r = invoke("bench", p, *grid, "--threads", "1,2", "--csv", "--out", out)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["threads"] for row in rows] == ["1", "2"]
    assert all(row["decode_tokens_per_s"] and row["prompt_len"] == "8" for row in rows)
    assert all(float(row["latency_ms_p50"]) > 0 for row in rows)  # e2e time of a generation
    assert len(out.read_text().splitlines()) == 2
    md = invoke("bench", p, *grid, "--threads", "1,2", "--md")
    assert md.exit_code == 0, md.output
    assert "| model | backend | threads | batch | test | t/s |" in md.stdout
    # aia compare reads text-generation results: e2e time per generation, like for like.
    cmp = invoke("compare", out, "--json")
    assert cmp.exit_code == 0, cmp.output
    data = json.loads(cmp.stdout)
    assert len(data["rows"]) == 2 and data["rows"][1]["ratio"] is not None


def test_generation_points_read_like_bench_records():
    from aialliance_cli.results.tabular import as_comparable, flatten, generation_csv_extra

    stats = {"mean": 200.0, "p50": 190.0, "min": 150.0, "max": 260.0, "p90": 250.0}
    rec = {
        "kind": "generation-bench",
        "settings": {"batch": 2, "prompt_len": 8, "gen_len": 4, "repetitions": 3},
        "metrics": {"e2e_ms": stats, "ttft_ms": {"p50": 20.0}, "decode_tokens_per_s": {"mean": 50}},
    }
    c = as_comparable(rec)
    assert c["metrics"]["latency_ms"]["p50"] == 190.0 and c["metrics"]["iterations"] == 3
    assert c["settings"]["dims"] == {"prompt_len": 8, "gen_len": 4}
    assert c["metrics"]["samples_per_s"] == pytest.approx(10.0)
    row = flatten(rec)
    assert row["latency_ms_p50"] == 190.0 and "prompt_len=8" in row["dims"]
    (extra,) = generation_csv_extra([rec])
    assert extra["ttft_ms_p50"] == 20.0 and extra["decode_tokens_per_s"] == 50
    plain = {"kind": "bench", "metrics": {}}
    assert as_comparable(plain) is plain


def test_out_dash_streams_json_lines_on_stdout(tmp_path):
    mm = matmul_model(tmp_path / "mm.onnx")
    r = invoke("bench", mm, "--out", "-", "-n", "2", "--warmup", "0", "--batch", "1,2")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert [json.loads(x)["settings"]["batch"] for x in lines] == [1, 2]  # one line each
    assert not (tmp_path / "-").exists()
    r = invoke("bench", mm, "--out", "-", "--json")
    assert r.exit_code == 2 and "--out -" in r.stderr
