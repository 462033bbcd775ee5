"""`aia fleet` on a real local Ray cluster of three nodes, started once per test session.

Every command runs as its own `aia` process (a real driver connecting with
--address), as a user would run it. The nodes share this 2-core machine: each
has one CPU, so the benchmarks run one after the other, and the model is tiny.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _node_args(name: str, i: int) -> dict[str, Any]:
    return {
        "num_cpus": 1,
        "resources": {f"aia_local_{i}": 1.0},
        "labels": {"aia.node": name, "tier": "even" if i % 2 == 0 else "odd"},
    }


@pytest.fixture(scope="session")
def cluster() -> Any:
    """Three nodes (local-0..2), each with its own label and custom resource."""
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={**_node_args("local-0", 0), "include_dashboard": False},
    )
    for i in (1, 2):
        c.add_node(**_node_args(f"local-{i}", i))
    c.wait_for_nodes()
    from aialliance_cli.fleet.connect import _remove_session_dirs, _session_dirs

    dirs = _session_dirs(c)
    yield c
    c.shutdown()
    _remove_session_dirs(dirs)  # as aia's --local does


@pytest.fixture(scope="session")
def node_ids(cluster: Any) -> dict[str, str]:
    """name -> node id, read from the cluster by a short-lived driver."""
    code = (
        f"import json, ray; ray.init(address={cluster.address!r}, logging_level='ERROR'); "
        "print(json.dumps({n['Labels']['aia.node']: n['NodeID'] for n in ray.nodes() "
        "if n['Alive']}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return matmul_model(tmp_path_factory.mktemp("fleet") / "fleet_mm.onnx")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("RAY_ADDRESS", None)
    return env


def aia(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aialliance_cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd=REPO,
    )


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_fleet_detect_returns_every_node(cluster: Any, node_ids: dict[str, str]) -> None:
    p = aia("fleet", "detect", "--address", cluster.address, "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    nodes = doc["nodes"]
    assert len(nodes) == 3
    ids = {n["node"]["node_id"] for n in nodes}
    assert ids == set(node_ids.values())
    for n in nodes:
        assert n["schema"] == "aia.detect/1"
        assert n["inventory"]["cpu"]["logical_cores"] >= 1
        assert n["plan"]["choices"], "each node has an EP plan"
        # aia's detection ran on the node itself: Ray says which node ran it.
        assert n["runtime"]["node_id"] == n["node"]["node_id"]
    assert {n["node"]["name"] for n in nodes} == {"local-0", "local-1", "local-2"}


def test_fleet_detect_diff_table(cluster: Any) -> None:
    p = aia("fleet", "detect", "--address", cluster.address, "--diff")
    assert p.returncode == 0, p.stderr
    assert "local-0" in p.stdout and "local-2" in p.stdout
    assert "Machines side by side" in p.stdout  # the nodes' differing facts (the host's memory)


def test_fleet_bench_appends_each_node_as_it_finishes(
    cluster: Any, node_ids: dict[str, str], model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fleet.jsonl"
    cmd = [sys.executable, "-m", "aialliance_cli", "fleet", "bench", str(model)]
    cmd += ["--address", cluster.address, "-n", "30", "--out", str(out), "--json"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO
    )
    seen: list[int] = []
    while proc.poll() is None:
        n = len(_records(out)) if out.exists() else 0
        if not seen or seen[-1] != n:
            seen.append(n)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    records = _records(out)
    assert len(records) == 3
    assert 1 in seen and 2 in seen, f"lines in --out over time: {seen}"  # one by one
    assert {r["fleet"]["node_id"] for r in records} == set(node_ids.values())
    for r in records:
        assert r["schema"] == "aia.result/1" and r["status"] == "ok"
        assert r["metrics"]["latency_ms"]["p50"] > 0
        assert r["machine"]["cpu"]["model_name"], "each record carries its node's inventory"
        assert r["fleet"]["runtime"]["node_id"] == r["fleet"]["node_id"]
        assert len(r["fleet"]["shares_machine_with"]) == 2
        # Ray's task workers run at nice 15; the benchmark's asks for the raylet's own
        # (this process's, which started the cluster), as `aia bench` alone would run.
        assert r["fleet"]["runtime"]["niceness"] <= max(os.nice(0), 0)
        assert not any("measured at nice" in w for w in r.get("warnings") or [])
    # One machine: never two at once, said so on stderr.
    assert "benchmarked one after the other" in stderr
    spans = sorted(
        (r["fleet"]["node_name"], r["timestamp"]) for r in records
    )  # timestamps have second resolution; the appended order is the run order
    assert [r["fleet"]["node_name"] for r in records] == sorted(n for n, _ in spans)
    assert json.loads(stdout) == records


def test_select_on_a_label_runs_only_there_and_sweeps_there(
    cluster: Any, node_ids: dict[str, str], model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sel.jsonl"
    p = aia(
        "fleet", "bench", str(model), "--address", cluster.address,
        "--select", "tier=odd", "--threads", "1,2", "-n", "5", "--out", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    records = _records(out)  # a sweep runs per node: two configurations, on local-1 only
    assert [r["fleet"]["node_id"] for r in records] == [node_ids["local-1"]] * 2
    assert [r["settings"]["intra_op_threads"] for r in records] == [1, 2]
    assert "local-1" in p.stdout  # the compare table


def test_nodes_by_id_prefix_and_resource_select(
    cluster: Any, node_ids: dict[str, str], model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "nodes.jsonl"
    p = aia(
        "fleet", "bench", str(model), "--address", cluster.address,
        "--nodes", f"{node_ids['local-0'][:8]},local-2", "--select", "aia_local_2",
        "-n", "5", "--out", str(out), "--baseline", "local-2",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert [r["fleet"]["node_id"] for r in _records(out)] == [node_ids["local-2"]]


def test_ship_model_delivers_the_same_bytes(
    cluster: Any, node_ids: dict[str, str], model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ship.jsonl"
    want = hashlib.sha256(model.read_bytes()).hexdigest()
    p = aia(
        "fleet", "bench", str(model), "--address", cluster.address, "--ship-model",
        "--nodes", "local-0,local-1", "-n", "5", "--out", str(out), "--baseline", "local-1",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    records = _records(out)
    assert [r["fleet"]["node_name"] for r in records] == ["local-0", "local-1"]
    for r in records:
        assert r["model"]["shipped"] == {
            "sha256": want,
            "size_bytes": model.stat().st_size,
            "verified": True,
        }
        # The node ran the bytes it received (written to a folder of its own), not our file.
        assert r["model"]["sha256"] == want
        assert Path(r["model"]["path"]).name == model.name
        assert Path(r["model"]["path"]).parent != model.parent


def test_node_timeout_gives_a_failed_record_and_keeps_the_others(
    cluster: Any, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "timeout.jsonl"
    p = aia(
        "fleet", "bench", str(model), "--address", cluster.address,
        "--nodes", "local-0", "--duration", "60", "--node-timeout", "8", "--out", str(out),
    )  # fmt: skip
    assert p.returncode == 1, p.stderr
    (r,) = _records(out)
    assert r["status"] == "failed"
    assert "--node-timeout 8" in r["error"]
    assert r["fleet"]["node_name"] == "local-0"


def test_a_node_lacking_the_asked_for_ep_fails_with_3_under_strict(
    cluster: Any, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "strict.jsonl"
    p = aia(
        "fleet", "bench", str(model), "--address", cluster.address, "--nodes", "local-0",
        "--ep", "migraphx", "--strict", "-n", "5", "--out", str(out),
    )  # fmt: skip
    assert p.returncode == 3, p.stderr
    (r,) = _records(out)
    assert r["status"] == "failed" and r["failure"]["exit_code"] == 3
    assert "MIGraphXExecutionProvider" in r["error"]
    assert r["fleet"]["node_name"] == "local-0"


def test_a_model_that_cannot_be_built_gives_failed_records(cluster: Any, tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf")
    out = tmp_path / "broken.jsonl"
    p = aia(
        "fleet", "bench", str(bad), "--address", cluster.address,
        "--nodes", "local-0,local-1", "-n", "5", "--out", str(out),
    )  # fmt: skip
    assert p.returncode == 2, p.stderr  # every node failed alike: bad input
    records = _records(out)
    assert [r["fleet"]["node_name"] for r in records] == ["local-0", "local-1"]
    for r in records:
        assert r["status"] == "failed" and str(bad) in r["error"]
        assert r["machine"]["cpu"]["model_name"], "the node's inventory is kept"


def test_a_node_killed_mid_benchmark_fails_and_the_others_are_kept(
    cluster: Any, model: Path, tmp_path: Path
) -> None:
    """Runs last in this file: it adds a fourth node and kills it while it benchmarks."""
    victim = cluster.add_node(**{**_node_args("victim", 3), "labels": {"aia.node": "victim"}})
    cluster.wait_for_nodes()
    out = tmp_path / "kill.jsonl"
    cmd = [sys.executable, "-m", "aialliance_cli", "fleet", "bench", str(model)]
    cmd += ["--address", cluster.address, "--nodes", "victim,local-0,local-1"]
    cmd += ["--duration", "3", "--out", str(out)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO
    )
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "victim: running" in line:
                running.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    assert running.wait(180), "".join(lines)
    time.sleep(4)  # its worker is up and measuring
    cluster.remove_node(victim, allow_graceful=False)
    proc.wait(timeout=300)
    t.join(10)
    stderr = "".join(lines)
    assert proc.returncode == 1, stderr
    records = _records(out)
    by_node = {r["fleet"]["node_name"]: r for r in records}
    assert set(by_node) == {"victim", "local-0", "local-1"}, stderr
    assert by_node["victim"]["status"] == "failed"
    assert "victim" in by_node["victim"]["error"]
    assert (
        "died or left the cluster" in by_node["victim"]["error"]
        or "lost" in (by_node["victim"]["error"])
    )
    assert by_node["local-0"]["status"] == by_node["local-1"]["status"] == "ok"


# ----------------------------------------------------------------------------- bad input


def test_unknown_node_id_is_bad_input(cluster: Any) -> None:
    p = aia("fleet", "detect", "--address", cluster.address, "--nodes", "deadbeef00")
    assert p.returncode == 2
    assert "'deadbeef00' is no alive node's id or name" in p.stderr
    assert "local-0" in p.stderr  # what is there instead
    assert "Traceback" not in p.stderr


def test_selector_matching_nothing_is_bad_input(cluster: Any, model: Path) -> None:
    p = aia("fleet", "bench", str(model), "--address", cluster.address, "--select", "GPU")
    assert p.returncode == 2
    assert "--select GPU matches none of the alive nodes" in p.stderr
    assert "Traceback" not in p.stderr


def test_unknown_baseline_node_is_bad_input(cluster: Any, model: Path) -> None:
    p = aia("fleet", "bench", str(model), "--address", cluster.address, "--baseline", "nope")
    assert p.returncode == 2
    assert "--baseline: 'nope'" in p.stderr


def test_local_cluster_sigterm_keeps_finished_nodes_and_leaves_no_process(
    model: Path, tmp_path: Path
) -> None:
    """--local 2 brings up its own cluster; SIGTERM while the second node runs: the first
    node's record is kept, exit 143, and no process of the cluster or its workers is left."""
    import psutil

    out = tmp_path / "local.jsonl"
    cmd = [sys.executable, "-m", "aialliance_cli", "fleet", "bench", str(model), "--local", "2"]
    cmd += ["--duration", "2", "--out", str(out)]
    # Ray's folders in a short one of this test's own (Unix socket paths are short).
    ray_tmp = Path(tempfile.mkdtemp(prefix="aiar", dir="/tmp"))
    env = {**_env(), "RAY_TMPDIR": str(ray_tmp)}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    lines: list[str] = []
    second = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "local-1: running" in line:
                second.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    assert second.wait(240), "".join(lines)
    kids = psutil.Process(proc.pid).children(recursive=True)
    assert kids, "the local cluster runs as children of aia"
    # Its daemons yield the CPU to the measuring worker; the raylets, which start the
    # workers, stay at 0 (a worker could not go back from their niceness unprivileged).
    nice = {}
    for k in kids:
        with contextlib.suppress(psutil.Error, IndexError):  # gone, or a zombie
            nice.setdefault(Path(k.cmdline()[0]).name, set()).add(k.nice())
    own = os.nice(0)  # CI may run the tests at another niceness than 0
    assert nice.get("gcs_server") == {19} and nice.get("raylet") == {own}, nice
    time.sleep(2)
    proc.send_signal(15)
    proc.wait(timeout=120)
    t.join(10)
    stderr = "".join(lines)
    assert proc.returncode == 143, stderr
    assert "share this machine (--local)" in stderr
    records = _records(out)
    assert records[0]["fleet"]["node_name"] == "local-0"
    assert records[0]["status"] == "ok" and records[0]["fleet"]["local_cluster"]
    assert records[0]["fleet"]["runtime"]["niceness"] <= max(own, 0)
    time.sleep(1)
    left = [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left running after aia ended: {[k.cmdline()[:3] for k in left]}"
    # ... and no folder: the cluster's session folder and Ray's link to it are gone.
    leftover = sorted(p.name for p in (ray_tmp / "ray").glob("session_*"))
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not leftover, f"Ray's session folders left behind: {leftover}"
