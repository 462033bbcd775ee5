"""Fleet pure functions: node listing and selection, machine groups, merging, machine diff.

The diff runs on fixtures of real machines: the H200 host of tests/fixtures/real_machines
against this machine's own `aia detect --json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.errors import BadInputError
from aialliance_cli.fleet.nodes import (
    Node,
    machine_groups,
    nodes_from_ray,
    select_nodes,
)
from aialliance_cli.fleet.run import fleet_record, merge_node_results
from aialliance_cli.hardware.diff import check_detect, diff_machines, load_detect, machine_facts

REPO = Path(__file__).resolve().parents[2]
H200 = REPO / "tests" / "fixtures" / "real_machines" / "nvidia_h200_16core_xeon.detect.json"
runner = CliRunner()


def _ray_node(i: int, host: str = "vm", ip: str = "192.0.2.2", **extra: Any) -> dict[str, Any]:
    """The shape of one entry of ray.nodes() (Ray 2.60, as printed on this machine)."""
    nid = f"{i:02d}" + "ab" * 27
    resources = {"CPU": 1.0, "memory": 2.0e10, f"node:{ip}": 1.0, f"aia_local_{i}": 1.0}
    resources.update(extra.pop("resources", {}))
    return {
        "NodeID": nid,
        "Alive": extra.pop("alive", True),
        "NodeManagerAddress": ip,
        "NodeManagerHostname": host,
        "Resources": resources,
        "Labels": {"ray.io/node-id": nid, **extra.pop("labels", {})},
    }


@pytest.fixture(scope="module")
def here() -> dict[str, Any]:
    """This machine's own `aia detect --json`, as a user would save it."""
    p = subprocess.run(
        [sys.executable, "-m", "aialliance_cli", "detect", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=True,
    )
    return json.loads(p.stdout)


# ----------------------------------------------------------------------------- nodes


def test_nodes_named_by_label_else_host_and_made_unique() -> None:
    raw = [
        _ray_node(0, labels={"aia.node": "local-0"}),
        _ray_node(1, host="gpu-box", ip="10.0.0.2"),
        _ray_node(2, host="cpu-box", ip="10.0.0.3"),
        _ray_node(3, host="cpu-box", ip="10.0.0.3"),
        _ray_node(4, alive=False),
    ]
    nodes = nodes_from_ray(raw)
    names = [n.name for n in nodes]
    assert len(nodes) == 4  # the dead one is left out
    assert "local-0" in names and "gpu-box" in names
    assert sorted(n for n in names if n.startswith("cpu-box")) == [
        "cpu-box-02abab",
        "cpu-box-03abab",
    ]
    assert all("ray.io/node-id" not in n.labels for n in nodes)


def test_select_by_id_prefix_name_label_and_resource() -> None:
    nodes = nodes_from_ray(
        [
            _ray_node(0, labels={"aia.node": "a", "tier": "cpu"}),
            _ray_node(1, labels={"aia.node": "b", "tier": "gpu"}, resources={"GPU": 1.0}),
            _ray_node(2, labels={"aia.node": "c", "tier": "gpu"}, resources={"GPU": 2.0}),
        ]
    )
    assert [n.name for n in select_nodes(nodes, ["02abab"])] == ["c"]
    assert [n.name for n in select_nodes(nodes, ["c,a"])] == ["c", "a"]  # order as given
    assert [n.name for n in select_nodes(nodes, None, ["GPU"])] == ["b", "c"]
    assert [n.name for n in select_nodes(nodes, None, ["GPU=2"])] == ["c"]
    assert [n.name for n in select_nodes(nodes, None, ["tier=cpu"])] == ["a"]
    assert [n.name for n in select_nodes(nodes, ["a", "b"], ["tier=gpu"])] == ["b"]


@pytest.mark.parametrize(
    ("ids", "select", "message"),
    [
        (["nothere"], None, "'nothere' is no alive node's id or name"),
        (["0"], None, "is no alive node's id"),  # too short to be a prefix
        (None, ["tier=tpu"], "--select tier=tpu matches none of the alive nodes"),
        (None, ["=x"], "is not KEY=VALUE"),
        (["a"], ["GPU"], "matches none of the given nodes"),
    ],
)
def test_select_bad_input(ids: Any, select: Any, message: str) -> None:
    nodes = nodes_from_ray([_ray_node(0, labels={"aia.node": "a", "tier": "cpu"})])
    with pytest.raises(BadInputError, match=message.replace("[", r"\[")) as exc:
        select_nodes(nodes, ids, select)
    assert "a (id 00abab" in str(exc.value) or "KEY=VALUE" in str(exc.value)


def test_machine_groups_join_by_host_or_address() -> None:
    nodes = nodes_from_ray(
        [
            _ray_node(0, host="h1", ip="10.0.0.1"),
            _ray_node(1, host="h2", ip="10.0.0.2"),
            _ray_node(2, host="h1b", ip="10.0.0.1"),  # same IP as h1: same machine
            _ray_node(3, host="h3", ip="10.0.0.3"),
        ]
    )
    groups = machine_groups(nodes)
    sizes = sorted(len(g) for g in groups)
    assert sizes == [1, 1, 2]
    assert machine_groups(nodes, local=True) == [list(nodes)]


# ----------------------------------------------------------------------------- merging


def test_merge_stamps_each_record_with_its_node() -> None:
    n = Node("ab" * 28, "local-1", "vm", "192.0.2.2", {"aia.node": "local-1"}, {"CPU": 1.0})
    peer = Node("cd" * 28, "local-2", "vm", "192.0.2.2")
    payload = {
        "results": [{"schema": "aia.result/1", "status": "ok", "warnings": []}],
        "runtime": {"node_id": "ef" * 28, "python": "3.11.7"},
    }
    (r,) = merge_node_results(n, payload, cluster="c:1", local=True, peers=[n, peer])
    assert r["fleet"] == fleet_record(
        n, cluster="c:1", local=True, peers=[n, peer], runtime=payload["runtime"]
    )
    assert r["fleet"]["shares_machine_with"] == ["local-2"]
    assert any("ran on efefef" in w for w in r["warnings"])  # ran on another node: said
    payload["runtime"]["aia_version"] = "0.0.1"
    (r,) = merge_node_results(n, payload, cluster="c:1", local=True, peers=[n])
    assert any("runs aia 0.0.1, the driver aia" in w for w in r["warnings"])


def test_compare_tells_nodes_of_one_host_apart() -> None:
    from aialliance_cli.results.compare import compare

    def rec(name: str, p50: float) -> dict[str, Any]:
        return {
            "schema": "aia.result/1",
            "kind": "bench",
            "status": "ok",
            "profile": {"name": "m"},
            "machine": {"hostname": "vm", "cpu": {"model_name": "X", "logical_cores": 2}},
            "ep": {"name": "CPUExecutionProvider"},
            "settings": {"batch": 1},
            "metrics": {
                "latency_ms": {"p50": p50, "mean": p50, "count": 50, "std": 0.01},
                "throughput_per_s": 1000 / p50,
            },
            "fleet": {"node_name": name},
        }

    table = compare([rec("local-0", 1.0), rec("local-1", 2.0)], baseline="local-1")
    assert [r.machine.split(" ")[0] for r in table.rows] == ["local-1", "local-0"]
    assert table.rows[0].verdict == "baseline"


# ----------------------------------------------------------------------------- diff


def test_diff_h200_host_against_this_machine(here: dict[str, Any]) -> None:
    other = load_detect(H200)
    result = diff_machines([("here", here), ("h200", other)])
    differing = {f.fact for f in result.differences}
    assert {"accelerators", "cores (physical/logical)", "memory"} <= differing
    acc = next(f for f in result.facts if f.fact == "accelerators")
    assert acc.values[1] == "gpu: NVIDIA H200"
    notes = " | ".join(result.notes)
    # The H200 host has a GPU but only the CPU build of ONNX Runtime: say how to fix it.
    assert "h200 has gpu:0 NVIDIA H200 but no ONNX Runtime build that can use it" in notes
    assert "onnxruntime-gpu" in notes
    # Whatever this machine's CPU, flags that only one side has are named.
    mine = set(here["inventory"]["cpu"]["features"])
    theirs = set(other["inventory"]["cpu"]["features"])
    for flag in ("avx512_vnni", "amx_int8"):
        if (flag in mine) != (flag in theirs):
            assert f"no {flag} on" in notes
    if here["inventory"]["software"]["ort_version"] != "1.30.0":
        assert "ONNX Runtime versions differ" in notes
    assert result.to_dict()["differences"] == [f.fact for f in result.differences]


def test_diff_of_a_machine_with_itself_is_empty(here: dict[str, Any]) -> None:
    result = diff_machines([("a", here), ("b", json.loads(json.dumps(here)))])
    assert result.differences == ()
    assert not [n for n in result.notes if "differ" in n or "no " in n[:3]]


def test_facts_name_vnni_and_the_planned_ep() -> None:
    facts = machine_facts(load_detect(H200))
    assert "avx512_vnni" in facts["ISA"] and "amx_int8" in facts["ISA"]
    assert facts["planned EP"] == "cpu (cpu)"
    assert facts["ONNX Runtime"] == "1.30.0"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "is not JSON (line 1"),
        ("[1, 2]", "not an object of `aia detect --json`"),
        ('{"schema": "aia.result/1"}', "has schema 'aia.result/1'"),
        ('{"schema": "aia.detect/1"}', "has no 'inventory' with a 'cpu' key"),
    ],
)
def test_detect_diff_bad_files_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "other.json"
    if content is not None:
        path.write_text(content)
    res = runner.invoke(app, ["detect", "--diff", str(path)])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert str(path) in res.output


