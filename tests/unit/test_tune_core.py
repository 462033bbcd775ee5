"""aia tune's pure parts: the space from the machine, settings checks, record keys."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from aialliance_cli.errors import BadInputError
from aialliance_cli.hardware.inventory import (
    Accelerator,
    CpuInfo,
    Inventory,
    MemoryInfo,
    OrtDistribution,
    SoftwareInfo,
)
from aialliance_cli.tune import records
from aialliance_cli.tune.search import TuneSettings, check_settings
from aialliance_cli.tune.space import (
    CPU_EP,
    OV_EP,
    Candidate,
    build_space,
    default_precisions,
    parse_precisions,
    thread_counts,
)

VNNI = ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16")


def inventory(features=VNNI, cores=(2, 2), ort="1.32.0", host="a", gpus=()) -> Inventory:
    cpu = CpuInfo(
        vendor="amd",
        model_name="AMD EPYC 9999",
        architecture="x86_64",
        physical_cores=cores[0],
        logical_cores=cores[1],
        sockets=1,
        numa_nodes=1,
        features=tuple(features),
    )
    sw = SoftwareInfo(
        os="Linux",
        os_release="Debian",
        kernel="6",
        python="3.12",
        ort_version=ort,
        ort_distributions=(OrtDistribution("onnxruntime", ort),),
        available_providers=(CPU_EP,),
    )
    return Inventory(cpu, MemoryInfo(None, None), tuple(gpus), sw, hostname=host)


def test_thread_counts_from_the_machine() -> None:
    assert thread_counts(2, 2) == [0, 1, 2]
    assert thread_counts(1, 2) == [0, 1, 2]
    big = thread_counts(16, 32)
    assert {0, 1, 2, 4, 8, 12, 16, 32} <= set(big)


def test_precisions_by_isa() -> None:
    assert "int8-dynamic-u8" not in default_precisions(inventory())
    avx2 = inventory(features=("avx", "avx2", "fma"))
    assert "int8-dynamic-u8" in default_precisions(avx2)


def test_parse_precisions() -> None:
    assert parse_precisions("fp32,int8") == ["fp32", "int8-dynamic"]
    assert parse_precisions("variant:Broken") == ["variant:Broken"]
    with pytest.raises(BadInputError, match="unknown precision 'fp8'"):
        parse_precisions("fp8")
    with pytest.raises(BadInputError):
        parse_precisions("fp32,")


def test_precision_the_hardware_cannot_run_is_bad_input() -> None:
    here = [(CPU_EP, None)]
    with pytest.raises(BadInputError, match="bf16.*OpenVINO"):
        build_space(inventory(), here, precisions=["bf16"])
    with pytest.raises(BadInputError, match="AVX512_BF16 or AMX"):
        build_space(
            inventory(features=("avx2",)), [(CPU_EP, None), (OV_EP, "ov")], precisions=["bf16"]
        )
    with pytest.raises(BadInputError, match="fp16 runs on GPUs"):
        build_space(inventory(), here, precisions=["fp16"])
    with pytest.raises(BadInputError, match="int8 needs AVX2"):
        build_space(inventory(features=("sse4.2",)), here, precisions=["int8-dynamic"])


def test_space_offers_bf16_only_through_openvino_with_the_isa() -> None:
    space = build_space(inventory(), [(CPU_EP, None), (OV_EP, "ov")])
    bf16 = [b for b in space.backends if b.precision == "bf16"]
    assert [(b.ep, b.env) for b in bf16] == [(OV_EP, "ov")]
    assert "fp16" in space.skipped_precisions
    no_bf16 = build_space(inventory(features=("avx2",)), [(CPU_EP, None), (OV_EP, "ov")])
    assert not [b for b in no_bf16.backends if b.precision == "bf16"]
    assert "AVX512_BF16" in no_bf16.skipped_precisions["bf16"]


def test_throughput_adds_batches_and_busy_puts_spinning_off_first() -> None:
    lat = build_space(inventory(), [(CPU_EP, None)], objective="latency")
    assert lat.batches == [None] and lat.spinning == [None, False]
    thr = build_space(inventory(), [(CPU_EP, None)], objective="throughput", busy=True)
    assert len(thr.batches) > 1 and thr.spinning == [False, None]
    fixed = build_space(inventory(), [(CPU_EP, None)], objective="throughput", static_batch=True)
    assert fixed.batches == [None]


def test_candidate_session_settings() -> None:
    c = Candidate(threads=2, spinning=False, opt_level="basic")
    s = c.session_settings()
    assert s["config"]["session.intra_op.allow_spinning"] == "0"
    assert s["graph_optimization_level"] == "basic"
    ov = Candidate(
        ep=OV_EP,
        threads=2,
        precision="bf16",
        ep_options=(("_hint:INFERENCE_PRECISION_HINT", "bf16"),),
    )
    opts = ov.session_settings()["ep_options"]
    assert (
        opts["num_of_threads"] == "2"
        and '"INFERENCE_PRECISION_HINT": "bf16"' in opts["load_config"]
    )
    assert Candidate.from_dict(ov.to_dict()) == ov
    assert Candidate().changes() == 0 and c.changes() == 3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"budget_s": 0}, "more than 0"),
        ({"budget_s": -5}, "more than 0"),
        ({"budget_s": math.nan}, "finite"),
        ({"budget_s": math.inf}, "finite"),
        ({"objective": "fast"}, "latency, throughput"),
        ({"min_accuracy": 0.0}, "--min-accuracy"),
        ({"min_accuracy": 1.5}, "--min-accuracy"),
        ({"min_accuracy": math.nan}, "--min-accuracy"),
    ],
)
def test_bad_settings(kwargs, match) -> None:
    with pytest.raises(BadInputError, match=match):
        check_settings(TuneSettings(**kwargs))


def test_fingerprint_ignores_the_hostname_and_sees_flags_cores_gpus_ort() -> None:
    fp = lambda inv: records.fingerprint_id(records.hardware_fingerprint(inv))  # noqa: E731
    base = fp(inventory())
    assert fp(inventory(host="other")) == base
    assert fp(inventory(features=VNNI[:-1])) != base
    assert fp(inventory(cores=(4, 8))) != base
    assert fp(inventory(ort="1.31.0")) != base
    gpu = Accelerator(
        kind="gpu", vendor="nvidia", name="H200", driver="nvidia", driver_version="570"
    )
    assert fp(inventory(gpus=(gpu,))) != base
    assert fp(inventory(gpus=(replace(gpu, driver_version="580"),))) != fp(inventory(gpus=(gpu,)))


def _record(inv: Inventory, sha: str, **kw) -> records.TunedRecord:
    fp = records.hardware_fingerprint(inv)
    winner = Candidate(threads=1, spinning=False)
    data = dict(
        target="m",
        model_sha256=sha,
        fingerprint_id=records.fingerprint_id(fp),
        fingerprint=fp,
        onnxruntime=records.ort_build(inv),
        objective="latency",
        winner=winner.to_dict(),
        label=winner.label(),
        description=winner.describe(),
        p50_ms=1.0,
        p50_ci95=[0.9, 1.1],
        speedup_default=1.7,
        verdict_default="faster",
        speedup_plan=1.7,
        verdict_plan="faster",
        accuracy=None,
        load=None,
    )
    data.update(kw)
    return records.TunedRecord(**data)


def test_records_match_only_the_same_machine_model_ort_and_objective() -> None:
    inv = inventory()
    path = records.save_record(_record(inv, "a" * 64))
    assert path.is_file() and path.parent == records.records_dir()
    rec, notes = records.find_record("m", "a" * 64, inv)
    assert rec is not None and notes == []
    assert rec.summary_line().endswith("1 threads, spinning off, 1.7x over default")
    assert records.find_record("m", "a" * 64, inv, objective="throughput") == (None, [])

    rec, notes = records.find_record("m", "b" * 64, inv)
    assert rec is None and "model changed" in notes[0]
    rec, notes = records.find_record("m", "a" * 64, inventory(ort="1.33.0"))
    assert rec is None and "tuned with onnxruntime==1.32.0, this is onnxruntime==1.33.0" in notes[0]
    rec, notes = records.find_record("m", "a" * 64, inventory(features=VNNI[:-1]))
    assert rec is None and "other hardware" in notes[0] and "lost avx512_bf16" in notes[0]
    rec, notes = records.find_record("m", "a" * 64, inventory(host="elsewhere"))
    assert rec is not None  # the hostname is not part of the key

    assert [r.target for r in records.records_for_machine(inv)] == ["m"]
    assert records.clear_records("other") == 0
    assert records.clear_records() == 1
    assert records.list_records() == []


def test_a_record_is_replaced_not_duplicated_and_unreadable_files_are_skipped() -> None:
    inv = inventory()
    records.save_record(_record(inv, "a" * 64))
    records.save_record(_record(inv, "a" * 64, speedup_default=2.0))
    (records.records_dir() / "junk.json").write_text("{not json", "utf-8")
    found = records.list_records()
    assert len(found) == 1 and found[0][1].speedup_default == 2.0


def test_model_sha256_is_the_content_hash(tmp_path: Path) -> None:
    import hashlib

    f = tmp_path / "m.onnx"
    f.write_bytes(b"abc")
    assert records.model_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    f.write_bytes(b"abcd")
    assert records.model_sha256(f) == hashlib.sha256(b"abcd").hexdigest()


def _tuner(monkeypatch):
    from types import SimpleNamespace

    from aialliance_cli.tune import search
    from aialliance_cli.tune.space import Space

    monkeypatch.setattr(search, "plan_candidate", lambda target, inv: Candidate())
    space = Space([], [0], [None], ["all"], [("sequential", 0)], [None], [None])
    target = SimpleNamespace(name="m", profile=None, model_path=Path("m.onnx"), model_info={})
    return search.Tuner(
        target,
        TuneSettings(budget_s=10),
        space=space,
        envs=[],
        inventory=inventory(),
        load={"busy": False},
    )


def _lat(center: float, spread: float = 0.01, n: int = 200) -> list[float]:
    import numpy as np

    return list(center + spread * np.random.default_rng(0).standard_normal(n))


def test_ties_within_the_interval_go_to_the_more_accurate_then_simpler(monkeypatch) -> None:
    t = _tuner(monkeypatch)
    default = Candidate()
    int8 = Candidate(precision="int8-dynamic")
    two = Candidate(threads=2)
    t.samples = {default: [_lat(10.0)], int8: [_lat(9.999)], two: [_lat(9.998)]}
    t.final_samples = dict(t.samples)
    t.accuracy = {int8.numeric_key(): {"value": 0.995, "passed": True}}
    out = t._outcome()
    # All three are within noise of each other: fp32 beats int8 on accuracy, and ORT's
    # default beats threads=2 on the number of changed settings.
    assert out.winner.candidate == default
    assert out.winner.verdict_default == "within noise"


def test_a_rejected_candidate_never_wins_however_fast(monkeypatch) -> None:
    t = _tuner(monkeypatch)
    default = Candidate()
    broken = Candidate(precision="int8-dynamic-tensor")
    t.samples = {default: [_lat(10.0)], broken: [_lat(5.0)]}
    t.accuracy = {broken.numeric_key(): {"value": 0.5, "passed": False}}
    out = t._outcome()
    assert out.winner.candidate == default
    rejected = [r for r in out.rows if r.status == "rejected"]
    assert [r.candidate for r in rejected] == [broken] and rejected[0].verdict_default == "faster"


def test_a_measurably_faster_candidate_wins(monkeypatch) -> None:
    t = _tuner(monkeypatch)
    default, two = Candidate(), Candidate(threads=2, spinning=False)
    t.samples = {default: [_lat(10.0)], two: [_lat(8.0)]}
    t.final_samples = dict(t.samples)
    out = t._outcome()
    assert out.winner.candidate == two and out.winner.verdict_default == "faster"
    assert abs(out.winner.speedup_default - 1.25) < 0.01


def _scripted_tuner(monkeypatch, cost):
    """A Tuner whose trials return ``cost(candidate, round)`` ms instead of running a worker.

    Only the search's choices are under test here: what it tries, in what order, and
    which finalists it keeps measuring.
    """
    from aialliance_cli.tune import search
    from aialliance_cli.tune.space import Backend, Space

    monkeypatch.setattr(search, "plan_candidate", lambda target, inv: Candidate())
    backends = [
        Backend(CPU_EP, None, "fp32"),
        Backend(CPU_EP, None, "int8-dynamic"),
        Backend(OV_EP, "ov", "fp32"),
    ]
    space = Space(backends, [0, 1, 2], [None, False], ["all"], [("sequential", 0)], [None], [None])
    t = _tuner(monkeypatch)
    t.space = space
    t.settings = TuneSettings(budget_s=600)
    t.deadline = t.t0 + 600
    t.affordable_prep = lambda precision: True  # type: ignore[method-assign]
    seen: dict[Candidate, int] = {}

    def fake_trial(cand, stage, measure_s):
        seen[cand] = seen.get(cand, 0) + 1
        t.accuracy.setdefault(cand.numeric_key(), {"value": 0.995, "passed": True})
        trial = search.Trial(cand, stage, "ok", latencies_ms=_lat(cost(cand, seen[cand])))
        return t._done(trial)

    t.run_trial = fake_trial  # type: ignore[method-assign]
    return t


def test_the_second_pass_tunes_threads_and_spinning_of_the_runner_up(monkeypatch) -> None:
    # int8 on the CPU EP is the best backend at ORT's defaults, but OpenVINO with one
    # thread and no spinning is faster than anything int8 reaches (a loaded machine).
    def cost(c: Candidate, _: int) -> float:
        if c.ep == OV_EP:
            return (12.0 if c.threads == 1 else 18.0) - (3.0 if c.spinning is False else 0.0)
        base = 15.0 if c.precision == "int8-dynamic" else 20.0
        return base - (1.0 if c.threads == 2 else 0.0)

    t = _scripted_tuner(monkeypatch, cost)
    out = t.search()
    ov_best = Candidate(ep=OV_EP, env="ov", threads=1, spinning=False)
    assert ov_best in t.samples, [c.label() for c in t.samples]
    assert out.winner.candidate == ov_best and out.winner.measured == "final"


def test_the_final_drops_clearly_slower_finalists_and_stops_once_settled(monkeypatch) -> None:
    def cost(c: Candidate, _: int) -> float:
        if c.precision == "int8-dynamic":
            return 10.0 if (c.threads, c.spinning) == (0, None) else 10.2
        return 20.0 if c.ep == CPU_EP else 19.0

    t = _scripted_tuner(monkeypatch, cost)
    out = t.search()
    assert out.winner.candidate == Candidate(precision="int8-dynamic")
    rounds = t.final_rounds
    # ORT's default (2x slower) leaves after two rounds; the leader won every round,
    # so the final stops at three.
    assert len(rounds) == 3
    assert sum(Candidate() in r for r in rounds) == 2
    assert all(Candidate(precision="int8-dynamic") in r for r in rounds)
