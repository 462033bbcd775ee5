"""Sweep expansion, option parsing, routing and exit codes (pure functions)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aialliance_cli.envs.registry import EnvRecord
from aialliance_cli.errors import BadInputError, UnknownProviderError
from aialliance_cli.runtime.api import Overrides, Target
from aialliance_cli.runtime.sweep import (
    ALL,
    ScenarioSettings,
    SweepPoint,
    all_eps,
    exit_code,
    expand,
    loadgen_dir,
    make_job,
    parse_dim_lists,
    parse_ep_list,
    parse_int_list,
    plan_sweep,
    route,
)
from aialliance_cli.runtime.worker import overrides_from_dict, overrides_to_dict

CPU, OV, CUDA = "CPUExecutionProvider", "OpenVINOExecutionProvider", "CUDAExecutionProvider"


@pytest.mark.parametrize(
    ("text", "zero_ok", "want"),
    [
        (None, False, None),
        ("4", False, [4]),
        ("1,2,4", False, [1, 2, 4]),
        (" 8 , 1 ,8", False, [8, 1]),
        ("0,2", True, [0, 2]),
    ],
)
def test_parse_int_list(text, zero_ok, want):
    assert parse_int_list("--threads", text, zero_ok=zero_ok) == want


@pytest.mark.parametrize("text", ["", "1,,2", "a", "1,x", "0", "-1", "1.5", "2,"])
def test_parse_int_list_bad(text):
    with pytest.raises(BadInputError, match="--batch"):
        parse_int_list("--batch", text)


def test_parse_ep_list_resolves_names_and_all():
    assert parse_ep_list("cpu,OpenVINO, cpu") == [CPU, OV]
    assert parse_ep_list("all") == [ALL]
    assert parse_ep_list(None) is None
    assert parse_ep_list("MyVendorExecutionProvider") == ["MyVendorExecutionProvider"]
    with pytest.raises(UnknownProviderError, match="cuda"):
        parse_ep_list("cpu,cdua")
    with pytest.raises(BadInputError, match="alone"):
        parse_ep_list("all,cpu")
    with pytest.raises(BadInputError):
        parse_ep_list("cpu,")


def test_parse_dim_lists():
    assert parse_dim_lists(["sequence=64,128", "height=224"]) == {
        "sequence": [64, 128],
        "height": [224],
    }
    assert parse_dim_lists(None) == {}
    for bad in (["sequence"], ["=3"], ["sequence="], ["s=1,0"], ["s=1", "s=2"]):
        with pytest.raises(BadInputError):
            parse_dim_lists(bad)


def test_expand_is_the_cartesian_product_in_order():
    points = expand([CPU, OV], [1, 2], [1, 8], {"sequence": [64, 128]})
    assert len(points) == 16
    assert points[0] == SweepPoint(CPU, 1, 1, (("sequence", 64),))
    assert points[1] == SweepPoint(CPU, 1, 1, (("sequence", 128),))
    assert points[-1] == SweepPoint(OV, 2, 8, (("sequence", 128),))
    assert len(set(points)) == 16


def test_expand_without_lists_is_one_default_point():
    assert expand() == [SweepPoint()]
    assert expand(None, None, [4]) == [SweepPoint(batch=4)]
    two_dims = expand(dims={"a": [1, 2], "b": [3]})
    assert [p.dims for p in two_dims] == [(("a", 1), ("b", 3)), (("a", 2), ("b", 3))]


def test_labels():
    assert SweepPoint().label() == "default"
    assert SweepPoint(OV, 2, 8, (("sequence", 64),)).label("ov") == (
        "openvino@ov threads=2 batch=8 sequence=64"
    )
    assert SweepPoint(CPU).label() == "cpu"


def _env(name: str, providers: tuple[str, ...], python: str = sys.executable) -> EnvRecord:
    return EnvRecord(
        name=name,
        python=python,
        onnxruntime="1.24.1",
        distribution="onnxruntime-openvino",
        providers=providers,
    )


def test_all_eps_adds_eps_only_other_envs_have():
    assert all_eps([CPU], [_env("ov", (OV, CPU))]) == [CPU, OV]
    assert all_eps([CPU], []) == [CPU]


def test_route_here_elsewhere_nowhere(tmp_path):
    envs = [_env("gone", (OV,), python=str(tmp_path / "nope")), _env("ov", (OV, CPU))]
    assert route(SweepPoint(CPU), [CPU], envs, sweep=True).env is None
    assert route(SweepPoint(), [CPU], envs, sweep=True).env is None
    r = route(SweepPoint(OV), [CPU], envs, sweep=True)
    assert r.env.name == "ov" and r.error is None  # a working env before a broken one
    assert r.environment == {
        "name": "ov",
        "python": sys.executable,
        "onnxruntime": "1.24.1",
        "distribution": "onnxruntime-openvino",
    }
    broken = route(SweepPoint(OV), [CPU], envs[:1], sweep=True)
    assert broken.env.name == "gone" and "gone or not executable" in broken.error
    nowhere = route(SweepPoint(CUDA), [CPU], envs, sweep=True)
    assert nowhere.env is None and "onnxruntime-gpu" in nowhere.error
    assert nowhere.kind == "unavailable"
    # A single configuration keeps `aia bench --ep X`'s fallback (or --strict's exit 3).
    assert route(SweepPoint(CUDA), [CPU], envs, sweep=False).error is None


def _ok() -> dict:
    return {"status": "ok"}


def _failed(code: int) -> dict:
    return {"status": "failed", "failure": {"exit_code": code}}


@pytest.mark.parametrize(
    ("results", "interrupted", "code"),
    [
        ([_ok(), _ok()], False, 0),
        ([_ok(), _failed(2)], False, 1),
        ([_failed(2), _failed(2)], False, 2),
        ([_failed(3)], False, 3),
        ([_failed(2), _failed(3)], False, 1),
        ([_failed(1)], False, 1),
        ([_ok()], True, 130),
        ([_ok(), {"status": "interrupted"}], False, 130),
        ([], True, 130),
    ],
)
def test_exit_code(results, interrupted, code):
    assert exit_code(results, interrupted) == code


def test_loadgen_dir_beside_out_or_in_data_dir(tmp_path):
    d = loadgen_dir(tmp_path / "runs.jsonl", "cpu threads=2", 3, "20260101T000000")
    assert d == tmp_path / "runs.loadgen" / "20260101T000000-03-cpu_threads=2"
    d2 = loadgen_dir(None, "x/y", 1, "S")
    assert d2.parent.name == "loadgen" and "/" not in d2.name


def test_overrides_round_trip(tmp_path):
    ov = Overrides(
        ep="cpu",
        threads=2,
        batch=4,
        dims={"sequence": 64},
        warmup=1,
        iterations=5,
        input_files=(Path("x.npz"),),
        input_sets=4,
    )
    back = overrides_from_dict(overrides_to_dict(ov))
    assert back.ep == "cpu" and back.threads == 2 and back.dims == {"sequence": 64}
    assert back.input_files[0].is_absolute() and back.input_sets == 4


def test_make_job_merges_point_over_overrides(tmp_path):
    target = Target(name="m", model_path=tmp_path / "m.onnx")
    ov = Overrides(threads=1, dims={"sequence": 32}, input_sets=4)
    job = make_job(
        target,
        ov,
        SweepPoint(OV, None, 8, (("height", 5),)),
        label="l",
        scenario=ScenarioSettings("offline", min_duration_s=1),
        log_dir=tmp_path / "lg",
    )
    o = job["overrides"]
    assert o["ep"] == OV and o["threads"] == 1 and o["batch"] == 8
    assert o["dims"] == {"sequence": 32, "height": 5}
    assert job["scenario"]["name"] == "offline" and job["scenario"]["log_dir"] == str(
        tmp_path / "lg"
    )
    assert job["target"]["model_path"] == str(tmp_path / "m.onnx")
    assert job["config"]["label"] == "l"


def test_plan_sweep_labels_and_log_dirs(tmp_path):
    target = Target(name="m", model_path=tmp_path / "m.onnx")
    points = expand([CPU, OV], [1, 2])
    planned = plan_sweep(
        target,
        Overrides(),
        points,
        here=[CPU],
        envs=[_env("ov", (OV,))],
        scenario=ScenarioSettings("offline"),
        out=tmp_path / "r.jsonl",
    )
    assert [p.label for p in planned] == [
        "cpu threads=1",
        "cpu threads=2",
        "openvino@ov threads=1",
        "openvino@ov threads=2",
    ]
    dirs = {p.job["scenario"]["log_dir"] for p in planned}
    assert len(dirs) == 4 and all("r.loadgen" in d for d in dirs)
    single = plan_sweep(target, Overrides(), [SweepPoint()], here=[CPU], envs=[])
    assert single[0].label == "m" and single[0].job["scenario"] is None


def test_worker_path_never_exposes_a_site_packages(tmp_path):
    """An installed aia must not put its site-packages (and its onnxruntime) on the
    other environment's PYTHONPATH."""
    from aialliance_cli.envs.registry import aia_path_entry, aia_root

    checkout = tmp_path / "checkout"
    (checkout / "aialliance_cli").mkdir(parents=True)
    assert aia_path_entry(checkout) == checkout
    site = tmp_path / "lib" / "site-packages"
    (site / "aialliance_cli").mkdir(parents=True)
    (site / "onnxruntime").mkdir()
    shim = aia_path_entry(site)
    assert sorted(p.name for p in shim.iterdir()) == ["aialliance_cli"]
    assert (shim / "aialliance_cli").resolve() == (site / "aialliance_cli").resolve()
    assert aia_path_entry(site) == shim  # reused
    assert aia_path_entry() == aia_root()  # this checkout