def test_detect_diff_cli_table_and_json() -> None:
    res = runner.invoke(app, ["detect", "--diff", str(H200)])
    assert res.exit_code == 0, res.output
    assert "Machines side by side" in res.output and "NVIDIA H200" in res.output
    res = runner.invoke(app, ["detect", "--diff", str(H200), "--json"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["schema"] == "aia.detect-diff/1"
    assert doc["machines"] == ["this machine", "nvidia_h200_16core_xeon"]


def test_an_inventory_alone_is_accepted() -> None:
    inv = json.loads(H200.read_text())["inventory"]
    assert check_detect(inv, "x")["inventory"] == inv


# ----------------------------------------------------------------------------- bad input


def test_ray_missing_is_a_clear_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    res = runner.invoke(app, ["fleet", "detect", "--address", "127.0.0.1:6379"])
    assert res.exit_code == 2
    assert "need Ray, which is not installed" in res.output
    assert 'pip install "aialliance-cli[fleet]"' in res.output


def test_unreachable_address_is_exit_2_within_seconds() -> None:
    import time

    t = time.monotonic()
    res = runner.invoke(app, ["fleet", "detect", "--address", "127.0.0.1:9"])
    assert res.exit_code == 2, res.output
    assert "no Ray cluster answers at 127.0.0.1:9" in res.output
    assert time.monotonic() - t < 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fleet", "bench", "--local", "0"], "--local 0: a local cluster needs at least 1 node"),
        (["fleet", "detect", "--local", "-2"], "--local -2: a local cluster needs"),
        (["fleet", "detect"], "no Ray cluster given"),
        (["fleet", "detect", "--address", "a:1", "--local", "2"], "either --address or --local"),
        (["fleet", "detect", "--address", "no-port"], "is not an address Ray knows"),
        (["fleet", "bench", "--local", "2", "-n", "0"], "--iterations must be more than 0"),
        (["fleet", "bench", "--local", "2", "--node-timeout", "0"], "--node-timeout must be"),
        (["fleet", "bench", "--local", "2", "--threads", "x"], "'x' is not a whole number"),
    ],
)
def test_fleet_bad_input_exit_2(
    monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output


def test_help_and_detect_do_not_import_ray() -> None:
    code = (
        "import sys\n"
        "from aialliance_cli.cli.main import main\n"
        "for argv in (['--help'], ['detect', '--json'], ['fleet', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('RAY' if 'ray' in sys.modules else 'NO-RAY', file=sys.stderr)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert p.stderr.strip().endswith("NO-RAY"), p.stderr[-500:]


# ----------------------------------------------------------------------------- faults


def _node() -> Node:
    return Node("ab" * 28, "gpu-1", "gpu-box", "10.0.0.2")


@pytest.mark.parametrize(
    ("make", "kind", "text"),
    [
        (lambda rex: rex.NodeDiedError("node gone"), "node-lost", "died or left the cluster"),
        (lambda rex: rex.WorkerCrashedError(), "node-lost", "died or left the cluster"),
        (lambda rex: rex.TaskCancelledError(), "interrupted", "was cancelled"),
        (
            lambda rex: RuntimeError("ModuleNotFoundError: No module named 'aialliance_cli'"),
            "unavailable",
            "aia is not installed on node gpu-1 (gpu-box",
        ),
        (lambda rex: ConnectionError("GCS unreachable"), "connection", "lost the connection"),
    ],
)
def test_ray_errors_become_reasons(make: Any, kind: str, text: str) -> None:
    rex = pytest.importorskip("ray.exceptions")
    from aialliance_cli.fleet.run import describe_failure

    got_kind, why = describe_failure(make(rex), _node())
    assert got_kind == kind
    assert text in why


def test_failed_record_is_a_result_with_the_nodes_host() -> None:
    from aialliance_cli.fleet.run import failed_record

    spec = {"target": "m.onnx", "profile_name": "m", "eps": ["CPUExecutionProvider"]}
    r = failed_record(spec, _node(), "gpu-1 died", "node-lost")
    assert r["schema"] == "aia.result/1" and r["status"] == "failed"
    assert r["error"] == "gpu-1 died" and r["machine"] == {"hostname": "gpu-box"}
    assert r["failure"] == {"kind": "node-lost", "exit_code": 1}
    assert r["profile"]["name"] == "m" and r["ep"]["requested"] == "CPUExecutionProvider"


class _FakeRay:
    """Stands in for a cluster of another Ray/Python version (this machine has one Ray)."""

    __version__ = "2.60.0"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def init(self, **kwargs: Any) -> None:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (
            RuntimeError(
                "Version mismatch: The cluster was started with:\n    Ray: 2.44.0\n"
                "    Python: 3.12.3\nThis process on node 10.0.0.1 was started with:\n"
                "    Ray: 2.60.0\n    Python: 3.11.7\n"
            ),
            "runs another Ray or Python version than this machine (Ray 2.60.0",
        ),
        (ConnectionError("Could not find any running Ray instance."), "no Ray cluster answers"),
    ],
)
def test_connect_failures_are_bad_input(exc: BaseException, text: str) -> None:
    from aialliance_cli.fleet.connect import _init

    with pytest.raises(BadInputError, match=r"\(|no Ray") as info:
        _init(_FakeRay(exc), "10.0.0.1:6379")
    assert text in str(info.value)
    assert "10.0.0.1:6379" in str(info.value)


# ----------------------------------------------------------------------------- priorities


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness: Linux")
def test_lower_priority_reaches_every_thread_of_a_process() -> None:
    """Linux keeps a niceness per thread: renicing a daemon's pid alone would leave its
    other threads (a raylet's or GCS's event loops) at their niceness."""
    import os

    from aialliance_cli.fleet.connect import lower_priority

    code = (
        "import threading, time\n"
        "for _ in range(3):\n"
        "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "up"
        tids = [int(t) for t in os.listdir(f"/proc/{p.pid}/task")]
        assert len(tids) >= 4
        assert lower_priority([p.pid, 999_999_999]) == len(tids)  # a gone pid is skipped
        assert {os.getpriority(os.PRIO_PROCESS, t) for t in tids} == {19}
        assert lower_priority([p.pid]) == 0  # already there
    finally:
        p.kill()
        p.wait(10)


def test_a_benchmark_measured_above_nice_0_says_so() -> None:
    from aialliance_cli.fleet.remote import niceness_warning

    assert niceness_warning(0) is None and niceness_warning(None) is None
    assert niceness_warning(-5) is None  # Ray started above normal priority: no handicap
    text = niceness_warning(15)
    assert text is not None and "nice 15" in text and "RAY_worker_niceness=0" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness of a process")
def test_the_node_task_lowers_its_niceness_where_allowed_and_records_it() -> None:
    """Ray runs task workers at nice 15 and aia's measuring worker would inherit it: the
    task goes back to 0 where the node allows it, and its record says what it was."""
    code = (
        "import os, json\n"
        "os.nice(5)\n"
        "from aialliance_cli.fleet.remote import node_bench\n"
        "out = node_bench({'target': '/nonexistent/model.onnx'})\n"
        "print(json.dumps({'nice': out['runtime']['niceness'],\n"
        "                  'warnings': out['results'][0].get('warnings') or []}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    if got["nice"] == 0:  # root, CAP_SYS_NICE or RLIMIT_NICE: back to `aia bench`'s priority
        assert not any("nice" in w for w in got["warnings"])
    else:  # an unprivileged user: measured at 5, and the record says so
        assert got["nice"] == 5
        assert any("measured at nice 5" in w for w in got["warnings"])
